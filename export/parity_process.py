"""Parity of one artefact measured in a child process, so that its runtime's memory ends with it.

A runtime that has run a GPT-2-small-sized model holds gigabytes (XNNPACK's packed weights, ONNX
Runtime's prepacked ones, the search's buffers); glibc gives little of it back after the runtime is
dropped, and the export process still holds the Keras model. Run in a child (a fresh interpreter:
`multiprocessing`'s "spawn", no TensorFlow unless the runtime needs it), the runtime's memory goes
back to the system when the child ends, and the export process keeps only the Keras reference.

    result = measure_in_child(RuntimeSpec(TFLiteRuntime, (path, info)), ref, prompts, strategies)

The result is what `export.parity.measure` returns in-process, unchanged; an error of the child
(a runtime that fails to load or to run, a child killed for memory) is an `ExportError` naming it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import shutil
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from export.errors import ExportError


@dataclass(frozen=True)
class RuntimeSpec:
    """How the child makes the runtime: `factory(*args, **kwargs)`.

    Args:
        factory: callable. A runtime class or function importable by name (the child imports it),
            e.g. `tfzoo.runtimes.adapters.TFLiteRuntime`.
        args: tuple. Its positional arguments (path or files, then `info`).
        kwargs: dict. Its keyword arguments (e.g. `kernels` for TFLite).
    """

    factory: Callable
    args: tuple
    kwargs: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return getattr(self.factory, "name", "") or getattr(self.factory, "__name__", "runtime")

    def build(self):
        """The runtime (in the process that calls this)."""
        return self.factory(*self.args, **self.kwargs)


def _child(function: Callable, inputs_path: str, result_path: str) -> None:
    """The child's work: `function(**inputs)` on the pickled inputs, its result (or its error) pickled back."""
    try:
        with open(inputs_path, "rb") as file:
            inputs = pickle.load(file)
        result = ("ok", function(**inputs))
    except ExportError as error:  # a one-line error meant for the user: raised as is in the parent
        result = ("export_error", str(error))
    except BaseException as error:  # noqa: BLE001 (every failure goes back to the parent, named)
        traceback.print_exc()  # the whole story on the child's stderr; the parent's error names it in one line
        result = ("error", f"{type(error).__name__}: {error}")
    with open(result_path + ".tmp", "wb") as file:
        pickle.dump(result, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(result_path + ".tmp", result_path)


CHILD_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}
"""Set for the children unless the caller's environment sets them: glibc's malloc arenas (one per thread
by default) kept the freed buffers of TensorFlow's and the runtimes' threads; with two, the GPT-2-small
export's peak over its processes fell from 7.77 to 7.08 GiB (docs/performance.md)."""


@contextlib.contextmanager
def _child_environment():
    """`CHILD_ENVIRONMENT` in `os.environ` while a child starts (a spawned child copies it), then as before."""
    added = {key: value for key, value in CHILD_ENVIRONMENT.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def run_in_child(function: Callable, what: str, **inputs) -> Any:
    """`function(**inputs)` run in a spawned child process; its result, pickled back.

    Args:
        function: callable. Importable by name (the child imports it), e.g. a module-level function.
        what: str. What the child does, for the error message.
        **inputs: its keyword arguments (picklable), written to a scratch file outside the export.

    Raises:
        ExportError: the function raised in the child (its error named), or the child ended without a
            result (e.g. killed for memory).
    """
    scratch = tempfile.mkdtemp(prefix="tfzoo-child-")  # outside the export: nothing of it can be installed
    try:
        inputs_path, result_path = os.path.join(scratch, "inputs.pkl"), os.path.join(scratch, "result.pkl")
        with open(inputs_path, "wb") as file:
            pickle.dump(inputs, file, protocol=pickle.HIGHEST_PROTOCOL)
        del inputs
        child = multiprocessing.get_context("spawn").Process(target=_child, args=(function, inputs_path, result_path))
        with _child_environment():
            child.start()
        try:
            child.join()
        except BaseException:  # e.g. Ctrl-C: the child goes too
            child.terminate()
            child.join()
            raise
        if not os.path.exists(result_path):
            raise ExportError(f"{what}: its process ended with exit code {child.exitcode} and no result")
        with open(result_path, "rb") as file:
            status, result = pickle.load(file)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if status == "export_error":
        raise ExportError(result)
    if status != "ok":
        raise ExportError(f"{what} failed to run in its process: {result}")
    return result


def _measure(spec: RuntimeSpec, **inputs) -> dict[str, Any]:
    from export import parity  # noqa: PLC0415 (imported in the child)

    return parity.measure(spec.build(), **inputs)


def measure_in_child(
    spec: RuntimeSpec,
    ref: dict,
    prompts: dict,
    strategies,
    quantization: str = "none",
    validation: dict | None = None,
) -> dict[str, Any]:
    """`export.parity.measure` of the runtime `spec` makes, run in a child process; same arguments and result.

    Raises:
        ExportError: the child could not build or run the runtime, or ended without a result
            (e.g. killed for memory); the message names the runtime and the child's error.
    """
    return run_in_child(
        _measure,
        f"{spec.name} parity",
        spec=spec,
        ref=ref,
        prompts=prompts,
        strategies=tuple(strategies),
        quantization=quantization,
        validation=validation,
    )
