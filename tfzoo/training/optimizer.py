"""AdamW with decoupled weight decay on kernels only, warmup-cosine schedule and clipping."""

from __future__ import annotations

import keras

from tfzoo.training.keras_patches import ClipAfterAllReduce
from tfzoo.training.schedule import WarmupCosineDecay


class AdamW(ClipAfterAllReduce, keras.optimizers.AdamW):
    """Keras AdamW whose clipping acts on the gradient summed over the replicas (see `ClipAfterAllReduce`)."""


def no_decay_variables(model: keras.Model, decay_embeddings: bool = False) -> list:
    """Trainable variables that weight decay must not touch: everything but matmul kernels.

    A variable decays only if it is named `kernel` (Keras `Dense`/`EinsumDense`
    and friends) and has rank >= 2. Biases (whatever their rank: `EinsumDense`
    biases are often (heads, 1, head_dim)), norm scales and offsets, embedding
    tables (also when tied to the output projection) and position-bias tables
    are left alone. With `decay_embeddings`, embedding and learned position
    tables (`embeddings`, rank 2) decay too: nanoGPT's rule, every matrix.

    Args:
        model: keras.Model. A built model.
        decay_embeddings: bool. Decay the embedding tables as well. Defaults to False.

    Returns:
        list of the model's trainable variables to exclude from decay.

    Example:
    >>> model = keras.Sequential([keras.Input((3,), dtype="int32"),
    ...     keras.layers.Embedding(10, 4, name="embed"), keras.layers.Dense(2, name="out")])
    >>> sorted(v.path.split("/", 1)[1] for v in no_decay_variables(model))
    ['embed/embeddings', 'out/bias']
    """
    decayed = ("kernel", "embeddings") if decay_embeddings else ("kernel",)
    return [v for v in model.trainable_variables if not (v.name.endswith(decayed) and len(v.shape) >= 2)]


def make_optimizer(config, model: keras.Model) -> AdamW:
    """Builds the AdamW optimizer a run config asks for.

    Decoupled weight decay (`w -= lr * weight_decay * w`) applies to matmul
    kernels only; see `no_decay_variables`. The learning rate follows
    `WarmupCosineDecay` over `train_steps`. Gradients are clipped by their
    global norm when `clip_norm > 0`: the norm of the global batch's
    gradient, whatever the number of replicas.

    Args:
        config: ConfigDict. Reads `learning_rate`, `min_learning_rate`,
            `warmup_steps`, `train_steps`, `weight_decay`, `beta1`, `beta2`,
            `clip_norm`, and if present `adam_epsilon` (default 1e-7) and
            `decay_embeddings` (default False).
        model: keras.Model. The built model whose variables will be trained.

    Returns:
        AdamW (a keras.optimizers.AdamW), not yet built.

    Example:
    >>> import ml_collections
    >>> config = ml_collections.ConfigDict(dict(learning_rate=1e-3, min_learning_rate=1e-4,
    ...     warmup_steps=10, train_steps=100, weight_decay=0.1, beta1=0.9, beta2=0.99, clip_norm=1.0))
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> make_optimizer(config, model).global_clipnorm
    1.0
    """
    schedule = WarmupCosineDecay(
        peak_learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=config.train_steps,
        min_learning_rate=config.min_learning_rate,
    )
    optimizer = AdamW(
        learning_rate=schedule,
        weight_decay=config.weight_decay,
        beta_1=config.beta1,
        beta_2=config.beta2,
        epsilon=config.get("adam_epsilon", 1e-7),
        global_clipnorm=config.clip_norm if config.clip_norm > 0 else None,
    )
    optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model, config.get("decay_embeddings", False)))
    return optimizer
