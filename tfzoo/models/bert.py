"""BERT: a bidirectional encoder backbone, its task heads, and masked-LM input masking.

Model Garden's three tiers: `BertEncoder` is the backbone network (token +
position + segment embeddings -> norm -> `num_layers` encoder blocks -> a
pooled first token), never trained alone; `BertClassifier` and `BertMaskedLM`
are the trainable task models, each built around a backbone it receives.
`mask_tokens` makes masked-LM examples (BERT's 80/10/10 rule) inside tf.data.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfzoo.layers.clamp import clamp
from tfzoo.layers.encoder_stack import EncoderStack
from tfzoo.layers.positions import POSITION_TYPES, build_position_layers, check_length, make_position_embedding
from tfzoo.layers.stack_layers import source_positions
from tfzoo.models.stack_model import StackModel

POSITIONS = POSITION_TYPES
POOLINGS = ("cls", "mean")  # BertClassifier: the pooler on [CLS], or the masked mean over tokens


def _initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


def _as_inputs(inputs) -> dict:
    return dict(inputs) if isinstance(inputs, dict) else {"token_ids": inputs}


@keras.saving.register_keras_serializable(package="tfzoo")
class BertEncoder(StackModel):
    """Bidirectional Transformer encoder (the BERT backbone).

    `model(inputs)` takes token ids (B, T) or a dict with `"token_ids"` and
    optionally `"segment_ids"` (B, T) (zeros when missing) and `"padding_mask"`
    (B, T) (True on real tokens; `token_ids != pad_id` when missing), and
    returns `{"sequence_output": (B, T, hidden_dim), "pooled_output": (B,
    hidden_dim)}`: the pooled output is `tanh(dense(x[:, 0]))`, the first token
    (the tokenizers' `<cls>`) standing for the sequence. Without a pooler
    (`use_pooler=False`, a checkpoint saved without one) it returns only
    `sequence_output`.

    Args:
        *args, **kwargs: the architecture arguments of `StackModel`
            (`vocabulary_size`, `num_layers`, `num_heads`, `hidden_dim`,
            `intermediate_dim`, `max_sequence_length` (the size of the learned
            position table), `position` (any of "learned", the default,
            "sinusoidal", "relative", "rotary", "alibi"), `dropout`, `activation`
            (defaults to "gelu"), `norm_first` (defaults to False: post-norm, as
            BERT), `layer_norm_epsilon`, `pad_id`).
        num_segments: int. Number of segment (token type) ids; 0 for none.
            Defaults to 2.
        use_pooler: bool. Whether the encoder has the pooler (`pooled_output`).
            Defaults to True.

    Example:
    >>> import numpy as np
    >>> encoder = BertEncoder(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
    ...                       intermediate_dim=32, max_sequence_length=16)
    >>> outputs = encoder(np.array([[4, 9, 8, 1, 0]]))
    >>> tuple(outputs["sequence_output"].shape), tuple(outputs["pooled_output"].shape)
    ((1, 5, 16), (1, 16))

    References:
        Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers
        for Language Understanding", 2019.
    """

    DEFAULTS = {"position": "learned", "activation": "gelu", "norm_first": False}

    def __init__(self, *args, num_segments: int = 2, use_pooler: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(num_segments, bool) or not isinstance(num_segments, int) or num_segments < 0:
            raise ValueError(f"num_segments must be an integer >= 0, got {num_segments!r}.")
        self.keep_arguments(locals())
        hidden_dim, policy = self.hidden_dim, self.dtype_policy
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size,
            hidden_dim,
            embeddings_initializer=_initializer(),
            dtype=policy,
            name="token_embedding",
        )
        self.segment_embedding = None
        if num_segments:
            self.segment_embedding = keras.layers.Embedding(
                num_segments, hidden_dim, embeddings_initializer=_initializer(), dtype=policy, name="segment_embedding"
            )
        self.position_embedding = make_position_embedding(
            self.position, max_length=self.max_sequence_length, dim=hidden_dim, initializer=_initializer(), dtype=policy
        )
        self.embedding_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="embedding_norm"
        )
        self.embedding_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="embedding_dropout")
        # position_bias, blocks, final_norm
        self.encoder_stack = EncoderStack(self, **self.stack_arguments(), kernel_initializer=_initializer())
        self.pooler = None
        if use_pooler:
            self.pooler = keras.layers.Dense(
                hidden_dim, activation="tanh", kernel_initializer=_initializer(), dtype=policy, name="pooler"
            )

    def build(self, input_shape=None):
        hidden_shape = (None, None, self.hidden_dim)
        for embedding in (self.token_embedding, self.segment_embedding):
            if embedding is not None:
                embedding.build((None, None))
        build_position_layers(self.position_embedding)
        self.embedding_norm.build(hidden_shape)
        self.encoder_stack.build(hidden_shape)
        if self.pooler is not None:
            self.pooler.build((None, self.hidden_dim))
        self.built = True

    def call(self, inputs, training=None, scores=None):
        inputs = _as_inputs(inputs)
        token_ids = ops.cast(inputs["token_ids"], "int32")  # (B, T)
        check_length("input", token_ids.shape[1], self.max_sequence_length)
        padding_mask = inputs.get("padding_mask")
        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, self.pad_id)
        positions = source_positions(token_ids)  # (1, T)
        x = self.token_embedding(clamp(token_ids, 0, self.vocabulary_size - 1))  # (B, T, C)
        if self.position_embedding is not None:
            x = x + ops.cast(self.position_embedding(positions), x.dtype)
        if self.segment_embedding is not None:
            segment_ids = inputs.get("segment_ids")
            segment_ids = ops.zeros_like(token_ids) if segment_ids is None else ops.cast(segment_ids, "int32")
            x = x + self.segment_embedding(clamp(segment_ids, 0, self.num_segments - 1))
        x = self.embedding_dropout(self.embedding_norm(x), training=training)
        # (B, 1, 1, T): keys; expand_dims, not `[:, None, None, :]` (a new-axis slice is no TFLite builtin)
        attention_mask = ops.expand_dims(ops.expand_dims(ops.cast(padding_mask, "bool"), 1), 1)
        x = self.encoder_stack(x, positions, attention_mask, training=training, scores=scores)
        if self.pooler is None:
            return {"sequence_output": x}
        return {"sequence_output": x, "pooled_output": self.pooler(x[:, 0, :])}

    def sentence_embedding(self, inputs):
        """Masked mean of the sequence output over the real tokens, L2-normalised (B, hidden_dim), float32.

        What sentence-transformers computes for a BERT model with mean pooling and `Normalize`:
        `sum(mask * x) / max(sum(mask), 1e-9)`, then `v / max(||v||, 1e-12)`.

        Example:
        >>> import numpy as np
        >>> encoder = BertEncoder(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
        ...                       intermediate_dim=16, max_sequence_length=8)
        >>> vectors = np.asarray(encoder.sentence_embedding(np.array([[4, 9, 0]])))
        >>> vectors.shape, round(float(np.linalg.norm(vectors)), 4)
        ((1, 8), 1.0)
        """
        inputs = _as_inputs(inputs)
        padding_mask = inputs.get("padding_mask")
        if padding_mask is None:
            padding_mask = ops.not_equal(ops.cast(inputs["token_ids"], "int32"), self.pad_id)
        inputs["padding_mask"] = padding_mask
        x = ops.cast(self(inputs)["sequence_output"], "float32")  # (B, T, C)
        mask = ops.cast(padding_mask, "float32")[:, :, None]  # (B, T, 1)
        mean = ops.sum(x * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1e-9)  # (B, C)
        return mean / ops.maximum(ops.norm(mean, axis=-1, keepdims=True), 1e-12)

    def attention_scores(self, inputs) -> dict:
        """Attention weights of `model(inputs)`, for plots.

        Returns:
            {"encoder": per layer (B, H, T, T), "sequence_output", "pooled_output"} (as from `call`);
            padded keys get weight 0.

        Example:
        >>> import numpy as np
        >>> encoder = BertEncoder(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
        ...                       intermediate_dim=16, max_sequence_length=8)
        >>> [tuple(w.shape) for w in encoder.attention_scores(np.array([[4, 9, 0]]))["encoder"]]
        [(1, 2, 3, 3)]
        """
        if not self.built:
            self.build()
        scores = []
        outputs = self.call(inputs, scores=scores)
        return {"encoder": scores, **outputs}


class _BertTask(keras.Model):
    """Shared plumbing of the task models: hold a backbone, serialize it with the config."""

    def __init__(self, backbone: BertEncoder, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(backbone, BertEncoder):
            raise ValueError(f"backbone must be a BertEncoder, got {type(backbone).__name__}.")
        self.backbone = backbone

    def sentence_embedding(self, inputs):
        """The backbone's `sentence_embedding(inputs)` (B, hidden_dim)."""
        return self.backbone.sentence_embedding(inputs)

    def attention_scores(self, inputs) -> dict:
        """The backbone's `attention_scores(inputs)`: {"encoder": per layer (B, H, T, T), ...}."""
        return self.backbone.attention_scores(inputs)

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfzoo")
class BertClassifier(_BertTask):
    """Sequence classifier: dropout and a dense layer on one vector per sequence.

    Takes the backbone's inputs and returns float32 logits (B, num_classes).
    The vector is the backbone's pooled output (`pooling="cls"`, BERT's:
    `tanh(dense([CLS]))`) or the masked mean of the sequence output over the
    real tokens (`pooling="mean"`, as sentence-transformers pools; padding
    never counts). A masked-LM checkpoint has no trained pooler and its
    `[CLS]` output was never trained to sum up the text; the mean reads every
    token the pre-training shaped. With "mean" the backbone's pooler is unused
    and frozen (it may even be absent).

    Args:
        backbone: BertEncoder. The encoder network.
        num_classes: int. Number of classes.
        dropout: float. Dropout on the pooled vector. Defaults to 0.
        pooling: str. "cls" (the pooler on the first token) or "mean" (masked
            mean over tokens). Defaults to "cls".

    Example:
    >>> import numpy as np
    >>> backbone = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16,
    ...                        intermediate_dim=32, max_sequence_length=16)
    >>> tuple(BertClassifier(backbone, num_classes=3)(np.array([[4, 9, 8]])).shape)
    (1, 3)
    >>> tuple(BertClassifier(backbone, num_classes=2, pooling="mean")(np.array([[4, 9, 0]])).shape)
    (1, 2)
    """

    def __init__(self, backbone: BertEncoder, num_classes: int, dropout: float = 0.0, pooling: str = "cls", **kwargs):
        super().__init__(backbone, **kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}.")
        if pooling == "cls" and backbone.pooler is None:
            raise ValueError("BertClassifier with pooling='cls' needs a backbone with a pooler (use_pooler=True).")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
        self.num_classes = num_classes
        self.dropout = dropout
        self.pooling = pooling
        self.head_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="head_dropout")
        self.classifier = keras.layers.Dense(
            num_classes, kernel_initializer=_initializer(), dtype=self.dtype_policy, name="classifier"
        )

    def build(self, input_shape=None):
        if not self.backbone.built:
            self.backbone.build()
        # Mean pooling never reads the pooled output: freeze the pooler (no gradient, no Keras warning).
        if self.pooling == "mean" and self.backbone.pooler is not None:
            self.backbone.pooler.trainable = False
        self.classifier.build((None, self.backbone.hidden_dim))
        self.built = True

    def call(self, inputs, training=None):
        if self.pooling == "cls":
            pooled = self.backbone(inputs, training=training)["pooled_output"]  # (B, C)
        else:
            inputs = _as_inputs(inputs)
            padding_mask = inputs.get("padding_mask")
            if padding_mask is None:
                padding_mask = ops.not_equal(ops.cast(inputs["token_ids"], "int32"), self.backbone.pad_id)
            inputs["padding_mask"] = padding_mask
            x = self.backbone(inputs, training=training)["sequence_output"]  # (B, T, C)
            # (B, T, 1); expand_dims, not `[:, :, None]`: a new-axis slice is no TFLite builtin
            mask = ops.expand_dims(ops.cast(padding_mask, x.dtype), -1)
            pooled = ops.sum(x * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1e-9)  # (B, C)
        return ops.cast(self.classifier(self.head_dropout(pooled, training=training)), "float32")  # (B, K)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout, "pooling": self.pooling})
        return config


