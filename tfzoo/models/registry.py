"""The one place that maps model names in configs to model builders."""

from __future__ import annotations

from typing import Any, Callable

import keras

from tfzoo.models.gpt import GPT


def _build_gpt(config: Any, vocabulary_size: int) -> keras.Model:
    return GPT(
        vocabulary_size=vocabulary_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        max_sequence_length=config.get("max_sequence_length", None) or config.seq_len,
        position=config.position,
        dropout=config.dropout,
        activation=config.get("activation", "gelu"),
        norm_first=config.get("norm_first", True),
        tie_embeddings=config.get("tie_embeddings", True),
    )


MODELS: dict[str, Callable[[Any, int], keras.Model]] = {"gpt": _build_gpt}


def build_model(config: Any, vocabulary_size: int) -> keras.Model:
    """Builds the model named by `config.model` for a tokenizer of `vocabulary_size` ids.

    Example:
    >>> import ml_collections
    >>> config = ml_collections.ConfigDict(dict(model="gpt", num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, seq_len=16, position="learned", dropout=0.0))
    >>> build_model(config, vocabulary_size=10).vocabulary_size
    10
    """
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; choose one of {', '.join(sorted(MODELS))}.")
    model = MODELS[config.model](config, vocabulary_size)
    model.build((None, None))
    return model
