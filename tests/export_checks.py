"""Proves a small graph is portable: XLA, TFLite (builtins only) and ONNX give the eager outputs.

`check_portable(fn, inputs)` traces `fn` with a fixed input signature taken from `inputs`, then
compares the eager TensorFlow outputs against

1. the same function compiled with XLA (`jit_compile=True`),
2. a TFLite model converted with `TFLITE_BUILTINS` only (no Flex ops), run with
   `ai_edge_litert` through its named signature,
3. an ONNX model converted by the exporter (`export.onnx_export.convert_onnx`: tf2onnx, opset 17), run in onnxruntime.

Weights captured from Keras layers are frozen into constants first
(`convert_variables_to_constants_v2`), the way the export pipeline does it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

SIGNATURE_KEY = "portable"


def _as_output_dict(outputs: Any) -> dict[str, tf.Tensor]:
    if isinstance(outputs, dict):
        return dict(outputs)
    if isinstance(outputs, (list, tuple)):
        return {f"output_{i}": t for i, t in enumerate(outputs)}
    return {"output_0": outputs}


def _compare(runtime: str, expected: dict[str, np.ndarray], actual: dict[str, Any], atol: float) -> None:
    assert set(actual) == set(expected), f"{runtime}: outputs {sorted(actual)} != {sorted(expected)}"
    for name, want in expected.items():
        got = np.asarray(actual[name])
        assert got.shape == want.shape, f"{runtime}: output {name!r} shape {got.shape} != {want.shape}"
        assert got.dtype == want.dtype, f"{runtime}: output {name!r} dtype {got.dtype} != {want.dtype}"
        np.testing.assert_allclose(
            got.astype(np.float64),
            want.astype(np.float64),
            rtol=0,
            atol=atol,
            err_msg=f"{runtime}: output {name!r} differs from eager TensorFlow",
        )


def _run_tflite(
    frozen: Callable, names: list[str], specs: list[tf.TensorSpec], workdir: str, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    module = tf.Module()
    module.serve = tf.function(frozen, input_signature=specs)
    saved = os.path.join(workdir, "saved_model")
    # No custom gradients: e.g. `tf.nn.silu` captures a tensor the SavedModel cannot serialize.
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(
        module, saved, signatures={SIGNATURE_KEY: module.serve.get_concrete_function()}, options=options
    )
    converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE_KEY])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # noqa: BLE001 (ConverterError and friends: name the offending ops)
        ops = sorted(set(re.findall(r"'(tf\.[A-Za-z0-9_]+)' op", str(error))))
        raise AssertionError(
            f"TFLite builtins-only conversion failed; ops: {ops or 'unknown'}\n{str(error)[:2000]}"
        ) from None
    interpreter = Interpreter(model_content=flatbuffer)
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    expected_inputs = set(interpreter.get_signature_list()[SIGNATURE_KEY]["inputs"])
    assert expected_inputs == set(names), f"TFLite signature inputs {sorted(expected_inputs)} != {names}"
    return runner(**inputs)


def _run_onnx(
    fn: Callable, specs: list[tf.TensorSpec], inputs: dict[str, np.ndarray], output_keys: list[str]
) -> dict[str, np.ndarray]:
    import onnxruntime

    from export.errors import ExportError
    from export.onnx_export import convert_onnx  # the exporter's own conversion (it rejects non-ONNX ops)

    function = tf.function(fn, input_signature=specs)
    try:
        model_proto = convert_onnx(function, name="portable")
    except ExportError as error:
        raise AssertionError(str(error)) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    session_inputs = {i.name for i in session.get_inputs()}
    assert session_inputs == set(inputs), f"ONNX inputs {sorted(session_inputs)} != {sorted(inputs)}"
    output_names = [o.name for o in session.get_outputs()]
    assert len(output_names) == len(output_keys), f"ONNX outputs {output_names} != {output_keys}"
    # tf2onnx keeps the graph's output order, which is the flattened (sorted-key) output dict;
    # it does not always restore the dict keys as names (e.g. `Identity:0`).
    return dict(zip(output_keys, session.run(output_names, inputs)))


class _DropRetracingWarning(logging.Filter):
    """Each call traces fresh functions by design; TF's retracing warning is noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_retracing():
    logger = tf.get_logger()
    quiet = _DropRetracingWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def check_portable(
    fn: Callable[..., Any],
    inputs: dict[str, np.ndarray],
    atol: float = 1e-5,
    xla: bool = True,
) -> dict[str, np.ndarray]:
    """Checks `fn(**inputs)` gives the eager outputs under XLA, TFLite builtins and ONNX Runtime.

    Args:
        fn: callable taking the inputs as keyword tensors, returning a tensor, a list of
            tensors or a dict of tensors (string keys). Layers it calls are built eagerly first.
        inputs: name -> numpy array; the shapes and dtypes become the fixed input signature.
            Input names must differ from the output names (`output_0`, ... or the dict keys).
        atol: absolute tolerance against the eager TensorFlow outputs.
        xla: also compile with XLA (False for graphs with dynamic shapes, e.g. a growing cache).

    Returns:
        The eager outputs as numpy arrays, keyed like the exported outputs.
    """
    with _quiet_retracing():
        return _check_portable(fn, inputs, atol, xla)


def _check_portable(
    fn: Callable[..., Any], inputs: dict[str, np.ndarray], atol: float, xla: bool
) -> dict[str, np.ndarray]:
    names = list(inputs)
    arrays = {name: np.asarray(value) for name, value in inputs.items()}
    specs = [tf.TensorSpec(arrays[n].shape, tf.as_dtype(arrays[n].dtype), name=n) for n in names]

    def flat_fn(*args):
        return _as_output_dict(fn(**dict(zip(names, args))))

    # Eager first: builds any layer, and gives the reference outputs.
    expected = {k: np.asarray(v) for k, v in flat_fn(*[tf.constant(arrays[n]) for n in names]).items()}
    clash = set(expected) & set(names)
    assert not clash, f"input and output names must differ (ONNX): {sorted(clash)}"

    # (1) XLA.
    if xla:
        compiled = tf.function(flat_fn, input_signature=specs, jit_compile=True)
        _compare("XLA", expected, compiled(*[tf.constant(arrays[n]) for n in names]), atol)

    # Freeze captured variables into constants, keeping the structured (dict) outputs.
    concrete = tf.function(flat_fn, input_signature=specs).get_concrete_function()
    frozen_graph = convert_variables_to_constants_v2(concrete, lower_control_flow=False)
    output_keys = sorted(expected)

    def frozen(*args):
        # The frozen function returns a flat list in `tf.nest.flatten` (sorted-key) order;
        # restore the dict so SavedModel/TFLite outputs keep their names.
        return dict(zip(output_keys, tf.nest.flatten(frozen_graph(*args))))

    workdir = tempfile.mkdtemp(prefix="tfzoo_portable_")
    try:
        # (2) TFLite, builtins only, through the named signature.
        _compare("TFLite", expected, _run_tflite(frozen, names, specs, workdir, arrays), atol)
        # (3) ONNX via tf2onnx, in onnxruntime.
        # (the exporter's conversion freezes the variables itself, as the export pipeline has it do)
        _compare("ONNX", expected, _run_onnx(flat_fn, specs, arrays, output_keys), atol)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return expected
