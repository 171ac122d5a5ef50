"""The adapters of the exported formats: SavedModel (TensorFlow), TFLite (`ai_edge_litert`), ONNX (onnxruntime).

None imports tfzoo's models; each imports its own runtime library only when
constructed. `load_runtime(workdir, runtime)` reads `report.json`
(`tfzoo.export_report.read_report`) and picks the artefact.
"""

from __future__ import annotations

import os

import numpy as np

from tfzoo.export_report import read_report
from tfzoo.run_folder import RunFolder
from tfzoo.runtime_errors import ExportReadError
from tfzoo.runtimes.base import Runtime

RUNTIMES = ("saved_model", "tflite", "onnx")


class SavedModelRuntime(Runtime):
    """Runs the SavedModel's signatures with `tf.saved_model.load` (TensorFlow, no tfzoo)."""

    name = "saved_model"

    def __init__(self, path: str, info: dict):
        super().__init__(info)
        import tensorflow as tf  # noqa: PLC0415 (imported only when needed)

        try:  # registers the ops of in-graph wordpiece, sentencepiece and bpe tokenizers (serving_default)
            import tensorflow_text  # noqa: F401, PLC0415 (imported for its side effect; imported only when needed)
        except ImportError:
            pass
        self._tf = tf
        self.path = path
        self.loaded = tf.saved_model.load(path)
        self._dtypes = {}
        for key, function in self.loaded.signatures.items():
            specs = function.structured_input_signature[1]
            self._dtypes[key] = {name: spec.dtype.as_numpy_dtype for name, spec in specs.items()}
            if "past_k_0" in specs and specs["past_k_0"].shape[2] is not None:
                self._fixed_slots.add(key)

    def _input_dtypes(self, signature: str) -> dict[str, np.dtype]:
        return {k: v for k, v in self._dtypes[signature].items() if v is not object}

    def _run(self, signature, inputs):
        tf = self._tf
        outputs = self.loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def complete(self, prompts, max_new_tokens: int = 64) -> tuple[list[str], np.ndarray]:
        """`serving_default`: prompt strings (seq2seq: source strings; captioner: images) -> (texts, scores)."""
        tf = self._tf
        name, value = self.model_kind.serving_feed(self.info, prompts)
        first = {name: tf.constant(value, tf.string) if isinstance(value, list) else tf.constant(value)}
        outputs = self.loaded.signatures["serving_default"](
            **first, max_new_tokens=tf.constant(max_new_tokens, tf.int32)
        )
        return [s.decode("utf-8") for s in outputs["completions"].numpy()], outputs["scores"].numpy()

    def embed_texts(self, texts) -> dict[str, np.ndarray]:
        """`serving_default` of an encoder export: strings in (WordPiece in the graph), `sentence_embedding` out."""
        name, value = self.model_kind.serving_feed(self.info, texts)
        outputs = self.loaded.signatures["serving_default"](**{name: self._tf.constant(value, self._tf.string)})
        return {key: value.numpy() for key, value in outputs.items()}

    def synthesize_texts(self, texts) -> dict[str, np.ndarray]:
        """`serving_default` of a synthesizer's export: strings in (normalised in the graph), the waveforms out."""
        self._require("synthesize")
        name, value = self.model_kind.serving_feed(self.info, texts)
        outputs = self.loaded.signatures["serving_default"](**{name: self._tf.constant(value, self._tf.string)})
        return {key: value.numpy() for key, value in outputs.items()}


TFLITE_KERNELS = ("xnnpack", "builtin")  # LiteRT's names (`CpuKernelMode.XNNPACK`, `.BUILTIN`)


