"""Models built from tfzoo.layers; `registry.MODELS` names them for configs."""

from tfzoo.models.gpt import GPT

__all__ = ["GPT"]
