"""TFLite conversion with the builtin op set only, in fp32, fp16, int8 (dynamic range) or int4 (blockwise).

`convert_tflite(saved_model_dir, signature_keys, quantization)` converts the
named signatures of a SavedModel (input and output names kept) with
`supported_ops=[TFLITE_BUILTINS]`. When anything would need Flex (TF select)
or custom ops, it raises `ExportError` naming those ops.

Quantizations:
- "none": float32 weights and compute.
- "fp16": float16 weights, dequantized to float32 when the model loads.
- "int8": dynamic-range quantization: int8 weights, float activations
  quantized on the fly inside the matmuls. Dense weights are quantized per
  tensor, not per output channel, so that the tied token embedding (the table
  of the embedding lookup and the weights of the output layer) is stored once:
  with per-channel scales the converter keeps a second int8 copy of it for
  the output layer, which at the GPT-2-small shape is 31% of the model.
- "int4": weight-only blockwise int4 (`export.tflite_int4`): the fp32 model's matmul weights and the
  tied token embedding in 4 bits with one float16 scale per 32 inputs, stored once; float activations,
  quantized on the fly inside the matmuls as for int8. Asked for by name (not in the default list).
"""

from __future__ import annotations

import collections
import re

from export.errors import ExportError

QUANTIZATIONS = ("none", "fp16", "int8", "int4")
DEFAULT_QUANTIZATIONS = ("none", "fp16", "int8")  # what `python -m export` writes unless told: int4 is asked for


def tflite_filename(name: str, quantization: str) -> str:
    """`<name>.tflite` for float32, `<name>.<quantization>.tflite` otherwise.

    Example:
    >>> tflite_filename("gpt", "none"), tflite_filename("gpt", "int8")
    ('gpt.tflite', 'gpt.int8.tflite')
    """
    return f"{name}.tflite" if quantization == "none" else f"{name}.{quantization}.tflite"


def _failed_ops(message: str) -> list[str]:
    """The TF ops a converter error message names (e.g. `tf.Bitcast`)."""
    return sorted(set(re.findall(r"\btf\.([A-Z][A-Za-z0-9_]*)\b", message)))


def convert_tflite(saved_model_dir: str, signature_keys: list[str], quantization: str = "none") -> bytes:
    """Converts signatures of a SavedModel to a TFLite flatbuffer with builtin ops only.

    Args:
        saved_model_dir: str. A SavedModel with the signatures.
        signature_keys: list of str. Signatures to convert; their input and
            output names are kept.
        quantization: str. "none", "fp16", "int8" or "int4". Defaults to "none".

    Returns:
        The flatbuffer bytes.

    Raises:
        ExportError: unknown quantization, or the conversion needs Flex or custom ops (named).
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; choose from {', '.join(QUANTIZATIONS)}")
    if quantization == "int4":  # the fp32 model, then its weights rewritten (export.tflite_int4)
        from export.tflite_int4 import quantize_int4  # noqa: PLC0415 (imported only when needed)

        return checked_builtins(quantize_int4(convert_tflite(saved_model_dir, signature_keys, "none"))[0], "int4")
    import tensorflow as tf  # noqa: PLC0415 (the CLI imports this module's constants before TensorFlow)

    # Not `from_concrete_functions`: it saves and reloads a SavedModel at every call.
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=list(signature_keys))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True  # noqa: SLF001 (a private option with no public API)
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # noqa: BLE001 (ConverterError and friends: name the ops)
        message = str(error)
        ops = _failed_ops(message)
        detail = (
            f"ops that need Flex or custom ops: {', '.join('tf.' + op for op in ops)}"
            if ops
            else (" ".join(message.split())[:300])
        )
        raise ExportError(f"TFLite conversion with builtin ops only failed ({quantization}): {detail}") from None
    keys = sorted(_signature_keys(flatbuffer))
    if keys != sorted(signature_keys):
        raise ExportError(f"TFLite signatures {keys} are not the requested {sorted(signature_keys)}")
    return checked_builtins(flatbuffer, quantization)


def checked_builtins(flatbuffer: bytes, quantization: str) -> bytes:
    """`flatbuffer` itself; `ExportError` naming them when it uses custom or Flex ops."""
    non_builtin = non_builtin_ops(flatbuffer)
    if non_builtin:
        raise ExportError(f"TFLite model ({quantization}) uses non-builtin ops: {', '.join(non_builtin)}")
    return flatbuffer


def _model(flatbuffer: bytes):
    """Lazy reader of a flatbuffer (the object API copies every buffer: seconds per call)."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415 (imported only when needed)

    return schema.Model.GetRootAs(flatbuffer, 0)


def _signature_keys(flatbuffer: bytes) -> list[str]:
    model = _model(flatbuffer)
    return [model.SignatureDefs(i).SignatureKey().decode() for i in range(model.SignatureDefsLength())]


def _operator_codes(flatbuffer: bytes):
    model = _model(flatbuffer)
    return [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]


def non_builtin_ops(flatbuffer: bytes) -> list[str]:
    """Names of the custom and Flex ops in a TFLite flatbuffer (empty when builtins only)."""
    return sorted({code.CustomCode().decode() for code in _operator_codes(flatbuffer) if code.CustomCode()})


def builtin_op_names(flatbuffer: bytes) -> list[str]:
    """Sorted names of the builtin ops a TFLite flatbuffer uses (e.g. `FULLY_CONNECTED`, `WHILE`)."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415 (imported only when needed)

    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    codes = set()
    for code in _operator_codes(flatbuffer):
        if code.CustomCode():
            continue
        codes.add(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))  # see the schema's note on op codes
    return sorted(names.get(c, str(c)) for c in codes)


def op_histograms(flatbuffer: bytes) -> dict[str, dict[str, int]]:
    """How many of each op the `decode` signature's subgraph runs, and the largest `WHILE` body (`while_body`).

    What a decode step costs in operators (bench/decode_step_ops.py, tests/test_decode_step_forms.py).

    Example:
    >>> op_histograms(open("gpt.tflite", "rb").read())["decode"]["FULLY_CONNECTED"]  # doctest: +SKIP
    9
    """
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415 (imported only when needed)

    model = schema.Model.GetRootAs(flatbuffer, 0)
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        custom = code.CustomCode()
        codes.append(custom.decode() if custom else names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])

    def histogram(index: int) -> collections.Counter:
        graph = model.Subgraphs(index)
        return collections.Counter(codes[graph.Operators(j).OpcodeIndex()] for j in range(graph.OperatorsLength()))

    by_key = {}
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        by_key[signature.SignatureKey().decode()] = signature.SubgraphIndex()
    bodies = []  # WHILE bodies of the generate subgraph's loops
    options = schema.WhileOptions()
    for i in range(model.SubgraphsLength()):
        graph = model.Subgraphs(i)
        for j in range(graph.OperatorsLength()):
            operator = graph.Operators(j)
            if codes[operator.OpcodeIndex()] == "WHILE":
                table = operator.BuiltinOptions()
                options.Init(table.Bytes, table.Pos)
                bodies.append(options.BodySubgraphIndex())
    result = {"decode": dict(histogram(by_key["decode"]))} if "decode" in by_key else {}
    if bodies:
        result["while_body"] = dict(max((histogram(b) for b in bodies), key=lambda h: sum(h.values())))
    return result
