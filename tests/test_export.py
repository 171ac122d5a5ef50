"""Export end to end: the `python -m export` CLI on a tiny workdir, then every artefact run in its runtime.

One export (module fixture, the CLI's `main` in this process) serves every test here: the
layout, the report, the SavedModel in a fresh process without tfzoo and in
`saved_model_cli`, TFLite through `ai_edge_litert`, ONNX through
onnxruntime, token parity with the Keras model computed here independently
(`tfzoo.decoding.Generator`), and the in-graph input guards.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from export.__main__ import main as export_main
from export_helpers import ENV, TEXT, make_workdir
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.decoding.generator import Generator
from tfzoo.runtimes import RuntimeInputError, load_runtime

MAX_LENGTH = 24
BEAM_SIZE = 2
PROMPTS = ("x", "return a", "def __init__")  # 1, 8 and 12 tokens; "x" is unknown (<unk>)
NEW_TOKENS = MAX_LENGTH - 12  # the Keras generator wants room for this many after every prompt


FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    args = json.loads(sys.argv[2])
    served = loaded.signatures["serving_default"](
        prompts=tf.constant(args["prompts"]), max_new_tokens=tf.constant(args["max_new_tokens"]))
    generated = loaded.signatures["generate"](
        token_ids=tf.constant(args["token_ids"], tf.int32), lengths=tf.constant(args["lengths"], tf.int32),
        max_new_tokens=tf.constant(args["max_new_tokens"]), length_penalty=tf.constant(1.0),
        repetition_penalty=tf.constant(1.0), no_repeat_ngram_size=tf.constant(0),
        stop_sequences=tf.fill([4, 16], -1), banned_sequences=tf.fill([16, 16], -1))
    result = {
        "tfzoo_imported": sorted(m for m in sys.modules if m == "tfzoo" or m.startswith(("tfzoo.", "export"))),
        "signatures": sorted(loaded.signatures),
        "completions": [c.decode("utf-8") for c in served["completions"].numpy()],
        "scores": served["scores"].numpy().tolist(),
        "sequences": generated["sequences"].numpy().tolist(),
    }
    # `saved_model_cli show --all`: the console script's own entry point, run here to spare a TF start-up.
    import contextlib, io
    from tensorflow.python.tools import saved_model_cli
    sys.argv = ["saved_model_cli", "show", "--dir", sys.argv[1], "--all"]
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        try:
            saved_model_cli.main()
        except SystemExit as exit_:
            result["saved_model_cli_status"] = exit_.code
    result["saved_model_cli"] = shown.getvalue()
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("export") / "run")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = export_main([f"--workdir={workdir}", f"--max_length={MAX_LENGTH}", f"--beam_size={BEAM_SIZE}"])
    assert status == 0
    with open(os.path.join(workdir, "export", "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    saved_model = os.path.join(workdir, "export", "saved_model", "gpt", "1")
    token_ids, lengths = _prompt_batch(CharTokenizer.from_text(TEXT))
    args = {
        "prompts": list(PROMPTS),
        "max_new_tokens": NEW_TOKENS,
        "token_ids": token_ids.tolist(),
        "lengths": lengths.tolist(),
    }
    # The process starts now and runs while the in-process tests do; `fresh_process` collects its output.
    outside = str(tmp_path_factory.mktemp("outside"))  # cwd outside the repo: tfzoo is not importable by accident
    process = subprocess.Popen(
        [sys.executable, "-c", FRESH_PROCESS, saved_model, json.dumps(args)],
        cwd=outside,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    yield {
        "workdir": workdir,
        "dir": os.path.join(workdir, "export"),
        "report": report,
        "stdout": stdout.getvalue(),
        "process": process,
    }
    if process.poll() is None:
        process.kill()
        process.communicate()


def _prompt_batch(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """`PROMPTS` encoded, right-padded: token_ids (B, P) and lengths (B,)."""
    encoded = [tokenizer.encode(p) for p in PROMPTS]
    lengths = np.array([len(e) for e in encoded], np.int32)
    token_ids = np.zeros((len(encoded), lengths.max()), np.int32)
    for row, ids in enumerate(encoded):
        token_ids[row, : len(ids)] = ids
    return token_ids, lengths


@pytest.fixture(scope="module")
def fresh_process(exported) -> dict:
    """What the SavedModel did in a new Python process that imports only TensorFlow (see `FRESH_PROCESS`)."""
    process = exported["process"]
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runtimes(exported):
    """Each artefact loaded once: saved_model, tflite (fp32, fp16, int8), onnx."""
    loaded = {name: load_runtime(exported["workdir"], name) for name in ("saved_model", "tflite", "onnx")}
    for quantization in ("fp16", "int8"):
        loaded[f"tflite_{quantization}"] = load_runtime(exported["workdir"], "tflite", quantization=quantization)
    return loaded


@pytest.fixture(scope="module")
def keras_reference(exported):
    """Greedy and beam outputs of the Keras model on `PROMPTS`, computed without the export package."""
    workdir = exported["workdir"]
    model = keras.saving.load_model(os.path.join(workdir, "model.keras"), compile=False)
    tokenizer = CharTokenizer.from_config({"characters": sorted(set(TEXT))})
    token_ids, lengths = _prompt_batch(tokenizer)
    outputs = {}
    for strategy in ("greedy", "beam"):
        generator = Generator(
            model,
            max_length=MAX_LENGTH,
            strategy=strategy,
            beam_size=BEAM_SIZE,
            eos_ids=(1,),
            banned_ids=(0,),
            jit_compile=False,
        )
        outputs[strategy] = generator(token_ids, lengths, max_new_tokens=NEW_TOKENS)
    return {"model": model, "tokenizer": tokenizer, "token_ids": token_ids, "lengths": lengths, **outputs}


def test_layout_and_atomic_install(exported):
    names = set(os.listdir(exported["dir"]))
    assert names == {
        "saved_model",
        "gpt.tflite",
        "gpt.fp16.tflite",
        "gpt.int8.tflite",
        "gpt.onnx",
        "gpt.generate_greedy.onnx",
        "gpt.prefill.onnx",
        "gpt.decode.onnx",
        "gpt.onnx.weights",
        "tokenizer.json",
        "hf_tokenizer.json",
        "report.json",
    }
    with open(os.path.join(exported["dir"], "report.json"), encoding="utf-8") as file:
        assert json.load(file)["model"]["hf_tokenizer"] == "hf_tokenizer.json"
    version_dir = os.path.join(exported["dir"], "saved_model", "gpt", "1")
    assert {"saved_model.pb", "variables", "assets.extra"} <= set(os.listdir(version_dir))
    with open(os.path.join(exported["workdir"], "tokenizer", "tokenizer.json"), "rb") as original:
        expected = original.read()
    for copy in (
        os.path.join(exported["dir"], "tokenizer.json"),
        os.path.join(version_dir, "assets.extra", "tokenizer.json"),
    ):
        with open(copy, "rb") as file:
            assert file.read() == expected
    leftovers = [n for n in os.listdir(exported["workdir"]) if n.startswith(".export") or n == "export.failed"]
    assert leftovers == []


def test_onnx_weights_are_stored_once(exported):
    """Every ONNX graph refers to one weights file (external data) that holds each weight once."""
    import onnx

    export_dir, report = exported["dir"], exported["report"]
    artefact = report["artefacts"]["onnx"]
    weights_size = os.path.getsize(os.path.join(export_dir, artefact["weights"]["path"]))
    refs = {}
    for entry in artefact["files"].values():
        graph = onnx.load(os.path.join(export_dir, entry["path"]), load_external_data=False).graph
        for tensor in graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                fields = {e.key: e.value for e in tensor.external_data}
                assert fields["location"] == "gpt.onnx.weights"
                refs.setdefault(tensor.name, set()).add((int(fields["offset"]), int(fields["length"])))
    assert all(len(places) == 1 for places in refs.values())  # one place per weight, whichever graph reads it
    assert sum(length for ((_, length),) in refs.values()) <= weights_size
    assert len(refs) >= 10  # embeddings, attention and MLP kernels and biases, norms
    runtime = load_runtime(exported["workdir"], "onnx")
    assert len(runtime._shared) == len(refs)  # one OrtValue per weight, handed to every session
    assert set(runtime.files) == set(artefact["files"]) and not runtime.sessions  # a session at its first call
    # The sessions read the runtime's mapping of the file: it must outlive a collection and reuse of memory.
    gc.collect()
    scratch = [np.full(weights_size // 4 + 1024, 7.0, np.float32) for _ in range(3)]
    reference = report["reference"]
    token_ids, prompt_lengths = np.asarray(reference["token_ids"]), np.asarray(reference["lengths"])
    sequences, lengths, _ = runtime.generate(token_ids, prompt_lengths, reference["max_new_tokens"], strategy="greedy")
    del scratch
    assert list(runtime.sessions) == [runtime.strategies["greedy"]]  # generate alone: one session
    np.testing.assert_array_equal(sequences, reference["keras"]["greedy"]["sequences"])
    np.testing.assert_array_equal(lengths, reference["keras"]["greedy"]["sequence_lengths"])


def test_onnx_without_its_weights_file_is_a_clear_error(exported, tmp_path):
    import shutil

    from tfzoo.runtimes import ExportReadError

    workdir = tmp_path / "copy"
    shutil.copytree(exported["workdir"], workdir)
    os.remove(workdir / "export" / "gpt.onnx.weights")
    with pytest.raises(ExportReadError, match=r"gpt\.onnx\.weights, which is missing"):
        load_runtime(str(workdir), "onnx")


def test_report_sizes_signatures_and_parity(exported):
    report = exported["report"]
    assert report["passed"] and report["failures"] == []
    assert report["format_version"] == 2
    # The knobs, from the one table (beam export: generate = beam, generate_greedy; sample knobs still listed).
    assert report["knobs"]["length_penalty"] == {"dtype": "float32", "default": 1.0, "strategies": ["beam"]}
    assert report["knobs"]["max_new_tokens"] == {
        "dtype": "int32",
        "default": 64,
        "strategies": ["greedy", "beam", "sample"],
    }
    assert report["knobs"]["top_k"]["strategies"] == ["sample"] and "min_new_tokens" not in report["knobs"]
    for name, knob in report["knobs"].items():  # each signature takes exactly the knobs that name it
        for strategy, signature in report["model"]["strategies"].items():
            inputs = report["artefacts"]["onnx"]["signatures"][signature]["inputs"]
            assert (name in inputs) == (strategy in knob["strategies"]), (name, strategy)
    assert set(report["artefacts"]) == {"saved_model", "tflite", "tflite_fp16", "tflite_int8", "onnx"}
    step_inputs = {"token_ids", "positions", "past_k_0", "past_v_0", "past_k_1", "past_v_1"}
    for key, artefact in report["artefacts"].items():
        path = os.path.join(exported["dir"], artefact["path"])
        if key == "saved_model":
            size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
        elif key == "onnx":
            entries = [*artefact["files"].values(), artefact["weights"]]  # the graphs and the one weights file
            size = sum(os.path.getsize(os.path.join(exported["dir"], f["path"])) for f in entries)
        else:
            size = os.path.getsize(path)
        assert artefact["size_bytes"] == size, key
        signatures = artefact["signatures"]
        assert {"generate", "generate_greedy", "prefill", "decode"} <= set(signatures), key
        assert set(signatures["generate"]["inputs"]) == {
            "token_ids",
            "lengths",
            "max_new_tokens",
            "length_penalty",
            "repetition_penalty",
            "no_repeat_ngram_size",
            "stop_sequences",
            "banned_sequences",
        }
        assert set(signatures["generate"]["outputs"]) == {"sequences", "sequence_lengths", "scores"}
        assert set(signatures["decode"]["inputs"]) == step_inputs
        assert set(signatures["decode"]["outputs"]) == {
            "logits",
            "present_k_0",
            "present_v_0",
            "present_k_1",
            "present_v_1",
        }
        parity = artefact["parity"]
        assert parity["passed"], (key, parity["failures"])
        if artefact.get("quantization", "none") == "none":
            assert all(case["identical"] for case in parity["generate"].values()), key
            assert parity["decode_max_logit_diff"] <= 1e-4 and parity["prefill_max_logit_diff"] <= 1e-4, key
        else:
            assert 0.0 <= parity["token_agreement"] <= 1.0
            assert abs(parity["validation_loss_change"]) <= parity["validation_loss_tolerance"]
            assert parity["decode_max_logit_diff"] > 0  # really quantized
    assert "serving_default" in report["artefacts"]["saved_model"]["signatures"]
    sizes = {k: a["size_bytes"] for k, a in report["artefacts"].items()}
    assert sizes["tflite_int8"] < sizes["tflite"]
    assert report["reference"]["validation"]["windows"] > 0
    assert "parity ok" in exported["stdout"] and "FAILED" not in exported["stdout"]


def test_tokens_match_keras_in_every_runtime(runtimes, keras_reference):
    ref = keras_reference
    for key, runtime in runtimes.items():
        for strategy in ("greedy", "beam"):
            sequences, lengths, scores = runtime.generate(
                ref["token_ids"], ref["lengths"], NEW_TOKENS, strategy=strategy
            )
            assert sequences.shape == (3, MAX_LENGTH) and sequences.dtype == np.int32
            assert np.all((sequences >= 0) & (sequences < runtime.vocabulary_size))
            if key in ("saved_model", "tflite", "onnx"):
                label = f"{key} {strategy}"
                np.testing.assert_array_equal(sequences, ref[strategy]["sequences"], err_msg=label)
                np.testing.assert_array_equal(lengths, ref[strategy]["sequence_lengths"], err_msg=label)
                np.testing.assert_allclose(scores, ref[strategy]["scores"], atol=1e-4, err_msg=label)


def test_prefill_and_decode_logits_match_keras(runtimes, keras_reference):
    ref = keras_reference
    model = ref["model"]
    batch, width = ref["token_ids"].shape
    positions = np.tile(np.arange(width, dtype=np.int32), (batch, 1))
    greedy = ref["greedy"]["sequences"]
    rows = np.arange(batch)
    for runtime_name in ("saved_model", "tflite", "onnx"):
        runtime = runtimes[runtime_name]
        empty = model.init_cache(batch, MAX_LENGTH)
        want_logits, want_cache = model.call_with_cache(ref["token_ids"], positions, empty)
        logits, cache = runtime.prefill(ref["token_ids"], positions, runtime.init_cache(batch))
        assert np.max(np.abs(logits - np.asarray(want_logits))) <= 1e-4, runtime_name
        for step in range(2):
            position = np.minimum(ref["lengths"] + step, MAX_LENGTH - 1)[:, None].astype(np.int32)
            token = greedy[rows, position[:, 0]][:, None]
            want_logits, want_cache = model.call_with_cache(token, position, want_cache)
            logits, cache = runtime.decode(token, position, cache)
            assert logits.shape == (batch, 1, runtime.vocabulary_size)
            assert np.max(np.abs(logits - np.asarray(want_logits))) <= 1e-4, (runtime_name, step)
            assert np.max(np.abs(cache[1][0] - np.asarray(want_cache[1][0]))) <= 1e-4


def test_saved_model_runs_in_a_fresh_process_without_tfzoo(fresh_process, keras_reference):
    ref = keras_reference
    out = fresh_process
    assert out["tfzoo_imported"] == []
    assert out["signatures"] == ["decode", "generate", "generate_greedy", "prefill", "serving_default"]
    beam = ref["beam"]
    np.testing.assert_array_equal(np.array(out["sequences"]), beam["sequences"])
    tokenizer = ref["tokenizer"]
    expected = [
        tokenizer.decode(beam["sequences"][row, ref["lengths"][row] : beam["sequence_lengths"][row]])
        for row in range(len(PROMPTS))
    ]
    assert out["completions"] == expected
    assert any(out["completions"])
    np.testing.assert_allclose(out["scores"], beam["scores"], atol=1e-4)


def test_saved_model_cli_lists_the_signatures(fresh_process):
    assert fresh_process.get("saved_model_cli_status") in (None, 0)
    stdout = fresh_process["saved_model_cli"]
    for name in ("serving_default", "generate", "generate_greedy", "prefill", "decode"):
        assert f"signature_def['{name}']" in stdout
    for name in ("prompts", "token_ids", "lengths", "max_new_tokens", "past_k_1", "present_v_1", "completions"):
        assert f"['{name}']" in stdout


def test_tflite_files_use_builtin_ops_only(exported):
    from tensorflow.lite.python import schema_py_generated as schema

    for filename in ("gpt.tflite", "gpt.fp16.tflite", "gpt.int8.tflite"):
        with open(os.path.join(exported["dir"], filename), "rb") as file:
            model = schema.Model.GetRootAs(file.read(), 0)
        custom = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
        assert not any(custom), (filename, custom)
        keys = sorted(model.SignatureDefs(i).SignatureKey().decode() for i in range(model.SignatureDefsLength()))
        assert keys == ["decode", "generate", "generate_greedy", "prefill"]
    # The decode loops stay loops, and the n-gram ban stays a conditional (run only when the knob asks).
    for key in ("tflite", "tflite_fp16", "tflite_int8"):
        assert {"WHILE", "IF"} <= set(exported["report"]["artefacts"][key]["ops"]), key


def test_onnx_files_are_opset_17_standard_ops(exported):
    import onnx

    def nodes(graph):
        for node in graph.node:
            yield node
            for attribute in node.attribute:
                for sub in [attribute.g] + list(attribute.graphs):
                    yield from nodes(sub)

    for signature, entry in exported["report"]["artefacts"]["onnx"]["files"].items():
        model = onnx.load(os.path.join(exported["dir"], entry["path"]))
        onnx.checker.check_model(model)
        assert [(o.domain, o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")] == [("", 17)]
        found = list(nodes(model.graph))
        assert all(n.domain in ("", "ai.onnx") and onnx.defs.has(n.op_type) for n in found), signature
        if signature.startswith("generate"):
            assert {"Loop", "If"} <= {n.op_type for n in found}


def test_graphs_guard_bad_inputs_the_same_way_everywhere(runtimes):
    """Out-of-range ids, lengths, positions and max_new_tokens: no crash, in-range outputs, same everywhere."""
    runtimes = [runtimes[name] for name in ("saved_model", "tflite", "onnx")]
    vocabulary_size = runtimes[0].vocabulary_size
    generate_inputs = {
        "token_ids": np.array([[-7, 5, 10_000], [4, 5, 6], [6, 5, 4]], np.int32),
        "lengths": np.array([0, 99, 2], np.int32),
        "max_new_tokens": np.array(1_000, np.int32),
        "length_penalty": np.array(1.0, np.float32),
        "repetition_penalty": np.array(1.0, np.float32),
        "no_repeat_ngram_size": np.array(0, np.int32),
        **runtimes[0].sequence_tables({}),  # no stop or banned sequences: all -1
    }
    step_inputs = {
        "token_ids": np.array([[-3], [999], [4]], np.int32),
        "positions": np.array([[-5], [500], [3]], np.int32),
    }
    for i, (k, v) in enumerate(runtimes[0].init_cache(3, slots=MAX_LENGTH)):  # fed to `_call` as is
        step_inputs[f"past_k_{i}"], step_inputs[f"past_v_{i}"] = k, v
    results = []
    for runtime in runtimes:
        generated = runtime._call("generate", generate_inputs)
        stepped = runtime._call("decode", step_inputs)
        sequences = generated["sequences"]
        assert np.all((sequences >= 0) & (sequences < vocabulary_size)), runtime.name
        assert np.all(generated["sequence_lengths"] <= MAX_LENGTH)
        assert np.all(np.isfinite(stepped["logits"]))
        results.append((generated, stepped))
    for (generated, stepped), runtime in zip(results[1:], runtimes[1:]):
        np.testing.assert_array_equal(generated["sequences"], results[0][0]["sequences"], err_msg=runtime.name)
        np.testing.assert_allclose(stepped["logits"], results[0][1]["logits"], atol=1e-4, err_msg=runtime.name)
    negative = runtimes[1]._call("generate", dict(generate_inputs, max_new_tokens=np.array(-3, np.int32)))
    np.testing.assert_array_equal(negative["sequence_lengths"], [1, 3, 2])  # nothing generated


def test_runtime_adapters_check_strategy_and_knobs(runtimes):
    runtime = runtimes["onnx"]
    prompt, lengths = np.array([[4, 5]], np.int32), np.array([2], np.int32)
    sequences, _, _ = runtime.generate(prompt, lengths, 4, strategy="greedy", repetition_penalty=1.0)
    assert sequences.shape == (1, MAX_LENGTH)
    ignored, _, _ = runtime.generate(prompt, lengths, 4, strategy="greedy", length_penalty=0.5, temperature=9.0)
    np.testing.assert_array_equal(ignored, sequences)  # knobs of other strategies are ignored, as by Generator
    penalized, penalized_lengths, _ = runtime.generate(prompt, lengths, 8, strategy="greedy", no_repeat_ngram_size=1)
    filled = penalized[0, : penalized_lengths[0]].tolist()
    assert len(filled) > 2 and len(set(filled)) == len(filled)  # with 1-gram blocking no token repeats
    with pytest.raises(RuntimeInputError, match="unknown decoding option"):
        runtime.generate(prompt, lengths, 4, temprature=0.5)
    with pytest.raises(RuntimeInputError, match="min_new_tokens=2 is not available in exported models"):
        runtime.generate(prompt, lengths, 4, min_new_tokens=2)  # not an input of the exported signatures
    with pytest.raises(RuntimeInputError, match="no 'sample' strategy"):
        runtime.generate(prompt, lengths, 4, strategy="sample")
    with pytest.raises(RuntimeInputError, match="lengths"):
        runtime.generate(prompt, np.array([3]), 4)
    with pytest.raises(RuntimeInputError, match="leaves no room under the exported max_length=24"):
        runtime.generate(np.ones((1, 30), np.int32), np.array([24]), 4)
    with pytest.raises(RuntimeInputError, match="max_new_tokens"):
        runtime.generate(prompt, lengths, -1)


@pytest.mark.parametrize("runtime", ["saved_model", "tflite", "onnx"])
def test_generate_cli_runs_each_exported_runtime_like_keras(exported, runtime, capsys):
    from tfzoo.generate import main as generate_main

    common = [f"--workdir={exported['workdir']}", f"--prompt={PROMPTS[1]}", "--max_new_tokens=6"]
    assert generate_main(common + ["--runtime=keras", "--no_jit_compile"]) == 0
    keras_text = capsys.readouterr().out
    assert generate_main(common + [f"--runtime={runtime}", "--strategy=greedy"]) == 0
    assert capsys.readouterr().out == keras_text
    if runtime == "tflite":  # LiteRT's builtin kernels instead of XNNPACK: the same text
        assert generate_main(common + ["--runtime=tflite", "--kernels=builtin", "--strategy=greedy"]) == 0
        assert capsys.readouterr().out == keras_text
    assert generate_main(common + [f"--runtime={runtime}", "--strategy=beam", "--beam_size=3"]) == 2
    assert "beam_size" in capsys.readouterr().err
