"""SpeechRecognizer: 16 kHz audio -> log-mel (in the graph) -> conv subsampler -> encoder -> cross-attending decoder.

Reads top down: waveform (B, S) and lengths (B,) -> `LogMelSpectrogram`
(10 ms frames, mask of the real ones) -> `SpecAugment` masks (training only,
when `freq_masks` or `time_masks` > 0) -> two 1-D convolutions of stride 2
(kernel 3, left-padded so that step j sees frames 2j-2..2j, GELU; 40 ms per
encoder step) -> positions (learned table or
sinusoids) -> `num_layers` encoder blocks with padding masked -> memory
(B, N, C); transcript tokens -> token embedding (scaled by sqrt(hidden_dim))
+ positions -> `num_layers` `TransformerDecoderBlock`s (causal self-attention,
cross-attention over the real audio steps) -> final norm -> logits tied to the
token embedding. The decoder is the zoo's `DecoderStack`, so decoding is
`tfzoo.decoding.generate` (greedy, beam, sampling, penalties) as for the
Transformer and the Captioner.

Padding never changes an output: frames past a waveform's length are zero
after the front end and after each convolution, and padded encoder steps are
never a key. Cached decoding mirrors `Transformer`: `init_decoding_cache`
holds the self-attention cache, the cross-attention keys/values and the
memory mask; `decoding_step` is the `step_fn` of `generate`.

For TFLite builtins: new axes are `expand_dims` (no StridedSlice with a new
axis) and widths are static where the input is (a padded export input).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from tfzoo.layers.encoder_stack import EncoderStack
from tfzoo.layers.log_mel import LogMelSpectrogram, num_frames, width_of
from tfzoo.layers.positions import EMBEDDING_POSITIONS, make_position_embedding
from tfzoo.layers.spec_augment import SpecAugment
from tfzoo.models.stack_model import StackModel

POSITIONS = EMBEDDING_POSITIONS
SUBSAMPLING_LAYERS = 2  # stride-2 convolutions: 4x fewer encoder steps than frames


class AudioLengthError(ValueError):
    """A waveform batch is not (batch, samples) or is longer than the model's `max_audio_samples`."""


