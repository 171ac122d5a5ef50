"""A tiny GPT that trains in seconds: for tests and smoke runs, not for results."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "stdlib_code"  # `stdlib_code`, `text:PATH` or `tfds:NAME[/CONFIG][:FIELD]`.
    config.data_dir = ""  # tfds specs: folder of the prepared data ("" = tfds's default); nothing is downloaded.
    config.max_examples = 0  # tfds specs: examples read per split; 0 = all.
    config.tokenizer = "char"  # `char` or `byte`; built from the train split.
    config.seq_len = 32  # Tokens per training/eval sequence (also the model's max length).
    config.batch_size = 8  # Global batch size, split over the strategy's replicas.
    # Model.
    config.model = "gpt"  # Name in tfzoo.models.registry.MODELS.
    config.num_layers = 1  # Transformer blocks.
    config.num_heads = 2  # Attention heads; must divide hidden_dim.
    config.hidden_dim = 32  # Width of the residual stream.
    config.intermediate_dim = 64  # Width of the feed-forward hidden layer.
    config.position = "learned"  # learned, sinusoidal, relative, rotary or alibi.
    config.activation = "gelu"  # Feed-forward activation: gelu, relu or swiglu.
    config.norm_first = True  # Pre-norm (True) or post-norm (False) blocks.
    config.tie_embeddings = True  # Output projection shares the token embedding.
    config.dropout = 0.0  # Dropout rate in attention and feed-forward.
    # Optimization.
    config.train_steps = 40  # Optimizer steps in total; a multiple of eval_every.
    config.learning_rate = 3e-3  # Peak learning rate, reached after the warmup.
    config.min_learning_rate = 3e-4  # Learning rate at the end of the cosine decay.
    config.warmup_steps = 5  # Steps of linear warmup from 0.
    config.weight_decay = 0.1  # Decoupled AdamW decay on kernels (not biases/norms/embeddings).
    config.beta1 = 0.9  # AdamW first-moment decay.
    config.beta2 = 0.99  # AdamW second-moment decay.
    config.clip_norm = 1.0  # Global gradient-norm clipping; 0 turns it off.
    config.label_smoothing = 0.0  # Smoothing of the training loss (metrics never smooth).
    # Evaluation, stopping, sampling.
    config.eval_every = 10  # Steps between evaluations (and checkpoints).
    config.eval_steps = 2  # Validation batches per evaluation.
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ("def ",)  # Greedy completions printed at the end.
    config.sample_length = 16  # Tokens generated per sample prompt.
    # Execution.
    config.seed = 0  # Seeds initialization, dropout and the data order.
    config.strategy = "auto"  # auto, one_device, mirrored (multi_worker, tpu: not yet).
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # Only "none" for now.
    config.jit_compile = False  # Compile the train/eval steps with XLA (slow to compile for tiny runs).
    return config
