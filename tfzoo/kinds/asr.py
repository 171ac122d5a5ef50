"""The `asr` kind: speech recognizers (`SpeechRecognizer`): 16 kHz waveforms in, transcripts out.

Conditioning inputs: `audio` float32 [B, S] (16 kHz mono in [-1, 1], S at
most `max_audio_samples`; int16 is scaled by 1/32768 by the runtimes) and
`audio_lengths` int32 [B] (real samples per row). In the graph the audio is
padded to `max_audio_samples` (static shapes) and the lengths clamped to
[frame_length, max_audio_samples]. The step reads `cross_k_<i>`, `cross_v_<i>`
[B, num_heads, N, head_dim] over the N encoder steps and `audio_lengths`
(the memory mask is built from them in the graph). `serving_default` takes
`audio` [B, S] (every sample real). Parity and the quantized loss check run on
held-out utterances of the run's `speech:` or `tfds:` dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfzoo.kinds.base import EncoderKind, ModelKindError
from tfzoo.runtime_errors import RuntimeInputError

NUM_PARITY_UTTERANCES = 4
VALIDATION_EXAMPLES = 32
MAX_FILE_SECONDS = 60.0  # a WAV file longer than this is refused before it is read into memory


def check_audio(audio, audio_lengths, max_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Checks a batch of waveforms (B, S) and lengths (B,); returns float32 audio and int32 lengths.

    Raises:
        RuntimeInputError: no audio, one waveform without a batch axis, stereo or a wrong rank, too many
            samples, an integer type other than int16, or lengths that do not match.

    Example:
    >>> audio, lengths = check_audio(np.zeros((1, 800), np.int16), None, 1600)
    >>> audio.dtype.name, lengths.tolist()
    ('float32', [800])
    """
    if audio is None:
        raise RuntimeInputError("this is a speech-recognition export: pass audio (batch, samples) at 16 kHz")
    audio = np.asarray(audio)
    if audio.ndim == 1:
        raise RuntimeInputError(f"audio must be a batch (batch, samples); got one waveform of {audio.shape[0]} samples")
    if audio.ndim != 2 or audio.shape[0] == 0 or audio.shape[1] == 0:
        raise RuntimeInputError(f"audio must be mono waveforms (batch, samples) at 16 kHz, got shape {audio.shape}")
    if audio.shape[1] > max_samples:
        raise RuntimeInputError(
            f"audio has {audio.shape[1]} samples; the model takes at most {max_samples} ({max_samples / 16000:g} s)"
        )
    if audio.dtype == np.int16:
        audio = audio.astype(np.float32) / np.float32(32768.0)
    elif not np.issubdtype(audio.dtype, np.floating):
        raise RuntimeInputError(f"audio must be float (values in [-1, 1]) or int16, got {audio.dtype}")
    if audio_lengths is None:
        audio_lengths = np.full((audio.shape[0],), audio.shape[1], np.int32)
    audio_lengths = np.asarray(audio_lengths)
    if audio_lengths.shape != (audio.shape[0],) or not np.issubdtype(audio_lengths.dtype, np.integer):
        raise RuntimeInputError(
            f"audio_lengths must be integers of shape ({audio.shape[0]},), got {audio_lengths.shape}"
        )
    if audio_lengths.min() < 1 or audio_lengths.max() > audio.shape[1]:
        raise RuntimeInputError(f"audio_lengths must lie in [1, {audio.shape[1]}], got {audio_lengths.tolist()}")
    return audio.astype(np.float32), audio_lengths.astype(np.int32)


def _utterances(run, count: int):
    """The first `count` held-out utterances of the run's `speech:` dataset (from its cache)."""
    dataset = str(run.config.get("dataset", ""))
    if not dataset.startswith(("speech:", "tfds:")):
        raise ModelKindError(f"no held-out utterances for dataset {dataset!r}; a speech model trains on speech:/tfds:")
    from tfzoo.data.speech_data import load_speech_data  # noqa: PLC0415 (imported only when needed)

    try:
        data = load_speech_data(
            dataset,
            num_train=int(run.config.get("num_train", 6000)),
            num_validation=int(run.config.get("num_validation", 400)),
            seed=int(run.config.get("seed", 0)),
            data_dir=str(run.config.get("data_dir", "")),
            max_seconds=float(run.config.get("max_audio_seconds", 3.0)),
            max_examples=int(run.config.get("max_examples", 0)),
        )
    except ValueError as error:
        raise ModelKindError(f"cannot load the task {dataset!r} for parity inputs: {error}") from None
    audio = data.validation_audio[:count].astype(np.float32) / np.float32(32768.0)
    return audio, data.validation_lengths[:count].astype(np.int32), list(data.validation_texts[:count])


