"""A tiny BERT classifier that trains in seconds: for tests and smoke runs, not for results."""

import importlib.util
import os

import ml_collections


def _base_config() -> ml_collections.ConfigDict:
    """`configs/bert_classify.py`'s config, loaded by path (configs/ is not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bert_classify.py")
    spec = importlib.util.spec_from_file_location("bert_classify", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config() -> ml_collections.ConfigDict:
    config = _base_config()  # Every field as documented there; these are smaller.
    config.tokenizer = "char"  # Characters: no vocabulary to learn, builds instantly.
    config.seq_len = 48  # Characters per text incl. the leading token.
    config.batch_size = 8  # Texts per batch.
    config.num_layers = 1  # One encoder block.
    config.num_heads = 2  # Attention heads.
    config.hidden_dim = 16  # Width of the residual stream.
    config.intermediate_dim = 32  # Feed-forward width.
    config.train_steps = 6  # Optimizer steps.
    config.warmup_steps = 2  # Warmup steps.
    config.eval_every = 3  # Two evaluations.
    config.eval_steps = 2  # Validation batches per evaluation.
    config.jit_compile = False  # XLA compiles slower than these few steps run.
    return config
