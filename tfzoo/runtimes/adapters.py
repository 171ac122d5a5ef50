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


class TFLiteRuntime(Runtime):
    """Runs a `.tflite` file's signatures with `ai_edge_litert` (no TensorFlow needed)."""

    name = "tflite"

    def __init__(self, path: str, info: dict, num_threads: int | None = None):
        super().__init__(info)
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 (imported only when needed)

        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        self._runners = {}
        self._dtypes = {}
        for key in self.interpreter.get_signature_list():
            runner = self.interpreter.get_signature_runner(key)
            self._runners[key] = runner
            self._dtypes[key] = {name: d["dtype"] for name, d in runner.get_input_details().items()}

    def _input_dtypes(self, signature):
        return self._dtypes[signature]

    def _run(self, signature, inputs):
        return self._runners[signature](**inputs)


_ONNX_TYPES = {"tensor(int32)": np.int32, "tensor(float)": np.float32, "tensor(int64)": np.int64}


class OnnxRuntime(Runtime):
    """Runs the ONNX files (one per signature) with onnxruntime's CPU provider."""

    name = "onnx"

    def __init__(self, files: dict[str, str], info: dict, num_threads: int | None = None):
        super().__init__(info)
        import onnxruntime  # noqa: PLC0415 (imported only when needed)

        self.files = dict(files)
        # (weights file, offset) -> (array, OrtValue): one copy of each weight for every session. The arrays
        # are kept here because an OrtValue made from a numpy array does not keep that array alive.
        self._shared = {}
        self.sessions = {}
        for key, path in files.items():
            options = onnxruntime.SessionOptions()
            # No memory arena: the decode loop's growing state fragments it, and it keeps its peak (GPT-2-small
            # greedy, 128 tokens: peak 2.6 GB instead of 3.1 GB, decode speed the same within noise).
            options.enable_cpu_mem_arena = False
            if num_threads:
                options.intra_op_num_threads = num_threads
                options.inter_op_num_threads = 1
            for name, value in self._external_initializers(path).items():
                options.add_initializer(name, value)
            self.sessions[key] = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._dtypes = {
            key: {i.name: _ONNX_TYPES[i.type] for i in session.get_inputs()} for key, session in self.sessions.items()
        }

    def _external_initializers(self, path: str) -> dict:
        """The model's initializers stored as ONNX external data, as OrtValues over one mapping of their file.

        Every signature's graph refers to the same weights file: handing each session the same
        OrtValues (`add_initializer`) keeps one copy of the weights in memory instead of one per session.
        """
        import onnx  # noqa: PLC0415 (imported only when needed)
        import onnxruntime  # noqa: PLC0415 (imported only when needed)

        values = {}
        for tensor in onnx.load(path, load_external_data=False).graph.initializer:
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
        session = self.sessions[signature]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs)))


def load_runtime(workdir: str, runtime: str, *, quantization: str = "none", num_threads: int | None = None) -> Runtime:
    """Loads an exported artefact of `workdir/export` as a `Runtime`.

    Args:
        workdir: str. The run folder (holds `export/report.json`).
        runtime: str. "saved_model", "tflite" or "onnx".
        quantization: str. TFLite variant: "none" (fp32), "fp16", "int8" or "int4". Defaults to "none".
        num_threads: int or None. Threads for TFLite and onnxruntime (None: their default).

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
        return TFLiteRuntime(os.path.join(export_dir, artefact["path"]), info, num_threads=num_threads)
    files = {signature: os.path.join(export_dir, entry["path"]) for signature, entry in artefact["files"].items()}
    return OnnxRuntime(files, info, num_threads=num_threads)
