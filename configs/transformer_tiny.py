"""A tiny translation Transformer that trains in seconds: for tests and smoke runs, not for results."""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "transformer_translate")  # Every field as documented there; these are smaller.
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