@keras.saving.register_keras_serializable(package="tfzoo")
class SpeechRecognizer(StackModel):
    """Speech-to-text model: log-mel front end, conv subsampler, Transformer encoder and decoder.

    `model({"audio": (B, S) float32, "audio_lengths": (B,), "target_ids": (B, T)})`
    returns float32 logits (B, T, vocabulary_size) with teacher forcing.
    Waveforms are 16 kHz mono floats in [-1, 1] (int16 is scaled by 1/32768),
    right-padded; `audio_lengths` defaults to S.

    Args:
        *args, **kwargs: the architecture arguments of `StackModel`
            (`vocabulary_size`, `num_layers` encoder blocks and as many decoder blocks,
            `num_heads`, `hidden_dim`, `intermediate_dim`, `max_sequence_length` (longest
            transcript incl. the start token), `position` ("learned", the default, or
            "sinusoidal"), `dropout`, `activation` (defaults to "gelu"), `norm_first`, ...).
        max_audio_samples: int. Longest waveform (samples); sizes the encoder positions. Defaults to 48000.
        sample_rate: int. Defaults to 16000.
        frame_length: int. Front-end frame (samples). Defaults to 400.
        frame_step: int. Front-end hop (samples). Defaults to 160.
        fft_length: int. Defaults to 400.
        num_mel_bins: int. Defaults to 80.
        tie_embeddings: bool. The token embedding is also the output projection. Defaults to True.
        freq_masks: int. SpecAugment frequency bands per utterance in training (0 = none). Defaults to 0.
        freq_mask_bins: int. Widest band (mel bins). Defaults to 12.
        time_masks: int. SpecAugment time spans per utterance in training (0 = none). Defaults to 0.
        time_mask_frames: int. Longest span (10 ms frames). Defaults to 10.

    Example:
    >>> import numpy as np
    >>> model = SpeechRecognizer(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=16,
    ...     intermediate_dim=32, max_sequence_length=8, max_audio_samples=4000, num_mel_bins=16)
    >>> inputs = {"audio": np.zeros((1, 4000), "float32"), "audio_lengths": np.array([3000]),
    ...           "target_ids": np.array([[3, 8, 9]])}
    >>> tuple(model(inputs).shape), model.max_memory_length
    ((1, 3, 20), 6)

    References:
        Dong et al., "Speech-Transformer", 2018; Radford et al., "Robust Speech Recognition via
        Large-Scale Weak Supervision" (Whisper), 2022.
    """

    POSITIONS = POSITIONS

    def __init__(
        self,
        *args,
        max_audio_samples: int = 48000,
        sample_rate: int = 16000,
        frame_length: int = 400,
        frame_step: int = 160,
        fft_length: int = 400,
        num_mel_bins: int = 80,
        tie_embeddings: bool = True,
        freq_masks: int = 0,
        freq_mask_bins: int = 12,
        time_masks: int = 0,
        time_mask_frames: int = 10,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if isinstance(max_audio_samples, bool) or not isinstance(max_audio_samples, int):
            raise ValueError(f"max_audio_samples must be an integer, got {max_audio_samples!r}.")
        if max_audio_samples < frame_length:
            raise ValueError(f"max_audio_samples ({max_audio_samples}) must be at least frame_length ({frame_length}).")
        self.keep_arguments(locals())
        self.front_end = LogMelSpectrogram(
            sample_rate=sample_rate,
            frame_length=frame_length,
            frame_step=frame_step,
            fft_length=fft_length,
            num_mel_bins=num_mel_bins,
            dtype="float32",
            name="front_end",
        )
        self.spec_augment = None  # no layer (and no seed state) unless masks are asked for
        if freq_masks or time_masks:
            self.spec_augment = SpecAugment(
                freq_masks=freq_masks,
                freq_mask_bins=freq_mask_bins,
                time_masks=time_masks,
                time_mask_frames=time_mask_frames,
                name="spec_augment",
            )
        self.subsampler = [
            keras.layers.Conv1D(self.hidden_dim, 3, strides=2, padding="causal", dtype=self.dtype_policy, name=name)
            for name in ("subsampler_1", "subsampler_2")
        ]
        self.max_memory_length = int(self.memory_lengths(max_audio_samples))
        self.audio_position_embedding = make_position_embedding(
            self.position,
            max_length=self.max_memory_length,
            dim=self.hidden_dim,
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="audio_position_embedding",
        )
        # encoder_blocks, encoder_norm
        self.encoder_stack = EncoderStack(self, **self.stack_arguments(), prefix="encoder_")
        # token_embedding, position_embedding, embedding_dropout, decoder_blocks, decoder_norm
        self.decoder_stack = self.make_cross_attending_decoder("transcript")

    def build(self, input_shape=None):
        self.front_end.build((None, None))
        self.subsampler[0].build((None, None, self.num_mel_bins))
        self.subsampler[1].build((None, None, self.hidden_dim))
        self.audio_position_embedding.build((None, None))
        self.encoder_stack.build((None, None, self.hidden_dim))
        self.decoder_stack.build((None, None, self.hidden_dim))
        self.built = True

    # --- encoder ------------------------------------------------------------------------------

    def memory_lengths(self, audio_lengths):
        """Encoder steps (int32) of waveforms of `audio_lengths` samples: frames halved (rounding up) twice."""
        steps = num_frames(audio_lengths, self.frame_length, self.frame_step)
        for _ in range(SUBSAMPLING_LAYERS):
            steps = (steps + 1) // 2
        return steps

    def memory_mask(self, audio_lengths, width):
        """bool (B, width): True on the encoder steps inside each waveform."""
        return tf.expand_dims(tf.range(width), 0) < tf.expand_dims(self.memory_lengths(audio_lengths), 1)

    def check_audio_shape(self, shape) -> None:
        """Raises `AudioLengthError` unless `shape` is (batch, samples) with samples <= max_audio_samples."""
        shape = tuple(shape)
        if len(shape) != 2 or (shape[1] is not None and shape[1] > self.max_audio_samples):
            raise AudioLengthError(
                f"expected mono waveforms of shape (batch, samples) with at most {self.max_audio_samples} samples "
                f"({self.max_audio_samples / self.sample_rate:g} s at {self.sample_rate} Hz), got {shape}."
            )

    def encode(self, audio, audio_lengths=None, training=None):
        """Memory (B, N, hidden_dim) of waveforms `audio` (B, S) with `audio_lengths` (B,) real samples."""
        self.check_audio_shape(audio.shape)
        scale = 1.0 / 32768.0 if keras.backend.standardize_dtype(audio.dtype) == "int16" else 1.0
        audio = ops.cast(audio, "float32") * scale
        if audio_lengths is None:
            audio_lengths = tf.fill(tf.shape(audio)[:1], tf.shape(audio)[1])
        x, mask = self.front_end(audio, audio_lengths)  # (B, T, M), (B, T)
        if self.spec_augment is not None:
            x = self.spec_augment(x, mask, training=training)  # masked in training only
        steps = num_frames(audio_lengths, self.frame_length, self.frame_step)
        for conv in self.subsampler:
            steps = (steps + 1) // 2
            x = conv(ops.cast(x, self.compute_dtype))  # (B, ceil(T/2), C): step j sees frames 2j-2..2j
            x = 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))  # exact GELU (tf.nn.gelu has Erfc: no ONNX op)
            keep = tf.expand_dims(tf.range(width_of(x)), 0) < tf.expand_dims(steps, 1)  # (B, T')
            x = x * tf.expand_dims(ops.cast(keep, x.dtype), -1)
        positions = tf.expand_dims(tf.range(width_of(x)), 0)  # (1, N)
        x = x + ops.cast(self.audio_position_embedding(positions), x.dtype)
        key_mask = tf.expand_dims(tf.expand_dims(keep, 1), 1)  # (B, 1, 1, N)
        return self.encoder_stack(x, positions, key_mask, training=training)  # (B, N, C)

    # --- teacher forcing ----------------------------------------------------------------------

    def __call__(self, inputs, *args, **kwargs):
        # Checked before Keras wraps errors raised in `call`, so a wrong waveform gives a one-line message.
        if isinstance(inputs, dict) and "audio" in inputs:
            self.check_audio_shape(getattr(inputs["audio"], "shape", ()))
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None):
        """Logits (B, T, V) for `inputs` = {"audio": (B, S), "target_ids": (B, T)[, "audio_lengths": (B,)]}."""
        if not isinstance(inputs, dict) or not {"audio", "target_ids"} <= set(inputs):
            raise ValueError(
                "SpeechRecognizer inputs must be a dict with 'audio' and 'target_ids' (and optionally "
                f"'audio_lengths'), got {sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__}."
            )
        audio = inputs["audio"]
        lengths = inputs.get("audio_lengths")
        if lengths is None:
            lengths = tf.fill(tf.shape(audio)[:1], tf.shape(audio)[1])
        memory = self.encode(audio, lengths, training=training)
        mask = self.memory_mask(lengths, width_of(memory))
        return self.decoder_stack(inputs["target_ids"], memory=memory, memory_mask=mask, training=training)

    def attention_scores(self, audio, target_ids, audio_lengths=None) -> dict:
        """Attention weights of a teacher-forced pass: {"self", "cross" (B, H, T, N), "logits"}."""
        audio = ops.convert_to_tensor(audio)
        if audio_lengths is None:
            audio_lengths = tf.fill(tf.shape(audio)[:1], tf.shape(audio)[1])
        memory = self.encode(audio, audio_lengths)
        mask = self.memory_mask(audio_lengths, width_of(memory))
        return self.decoder_stack.attention_scores(target_ids, memory=memory, memory_mask=mask)

    # --- cached decoding ----------------------------------------------------------------------

    def init_cache(self, batch_size, max_length: int):
        """Empty decoder self-attention cache: per layer `(k, v)`, each (B, num_heads, max_length, head_dim)."""
        return self.decoder_stack.init_cache(batch_size, max_length)

    def cross_attention_cache(self, memory):
        """Every decoder layer's cross-attention `(k, v)`, each (B, num_heads, N, head_dim), computed once."""
        return self.decoder_stack.cross_attention_cache(memory)

    def call_with_cache(self, token_ids, positions, cache, memory, memory_mask, training=False):
        """Runs transcript tokens (B, T) at `positions` against the cache and the memory (or its `(k, v)`)."""
        return self.decoder_stack.call_with_cache(token_ids, positions, cache, memory, memory_mask, training=training)

    def init_decoding_cache(self, audio, audio_lengths, max_length: int):
        """Encodes the audio: `{"self": init_cache, "cross": cross_attention_cache, "memory_mask": (B, N)}`."""
        memory = self.encode(audio, audio_lengths)
        return {
            "self": self.init_cache(ops.shape(memory)[0], max_length),
            "cross": self.cross_attention_cache(memory),
            "memory_mask": self.memory_mask(audio_lengths, width_of(memory)),
        }

    def decoding_step(self, token_ids, positions, cache):
        """`step_fn` for `tfzoo.decoding.generate`: `(token_ids, positions, cache) -> (logits, cache)`."""
        logits, self_cache = self.call_with_cache(
            token_ids, positions, cache["self"], cache["cross"], cache["memory_mask"]
        )
        return logits, {**cache, "self": self_cache}
