"""`ModelKind`: what every part of tfzoo and the export needs to know about one family of models.

A kind owns its facts in one module (`tfzoo/kinds/<kind>.py`, listed in
`tfzoo/kinds/__init__.py`); the export pipeline, the runtime adapters, the
generate CLI and the parity checks ask it and never branch on its name.

Two sides, both on the kind:

- the runtime side (numpy only, no model; `kind_named(report["model"]["kind"])`):
  which conditioning inputs a runtime adapter takes and how they are
  checked (`check_conditions`), the encoder context its steps take
  (`context_names`, `encoder_context`), what `serving_default` is fed
  (`serving_feed`), the CLI's inputs (`cli_conditions`);
- the model side (`kind_of(model)`: the kind bound to a Keras model; the
  methods import TensorFlow when they run): the signatures' conditioning
  specs and in-graph guards (`condition_specs`, `prepare`), `encode`,
  `step`, `init_decoding_cache`, `generator`, the serving signature
  (`serving_input_spec`, `serving_prompts`), the report fields
  (`report_fields`), the parity inputs and validation examples
  (`parity_inputs`, `validation_examples`, `validation_logits`).

`ModelKindError` (a `ValueError`) is bad input a kind detects (e.g. no
held-out data for parity); one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfzoo.runtime_errors import RuntimeInputError


class ModelKindError(ValueError):
    """A model, run or input that a kind cannot adapt; one line naming the problem."""


def start_id(tokenizer, decoder_start_id: int | None = None) -> int:
    """The decoder prompt of translations and captions: the model's `decoder_start_id` (T5: the pad id),
    else the tokenizer's `<bos>`, else its end-of-text id."""
    if decoder_start_id is not None:
        return int(decoder_start_id)
    return int(getattr(tokenizer, "special_tokens", {}).get("<bos>", tokenizer.eos_id))


def pad_rows(rows: list, width: int, pad_id: int) -> np.ndarray:
    """Right-pads lists of ids into an int32 (len(rows), width) array."""
    array = np.full((len(rows), width), pad_id, np.int32)
    for row, ids in enumerate(rows):
        array[row, : len(ids)] = ids
    return array


