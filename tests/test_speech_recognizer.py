"""The speech recognizer: log-mel front end against numpy, padding invariance, config round trips, the `asr`
task (a tiny training run logging `wer`), the `asr` kind's registration and its one-line input errors.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from asr_helpers import tiny_asr_config
from layer_checks import check_config_round_trip
from tfzoo import kinds
from tfzoo.layers.log_mel import LogMelSpectrogram
from tfzoo.layers.spec_augment import SpecAugment
from tfzoo.models.registry import TASK_KINDS, build_model
from tfzoo.models.speech_recognizer import AudioLengthError, SpeechRecognizer
from tfzoo.runtime_errors import RuntimeInputError
from tfzoo.training.speech_tasks import SpeechTask, word_error_rate
from tfzoo.training.train_lib import train_and_evaluate
from tfzoo.training.validate import resolve_config

TINY_MODEL = dict(
    vocabulary_size=20,
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=8,
    max_audio_samples=8000,
    num_mel_bins=16,
)


def tiny_config(tmp_path, **overrides):
    return tiny_asr_config(tmp_path / "data", **overrides)


def numpy_log_mel(waveform: np.ndarray, layer: LogMelSpectrogram) -> np.ndarray:
    """The reference: frames, periodic Hann, np.fft.rfft power, the mel matrix, log, normalisation."""
    n, step = layer.frame_length, layer.frame_step
    count = (len(waveform) - n) // step + 1
    frames = np.stack([waveform[i * step : i * step + n] for i in range(count)]).astype(np.float64)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    power = np.abs(np.fft.rfft(frames * window, layer.fft_length)) ** 2
    mel = tf.signal.linear_to_mel_weight_matrix(
        layer.num_mel_bins, layer.fft_length // 2 + 1, layer.sample_rate, layer.lower_edge_hertz, layer.upper_edge_hertz
    ).numpy()
    features = np.log(power @ mel + layer.log_floor)
    features = features - features.mean(axis=0, keepdims=True)
    return features / np.sqrt(np.mean(features**2) + 1e-5)


def test_front_end_matches_numpy_and_ignores_padding():
    rng = np.random.default_rng(0)
    layer = LogMelSpectrogram(num_mel_bins=40)
    short, long = 0.1 * rng.standard_normal(3000), 0.1 * rng.standard_normal(4000)
    batch = np.zeros((2, 4400), np.float32)
    batch[0, :3000], batch[1, :4000] = short, long
    features, mask = layer(batch, np.array([3000, 4000]))
    features, mask = features.numpy(), mask.numpy()
    assert features.shape == (2, 26, 40) and mask.sum(axis=1).tolist() == [17, 23]  # (S - 400) // 160 + 1
    for row, wave in enumerate((short, long)):
        valid = int(mask[row].sum())
        np.testing.assert_allclose(features[row, :valid], numpy_log_mel(wave, layer), atol=2e-3)
        assert not features[row, valid:].any()
    # Gain does not change normalised features (up to the log floor).
    louder, _ = layer(batch * 4.0, np.array([3000, 4000]))
    np.testing.assert_allclose(louder.numpy(), features, atol=2e-3)


def test_layer_and_model_configs_round_trip(tmp_path):
    layer = LogMelSpectrogram(num_mel_bins=24, frame_step=200, fft_length=1024, normalize=False)
    again = LogMelSpectrogram.from_config(layer.get_config())
    assert again.get_config() == layer.get_config() and again.fft_length == 1024 and not again.normalize
    model = SpeechRecognizer(**{**TINY_MODEL, "position": "sinusoidal", "frame_step": 200})
    model.build()
    config = model.get_config()
    assert config["max_audio_samples"] == 8000 and config["frame_step"] == 200 and config["position"] == "sinusoidal"
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, SpeechRecognizer) and reloaded.get_config() == config
    inputs = {
        "audio": np.random.default_rng(1).standard_normal((2, 6000)).astype("float32") * 0.1,
        "audio_lengths": np.array([6000, 4000]),
        "target_ids": np.array([[1, 5, 6], [1, 7, 0]]),
    }
    np.testing.assert_allclose(reloaded(inputs), model(inputs), atol=1e-5)


def test_spec_augment_masks_bands_and_spans_in_training_only():
    layer = SpecAugment(freq_masks=2, freq_mask_bins=5, time_masks=3, time_mask_frames=4, seed=7)
    assert check_config_round_trip(layer).time_mask_frames == 4
    features = np.random.default_rng(0).standard_normal((8, 40, 16)).astype("float32") + 5.0  # never 0 by chance
    mask = np.arange(40)[None] < np.array([40, 30, 20, 10, 40, 30, 20, 10])[:, None]
    np.testing.assert_array_equal(layer(features, mask), features)  # inference: the identity
    np.testing.assert_array_equal(layer(features, mask, training=False), features)
    out = layer(features, mask, training=True).numpy()
    zero = out == 0
    assert np.array_equal(out[~zero], features[~zero])  # masked values are zeroed, the rest untouched
    frames, bins = zero.all(axis=2), zero.all(axis=1)  # (B, T): whole frames zeroed; (B, M): whole bins
    assert zero.any() and np.array_equal(zero, frames[:, :, None] | bins[:, None, :])  # only spans and bands
    assert frames.sum(axis=1).max() <= 3 * 4 and bins.sum(axis=1).max() <= 2 * 5
    assert not (frames & ~mask).any()  # time spans start inside each utterance's real frames
    assert not np.array_equal(zero[0], zero[4])  # every utterance draws its own masks
    with pytest.raises(ValueError, match="time_masks must be a non-negative integer"):
        SpecAugment(time_masks=-1)


def test_spec_augment_changes_training_logits_only():
    model = SpeechRecognizer(**TINY_MODEL, freq_masks=2, freq_mask_bins=4, time_masks=2, time_mask_frames=5)
    plain = SpeechRecognizer(**TINY_MODEL)
    model.build(), plain.build()
    for mine, theirs in zip(plain.trainable_weights, model.trainable_weights, strict=True):
        mine.assign(theirs)
    assert model.get_config()["freq_masks"] == 2 and SpeechRecognizer.from_config(model.get_config()).time_masks == 2
    inputs = {
        "audio": np.random.default_rng(4).standard_normal((2, 6000)).astype("float32") * 0.1,
        "audio_lengths": np.array([6000, 5000]),
        "target_ids": np.array([[1, 5, 6], [1, 7, 0]]),
    }
    np.testing.assert_allclose(model(inputs), plain(inputs), atol=1e-5)  # inference: no masks
    assert not np.allclose(model(inputs, training=True), plain(inputs, training=True), atol=1e-3)


def test_padding_never_changes_the_logits():
    model = SpeechRecognizer(**TINY_MODEL)
    wave = np.random.default_rng(2).standard_normal(5000).astype("float32") * 0.1
    target = np.array([[1, 5, 6, 7]])
    short = model({"audio": wave[None], "audio_lengths": np.array([5000]), "target_ids": target})
    padded = np.zeros((1, 8000), np.float32)
    padded[0, :5000] = wave
    padded[0, 5000:] = 0.3  # junk after the length
    long = model({"audio": padded, "audio_lengths": np.array([5000]), "target_ids": target})
    np.testing.assert_allclose(long, short, atol=1e-5)
    assert model.max_memory_length == 12 and int(model.memory_lengths(5000)) == 8


def test_too_long_or_stereo_audio_is_a_one_line_error():
    model = SpeechRecognizer(**TINY_MODEL)
    for audio in (np.zeros((1, 9000), np.float32), np.zeros((1, 4000, 2), np.float32)):
        with pytest.raises(AudioLengthError, match=r"expected mono waveforms of shape \(batch, samples\) with at most"):
            model({"audio": audio, "target_ids": np.ones((1, 2), np.int32)})
    kind = kinds.kind_named("asr")
    info = {"max_audio_samples": 8000}
    for audio, expected in (
        (np.zeros(4000, np.float32), "audio must be a batch"),
        (np.zeros((1, 4000, 2), np.float32), "audio must be mono waveforms"),
        (np.zeros((1, 9000), np.float32), "audio has 9000 samples; the model takes at most 8000"),
        (np.zeros((1, 0), np.float32), "audio must be mono waveforms"),
        (np.zeros((1, 100), np.int32), "audio must be float .* or int16"),
    ):
        with pytest.raises(RuntimeInputError, match=expected) as error:
            kind.check_conditions(info, {"audio": audio})
        assert "\n" not in str(error.value)
    audio, lengths = kind.check_conditions(info, {"audio": np.full((2, 100), 16384, np.int16)}).values()
    assert audio.dtype == np.float32 and audio[0, 0] == 0.5 and lengths.tolist() == [100, 100]


def test_the_kind_is_registered_and_adapts_the_model():
    assert "tfzoo.kinds.asr" in kinds.KIND_MODULES and kinds.model_classes()["SpeechRecognizer"] == "asr"
    model = SpeechRecognizer(**TINY_MODEL)
    model.build()
    kind = kinds.kind_of(model)
    assert kind.name == "asr" and kind.condition_names == ("audio", "audio_lengths")
    assert kind.check_model(model, "x") is None
    assert kind.context_names(1) == ["cross_k_0", "cross_v_0", "audio_lengths"]
    # The kind's encode + step equal the model's own teacher-forced logits.
    wave = np.random.default_rng(3).standard_normal((1, 6000)).astype("float32") * 0.1
    lengths = np.array([5000], np.int32)
    context = kind.encode({"audio": wave, "audio_lengths": lengths})
    assert context["cross_k_0"].shape == (1, 2, model.max_memory_length, 8)
    target = np.array([[1, 5, 6]], np.int32)
    logits, _ = kind.step(target, np.arange(3)[None], model.init_cache(1, 8), {**context, "audio_lengths": lengths})
    expected = model({"audio": wave, "audio_lengths": lengths, "target_ids": target})
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_word_error_rate_counts_word_edits():
    assert word_error_rate(["one two", "stop"], ["one two", "stop"]) == 0.0
    assert word_error_rate(["one three two", "go"], ["one two", "stop"]) == pytest.approx(2 / 3)


def test_a_tiny_run_logs_wer_and_the_loss_decreases(tmp_path):
    assert TASK_KINDS["speech_recognizer"] == "asr"
    summary = train_and_evaluate(tiny_config(tmp_path), str(tmp_path / "run"))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2] and summary["train_voices"] > summary["validation_voices"] > 0
    assert records[0]["wer"] >= 0.0 and records[0]["decoded_examples"] == 4
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert isinstance(model, SpeechRecognizer) and model.max_audio_samples == 32000
    # A few steps on one fixed batch lower the loss (the model learns from the waveforms).
    config = resolve_config(tiny_config(tmp_path))
    task = SpeechTask(config)
    model = build_model(config, task.tokenizer.vocabulary_size, **task.model_options())
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(True))
    inputs, labels = next(iter(task.train_dataset(0)))
    history = model.fit(inputs, labels, epochs=12, verbose=0).history["loss"]
    assert history[-1] < 0.7 * history[0]
