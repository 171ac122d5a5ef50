"""LogMelSpectrogram: raw waveforms -> normalised log-mel frames, inside the graph, in ops every runtime has.

Reads top down: frames of `frame_length` samples every `frame_step`
(`tf.signal.frame`) -> a periodic Hann window and the real DFT as two
matmuls (cos, -sin) with `fft_length // 2 + 1` bins -> power -> mel filter
bank (`tf.signal.linear_to_mel_weight_matrix`, HTK mel scale) -> log ->
per-utterance mean and variance normalisation over the real frames; frames
past an utterance's length are zero.

Why a DFT matrix and not `tf.signal.rfft`: both convert to TFLite builtins,
but tf2onnx 1.17 turns `rfft` followed by `abs` into a `ComplexAbs` node,
which is no standard ONNX op (onnxruntime 1.32: "No Op registered for
ComplexAbs"). The matmul form gives the same values (to ~1e-5) and converts to
MatMul in both (probe of 2026-12-03, recorded in docs/contract.md).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

ARGUMENTS = (
    "sample_rate", "frame_length", "frame_step", "fft_length", "num_mel_bins", "lower_edge_hertz",
    "upper_edge_hertz", "log_floor", "normalize",
)  # fmt: skip


def num_frames(lengths, frame_length: int, frame_step: int):
    """Whole frames inside `lengths` samples: max(0, (length - frame_length) // frame_step + 1); int32."""
    lengths = tf.cast(lengths, tf.int32)
    return tf.maximum(0, (lengths - frame_length) // frame_step + 1)


def width_of(x) -> int | tf.Tensor:
    """Axis 1 of `x`: a Python int when static (constant shapes for TFLite), else a scalar tensor."""
    return x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]


def dft_matrices(frame_length: int, fft_length: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (frame_length, fft_length // 2 + 1) Hann-windowed cos and -sin DFT matrices.

    Example:
    >>> cos, sin = dft_matrices(4, 4)
    >>> cos.shape, float(sin[:, 0].sum())
    ((4, 3), 0.0)
    """
    n = np.arange(frame_length)[:, None]
    k = np.arange(fft_length // 2 + 1)[None, :]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame_length) / frame_length)  # periodic Hann
    angle = 2 * np.pi * n * k / fft_length
    return (window[:, None] * np.cos(angle)).astype(np.float32), (-window[:, None] * np.sin(angle)).astype(np.float32)


@keras.saving.register_keras_serializable(package="tfzoo")
class LogMelSpectrogram(keras.layers.Layer):
    """16 kHz waveforms (B, S) float32 in [-1, 1] -> log-mel features (B, T, num_mel_bins) and frame mask (B, T).

    Args:
        sample_rate: int. Samples per second. Defaults to 16000.
        frame_length: int. Samples per frame (25 ms). Defaults to 400.
        frame_step: int. Samples between frames (10 ms). Defaults to 160.
        fft_length: int. DFT size, at least `frame_length` (a DFT matrix needs no power of two). Defaults to 400.
        num_mel_bins: int. Mel filters. Defaults to 80.
        lower_edge_hertz: float. Lowest filter edge. Defaults to 20.
        upper_edge_hertz: float. Highest filter edge, at most sample_rate / 2. Defaults to 7600.
        log_floor: float. Added to the mel power before the log. Defaults to 1e-6.
        normalize: bool. Per-utterance mean/variance normalisation over the real frames. Defaults to True.

    Example:
    >>> import numpy as np
    >>> features, mask = LogMelSpectrogram(num_mel_bins=40)(np.zeros((2, 1600), "float32"), np.array([1600, 800]))
    >>> tuple(features.shape), mask.numpy().sum(axis=1).tolist()
    ((2, 8, 40), [8, 3])

    References:
        Davis & Mermelstein, 1980 (mel filter banks); Radford et al., "Robust Speech Recognition via
        Large-Scale Weak Supervision" (Whisper), 2022 (log-mel input of an encoder-decoder).
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
        normalize: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        arguments = locals()
        for name in ARGUMENTS[:5]:
            if isinstance(arguments[name], bool) or not isinstance(arguments[name], int) or arguments[name] < 1:
                raise ValueError(f"{name} must be a positive integer, got {arguments[name]!r}.")
        if fft_length < frame_length:
            raise ValueError(f"fft_length ({fft_length}) must be at least frame_length ({frame_length}).")
        if not 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2:
            raise ValueError(
                f"need 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2, got "
                f"{lower_edge_hertz}, {upper_edge_hertz}, {sample_rate}."
            )
        for name in ARGUMENTS:
            setattr(self, name, arguments[name])
        cos, sin = dft_matrices(frame_length, fft_length)
        self._cos, self._sin = cos, sin  # numpy: a Const in every traced graph (a captured tensor would be an input)
        mel = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins, fft_length // 2 + 1, sample_rate, lower_edge_hertz, upper_edge_hertz
        )
        self._mel = mel.numpy()

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in ARGUMENTS}}

    @property
    def mel_matrix(self) -> np.ndarray:
        """float32 (fft_length // 2 + 1, num_mel_bins): the filter bank (power spectrum -> mel power)."""
        return self._mel

    def frame_mask(self, lengths, total_frames):
        """bool (B, T): True on the frames that lie wholly inside each waveform's length."""
        valid = num_frames(lengths, self.frame_length, self.frame_step)  # (B,)
        return tf.expand_dims(tf.range(total_frames), 0) < tf.expand_dims(valid, 1)

    def call(self, waveform, lengths=None):
        """Features (B, T, num_mel_bins) and mask (B, T) of `waveform` (B, S); `lengths` (B,) default to S."""
        waveform = tf.cast(waveform, tf.float32)
        if lengths is None:
            lengths = tf.fill(tf.shape(waveform)[:1], tf.shape(waveform)[1])
        frames = tf.signal.frame(waveform, self.frame_length, self.frame_step)  # (B, T, frame_length)
        real = tf.matmul(frames, tf.constant(self._cos))  # (B, T, F)
        imaginary = tf.matmul(frames, tf.constant(self._sin))  # (B, T, F)
        power = real * real + imaginary * imaginary
        features = tf.math.log(tf.matmul(power, tf.constant(self._mel)) + self.log_floor)  # (B, T, M)
        mask = self.frame_mask(lengths, width_of(frames))  # (B, T)
        weights = tf.expand_dims(tf.cast(mask, tf.float32), -1)  # (B, T, 1)
        if self.normalize:
            count = tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1.0)  # (B, 1, 1)
            mean = tf.reduce_sum(features * weights, axis=1, keepdims=True) / count  # (B, 1, M): per mel bin
            centred = (features - mean) * weights
            variance = tf.reduce_sum(centred * centred, axis=[1, 2], keepdims=True) / (count * self.num_mel_bins)
            features = centred * tf.math.rsqrt(variance + 1e-5)
        return features * weights, mask

    def compute_output_shape(self, input_shape, lengths_shape=None):
        batch, samples = input_shape[0], input_shape[1]
        frames = None if samples is None else max(0, (samples - self.frame_length) // self.frame_step + 1)
        return (batch, frames, self.num_mel_bins), (batch, frames)
