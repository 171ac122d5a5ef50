"""ONNX conversion with tf2onnx (opset 17), standard ONNX ops only.

One graph per file: `<name>.onnx` holds `generate` (the decode loop as an
ONNX `Loop`), `<name>.<signature>.onnx` the others (`prefill`, `decode`,
`generate_greedy`, ...). Input and output names are the signature's.

The conversion is tf2onnx's `from_function` path with two graph optimizers
(constant folding, identity removal) and without its defensive deep copies:
the default list took 35 s for the beam-search loop of a tiny model and gave
a graph that ran slower in onnxruntime (measured: 0.030 s against 0.026 s
per call). It uses tf2onnx internals; tf2onnx is pinned in setup.cfg.
"""

from __future__ import annotations

from collections import OrderedDict

import tensorflow as tf

from export.errors import ExportError

ONNX_OPSET = 17
_OPTIMIZERS = ("fold_constants", "remove_identity")


def onnx_filename(name: str, signature: str) -> str:
    """`<name>.onnx` for `generate`, `<name>.<signature>.onnx` for the others.

    Example:
    >>> onnx_filename("gpt", "generate"), onnx_filename("gpt", "decode")
    ('gpt.onnx', 'gpt.decode.onnx')
    """
    return f"{name}.onnx" if signature == "generate" else f"{name}.{signature}.onnx"


WEIGHTS_ALIGNMENT = 4096  # bytes: every weight starts on a page, so a runtime can map the file


def weights_filename(name: str) -> str:
    """`<name>.onnx.weights`: the weights every ONNX file of an export refers to (ONNX external data).

    Example:
    >>> weights_filename("gpt")
    'gpt.onnx.weights'
    """
    return f"{name}.onnx.weights"


def write_weights(path: str, arrays: dict) -> dict[str, tuple[int, int]]:
    """Writes `arrays` once, raw little-endian, each at a `WEIGHTS_ALIGNMENT` offset.

    Returns name -> (offset, length) in bytes.
    """
    import numpy as np  # noqa: PLC0415 (imported only when needed)

    refs = {}
    with open(path, "wb") as file:
        for key, array in arrays.items():
            file.write(b"\0" * (-file.tell() % WEIGHTS_ALIGNMENT))
            data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            refs[key] = (file.tell(), len(data))
            file.write(data)
    return refs


def convert_onnx(
    function, name: str = "tfzoo", initializers: dict | None = None, external: tuple[str, dict] | None = None
):
    """Converts a `tf.function` with an input signature to an ONNX model (opset 17).

    Args:
        function: a `tf.function` with `input_signature`; captured variables are frozen.
        name: str. Recorded as the graph's name.
        initializers: dict of input name -> numpy array, or None. These inputs (e.g. the weights
            of `ExportModule.stateless_function`) become the model's initializers: converted as
            inputs, they cost the conversion no copy of the weights.
        external: `(location, refs)` from `write_weights`, or None. The initializers then refer
            to that file (ONNX external data, `location` relative to the model) instead of
            holding the values: several models share one copy of the weights.

    Returns:
        `onnx.ModelProto`.

    Raises:
        ExportError: tf2onnx left ops that are not standard ONNX ops (named).
    """
    from tf2onnx import optimizer, tf_loader, tfonnx  # noqa: PLC0415 (imported only when needed)
    from tf2onnx.convert import tensor_names_from_structed  # noqa: PLC0415 (imported only when needed)

    concrete = function.get_concrete_function()
    input_names = [t.name for t in concrete.inputs if t.dtype != tf.resource]
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    renames = tensor_names_from_structed(concrete, input_names, output_names)
    with tf.device("/cpu:0"):
        if concrete.captured_inputs:
            frozen = tf_loader.from_function(concrete, input_names, output_names)
        else:  # nothing to freeze (e.g. `ExportModule.stateless_function`): grappler only
            graph_def = concrete.graph.as_graph_def(add_shapes=True)
            with tf.Graph().as_default():
                frozen = tf_loader.tf_optimize(input_names, output_names, graph_def)
        frozen = _restore_loop_shapes(frozen)
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(frozen, name="")
        onnx_graph = tfonnx.process_tf_graph(
            graph,
            continue_on_error=True,  # unsupported ops are kept and reported below, by name
            opset=ONNX_OPSET,
            input_names=input_names,
            output_names=output_names,
            tensors_to_rename=renames,
        )
        optimizers = OrderedDict((key, optimizer._optimizers[key]) for key in _OPTIMIZERS)  # noqa: SLF001 (a private option with no public API)
        onnx_graph = optimizer.optimize_graph(onnx_graph, catch_errors=False, optimizers=optimizers)
        model = onnx_graph.make_model(f"tfzoo {name}")
    if initializers:
        _inputs_to_initializers(model, initializers, external)
    unknown = sorted(non_standard_ops(model))
    if unknown:
        raise ExportError(f"ONNX conversion of {name} left ops that are not standard ONNX ops: {', '.join(unknown)}")
    return model