def tflite_resolver(kernels: str):
    """The `ai_edge_litert` op resolver of `kernels`: "xnnpack" (its default delegate) or "builtin" (none).

    The XNNPACK delegate packs its own copy of every weight for each subgraph that uses it (the
    `generate` and `generate_beam` loops and their prefill, `prefill`, `decode`), all of them at the
    first call of any signature; this `Interpreter` cannot give it a weight cache to share them. The
    builtin kernels read the weights where the file is mapped. GPT-2-small shape, 2 threads:
    docs/performance.md ("TFLite kernels").
    """
    from ai_edge_litert.interpreter import OpResolverType  # noqa: PLC0415 (imported only when needed)

    if kernels not in TFLITE_KERNELS:
        raise ExportReadError(f"unknown TFLite kernels {kernels!r}; choose from {', '.join(TFLITE_KERNELS)}")
    if kernels == "builtin":
        return OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return OpResolverType.AUTO


class TFLiteRuntime(Runtime):
    """Runs a `.tflite` file's signatures with `ai_edge_litert` (no TensorFlow needed).

    `kernels`: "xnnpack" (LiteRT's default, fastest; peak memory several times the file) or
    "builtin" (no delegate; peak memory near the file's size): see `tflite_resolver`.
    """

    name = "tflite"

    def __init__(self, path: str, info: dict, num_threads: int | None = None, kernels: str = "xnnpack"):
        super().__init__(info)
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 (imported only when needed)

        self.path = path
        self.kernels = kernels
        self.interpreter = Interpreter(
            model_path=path, num_threads=num_threads, experimental_op_resolver_type=tflite_resolver(kernels)
        )
        self._runners = {}
        self._dtypes = {}
        for key in self.interpreter.get_signature_list():
            runner = self.interpreter.get_signature_runner(key)
            self._runners[key] = runner
            details = runner.get_input_details()
            self._dtypes[key] = {name: d["dtype"] for name, d in details.items()}
            if "past_k_0" in details and int(details["past_k_0"]["shape_signature"][2]) >= 0:
                self._fixed_slots.add(key)

    def _input_dtypes(self, signature):
        return self._dtypes[signature]

    def _run(self, signature, inputs):
        return self._runners[signature](**inputs)


class OnnxRuntime(Runtime):
    """Runs the ONNX files (one per signature) with onnxruntime's CPU provider.

    A signature's `InferenceSession` is made at its first call (`session(key)`): every session keeps
    its own prepacked and constant-folded copies of the weights it reads, so a caller of `generate`
    alone does not pay for `generate_beam`, `prefill` and `decode` too.
    """

    name = "onnx"

    def __init__(self, files: dict[str, str], info: dict, num_threads: int | None = None):
        super().__init__(info)
        import onnx  # noqa: PLC0415 (imported only when needed)
        import onnxruntime  # noqa: F401, PLC0415 (imported only when needed: fails here, not at a first call)

        self.files = dict(files)
        self.num_threads = num_threads
        # (weights file, offset) -> (array, OrtValue): one copy of each weight for every session. The arrays
        # are kept here because an OrtValue made from a numpy array does not keep that array alive.
        self._shared = {}
        self._initializers = {}  # signature -> {initializer name: OrtValue}
        self._dtypes = {}
        self.sessions = {}  # signature -> InferenceSession, made at the signature's first call
        for key, path in files.items():
            graph = onnx.load(path, load_external_data=False).graph
            self._initializers[key] = self._external_initializers(path, graph)
            stored = {tensor.name for tensor in graph.initializer}
            self._dtypes[key] = {
                i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type).type
                for i in graph.input
                if i.name not in stored
            }
            for i in graph.input:
                dims = i.type.tensor_type.shape.dim
                if i.name == "past_k_0" and len(dims) == 4 and dims[2].HasField("dim_value"):
                    self._fixed_slots.add(key)

    def session(self, signature: str):
        """The signature's `InferenceSession`, made on first use with the shared weights."""
        if signature not in self.sessions:
            import onnxruntime  # noqa: PLC0415 (imported only when needed)

            options = onnxruntime.SessionOptions()
            # No memory arena: the decode loop's growing state fragments it, and it keeps its peak (GPT-2-small
            # greedy, 128 tokens: peak 2.6 GB instead of 3.1 GB, decode speed the same within noise).
            options.enable_cpu_mem_arena = False
            if self.num_threads:
                options.intra_op_num_threads = self.num_threads
                options.inter_op_num_threads = 1
            for name, value in self._initializers[signature].items():
                options.add_initializer(name, value)
            path = self.files[signature]
            self.sessions[signature] = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return self.sessions[signature]

    def _external_initializers(self, path: str, graph) -> dict:
        """The graph's initializers stored as ONNX external data, as OrtValues over one mapping of their file.

        Every signature's graph refers to the same weights file: handing each session the same
        OrtValues (`add_initializer`) keeps one copy of the weights in memory instead of one per session.
        """
        import onnx  # noqa: PLC0415 (imported only when needed)
        import onnxruntime  # noqa: PLC0415 (imported only when needed)

        values = {}
        for tensor in graph.initializer:
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            fields = {entry.key: entry.value for entry in tensor.external_data}
            location = os.path.join(os.path.dirname(path), fields["location"])
            offset, length = int(fields.get("offset", 0)), int(fields["length"])
            if not os.path.isfile(location) or os.path.getsize(location) < offset + length:
                raise ExportReadError(
                    f"{path} keeps its weights in {fields['location']}, which is missing or cut short beside it: "
                    "copy the export folder whole"
                )
            key = (location, offset)
            if key not in self._shared:
                mapped = np.memmap(location, dtype=np.uint8, mode="r", offset=offset, shape=(length,))
                dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
                array = np.frombuffer(mapped, dtype=dtype).reshape(tuple(tensor.dims))
                self._shared[key] = (array, onnxruntime.OrtValue.ortvalue_from_numpy(array))
            values[tensor.name] = self._shared[key][1]
        return values

    def _input_dtypes(self, signature):
        return self._dtypes[signature]

    def _run(self, signature, inputs):
        session = self.session(signature)
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs)))


