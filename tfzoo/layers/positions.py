"""The one factory of position layers: absolute embeddings added to the tokens, or attention biases.

Every model names its position type with one string. "learned" and
"sinusoidal" are added to the token embeddings; "relative" (T5 buckets) and
"alibi" are a bias on the attention logits shared by the blocks of a stack;
"rotary" lives inside each block's attention (the blocks take `rotary=True`),
so it needs neither layer here.
"""

from __future__ import annotations

import keras

from tfzoo.layers.alibi_bias import AlibiBias
from tfzoo.layers.learned_position_embedding import LearnedPositionEmbedding
from tfzoo.layers.relative_position_bias import RelativePositionBias
from tfzoo.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding

POSITION_TYPES = ("learned", "sinusoidal", "relative", "rotary", "alibi")
EMBEDDING_POSITIONS = ("learned", "sinusoidal")
BIAS_POSITIONS = ("relative", "alibi")


def make_position_embedding(
    position: str,
    *,
    max_length: int,
    dim: int,
    initializer=None,
    dtype=None,
    name: str = "position_embedding",
) -> keras.layers.Layer | None:
    """The layer mapping positions (B, T) to vectors (B, T, dim), or None for a bias or rotary position type.

    Args:
        position: str. One of `POSITION_TYPES`.
        max_length: int. Size of the learned table.
        dim: int. Width of the vectors.
        initializer: initializer of the learned table; None for the layer's default.
        dtype: the dtype policy of the owner.
        name: str. The layer's name.

    Example:
    >>> type(make_position_embedding("sinusoidal", max_length=8, dim=4)).__name__
    'SinusoidalPositionEncoding'
    >>> make_position_embedding("rotary", max_length=8, dim=4) is None
    True
    """
    _check(position)
    if position == "learned":
        options = {} if initializer is None else {"initializer": initializer}
        return LearnedPositionEmbedding(max_length, dim, dtype=dtype, name=name, **options)
    if position == "sinusoidal":
        return SinusoidalPositionEncoding(dim, dtype=dtype, name=name)
    return None


def make_position_bias(
    position: str, *, num_heads: int, bidirectional: bool, dtype=None, name: str = "position_bias"
) -> keras.layers.Layer | None:
    """The layer mapping (query positions, key positions) to an attention bias (B, H, Tq, Tk), or None.

    Example:
    >>> type(make_position_bias("alibi", num_heads=2, bidirectional=True)).__name__
    'AlibiBias'
    >>> make_position_bias("learned", num_heads=2, bidirectional=True) is None
    True
    """
    _check(position)
    if position == "relative":
        return RelativePositionBias(num_heads, bidirectional=bidirectional, dtype=dtype, name=name)
    if position == "alibi":
        return AlibiBias(num_heads, bidirectional=bidirectional, dtype=dtype, name=name)
    return None


def check_length(what: str, length, max_sequence_length: int) -> None:
    """Raises ValueError when a static `length` exceeds `max_sequence_length` (unknown lengths pass).

    The one length check of the zoo's models (inputs, targets, captions, caches).

    Example:
    >>> check_length("input", 4, 8)
    >>> check_length("input", None, 8)
    """
    if isinstance(length, int) and length > max_sequence_length:
        raise ValueError(f"{what} length {length} exceeds the model's max_sequence_length {max_sequence_length}.")


def build_position_layers(*layers) -> None:
    """Builds position embeddings and biases (None entries are skipped; ALiBi has no weights)."""
    for layer in layers:
        if isinstance(layer, RelativePositionBias):
            layer.build((None, None), (None, None))
        elif layer is not None and not isinstance(layer, AlibiBias):
            layer.build((None, None))


def _check(position: str) -> None:
    if position not in POSITION_TYPES:
        raise ValueError(f"unknown position {position!r}; choose one of {', '.join(POSITION_TYPES)}.")
