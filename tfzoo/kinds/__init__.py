"""Model kinds: the one registry of the model families that generate, export and run exported files.

Each kind is one module (`tfzoo/kinds/<kind>.py`, defining `KIND`, a
`tfzoo.kinds.base.ModelKind` subclass) and one line of `KIND_MODULES`; it
owns which model classes it adapts (the only class-to-kind table), the
conditioning inputs, the signatures' kind-specific parts, the report fields,
the parity inputs and what its runtime adapters check and feed.

Adding a kind: write `tfzoo/kinds/<kind>.py` (subclass `ModelKind`, or
`EncoderKind` for a decoder that attends to an encoder) and add its module
below.

Example:
>>> kind_of_class("Transformer").name, kind_named("captioner").condition_names
('seq2seq', ('image',))
"""

from __future__ import annotations

import functools
import importlib

from tfzoo.kinds.base import ModelKind, ModelKindError

KIND_MODULES = (
    "tfzoo.kinds.decoder",
    "tfzoo.kinds.seq2seq",
    "tfzoo.kinds.captioner",
    "tfzoo.kinds.encoder",
    "tfzoo.kinds.asr",
    "tfzoo.kinds.video",
    "tfzoo.kinds.tts",
)
DEFAULT_KIND = "decoder"  # the kind of a version-1 `report.json` that names none


@functools.cache
def kind_classes() -> dict[str, type[ModelKind]]:
    """`{kind name: kind class}` of every registered kind (imports their modules, no TensorFlow)."""
    classes = [importlib.import_module(module).KIND for module in KIND_MODULES]
    return {kind.name: kind for kind in classes}


def model_classes() -> dict[str, str]:
    """`{model class name: kind name}`: what `model.keras` holds -> its kind."""
    return {model_class: kind.name for kind in kind_classes().values() for model_class in kind.model_classes}


def condition_names() -> frozenset[str]:
    """Every conditioning input name of every registered kind (`source_ids`, `image`, ...)."""
    return frozenset(name for kind in kind_classes().values() for name in kind.condition_names)


def kind_named(name: str) -> ModelKind:
    """The runtime side of the kind called `name` (e.g. `report["model"]["kind"]`); unbound, numpy only."""
    kinds = kind_classes()
    if name not in kinds:
        raise ModelKindError(f"unknown model kind {name!r}; known: {', '.join(kinds)}")
    return kinds[name]()


def kind_of_class(class_name: str) -> ModelKind:
    """The (unbound) kind of a model class name; `ModelKindError` for a class no kind adapts."""
    classes = model_classes()
    if class_name not in classes:
        raise ModelKindError(f"no model kind adapts {class_name}; supported: {', '.join(classes)}")
    return kind_named(classes[class_name])


def kind_of(model) -> ModelKind:
    """The kind of a Keras model by its class name, bound to it (`GPT` -> `decoder`, ...).

    Example:
    >>> from tfzoo.models.gpt import GPT
    >>> kind_of(GPT(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...             intermediate_dim=16, max_sequence_length=16)).name
    'decoder'
    """
    return type(kind_of_class(type(model).__name__))(model)


__all__ = [
    "DEFAULT_KIND",
    "KIND_MODULES",
    "ModelKind",
    "ModelKindError",
    "condition_names",
    "kind_classes",
    "kind_named",
    "kind_of",
    "kind_of_class",
    "model_classes",
]
