"""A tiny GPT that trains in seconds: for tests and smoke runs, not for results."""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "gpt_char")  # Every field as documented there; these are smaller.
    config.seq_len = 32  # Tokens per training/eval sequence (also the model's max length).
    config.batch_size = 8  # Global batch size.
    config.num_layers = 1  # Transformer blocks.
    config.num_heads = 2  # Attention heads.
    config.hidden_dim = 32  # Width of the residual stream.
    config.intermediate_dim = 64  # Width of the feed-forward hidden layer.
    config.train_steps = 40  # Optimizer steps in total.
    config.learning_rate = 3e-3  # Peak learning rate.
    config.min_learning_rate = 3e-4  # Learning rate at the end of the cosine decay.
    config.warmup_steps = 5  # Steps of linear warmup.
    config.eval_every = 10  # Steps between evaluations (and checkpoints).
    config.eval_steps = 2  # Validation batches per evaluation.
    config.sample_prompts = ("def ",)  # Completions printed at the end.
    config.sample_length = 16  # Tokens generated per sample prompt.
    config.jit_compile = False  # XLA compiles slower than these few steps run.
    return config
