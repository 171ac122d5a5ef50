"""`tfds:` speech specs under `tfds.testing.mock_data` (no download, no network).

mock_data keeps the builder's real features info (its `Audio` sample rate) and
generates random examples from it; with no metadata files it knows no split
names, so any split loads (the same examples for each). The spec must return
exactly the mocked waveforms and transcripts, feed the `asr` task the arrays a
`speech:DIR` folder of the same utterances feeds it, and refuse a wrong rate or
missing fields in one line before any audio is read.
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from asr_helpers import tiny_asr_config
from tfzoo.data.errors import DatasetError
from tfzoo.data.speech_data import load_speech_data, write_wav
from tfzoo.data.text_datasets import tfds_split_names
from tfzoo.training.speech_tasks import SpeechTask
from tfzoo.training.validate import resolve_config

NUM_EXAMPLES = 5


def _mocked(name: str, split: str) -> list[dict]:
    """The examples mock_data yields for `name` (read straight from tfds, inside an active mock)."""
    return list(tfds.load(name, split=split, download=False).as_numpy_iterator())


def test_librispeech_yields_the_mocked_waveforms_and_texts():
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        data = load_speech_data("tfds:librispeech")
        expected = _mocked("librispeech", "train")
    assert len(data.train_texts) == NUM_EXAMPLES == len(data.validation_texts)
    assert data.train_audio.dtype == np.int16 and data.sample_rate == 16000
    for row, example in enumerate(expected):
        samples = example["speech"]
        assert data.train_lengths[row] == samples.size
        np.testing.assert_array_equal(data.train_audio[row, : samples.size], samples)
        assert not data.train_audio[row, samples.size :].any()
        assert data.train_texts[row] == " ".join(example["text"].decode().lower().split())
    assert len(set(data.train_lengths.tolist())) > 1  # the rows really differ in length


def test_speech_commands_maps_the_label_name_to_the_text():
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        data = load_speech_data("tfds:speech_commands")
        expected = _mocked("speech_commands", "validation")
        names = tfds.builder("speech_commands").info.features["label"].names
    assert data.validation_texts == tuple(names[e["label"]].replace("_", " ").strip() for e in expected)
    np.testing.assert_array_equal(data.validation_audio[0, : expected[0]["audio"].size], expected[0]["audio"])


def test_tfds_feeds_the_task_what_a_folder_of_the_same_utterances_feeds(tmp_path):
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        examples = _mocked("librispeech", "train")
        from_tfds = SpeechTask(resolve_config(tiny_asr_config(tmp_path, dataset="tfds:librispeech")))
        batch, labels = next(iter(from_tfds.train_dataset(0)))
    for split in ("train", "validation"):
        (tmp_path / "dir" / split).mkdir(parents=True)
        for i, example in enumerate(examples):
            write_wav(str(tmp_path / "dir" / split / f"u{i}.wav"), example["speech"])
            (tmp_path / "dir" / split / f"u{i}.txt").write_text(example["text"].decode())
    from_dir = SpeechTask(resolve_config(tiny_asr_config(tmp_path, dataset=f"speech:{tmp_path / 'dir'}")))
    for ours, theirs in zip(from_tfds.train + from_tfds.validation, from_dir.train + from_dir.validation, strict=True):
        np.testing.assert_array_equal(ours, theirs)  # audio, lengths, target ids, labels
    assert from_tfds.validation_texts == from_dir.validation_texts
    # The training batches scale the int16 samples to [-1, 1] floats.
    audio = batch["audio"].numpy()
    assert audio.dtype == np.float32 and audio.shape[1] == from_tfds.max_audio_samples
    row = int(np.flatnonzero(batch["audio_lengths"].numpy() == examples[0]["speech"].size)[0])
    np.testing.assert_allclose(audio[row, : examples[0]["speech"].size], examples[0]["speech"] / 32768.0, rtol=1e-6)
    assert labels.shape == batch["target_ids"].shape


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("tfds:gtzan", "tfds:gtzan: audio field 'audio' has a sample rate of 22050 Hz; expected 16000 Hz"),
        ("tfds:librispeech:audio,text", "no audio field 'audio'; expected a 16 kHz mono Audio feature"),
        ("tfds:librispeech:speech,words", "no transcript field 'words'; expected a Text or ClassLabel feature"),
        ("tfds:librispeech:text,text", "field 'text' is Text, expected a 16 kHz mono Audio feature"),
        ("tfds:librispeech:speech,speaker_id", "field 'speaker_id' is Tensor, expected a Text or ClassLabel"),
        ("tfds:librispeech:speech", r"name the fields as tfds:NAME\[/CONFIG\]:AUDIO,TEXT"),
        ("tfds:mnist", "no audio field 'speech'; expected a 16 kHz mono Audio feature .fields: image, label."),
    ],
)
def test_a_wrong_rate_or_field_is_a_one_line_error(spec, expected):
    with tfds.testing.mock_data(num_examples=2), pytest.raises(DatasetError, match=expected) as error:
        load_speech_data(spec)
    assert "\n" not in str(error.value)


def test_long_utterances_are_left_out_and_none_left_is_an_error():
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        lengths = sorted(e["speech"].size for e in _mocked("librispeech", "train"))
        cut = lengths[len(lengths) // 2]
        data = load_speech_data("tfds:librispeech", max_seconds=cut / 16000)
        assert data.train_lengths.max() <= cut and len(data.train_texts) == sum(n <= cut for n in lengths)
        assert len(load_speech_data("tfds:librispeech", max_examples=2).train_texts) == 2
        with pytest.raises(
            DatasetError, match=r"no train utterance of 1 sample to .* s with a transcript \(raise max_audio_seconds"
        ):
            load_speech_data("tfds:librispeech", max_seconds=(lengths[0] - 1) / 16000)


def test_split_names_of_prepared_datasets():
    librispeech = {"train_clean100", "train_clean360", "train_other500", "dev_clean", "dev_other", "test_clean"}
    assert tfds_split_names(librispeech) == ("train_clean100+train_clean360+train_other500", "dev_clean")
    assert tfds_split_names({"train", "validation", "test"}) == ("train", "validation")
    assert tfds_split_names({"train", "test"}) == ("train", "test")
    assert tfds_split_names(set()) == ("train", "validation")  # mock data: any split loads


def test_a_tiny_run_trains_on_a_label_only_tfds_dataset(tmp_path):
    """`python -m tfzoo.train` end to end on mocked speech_commands clips of 0.5-1 s (a tone per label)."""
    import json

    import tensorflow as tf

    from tfzoo.training.train_lib import train_and_evaluate

    def as_dataset(self, *args, **kwargs):
        def examples():
            rng = np.random.default_rng(0)
            for i in range(12):
                label = i % 3
                t = np.arange(int(rng.integers(8000, 16001))) / 16000
                wave = 0.3 * np.sin(2 * np.pi * (300 + 400 * label) * t) + 0.01 * rng.standard_normal(t.size)
                yield {"audio": np.round(wave * 32767).astype(np.int16), "label": label}

        signature = {"audio": tf.TensorSpec((None,), tf.int16), "label": tf.TensorSpec((), tf.int64)}
        return tf.data.Dataset.from_generator(examples, output_signature=signature)

    config = tiny_asr_config(tmp_path / "data", dataset="tfds:speech_commands", max_audio_seconds=1.0)
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        train_and_evaluate(config, str(tmp_path / "run"))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2] and records[0]["decoded_examples"] == 12
    assert 0.0 <= records[0]["wer"] and np.isfinite(records[0]["val_loss"])
