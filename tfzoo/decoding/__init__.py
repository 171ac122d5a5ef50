"""In-graph decoding shared by every model family: greedy, sampling and beam search.

`generate(step_fn, cache, token_ids, lengths, ...)` runs a prefill and the
whole decode loop in one static-shaped graph that compiles with XLA and
converts to TFLite (builtins only) and ONNX; `Generator` wraps it for a model
with `init_cache` / `call_with_cache` as one compiled `tf.function` whose
knobs are scalar inputs.
"""

import importlib
import sys
import types

# Where each public name lives. They are imported on first use, so that the numpy-only knob table
# (`tfzoo.decoding.knobs`, read by the TFLite and ONNX runtime adapters) does not import TensorFlow.
_HOMES = {
    "KNOBS": "generator",
    "KNOB_TABLE": "knobs",
    "STRATEGY_KNOBS": "generator",
    "DecodingError": "validation",
    "Generator": "generator",
    "Knob": "knobs",
    "apply_penalties": "penalties",
    "beam_search": "beam_search",
    "filter_logits": "sampling",
    "generate": "generate",
    "greedy_search": "greedy_search",
    "length_penalty_divisor": "beam_search",
    "no_repeat_ngram_mask": "penalties",
    "repetition_penalty": "penalties",
    "sample_logits": "sampling",
    "strategy_knobs": "knobs",
    "uncached_step_fn": "uncached",
    "uniform_hash": "sampling",
}


def _load(name: str):
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


def _function_named_like_its_module(name: str) -> property:
    # `generate`, `beam_search`, `greedy_search` are functions named as their modules: importing the module
    # would bind the module to the package's attribute; this keeps the attribute the function (as before).
    return property(lambda self: _load(name), lambda self, value: None)


class _Package(types.ModuleType):
    generate = _function_named_like_its_module("generate")
    beam_search = _function_named_like_its_module("beam_search")
    greedy_search = _function_named_like_its_module("greedy_search")

    def __getattr__(self, name: str):
        if name not in _HOMES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return _load(name)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "KNOBS",
    "KNOB_TABLE",
    "STRATEGY_KNOBS",
    "DecodingError",
    "Generator",
    "Knob",
    "apply_penalties",
    "beam_search",
    "filter_logits",
    "generate",
    "greedy_search",
    "length_penalty_divisor",
    "no_repeat_ngram_mask",
    "repetition_penalty",
    "sample_logits",
    "strategy_knobs",
    "uncached_step_fn",
    "uniform_hash",
]