class ModelKind:
    """One family of models (subclassed per kind); unbound (`model=None`) for the runtime side.

    Args:
        model: the Keras model, or None for the numpy-only runtime side.

    Example:
    >>> from tfzoo.kinds import kind_named
    >>> kind_named("decoder").context_names(num_layers=2)
    []
    """

    name = ""
    model_classes: tuple[str, ...] = ()  # the class names in `model.keras` this kind adapts
    required_methods: tuple[str, ...] = ("init_cache", "call_with_cache")
    condition_names: tuple[str, ...] = ()  # extra inputs of `generate` (and `encode`)
    reported_conditions: tuple[str, ...] = ()  # parity conditions written into report["reference"]
    has_encoder = False
    start_signature: str | None = None  # a signature decoding from the start token (asr: "transcribe"), or None
    generative = True  # has a decode loop (`generate`, `prefill`, `decode`); False: `encoder` (`embed`), `tts`
    # The module whose `resolve_max_length` and `export_kind` export a kind without a decode loop
    # (`export.embed_export`, `export.synthesize_export`); None: the generative pipeline (`export.pipeline`).
    export_module: str | None = None
    description = ""  # "a decoder-only export", ...: names the kind in runtime errors
    signatures: tuple[str, ...] = ()  # the numeric signatures of a kind without a decode loop (`embed`, ...)

    def __init__(self, model=None):
        self.model = model
        if model is not None:
            self.num_layers = int(model.num_layers)
            self.num_heads = int(model.num_heads)
            self.head_dim = int(model.head_dim)

    # ---- facts of the run (no TensorFlow) ----

    def architecture(self, model_config: dict) -> dict:
        """The constructor arguments that size the model (a task model's backbone's for the encoder kind)."""
        return model_config

    def image_shape(self, model_config: dict) -> tuple[int, int, int] | None:
        """(height, width, channels) of the model's images; None for text models."""
        return None

    def report_fields(self, model_config: dict, tokenizer) -> dict[str, Any]:
        """The kind's extra fields of `report["model"]` (`start_id`, `max_source_length`, `image_shape`)."""
        return {}

    def banned_ids(self, tokenizer) -> list[int]:
        """Ids the export's decoders never emit: the pad id, unless it also ends rows (GPT-2: pad == eos).

        A tokenizer without an end-of-text id (a converted GPT-2 whose id lay outside its vocabulary)
        pads with an ordinary token, which stays allowed, as in transformers.
        """
        if tokenizer.eos_id is None:
            return []
        return sorted({int(tokenizer.pad_id)} - {int(tokenizer.eos_id)})

    def max_length_problem(self, max_length: int, limit: int) -> str | None:
        """Why `--max_length` cannot be exported for this kind (None: it can)."""
        return None

    def resolve_max_length(self, max_length: int | None, limit: int, config: dict) -> int:
        """The exported `max_length` of a kind without a decode loop (`export_module`), from `--max_length`.

        Args:
            max_length: int or None. The flag (None: the kind's default).
            limit: int. The model's `max_sequence_length`.
            config: dict. The run config.

        Raises:
            ModelKindError: a value the kind cannot export (one line).
        """
        raise NotImplementedError(f"the {self.name} kind exports through the generative pipeline")

    # ---- runtime side (numpy) ----

    def check_conditions(self, info: dict, conditions: dict[str, Any]) -> dict[str, np.ndarray]:
        """The checked conditioning inputs of a runtime call (`info`: the report's `model` section).

        `conditions` holds the keyword arguments a runtime adapter's `generate`/`encode` got that are no
        decoding knob; this base checks that they are this kind's (`condition_names`), none missing.
        """
        given = {key for key, value in conditions.items() if value is not None}
        unknown = sorted(given - set(self.condition_names))
        if unknown:
            takes = " and ".join(self.condition_names) if self.condition_names else "no conditioning input"
            raise RuntimeInputError(f"this is {self.description}: it takes {takes}, not {', '.join(unknown)}")
        missing = [name for name in self.condition_names if name not in given]
        if missing:
            raise RuntimeInputError(f"this is {self.description}: pass {' and '.join(missing)}")
        return {name: conditions[name] for name in self.condition_names}

    def context_names(self, num_layers: int) -> list[str]:
        """The encoder state that `prefill`/`decode` take (none for decoders)."""
        return []

    def encoder_context(self, conditions: dict, encoded: dict) -> dict[str, np.ndarray]:
        """The `context` of `prefill`/`decode` from the `encode` outputs and the checked conditions."""
        return encoded

    def serving_feed(self, info: dict, prompts) -> tuple[str, Any]:
        """`(input name, value)` of `serving_default`: a list of strings, or a float32 array."""
        return "prompts", [str(p) for p in prompts]

    def cli_conditions(self, prompt: str | None, image_path: str | None, tokenizer, max_source_length: int) -> dict:
        """The conditioning inputs of the generate CLI's `--prompt` / `--image` (empty: `--prompt` continues)."""
        if image_path is not None:
            raise ValueError("--image is for captioners; this model takes --prompt")
        if prompt is None:
            raise ValueError("--prompt is required")
        return {}

    def keras_conditions(self, conditions: dict, model) -> dict:
        """The CLI's conditions checked against the Keras model (`--runtime=keras`)."""
        return conditions

    # ---- model side (TensorFlow) ----

    def check_model(self, model, path: str) -> str | None:
        """Why a loaded model cannot be exported (a missing method), or None."""
        for method in self.required_methods:
            if not callable(getattr(model, method, None)):
                return f"{type(model).__name__} in {path} has no {method}()"
        return None

    def condition_specs(self, batch_size: int | None = None) -> dict:
        """Specs of the conditioning inputs of `generate` and `encode` (none for decoders)."""
        return {}

    def context_specs(self) -> dict:
        """Specs of the extra inputs of `prefill`/`decode`: the encoder's state (none for decoders)."""
        return {}

    def prepare(self, conditions: dict) -> dict:
        """In-graph guards on the conditioning inputs (cut, clamp, cast)."""
        return conditions

    def encode(self, conditions: dict) -> dict:
        """`encode` outputs: `encoder_output` and per layer `cross_k_<i>`, `cross_v_<i>`."""
        raise NotImplementedError(f"a {self.name} model has no encoder")

    def step(self, token_ids, positions, cache, context: dict):
        """One cached step; `cache` is the decoder self-attention cache. Returns `(logits, cache)`."""
        return self.model.call_with_cache(token_ids, positions, cache)

    def generator(self, **settings):
        """The decode loop for one strategy (`tfzoo.decoding.Generator` or a `ConditionalGenerator`)."""
        from tfzoo.decoding.generator import Generator  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        return Generator(self.model, **settings)

    def serving_input_spec(self):
        """The first input of `serving_default` (`prompts` strings for decoders)."""
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        return tf.TensorSpec([None], tf.string, name="prompts")

    def serving_prompts(self, tokenizer, inputs, max_prompt: int, start: int):
        """`(token_ids, lengths, conditions)` of `serving_default`'s decode loop, in the graph.

        Args:
            tokenizer: the in-graph tokenizer ops (`encode`, `token_counts`, `eos_id`) the export built.
            inputs: the `serving_input_spec` tensor.
            max_prompt: int. Most prompt tokens (room for one new token).
            start: int. The start token of conditional kinds.
        """
        token_ids, lengths = tokenizer.encode(inputs, max_prompt, empty_id=tokenizer.eos_id)
        return token_ids, lengths, {}

    def parity_inputs(self, run, max_length: int) -> dict[str, Any]:
        """Parity prompts: `texts`, `token_ids`, `lengths`, `max_new_tokens` (and `conditions`).

        `run` has `.tokenizer`, `.config` (the run config), `.model_config`.
        """
        raise NotImplementedError

    def validation_examples(self, run, max_length: int) -> dict[str, Any]:
        """Held-out examples for the quantized loss check (`inputs`, `labels`, ...), or `{"error": ...}`."""
        raise NotImplementedError

    def validation_logits(self, model, validation: dict) -> np.ndarray:
        """The Keras model's logits on `validation_examples` (compared with its `labels`, under its `mask`)."""
        return np.asarray(model.predict(validation["inputs"], batch_size=8, verbose=0))

    # shared by the encoder kinds
    def _cross_outputs(self, memory) -> dict:
        outputs = {"encoder_output": memory}
        for i, (keys, values) in enumerate(self.model.cross_attention_cache(memory)):
            outputs[f"cross_k_{i}"] = keys
            outputs[f"cross_v_{i}"] = values
        return outputs

    def _cross_specs(self, length: int | None) -> dict:
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        shape = [None, self.num_heads, length, self.head_dim]
        specs = {}
        for i in range(self.num_layers):
            specs[f"cross_k_{i}"] = tf.TensorSpec(shape, tf.float32, name=f"cross_k_{i}")
            specs[f"cross_v_{i}"] = tf.TensorSpec(shape, tf.float32, name=f"cross_v_{i}")
        return specs

    def _cross(self, context) -> tuple:
        return tuple((context[f"cross_k_{i}"], context[f"cross_v_{i}"]) for i in range(self.num_layers))


