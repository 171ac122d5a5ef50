"""An exported `.tflite` file run with `ai_edge_litert` only: the in-graph `generate` loop or `prefill`/`decode`.

    knobs = report_knobs(report, "report.json", AppError)          # the export's knob table (report.json)
    model = EdgeModel("runs/gpt_char/export/gpt.tflite", eos_id=1, pad_id=0, knobs=knobs)
    new_ids = model.generate(prompt_ids, max_new_tokens=32)          # whole loop in the graph
    for token in model.steps(prompt_ids, max_new_tokens=32): ...      # one token per call, streamed

The model's shape is read from the file's signatures (no TensorFlow): `max_length` from the
`sequences` output of `generate` (or from the KV-cache inputs of an export whose steps take a
fixed-size cache), the strategy of `generate` from its knob inputs (the strategy that, by the
report's knob table, takes exactly those knobs). The knobs' dtypes and defaults come from the
report. `<eos>` ends a row and `<pad>` is never emitted, as in the export.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from apps.edge.errors import AppError
from apps.edge.json_files import Knob
from apps.edge.knobs import SEQUENCE_INPUTS, knob_inputs, sequence_inputs
from apps.edge.sampler import NEG, sample_token

CACHE_BLOCK = 64  # slots the streamed cache grows by (as `tfzoo.runtimes.base.CACHE_BLOCK`)
STEP_KNOBS = ("temperature", "top_k", "top_p", "seed")  # what the prefill/decode loop (`steps`) implements itself
KERNELS = ("xnnpack", "builtin")  # LiteRT's names for its CPU kernels (`CpuKernelMode.XNNPACK`, `.BUILTIN`)


def load_interpreter(path: str, num_threads: int | None = None, kernels: str = "xnnpack") -> tuple:
    """`(interpreter, signatures)` of the `.tflite` file at `path`; `AppError` (one line) when it is no TFLite model.

    Example:
    >>> interpreter, signatures = load_interpreter("runs/minilm/export/bert_encoder.tflite")  # doctest: +SKIP
    >>> sorted(signatures)  # doctest: +SKIP
    ['embed']
    """
    if kernels not in KERNELS:
        raise AppError(f"unknown kernels {kernels!r}; choose from {', '.join(KERNELS)}")
    if not os.path.isfile(path):
        raise AppError(f"no model file at {path}")
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: PLC0415 (only with a model)

    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if kernels == "builtin" else OpResolverType.AUTO
    try:
        interpreter = Interpreter(model_path=path, num_threads=num_threads, experimental_op_resolver_type=resolver)
        signatures = interpreter.get_signature_list()
    except (ValueError, RuntimeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AppError(f"cannot load {path} as a TFLite model: {message}") from None
    return interpreter, signatures


class EdgeModel:
    """Loads a `.tflite` export and generates token ids from prompt ids.

    Args:
        path: str. The `.tflite` file (fp32, fp16, int8 or int4 export).
        eos_id: int. The id that ends generation (kept out of the returned ids).
        pad_id: int. The padding id.
        knobs: dict. The export's knob table, `{name: Knob}` (`apps.edge.json_files.report_knobs`).
        num_threads: int or None. Interpreter threads (None: LiteRT's default).
        kernels: str. "xnnpack" (LiteRT's default delegate: fastest, but it packs its own copy of the
            weights for every subgraph, several times the file in memory) or "builtin" (LiteRT's builtin
            kernels: memory near the file's size, slower; see docs/performance.md). Defaults to "xnnpack".
        banned_ids: sequence of int or None. Ids the `steps` loop never emits: the export's
            (`report["model"]["banned_ids"]`). None: the pad id unless it is also `eos_id` (GPT-2),
            the export's rule for decoder models.

    Example:
    >>> model = EdgeModel("runs/gpt_char/export/gpt.tflite", eos_id=1, pad_id=0, knobs=knobs)  # doctest: +SKIP
    >>> model.generate([24, 28, 30], max_new_tokens=8)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str,
        eos_id: int,
        pad_id: int,
        knobs: Mapping[str, Knob],
        num_threads: int | None = None,
        banned_ids: Sequence[int] | None = None,
        kernels: str = "xnnpack",
    ):
        self.interpreter, signatures = load_interpreter(path, num_threads, kernels)
        self.path = path
        self.eos_id = int(eos_id)
        self.pad_id = int(pad_id)
        if banned_ids is None:
            banned_ids = sorted({self.pad_id} - {self.eos_id})
        self.banned_ids = [int(i) for i in banned_ids]
        self.knobs = dict(knobs)
        self.signatures = {key: dict(value) for key, value in signatures.items()}
        self._runners = {}
        self.max_length = None
        self.cache_slots = None  # the slot count the steps take: None (any, grown in blocks) or max_length
        try:
            if "decode" in self.signatures:
                slots = int(self._runner("decode").get_input_details()["past_k_0"]["shape_signature"][2])
                self.cache_slots = self.max_length = slots if slots >= 0 else None
            if self.max_length is None and "generate" in self.signatures:
                shape = self._runner("generate").get_output_details()["sequences"]["shape_signature"]
                self.max_length = int(shape[1])
        except (KeyError, IndexError) as error:
            raise AppError(f"{path}: its signatures lack {error} (not a model written by `python -m export`)") from None
        step_inputs = self.signatures.get("decode", {}).get("inputs", ())
        self.num_layers = sum(1 for name in step_inputs if name.startswith("past_k_"))

    def _runner(self, signature: str):
        if signature not in self._runners:
            self._runners[signature] = self.interpreter.get_signature_runner(signature)
        return self._runners[signature]

    def require_signatures(self, *signatures: str) -> None:
        """Raises `AppError` naming the signatures the file lacks."""
        missing = [s for s in signatures if s not in self.signatures]
        if missing:
            have = ", ".join(sorted(self.signatures)) or "none"
            raise AppError(
                f"{self.path} has no {'/'.join(missing)} signature (it has: {have}); "
                "use a model written by `python -m export`"
            )

    def _check_decoder_only(self, signature: str) -> None:
        known = {"token_ids", "lengths", "positions", *self.knobs, *SEQUENCE_INPUTS, *self._cache_names()}
        extra = sorted(set(self.signatures[signature]["inputs"]) - known)
        if extra:
            raise AppError(
                f"{self.path}: the {signature!r} signature also wants {', '.join(extra)} (an encoder-decoder or "
                "image model); this app runs decoder-only language models"
            )

    def _cache_names(self) -> list[str]:
        return [f"past_{kv}_{i}" for i in range(self.num_layers) for kv in "kv"]

    @property
    def strategies(self) -> dict[str, str]:
        """Strategy -> signature of the in-graph loops this file carries."""
        result = {}
        if "generate" in self.signatures:
            result[self._strategy_of("generate")] = "generate"
        for key in self.signatures:
            if key.startswith("generate_"):
                result.setdefault(key[len("generate_") :], key)
        return result

    def _strategy_of(self, signature: str) -> str:
        """The strategy whose knobs (by the report's table) are exactly the knob inputs of `signature`."""
        inputs = set(self.signatures[signature]["inputs"]) & set(self.knobs)
        strategies = sorted({s for knob in self.knobs.values() for s in knob.strategies})
        matches = [s for s in strategies if {n for n, k in self.knobs.items() if s in k.strategies} == inputs]
        if len(matches) != 1:
            raise AppError(
                f"{self.path}: the knob inputs of {signature!r} ({', '.join(sorted(inputs)) or 'none'}) match "
                f"{'no' if not matches else 'more than one'} strategy of report.json's knob table"
            )
        return matches[0]

    def check_prompt(self, prompt_ids) -> None:
        """Raises `AppError` for an empty prompt or one that leaves no room under `max_length`."""
        if len(prompt_ids) == 0:
            raise AppError("the prompt is empty")
        if self.max_length is not None and len(prompt_ids) >= self.max_length:
            raise AppError(
                f"the prompt is {len(prompt_ids)} tokens; this model holds at most {self.max_length} tokens "
                f"(prompt + generated), so the prompt must be under {self.max_length}"
            )

    def generate(
        self,
        prompt_ids,
        max_new_tokens: int,
        strategy: str | None = None,
        stop_sequences=None,
        banned_sequences=None,
        **knobs,
    ) -> list[int]:
        """Runs the in-graph loop (`generate` or `generate_<strategy>`); returns the new ids, `<eos>` dropped.

        `stop_sequences` / `banned_sequences`: lists of token-id lists (the export's `stop_sequences`,
        `banned_sequences` inputs; a stop sequence is kept in the returned ids)."""
        strategies = self.strategies
        if not strategies:
            self.require_signatures("generate")
        strategy = strategy or next(iter(strategies))
        if strategy not in strategies:
            raise AppError(
                f"{self.path} has no {strategy!r} loop (it has: {', '.join(strategies)}); "
                f"re-export with --strategy={strategy}"
            )
        self.check_prompt(prompt_ids)
        signature = strategies[strategy]
        self._check_decoder_only(signature)
        given = dict(knobs, max_new_tokens=max_new_tokens)
        inputs = {
            "token_ids": np.asarray([prompt_ids], np.int32),
            "lengths": np.asarray([len(prompt_ids)], np.int32),
            **knob_inputs(self.knobs, self.signatures[signature]["inputs"], given, AppError),
        }
        details = self._runner(signature).get_input_details()
        shapes = {name: details[name]["shape"] for name in SEQUENCE_INPUTS if name in details}
        tables = {"stop_sequences": stop_sequences, "banned_sequences": banned_sequences}
        inputs.update(sequence_inputs(shapes, tables, AppError))
        outputs = self._runner(signature)(**inputs)
        sequence = outputs["sequences"][0, len(prompt_ids) : int(outputs["sequence_lengths"][0])]
        return [int(t) for t in sequence if t != self.eos_id]

    def steps(
        self,
        prompt_ids,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> Iterator[int]:
        """Yields new ids one at a time from `prefill` then `decode` with the KV cache.

        temperature 0 is greedy (argmax, as the in-graph greedy loop); above 0
        it samples from the softmax of logits / temperature restricted to the
        `top_k` best (0: all) and to the smallest set holding `top_p` of the
        probability, with the in-graph sampler's seeded hash (`apps.edge.sampler`):
        the same tokens as the export's sample `generate` for the same knobs.
        The banned ids (`banned_ids`) are never chosen.
        """
        self.require_signatures("prefill", "decode")
        self._check_decoder_only("prefill")
        self.check_prompt(prompt_ids)
        count = len(prompt_ids)
        logits, cache = self.step(prompt_ids, 0, self.empty_cache())
        limit = min(max_new_tokens, self.max_length - count)
        for step in range(limit):
            logits[self.banned_ids] = NEG  # as the graph's penalties, before temperature and filtering
            if temperature <= 0:
                token = int(np.argmax(logits))  # first of ties, as tf.argmax
            else:  # the k-th new token of row 0 draws uniform_hash(seed, 0, k), as in the graph
                token = sample_token(logits, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, step=step)
            if token == self.eos_id:
                return
            yield token
            if step + 1 == limit:
                return
            logits, cache = self.step([token], count, cache, "decode")
            count += 1

    def empty_cache(self) -> dict[str, np.ndarray]:
        """A KV cache with no slots (`past_k_<i>`, `past_v_<i>`), what `step` starts from."""
        details = self._runner("decode").get_input_details()["past_k_0"]
        _, heads, _, head_dim = (int(d) for d in details["shape_signature"])
        empty = np.zeros((1, heads, 0, head_dim), details["dtype"])
        return {name: empty for name in self._cache_names()}

    def step(
        self, token_ids, start: int, cache: dict[str, np.ndarray], signature: str = "prefill"
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Runs `token_ids` at positions `start, start + 1, ...` against `cache` with `signature` (`prefill`, or
        `decode` for one id).

        Returns the logits after the last id (float32, vocabulary-sized) and the cache that holds them too;
        the cache's first `start` positions must hold the tokens before them (what earlier steps returned).

        Example:
        >>> logits, cache = model.step([5, 6, 7], 0, model.empty_cache())  # doctest: +SKIP
        >>> logits, cache = model.step([int(logits.argmax())], 3, cache, "decode")  # doctest: +SKIP
        """
        count = len(token_ids)
        outputs = self._runner(signature)(
            token_ids=np.asarray([token_ids], np.int32),
            positions=np.arange(start, start + count, dtype=np.int32)[None],
            **self._grown(cache, start + count),
        )
        cache = {f"past_{name[len('present_') :]}": value for name, value in outputs.items() if name != "logits"}
        return outputs["logits"][0, -1].astype(np.float32), cache

    def _grown(self, cache: dict[str, np.ndarray], needed: int) -> dict[str, np.ndarray]:
        """The cache with at least `needed` slots: zeros appended up to a multiple of `CACHE_BLOCK`.

        A step attends over the slots it is fed, so feeding the slots in use (not `max_length`) makes
        its cost follow the tokens held; growing by blocks keeps LiteRT's input resizes to one per block.
        An export whose steps take a fixed-size cache (`cache_slots`) gets all of its slots.
        """
        target = self.cache_slots or -(-needed // CACHE_BLOCK) * CACHE_BLOCK
        target = min(target, self.max_length or target)
        slots = next(iter(cache.values())).shape[2]
        if slots >= target:
            return cache
        pad = [(0, 0), (0, 0), (0, target - slots), (0, 0)]
        return {name: np.pad(value, pad) for name, value in cache.items()}

    def warm_up(self, loop: str, strategy: str | None = None) -> None:
        """Runs the loop's signatures once on a 1-token prompt (LiteRT sets up its kernels on the first call)."""
        if loop == "steps":
            for _ in self.steps([self.eos_id], 2):
                pass
        else:
            self.generate([self.eos_id], 1, strategy=strategy)
