"""GriffinLim: log-mel frames -> 16 kHz waveform, inside the graph (`tf.signal` STFTs, no trained weights).

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
owner of the mel parameters.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfzoo.layers.log_mel import LogMelSpectrogram

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

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in ARGUMENTS}}

    def magnitude(self, log_mel):
        """Linear magnitude (B, T, F) of log-mel power (B, T, M) through the filter bank's pseudo-inverse."""
        mel_power = tf.maximum(tf.exp(tf.cast(log_mel, tf.float32)) - self.log_floor, 0.0)  # (B, T, M)
        return tf.sqrt(tf.maximum(tf.matmul(mel_power, tf.constant(self._inverse_mel)), 0.0))  # (B, T, F)

    def _inverse(self, spectrum):
        window = tf.signal.inverse_stft_window_fn(self.frame_step)
        return tf.signal.inverse_stft(spectrum, self.frame_length, self.frame_step, self.fft_length, window_fn=window)

    def call(self, log_mel):
        magnitude = tf.complex(self.magnitude(log_mel), 0.0)  # (B, T, F)
        angles = tf.ones_like(magnitude)  # zero phase
        previous = tf.zeros_like(magnitude)
        for _ in range(self.iterations):
            waveform = self._inverse(magnitude * angles)  # (B, S)
            rebuilt = tf.signal.stft(waveform, self.frame_length, self.frame_step, self.fft_length)  # (B, T, F)
            accelerated = rebuilt - tf.cast(self.momentum / (1.0 + self.momentum), tf.complex64) * previous
            angles = accelerated / tf.cast(tf.abs(accelerated) + 1e-8, tf.complex64)
            previous = rebuilt
        return self._inverse(magnitude * angles)  # (B, (T - 1) * frame_step + frame_length)
