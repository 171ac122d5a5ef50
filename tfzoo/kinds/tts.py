"""The `tts` kind: speech synthesizers (`SpeechSynthesizer`): text in, 16 kHz waveform out; no decode loop.

A synthesizer predicts every frame at once (durations, length regulator,
frame decoder, Griffin-Lim: `tfzoo.models.speech_synthesizer`), so it has no
KV cache, no `generate`, `prefill` or `decode`: `generative = False`, and its
export is `export.synthesize_export` (`export_module`). The export's
signatures (docs/contract.md, "Speech synthesis"):

- `synthesize` (every format): `token_ids` int32 [B, T] (character ids,
  right-padded; T at most `max_sequence_length`) and `lengths` int32 [B] in;
  `waveform` float32 [B, max_samples] (zero past each row's length),
  `waveform_lengths` int32 [B], `log_mel` float32 [B, max_frames, num_mel_bins]
  (natural-log mel power; silence past the row), `frame_lengths` int32 [B],
  `durations` int32 [B, max_sequence_length] (frames per character) out. In
  the graph the ids are padded (or cut) to `max_sequence_length` columns,
  every id at or past a row's length becomes the pad id, ids are clamped into
  the vocabulary and lengths into [0, T]: TFLite does not bounds-check gathers.
- `serving_default` (SavedModel only): `texts` string [B] in; the text
  normalised in the graph as `tfzoo.data.tts_data.normalize_text` does it
  (lower case, single spaces, whole numbers 0-999 as words; ASCII digits),
  characters outside the model's alphabet dropped and the rest cut to
  `max_sequence_length`; the `synthesize` outputs plus `characters` int32 [B]
  (kept) and `dropped_characters` int32 [B] out.

The runtime side (numpy only) encodes texts with the report's `characters`
table (`encode_text`): the same normalisation; an empty text, a character the
model never saw or a text over `max_sequence_length` characters is a one-line
`RuntimeInputError` (refused, not dropped: `python -m tfzoo.speak` and the
edge app say which characters the model knows).

Example:
>>> encode_text("Call 42", {"a": 3, "c": 4, "l": 5, " ": 6, "f": 7, "o": 8, "r": 9, "t": 10, "y": 11,
...                         "w": 12}, 16)
[4, 3, 5, 5, 6, 7, 8, 9, 10, 11, 6, 10, 12, 8]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfzoo.data.tts_data import normalize_text
from tfzoo.kinds.base import ModelKind, ModelKindError, pad_rows
from tfzoo.runtime_errors import RuntimeInputError

# Parity texts of a run that is not on `tts:numbers` (whose held-out sentences are used instead): in the
# style of the held-out sentences, of different lengths; those the model cannot take are left out.
PARITY_TEXTS = (
    "call forty two",
    "set the timer to nineteen minutes",
    "go",
    "turn off the lights",
    "seven",
    "channel eighty",
)
NUM_PARITY_TEXTS = 5
SYNTHESIZE_OUTPUTS = ("waveform", "waveform_lengths", "log_mel", "frame_lengths", "durations")


def encode_text(text: str, characters: dict[str, int], max_length: int) -> list[int]:
    """Character ids of `normalize_text(text)`; `RuntimeInputError` (one line) for text the model cannot take.

    Args:
        text: str. Words to speak (numbers 0-999 are spelled out).
        characters: dict. Character -> id (`report["model"]["characters"]`).
        max_length: int. Most characters (`max_sequence_length`).
    """
    if not isinstance(text, str):
        raise RuntimeInputError(f"texts must be strings, got {type(text).__name__}")
    normal = normalize_text(text)
    if not normal:
        raise RuntimeInputError("the text is empty; expected words to speak, e.g. 'call forty two'")
    unknown = sorted({c for c in normal if c not in characters})
    if unknown:
        known = "".join(sorted(c for c in characters if c.strip())) or "none"
        raise RuntimeInputError(
            f"the text has character(s) {''.join(unknown)!r} the model never saw; it knows {known!r} and the space"
        )
    if len(normal) > max_length:
        raise RuntimeInputError(
            f"the text has {len(normal)} characters (after normalisation); the model takes at most {max_length}"
        )
    return [int(characters[c]) for c in normal]


def tokenizer_characters(tokenizer) -> dict[str, int]:
    """Character -> id of a char tokenizer (`CharTokenizer`), what `report["model"]["characters"]` holds."""
    if getattr(tokenizer, "type_name", None) != "char":
        raise RuntimeInputError(
            f"a speech synthesizer reads characters: its tokenizer must be 'char', not {tokenizer.type_name!r}"
        )
    first = len(tokenizer.special_tokens)
    return {c: first + i for i, c in enumerate(tokenizer.characters)}


class SynthesizerKind(ModelKind):
    """Speech synthesizers (`SpeechSynthesizer`): characters -> waveform with `synthesize`."""

    name = "tts"
    model_classes = ("SpeechSynthesizer",)
    required_methods = ("synthesize",)
    generative = False
    export_module = "export.synthesize_export"
    description = "a speech synthesizer's export (text to speech: synthesize)"
    signatures = ("synthesize",)

    # ---- facts of the run (no TensorFlow) ----

    def report_fields(self, model_config: dict, tokenizer) -> dict[str, Any]:
        """The audio facts and the character table the runtimes and the apps read."""
        frame_step, frame_length = int(model_config.get("frame_step", 160)), int(model_config.get("frame_length", 400))
        max_frames = int(model_config.get("max_frames", 300))
        return {
            "sample_rate": int(model_config.get("sample_rate", 16000)),
            "frame_step": frame_step,
            "frame_length": frame_length,
            "max_frames": max_frames,
            "max_samples": (max_frames - 1) * frame_step + frame_length,
            "num_mel_bins": int(model_config.get("num_mel_bins", 80)),
            "frames_per_step": int(model_config.get("frames_per_step", 1)),
            "griffin_lim_iterations": int(model_config.get("griffin_lim_iterations", 32)),
            "characters": tokenizer_characters(tokenizer),
            "normalization": "lower case, single spaces, whole numbers 0-999 as words (tfzoo.data.tts_data)",
        }

    def resolve_max_length(self, max_length, limit, config):
        """Characters per text: by default `max_sequence_length` (the width of `synthesize`), else 1 to it."""
        if max_length is None:
            return limit
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= limit:
            raise ModelKindError(
                f"--max_length (characters per text) must be an integer from 1 to the model's "
                f"max_sequence_length={limit}, got {max_length!r}"
            )
        return max_length

    # ---- runtime side (numpy) ----

    def serving_feed(self, info, prompts):
        return "texts", [str(p) for p in prompts]

    def encode_texts(self, info: dict, texts: Sequence[str], max_length: int | None = None) -> dict[str, np.ndarray]:
        """`token_ids` int32 (B, max_sequence_length) right-padded and `lengths` (B,) of `texts` (`encode_text`)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise RuntimeInputError("no texts to speak; pass one or more strings")
        width = int(info["max_sequence_length"])
        limit = width if max_length is None else int(max_length)
        rows = [encode_text(text, dict(info["characters"]), limit) for text in texts]
        lengths = np.asarray([len(row) for row in rows], np.int32)
        return {"token_ids": pad_rows(rows, width, int(info["pad_id"])), "lengths": lengths}

    def check_synthesize_inputs(self, info: dict, token_ids, lengths) -> dict[str, np.ndarray]:
        """Checked `synthesize` inputs: integer ids (B, T), T at most `max_sequence_length`; lengths in [1, T]."""
        token_ids, lengths = np.asarray(token_ids), np.asarray(lengths)
        if token_ids.ndim != 2 or token_ids.shape[0] == 0 or not np.issubdtype(token_ids.dtype, np.integer):
            raise RuntimeInputError(f"token_ids must be integers (batch, characters), got shape {token_ids.shape}")
        limit = int(info["max_sequence_length"])
        if token_ids.shape[1] > limit:
            raise RuntimeInputError(f"token_ids has {token_ids.shape[1]} columns; the model takes at most {limit}")
        if lengths.shape != (token_ids.shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
            raise RuntimeInputError(f"lengths must be integers of shape ({token_ids.shape[0]},), got {lengths.shape}")
        if lengths.min() < 1 or lengths.max() > token_ids.shape[1]:
            raise RuntimeInputError(f"lengths must lie in [1, {token_ids.shape[1]}], got {lengths.tolist()}")
        width = np.full((token_ids.shape[0], limit), int(info["pad_id"]), np.int32)
        width[:, : token_ids.shape[1]] = token_ids
        return {"token_ids": width, "lengths": lengths.astype(np.int32)}

    # ---- model side (TensorFlow) ----

    def __init__(self, model=None):
        self.model = model  # no KV cache: none of the decoder facts of `ModelKind`

    def signature_specs(self) -> dict[str, dict]:
        """`{signature: input specs}` of the export's numeric signatures."""
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        specs = {
            "token_ids": tf.TensorSpec([None, None], tf.int32, name="token_ids"),
            "lengths": tf.TensorSpec([None], tf.int32, name="lengths"),
        }
        return {"synthesize": specs}

    def prepare(self, inputs: dict) -> dict:
        """In-graph guards: ids padded/cut to `max_sequence_length`, padding past `lengths`, ids in the vocabulary."""
        import tensorflow as tf  # noqa: PLC0415 (TensorFlow)

        from tfzoo.decoding.graph_ops import clamp  # noqa: PLC0415 (TensorFlow)

        model, width = self.model, int(self.model.max_sequence_length)
        token_ids = tf.cast(inputs["token_ids"], tf.int32)[:, :width]
        token_ids = tf.pad(token_ids, [[0, 0], [0, width - tf.shape(token_ids)[1]]], constant_values=model.pad_id)
        token_ids = tf.reshape(token_ids, [-1, width])  # static width: one shape for every text
        lengths = clamp(tf.cast(inputs["lengths"], tf.int32), 0, width)
        real = tf.expand_dims(tf.range(width), 0) < tf.expand_dims(lengths, 1)  # (B, T)
        token_ids = tf.where(real, clamp(token_ids, 0, int(model.vocabulary_size) - 1), model.pad_id)
        return {"token_ids": token_ids, "lengths": lengths}

    def synthesize(self, inputs: dict) -> dict:
        """The `synthesize` outputs of `inputs` (`token_ids`, `lengths`): see the module docstring."""
        return self.model.synthesize(self.prepare(inputs)["token_ids"])

    def parity_inputs(self, run, max_length: int) -> dict[str, Any]:
        """Held-out sentences (the run's `tts:numbers` validation texts, else `PARITY_TEXTS`) of different lengths.

        The texts the model can take (alphabet, at most `max_length` characters) are sorted by length and
        `NUM_PARITY_TEXTS` of them picked from the shortest to the longest.
        """
        info = {
            "characters": tokenizer_characters(run.tokenizer),
            "max_sequence_length": int(run.model_config["max_sequence_length"]),
            "pad_id": int(run.tokenizer.pad_id),
        }
        candidates = list(PARITY_TEXTS)
        if str(run.config.get("dataset", "")).startswith("tts:"):
            from tfzoo.data.speech_data import split_texts  # noqa: PLC0415 (texts only: no audio, no espeak-ng)

            candidates = split_texts(int(run.config.get("seed", 0)))[1] + candidates
        usable = []
        for text in dict.fromkeys(candidates):
            try:
                encode_text(text, info["characters"], max_length)
            except RuntimeInputError:
                continue  # a character or a length this model does not take
            usable.append(text)
        if not usable:
            raise ModelKindError(f"no parity text fits the model (at most {max_length} characters of its alphabet)")
        usable.sort(key=len)
        picks = np.unique(np.linspace(0, len(usable) - 1, NUM_PARITY_TEXTS).round().astype(int))
        texts = [usable[i] for i in picks]
        return {"texts": texts, **self.encode_texts(info, texts, max_length)}


KIND = SynthesizerKind
