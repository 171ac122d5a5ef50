"""LiteRT-LM bundles (`<name>.litertlm`) of decoder-only models, run by Google's `litert_lm.Engine`.

LiteRT-LM (PyPI `litert-lm-api`, packed with `litert-lm-builder`) runs its own prefill/decode
loop, sampler and tokenizer over a TFLite model with signatures of its own convention, so the
bundle carries a separate small graph (`LiteRtLmModule`), not the export's `prefill`/`decode`.
What LiteRT-LM 0.18.1 needs (CPU), and how this module meets it:

- `prefill_<T>` for a few static lengths T (`prefill_lengths`: 8, 32, 128 capped by
  `max_length`; the engine splits a prompt into chunks and right-pads the last one) and
  `decode` (T = 1). Batch 1, every shape static: a dynamic batch or prefill length fails in the
  engine.
- Inputs `tokens` int32 [1, T] and `input_pos` int32 [1, T]; per layer `kv_cache_k_<i>`,
  `kv_cache_v_<i>` [1, num_heads, max_length + 1, head_dim] float32, with the same names as
  outputs (the whole cache in and out; the engine reads dim 2 as the context length). `decode`
  (and each `prefill_<T>`) also returns `logits` float32 [1, T, V].
- Padding: the engine right-pads a short chunk with token 0 **at position 0**. Written by
  position, those tokens would be summed into slot 0 of the cache. The graph spots them (a token
  whose position is not the chunk's first position plus its index) and writes them to the spare
  slot `max_length`, which no query attends to (a query at position p sees slots <= p, and
  real positions stop at `max_length - 1`).
- `LlmMetadata` (`llm_metadata`): stop tokens (the model's eos), `max_num_tokens`
  (`max_length`), the TOP_P sampler with k 1 (greedy: the engine's GREEDY and TOP_K types are
  not implemented), `suppress_tokens` (the export's banned ids), `generic_model`.
- A Hugging Face `tokenizer.json` (the caller writes it; see `export.pipeline`).

The graph is converted with TFLite builtins only (`export.tflite_export.convert_tflite`, the
same quantization options), then packed (`write_litertlm`: a temporary file renamed into place).

Example:
>>> prefill_lengths(24), prefill_lengths(1024)
((8, 24), (8, 32, 128))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

PREFILL_LENGTHS = (8, 32, 128)
KV_NAMES = ("kv_cache_k_{}", "kv_cache_v_{}")


def prefill_lengths(max_length: int) -> tuple[int, ...]:
    """The static prefill lengths of a bundle: `PREFILL_LENGTHS` below `max_length`, then `max_length` if smaller.

    Example:
    >>> prefill_lengths(32), prefill_lengths(8), prefill_lengths(200)
    ((8, 32), (8,), (8, 32, 128))
    """
    lengths = [t for t in PREFILL_LENGTHS if t < max_length]
    lengths.append(min(max_length, PREFILL_LENGTHS[-1]))
    return tuple(sorted(set(lengths)))


def litertlm_filename(name: str, quantization: str = "none") -> str:
    """`<name>.litertlm` for float32, `<name>.<quantization>.litertlm` otherwise.

    Example:
    >>> litertlm_filename("gpt"), litertlm_filename("gpt", "int8")
    ('gpt.litertlm', 'gpt.int8.litertlm')
    """
    return f"{name}.litertlm" if quantization == "none" else f"{name}.{quantization}.litertlm"


def signature_names(max_length: int) -> list[str]:
    """The bundle's TFLite signatures: `prefill_<T>` for every prefill length, then `decode`."""
    return [f"prefill_{t}" for t in prefill_lengths(max_length)] + ["decode"]


