"""Export: bad input, interrupted and failed exports, the in-graph tokenizer, and the loud conversion checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from export import parity, parity_process, pipeline, tflite_export
from export.__main__ import main as export_main
from export.errors import ExportError
from export.onnx_export import non_standard_ops
from export.tokenizer_ops import TokenizerOps
from export_helpers import ENV, TEXT, make_workdir
from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.export_report import read_report
from tfzoo.kinds import kind_named
from tfzoo.runtimes import ExportReadError, load_runtime
from toy_runtimes import BigramRuntime, FailingRuntime


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("inputs") / "run")


def _copy_workdir(source: str, target) -> str:
    target = str(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("export", "export.failed", ".export*"))
    return target


def _run_main(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        export_main(argv)
    return exit_info.value.code, capsys.readouterr().err


def _assert_nothing_written(directory: str) -> None:
    names = os.listdir(directory) if os.path.isdir(directory) else []
    assert not [n for n in names if n.startswith((".export", "export"))], names


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--formats=tflite,coreml"], "unknown --formats value 'coreml'"),
        (["--quantization=none,int2"], "unknown --quantization value 'int2'"),
        (["--formats=tflite,litertlm", "--quantization=int4"], "--quantization=int4 is a TFLite variant only"),
        (["--strategy=top_k"], "unknown --strategy 'top_k'"),
        (["--max_length=4"], "--max_length=4 is too small"),
        (["--max_length=64"], "exceeds the model's max_sequence_length=32"),
        (["--max_length=abc"], "invalid int value"),
        (["--beam_size=0"], "--beam_size must be an integer >= 1"),
        (["--version=0"], "--version must be an integer >= 1"),
        (["--formats="], "--formats is empty"),
        (["--bogus=1"], "unrecognized arguments: --bogus=1"),
    ],
)
def test_bad_flags_fail_with_one_line_and_write_nothing(workdir, flags, message, capsys):
    status, err = _run_main([f"--workdir={workdir}", *flags], capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    _assert_nothing_written(workdir)


def test_bad_workdirs_fail_with_one_line(workdir, tmp_path, capsys):
    missing = tmp_path / "missing"
    status, err = _run_main([f"--workdir={missing}"], capsys)
    assert (status, err) == (2, f"error: workdir {missing} does not exist\n")

    untrained = _copy_workdir(workdir, tmp_path / "untrained")
    os.remove(os.path.join(untrained, "model.keras"))
    status, err = _run_main([f"--workdir={untrained}"], capsys)
    assert status == 2 and err.startswith(f"error: no trained model in {untrained}: model.keras is missing")

    corrupt = _copy_workdir(workdir, tmp_path / "corrupt")
    with open(os.path.join(corrupt, "model.keras"), "wb") as file:
        file.write(b"not a zip file")
    status, err = _run_main([f"--workdir={corrupt}"], capsys)
    assert status == 2 and "not a Keras model archive" in err and err.count("\n") == 1

    other_vocabulary = _copy_workdir(workdir, tmp_path / "other_vocabulary")
    CharTokenizer("abc").save(os.path.join(other_vocabulary, "tokenizer"))
    status, err = _run_main([f"--workdir={other_vocabulary}"], capsys)
    assert status == 2 and "has vocabulary_size" in err and err.count("\n") == 1

    no_config = _copy_workdir(workdir, tmp_path / "no_config")
    os.remove(os.path.join(no_config, "config.json"))
    status, err = _run_main([f"--workdir={no_config}"], capsys)
    assert status == 2 and "config.json is missing" in err
    for directory in (untrained, corrupt, other_vocabulary, no_config):
        _assert_nothing_written(directory)


def test_cli_process_reports_bad_input_on_one_line(tmp_path):
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "export", f"--workdir={untrained}", "--formats=tflite"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode == 2
    expected = f"error: no trained model in {untrained}: model.keras is missing (training writes it when it ends)\n"
    assert result.stderr == expected
    assert os.listdir(untrained) == []


def test_max_length_may_exceed_max_sequence_length_without_learned_positions():
    class Inspected:
        max_sequence_length = 32
        position = "sinusoidal"
        model_kind = kind_named("decoder")

    assert pipeline.resolve_max_length(None, Inspected()) == 32
    assert pipeline.resolve_max_length(64, Inspected()) == 64
    Inspected.position = "learned"
    with pytest.raises(ExportError, match="exceeds"):
        pipeline.resolve_max_length(64, Inspected())


def test_interrupted_export_leaves_the_previous_export_alone(workdir, tmp_path, monkeypatch):
    run = _copy_workdir(workdir, tmp_path / "run")
    os.makedirs(os.path.join(run, "export"))
    with open(os.path.join(run, "export", "marker"), "w") as file:
        file.write("previous export")

    def interrupted(module, directory, tokenizer_path):
        os.makedirs(directory)
        with open(os.path.join(directory, "saved_model.pb"), "wb") as file:
            file.write(b"half")
        raise KeyboardInterrupt  # Ctrl-C while the SavedModel is being written into the staging folder

    monkeypatch.setattr(pipeline, "_write_saved_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.export_workdir(run, formats=["saved_model"], strategy="greedy", max_length=16, log=lambda line: None)
    assert sorted(n for n in os.listdir(run) if "export" in n) == ["export"]
    assert os.listdir(os.path.join(run, "export")) == ["marker"]


def test_parity_measure_fails_on_any_difference():
    table = np.random.default_rng(0).normal(size=(12, 12)).astype(np.float32)
    prompts = parity.parity_prompts(ByteTokenizer(), 16)  # ids beyond 12 index nothing: use our own
    prompts["token_ids"] = np.array([[3, 4, 0], [5, 6, 7]], np.int32)
    prompts["lengths"] = np.array([2, 3], np.int32)
    prompts["max_new_tokens"] = 4
    ref = parity.reference(BigramRuntime(table), prompts, ("beam", "greedy"))
    same = parity.measure(BigramRuntime(table), ref, prompts, ("beam", "greedy"))
    assert same["passed"] and same["decode_max_logit_diff"] == 0.0
    flipped = parity.measure(BigramRuntime(table, flip_token=True), ref, prompts, ("beam", "greedy"))
    assert flipped["failures"] == [
        f"generate {case}: token ids differ from Keras"
        for case in ("beam", "greedy", "greedy_penalties", "greedy_stop_ban", "beam_stop_ban")
    ]
    assert flipped["generate"]["greedy"]["token_agreement"] == 7 / 8
    noisy = parity.measure(BigramRuntime(table, logit_noise=1e-3), ref, prompts, ("beam", "greedy"))
    assert noisy["failures"] == ["prefill/decode logits differ from Keras by 0.001 > 0.0001"]
    windows = np.array([[3, 4, 5, 6], [7, 8, 9, 10]], np.int32)
    labels = np.roll(windows, -1, axis=1)
    loss = parity.cross_entropy(table[windows], labels)
    validation = {"inputs": windows, "labels": labels, "loss": loss}
    shifted = BigramRuntime(table * 1.5)  # another distribution: a clearly different loss
    quantized = parity.measure(shifted, ref, prompts, ("beam", "greedy"), "int8", validation)
    assert abs(quantized["validation_loss_change"]) > 0.02
    assert quantized["failures"][-1].startswith("validation loss changes by")
    assert parity.measure(BigramRuntime(table), ref, prompts, ("beam", "greedy"), "int8", validation)["passed"]


def _bigram_parity_inputs():
    table = np.random.default_rng(0).normal(size=(12, 12)).astype(np.float32)
    prompts = parity.parity_prompts(ByteTokenizer(), 16)
    prompts["token_ids"] = np.array([[3, 4, 0], [5, 6, 7]], np.int32)
    prompts["lengths"] = np.array([2, 3], np.int32)
    prompts["max_new_tokens"] = 4
    return table, prompts, parity.reference(BigramRuntime(table), prompts, ("beam", "greedy"))


def test_parity_in_a_child_process_is_the_same_and_fails_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the child's scratch files go (and must not stay)
    monkeypatch.setattr("tempfile.tempdir", None)
    table, prompts, ref = _bigram_parity_inputs()
    strategies = ("beam", "greedy")
    for runtime_args in ((table,), (table, True), (table, False, 1e-3)):
        spec = parity_process.RuntimeSpec(BigramRuntime, runtime_args)
        in_child = parity_process.measure_in_child(spec, ref, prompts, strategies)
        assert in_child == parity.measure(BigramRuntime(*runtime_args), ref, prompts, strategies)
    assert not in_child["passed"] and in_child["failures"] == [
        "prefill/decode logits differ from Keras by 0.001 > 0.0001"
    ]
    with pytest.raises(ExportError, match="FailingRuntime parity failed to run in its process: RuntimeError: no model"):
        parity_process.measure_in_child(parity_process.RuntimeSpec(FailingRuntime, ()), ref, prompts, strategies)
    assert os.listdir(tmp_path) == []


def test_isolated_parity_passes_and_a_failing_parity_process_writes_nothing(workdir, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "ISOLATED_PARITY_BYTES", 0)  # as for a GPT-2-sized model: children
    good = _copy_workdir(workdir, tmp_path / "good")
    lines = []
    report = pipeline.export_workdir(
        good, formats=["tflite"], quantization=["none"], strategy="greedy", max_length=16, log=lines.append
    )
    assert report["passed"] and any("each runtime in a process of its own" in line for line in lines)
    assert report["artefacts"]["tflite"]["parity"]["generate"]["greedy"]["token_agreement"] == 1.0
    keras = report["reference"]["keras"]["greedy"]["sequences"]  # the child's Keras reference, made in a child
    assert len(keras) == len(report["reference"]["lengths"]) and len({tuple(row) for row in keras}) > 1
    run = _copy_workdir(workdir, tmp_path / "run")
    os.makedirs(os.path.join(run, "export"))
    with open(os.path.join(run, "export", "marker"), "w") as file:
        file.write("previous export")
    monkeypatch.setattr(
        pipeline,
        "_saved_model_artefact",
        lambda *args: ({"format": "saved_model"}, parity_process.RuntimeSpec(FailingRuntime, ())),
    )
    with pytest.raises(ExportError, match="parity failed to run in its process"):
        pipeline.export_workdir(run, formats=["saved_model"], strategy="greedy", max_length=16, log=lambda line: None)
    assert sorted(n for n in os.listdir(run) if "export" in n) == ["export"]
    assert os.listdir(os.path.join(run, "export")) == ["marker"]


def test_failed_parity_goes_to_export_failed_and_exits_1(tmp_path, monkeypatch, capsys):
    workdir = str(tmp_path)
    os.makedirs(os.path.join(workdir, "export"))
    with open(os.path.join(workdir, "export", "marker"), "w") as file:
        file.write("previous export")
    for passed, name in ((False, "one"), (False, "two"), (True, "three")):
        staging = os.path.join(workdir, f".export.tmp-{name}")
        os.makedirs(staging)
        with open(os.path.join(staging, "report.json"), "w") as file:
            file.write(name)
        location = pipeline._install(staging, workdir, passed)
        assert location == os.path.join(workdir, "export" if passed else "export.failed")
        if not passed:  # the previous export stays; the newest failure replaces the older one
            assert os.listdir(os.path.join(workdir, "export")) == ["marker"]
            assert open(os.path.join(workdir, "export.failed", "report.json")).read() == name
    assert os.listdir(os.path.join(workdir, "export")) == ["report.json"]
    assert sorted(os.listdir(workdir)) == ["export", "export.failed"]

    failed = {
        "passed": False,
        "failures": ["onnx: generate beam: token ids differ from Keras"],
        "location": os.path.join(workdir, "export.failed"),
        "artefacts": {"onnx": {"path": "gpt.onnx", "size_bytes": 10, "parity": {"passed": False}}},
    }
    monkeypatch.setattr("export.__main__.export_workdir", lambda *args, **kwargs: failed)
    status, err = _run_main([f"--workdir={workdir}"], capsys)
    assert status == 1
    assert err == (
        f"error: parity failed, export kept in {os.path.join(workdir, 'export.failed')}: "
        "onnx: generate beam: token ids differ from Keras\n"
    )


def test_load_runtime_errors(workdir, tmp_path):
    with pytest.raises(ExportReadError, match="no export in"):
        load_runtime(workdir, "tflite")
    with pytest.raises(ExportReadError, match="unknown runtime 'tensorrt'"):
        load_runtime(workdir, "tensorrt")
    os.makedirs(tmp_path / "export")
    with open(tmp_path / "export" / "report.json", "w") as file:
        json.dump({"model": {}, "artefacts": {"onnx": {}}}, file)  # no format_version: read as version 1
    with pytest.raises(ExportReadError, match="has no tflite_int8 artefact"):
        load_runtime(str(tmp_path), "tflite", quantization="int8")


@pytest.mark.parametrize(
    "report, message",
    [
        ({"format_version": 3, "model": {}, "artefacts": {}}, "format_version 3, newer than this tfzoo reads"),
        ({"format_version": "2", "model": {}, "artefacts": {}}, "format_version must be an integer"),
        ({"passed": True}, "has no 'model' and 'artefacts' sections"),
        ([1, 2], "is not a JSON object"),
    ],
)
def test_read_report_checks_the_format_version(tmp_path, report, message):
    os.makedirs(tmp_path / "export")
    with open(tmp_path / "export" / "report.json", "w") as file:
        json.dump(report, file)
    with pytest.raises(ExportReadError, match=message) as error:
        read_report(str(tmp_path))
    assert "\n" not in str(error.value)


TEXTS = ["def f(x):", "", "héllo ☃ 𝄞 x", "  \t\n", "zzzz" * 10]


def test_char_tokenizer_ops_match_the_python_tokenizer():
    tokenizer = CharTokenizer.from_text(TEXT + "é☃")  # 'x', 'z', '𝄞' are unknown
    ops = TokenizerOps(tokenizer.to_json())
    token_ids, lengths = ops.encode(tf.constant(TEXTS), max_tokens=12, empty_id=tokenizer.eos_id)
    for row, text in enumerate(TEXTS):
        want = tokenizer.encode(text)[-12:] if text else np.array([tokenizer.eos_id])
        assert lengths[row] == len(want)
        np.testing.assert_array_equal(token_ids[row, : len(want)], want)
        assert np.all(token_ids[row, len(want) :].numpy() == tokenizer.pad_id)
    sequences = np.array([[5, 6, 2, 1, 0, 7], [3, 4, 5, 6, 7, 8]], np.int32)
    start, end = np.array([0, 2], np.int32), np.array([6, 4], np.int32)
    decoded = ops.decode(tf.constant(sequences), tf.constant(start), tf.constant(end)).numpy()
    for row in range(2):
        assert decoded[row].decode("utf-8") == tokenizer.decode(sequences[row, start[row] : end[row]])


def test_byte_tokenizer_ops_match_the_python_tokenizer():
    tokenizer = ByteTokenizer()
    ops = TokenizerOps(tokenizer.to_json())
    token_ids, lengths = ops.encode(tf.constant(TEXTS), max_tokens=40, empty_id=tokenizer.eos_id)
    for row, text in enumerate(TEXTS):
        want = tokenizer.encode(text)[-40:] if text else np.array([tokenizer.eos_id])
        np.testing.assert_array_equal(token_ids[row, : lengths[row]], want)
    bad_utf8 = np.array([[106, 0xC3 + 2, 1, 0xFF + 2, 107]], np.int32)  # a cut 2-byte sequence, then 0xFF
    decoded = ops.decode(tf.constant(bad_utf8), tf.constant([0]), tf.constant([5])).numpy()[0].decode("utf-8")
    assert decoded == tokenizer.decode(bad_utf8[0]) == "h\ufffd\ufffdi"


def test_tflite_conversion_names_the_ops_that_need_flex(tmp_path):
    module = tf.Module()
    module.f = tf.function(
        lambda x: tf.linalg.det(x) + tf.math.bessel_i0e(x)[0, 0],
        input_signature=[tf.TensorSpec([3, 3], tf.float32, name="x")],
    )
    tf.saved_model.save(module, str(tmp_path), signatures={"f": module.f.get_concrete_function()})
    with pytest.raises(ExportError, match=r"ops that need Flex or custom ops: tf\.BesselI0e, tf\.MatrixDeterminant"):
        tflite_export.convert_tflite(str(tmp_path), ["f"], "none")
    with pytest.raises(ExportError, match="unknown quantization 'int2'"):
        tflite_export.convert_tflite(str(tmp_path), ["f"], "int2")


def test_onnx_check_finds_non_standard_ops():
    from onnx import helper

    body = helper.make_graph([helper.make_node("XlaDynamicUpdateSlice", ["a"], ["b"])], "body", [], [])
    loop = helper.make_node("Loop", ["n", "c"], ["y"], body=body)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), loop], "g", [], [])
    assert non_standard_ops(helper.make_model(graph)) == {"ai.onnx:XlaDynamicUpdateSlice"}
    clean = helper.make_graph([helper.make_node("Relu", ["x"], ["r"])], "g", [], [])
    assert non_standard_ops(helper.make_model(clean)) == set()


def test_sampling_gives_the_same_tokens_in_every_runtime(workdir, tmp_path):
    """The `sample` strategy (its own module: generate only) draws the same tokens everywhere for a seed."""
    import keras

    from export.export_module import ExportModule
    from export.onnx_export import convert_onnx
    from tfzoo.runtimes import KerasRuntime, OnnxRuntime, SavedModelRuntime, TFLiteRuntime

    model = keras.saving.load_model(os.path.join(workdir, "model.keras"), compile=False)
    info = {
        "max_length": 24,
        "strategy": "sample",
        "strategies": {"sample": "generate"},
        "beam_size": 1,
        "eos_ids": [1],
        "banned_ids": [0],
        "pad_id": 0,
        "num_layers": 2,
        "num_heads": 2,
        "head_dim": 16,
        "vocabulary_size": model.vocabulary_size,
    }
    module = ExportModule(
        model, max_length=24, strategy="sample", eos_ids=(1,), banned_ids=(0,), strategies=("sample",), steps=False
    )
    saved = str(tmp_path / "saved_model")
    tf.saved_model.save(module, saved, signatures=module.signatures())
    with open(tmp_path / "sample.tflite", "wb") as file:
        file.write(tflite_export.convert_tflite(saved, ["generate"], "none"))
    with open(tmp_path / "sample.onnx", "wb") as file:
        file.write(convert_onnx(module.portable_function("generate")).SerializeToString())
    runtimes = [
        KerasRuntime(model, info),
        SavedModelRuntime(saved, info),
        TFLiteRuntime(str(tmp_path / "sample.tflite"), info),
        OnnxRuntime({"generate": str(tmp_path / "sample.onnx")}, info),
    ]
    token_ids, lengths = np.array([[5, 6, 7], [8, 9, 0], [4, 0, 0]], np.int32), np.array([3, 2, 1], np.int32)
    knobs = dict(temperature=10.0, top_k=12, top_p=0.95, seed=7)  # hot: the tiny model is very peaked
    outputs = [runtime.generate(token_ids, lengths, 12, **knobs)[0] for runtime in runtimes]
    for runtime, sequences in zip(runtimes[1:], outputs[1:]):
        np.testing.assert_array_equal(sequences, outputs[0], err_msg=runtime.name)
    other_seed = runtimes[2].generate(token_ids, lengths, 12, **dict(knobs, seed=8))[0]
    assert not np.array_equal(other_seed, outputs[0])  # the seed input really drives the draws


def test_models_without_a_decoder_are_refused_before_tensorflow_runs(workdir, tmp_path, capsys):
    import zipfile

    run = _copy_workdir(workdir, tmp_path / "run")
    archive = os.path.join(run, "model.keras")
    with zipfile.ZipFile(archive) as source:
        members = {name: source.read(name) for name in source.namelist()}
    config = json.loads(members["config.json"])
    config["class_name"] = "ViTEncoder"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(archive, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    status, err = _run_main([f"--workdir={run}"], capsys)
    assert status == 2
    assert err == (
        f"error: {archive} holds a ViTEncoder; export supports GPT, Transformer, Captioner, BertEncoder, "
        "BertClassifier, BertMaskedLM, SpeechRecognizer, VideoCaptioner, SpeechSynthesizer "
        "(generative models with a KV cache, BERT encoders and speech synthesizers)\n"
    )
    _assert_nothing_written(run)


def test_kinds_runtimes_and_report_import_without_tensorflow():
    """The TFLite and ONNX adapters need only their runtime library and numpy: no TensorFlow at import."""
    code = (
        "import sys, tfzoo.runtimes, tfzoo.export_report, tfzoo.kinds; tfzoo.kinds.kind_classes(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'export')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_children_start_with_two_malloc_arenas_and_the_parent_keeps_its_environment(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert parity_process.run_in_child(os.getenv, "the environment", key="MALLOC_ARENA_MAX") == "2"
    assert "MALLOC_ARENA_MAX" not in os.environ
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the caller's own setting wins
    assert parity_process.run_in_child(os.getenv, "the environment", key="MALLOC_ARENA_MAX") == "4"