def load_runtime(
    workdir: str,
    runtime: str,
    *,
    quantization: str = "none",
    num_threads: int | None = None,
    kernels: str = "xnnpack",
) -> Runtime:
    """Loads an exported artefact of `workdir/export` as a `Runtime`.

    Args:
        workdir: str. The run folder (holds `export/report.json`).
        runtime: str. "saved_model", "tflite" or "onnx".
        quantization: str. TFLite variant: "none" (fp32), "fp16", "int8" or "int4". Defaults to "none".
        num_threads: int or None. Threads for TFLite and onnxruntime (None: their default).
        kernels: str. TFLite kernels: "xnnpack" (fastest) or "builtin" (least memory); see
            `tflite_resolver`. Defaults to "xnnpack".

    Raises:
        ExportReadError: unknown runtime, no export, or the export lacks that artefact.

    Example:
    >>> runtime = load_runtime("runs/gpt_char", "onnx")  # doctest: +SKIP
    >>> sequences, sequence_lengths, scores = runtime.generate([[5, 6, 0], [7, 8, 9]], [2, 3], 16)  # doctest: +SKIP
    """
    if runtime not in RUNTIMES:
        raise ExportReadError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    report = read_report(workdir)
    export_dir = RunFolder(workdir).export_dir
    key = runtime if runtime != "tflite" or quantization == "none" else f"tflite_{quantization}"
    artefact = report.get("artefacts", {}).get(key)
    if artefact is None:
        have = ", ".join(sorted(report.get("artefacts", {}))) or "none"
        raise ExportReadError(f"the export in {export_dir} has no {key} artefact (it has: {have})")
    info = report["model"]
    if runtime == "saved_model":
        return SavedModelRuntime(os.path.join(export_dir, artefact["path"]), info)
    if runtime == "tflite":
        path = os.path.join(export_dir, artefact["path"])
        return TFLiteRuntime(path, info, num_threads=num_threads, kernels=kernels)
    files = {signature: os.path.join(export_dir, entry["path"]) for signature, entry in artefact["files"].items()}
    return OnnxRuntime(files, info, num_threads=num_threads)
