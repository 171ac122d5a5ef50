"""A tiny translation Transformer that trains in seconds: for tests and smoke runs, not for results."""

import importlib.util
import os

import ml_collections


def _base_config() -> ml_collections.ConfigDict:
    """`configs/transformer_translate.py`'s config, loaded by path (configs/ is not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transformer_translate.py")
    spec = importlib.util.spec_from_file_location("transformer_translate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config() -> ml_collections.ConfigDict:
    config = _base_config()  # Every field as documented there; these are smaller.
    config.tokenizer = "char"  # Characters: no vocabulary to learn, builds instantly.
    config.seq_len = 64  # Characters of the longest source/target kept (incl. the start token).
    config.batch_size = 8  # Pairs per batch.
    config.num_layers = 1  # One encoder and one decoder block.
    config.num_heads = 2  # Attention heads.
    config.hidden_dim = 16  # Width of the residual streams.
    config.intermediate_dim = 32  # Feed-forward width.
    config.train_steps = 6  # Optimizer steps.
    config.warmup_steps = 2  # Warmup steps.
    config.eval_every = 3  # Two evaluations.
    config.eval_steps = 2  # Validation batches per evaluation.
    config.eval_decode_examples = 16  # Held-out pairs translated per evaluation.
    config.sample_prompts = ("ninety-nine",)  # Translated at the end.
    config.jit_compile = False  # XLA compiles slower than these few steps run.
    return config
