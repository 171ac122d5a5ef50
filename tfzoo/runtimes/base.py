"""`Runtime`: the base of the runtime adapters, the interface every exported format runs behind.

See `tfzoo.runtimes` for the interface; what differs by model kind (the
conditioning inputs, the encoder context of the steps) is asked of the
kind (`tfzoo.kinds`, by `report["model"]["kind"]`), numpy side only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfzoo.decoding.knobs import EXPORTED_KNOBS, KNOBS_BY_NAME
from tfzoo.decoding.sequence_tables import DEFAULT_SHAPES, SEQUENCE_OPTIONS, pad_sequences
from tfzoo.kinds import DEFAULT_KIND, ModelKindError, condition_names, kind_named
from tfzoo.runtime_errors import ExportReadError, RuntimeInputError
from tfzoo.runtime_inputs import check_prompts

# The streamed cache grows by this many slots: `prefill`/`decode` are fed the slots in use rounded up to a
# block, so a step costs the tokens held and a runtime re-plans its shapes once per block, not per token.
CACHE_BLOCK = 64


def grow_cache(cache, needed: int, max_length: int, block: int = CACHE_BLOCK) -> tuple:
    """A streamed KV cache with at least `needed` slots: zero slots appended up to a multiple of `block`.

    `cache`: per layer `(k, v)`, each (B, H, S, D). Returned as is when S >= `needed`; else every
    array is copied once into min(`needed` rounded up to `block`, `max_length`) slots, the new
    ones zero (a slot s holds position s; a zero slot past the query's position is masked).

    Example:
    >>> cache = ((np.ones((1, 2, 3, 4), np.float32), np.ones((1, 2, 3, 4), np.float32)),)
    >>> grow_cache(cache, needed=4, max_length=100, block=8)[0][0].shape
    (1, 2, 8, 4)
    """
    slots = int(np.shape(cache[0][0])[2]) if cache else 0
    if slots >= needed:
        return tuple(cache)
    target = min(-(-needed // max(int(block), 1)) * max(int(block), 1), max_length)
    grown = []
    for keys, values in cache:
        keys, values = np.asarray(keys, np.float32), np.asarray(values, np.float32)
        pad = [(0, 0), (0, 0), (0, target - keys.shape[2]), (0, 0)]
        grown.append((np.pad(keys, pad), np.pad(values, pad)))
    return tuple(grown)


# The knobs `generate(**knobs)` takes (`max_new_tokens` is its own argument), from the one knob table.
KNOB_NAMES = tuple(name for name in EXPORTED_KNOBS if name != "max_new_tokens")


class Runtime:
    """Base of the adapters: `generate`, `encode`, `prefill`, `decode` and `init_cache` on numpy arrays.

    Subclasses implement `_input_dtypes(signature)` and `_run(signature, inputs)`.

    Args:
        info: dict. The `model` section of `report.json` (max_length,
            strategy, strategies, num_layers, num_heads, head_dim, kind, ...).
    """

    name = ""
    takes_min_new_tokens = False  # the Keras model's decode loop does; the exported signatures do not

    def __init__(self, info: dict):
        self.info = info
        self.max_length = int(info["max_length"])
        self.strategy = info.get("strategy")  # None (and no strategies) for an encoder export
        self.strategies = dict(info.get("strategies") or {})  # strategy -> signature name
        self.num_layers = int(info["num_layers"])
        self.num_heads = int(info["num_heads"])
        self.head_dim = int(info["head_dim"])
        self.vocabulary_size = int(info["vocabulary_size"])
        self.kind = info.get("kind", DEFAULT_KIND)
        try:
            self.model_kind = kind_named(self.kind)  # the runtime side of the kind: numpy only
        except ModelKindError as error:
            raise ExportReadError(str(error)) from None
        self.max_source_length = int(info.get("max_source_length") or info.get("max_sequence_length") or 0)
        self.start_id = int(info.get("start_id", (info.get("eos_ids") or [0])[0]))
        # Step signatures that take a cache of max_length slots only (exports before the slot count was dynamic).
        self._fixed_slots: set[str] = set()

    def _input_dtypes(self, signature: str) -> dict[str, np.dtype]:
        raise NotImplementedError

    def _run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _call(self, signature: str, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        dtypes = self._input_dtypes(signature)
        missing = sorted(set(dtypes) - set(inputs))
        if missing:
            raise RuntimeInputError(f"signature {signature!r} needs inputs {missing}")
        arrays = {key: np.asarray(inputs[key]).astype(dtype) for key, dtype in dtypes.items()}
        return {key: np.asarray(value) for key, value in self._run(signature, arrays).items()}

    def conditions(self, **conditions) -> dict[str, np.ndarray]:
        """The conditioning inputs of this export's kind, checked by the kind (empty for decoder-only models)."""
        return self.model_kind.check_conditions(self.info, conditions)

    def split_inputs(self, inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Keyword arguments of `generate` -> `(conditions, knobs)`; an unknown name is a one-line error."""
        conditions = {key: value for key, value in inputs.items() if key in condition_names()}
        knobs = {key: value for key, value in inputs.items() if key not in conditions}
        for key, value in knobs.items():
            if key == "min_new_tokens":
                if value and not self.takes_min_new_tokens:
                    raise RuntimeInputError(f"min_new_tokens={value} is not available in exported models; use 0")
            elif key not in KNOB_NAMES:
                raise RuntimeInputError(f"unknown decoding option {key!r}; valid: {', '.join(KNOB_NAMES)}")
        if not self.takes_min_new_tokens:
            knobs.pop("min_new_tokens", None)
        return self.conditions(**conditions), knobs

    def sequence_tables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Pops `stop_sequences` and `banned_sequences` (lists of token-id lists) from `inputs`, each checked
        and padded to the export's shape (`report.model.sequence_shapes`; one-line `RuntimeInputError`s)."""
        shapes = self.info.get("sequence_shapes") or DEFAULT_SHAPES
        tables = {}
        for name in SEQUENCE_OPTIONS:
            given = inputs.pop(name, None)
            tables[name] = pad_sequences(
                given,
                shapes.get(name, DEFAULT_SHAPES[name]),
                name=name,
                vocabulary_size=self.vocabulary_size,
                error=RuntimeInputError,
            )
        return tables

    def start_prompts(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The decoder prompts of a conditional model: the start token, one per row."""
        return np.full((batch_size, 1), self.start_id, np.int32), np.ones((batch_size,), np.int32)

    def generate(
        self,
        token_ids=None,
        lengths=None,
        max_new_tokens: int = 64,
        *,
        strategy: str | None = None,
        **inputs,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Runs the in-graph decode loop; returns `(sequences, sequence_lengths, scores)`.

        Args:
            token_ids: int (B, P): right-padded prompts (for seq2seq and
                captioner exports: the decoder prompt; None for the start token).
            lengths: int (B,): prompt lengths in [1, P].
            max_new_tokens: int >= 0. Most tokens to add per row (the graph
                clamps it to the room each row has left under `max_length`).
            strategy: str or None. None for the exported strategy, or one the export carries.
            **inputs: the kind's conditioning inputs (`source_ids` (B, S)
                right-padded and `source_lengths` (B,) for seq2seq exports,
                `image` (B, H, W, C) float in [0, 1] or uint8 for captioners)
                the strategy's knobs (see the module docstring), and `stop_sequences`,
                `banned_sequences`: lists of token-id lists (at most the export's
                `report.model.sequence_shapes`; `tfzoo.decoding.sequences`).
        """
        if not self.model_kind.generative:
            use = self.model_kind.signatures[0]
            raise RuntimeInputError(f"this is {self.model_kind.description}: it does not generate; use {use}(...)")
        strategy = strategy or self.strategy
        if strategy not in self.strategies:
            raise RuntimeInputError(
                f"this export has no {strategy!r} strategy; it has {', '.join(self.strategies)} "
                f"(re-export with --strategy={strategy})"
            )
        signature = self.strategies[strategy]
        tables = self.sequence_tables(inputs)
        conditions, knobs = self.split_inputs(inputs)
        if conditions and token_ids is None:
            token_ids, lengths = self.start_prompts(len(next(iter(conditions.values()))))
        token_ids, lengths = check_prompts(token_ids, lengths)
        for key, value in conditions.items():
            if len(value) != len(token_ids):
                raise RuntimeInputError(f"{key} has {len(value)} rows but token_ids has {len(token_ids)}")
        if lengths.max() >= self.max_length:
            raise RuntimeInputError(
                f"a prompt of {int(lengths.max())} tokens leaves no room under the exported "
                f"max_length={self.max_length}"
            )
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
            raise RuntimeInputError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        inputs: dict[str, Any] = {"token_ids": token_ids, "lengths": lengths, "max_new_tokens": max_new_tokens}
        inputs.update(conditions)
        accepted = set(self._input_dtypes(signature))
        for key, table in tables.items():
            if key in accepted:
                inputs[key] = table
            elif (table >= 0).any():
                raise RuntimeInputError(
                    f"this export's {signature} signature has no {key} input (exported before it): re-export"
                )
        for key, value in knobs.items():
            if key in accepted:  # else a knob of another strategy: ignored, as by `Generator`
                inputs[key] = value
        for key in accepted - set(inputs):
            inputs[key] = KNOBS_BY_NAME[key].default
        outputs = self._call(signature, inputs)
        return outputs["sequences"], outputs["sequence_lengths"], outputs["scores"]

    def embed(self, token_ids, lengths, segment_ids=None) -> dict[str, np.ndarray]:
        """Runs `embed` (encoder exports): `sequence_output` (B, T, C), `sentence_embedding` (B, C), and
        `pooled_output` (B, C) when the model has a pooler.

        Args:
            token_ids: int (B, T): `[CLS] ... [SEP]` rows, right-padded; T at most `max_sequence_length`.
            lengths: int (B,): each row's length, in [1, T].
            segment_ids: int (B, T) or None (zeros: one sentence per row).
        """
        return self._encoder_call("embed", token_ids, lengths, segment_ids)

    def classify(self, token_ids, lengths, segment_ids=None) -> np.ndarray:
        """Runs `classify` (a `BertClassifier` export): `logits` float32 (B, num_classes)."""
        return self._encoder_call("classify", token_ids, lengths, segment_ids)["logits"]

    def _require(self, signature: str) -> None:
        """`RuntimeInputError` unless the export's kind has `signature` (kinds without a decode loop)."""
        if signature not in self.model_kind.signatures:
            raise RuntimeInputError(f"this is {self.model_kind.description}: it has no {signature} signature")

    def synthesize_ids(self, token_ids, lengths) -> dict[str, np.ndarray]:
        """Runs `synthesize` (speech-synthesizer exports) on character ids.

        Args:
            token_ids: int (B, T): character ids, right-padded; T at most `max_sequence_length`.
            lengths: int (B,): characters per row, in [1, T].

        Returns:
            `waveform` float32 (B, max_samples) zero past `waveform_lengths` (B,), `log_mel` (B, max_frames,
            num_mel_bins), `frame_lengths` (B,), `durations` int32 (B, max_sequence_length).
        """
        self._require("synthesize")
        return self._call("synthesize", self.model_kind.check_synthesize_inputs(self.info, token_ids, lengths))

    def synthesize(self, texts) -> list[np.ndarray]:
        """float32 waveforms at `info["sample_rate"]`, each cut to its length, of `texts` (a str or a list of str).

        The texts are normalised and mapped to characters by the kind (`tfzoo.kinds.tts.encode_text`): an
        empty text, a character the model never saw or a text too long is a one-line `RuntimeInputError`.

        Example:
        >>> waveforms = load_runtime("runs/tts_numbers", "tflite").synthesize("call forty two")  # doctest: +SKIP
        """
        self._require("synthesize")
        inputs = self.model_kind.encode_texts(self.info, texts, self.info.get("max_length"))
        outputs = self.synthesize_ids(inputs["token_ids"], inputs["lengths"])
        lengths = outputs["waveform_lengths"]
        return [outputs["waveform"][row, : int(lengths[row])] for row in range(len(lengths))]

    def _encoder_call(self, signature: str, token_ids, lengths, segment_ids) -> dict[str, np.ndarray]:
        if signature not in self.model_kind.signatures:
            raise RuntimeInputError(f"this is {self.model_kind.description}: it has no {signature} signature")
        if signature not in self.info.get("signatures", ("embed",)):
            raise RuntimeInputError(f"this export has no {signature} signature (only a BertClassifier's has)")
        inputs = self.model_kind.check_embed_inputs(self.info, token_ids, lengths, segment_ids)
        if "segment_ids" in self._input_dtypes(signature):
            inputs.setdefault("segment_ids", np.zeros_like(inputs["token_ids"]))
        else:
            inputs.pop("segment_ids", None)  # a model without segment embeddings: nothing to feed
        return self._call(signature, inputs)

    def encode(self, **conditions) -> dict[str, np.ndarray]:
        """Runs the encoder once; returns the `context` of `prefill`/`decode` (see the module docstring)."""
        if not self.model_kind.has_encoder:
            raise RuntimeInputError(f"this is {self.model_kind.description}: it has no encoder")
        conditions = self.conditions(**conditions)
        return self.model_kind.encoder_context(conditions, self._encode(conditions))

    def _encode(self, conditions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._call("encode", conditions)

    def init_cache(self, batch_size: int, slots: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """An empty KV cache: per layer `(k, v)`, each float32 (B, num_heads, slots, head_dim).

        `prefill` and `decode` grow it as the positions they run need (in blocks of `cache_block`
        slots; to `max_length` at once for an export whose steps take a fixed-size cache), so the
        default of 0 slots is what a streamed loop starts from. `slots=max_length` gives the
        fixed-size cache of earlier releases; the logits are the same.

        Example:
        >>> cache = runtime.init_cache(1)  # doctest: +SKIP
        >>> logits, cache = runtime.prefill([[5, 6, 7]], [[0, 1, 2]], cache)  # doctest: +SKIP
        >>> cache[0][0].shape  # doctest: +SKIP
        (1, 4, 64, 16)
        """
        if isinstance(slots, bool) or not isinstance(slots, (int, np.integer)) or not 0 <= slots <= self.max_length:
            raise RuntimeInputError(f"slots must be an integer in [0, {self.max_length}], got {slots!r}")
        shape = (batch_size, self.num_heads, int(slots), self.head_dim)
        return tuple((np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(self.num_layers))

    cache_block = CACHE_BLOCK  # slots the streamed cache grows by (`_grown_cache`)

    def _dynamic_slots(self, signature: str) -> bool:
        """Whether `signature` takes a cache of any slot count (else only `max_length`: an older export)."""
        return signature not in self._fixed_slots

    def _grown_cache(self, signature: str, positions: np.ndarray, cache) -> tuple:
        """`cache` with room for `positions` (`grow_cache`); an older export's steps get `max_length` slots."""
        for keys, values in cache:
            for array in (keys, values):
                shape = np.shape(array)
                if len(shape) != 4 or shape[1] != self.num_heads or shape[3] != self.head_dim:
                    raise RuntimeInputError(
                        f"cache arrays must be (batch, {self.num_heads}, slots, {self.head_dim}), got {shape}"
                    )
        if not self._dynamic_slots(signature):
            return grow_cache(cache, self.max_length, self.max_length, self.max_length)
        needed = min(int(np.max(positions, initial=0)) + 1, self.max_length)  # the graph clamps positions
        return grow_cache(cache, needed, self.max_length, self.cache_block)

    def _context_inputs(self, context: dict | None) -> dict[str, np.ndarray]:
        """The encoder state a step of this kind takes (`cross_k_<i>`, `cross_v_<i>`, ...: the kind's names)."""
        names = self.model_kind.context_names(self.num_layers)
        if not names:
            if context:
                raise RuntimeInputError(f"this is {self.model_kind.description}: its steps take no encoder context")
            return {}
        if not context:
            raise RuntimeInputError(f"a {self.kind} export's steps need the context from encode(...)")
        missing = [name for name in names if name not in context]
        if missing:
            raise RuntimeInputError(f"context lacks {', '.join(missing)}; pass what encode(...) returned")
        return {name: context[name] for name in names}

    def _step(self, signature: str, token_ids, positions, cache, context=None):
        inputs = {"token_ids": np.asarray(token_ids), "positions": np.asarray(positions)}
        if len(cache) != self.num_layers:
            raise RuntimeInputError(f"cache has {len(cache)} layers, the model has {self.num_layers}")
        cache = self._grown_cache(signature, inputs["positions"], cache)
        for i, (keys, values) in enumerate(cache):
            inputs[f"past_k_{i}"] = keys
            inputs[f"past_v_{i}"] = values
        inputs.update(self._context_inputs(context))
        outputs = self._call(signature, inputs)
        cache = tuple((outputs[f"present_k_{i}"], outputs[f"present_v_{i}"]) for i in range(self.num_layers))
        return outputs["logits"], cache

    def prefill(self, token_ids, positions, cache, context: dict | None = None):
        """Runs tokens (B, T) at positions (B, T) against `cache`; returns `(logits (B, T, V), cache)`.

        `cache`: `init_cache(B)` or the cache a step returned. It is grown first when it has no
        slot for a position (see `init_cache`); the cache returned has the slots the step ran on.

        `context`: what `encode(...)` returned (seq2seq and captioner exports only).
        """
        return self._step("prefill", token_ids, positions, cache, context)

    def decode(self, token_ids, positions, cache, context: dict | None = None):
        """One token per row: token_ids (B, 1) at positions (B, 1); returns `(logits (B, 1, V), cache)`."""
        return self._step("decode", token_ids, positions, cache, context)