def litertlm_module(model, *, max_length: int, route_padding: bool = True):
    """A `tf.Module` with the bundle's signatures (`signature_names`) over `model`'s fixed cache.

    Args:
        model: a tfzoo decoder-only model (`GPT`): `call_with_cache(token_ids, positions, cache)`.
        max_length: int. Most tokens of prompt plus output; the cache has one slot more (the
            spare slot of the engine's padding).
        route_padding: bool. Write the engine's padding tokens to the spare slot. Defaults to True;
            False only shows (in the tests) what the guard prevents.

    Returns:
        tf.Module whose attributes `prefill_<T>` and `decode` are `tf.function`s with static
        input signatures; the model's variables are tracked as `model_variables`.

    Example:
    >>> from tfzoo.models.gpt import GPT
    >>> model = GPT(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...             intermediate_dim=16, max_sequence_length=16)
    >>> module = litertlm_module(model, max_length=16)
    >>> module.prefill_8.input_signature[0].shape.as_list()
    [1, 8]
    """
    import tensorflow as tf  # noqa: PLC0415 (the pipeline imports this module before TensorFlow)

    from tfzoo.decoding.graph_ops import clamp  # noqa: PLC0415 (TensorFlow only when needed)

    num_layers = int(model.num_layers)
    num_heads = int(model.num_heads)
    head_dim = int(model.hidden_dim // model.num_heads)
    cache_shape = [1, num_heads, max_length + 1, head_dim]  # slot max_length: the padding's
    module = tf.Module(name="tfzoo_litertlm")
    module.model_variables = [v.value for v in model.variables]  # tracked: the converter freezes them

    def build(length: int):
        specs = [
            tf.TensorSpec([1, length], tf.int32, name="tokens"),
            tf.TensorSpec([1, length], tf.int32, name="input_pos"),
        ]
        for i in range(num_layers):
            specs += [tf.TensorSpec(cache_shape, tf.float32, name=name.format(i)) for name in KV_NAMES]

        def step(tokens, input_pos, *flat_cache):
            cache = tuple((flat_cache[2 * i], flat_cache[2 * i + 1]) for i in range(num_layers))
            input_pos = tf.cast(input_pos, tf.int32)
            contiguous = input_pos[:, :1] + tf.range(length, dtype=tf.int32)[None]  # (1, T)
            padding = tf.not_equal(input_pos, contiguous)  # the engine's padding: token 0 at position 0
            positions = clamp(input_pos, 0, max_length - 1)
            if route_padding:
                positions = tf.where(padding, tf.fill(tf.shape(positions), max_length), positions)  # (1, T)
            logits, cache = model.call_with_cache(tokens, positions, cache)
            outputs = {"logits": tf.cast(logits, tf.float32)}  # (1, T, V)
            for i, (keys, values) in enumerate(cache):
                outputs[KV_NAMES[0].format(i)] = keys
                outputs[KV_NAMES[1].format(i)] = values
            return outputs

        return tf.function(step, input_signature=specs, autograph=False)

    for name in signature_names(max_length):
        function = build(1 if name == "decode" else int(name.split("_")[1]))
        setattr(module, name, function)
    return module


def save_litertlm_saved_model(module, directory: str, max_length: int) -> list[str]:
    """Saves the signatures of `litertlm_module(..., max_length=max_length)` as a SavedModel; returns their names."""
    import tensorflow as tf  # noqa: PLC0415 (imported only when needed)

    names = signature_names(max_length)
    signatures = {name: getattr(module, name).get_concrete_function() for name in names}
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)  # as the export's SavedModels
    tf.saved_model.save(module, directory, signatures=signatures, options=options)
    return names


def llm_metadata(*, eos_ids: Sequence[int], banned_ids: Sequence[int], max_length: int) -> bytes:
    """The serialized `LlmMetadata` proto of a bundle (greedy decoding, as the Keras reference).

    Example:
    >>> len(llm_metadata(eos_ids=[1], banned_ids=[0], max_length=32)) > 0
    True
    """
    from litert_lm_builder.runtime.proto import llm_metadata_pb2, sampler_params_pb2  # noqa: PLC0415 (optional extra)

    metadata = llm_metadata_pb2.LlmMetadata()
    for eos in eos_ids:
        metadata.stop_tokens.add().token_ids.ids.append(int(eos))
    metadata.max_num_tokens = int(max_length)
    metadata.sampler_params.type = sampler_params_pb2.SamplerParameters.TOP_P
    metadata.sampler_params.k = 1  # top-1 of TOP_P: greedy (the GREEDY type is not implemented)
    metadata.sampler_params.p = 1.0
    metadata.sampler_params.temperature = 1.0
    metadata.suppress_tokens.ids.extend(int(i) for i in banned_ids)
    metadata.llm_model_type.generic_model.SetInParent()
    return metadata.SerializeToString()


def write_litertlm(
    path: str, *, tflite_path: str, tokenizer_json_path: str, metadata: bytes, extra: dict[str, Any] | None = None
) -> str:
    """Packs a TFLite model, an HF `tokenizer.json` and `LlmMetadata` bytes into a `.litertlm` file.

    Writes `<path>.tmp-<pid>` and renames it to `path`; returns `path`.
    """
    import litert_lm_builder  # noqa: PLC0415 (optional extra)

    metadata_path = f"{path}.metadata-{os.getpid()}.pb"
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(metadata_path, "wb") as file:
            file.write(metadata)
        builder = litert_lm_builder.LitertLmFileBuilder()
        for key, value in (extra or {}).items():
            builder.add_system_metadata(
                litert_lm_builder.Metadata(key=key, value=str(value), dtype=litert_lm_builder.DType.STRING)
            )
        builder.add_tflite_model(tflite_path, litert_lm_builder.TfLiteModelType.PREFILL_DECODE)
        builder.add_hf_tokenizer(tokenizer_json_path)
        builder.add_llm_metadata(metadata_path)
        with open(temporary, "wb") as file:
            builder.build(file)
        os.replace(temporary, path)
    finally:
        for leftover in (metadata_path, temporary):
            if os.path.exists(leftover):
                os.remove(leftover)
    return path
