"""`tfds:` speech datasets: utterances and transcripts of a dataset already prepared with TensorFlow Datasets.

Spec `tfds:NAME[/CONFIG][:AUDIO,TEXT]`, e.g. `tfds:librispeech`,
`tfds:speech_commands`, `tfds:librispeech:speech,text`.

- AUDIO: a tfds `Audio` feature, mono (shape `(None,)`), whose sample rate in
  the builder's features info is 16000 Hz. Defaults to `speech` if the dataset
  has it, else `audio` (librispeech: `speech`; speech_commands: `audio`).
  Integer samples are int16 values (scaled by 1/32768 by the pipeline, as for
  `speech:DIR`); float samples must lie in [-1, 1].
- TEXT: a `Text` feature (the transcript) or a `ClassLabel` (its label name is
  the transcript, underscores as spaces: speech_commands' `_silence_` is
  "silence"). Defaults to `text` if present, else `label`. Transcripts are
  lower-cased with their whitespace collapsed, as `speech:DIR`'s.
- Splits (`text_datasets.tfds_split_names`): `train` (librispeech: every
  `train*` split) trains; `validation` (librispeech: `dev_clean`), else
  `test`, validates. `max_examples` (0 = all) caps the examples read per split.
- Utterances longer than `max_seconds`, or empty, are left out (counted in the
  log); a split left with none is an error.

Nothing is downloaded (`download=False`): run `tfds build NAME` first. A
missing field, a field of the wrong kind, stereo audio or another sample rate
is a one-line `DatasetError` naming what was expected, raised from the
builder's info before any audio is read.
"""

from __future__ import annotations

import numpy as np
from absl import logging

from tfzoo.data.audio_arrays import SAMPLE_RATE, pad_int16
from tfzoo.data.errors import DatasetError
from tfzoo.data.text_datasets import parse_tfds_spec, tfds_examples

AUDIO_FIELDS = ("speech", "audio")  # the default audio field: the first the dataset has
TEXT_FIELDS = ("text", "label")  # the default transcript field: the first the dataset has


def _fields(spec: str, field: str | None, names) -> tuple[str, str]:
    """`(audio field, text field)` from the spec's `:AUDIO,TEXT` or the defaults."""
    if field is not None:
        parts = field.split(",")
        if len(parts) != 2 or not all(parts):
            raise DatasetError(f"{spec}: name the fields as tfds:NAME[/CONFIG]:AUDIO,TEXT (e.g. :speech,text)")
        return parts[0], parts[1]
    audio = next((name for name in AUDIO_FIELDS if name in names), AUDIO_FIELDS[0])
    text = next((name for name in TEXT_FIELDS if name in names), TEXT_FIELDS[0])
    return audio, text


def check_features(spec: str, features, audio: str, text: str) -> None:
    """Refuses (one line) a missing or wrong audio/text field, stereo audio or a rate other than 16 kHz."""
    import tensorflow_datasets as tfds  # noqa: PLC0415 (tfds: specs only)

    names = sorted(features.keys())
    if audio not in names:
        raise DatasetError(
            f"{spec}: no audio field {audio!r}; expected a 16 kHz mono Audio feature (fields: {', '.join(names)})"
        )
    feature = features[audio]
    if not isinstance(feature, tfds.features.Audio):
        raise DatasetError(f"{spec}: field {audio!r} is {type(feature).__name__}, expected a 16 kHz mono Audio feature")
    rate = getattr(feature, "sample_rate", None)
    if rate != SAMPLE_RATE:
        said = "no sample rate in its features info" if rate is None else f"a sample rate of {rate} Hz"
        raise DatasetError(f"{spec}: audio field {audio!r} has {said}; expected {SAMPLE_RATE} Hz")
    if tuple(feature.shape) != (None,):
        raise DatasetError(f"{spec}: audio field {audio!r} has shape {tuple(feature.shape)}; expected mono (None,)")
    if text not in names:
        raise DatasetError(
            f"{spec}: no transcript field {text!r}; expected a Text or ClassLabel feature (fields: {', '.join(names)})"
        )
    if not isinstance(features[text], tfds.features.Text | tfds.features.ClassLabel):
        kind = type(features[text]).__name__
        raise DatasetError(f"{spec}: field {text!r} is {kind}, expected a Text or ClassLabel feature (the transcript)")


