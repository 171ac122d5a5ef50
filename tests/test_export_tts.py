"""Export of the speech synthesizer: `python -m export` of a tiny perturbed `SpeechSynthesizer`, in every format.

One export (module fixture, fp32 and fp16 TFLite) of a hand-made run folder (`tts_helpers.make_tts_workdir`:
noise on every weight, so durations vary by character and text): the report (kind `tts`, signatures,
parity passed), each runtime's `synthesize` against the Keras model's on sentences the report's parity did
not use (durations identical, log-mel and waveform within the parity bounds), `serving_default` taking raw
strings (numbers spelled out and unknown characters dropped in the graph), `python -m tfzoo.speak` with
every runtime, and bad input refused in one line by the adapters, the CLI and the export.
"""

from __future__ import annotations

import json
import os
import wave

import numpy as np
import pytest

from export.__main__ import main as export_main
from export.synthesize_parity import FP32_LOG_MEL_MAX_DIFF, FP32_MIN_WAVEFORM_SNR_DB, compare
from tfzoo.runtimes import RuntimeInputError, load_runtime
from tts_helpers import MAX_SEQUENCE_LENGTH, make_tts_workdir

TEXTS = ("channel seven", "turn on the lights", "set volume to ninety nine")  # not among the parity texts
OUTPUTS = ["durations", "frame_lengths", "log_mel", "waveform", "waveform_lengths"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    workdir = make_tts_workdir(tmp_path_factory.mktemp("tts_export") / "run", griffin_lim_iterations=4)
    assert export_main(["--workdir", workdir, "--quantization", "none,fp16"]) == 0
    with open(os.path.join(workdir, "export", "report.json"), encoding="utf-8") as file:
        return workdir, json.load(file)


@pytest.fixture(scope="module")
def keras_outputs(exported):
    """The Keras model's `synthesize` on `TEXTS`, encoded by the Python tokenizer (`tfzoo.speak`)."""
    import tensorflow as tf

    from tfzoo.run_folder import RunFolder
    from tfzoo.speak import encode_texts

    folder = RunFolder(exported[0])
    model = folder.load_model()
    ids = encode_texts(folder.load_tokenizer(), TEXTS, MAX_SEQUENCE_LENGTH)
    outputs = {k: v.numpy() for k, v in tf.function(model.synthesize)(tf.constant(ids)).items()}
    assert len(np.unique(outputs["frame_lengths"])) == len(TEXTS)  # durations depend on the text
    return ids, outputs


def test_report_kind_signatures_and_parity(exported):
    _, report = exported
    assert report["passed"] and not report["failures"], report["failures"]
    model = report["model"]
    assert model["kind"] == "tts" and model["sample_rate"] == 16000 and model["signatures"] == ["synthesize"]
    assert model["max_samples"] == (model["max_frames"] - 1) * 160 + 400 and model["max_length"] == MAX_SEQUENCE_LENGTH
    assert model["characters"][" "] >= 3 and "!" not in model["characters"]
    assert set(report["artefacts"]) == {"saved_model", "tflite", "tflite_fp16", "onnx"}
    for key, artefact in report["artefacts"].items():
        synthesize = artefact["signatures"]["synthesize"]
        assert sorted(synthesize["inputs"]) == ["lengths", "token_ids"], key
        assert sorted(synthesize["outputs"]) == OUTPUTS, key
        assert artefact["parity"]["passed"] and artefact["parity"]["waveform_finite"], key
        assert artefact["parity"]["durations_identical"] or artefact.get("quantization") == "fp16", key
    assert "serving_default" in report["artefacts"]["saved_model"]["signatures"]
    assert report["artefacts"]["saved_model"]["parity"]["serving_default_durations_identical"]
    assert "Flex" not in " ".join(report["artefacts"]["tflite"]["ops"])
    reference = report["reference"]
    assert len({len(text) for text in reference["texts"]}) == len(reference["texts"]) >= 4  # different lengths
    durations = np.asarray(reference["keras"]["durations"])
    assert len(np.unique(durations[durations > 0])) >= 3  # varied, not all zero
    assert not [name for name in os.listdir(report["workdir"]) if name.startswith(".export")]  # installed atomically


@pytest.mark.parametrize("runtime_name", ["saved_model", "tflite", "onnx"])
def test_each_runtime_synthesizes_what_keras_does(exported, keras_outputs, runtime_name):
    ids, want = keras_outputs
    runtime = load_runtime(exported[0], runtime_name)
    got = runtime.synthesize_ids(ids, (ids != 0).sum(axis=1))
    result = compare(got, want)
    assert result["durations_identical"] and result["frame_lengths_identical"], result
    assert result["log_mel_max_diff"] <= FP32_LOG_MEL_MAX_DIFF, result
    assert result["waveform_snr_db"] >= FP32_MIN_WAVEFORM_SNR_DB, result
    waveforms = runtime.synthesize(list(TEXTS))
    assert [w.size for w in waveforms] == want["waveform_lengths"].tolist()


def test_serving_default_normalises_and_drops_unknown_characters(exported, keras_outputs):
    import tensorflow as tf

    workdir, report = exported
    path = os.path.join(workdir, "export", report["artefacts"]["saved_model"]["path"])
    serving = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serving(texts=tf.constant(["Chan!nel  7", "TURN on the lights"]))
    _, want = keras_outputs
    assert outputs["dropped_characters"].numpy().tolist() == [1, 0]
    assert outputs["characters"].numpy().tolist() == [len("channel seven"), len("turn on the lights")]
    np.testing.assert_array_equal(outputs["durations"].numpy(), want["durations"][:2])
    np.testing.assert_allclose(outputs["log_mel"].numpy(), want["log_mel"][:2], atol=FP32_LOG_MEL_MAX_DIFF)


def test_speak_cli_writes_a_wav_with_every_runtime(exported, keras_outputs, tmp_path, capsys):
    from tfzoo.data.speech_data import load_wav
    from tfzoo.speak import main as speak_main

    workdir = exported[0]
    _, want = keras_outputs
    samples = {}
    for runtime in ("keras", "saved_model", "tflite", "onnx"):
        out = str(tmp_path / f"{runtime}.wav")
        assert speak_main(["--workdir", workdir, f"--runtime={runtime}", "--text", "Channel 7", "--out", out]) == 0
        with wave.open(out, "rb") as reader:
            assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (16000, 1, 2)
        samples[runtime] = load_wav(out)
        assert samples[runtime].size == want["waveform_lengths"][0], runtime
    assert "wrote" in capsys.readouterr().out
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]
    energy = np.sum(np.square(samples["keras"], dtype=np.float64))
    for runtime in ("saved_model", "tflite", "onnx"):
        noise = np.sum(np.square(samples[runtime] - samples["keras"], dtype=np.float64))
        assert 10 * np.log10(energy / max(noise, 1e-30)) >= FP32_MIN_WAVEFORM_SNR_DB, runtime


