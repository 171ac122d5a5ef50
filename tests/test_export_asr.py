"""Export of the speech recognizer: `python -m export` of a tiny trained workdir, in every format.

One export (module fixture) of a 2-step `configs/asr_numbers.py` run whose weights are then perturbed
(an untrained decoder repeats one token, which would make token parity trivial): the report (kind `asr`,
parity passed in SavedModel, TFLite and ONNX), the `transcribe` signature in each format giving
what `generate` from the start token gives, the log-mel front end converted to TFLite builtins and
standard ONNX ops (no Flex, no custom op), and the runtime adapter refusing bad audio in one line.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import tensorflow as tf

from asr_helpers import tiny_asr_export
from export.runtimes import RuntimeInputError, load_runtime


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    _, export_dir, report = tiny_asr_export(tmp_path_factory.mktemp("asr_export"))
    return export_dir, report


def _feed(report, names):
    rng = np.random.default_rng(0)
    inputs = {
        # Two unlike rows (a falling chirp, and noise over its first 9000 samples) so their transcripts differ.
        "audio": np.stack(
            [
                0.3 * np.sin(2 * np.pi * np.cumsum(np.linspace(2000, 200, 20000)) / 16000),
                0.05 * rng.standard_normal(20000),
            ]
        ).astype(np.float32),
        "audio_lengths": np.array([20000, 9000], np.int32),
        "token_ids": np.full((2, 1), report["model"]["start_id"], np.int32),
        "lengths": np.ones(2, np.int32),
    }
    inputs.update({k: np.array(v["default"], v["dtype"]) for k, v in report["knobs"].items()})
    inputs.update({k: np.full(shape, -1, np.int32) for k, shape in report["model"]["sequence_shapes"].items()})
    return {name: inputs[name] for name in names}


def _call(signature, report):
    feed = _feed(report, signature.structured_input_signature[1])
    return signature(**{k: tf.constant(v) for k, v in feed.items()})


def test_report_passes_parity_in_every_format(exported):
    _, report = exported
    assert report["passed"] and not report["failures"]
    assert report["model"]["kind"] == "asr" and report["model"]["max_audio_samples"] == 32000
    for key in ("saved_model", "tflite", "onnx"):
        assert "transcribe" in report["artefacts"][key]["signatures"], key


def test_transcribe_equals_generate_from_the_start_token_everywhere(exported):
    folder, report = exported
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    loaded = tf.saved_model.load(os.path.join(folder, "saved_model", "speech_recognizer", "1"))
    generate = loaded.signatures["generate"]
    reference = generate(
        **{k: tf.constant(v) for k, v in _feed(report, generate.structured_input_signature[1]).items()}
    )
    reference = {k: v.numpy() for k, v in reference.items()}
    assert np.all(reference["sequences"][:, 0] == report["model"]["start_id"])
    generated = reference["sequences"][:, 1:]
    assert len(np.unique(generated)) >= 2 and not np.array_equal(generated[0], generated[1])  # audio-dependent
    results = {}
    transcribe = loaded.signatures["transcribe"]
    feed = _feed(report, transcribe.structured_input_signature[1])
    results["saved_model"] = {
        k: v.numpy() for k, v in transcribe(**{k: tf.constant(v) for k, v in feed.items()}).items()
    }
    interpreter = Interpreter(model_path=os.path.join(folder, "speech_recognizer.tflite"))
    runner = interpreter.get_signature_runner("transcribe")
    results["tflite"] = runner(**_feed(report, interpreter.get_signature_list()["transcribe"]["inputs"]))
    session = onnxruntime.InferenceSession(os.path.join(folder, "speech_recognizer.transcribe.onnx"))
    outputs = session.run(None, _feed(report, [i.name for i in session.get_inputs()]))
    results["onnx"] = dict(zip([o.name for o in session.get_outputs()], outputs))
    for runtime, result in results.items():
        np.testing.assert_array_equal(result["sequences"], reference["sequences"], err_msg=runtime)
        np.testing.assert_array_equal(result["sequence_lengths"], reference["sequence_lengths"], err_msg=runtime)
        np.testing.assert_allclose(result["scores"], reference["scores"], atol=1e-3, err_msg=runtime)


def test_front_end_is_builtin_tflite_and_standard_onnx(exported):
    folder, _ = exported
    model = onnx.load(os.path.join(folder, "speech_recognizer.transcribe.onnx"), load_external_data=False)
    domains = {node.domain for node in model.graph.node} | {
        node.domain for graph in _subgraphs(model.graph) for node in graph.node
    }
    assert domains <= {"", "ai.onnx"}, domains
    ops = {node.op_type for node in model.graph.node}
    assert "MatMul" in ops and not ops & {"DFT", "ComplexAbs"}
    with open(os.path.join(folder, "speech_recognizer.tflite"), "rb") as file:
        content = file.read()
    assert b"Flex" not in content  # TFLite builtins only


def _subgraphs(graph):
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield attribute.g
                yield from _subgraphs(attribute.g)


@pytest.mark.parametrize("runtime_name", ["tflite", "onnx"])
def test_runtime_refuses_bad_audio_in_one_line(exported, runtime_name):
    folder, _ = exported
    runtime = load_runtime(os.path.dirname(folder), runtime_name)
    for audio, expected in (
        (np.zeros((1, 40000), np.float32), "the model takes at most 32000"),
        (np.zeros((1, 8000, 2), np.float32), "mono waveforms"),
        (np.zeros(8000, np.float32), "must be a batch"),
    ):
        with pytest.raises(RuntimeInputError, match=expected) as error:
            runtime.generate(audio=audio, max_new_tokens=4)
        assert "\n" not in str(error.value)
    sequences, lengths, _ = runtime.generate(audio=np.zeros((1, 8000), np.int16), max_new_tokens=4)
    assert sequences.shape[0] == 1 and lengths[0] >= 1
