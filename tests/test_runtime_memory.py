"""What the runtime adapters keep in memory: TFLite kernels (`kernels="xnnpack"|"builtin"`), ONNX sessions.

XNNPACK (LiteRT's default delegate) packs its own copy of a weight for every subgraph that uses it, at the
first call of any signature. A file of three signatures over one 16 MB weight shows it in a fresh process:
XNNPACK's peak holds the copies, the builtin kernels' does not; the outputs are the same.
ONNX Runtime prepacks and folds the weights per session: the adapter makes a signature's session at its first call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfzoo.runtime_errors import ExportReadError
from tfzoo.runtimes.adapters import TFLITE_KERNELS, OnnxRuntime, TFLiteRuntime, tflite_resolver

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN, OUT = 1024, 4096  # one float32 weight of 16 MB, shared by the three signatures
WEIGHT_MB = IN * OUT * 4 / 2**20
INFO = {  # what `Runtime` reads of a report's model section; these signatures are not a language model's
    "max_length": 8,
    "strategy": "greedy",
    "strategies": {"greedy": "generate"},
    "num_layers": 1,
    "num_heads": 1,
    "head_dim": 1,
    "vocabulary_size": 2,
}
# Runs in a fresh process: loads the file through TFLiteRuntime, calls every signature, prints outputs and peak RSS.
CHILD = """
import json, sys
import numpy as np
from tfzoo.runtimes.adapters import TFLiteRuntime
path, kernels, info, inputs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
runtime = TFLiteRuntime(path, info, num_threads=1, kernels=kernels)
x = np.linspace(-1, 1, inputs, dtype=np.float32)[None]
outputs = {key: runtime._run(key, {"x": x})["y"][0, :8].tolist() for key in sorted(runtime._runners)}
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"outputs": outputs, "peak_mb": int(status["VmHWM"].split()[0]) / 1024}))
"""


@pytest.fixture(scope="module")
def shared_weight_model(tmp_path_factory) -> str:
    """A `.tflite` file with signatures `plain`, `relu`, `tanh`: each a fully connected layer over one weight."""
    import tensorflow as tf  # only this fixture needs it

    root = tmp_path_factory.mktemp("kernels")
    module = tf.Module()
    module.weight = tf.Variable(np.random.default_rng(0).normal(0, 0.05, (IN, OUT)).astype(np.float32))
    spec = tf.TensorSpec([1, IN], tf.float32, name="x")
    activations = {"plain": tf.identity, "relu": tf.nn.relu, "tanh": tf.tanh}
    signatures = {
        key: tf.function(lambda x, f=f: {"y": f(tf.matmul(x, module.weight))}, input_signature=[spec])
        for key, f in activations.items()
    }
    saved = str(root / "saved")
    tf.saved_model.save(module, saved, signatures=signatures)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(activations))
    path = str(root / "shared.tflite")
    with open(path, "wb") as file:
        file.write(converter.convert())
    assert os.path.getsize(path) < 1.5 * WEIGHT_MB * 2**20  # the weight is stored once
    return path


def _child(path: str, kernels: str) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-c", CHILD, path, kernels, json.dumps(INFO), str(IN)]
    process = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert process.returncode == 0, process.stderr[-2000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_builtin_kernels_keep_no_packed_copies_of_the_weights(shared_weight_model):
    runs = {kernels: _child(shared_weight_model, kernels) for kernels in TFLITE_KERNELS}
    xnnpack, builtin = runs["xnnpack"], runs["builtin"]
    assert sorted(xnnpack["outputs"]) == ["plain", "relu", "tanh"]
    for key, values in xnnpack["outputs"].items():
        np.testing.assert_allclose(builtin["outputs"][key], values, rtol=1e-4, atol=1e-5)
    # XNNPACK packs the weight once per signature's subgraph (3 x 16 MB); the builtin kernels read the mapped file.
    assert builtin["peak_mb"] + 2 * WEIGHT_MB < xnnpack["peak_mb"], runs


def test_unknown_kernels_are_refused_before_loading(shared_weight_model):
    with pytest.raises(ExportReadError, match="unknown TFLite kernels 'gpu'"):
        tflite_resolver("gpu")
    with pytest.raises(ExportReadError, match="choose from xnnpack, builtin"):
        TFLiteRuntime(shared_weight_model, INFO, kernels="ruy")


def _onnx_scale(path: str, factor: float) -> None:
    """A one-node ONNX graph `y = x * factor`, its factor an initializer."""
    import onnx  # only these tests need it
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "factor"], ["y"])],
        "scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor("factor", TensorProto.FLOAT, [], [factor])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_onnx_sessions_are_made_at_their_first_call(tmp_path):
    files = {key: str(tmp_path / f"{key}.onnx") for key in ("double", "triple")}
    _onnx_scale(files["double"], 2.0)
    _onnx_scale(files["triple"], 3.0)
    runtime = OnnxRuntime(files, INFO, num_threads=1)
    assert runtime.sessions == {} and runtime._input_dtypes("triple") == {"x": np.float32}
    np.testing.assert_array_equal(runtime._run("triple", {"x": np.ones([1, 2], np.float32)})["y"], [[3.0, 3.0]])
    assert list(runtime.sessions) == ["triple"]
