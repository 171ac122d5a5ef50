"""Weight-only int4 TFLite (`--quantization=int4`, `export/tflite_int4.py`): the format, the export, the runtime.

The quick tests check the block quantization and the nibble order in numpy, and the one-line errors. The
export tests (fixture `int4_exported`, slow: tests/conftest.py) export a perturbed GPT wide enough for its
weights to outweigh the graph (hidden 128) to fp32, int8 and int4 TFLite, then check the int4 file: builtin
ops only, int4 weights, smaller than int8, its report fields, tokens in the TFLite runtime and the generate
CLI, a validation loss close to fp32's, and outputs equal to a float model that holds the dequantized weights.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest

from export.errors import ExportError
from export.pipeline import check_quantizations
from export.tflite_int4 import dequantize_int4, pack_int4, quantize_blocks

MAX_LENGTH = 24


def test_blocks_are_at_least_as_close_as_max_abs_scales():
    rng = np.random.default_rng(0)
    weights = rng.standard_t(3, (6, 96)).astype(np.float32) * 0.05  # heavy tails: outliers to clip or not
    weights[2, 32:64] = 0.0  # an all-zero block
    values, scales = quantize_blocks(weights, 32)
    assert values.dtype == np.int8 and values.min() >= -8 and values.max() <= 7
    assert scales.dtype == np.float16 and scales.shape == (6, 3)
    assert np.all(values[2, 32:64] == 0)
    blocks = weights.reshape(6, 3, 32)
    plain = (np.abs(blocks).max(axis=-1) / 7).astype(np.float16).astype(np.float32)[..., None]
    plain[plain == 0] = 1.0
    plain_error = np.square(np.clip(np.rint(blocks / plain), -8, 7) * plain - blocks).sum(axis=-1)
    error = np.square(dequantize_int4(values, scales).reshape(6, 3, 32) - blocks).sum(axis=-1)
    assert np.all(error <= plain_error + 1e-12) and error.sum() < 0.95 * plain_error.sum()


def test_pack_puts_the_first_value_in_the_low_nibble():
    values = np.array([1, -2, 7, -8, 0, -1], np.int8)
    packed = pack_int4(values)
    assert packed.tolist() == [0xE1, 0x87, 0xF0]
    low = ((packed.astype(np.int32) & 0xF) ^ 8) - 8  # sign-extended nibbles
    high = ((packed.astype(np.int32) >> 4) ^ 8) - 8
    assert np.stack([low, high], axis=1).reshape(-1).tolist() == values.tolist()


def test_int4_where_it_cannot_apply_is_a_one_line_error():
    check_quantizations(("none", "int8"), ("litertlm",), {"hidden_dim": 48})  # no int4 asked: nothing to check
    check_quantizations(("int4",), ("tflite",), {"hidden_dim": 64})
    with pytest.raises(ExportError, match="hidden_dim=48 is not a multiple of 32"):
        check_quantizations(("none", "int4"), ("tflite",), {"hidden_dim": 48})
    with pytest.raises(ExportError, match="int4 is a TFLite variant only: --formats=litertlm bundles take"):
        check_quantizations(("int4",), ("tflite", "litertlm"), {"hidden_dim": 64})


@pytest.fixture(scope="module")
def int4_exported(tmp_path_factory):
    from export.pipeline import export_workdir
    from export_helpers import make_workdir, perturb_workdir

    # Embeddings 5x their initialization, not make_workdir's 50x: at hidden 128 that would give logits in the
    # hundreds and a loss of 20-30 nats, where any rounding moves the loss by percents. Perturbed: greedy
    # continuations that vary (Keras loss ~4.5 nats; int4 changed it by -0.9% here).
    workdir = make_workdir(
        tmp_path_factory.mktemp("int4") / "run", hidden_dim=128, intermediate_dim=256, embedding_scale=5.0
    )
    perturb_workdir(workdir, scale=0.1)
    report = export_workdir(
        workdir,
        formats=["tflite"],
        quantization=["none", "int8", "int4"],
        strategy="greedy",
        max_length=MAX_LENGTH,
        log=lambda line: None,
    )
    return {"workdir": workdir, "report": report, "export": os.path.join(workdir, "export")}


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def test_int4_file_is_builtin_only_int4_and_smaller_than_int8(int4_exported):
    from tensorflow.lite.python import schema_py_generated as schema

    from export.tflite_export import builtin_op_names, non_builtin_ops

    artefacts = int4_exported["report"]["artefacts"]
    flatbuffer = _read(os.path.join(int4_exported["export"], "gpt.int4.tflite"))
    assert non_builtin_ops(flatbuffer) == []
    assert builtin_op_names(flatbuffer) == artefacts["tflite_int4"]["ops"]
    model = schema.Model.GetRootAs(flatbuffer, 0)
    int4_tensors = [
        model.Subgraphs(s).Tensors(t)
        for s in range(model.SubgraphsLength())
        for t in range(model.Subgraphs(s).TensorsLength())
        if model.Subgraphs(s).Tensors(t).Type() == schema.TensorType.INT4
    ]
    assert int4_tensors and all(
        t.Quantization().DetailsType() == schema.QuantizationDetails.BlockwiseQuantization for t in int4_tensors
    )
    sizes = {key: artefacts[key]["size_bytes"] for key in ("tflite", "tflite_int8", "tflite_int4")}
    assert sizes["tflite_int4"] < sizes["tflite_int8"] < sizes["tflite"], sizes
    # 2 layers x 6 matmuls + the tied embedding (output layer); its 6 lookups read the same int4 buffer.
    # 2 blocks x (one fused query/key/value kernel, the attention output, 2 feed-forward) + the tied logits.
    assert artefacts["tflite_int4"]["int4"] == {"block_size": 32, "weights": 9, "float_weights": 0, "gathers": 6}


def test_int4_report_fields_are_int8s(int4_exported):
    report = int4_exported["report"]
    assert report["passed"], report["failures"]
    int8, int4 = report["artefacts"]["tflite_int8"], report["artefacts"]["tflite_int4"]
    assert set(int4) == set(int8) | {"int4"}
    assert (int4["format"], int4["quantization"], int4["path"]) == ("tflite", "int4", "gpt.int4.tflite")
    assert int4["signatures"] == int8["signatures"]
    assert set(int4["parity"]) == set(int8["parity"])
    assert int4["parity"]["validation_loss_tolerance"] == 0.03
    assert 0.0 <= int4["parity"]["token_agreement"] <= 1.0
    with open(os.path.join(int4_exported["export"], "report.json"), encoding="utf-8") as file:
        assert json.load(file)["artefacts"]["tflite_int4"]["int4"]["block_size"] == 32


def test_int4_loss_is_close_to_fp32(int4_exported):
    parity = int4_exported["report"]["artefacts"]["tflite_int4"]["parity"]
    keras_loss = int4_exported["report"]["reference"]["validation"]["keras_loss"]
    assert abs(parity["validation_loss_change"]) <= 0.03, parity["validation_loss_change"]
    assert parity["validation_loss"] == pytest.approx(keras_loss * (1 + parity["validation_loss_change"]))
    assert parity["decode_max_logit_diff"] > 0  # really quantized


def test_int4_generates_in_the_tflite_runtime_and_the_cli(int4_exported, capsys):
    from tfzoo.generate import main as generate_main
    from tfzoo.runtimes import load_runtime

    report = int4_exported["report"]
    runtime = load_runtime(int4_exported["workdir"], "tflite", quantization="int4")
    assert runtime.path.endswith("gpt.int4.tflite")
    prompts = report["reference"]
    sequences, lengths, _ = runtime.generate(
        np.array(prompts["token_ids"], np.int32), np.array(prompts["lengths"], np.int32), prompts["max_new_tokens"]
    )
    recorded = report["artefacts"]["tflite_int4"]["parity"]["generate"]["greedy"]
    assert sequences.tolist() == recorded["sequences"] and lengths.tolist() == recorded["sequence_lengths"]
    generated = [s[n:m] for s, n, m in zip(sequences.tolist(), prompts["lengths"], lengths.tolist())]
    assert all(generated) and len({token for row in generated for token in row}) > 2  # tokens, and varied
    assert max(max(row) for row in generated) < report["model"]["vocabulary_size"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = generate_main(
            [
                f"--workdir={int4_exported['workdir']}",
                "--runtime=tflite",
                "--quantization=int4",
                "--prompt=def ",
                "--max_new_tokens=6",
            ]
        )
    assert status == 0 and out.getvalue().startswith("def "), out.getvalue()


def test_int4_outputs_are_the_dequantized_weights(int4_exported):
    """The int4 file computes the fp32 graph with `dequantize_int4` of its weights (nibbles, scales, lookups)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    from export.tflite_int4 import _builtin, _uses
    from tfzoo.runtimes.adapters import TFLiteRuntime

    export_dir, info = int4_exported["export"], int4_exported["report"]["model"]
    model = schema.ModelT.InitFromPackedBuf(_read(os.path.join(export_dir, "gpt.tflite")), 0)
    for buffer, uses in _uses(model, schema).items():
        subgraph, operator, position = uses[0]
        tensor = model.subgraphs[subgraph].tensors[operator.inputs[position]]
        is_weight = any(_builtin(model, op) == schema.BuiltinOperator.FULLY_CONNECTED and p == 1 for _, op, p in uses)
        if is_weight and tensor.type == schema.TensorType.FLOAT32 and len(tensor.shape) == 2:
            weights = np.frombuffer(model.buffers[buffer].data.tobytes(), np.float32).reshape(tensor.shape)
            dequantized = dequantize_int4(*quantize_blocks(weights))
            model.buffers[buffer].data = np.frombuffer(dequantized.tobytes(), np.uint8)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    float_path = os.path.join(os.path.dirname(export_dir), "dequantized.tflite")
    with open(float_path, "wb") as file:
        file.write(builder.Output())

    runtimes = {
        name: TFLiteRuntime(path, info)
        for name, path in {
            "fp32": os.path.join(export_dir, "gpt.tflite"),
            "int4": os.path.join(export_dir, "gpt.int4.tflite"),
            "dequantized": float_path,
        }.items()
    }
    rng = np.random.default_rng(0)
    ids = rng.integers(3, info["vocabulary_size"], (2, 12)).astype(np.int32)
    positions = np.tile(np.arange(12, dtype=np.int32), (2, 1))
    logits = {name: r.prefill(ids, positions, r.init_cache(2))[0] for name, r in runtimes.items()}
    quantization_error = np.abs(logits["fp32"] - logits["dequantized"]).max()
    activation_error = np.abs(logits["int4"] - logits["dequantized"]).max()  # the matmuls' on-the-fly int8 inputs
    assert quantization_error > 0 and activation_error < quantization_error / 3, (activation_error, quantization_error)
