"""Checks a run config before anything is loaded, built or written.

`resolve_config` fills in the optional fields, then rejects every value that
would fail later (or silently train something else) with a one-line
`ConfigError` naming the field. It imports no TensorFlow, so a bad command
line fails fast; the model name is checked against the registry by
`train_and_evaluate`.
"""

from __future__ import annotations

import numbers

import ml_collections


# Fields every run config must have (CONTRACT.md).
CONTRACT_FIELDS = (
    "model", "dataset", "tokenizer", "seq_len", "batch_size", "train_steps", "eval_every",
    "eval_steps", "learning_rate", "min_learning_rate", "warmup_steps", "weight_decay", "beta1",
    "beta2", "clip_norm", "dropout", "label_smoothing", "num_layers", "num_heads", "hidden_dim",
    "intermediate_dim", "position", "seed", "strategy", "mixed_precision",
)  # fmt: skip

# Optional fields and the value a config without them gets.
DEFAULTS = {
    "early_stopping_patience": 0,
    "activation": "gelu",
    "norm_first": True,
    "tie_embeddings": True,
    "num_cpu_devices": 1,
    "jit_compile": True,
    "sample_prompts": (),
    "sample_length": 64,
    "data_dir": "",  # tfds specs: where prepared data lives ("" = tfds's default); never downloaded
    "max_examples": 0,  # tfds specs: examples read per split; 0 = all
    "vocabulary_size": 1000,  # wordpiece/sentencepiece: vocabulary learned from the train split
    "eval_decode_examples": 0,  # seq2seq: held-out pairs decoded per evaluation; 0 = all
}

POSITIONS = ("learned", "sinusoidal", "relative", "rotary", "alibi")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
UNSUPPORTED_STRATEGIES = ("multi_worker", "tpu")
ACTIVATIONS = ("gelu", "relu", "swiglu")
MIXED_PRECISION = ("none", "")


class ConfigError(ValueError):
    """A run config field is missing or has a value that cannot work."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_int(config, name: str, minimum: int) -> None:
    value = config[name]
    _check(_is_int(value) and value >= minimum, f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_range(config, name: str, low: float, high: float | None, high_open: bool = True) -> None:
    value = config[name]
    if high is None:
        ok, bounds = _is_number(value) and value >= low, f">= {low}"
    elif high_open:
        ok, bounds = _is_number(value) and low <= value < high, f"in [{low}, {high})"
    else:
        ok, bounds = _is_number(value) and low <= value <= high, f"in [{low}, {high}]"
    _check(ok, f"{name} must be a number {bounds}, got {value!r}")


def _check_choice(config, name: str, choices) -> None:
    value = config[name]
    _check(value in choices, f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def resolve_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Returns a checked copy of `config` with every optional field filled in.

    Args:
        config: ml_collections.ConfigDict. A run config (see configs/gpt_char.py).

    Returns:
        ml_collections.ConfigDict. The resolved config (what `config.json` holds).

    Raises:
        ConfigError: a missing field, a bad value, or values that do not fit together.

    Example:
    >>> import configs.gpt_tiny
    >>> resolve_config(configs.gpt_tiny.get_config()).sample_length
    16
    """
    missing = [name for name in CONTRACT_FIELDS if name not in config]
    _check(not missing, f"config is missing field(s): {', '.join(missing)}")
    resolved = ml_collections.ConfigDict(config.to_dict())
    for name, default in DEFAULTS.items():
        if name not in resolved:
            resolved[name] = default

    for name in ("model", "dataset", "tokenizer"):
        value = resolved[name]
        _check(isinstance(value, str) and value, f"{name} must be a non-empty string, got {value!r}")
    for name in ("seq_len", "batch_size", "train_steps", "eval_every", "eval_steps", "num_layers",
                 "num_heads", "hidden_dim", "intermediate_dim", "num_cpu_devices", "vocabulary_size"):  # fmt: skip
        _check_int(resolved, name, 1)
    for name in ("warmup_steps", "seed", "early_stopping_patience", "sample_length", "max_examples",
                 "eval_decode_examples"):  # fmt: skip
        _check_int(resolved, name, 0)
    _check(
        _is_number(resolved.learning_rate) and resolved.learning_rate > 0,
        f"learning_rate must be a number > 0, got {resolved.learning_rate!r}",
    )
    _check_range(resolved, "min_learning_rate", 0.0, resolved.learning_rate, high_open=False)
    _check_range(resolved, "weight_decay", 0.0, None)
    _check_range(resolved, "clip_norm", 0.0, None)
    for name in ("beta1", "beta2", "dropout", "label_smoothing"):
        _check_range(resolved, name, 0.0, 1.0)
    _check_choice(resolved, "position", POSITIONS)
    _check_choice(resolved, "activation", ACTIVATIONS)
    _check_choice(resolved, "strategy", STRATEGIES)
    _check(
        resolved.strategy not in UNSUPPORTED_STRATEGIES,
        f"strategy {resolved.strategy!r} is not yet supported (use auto, one_device or mirrored)",
    )
    _check(
        resolved.mixed_precision in MIXED_PRECISION,
        f"mixed_precision {resolved.mixed_precision!r} is not supported yet (use 'none')",
    )
    for name in ("norm_first", "tie_embeddings", "jit_compile"):
        _check(isinstance(resolved[name], bool), f"{name} must be True or False, got {resolved[name]!r}")
    _check(isinstance(resolved.data_dir, str), f"data_dir must be a string, got {resolved.data_dir!r}")
    prompts = resolved.sample_prompts
    _check(
        isinstance(prompts, (list, tuple)) and all(isinstance(p, str) for p in prompts),
        f"sample_prompts must be a list of strings, got {prompts!r}",
    )

    _check(
        resolved.hidden_dim % resolved.num_heads == 0,
        f"hidden_dim ({resolved.hidden_dim}) must be divisible by num_heads ({resolved.num_heads})",
    )
    head_dim = resolved.hidden_dim // resolved.num_heads
    _check(
        resolved.position != "rotary" or head_dim % 2 == 0,
        f"position 'rotary' needs an even head size, got hidden_dim / num_heads = {head_dim}",
    )
    _check(
        resolved.position != "sinusoidal" or resolved.hidden_dim % 2 == 0,
        f"position 'sinusoidal' needs an even hidden_dim, got {resolved.hidden_dim}",
    )
    _check(
        resolved.train_steps % resolved.eval_every == 0,
        f"train_steps ({resolved.train_steps}) must be a multiple of eval_every "
        f"({resolved.eval_every})",
    )
    _check(
        resolved.warmup_steps <= resolved.train_steps,
        f"warmup_steps ({resolved.warmup_steps}) must not exceed train_steps "
        f"({resolved.train_steps})",
    )
    return resolved
