"""SpeechSynthesizer: characters -> encoder -> durations -> length regulator -> frame decoder -> log-mel -> waveform.

FastSpeech, small. Reads top down: character ids (B, N) -> token embedding +
positions -> `num_layers` bidirectional encoder blocks (padding masked) ->
`DurationPredictor` (log(1 + frames) per character) -> `LengthRegulator` (each
character's vector repeated for its duration: the training targets' durations
in teacher forcing, the predicted ones, rounded, when synthesising) -> frame
positions -> `num_layers` bidirectional blocks over the frames (the zoo's
`EncoderStack` again, padding masked) -> a linear projection to
`num_mel_bins` normalised log-mel values per 10 ms frame. `synthesize` turns
them back into the front end's natural-log mel power and into a waveform with
`GriffinLim` in the graph.

Why non-autoregressive: every frame is predicted at once, so one training step
is one pass and synthesis is one pass plus Griffin-Lim, with no stop token to
learn and no attention alignment to collapse; that is what fits a 15-minute,
2-core training budget. The durations it needs come from the data
(`tfzoo.data.tts_data`: word-by-word espeak-ng synthesis).

The mel parameters (`sample_rate`, `frame_length`, `frame_step`,
`fft_length`, `num_mel_bins`) are the speech recognizer's, so the recognizer
hears the same features; `mel_mean` and `mel_std` normalise the targets (the
task computes them from the training frames).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from tfzoo.layers.duration_predictor import DurationPredictor
from tfzoo.layers.encoder_stack import EncoderStack
from tfzoo.layers.griffin_lim import GriffinLim
from tfzoo.layers.length_regulator import LengthRegulator
from tfzoo.layers.positions import EMBEDDING_POSITIONS, make_position_embedding
from tfzoo.layers.token_embedding import TokenEmbedding
from tfzoo.models.stack_model import StackModel

LOG_FLOOR = 1e-6  # the front end's: log-mel of silence is log(LOG_FLOOR)


@keras.saving.register_keras_serializable(package="tfzoo")
class SpeechSynthesizer(StackModel):
    """Text-to-speech model: character encoder, duration predictor, length regulator, mel decoder, Griffin-Lim.

    `model({"token_ids": (B, N), "durations": (B, N)})` returns normalised
    log-mel frames (B, max_frames, num_mel_bins) with the given durations
    (teacher forcing; zero past each utterance) and adds the duration loss
    (mean squared error of log(1 + frames) over the real characters, times
    `duration_loss_weight`) to `model.losses`. `synthesize(token_ids)` predicts
    the durations and returns the waveform.

    Args:
        *args, **kwargs: the architecture arguments of `StackModel` (`vocabulary_size`, `num_layers`
            encoder blocks and as many frame blocks, `num_heads`, `hidden_dim`, `intermediate_dim`,
            `max_sequence_length` (longest text in characters), `position` ("learned" or
            "sinusoidal"), `dropout`, `activation`, `norm_first`, ...).
        max_frames: int. Longest utterance in frames (10 ms each). Defaults to 300.
        sample_rate, frame_length, frame_step, fft_length, num_mel_bins: the mel front end's
            (`LogMelSpectrogram`). Defaults to 16000, 400, 160, 400, 80.
        mel_mean: float. Mean of the training log-mel values. Defaults to 0.
        mel_std: float. Their standard deviation. Defaults to 1.
        duration_filters: int. Channels of the duration predictor. Defaults to 256.
        duration_loss_weight: float. Weight of the duration loss. Defaults to 1.
        griffin_lim_iterations: int. Griffin-Lim rounds in `synthesize`. Defaults to 32.
        frames_per_step: int. Frames each decoder position predicts (Tacotron's reduction factor): the
            frame blocks run over max_frames / frames_per_step positions, and durations are multiples
            of it. Defaults to 1.

    Example:
    >>> import numpy as np
    >>> model = SpeechSynthesizer(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=16,
    ...     intermediate_dim=32, max_sequence_length=8, max_frames=40, num_mel_bins=16, duration_filters=8)
    >>> tuple(model({"token_ids": np.array([[4, 5, 6]]), "durations": np.array([[3, 2, 4]])}).shape)
    (1, 40, 16)
    >>> outputs = model.synthesize(np.array([[4, 5, 6]]))
    >>> sorted(outputs)
    ['durations', 'frame_lengths', 'log_mel', 'waveform', 'waveform_lengths']

    References:
        Ren et al., "FastSpeech: Fast, Robust and Controllable Text to Speech", 2019; Griffin & Lim, 1984.
    """

    POSITIONS = EMBEDDING_POSITIONS

    def __init__(
        self,
        *args,
        max_frames: int = 300,
        sample_rate: int = 16000,
        frame_length: int = 400,
        frame_step: int = 160,
        fft_length: int = 400,
        num_mel_bins: int = 80,
        mel_mean: float = 0.0,
        mel_std: float = 1.0,
        duration_filters: int = 256,
        duration_loss_weight: float = 1.0,
        griffin_lim_iterations: int = 32,
        frames_per_step: int = 1,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if not mel_std > 0:
            raise ValueError(f"mel_std must be > 0, got {mel_std!r}.")
        if isinstance(frames_per_step, bool) or not isinstance(frames_per_step, int) or frames_per_step < 1:
            raise ValueError(f"frames_per_step must be a positive integer, got {frames_per_step!r}.")
        if max_frames % frames_per_step:
            raise ValueError(f"max_frames ({max_frames}) must be a multiple of frames_per_step ({frames_per_step}).")
        self.decoder_steps = max_frames // frames_per_step
        self.keep_arguments(locals())
        policy = self.dtype_policy
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.token_embedding = TokenEmbedding(
            self.vocabulary_size, self.hidden_dim, embeddings_initializer=initializer, dtype=policy,
            name="token_embedding",
        )  # fmt: skip
        self.position_embedding = make_position_embedding(
            self.position, max_length=self.max_sequence_length, dim=self.hidden_dim, initializer=initializer,
            dtype=policy, name="position_embedding",
        )  # fmt: skip
        # encoder_blocks, encoder_norm
        self.encoder_stack = EncoderStack(self, **self.stack_arguments(), prefix="encoder_")
        self.duration_predictor = DurationPredictor(
            duration_filters, dropout=self.dropout, dtype=policy, name="duration_predictor"
        )
        self.length_regulator = LengthRegulator(self.decoder_steps, name="length_regulator")
        self.frame_position_embedding = make_position_embedding(
            self.position, max_length=self.decoder_steps, dim=self.hidden_dim, initializer=initializer, dtype=policy,
            name="frame_position_embedding",
        )  # fmt: skip
        # decoder_blocks, decoder_norm: bidirectional blocks over the frames
        self.decoder_stack = EncoderStack(self, **self.stack_arguments(), prefix="decoder_")
        self.mel_projection = keras.layers.Dense(num_mel_bins * frames_per_step, dtype=policy, name="mel_projection")
        self.griffin_lim = GriffinLim(
            sample_rate=sample_rate,
            frame_length=frame_length,
            frame_step=frame_step,
            fft_length=fft_length,
            num_mel_bins=num_mel_bins,
            log_floor=LOG_FLOOR,
            iterations=griffin_lim_iterations,
            name="griffin_lim",
        )

    def build(self, input_shape=None):
        hidden = (None, None, self.hidden_dim)
        self.token_embedding.build((None, None))
        self.position_embedding.build((None, None))
        self.encoder_stack.build(hidden)
        self.duration_predictor.build(hidden)
        self.frame_position_embedding.build((None, None))
        self.decoder_stack.build(hidden)
        self.mel_projection.build(hidden)
        self.built = True

    def token_mask(self, token_ids):
        """bool (B, N): the real characters (not `pad_id`)."""
        return ops.not_equal(ops.cast(token_ids, "int32"), self.pad_id)

    def encode(self, token_ids, training=None):
        """Encoded characters (B, N, hidden_dim) and their mask (B, N)."""
        token_ids = ops.convert_to_tensor(token_ids)
        if token_ids.shape[1] is not None and token_ids.shape[1] > self.max_sequence_length:
            raise ValueError(
                f"text length {token_ids.shape[1]} exceeds the model's max_sequence_length {self.max_sequence_length}."
            )
        mask = self.token_mask(token_ids)  # (B, N)
        positions = tf.expand_dims(tf.range(tf.shape(token_ids)[1]), 0)  # (1, N)
        x = self.token_embedding(token_ids) + ops.cast(self.position_embedding(positions), self.compute_dtype)
        key_mask = tf.expand_dims(tf.expand_dims(mask, 1), 1)  # (B, 1, 1, N)
        return self.encoder_stack(x, positions, key_mask, training=training), mask

    def decode(self, hidden, durations, training=None):
        """Normalised log-mel (B, max_frames, M) and frame mask (B, max_frames) of characters lasting `durations`.

        `durations` are in frames; each is cut down to a multiple of `frames_per_step`.
        """
        r = self.frames_per_step
        steps = tf.maximum(tf.cast(durations, tf.int32), 0) // r  # (B, N): decoder positions per character
        frames, mask = self.length_regulator(hidden, steps)  # (B, T/r, C), (B, T/r)
        positions = tf.expand_dims(tf.range(self.decoder_steps), 0)  # (1, T/r)
        x = frames + ops.cast(self.frame_position_embedding(positions), frames.dtype)
        key_mask = tf.expand_dims(tf.expand_dims(mask, 1), 1)  # (B, 1, 1, T/r)
        x = self.decoder_stack(x, positions, key_mask, training=training)
        mel = ops.cast(self.mel_projection(x), "float32")  # (B, T/r, r * M)
        mel = tf.reshape(mel, [-1, self.max_frames, self.num_mel_bins])  # (B, T, M)
        mask = tf.reshape(tf.repeat(tf.expand_dims(mask, -1), r, axis=2), [-1, self.max_frames])  # (B, T)
        return mel * tf.expand_dims(tf.cast(mask, tf.float32), -1), mask

    def call(self, inputs, training=None):
        """Normalised log-mel (B, max_frames, M) for `inputs` = {"token_ids": (B, N), "durations": (B, N)}."""
        if not isinstance(inputs, dict) or not {"token_ids", "durations"} <= set(inputs):
            raise ValueError(
                "SpeechSynthesizer inputs must be a dict with 'token_ids' and 'durations', got "
                f"{sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__}."
            )
        hidden, mask = self.encode(inputs["token_ids"], training=training)
        predicted = ops.cast(self.duration_predictor(hidden, mask, training=training), "float32")  # (B, N)
        target = tf.math.log1p(tf.cast(tf.maximum(inputs["durations"], 0), tf.float32))
        weights = tf.cast(mask, tf.float32)
        error = tf.reduce_sum(weights * tf.square(predicted - target)) / tf.maximum(tf.reduce_sum(weights), 1.0)
        self.add_loss(self.duration_loss_weight * error)
        return self.decode(hidden, inputs["durations"], training=training)[0]

    def predict_durations(self, token_ids):
        """int32 (B, N): predicted frames per character (rounded to a multiple of `frames_per_step`; 0 on padding)."""
        hidden, mask = self.encode(token_ids)
        return self._durations(hidden, mask)

    def _durations(self, hidden, mask):
        log_durations = ops.cast(self.duration_predictor(hidden, mask), "float32")
        steps = tf.maximum(tf.round((tf.exp(log_durations) - 1.0) / self.frames_per_step), 0.0)  # no Expm1 in ONNX
        return tf.cast(steps, tf.int32) * self.frames_per_step * tf.cast(mask, tf.int32)

    def to_log_mel(self, normalized, mask):
        """Natural-log mel power (the front end's `normalize=False` features); silence past each utterance."""
        log_mel = normalized * self.mel_std + self.mel_mean
        silence = tf.fill(tf.shape(log_mel), tf.math.log(LOG_FLOOR))
        return tf.where(tf.expand_dims(mask, -1), log_mel, silence)

    def synthesize(self, token_ids, durations=None) -> dict:
        """Speech of right-padded character ids (B, N), with predicted (or the given) durations.

        Returns:
            dict of `waveform` float32 (B, (max_frames - 1) * frame_step + frame_length), zero past
            `waveform_lengths` (B,) samples; `log_mel` (B, max_frames, M) natural-log mel power;
            `frame_lengths` (B,); `durations` int32 (B, N) frames per character.
        """
        hidden, mask = self.encode(token_ids)
        if durations is None:
            durations = self._durations(hidden, mask)
        normalized, frame_mask = self.decode(hidden, durations)
        log_mel = self.to_log_mel(normalized, frame_mask)
        waveform = self.griffin_lim(log_mel)  # (B, S)
        frame_lengths = tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1)  # (B,)
        lengths = tf.where(frame_lengths > 0, (frame_lengths - 1) * self.frame_step + self.frame_length, 0)
        keep = tf.expand_dims(tf.range(tf.shape(waveform)[1]), 0) < tf.expand_dims(lengths, 1)
        return {
            "waveform": waveform * tf.cast(keep, waveform.dtype),
            "waveform_lengths": lengths,
            "log_mel": log_mel,
            "frame_lengths": frame_lengths,
            "durations": tf.cast(durations, tf.int32),
        }
