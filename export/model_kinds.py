"""Per-model-kind adapters: which inputs a signature takes and how a model's step is called.

The export pipeline is one pipeline for every model family; what differs is
written here, once per kind:

- `decoder` (`GPT`): no conditioning input; the decoder cache is
  `model.init_cache`, the step `model.call_with_cache`.
- `seq2seq` (`Transformer`): `source_ids` [B, S] (right-padded, any
  S) and `source_lengths` [B]; in the graph the sources are cut or padded to
  L = `max_sequence_length` (static shapes: one XLA compilation, fixed
  TFLite tensors). The step also reads each decoder layer's cross-attention
  keys and values (`cross_k_<i>`, `cross_v_<i>`, each [B, num_heads, L,
  head_dim]) and the `source_lengths` (the source mask is built from them in
  the graph).
- `captioner` (`Captioner`): `image` float32 [B, H, W, C] in [0, 1]; the step
  reads `cross_k_<i>`, `cross_v_<i>` [B, num_heads, N, head_dim] over the N
  patches (no mask: every patch is real).

`ConditionalGenerator` is `tfzoo.decoding.Generator` for the conditional
kinds: the same knobs and outputs, plus the kind's conditioning inputs; the
encoder runs once, then `tfzoo.decoding.generate` runs
`model.decoding_step` on `model.init_decoding_cache` (as training-time
translation does, `tfzoo.training.tasks.Seq2SeqTask.translate`).

In-graph guards (TFLite does not bounds-check gathers): sources wider than
`max_sequence_length` are cut, `source_lengths` clamped to [1, width];
an image's shape is fixed by the signature.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfzoo.decoding.generator import Generator
from tfzoo.decoding.graph_ops import clamp

KIND_OF_CLASS = {"GPT": "decoder", "Transformer": "seq2seq", "Captioner": "captioner"}


class ModelKind:
    """What the export needs to know about one family of models (subclassed per kind).

    Args:
        model: the Keras model.
    """

    name = ""
    condition_names: tuple[str, ...] = ()  # extra inputs of `generate` (and `encode`)
    has_encoder = False

    def __init__(self, model):
        self.model = model
        self.num_layers = int(model.num_layers)
        self.num_heads = int(model.num_heads)
        self.head_dim = int(model.hidden_dim // model.num_heads)

    def condition_specs(self, batch_size: int | None = None) -> dict[str, tf.TensorSpec]:
        """Specs of the conditioning inputs of `generate` and `encode` (none for decoders)."""
        return {}

    def context_specs(self) -> dict[str, tf.TensorSpec]:
        """Specs of the extra inputs of `prefill`/`decode`: the encoder's state (none for decoders)."""
        return {}

    def prepare(self, conditions: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """In-graph guards on the conditioning inputs (cut, clamp, cast)."""
        return conditions

    def encode(self, conditions: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """`encode` outputs: `encoder_output` and per layer `cross_k_<i>`, `cross_v_<i>`."""
        raise NotImplementedError

    def step(self, token_ids, positions, cache, context: dict[str, tf.Tensor]):
        """One cached step; `cache` is the decoder self-attention cache. Returns `(logits, cache)`."""
        return self.model.call_with_cache(token_ids, positions, cache)

    def generator(self, **settings):
        """The decode loop for one strategy (`Generator` or `ConditionalGenerator`)."""
        return Generator(self.model, **settings)

    def _cross_outputs(self, memory) -> dict[str, tf.Tensor]:
        outputs = {"encoder_output": memory}
        for i, (keys, values) in enumerate(self.model.cross_attention_cache(memory)):
            outputs[f"cross_k_{i}"] = keys
            outputs[f"cross_v_{i}"] = values
        return outputs

    def _cross_specs(self, length: int | None) -> dict[str, tf.TensorSpec]:
        shape = [None, self.num_heads, length, self.head_dim]
        specs = {}
        for i in range(self.num_layers):
            specs[f"cross_k_{i}"] = tf.TensorSpec(shape, tf.float32, name=f"cross_k_{i}")
            specs[f"cross_v_{i}"] = tf.TensorSpec(shape, tf.float32, name=f"cross_v_{i}")
        return specs

    def _cross(self, context):
        return tuple((context[f"cross_k_{i}"], context[f"cross_v_{i}"]) for i in range(self.num_layers))


class DecoderKind(ModelKind):
    """Decoder-only models (`GPT`): `init_cache` / `call_with_cache`."""

    name = "decoder"


class Seq2SeqKind(ModelKind):
    """Encoder-decoder models (`Transformer`): `source_ids`, `source_lengths`."""

    name = "seq2seq"
    condition_names = ("source_ids", "source_lengths")
    has_encoder = True

    def condition_specs(self, batch_size=None):
        return {
            "source_ids": tf.TensorSpec([batch_size, None], tf.int32, name="source_ids"),
            "source_lengths": tf.TensorSpec([batch_size], tf.int32, name="source_lengths"),
        }

    def context_specs(self):
        specs = self._cross_specs(int(self.model.max_sequence_length))
        specs["source_lengths"] = tf.TensorSpec([None], tf.int32, name="source_lengths")
        return specs

    def prepare(self, conditions):
        limit = int(self.model.max_sequence_length)
        source_ids = tf.cast(conditions["source_ids"], tf.int32)[:, :limit]
        width = tf.shape(source_ids)[1]
        source_lengths = clamp(tf.cast(conditions["source_lengths"], tf.int32), 1, tf.maximum(width, 1))
        source_ids = tf.pad(source_ids, [[0, 0], [0, limit - width]], constant_values=self.model.pad_id)
        return {"source_ids": tf.reshape(source_ids, [-1, limit]), "source_lengths": source_lengths}

    def encode(self, conditions):
        conditions = self.prepare(conditions)
        memory = self.model.encode(conditions["source_ids"], conditions["source_lengths"])
        return self._cross_outputs(memory)

    def step(self, token_ids, positions, cache, context):
        width = tf.shape(context["cross_k_0"])[2]
        source_lengths = clamp(tf.cast(context["source_lengths"], tf.int32), 1, tf.maximum(width, 1))
        source_mask = tf.range(width)[None, :] < source_lengths[:, None]  # (B, S)
        return self.model.call_with_cache(token_ids, positions, cache, self._cross(context), source_mask)

    def init_decoding_cache(self, conditions, max_length: int):
        return self.model.init_decoding_cache(conditions["source_ids"], conditions["source_lengths"], max_length)

    def generator(self, **settings):
        return ConditionalGenerator(self, **settings)


class CaptionerKind(ModelKind):
    """Image-to-text models (`Captioner`): `image` float32 (B, H, W, C) in [0, 1]."""

    name = "captioner"
    condition_names = ("image",)
    has_encoder = True

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (int(self.model.image_size), int(self.model.image_size), int(self.model.num_channels))

    def condition_specs(self, batch_size=None):
        return {"image": tf.TensorSpec([batch_size, *self.image_shape], tf.float32, name="image")}

    def context_specs(self):
        return self._cross_specs(int(self.model.num_patches))

    def prepare(self, conditions):
        return {"image": tf.cast(conditions["image"], tf.float32)}

    def encode(self, conditions):
        return self._cross_outputs(self.model.encode(self.prepare(conditions)["image"]))

    def step(self, token_ids, positions, cache, context):
        return self.model.call_with_cache(token_ids, positions, cache, self._cross(context))

    def init_decoding_cache(self, conditions, max_length: int):
        return self.model.init_decoding_cache(conditions["image"], max_length)

    def generator(self, **settings):
        return ConditionalGenerator(self, **settings)


KINDS = {kind.name: kind for kind in (DecoderKind, Seq2SeqKind, CaptionerKind)}


def model_kind(model) -> ModelKind:
    """The adapter of `model` by its class name (`GPT`, `Transformer`, `Captioner`).

    Example:
    >>> from tfzoo.models.gpt import GPT
    >>> model_kind(GPT(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...                intermediate_dim=16, max_sequence_length=16)).name
    'decoder'
    """
    name = type(model).__name__
    if name not in KIND_OF_CLASS:
        raise ValueError(f"no export adapter for {name}; supported: {', '.join(KIND_OF_CLASS)}")
    return KINDS[KIND_OF_CLASS[name]](model)


class ConditionalGenerator(Generator):
    """`tfzoo.decoding.Generator` for encoder-decoder and image models.

    The compiled loop encodes the conditioning inputs once
    (`model.init_decoding_cache`), then runs `tfzoo.decoding.generate` with
    `model.decoding_step`; `signature()` puts the kind's conditions before
    `token_ids` (the decoder prompt, normally the start token), `lengths` and
    the knobs.

    Args:
        kind: a `Seq2SeqKind` or `CaptionerKind`.
        **settings: `max_length` (at most the model's `max_sequence_length`),
            `strategy`, `beam_size`, `eos_ids`, `banned_ids`, `pad_id`,
            `length_penalty_form`, `return_beams`, `jit_compile`: as for `Generator`.
    """

    def __init__(self, kind: ModelKind, **settings: Any):
        self.kind = kind
        super().__init__(kind.model, **settings)

    def _check_model(self, model) -> None:
        pass  # the kind adapter already checked the model's class

    def condition_specs(self, batch_size: int | None = None) -> dict[str, tf.TensorSpec]:
        return self.kind.condition_specs(batch_size)

    def _start(self, batch_size, conditions):
        cache = self.kind.init_decoding_cache(self.kind.prepare(conditions), self.max_length)
        return self.kind.model.decoding_step, cache
