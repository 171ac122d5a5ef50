"""GriffinLim: log-mel frames -> 16 kHz waveform, inside the graph (STFTs as real matmuls, no trained weights).

Reads top down: log-mel (B, T, M) of `LogMelSpectrogram(normalize=False)`
-> mel power (exp minus the log floor) -> linear power through the
pseudo-inverse of the same mel filter bank (clipped at 0) -> magnitude
(B, T, fft_length // 2 + 1) -> `iterations` rounds of "fast" Griffin-Lim
(Perraudin et al.: inverse STFT, STFT, keep the phase, with momentum) from a
zero phase -> the waveform of the last phase, (B, (T - 1) * frame_step +
frame_length) samples. The framing, window (periodic Hann) and DFT size are the
front end's, so the waveform's log-mel is the input again as nearly as a
phase estimate allows, and the zoo's speech recognizer hears what the mel says.

The filter bank comes from a `LogMelSpectrogram` with the same arguments: one
owner of the mel parameters. As in the front end, the DFTs are matmuls with
real cos/sin matrices (`log_mel.dft_matrices` forward; the inverse real DFT
times the synthesis window, then an overlap-add of pads and sums), the phase is a
(real, imaginary) pair, and no complex tensor exists: `tf.signal.stft` and
`inverse_stft` give the same values, but their `Complex`, `IRFFT` and
`ComplexAbs` ops are no TFLite builtin or standard ONNX op (probe of
2026-12-03, `bench/tts_export_probe.py`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfzoo.layers.log_mel import LogMelSpectrogram, dft_matrices

ARGUMENTS = (
    "sample_rate", "frame_length", "frame_step", "fft_length", "num_mel_bins", "lower_edge_hertz",
    "upper_edge_hertz", "log_floor", "iterations", "momentum",
)  # fmt: skip


@keras.saving.register_keras_serializable(package="tfzoo")
class GriffinLim(keras.layers.Layer):
    """Natural-log mel power (B, T, num_mel_bins) -> float32 waveform (B, (T - 1) * frame_step + frame_length).

    Args:
        sample_rate, frame_length, frame_step, fft_length, num_mel_bins, lower_edge_hertz,
        upper_edge_hertz, log_floor: the `LogMelSpectrogram` arguments of the features (same defaults).
        iterations: int. Griffin-Lim rounds (each one inverse STFT and one STFT). Defaults to 32.
        momentum: float. Fast Griffin-Lim's momentum in [0, 1); 0 is the 1984 algorithm. Defaults to 0.99.

    Example:
    >>> import numpy as np
    >>> tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 16000).astype("float32")[None]
    >>> features, _ = LogMelSpectrogram(normalize=False)(tone)
    >>> tuple(GriffinLim(iterations=4)(features).shape)
    (1, 7920)

    References:
        Griffin & Lim, "Signal Estimation from Modified Short-Time Fourier Transform", 1984;
        Perraudin, Balazs & Sondergaard, "A Fast Griffin-Lim Algorithm", 2013.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        frame_length: int = 400,
        frame_step: int = 160,
        fft_length: int = 400,
        num_mel_bins: int = 80,
        lower_edge_hertz: float = 20.0,
        upper_edge_hertz: float = 7600.0,
        log_floor: float = 1e-6,
        iterations: int = 32,
        momentum: float = 0.99,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}.")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}.")
        arguments = locals()
        for name in ARGUMENTS:
            setattr(self, name, arguments[name])
        front_end = LogMelSpectrogram(**{name: arguments[name] for name in ARGUMENTS[:8]}, normalize=False)
        self._inverse_mel = np.linalg.pinv(front_end.mel_matrix).astype(np.float32)  # (M, F)
        self._cos, self._sin = dft_matrices(frame_length, fft_length)  # (L, F) each, Hann-windowed
        bins = fft_length // 2 + 1
        k, n = np.arange(bins)[:, None], np.arange(frame_length)[None, :]
        weight = np.where((k == 0) | (2 * k == fft_length), 1.0, 2.0) / fft_length  # (F, 1): irfft's
        window = tf.signal.inverse_stft_window_fn(frame_step)(frame_length, tf.float32).numpy()  # (L,)
        angle = 2 * np.pi * k * n / fft_length
        self._inverse_cos = (weight * np.cos(angle) * window).astype(np.float32)  # (F, L)
        self._inverse_sin = (-weight * np.sin(angle) * window).astype(np.float32)  # (F, L)

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in ARGUMENTS}}

    def magnitude(self, log_mel):
        """Linear magnitude (B, T, F) of log-mel power (B, T, M) through the filter bank's pseudo-inverse."""
        mel_power = tf.maximum(tf.exp(tf.cast(log_mel, tf.float32)) - self.log_floor, 0.0)  # (B, T, M)
        return tf.sqrt(tf.maximum(tf.matmul(mel_power, tf.constant(self._inverse_mel)), 0.0))  # (B, T, F)

    def _inverse(self, real, imaginary):
        """Waveform (B, S) of the spectrum `real` + i `imaginary` (B, T, F): inverse real DFT, window, overlap-add."""
        frames = tf.matmul(real, tf.constant(self._inverse_cos)) + tf.matmul(imaginary, tf.constant(self._inverse_sin))
        # Overlap-add as pads and sums of hop-sized pieces (tf2onnx cuts `tf.signal.overlap_and_add` short).
        hop, pieces = self.frame_step, -(-self.frame_length // self.frame_step)
        count = tf.shape(frames)[1]  # T
        frames = tf.pad(frames, [[0, 0], [0, 0], [0, pieces * hop - self.frame_length]])  # (B, T, P * hop)
        total = 0.0
        for piece in range(pieces):  # piece p of frame t lands on hop t + p
            part = frames[:, :, piece * hop : (piece + 1) * hop]  # (B, T, hop)
            total = total + tf.pad(part, [[0, 0], [piece, pieces - 1 - piece], [0, 0]])  # (B, T + P - 1, hop)
        waveform = tf.reshape(total, [tf.shape(frames)[0], -1])  # (B, (T + P - 1) * hop)
        return waveform[:, : (count - 1) * hop + self.frame_length]  # (B, (T - 1) * frame_step + frame_length)

    def call(self, log_mel):
        magnitude = self.magnitude(log_mel)  # (B, T, F)
        real, imaginary = tf.ones_like(magnitude), tf.zeros_like(magnitude)  # zero phase
        previous_real, previous_imaginary = tf.zeros_like(magnitude), tf.zeros_like(magnitude)
        factor = self.momentum / (1.0 + self.momentum)
        count = tf.shape(magnitude)[1]  # T
        # Frame t holds samples t * frame_step + 0..frame_length-1: a gather (tf2onnx turns `tf.signal.frame` of
        # this length into one frame fewer).
        indices = tf.expand_dims(tf.range(count) * self.frame_step, 1) + tf.expand_dims(tf.range(self.frame_length), 0)
        for _ in range(self.iterations):
            waveform = self._inverse(magnitude * real, magnitude * imaginary)  # (B, S)
            frames = tf.gather(waveform, indices, axis=1)  # (B, T, L): the front end's framing
            rebuilt_real = tf.matmul(frames, tf.constant(self._cos))  # (B, T, F)
            rebuilt_imaginary = tf.matmul(frames, tf.constant(self._sin))
            real = rebuilt_real - factor * previous_real
            imaginary = rebuilt_imaginary - factor * previous_imaginary
            # The unit phase; 0 where the spectrum is 0. Not `/ (norm + 1e-8)`: a float16 TFLite file stores
            # that 1e-8 as 0 and silent frames become 0 / 0 = NaN.
            norm = tf.sqrt(real * real + imaginary * imaginary)
            nonzero = norm > 0.0
            norm = tf.where(nonzero, norm, 1.0)
            real, imaginary = tf.where(nonzero, real / norm, 0.0), tf.where(nonzero, imaginary / norm, 0.0)
            previous_real, previous_imaginary = rebuilt_real, rebuilt_imaginary
        return self._inverse(magnitude * real, magnitude * imaginary)  # (B, (T - 1) * frame_step + frame_length)
