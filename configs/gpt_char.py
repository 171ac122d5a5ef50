"""Default run: a small character-level GPT on the Python standard library's source.

`python -m tfzoo.train` trains it in under 10 minutes on 2 CPU cores and ends
far below the unigram entropy of the validation text.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "stdlib_code"  # `stdlib_code`, `text:PATH` or `tfds:NAME[/CONFIG][:FIELD]`.
    config.data_dir = ""  # tfds specs: folder of the prepared data ("" = tfds's default); nothing is downloaded.
    config.max_examples = 0  # tfds specs: examples read per split; 0 = all.
    config.tokenizer = "char"  # `char` or `byte`; built from the train split.
    config.seq_len = 128  # Tokens per training/eval sequence (also the model's max length).
    config.batch_size = 32  # Global batch size, split over the strategy's replicas.
    # Model.
    config.model = "gpt"  # Name in tfzoo.models.registry.MODELS.
    config.num_layers = 4  # Transformer blocks.
    config.num_heads = 4  # Attention heads; must divide hidden_dim.
    config.hidden_dim = 128  # Width of the residual stream.
    config.intermediate_dim = 512  # Width of the feed-forward hidden layer.
    config.position = "learned"  # learned, sinusoidal, relative, rotary or alibi.
    config.activation = "gelu"  # Feed-forward activation: gelu, relu or swiglu.
    config.norm_first = True  # Pre-norm (True) or post-norm (False) blocks.
    config.tie_embeddings = True  # Output projection shares the token embedding.
    config.use_bias = True  # Biases in the blocks' projections and layer norms (nanoGPT: False).
    config.dropout = 0.0  # Dropout rate in attention and feed-forward.
    # Optimization.
    config.train_steps = 1000  # Optimizer steps in total; a multiple of eval_every.
    config.learning_rate = 1e-3  # Peak learning rate, reached after the warmup.
    config.min_learning_rate = 1e-4  # Learning rate at the end of the cosine decay.
    config.warmup_steps = 100  # Steps of linear warmup from 0.
    config.weight_decay = 0.1  # Decoupled AdamW decay on kernels (not biases/norms/embeddings).
    config.decay_embeddings = False  # Decay the token and position tables too (nanoGPT: True).
    config.beta1 = 0.9  # AdamW first-moment decay.
    config.beta2 = 0.99  # AdamW second-moment decay.
    config.adam_epsilon = 1e-7  # AdamW epsilon (Keras adds it to the uncorrected sqrt(v)).
    config.clip_norm = 1.0  # Global gradient-norm clipping; 0 turns it off.
    config.label_smoothing = 0.0  # Smoothing of the training loss (metrics never smooth).
    # Evaluation, stopping, sampling.
    config.eval_every = 250  # Steps between evaluations (and checkpoints).
    config.eval_steps = 20  # Validation batches per evaluation.
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ("def ", "import ", "class ")  # Greedy completions printed at the end.
    config.sample_length = 64  # Tokens generated per sample prompt.
    # Execution.
    config.seed = 0  # Seeds initialization, dropout and the data order.
    config.distribution_strategy = "auto"  # auto, one_device, mirrored, multi_worker or tpu; docs/distributed.md.
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # none, bfloat16 or float16 (with loss scaling).
    config.jit_compile = True  # Compile the train/eval steps with XLA.
    config.steps_per_execution = 1  # Training steps per call into the compiled step (README: often slower on CPU).
    return config
