"""A tiny BERT classifier that trains in seconds: for tests and smoke runs, not for results."""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "bert_classify")  # Every field as documented there; these are smaller.
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