class EncoderKind(ModelKind):
    """Base of the kinds whose decoder attends to an encoder (translation, captions): the shared parts."""

    required_methods = (
        "init_cache",
        "call_with_cache",
        "encode",
        "cross_attention_cache",
        "init_decoding_cache",
        "decoding_step",
    )
    has_encoder = True

    def report_fields(self, model_config, tokenizer):
        return {"start_id": start_id(tokenizer, model_config.get("decoder_start_id"))}

    def banned_ids(self, tokenizer):
        """Every special token but the end of text: the decoder starts from `<bos>` and never emits it."""
        specials = set(getattr(tokenizer, "special_tokens", {}).values())
        specials |= {start_id(tokenizer), int(tokenizer.pad_id)}
        return sorted(int(i) for i in specials - {int(tokenizer.eos_id)})  # as `tfzoo.generate` bans

    def max_length_problem(self, max_length, limit):
        if max_length > limit:
            return (
                f"--max_length={max_length} exceeds the model's max_sequence_length={limit} "
                f"(a {self.name} model's decoder cache holds at most that many tokens)"
            )
        return None

    def context_names(self, num_layers):
        return [f"cross_{kv}_{i}" for i in range(num_layers) for kv in "kv"]

    def serving_prompts(self, tokenizer, inputs, max_prompt, start):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        batch = tf.shape(inputs)[0]  # the decoder prompt is the start token
        return tf.fill([batch, 1], start), tf.ones([batch], tf.int32), self.serving_conditions(tokenizer, inputs)

    def serving_conditions(self, tokenizer, inputs) -> dict:
        """The conditioning inputs of `serving_default`'s decode loop from its first input."""
        raise NotImplementedError

    def generator(self, **settings):
        from tfzoo.kinds.conditional import ConditionalGenerator  # noqa: PLC0415 (TensorFlow only when needed)

        return ConditionalGenerator(self, **settings)

    def validation_logits(self, model, validation):
        """Teacher-forced logits on `inputs` (B, T) given the examples' conditions."""
        features = {"target_ids": validation["inputs"], **validation["conditions"]}
        return np.asarray(model(features, training=False))

    def _teacher_forced(
        self, tokenizer, targets: list, conditions: dict, max_length: int, start: int | None = None
    ) -> dict[str, Any]:
        """Teacher forcing on the first `max_length` target positions (the exported cache holds no more)."""
        start = start_id(tokenizer, start)
        inputs = [([start] + t)[:max_length] for t in targets]
        labels = [(t + [tokenizer.eos_id])[:max_length] for t in targets]
        width = max(len(row) for row in inputs)
        mask = np.arange(width)[None, :] < np.asarray([len(row) for row in inputs])[:, None]
        inputs, labels = pad_rows(inputs, width, tokenizer.pad_id), pad_rows(labels, width, tokenizer.pad_id)
        return {"inputs": inputs, "labels": labels, "mask": mask, "conditions": conditions}

    def _start_prompts(
        self, tokenizer, texts: list, conditions: dict, max_length: int, start: int | None = None
    ) -> dict[str, Any]:
        batch = len(texts)
        return {
            "texts": texts,
            "token_ids": np.full((batch, 1), start_id(tokenizer, start), np.int32),
            "lengths": np.ones((batch,), np.int32),
            "max_new_tokens": int(max_length - 1),
            "conditions": conditions,
        }
