"""What the zoo's models share about their constructor arguments: checks and config.

Every model keeps one attribute per constructor argument, under the
argument's name; `ArgumentsConfig` turns that rule into `get_config()` and
`from_config()`, so a new argument cannot be forgotten in one of them.
"""

from __future__ import annotations

import inspect


def check_positive_ints(**values: int) -> None:
    """Raises ValueError naming the first value that is not an integer >= 1.

    Example:
    >>> check_positive_ints(num_layers=2, num_heads=4)
    >>> check_positive_ints(num_layers=0)
    Traceback (most recent call last):
    ...
    ValueError: num_layers must be a positive integer, got 0.
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_heads(hidden_dim: int, num_heads: int, head_dim: int | None = None) -> None:
    """Raises ValueError unless `num_heads` divides `hidden_dim` (or `head_dim` is a positive integer).

    Example:
    >>> check_heads(64, 4)
    >>> check_heads(512, 6, head_dim=64)
    """
    if head_dim is not None:
        check_positive_ints(head_dim=head_dim)
    elif hidden_dim % num_heads:
        raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads}).")


def check_pad_id(pad_id: int, vocabulary_size: int, name: str = "pad_id") -> None:
    """Raises ValueError unless `pad_id` (or the id called `name`) is a token id of the vocabulary.

    Example:
    >>> check_pad_id(0, 10)
    """
    if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not 0 <= pad_id < vocabulary_size:
        raise ValueError(f"{name} must be in [0, {vocabulary_size}), got {pad_id!r}.")


def check_positive_arguments(arguments: dict, names) -> None:
    """`check_positive_ints` on the entries `names` of `arguments` (e.g. a constructor's `locals()`).

    Example:
    >>> check_positive_arguments({"num_layers": 2, "name": "x"}, ("num_layers",))
    """
    check_positive_ints(**{name: arguments[name] for name in names})


def check_position(position: str, positions: tuple[str, ...]) -> None:
    """Raises ValueError unless `position` is one of the model's position types.

    Example:
    >>> check_position("learned", ("learned", "rotary"))
    """
    if position not in positions:
        raise ValueError(f"unknown position {position!r}; choose one of {', '.join(positions)}.")


STACK_ARGUMENTS = (
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "position",
    "dropout",
    "activation",
    "norm_first",
    "layer_norm_epsilon",
    "use_bias",
    "norm",
    "scale_queries",
    "head_dim",
)


def stack_arguments(owner, *extra: str) -> dict:
    """The arguments of a block stack (`STACK_ARGUMENTS` and `extra`), read from `owner`'s attributes.

    Example:
    >>> import types
    >>> owner = types.SimpleNamespace(**{name: 1 for name in STACK_ARGUMENTS}, pad_id=0)
    >>> sorted(stack_arguments(owner, "pad_id"))[:3]
    ['activation', 'dropout', 'hidden_dim']
    """
    return {name: getattr(owner, name) for name in STACK_ARGUMENTS + extra}


class ArgumentsConfig:
    """Mixin for Keras models and layers: the config is every constructor argument.

    `get_config()` reads each named parameter of the `__init__` of the class
    and of its `ArgumentsConfig` bases back from the attribute of the same
    name; `from_config()` calls the class with them. Put it before the Keras
    base class: `class ViTEncoder(ArgumentsConfig, keras.layers.Layer)`.

    Example:
    >>> import keras
    >>> class Scale(ArgumentsConfig, keras.layers.Layer):
    ...     def __init__(self, factor: float = 2.0, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.keep_arguments(locals())
    >>> Scale(factor=3.0).get_config()["factor"]
    3.0
    """

    @classmethod
    def argument_names(cls) -> list[str]:
        """The named constructor parameters of the class and its `ArgumentsConfig` bases."""
        names = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if klass is ArgumentsConfig or not issubclass(klass, ArgumentsConfig) or init is None:
                continue
            for name, parameter in inspect.signature(init).parameters.items():
                variadic = parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
                if name != "self" and not variadic and name not in names:
                    names.append(name)
        return names

    def keep_arguments(self, values: dict) -> None:
        """Sets each constructor argument found in `values` (e.g. `locals()`) as the attribute of its name."""
        for name in self.argument_names():
            if name in values:
                setattr(self, name, values[name])

    def get_config(self) -> dict:
        config = super().get_config()
        for name in self.argument_names():
            config[name] = getattr(self, name)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)