def _inputs_to_initializers(model, initializers: dict, external: tuple[str, dict] | None = None) -> None:
    """Moves the graph inputs named in `initializers` into the graph's initializers (values or external refs)."""
    import onnx  # noqa: PLC0415 (imported only when needed)
    from onnx import numpy_helper  # noqa: PLC0415 (imported only when needed)

    kept = [i for i in model.graph.input if i.name not in initializers]
    moved = [i.name for i in model.graph.input if i.name in initializers]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    for key in moved:
        array = initializers[key]
        if external is None:
            model.graph.initializer.append(numpy_helper.from_array(array, key))
            continue
        location, refs = external
        offset, length = refs[key]
        tensor = onnx.TensorProto(name=key, data_type=onnx.helper.np_dtype_to_tensor_dtype(array.dtype))
        tensor.dims.extend(array.shape)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for field, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = field, value
        model.graph.initializer.append(tensor)


def _restore_loop_shapes(graph_def):
    """Gives `While` bodies and conditions back the shapes of their loop variables.

    grappler's function optimizer specializes a loop body that holds an `If`
    (e.g. the n-gram ban of `tfzoo.decoding.penalties`) and drops its argument
    shapes; tf2onnx then cannot convert the body's shape-dependent ops (a
    new-axis `StridedSlice` of unknown rank). The `While` node still records the
    shapes (`output_shapes`): copy them onto the functions' arguments.
    """
    functions = {f.signature.name: f for f in graph_def.library.function}
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    for node in nodes:
        if node.op not in ("While", "StatelessWhile") or "output_shapes" not in node.attr:
            continue
        shapes = node.attr["output_shapes"].list.shape
        for key in ("body", "cond"):
            function = functions.get(node.attr[key].func.name)
            if function is None:
                continue
            for index, shape in enumerate(shapes[: len(function.signature.input_arg)]):
                attrs = function.arg_attr[index].attr
                known = attrs["_output_shapes"].list.shape if "_output_shapes" in attrs else []
                if shape.unknown_rank or (known and not known[0].unknown_rank):
                    continue
                attrs["_output_shapes"].list.ClearField("shape")
                attrs["_output_shapes"].list.shape.add().CopyFrom(shape)
    return graph_def


def non_standard_ops(model) -> set[str]:
    """`domain:op` of every node (subgraphs included) that is not a standard ONNX op."""
    import onnx  # noqa: PLC0415 (imported only when needed)

    unknown = set()

    def visit(graph):
        for node in graph.node:
            if node.domain not in ("", "ai.onnx") or not onnx.defs.has(node.op_type):
                unknown.add(f"{node.domain or 'ai.onnx'}:{node.op_type}")
            for attribute in node.attribute:
                if attribute.g is not None and attribute.g.node:
                    visit(attribute.g)
                for subgraph in attribute.graphs:
                    visit(subgraph)

    visit(model.graph)
    return unknown


def op_types(model) -> list[str]:
    """Sorted op types of an ONNX model, subgraphs (loop bodies) included."""
    types = set()

    def visit(graph):
        for node in graph.node:
            types.add(node.op_type)
            for attribute in node.attribute:
                if attribute.g is not None and attribute.g.node:
                    visit(attribute.g)
                for subgraph in attribute.graphs:
                    visit(subgraph)

    visit(model.graph)
    return sorted(types)