@keras.saving.register_keras_serializable(package="tfzoo")
class BertMaskedLM(_BertTask):
    """Masked-language-model pre-training head: predicts the tokens at `mask_positions`.

    Takes the backbone's inputs plus `"mask_positions"` int (B, P) and returns
    float32 logits (B, P, vocabulary_size): dense + activation + norm on the
    sequence output at those positions (gelu, as in BERT), then the backbone's token embedding
    (transposed) plus a bias, as in BERT. Feed it `mask_tokens` output; train
    with labels `mask_ids` and sample weights `mask_weights`.

    Args:
        backbone: BertEncoder. The encoder network.

    Example:
    >>> import numpy as np
    >>> backbone = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16,
    ...                        intermediate_dim=32, max_sequence_length=16)
    >>> inputs = {"token_ids": np.array([[4, 5, 8, 1]]), "mask_positions": np.array([[1, 2]])}
    >>> tuple(BertMaskedLM(backbone)(inputs).shape)
    (1, 2, 50)
    """

    def __init__(self, backbone: BertEncoder, **kwargs):
        super().__init__(backbone, **kwargs)
        policy = self.dtype_policy
        self.transform = keras.layers.Dense(
            backbone.hidden_dim,
            activation="gelu",
            kernel_initializer=_initializer(),
            dtype=policy,
            name="transform",
        )
        self.transform_norm = keras.layers.LayerNormalization(
            epsilon=backbone.layer_norm_epsilon, dtype=policy, name="transform_norm"
        )

    def build(self, input_shape=None):
        if not self.backbone.built:
            self.backbone.build()
        # The objective never reads the pooled output: freeze the pooler (no gradient, no Keras warning).
        # Set `backbone.pooler.trainable = True` to fine-tune a classifier on this same backbone object.
        if self.backbone.pooler is not None:
            self.backbone.pooler.trainable = False
        self.transform.build((None, None, self.backbone.hidden_dim))
        self.transform_norm.build((None, None, self.backbone.hidden_dim))
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.backbone.vocabulary_size,), initializer="zeros"
        )
        self.built = True

    def call(self, inputs, training=None):
        sequence = self.backbone(inputs, training=training)["sequence_output"]  # (B, T, C)
        length = ops.shape(sequence)[1]
        positions = clamp(ops.cast(inputs["mask_positions"], "int32"), 0, length - 1)  # (B, P)
        x = ops.take_along_axis(sequence, positions[:, :, None], axis=1)  # (B, P, C)
        x = self.transform_norm(self.transform(x))
        embeddings = ops.cast(self.backbone.token_embedding.embeddings, x.dtype)  # (V, C)
        logits = ops.matmul(x, ops.transpose(embeddings)) + ops.cast(self.output_bias, x.dtype)
        return ops.cast(logits, "float32")  # (B, P, V)


