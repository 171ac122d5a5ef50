"""The `encoder` kind: BERT encoders (`BertEncoder`, and the task models around one), exported for embeddings.

No decode loop: the export's signature is `embed` (docs/contract.md): `token_ids`
[B, T] right-padded and `lengths` [B] in (and `segment_ids` [B, T] when the
model has segment embeddings: zeros for one sentence), `sequence_output`
[B, T, C], `pooled_output` [B, C] (only when the checkpoint has a pooler) and
`sentence_embedding` [B, C] (masked mean over the first `lengths` tokens,
L2-normalised, as sentence-transformers computes it) out. A `BertClassifier`
adds `classify` (the same inputs; `logits` [B, num_classes]); a `BertMaskedLM`
exports its backbone only. `serving_default` (SavedModel) takes `texts`
strings, runs the WordPiece tokenizer in the graph (`[CLS] text [SEP]`, cut
at the report's `max_length` tokens) and returns `sentence_embedding` (and
`pooled_output`). In the graph, `token_ids` are cut to `max_sequence_length`
columns (the position table) and `lengths` clamped to [1, width]: TFLite
does not bounds-check gathers.

Parity runs on `PARITY_TEXTS` (accents, CJK, punctuation, unknown words),
encoded by the Python tokenizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfzoo.kinds.base import ModelKind, ModelKindError, pad_rows
from tfzoo.runtime_errors import RuntimeInputError
from tfzoo.runtime_inputs import check_prompts

PARITY_TEXTS = (
    "A cat sits on the mat.",
    "The café's résumé was naïve, über-straße!",
    "中国人 说 日本语文字。",
    "zzzqqq unknownword 3.14 e-mail@host.com (ok)",
    "hello",
    "Hello, world! " * 6,
)
EMBED_OUTPUTS = ("sequence_output", "pooled_output", "sentence_embedding")


def backbone_of(model):
    """The `BertEncoder` of a model (itself, or a task model's `backbone`)."""
    return getattr(model, "backbone", model)


class EncoderOnlyKind(ModelKind):
    """BERT encoders and their task models: `embed` (and `classify`), no generation."""

    name = "encoder"
    model_classes = ("BertEncoder", "BertClassifier", "BertMaskedLM")
    required_methods = ("sentence_embedding",)
    generative = False
    export_module = "export.embed_export"
    signatures = ("embed", "classify")  # classify: a `BertClassifier`'s export only
    description = "a BERT encoder export (embed)"

    def __init__(self, model=None):
        super().__init__(None if model is None else backbone_of(model))
        self.model = model
        self.backbone = None if model is None else backbone_of(model)

    # ---- facts of the run (no TensorFlow) ----

    def architecture(self, model_config: dict) -> dict:
        """The backbone's constructor arguments (a task model keeps them under `backbone`)."""
        nested = model_config.get("backbone")
        if isinstance(nested, dict) and isinstance(nested.get("config"), dict):
            return nested["config"]
        return model_config

    def max_length_problem(self, max_length, limit):
        if max_length > limit:
            return (
                f"--max_length={max_length} exceeds the model's max_sequence_length={limit} "
                "(its learned positions end there)"
            )
        return None

    def resolve_max_length(self, max_length, limit, config):
        """Tokens per text: an integer >= 2 (room for [CLS] and [SEP]), at most the position table; by default
        the run's `embed_max_length`, else `max_sequence_length`."""
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2
        ):
            raise ModelKindError(f"--max_length must be an integer >= 2 (room for [CLS] and [SEP]), got {max_length!r}")
        if max_length is None:
            configured = config.get("embed_max_length")
            return min(configured, limit) if isinstance(configured, int) and configured >= 2 else limit
        problem = self.max_length_problem(max_length, limit)
        if problem:
            raise ModelKindError(problem)
        return max_length

    # ---- runtime side (numpy) ----

    def check_embed_inputs(self, info: dict, token_ids, lengths, segment_ids=None) -> dict[str, np.ndarray]:
        """Checked `embed` inputs: right-padded ids (B, T), T at most `max_sequence_length`; lengths in [1, T]."""
        token_ids, lengths = check_prompts(token_ids, lengths)
        limit = int(info.get("max_sequence_length") or token_ids.shape[1])
        if token_ids.shape[1] > limit:
            raise RuntimeInputError(
                f"token_ids has {token_ids.shape[1]} columns; the model takes at most max_sequence_length={limit}"
            )
        inputs = {"token_ids": token_ids, "lengths": lengths}
        if segment_ids is not None:
            segment_ids = np.asarray(segment_ids)
            if segment_ids.shape != token_ids.shape or not np.issubdtype(segment_ids.dtype, np.integer):
                raise RuntimeInputError(
                    f"segment_ids must be integers of token_ids' shape {token_ids.shape}, got {segment_ids.shape}"
                )
            inputs["segment_ids"] = segment_ids.astype(np.int32)
        return inputs

    def serving_feed(self, info, prompts):
        return "texts", [str(p) for p in prompts]

    def encode_texts(self, tokenizer, texts, max_length: int) -> dict[str, Any]:
        """`[CLS] text [SEP]` of each text (cut to `max_length` ids): `token_ids` right-padded, `lengths`."""
        if not hasattr(tokenizer, "encode_input"):
            raise RuntimeInputError(
                f"the {tokenizer.type_name} tokenizer has no [CLS]/[SEP] input form; embed needs WordPiece"
            )
        rows = [tokenizer.encode_input(text, max_length).tolist() for text in texts]
        lengths = np.asarray([len(row) for row in rows], np.int32)
        return {"token_ids": pad_rows(rows, int(lengths.max()), tokenizer.pad_id), "lengths": lengths}

    # ---- model side (TensorFlow) ----

    @property
    def has_pooler(self) -> bool:
        return self.backbone.pooler is not None

    @property
    def has_segments(self) -> bool:
        return self.backbone.segment_embedding is not None

    @property
    def classifies(self) -> bool:
        return type(self.model).__name__ == "BertClassifier"

    def embed_specs(self) -> dict:
        """Input specs of `embed` (and `classify`): `token_ids`, `lengths`[, `segment_ids`]."""
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        specs = {
            "token_ids": tf.TensorSpec([None, None], tf.int32, name="token_ids"),
            "lengths": tf.TensorSpec([None], tf.int32, name="lengths"),
        }
        if self.has_segments:
            specs["segment_ids"] = tf.TensorSpec([None, None], tf.int32, name="segment_ids")
        return specs

    def signature_specs(self) -> dict[str, dict]:
        """`{signature: input specs}` of `embed` and `classify` (the Keras runtime runs them)."""
        return {"embed": self.embed_specs(), "classify": self.embed_specs()}

    def _features(self, inputs: dict) -> dict:
        """In-graph guards: ids cut to the position table, lengths clamped to [1, width]; the padding mask."""
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        from tfzoo.decoding.graph_ops import clamp  # noqa: PLC0415 (TensorFlow)

        limit = int(self.backbone.max_sequence_length)
        token_ids = tf.cast(inputs["token_ids"], tf.int32)[:, :limit]  # (B, T)
        width = tf.shape(token_ids)[1]
        lengths = clamp(tf.cast(inputs["lengths"], tf.int32), 1, tf.maximum(width, 1))  # (B,)
        features = {
            "token_ids": token_ids,
            "padding_mask": tf.expand_dims(tf.range(width), 0) < tf.expand_dims(lengths, 1),  # (B, T)
        }
        if "segment_ids" in inputs:
            features["segment_ids"] = tf.cast(inputs["segment_ids"], tf.int32)[:, :limit]
        return features

    def embed(self, inputs: dict) -> dict:
        """The `embed` outputs (float32) of `inputs` (`embed_specs` names): see the module docstring."""
        from keras import ops  # noqa: PLC0415 (TensorFlow)

        features = self._features(inputs)
        outputs = self.backbone(features, training=False)
        x = ops.cast(outputs["sequence_output"], "float32")  # (B, T, C)
        # (B, T, 1); expand_dims, not `[:, :, None]`: a new-axis slice is no TFLite builtin
        mask = ops.expand_dims(ops.cast(features["padding_mask"], "float32"), -1)
        mean = ops.sum(x * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1e-9)  # (B, C)
        result = {
            "sequence_output": x,
            "sentence_embedding": mean / ops.maximum(ops.norm(mean, axis=-1, keepdims=True), 1e-12),
        }
        if "pooled_output" in outputs:
            result["pooled_output"] = ops.cast(outputs["pooled_output"], "float32")
        return result

    def classify(self, inputs: dict) -> dict:
        """`classify` of a `BertClassifier`: `logits` float32 (B, num_classes)."""
        return {"logits": self.model(self._features(inputs), training=False)}

    def parity_inputs(self, run, max_length):
        """`PARITY_TEXTS` as `[CLS] text [SEP]` (cut to `max_length`), right-padded; `texts` for the report."""
        return {"texts": list(PARITY_TEXTS), **self.encode_texts(run.tokenizer, PARITY_TEXTS, max_length)}


KIND = EncoderOnlyKind
