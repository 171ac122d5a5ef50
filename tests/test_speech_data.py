"""The `speech:` datasets: espeak-ng utterances made deterministically, split by text and voice; bad audio refused.

A handful of utterances is generated per test (espeak-ng, ~30 ms each); the
cache must return what generation made, a second generation from the same
seed the same samples; `speech:DIR` reads .wav + .txt pairs; every kind of bad
audio gives one line naming what was expected.
"""

import io
import os
import wave

import numpy as np
import pytest

from tfzoo.data import speech_data
from tfzoo.data.errors import DatasetError
from tfzoo.data.speech_data import SAMPLE_RATE, load_speech_data, load_wav, read_wav, resample, write_wav


def _wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(np.asarray(samples).tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech_cache")
    return folder, load_speech_data(num_train=6, num_validation=3, seed=3, data_dir=str(folder))


def test_generation_is_deterministic_and_cached(small, tmp_path):
    folder, data = small
    cached = os.listdir(folder / "speech")
    assert len(cached) == 1 and cached[0].startswith("numbers-") and cached[0].endswith(".npz")
    again = load_speech_data(num_train=6, num_validation=3, seed=3, data_dir=str(tmp_path))  # generated anew
    reloaded = load_speech_data(num_train=6, num_validation=3, seed=3, data_dir=str(folder))  # from the cache
    for other in (again, reloaded):
        np.testing.assert_array_equal(other.train_audio, data.train_audio)
        np.testing.assert_array_equal(other.validation_lengths, data.validation_lengths)
        assert other.train_texts == data.train_texts and other.validation_voices == data.validation_voices
    other_seed = load_speech_data(num_train=6, num_validation=3, seed=4, data_dir=str(tmp_path))
    assert other_seed.train_texts != data.train_texts
    assert len(os.listdir(tmp_path / "speech")) == 2  # one file per (seed, sizes, ...); no temporary left


def test_audio_is_16khz_int16_speech_with_its_lengths(small):
    _, data = small
    assert data.sample_rate == SAMPLE_RATE and data.train_audio.dtype == np.int16
    assert data.train_audio.shape == (6, data.train_lengths.max())
    for audio, length in zip(data.train_audio, data.train_lengths):
        assert 0.3 * SAMPLE_RATE < length <= 3 * SAMPLE_RATE
        assert not audio[length:].any() and np.abs(audio[:length]).max() > 0.05 * 32767  # padding is zero


def test_split_is_by_text_and_by_voice(small):
    train_texts, validation_texts = speech_data.split_texts(seed=0)
    assert len(validation_texts) > 100 and not set(train_texts) & set(validation_texts)
    train_words = {w for t in train_texts for w in t.split()}
    assert all(set(t.split()) <= train_words for t in validation_texts)
    variants = [{v.split("+")[1] for v in speech_data.voices(split)} for split in ("train", "validation")]
    assert not variants[0] & variants[1] and len(variants[0]) >= 15 and len(variants[1]) >= 4
    _, data = small
    assert not set(data.train_texts) & set(data.validation_texts)
    assert {v.split("+")[1] for v in data.validation_voices} <= set(speech_data.VALIDATION_VARIANTS)
    assert {v.split("+")[1] for v in data.train_voices} <= set(speech_data.TRAIN_VARIANTS)


def test_resampling_keeps_a_tone_and_its_level():
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(ESPEAK := 22050) / ESPEAK)
    out = resample(tone, ESPEAK)
    assert out.shape == (SAMPLE_RATE,) and out.dtype == np.float32
    assert int(np.abs(np.fft.rfft(out)).argmax()) == 440
    assert abs(float(np.abs(out).max()) - 0.5) < 0.01


def test_folder_of_wav_and_txt_pairs(tmp_path):
    rng = np.random.default_rng(0)
    for split, names in (("train", ["a", "b"]), ("validation", ["c"])):
        os.makedirs(tmp_path / split)
        for name in names:
            write_wav(str(tmp_path / split / f"{name}.wav"), 0.1 * rng.standard_normal(800 + 100 * len(name)))
            (tmp_path / split / f"{name}.txt").write_text(f"  Hello {name.upper()}\n")
    data = load_speech_data(f"speech:{tmp_path}")
    assert data.train_texts == ("hello a", "hello b") and data.validation_texts == ("hello c",)
    assert data.train_lengths.tolist() == [900, 900] and data.validation_audio.shape == (1, 900)
    os.remove(tmp_path / "train" / "b.txt")
    with pytest.raises(DatasetError, match=r"b.wav has no transcript; expected .*b.txt beside it"):
        load_speech_data(f"speech:{tmp_path}")


@pytest.mark.parametrize(
    "data, expected",
    [
        (_wav_bytes(np.zeros(800, np.int16), rate=22050), "has a sample rate of 22050 Hz; expected 16000 Hz"),
        (_wav_bytes(np.zeros(1600, np.int16), channels=2), "has 2 channels; expected mono"),
        (_wav_bytes(np.zeros(800, np.uint8), width=1), "has 8-bit samples; expected 16-bit PCM"),
        (_wav_bytes(np.zeros(0, np.int16)), "holds no audio"),
        (_wav_bytes(np.zeros(4 * SAMPLE_RATE, np.int16)), "lasts 4.00 s; expected at most 3 s"),
        (b"not audio at all, just text", "is not a WAV file .*expected 16 kHz mono 16-bit PCM WAV"),
    ],
)
def test_bad_audio_is_a_one_line_error_naming_what_was_expected(tmp_path, data, expected):
    path = tmp_path / "x.wav"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=expected) as error:
        load_wav(str(path))
    assert "\n" not in str(error.value) and str(path) in str(error.value)
    # The same file in a speech:DIR folder fails the load the same way.
    (tmp_path / "x.txt").write_text("one")
    with pytest.raises(DatasetError, match=expected):
        load_speech_data(f"speech:{tmp_path}")


def test_bad_specs_and_sizes():
    with pytest.raises(
        DatasetError, match=r"speech spec must be 'speech:numbers', 'speech:DIR' or 'tfds:NAME\[/CONFIG\]"
    ):
        load_speech_data("numbers")
    with pytest.raises(DatasetError, match="expected 'speech:numbers' or a folder of .wav"):
        load_speech_data("speech:/no/such/folder")
    with pytest.raises(DatasetError, match="num_train must be a positive integer"):
        load_speech_data(num_train=0)
    assert read_wav(_wav_bytes(np.array([16384, -16384], np.int16)), "x").tolist() == [0.5, -0.5]