def _int16(spec: str, samples: np.ndarray) -> np.ndarray:
    """int16 samples of one utterance: integers as they are (they must fit int16), floats in [-1, 1] scaled."""
    samples = np.asarray(samples)
    if np.issubdtype(samples.dtype, np.floating):
        if samples.size and np.abs(samples).max() > 1.0:
            raise DatasetError(f"{spec}: float audio reaches {np.abs(samples).max():.3g}; expected values in [-1, 1]")
        return np.round(samples * 32767.0).astype(np.int16)
    if samples.size and (samples.min() < -32768 or samples.max() > 32767):
        raise DatasetError(f"{spec}: integer audio outside the int16 range; expected 16-bit samples")
    return samples.astype(np.int16)


def load_tfds_speech(spec: str, data_dir: str = "", max_seconds: float = 3.0, max_examples: int = 0) -> dict:
    """The arrays of a `SpeechData` (`train_audio`, `train_lengths`, `train_texts`, `train_voices`, ...).

    Args:
        spec: str. `tfds:NAME[/CONFIG][:AUDIO,TEXT]`.
        data_dir: str. Where the prepared data lives ("" = tfds's default). Defaults to "".
        max_seconds: float. Longer utterances are left out. Defaults to 3.
        max_examples: int. Examples read per split, 0 = all. Defaults to 0.

    Raises:
        DatasetError: a bad spec, an unknown or unprepared dataset, wrong fields or rate, no utterance left.

    Example:
    >>> import tensorflow_datasets as tfds
    >>> with tfds.testing.mock_data(num_examples=3):
    ...     arrays = load_tfds_speech("tfds:speech_commands")
    >>> arrays["train_audio"].dtype.name, len(arrays["validation_texts"])
    ('int16', 3)
    """
    rest = spec[len("tfds:") :]
    _, _, field = parse_tfds_spec(rest)
    chosen = {}

    def check(info):
        chosen["fields"] = _fields(spec, field, info.features.keys())
        check_features(spec, info.features, *chosen["fields"])
        chosen["features"] = info.features

    _, train, validation = tfds_examples(rest, data_dir or None, max_examples, check=check)
    audio_field, text_field = chosen["fields"]
    text_feature = chosen["features"][text_field]
    max_samples = int(max_seconds * SAMPLE_RATE)
    arrays = {}
    for split, columns in (("train", train), ("validation", validation)):
        kept, dropped = [], 0
        for samples, value in zip(columns[audio_field], columns[text_field], strict=True):
            if hasattr(text_feature, "int2str"):  # a ClassLabel: the label's name
                value = text_feature.int2str(int(value)).replace("_", " ")
            elif isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            text = " ".join(str(value).lower().split())
            if not 0 < np.size(samples) <= max_samples or not text:
                dropped += 1
                continue
            kept.append((_int16(spec, samples), text))
        if dropped:
            total = dropped + len(kept)
            logging.info(
                "%s: left out %d of %d %s utterances (empty, or over %g s)", spec, dropped, total, split, max_seconds
            )
        if not kept:
            raise DatasetError(
                f"{spec}: no {split} utterance of 1 sample to {max_seconds:g} s with a transcript "
                f"(raise max_audio_seconds?)"
            )
        audio, lengths = pad_int16([w for w, _ in kept])
        arrays.update({f"{split}_audio": audio, f"{split}_lengths": lengths})
        arrays.update({f"{split}_texts": np.array([t for _, t in kept]), f"{split}_voices": np.array([""] * len(kept))})
    return arrays