class AsrKind(EncoderKind):
    """Speech recognizers (`SpeechRecognizer`): `audio` float32 (B, S) at 16 kHz and `audio_lengths` (B,)."""

    name = "asr"
    model_classes = ("SpeechRecognizer",)
    condition_names = ("audio", "audio_lengths")
    description = "a speech-recognition export"
    start_signature = "transcribe"  # audio + audio_lengths (+ knobs) -> sequences, sequence_lengths, scores

    def report_fields(self, model_config, tokenizer):
        return {
            **super().report_fields(model_config, tokenizer),
            "sample_rate": int(model_config.get("sample_rate", 16000)),
            "max_audio_samples": int(model_config["max_audio_samples"]),
        }

    # ---- runtime side ----

    def check_conditions(self, info, conditions):
        given = {**conditions}
        if given.get("audio") is not None and given.get("audio_lengths") is None:
            given["audio_lengths"] = np.full((np.shape(given["audio"])[0],), np.shape(given["audio"])[-1], np.int32)
        given = super().check_conditions(info, given)
        audio, lengths = check_audio(given["audio"], given["audio_lengths"], int(info["max_audio_samples"]))
        return {"audio": audio, "audio_lengths": lengths}

    def context_names(self, num_layers):
        return super().context_names(num_layers) + ["audio_lengths"]

    def encoder_context(self, conditions, encoded):
        return {**encoded, "audio_lengths": conditions["audio_lengths"]}

    def serving_feed(self, info, prompts):
        audio, _ = check_audio(prompts, None, int(info["max_audio_samples"]))
        return "audio", audio

    def cli_conditions(self, prompt, image_path, tokenizer, max_source_length, audio_path=None):
        """`{"audio": (1, S), "audio_lengths": (1,)}` from `--audio` (a 16 kHz mono 16-bit WAV file)."""
        if audio_path is None:
            raise ValueError("this model is a speech recognizer: pass --audio=PATH, a 16 kHz mono 16-bit WAV file")
        if prompt or image_path:
            raise ValueError("a speech recognizer takes --audio, not --prompt or --image")
        from tfzoo.data.speech_data import load_wav  # noqa: PLC0415 (imported only when needed)

        audio = load_wav(audio_path, max_seconds=MAX_FILE_SECONDS)  # the model's own limit is checked next
        return {"audio": audio[None], "audio_lengths": np.array([audio.size], np.int32)}

    def keras_conditions(self, conditions, model):
        samples, limit = conditions["audio"].shape[1], int(model.max_audio_samples)
        if samples > limit:
            raise ValueError(
                f"the audio lasts {samples / 16000:.2f} s; expected at most {limit / 16000:g} s "
                f"({limit} samples at 16 kHz), the model's max_audio_samples"
            )
        return conditions

    # ---- model side ----

    def condition_specs(self, batch_size=None):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        return {
            "audio": tf.TensorSpec([batch_size, None], tf.float32, name="audio"),
            "audio_lengths": tf.TensorSpec([batch_size], tf.int32, name="audio_lengths"),
        }

    def context_specs(self):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        specs = self._cross_specs(int(self.model.max_memory_length))
        specs["audio_lengths"] = tf.TensorSpec([None], tf.int32, name="audio_lengths")
        return specs

    def _clamp_lengths(self, lengths, width):
        from tfzoo.decoding.graph_ops import clamp  # noqa: PLC0415 (imported only when needed)

        return clamp(lengths, int(self.model.frame_length), width)

    def prepare(self, conditions):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        limit = int(self.model.max_audio_samples)
        audio = tf.cast(conditions["audio"], tf.float32)[:, :limit]
        width = tf.shape(audio)[1]
        lengths = self._clamp_lengths(tf.cast(conditions["audio_lengths"], tf.int32), tf.maximum(width, 1))
        audio = tf.reshape(tf.pad(audio, [[0, 0], [0, limit - width]]), [-1, limit])
        return {"audio": audio, "audio_lengths": lengths}

    def encode(self, conditions):
        conditions = self.prepare(conditions)
        return self._cross_outputs(self.model.encode(conditions["audio"], conditions["audio_lengths"]))

    def step(self, token_ids, positions, cache, context):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        keys = context["cross_k_0"]
        width = keys.shape[2] if keys.shape[2] is not None else tf.shape(keys)[2]  # static in the export
        lengths = self._clamp_lengths(tf.cast(context["audio_lengths"], tf.int32), int(self.model.max_audio_samples))
        mask = self.model.memory_mask(lengths, width)  # (B, N)
        return self.model.call_with_cache(token_ids, positions, cache, self._cross(context), mask)

    def init_decoding_cache(self, conditions, max_length: int):
        return self.model.init_decoding_cache(conditions["audio"], conditions["audio_lengths"], max_length)

    def serving_input_spec(self):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        return tf.TensorSpec([None, None], tf.float32, name="audio")

    def serving_conditions(self, tokenizer, inputs):
        """Waveforms (B, S), every sample real -> `audio`, `audio_lengths` = S."""
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        shape = tf.shape(inputs)
        return {"audio": inputs, "audio_lengths": tf.fill(shape[:1], shape[1])}

    # ---- parity ----

    def parity_inputs(self, run, max_length) -> dict[str, Any]:
        """Held-out utterances (voices never heard in training), the start token as the decoder prompt."""
        audio, lengths, texts = _utterances(run, NUM_PARITY_UTTERANCES)
        return self._start_prompts(run.tokenizer, texts, {"audio": audio, "audio_lengths": lengths}, max_length)

    def validation_examples(self, run, max_length):
        """Teacher-forced held-out transcripts (padding masked)."""
        audio, lengths, texts = _utterances(run, VALIDATION_EXAMPLES)
        targets = [list(run.tokenizer.encode(t)) for t in texts]
        conditions = {"audio": audio, "audio_lengths": lengths}
        return self._teacher_forced(run.tokenizer, targets, conditions, max_length)


KIND = AsrKind
