"""The `seq2seq` kind: encoder-decoder models (`Transformer`), e.g. translation.

Conditioning inputs: `source_ids` [B, S] (right-padded, any S) and
`source_lengths` [B]; in the graph the sources are cut or padded to
L = `max_sequence_length` (static shapes: one XLA compilation, fixed TFLite
tensors) and `source_lengths` clamped to [1, width] (TFLite does not
bounds-check gathers). The step also reads each decoder layer's
cross-attention keys and values (`cross_k_<i>`, `cross_v_<i>`, each
[B, num_heads, L, head_dim]) and the `source_lengths` (the source mask is
built from them in the graph). `serving_default` takes `sources` strings.
Parity and the quantized loss check run on held-out pairs of the run's
embedded `numbers:` task (else `config.sample_prompts`, and no loss check).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfzoo.kinds.base import EncoderKind, ModelKindError, pad_rows
from tfzoo.runtime_inputs import check_sources

NUM_PARITY_SOURCES = 4
VALIDATION_EXAMPLES = 32


def _translation_pairs(run) -> tuple[list[str], list[str]] | None:
    """Held-out (sources, targets) of an embedded `numbers:` task, or None for other datasets."""
    dataset = str(run.config.get("dataset", ""))
    if not dataset.startswith("numbers:"):
        return None
    from tfzoo.data.translation_data import load_translation_data  # noqa: PLC0415 (imported only when needed)

    try:
        task = load_translation_data(dataset, seed=int(run.config.get("seed", 0)))
    except ValueError as error:
        raise ModelKindError(f"cannot load the task {dataset!r} for parity inputs: {error}") from None
    return list(task.validation_sources), list(task.validation_targets)


class Seq2SeqKind(EncoderKind):
    """Encoder-decoder models (`Transformer`): `source_ids`, `source_lengths`."""

    name = "seq2seq"
    model_classes = ("Transformer",)
    condition_names = ("source_ids", "source_lengths")
    reported_conditions = ("source_ids", "source_lengths")
    description = "an encoder-decoder export"

    def report_fields(self, model_config, tokenizer):
        return {
            **super().report_fields(model_config, tokenizer),
            "max_source_length": int(model_config["max_sequence_length"]),
        }

    # ---- runtime side ----

    def check_conditions(self, info, conditions):
        conditions = super().check_conditions(info, conditions)
        limit = int(info.get("max_source_length") or info.get("max_sequence_length") or 0)
        source_ids, source_lengths = check_sources(conditions["source_ids"], conditions["source_lengths"], limit)
        return {"source_ids": source_ids, "source_lengths": source_lengths}

    def context_names(self, num_layers):
        return super().context_names(num_layers) + ["source_lengths"]

    def encoder_context(self, conditions, encoded):
        return {**encoded, "source_lengths": conditions["source_lengths"]}

    def serving_feed(self, info, prompts):
        return "sources", [str(p) for p in prompts]

    def cli_conditions(self, prompt, image_path, tokenizer, max_source_length):
        super().cli_conditions(prompt, image_path, tokenizer, max_source_length)
        source = np.asarray(tokenizer.encode(prompt), np.int32)
        if source.size == 0:
            raise ValueError("empty prompt: the source encodes to no tokens")
        if source.size > max_source_length:
            raise ValueError(
                f"the source has {source.size} tokens, more than the model's max_sequence_length={max_source_length}"
            )
        return {"source_ids": source[None], "source_lengths": np.asarray([source.size], np.int32)}

    # ---- model side ----

    def condition_specs(self, batch_size=None):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        return {
            "source_ids": tf.TensorSpec([batch_size, None], tf.int32, name="source_ids"),
            "source_lengths": tf.TensorSpec([batch_size], tf.int32, name="source_lengths"),
        }

    def context_specs(self):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        specs = self._cross_specs(int(self.model.max_sequence_length))
        specs["source_lengths"] = tf.TensorSpec([None], tf.int32, name="source_lengths")
        return specs

    def prepare(self, conditions):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        from tfzoo.decoding.graph_ops import clamp  # noqa: PLC0415 (imported only when needed)

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
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        from tfzoo.decoding.graph_ops import clamp  # noqa: PLC0415 (imported only when needed)

        width = tf.shape(context["cross_k_0"])[2]
        source_lengths = clamp(tf.cast(context["source_lengths"], tf.int32), 1, tf.maximum(width, 1))
        source_mask = tf.range(width)[None, :] < source_lengths[:, None]  # (B, S)
        return self.model.call_with_cache(token_ids, positions, cache, self._cross(context), source_mask)

    def init_decoding_cache(self, conditions, max_length: int):
        return self.model.init_decoding_cache(conditions["source_ids"], conditions["source_lengths"], max_length)

    def serving_input_spec(self):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        return tf.TensorSpec([None], tf.string, name="sources")

    def serving_conditions(self, tokenizer, inputs):
        """Source strings -> `source_ids`, `source_lengths`; a source over `max_sequence_length` fails the call."""
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        limit = int(self.model.max_sequence_length)
        counts = tokenizer.token_counts(inputs)
        check = tf.debugging.assert_less_equal(
            counts,
            limit,
            message=f"a source has more tokens than max_sequence_length={limit}",
        )
        with tf.control_dependencies([check]):
            source_ids, source_lengths = tokenizer.encode(inputs, limit, empty_id=tokenizer.eos_id)
        return {"source_ids": source_ids, "source_lengths": source_lengths}

    # ---- parity ----

    def parity_inputs(self, run, max_length) -> dict[str, Any]:
        """A few held-out sources of different lengths (else `config.sample_prompts`), the start token as prompt."""
        tokenizer = run.tokenizer
        limit = int(run.model_config["max_sequence_length"])
        pairs = _translation_pairs(run)
        candidates = pairs[0] if pairs else list(run.config.get("sample_prompts") or ())
        encoded = [(text, list(tokenizer.encode(text))) for text in candidates]
        encoded = sorted((len(ids), text, ids) for text, ids in encoded if 0 < len(ids) <= limit)
        if not encoded:
            raise ModelKindError("no held-out source of the task fits the model's max_sequence_length for parity")
        picks = sorted({round(q * (len(encoded) - 1)) for q in np.linspace(0, 1, NUM_PARITY_SOURCES)})
        chosen = [encoded[i] for i in picks]
        rows = [ids for _, _, ids in chosen]
        lengths = np.asarray([len(ids) for ids in rows], np.int32)
        conditions = {"source_ids": pad_rows(rows, int(lengths.max()), tokenizer.pad_id), "source_lengths": lengths}
        start = run.model_config.get("decoder_start_id")
        return self._start_prompts(tokenizer, [text for _, text, _ in chosen], conditions, max_length, start)

    def validation_examples(self, run, max_length):
        """Teacher-forced held-out pairs (`<bos> y` in, `y <eos>` out, padding masked), or `{"error": ...}`."""
        tokenizer = run.tokenizer
        limit = int(run.model_config["max_sequence_length"])
        pairs = _translation_pairs(run)
        if pairs is None:
            return {"error": f"no embedded held-out pairs for dataset {run.config.get('dataset')!r}"}
        examples = [(list(tokenizer.encode(s)), list(tokenizer.encode(t))) for s, t in zip(*pairs)]
        examples = [(s, t) for s, t in examples if 0 < len(s) <= limit][:VALIDATION_EXAMPLES]
        if not examples:
            return {"error": "no held-out source fits the model's max_sequence_length"}
        sources, targets = [s for s, _ in examples], [t for _, t in examples]
        source_lengths = np.asarray([len(s) for s in sources], np.int32)
        conditions = {
            "source_ids": pad_rows(sources, int(source_lengths.max()), tokenizer.pad_id),
            "source_lengths": source_lengths,
        }
        start = run.model_config.get("decoder_start_id")
        return self._teacher_forced(tokenizer, targets, conditions, max_length, start)


KIND = Seq2SeqKind
