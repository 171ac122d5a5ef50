"""In-graph decoding shared by every model family: greedy, sampling and beam search.

`generate(step_fn, cache, token_ids, lengths, ...)` runs a prefill and the
whole decode loop in one static-shaped graph that compiles with XLA and
converts to TFLite (builtins only) and ONNX; `Generator` wraps it for a model
with `init_cache` / `call_with_cache` as one compiled `tf.function` whose
knobs are scalar inputs.
"""

from tfzoo.decoding.beam_search import beam_search, length_penalty_divisor
from tfzoo.decoding.generate import generate
from tfzoo.decoding.generator import KNOBS, STRATEGY_KNOBS, Generator
from tfzoo.decoding.knobs import KNOB_TABLE, Knob, strategy_knobs
from tfzoo.decoding.greedy_search import greedy_search
from tfzoo.decoding.penalties import apply_penalties, no_repeat_ngram_mask, repetition_penalty
from tfzoo.decoding.sampling import filter_logits, sample_logits, uniform_hash
from tfzoo.decoding.uncached import uncached_step_fn
from tfzoo.decoding.validation import DecodingError

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