def mask_tokens(
    token_ids,
    seed,
    *,
    vocabulary_size: int,
    mask_id: int,
    max_predictions: int,
    special_ids: Sequence[int] = (0,),
    mask_rate: float = 0.15,
) -> dict[str, tf.Tensor]:
    """BERT's masked-LM corruption of token ids (T,) or (B, T); stateless, so it runs in `tf.data.map`.

    Per row, `max(1, round(mask_rate * n))` of the n maskable tokens (at most
    `max_predictions`) are chosen uniformly; each chosen token becomes
    `mask_id` with probability 0.8, a uniformly random non-special token with
    probability 0.1, and stays itself otherwise. Ids in `special_ids` (padding,
    `<cls>`, `<eos>`, ...) are never chosen. Same `seed`, same result.

    Args:
        token_ids: int (T,) or (B, T). Rows may be padded with special ids.
        seed: int (2,). Stateless random seed (e.g. from `tf.data.Dataset.random`
            batched by 2, or `(global_seed, example_index)`).
        vocabulary_size: int. Number of token ids.
        mask_id: int. The `<mask>` token id.
        max_predictions: int. Width P of the outputs below.
        special_ids: sequence of int. Ids never masked nor drawn as random
            replacements. Defaults to `(0,)`.
        mask_rate: float in (0, 1]. Fraction of the maskable tokens to choose.
            Defaults to 0.15.

    Returns:
        dict with, batch axes as in `token_ids`: `token_ids` int32 (T,) the
        corrupted ids; `mask_positions` int32 (P,) the chosen positions
        (0 in unused slots); `mask_ids` int32 (P,) the original ids there;
        `mask_weights` float32 (P,) 1.0 on used slots.

    Example:
    >>> import numpy as np
    >>> out = mask_tokens(np.arange(2, 22), np.array([1, 2]), vocabulary_size=30, mask_id=3,
    ...                   max_predictions=4)
    >>> out["mask_weights"].numpy().tolist()
    [1.0, 1.0, 1.0, 0.0]
    """
    if not 0.0 < mask_rate <= 1.0:
        raise ValueError(f"mask_rate must be in (0, 1], got {mask_rate}.")
    if max_predictions < 1:
        raise ValueError(f"max_predictions must be >= 1, got {max_predictions}.")
    if not 0 <= mask_id < vocabulary_size:
        raise ValueError(f"mask_id must be in [0, {vocabulary_size}), got {mask_id}.")
    special = sorted({int(i) for i in special_ids} | {mask_id})
    replacements = np.setdiff1d(np.arange(vocabulary_size), special).astype("int32")
    if replacements.size == 0:
        raise ValueError("every id is special: no token is left to draw as a random replacement.")

    token_ids = tf.cast(token_ids, tf.int32)
    single = token_ids.shape.rank == 1
    rows = token_ids[None] if single else token_ids  # (B, T)
    seed = tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    batch, length = tf.shape(rows)[0], tf.shape(rows)[1]

    maskable = tf.reduce_all(tf.not_equal(rows[:, :, None], tf.constant(special, tf.int32)), axis=-1)  # (B, T)
    scores = tf.random.stateless_uniform([batch, length], seeds[0])
    scores = tf.where(maskable, scores, -1.0)
    # Pad so top_k always has P candidates, even for rows shorter than P.
    scores = tf.concat([scores, tf.fill([batch, max_predictions], -2.0)], axis=1)  # (B, T + P)
    _, positions = tf.math.top_k(scores, k=max_predictions)  # (B, P): highest scores first
    count = tf.reduce_sum(tf.cast(maskable, tf.float32), axis=1)  # (B,)
    wanted = tf.minimum(tf.maximum(tf.round(count * mask_rate), 1.0), count)  # (B,)
    used = tf.cast(tf.range(max_predictions), tf.float32)[None, :] < wanted[:, None]  # (B, P)
    positions = tf.where(used, positions, 0)
    original = tf.gather(rows, positions, batch_dims=1)  # (B, P)

    action = tf.random.stateless_uniform([batch, max_predictions], seeds[1])
    random_ids = tf.gather(
        tf.constant(replacements),
        tf.random.stateless_uniform([batch, max_predictions], seeds[2], maxval=replacements.size, dtype=tf.int32),
    )
    new_ids = tf.where(action < 0.8, mask_id, tf.where(action < 0.9, random_ids, original))  # (B, P)

    # Write the new ids with an equality mask (no scatter): slot t takes the chosen id aimed at it.
    hit = tf.equal(positions[:, :, None], tf.range(length)[None, None, :]) & used[:, :, None]  # (B, P, T)
    written = tf.reduce_sum(tf.where(hit, new_ids[:, :, None], 0), axis=1)  # (B, T)
    corrupted = tf.where(tf.reduce_any(hit, axis=1), written, rows)
    out = {
        "token_ids": corrupted,
        "mask_positions": positions,
        "mask_ids": tf.where(used, original, 0),
        "mask_weights": tf.cast(used, tf.float32),
    }
    return {k: v[0] for k, v in out.items()} if single else out