@pytest.mark.parametrize("runtime_name", ["tflite", "onnx"])
def test_runtime_refuses_bad_text_in_one_line(exported, runtime_name):
    runtime = load_runtime(exported[0], runtime_name)
    for text, expected in (
        ("   ", "the text is empty"),
        ("jump!", "character(s) '!j' the model never saw; it knows"),
        ("go " * 20, f"the model takes at most {MAX_SEQUENCE_LENGTH}"),
    ):
        with pytest.raises(RuntimeInputError, match=expected.replace("(", r"\(").replace(")", r"\)")) as caught:
            runtime.synthesize(text)
        assert "\n" not in str(caught.value)
    with pytest.raises(RuntimeInputError, match="lengths must lie in"):
        runtime.synthesize_ids([[5, 6, 0]], [4])
    with pytest.raises(RuntimeInputError, match="it does not generate; use synthesize"):
        runtime.generate([[5]], [1], 4)


def test_speak_cli_and_export_refuse_bad_input_in_one_line(exported, tmp_path, capsys):
    from tfzoo.speak import main as speak_main

    workdir = exported[0]
    out = str(tmp_path / "x.wav")
    for arguments, message in (
        (["--runtime=tflite", "--text", "jump!"], "character(s) '!j' the model never saw"),
        (["--runtime=onnx", "--text", ""], "the text is empty"),
        (["--runtime=tflite", "--text", "go " * 20], f"the model takes at most {MAX_SEQUENCE_LENGTH}"),
        (["--runtime=tflite", "--quantization=int8", "--text", "go"], "has no tflite_int8 artefact"),
        (["--runtime=onnx", "--quantization=fp16", "--text", "go"], "goes with --runtime=tflite"),
        (["--runtime=keras", "--text", "jump!"], "character(s) '!j' the model never saw"),
    ):
        assert speak_main(["--workdir", workdir, "--out", out, *arguments]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not os.path.exists(out)
    for arguments, message in (
        (["--quantization=int4"], "--quantization=int4"),
        (["--max_length=99"], f"from 1 to the model's max_sequence_length={MAX_SEQUENCE_LENGTH}"),
    ):
        with pytest.raises(SystemExit) as exit_:
            export_main(["--workdir", workdir, *arguments])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
