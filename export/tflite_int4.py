"""Weight-only int4 for a converted TFLite model: blockwise 4-bit weights, builtin ops only.

`quantize_int4(flatbuffer)` rewrites an fp32 flatbuffer (what `convert_tflite` gives for "none"):

- every constant float32 weight [out, in] of a `FULLY_CONNECTED` (the attention and MLP projections,
  the output layer) whose `in` is a multiple of the block size becomes an `INT4` tensor (two values a
  byte, the first in the low nibble) with TFLite's blockwise quantization: one float16 scale per
  `block_size` inputs of each output row, symmetric (no zero point), values in [-8, 7]. Activations
  stay float: the CPU kernels (XNNPACK's blockwise int4 matmul) quantize them on the fly, as for the
  dynamic-range int8 file;
- the tied token embedding (one table that is both the `GATHER` of the token lookup and the output
  layer's weights) is stored once, as that int4 tensor: each `GATHER` of it becomes a lookup of its
  packed bytes (an int8 view of the same buffer, [rows, blocks, block_size / 2]) unpacked with
  builtin integer ops (`FLOOR_DIV` / `FLOOR_MOD` by 16), times the row's block scales (the same
  float16 buffer, gathered, then dequantized), reshaped back to [..., in]. A per-tensor int8 table
  would need a second copy for the output layer, and TFLite's `GATHER` has no blockwise form;
- everything else (norms, biases, the position table, masks) stays as it is.

Why our own pass and not `ai-edge-quantizer` 0.10.0 (measured on a tiny tfzoo GPT): its blockwise
int4 recipe quantizes `FULLY_CONNECTED` and `EMBEDDING_LOOKUP` only; the token lookup here is a
`GATHER`, so the quantizer keeps the tied table in float32 and writes a copy of it for every
subgraph that gathers from it (six: `generate`'s loop body and each signature), which at the
GPT-2-small shape would be ~0.9 GB of float tables in a file that is 82 MB (0.155x fp32) this way.

The dequantized weights are `dequantize_int4` of what was stored (tests compare the file's outputs
with a float model that holds exactly those weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from export.errors import ExportError

BLOCK_SIZE = 32  # inputs per scale: 4.5 bits a weight with float16 scales (64 and 128 also ran in XNNPACK here)
_QMAX = 7  # symmetric int4: [-8, 7], scales around max |w| / 7
SCALE_GRID = np.linspace(0.5, 1.15, 27)  # candidate scales of a block, times max |w| / 7 (`quantize_blocks`)


def quantize_blocks(weights: np.ndarray, block_size: int = BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """`(values int8 [out, in] in [-8, 7], scales float16 [out, in // block_size])` of a float [out, in] matrix.

    Each block's scale is the one of `SCALE_GRID` x max |w| / 7 that gives the least squared error
    once rounded (a clipped maximum often costs less than coarser steps for every other weight): on
    the trained default model (`configs/gpt_char.py`) the validation loss changed by +2.2% against
    fp32 with this search and by +4.4% with max |w| / 7 alone. The scales are rounded to float16
    before the values are computed, so that `values * scales` is exactly what a runtime dequantizes.

    Example:
    >>> values, scales = quantize_blocks(np.array([[0.7, -1.4] * 16], np.float32))
    >>> values[0, :2].tolist(), float(scales[0, 0])
    ([4, -8], 0.175048828125)
    """
    rows, columns = weights.shape
    values = np.empty((rows, columns), np.int8)
    scales = np.empty((rows, columns // block_size), np.float16)
    step = max(1, (1 << 22) // columns)  # rows at a time: a few MB of float32 per candidate
    for start in range(0, rows, step):
        blocks = weights[start : start + step].astype(np.float32).reshape(-1, columns // block_size, block_size)
        peak = np.abs(blocks).max(axis=-1) / _QMAX
        best_error = np.full(peak.shape, np.inf, np.float32)
        best = np.ones(peak.shape, np.float16)
        for factor in SCALE_GRID:
            scale = (peak * factor).astype(np.float16)
            scale[scale == 0] = 1.0  # an all-zero block: any scale
            wide = scale.astype(np.float32)[..., None]
            error = np.square(np.clip(np.rint(blocks / wide), -8, _QMAX) * wide - blocks).sum(axis=-1)
            better = error < best_error
            best_error[better], best[better] = error[better], scale[better]
        block_values = np.clip(np.rint(blocks / best.astype(np.float32)[..., None]), -8, _QMAX)
        values[start : start + step] = block_values.reshape(-1, columns)
        scales[start : start + step] = best
    return values, scales


def dequantize_int4(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The float32 matrix that int4 `values` [out, in] and float16 `scales` [out, in // block] stand for."""
    rows, columns = values.shape
    blocks = values.reshape(rows, scales.shape[1], -1).astype(np.float32) * scales.astype(np.float32)[..., None]
    return blocks.reshape(rows, columns)


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Int4 values (int8 in [-8, 7], an even count) packed two a byte, the first in the low nibble (TFLite's order).

    Example:
    >>> pack_int4(np.array([1, -2, 7, -8], np.int8)).tolist()
    [225, 135]
    """
    nibbles = (values.reshape(-1, 2).astype(np.int16) & 0xF).astype(np.uint8)
    return nibbles[:, 0] | (nibbles[:, 1] << 4)


class _Editor:
    """Adds tensors, buffers and operators to a `schema.ModelT` (the object API of the TFLite schema)."""

    def __init__(self, model):
        from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415 (imported only when needed)

        self.schema, self.model = schema, model
        self._codes: dict[int, int] = {}

    def buffer(self, data: np.ndarray | None) -> int:
        buffer = self.schema.BufferT()
        buffer.data = None if data is None else np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        self.model.buffers.append(buffer)
        return len(self.model.buffers) - 1

    def tensor(self, subgraph, name: str, dtype: int, shape, buffer: int = 0, signature=None) -> int:
        tensor = self.schema.TensorT()
        tensor.name, tensor.type, tensor.buffer = name.encode(), dtype, buffer
        tensor.shape = np.asarray(shape, np.int32)
        if signature is not None:
            tensor.shapeSignature = np.asarray(signature, np.int32)
        subgraph.tensors.append(tensor)
        return len(subgraph.tensors) - 1

    def constant(self, subgraph, name: str, value: np.ndarray) -> int:
        dtypes = {
            np.dtype(np.int32): self.schema.TensorType.INT32,
            np.dtype(np.float32): self.schema.TensorType.FLOAT32,
        }
        return self.tensor(subgraph, name, dtypes[value.dtype], value.shape, self.buffer(value))

    def _code(self, builtin: int) -> int:
        if builtin not in self._codes:
            for index, code in enumerate(self.model.operatorCodes):
                if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin and not code.customCode:
                    self._codes[builtin] = index
                    break
            else:
                code = self.schema.OperatorCodeT()
                code.builtinCode = code.deprecatedBuiltinCode = builtin
                code.version = 1
                self.model.operatorCodes.append(code)
                self._codes[builtin] = len(self.model.operatorCodes) - 1
        return self._codes[builtin]

    def operator(self, name: str, inputs, outputs, options: str | None = None, **fields):
        """An `OperatorT` of builtin `name` (e.g. "GATHER") with `<options>T(**fields)` as its options."""
        schema = self.schema
        operator = schema.OperatorT()
        operator.opcodeIndex = self._code(getattr(schema.BuiltinOperator, name))
        operator.inputs = np.asarray(inputs, np.int32)
        operator.outputs = np.asarray(outputs, np.int32)
        if options is not None:
            value = getattr(schema, f"{options}T")()
            for key, field in fields.items():
                setattr(value, key, field)
            operator.builtinOptionsType = getattr(schema.BuiltinOptions, options)
            operator.builtinOptions = value
        return operator


def _uses(model, schema) -> dict[int, list[tuple[int, Any, int]]]:
    """Constant buffer -> every (subgraph index, operator, input position) that reads a tensor of it."""
    uses: dict[int, list] = {}
    for s, subgraph in enumerate(model.subgraphs):
        for operator in subgraph.operators:
            for position, index in enumerate(operator.inputs if operator.inputs is not None else ()):
                if index >= 0 and subgraph.tensors[index].buffer > 0:
                    uses.setdefault(subgraph.tensors[index].buffer, []).append((s, operator, position))
    return uses


def _builtin(model, operator) -> int:
    code = model.operatorCodes[operator.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def quantize_int4(flatbuffer: bytes, *, block_size: int = BLOCK_SIZE) -> tuple[bytes, dict[str, Any]]:
    """The int4 form of an fp32 TFLite flatbuffer (module docstring), and what was quantized.

    Args:
        flatbuffer: bytes. A float32 model from `convert_tflite(..., "none")`.
        block_size: int. Inputs per scale (even; 32, 64 and 128 ran in XNNPACK). Defaults to 32.

    Returns:
        `(flatbuffer, facts)`: `facts` has `block_size`, `weights` (the int4 tensors), `float_weights`
        (`FULLY_CONNECTED` weights left in float32: their input size is not a multiple of
        `block_size`) and `gathers` (token lookups rewritten to read the int4 table).

    Raises:
        ExportError: the model has no weight that int4 can hold.
    """
    import flatbuffers  # noqa: PLC0415 (imported only when needed)
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415 (imported only when needed)

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    editor = _Editor(model)
    types, ops = schema.TensorType, schema.BuiltinOperator
    facts = {"block_size": block_size, "weights": 0, "float_weights": 0, "gathers": 0}
    for buffer_index, uses in _uses(model, schema).items():
        if not any(_builtin(model, op) == ops.FULLY_CONNECTED and position == 1 for _, op, position in uses):
            continue
        s0, op0, p0 = uses[0]
        first = model.subgraphs[s0].tensors[op0.inputs[p0]]
        data = model.buffers[buffer_index].data
        if first.type != types.FLOAT32 or len(first.shape) != 2 or data is None or len(data) == 0:
            continue
        rows, columns = (int(d) for d in first.shape)
        gather_only = all(
            (_builtin(model, op) == ops.FULLY_CONNECTED and position == 1)
            or (_builtin(model, op) == ops.GATHER and position == 0 and op.builtinOptions.axis == 0)
            for _, op, position in uses
        )
        if columns % block_size or not gather_only:
            facts["float_weights"] += 1
            continue
        weights = np.frombuffer(data.tobytes(), np.float32).reshape(rows, columns)
        values, scales = quantize_blocks(weights, block_size)
        model.buffers[buffer_index].data = pack_int4(values)
        scales_buffer = editor.buffer(scales)
        facts["weights"] += 1
        done: dict[tuple[int, int], Any] = {}  # (subgraph, tensor) -> its quantization, made once per tensor
        for s, operator, position in uses:
            subgraph = model.subgraphs[s]
            index = int(operator.inputs[position])
            tensor = subgraph.tensors[index]
            if _builtin(model, operator) == ops.GATHER:
                _rewrite_gather(editor, subgraph, operator, buffer_index, scales_buffer, (rows, columns), block_size)
                facts["gathers"] += 1
                continue
            if (s, index) not in done:
                name = tensor.name.decode()
                scales_tensor = editor.tensor(
                    subgraph, f"{name}/int4_scales", types.FLOAT16, scales.shape, scales_buffer
                )
                details = schema.BlockwiseQuantizationT()
                details.scales, details.zeroPoints, details.blockSize = scales_tensor, -1, block_size
                quantization = schema.QuantizationParametersT()
                quantization.detailsType = schema.QuantizationDetails.BlockwiseQuantization
                quantization.details = details
                tensor.type, tensor.quantization = types.INT4, quantization
                done[(s, index)] = quantization
    if facts["weights"] == 0:
        raise ExportError(
            f"int4 found no FULLY_CONNECTED weight whose input size is a multiple of {block_size}: "
            "this model's dimensions (hidden_dim, intermediate_dim) cannot be held in blocks of int4"
        )
    builder = flatbuffers.Builder(1024 + len(flatbuffer) // 4)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), facts


def _rewrite_gather(editor: _Editor, subgraph, operator, buffer: int, scales_buffer: int, shape, block_size: int):
    """Turns `GATHER(table, ids)` of an int4 table into builtin ops that unpack the gathered rows.

    ids [...] -> packed bytes [..., blocks, block/2] (int8 view of the table) -> high nibble
    `floor(b / 16)`, low nibble `((b + 8) mod 16) - 8`, interleaved low first -> float, times the
    rows' scales [..., blocks, 1, 1] (gathered from the float16 scales the matmul reads, then dequantized:
    dequantizing the whole table first would keep a float32 copy of it per subgraph) -> reshaped to
    [..., columns] (the original output tensor).
    """
    types = editor.schema.TensorType
    rows, columns = shape
    blocks, half = columns // block_size, block_size // 2
    ids, output = int(operator.inputs[1]), int(operator.outputs[0])
    rank = len(subgraph.tensors[ids].shape)
    prefix = f"{subgraph.tensors[output].name.decode()}/int4"
    ids_shape = [int(d) for d in subgraph.tensors[ids].shape]
    ids_signature = subgraph.tensors[ids].shapeSignature
    ids_signature = ids_shape if ids_signature is None or len(ids_signature) == 0 else [int(d) for d in ids_signature]

    def inner(dtype, name, tail):
        return editor.tensor(subgraph, f"{prefix}/{name}", dtype, ids_shape + tail, signature=ids_signature + tail)

    table = editor.tensor(subgraph, f"{prefix}/packed_table", types.INT8, [rows, blocks, half], buffer)
    scales16 = editor.tensor(subgraph, f"{prefix}/scales_f16", types.FLOAT16, [rows, blocks, 1, 1], scales_buffer)
    c8 = editor.constant(subgraph, f"{prefix}/eight", np.array(8, np.int32))
    c16 = editor.constant(subgraph, f"{prefix}/sixteen", np.array(16, np.int32))
    width = editor.constant(subgraph, f"{prefix}/columns", np.array([columns], np.int32))
    packed = inner(types.INT8, "packed", [blocks, half])
    wide = inner(types.INT32, "wide", [blocks, half])
    high = inner(types.INT32, "high", [blocks, half])
    shifted = inner(types.INT32, "shifted", [blocks, half])
    low_unsigned = inner(types.INT32, "low_unsigned", [blocks, half])
    low = inner(types.INT32, "low", [blocks, half])
    pairs = inner(types.INT32, "pairs", [blocks, half, 2])
    values = inner(types.FLOAT32, "values", [blocks, half, 2])
    row_scales16 = inner(types.FLOAT16, "row_scales_f16", [blocks, 1, 1])
    row_scales = inner(types.FLOAT32, "row_scales", [blocks, 1, 1])
    scaled = inner(types.FLOAT32, "scaled", [blocks, half, 2])
    ids_dims = editor.tensor(subgraph, f"{prefix}/ids_shape", types.INT32, [rank])
    out_dims = editor.tensor(subgraph, f"{prefix}/out_shape", types.INT32, [rank + 1])
    e = editor
    replacement = [
        e.operator("GATHER", [table, ids], [packed], "GatherOptions", axis=0, batchDims=0),
        e.operator("CAST", [packed], [wide], "CastOptions", inDataType=types.INT8, outDataType=types.INT32),
        e.operator("FLOOR_DIV", [wide, c16], [high], "FloorDivOptions"),
        e.operator("ADD", [wide, c8], [shifted], "AddOptions", fusedActivationFunction=0),
        e.operator("FLOOR_MOD", [shifted, c16], [low_unsigned], "FloorModOptions"),
        e.operator("SUB", [low_unsigned, c8], [low], "SubOptions", fusedActivationFunction=0),
        e.operator("PACK", [low, high], [pairs], "PackOptions", valuesCount=2, axis=rank + 2),
        e.operator("CAST", [pairs], [values], "CastOptions", inDataType=types.INT32, outDataType=types.FLOAT32),
        e.operator("GATHER", [scales16, ids], [row_scales16], "GatherOptions", axis=0, batchDims=0),
        e.operator("DEQUANTIZE", [row_scales16], [row_scales]),
        e.operator("MUL", [values, row_scales], [scaled], "MulOptions", fusedActivationFunction=0),
        e.operator("SHAPE", [ids], [ids_dims], "ShapeOptions", outType=types.INT32),
        e.operator("CONCATENATION", [ids_dims, width], [out_dims], "ConcatenationOptions", axis=0),
        e.operator("RESHAPE", [scaled, out_dims], [output], "ReshapeOptions"),
    ]
    at = subgraph.operators.index(operator)
    subgraph.operators[at : at + 1] = replacement
