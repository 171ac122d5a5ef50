"""BERT-style encoder classifying the embedded `reviews` task (negation, "but", "although").

`python -m tfzoo.train --config=configs/bert_classify.py` trains on 10000
generated reviews and reports the `accuracy` of the argmax on the 1000
held-out reviews in metrics.jsonl.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "reviews"  # `reviews` (embedded) or `tfds:NAME[:FIELD]` with a `label` ClassLabel (imdb_reviews).
    config.data_dir = ""  # tfds specs: folder of the prepared data ("" = tfds's default); nothing is downloaded.
    config.max_examples = 0  # tfds specs: examples read per split; 0 = all.
    config.train_examples = 0  # Only the first N training examples are used (validation: all); 0 = all.
    config.tokenizer = "wordpiece"  # `wordpiece`, `sentencepiece`, `char` or `byte`.
    config.vocabulary_size = 300  # Subword vocabulary learned from the training texts (wordpiece/sentencepiece).
    config.seq_len = 32  # Tokens per text incl. the leading <cls>; longer texts keep their beginning.
    config.batch_size = 64  # Global batch size (texts), split over the strategy's replicas.
    # Model.
    config.model = "bert_classifier"  # Name in tfzoo.models.registry.MODELS (task kind: classification).
    config.num_layers = 2  # Encoder blocks.
    config.num_heads = 4  # Attention heads; must divide hidden_dim.
    config.hidden_dim = 128  # Width of the residual stream.
    config.intermediate_dim = 256  # Width of the feed-forward hidden layer.
    config.position = "learned"  # learned, sinusoidal, relative, rotary or alibi.
    config.activation = "gelu"  # Feed-forward activation: gelu, relu or swiglu.
    config.norm_first = True  # Pre-norm (True) or post-norm (False, the original BERT) blocks.
    config.max_sequence_length = 0  # Size of the learned position table; 0 = seq_len (a converted BERT: its 512).
    config.layer_norm_epsilon = 1e-5  # Layer-norm epsilon (a converted BERT: its config's 1e-12).
    config.num_segments = 2  # Segment (token type) ids the encoder embeds (BERT's type_vocab_size).
    config.tie_embeddings = True  # Unused by the classifier (no output vocabulary projection).
    config.dropout = 0.1  # Dropout in the encoder and on the pooled output.
    config.pooling = "cls"  # The classifier's input: "cls" (pooler on [CLS]) or "mean" (masked mean over tokens).
    # Optimization.
    config.train_steps = 1500  # Optimizer steps in total; a multiple of eval_every.
    config.learning_rate = 5e-4  # Peak learning rate, reached after the warmup.
    config.min_learning_rate = 1e-5  # Learning rate at the end of the cosine decay.
    config.warmup_steps = 100  # Steps of linear warmup from 0.
    config.weight_decay = 0.01  # Decoupled AdamW decay on kernels (not biases/norms/embeddings).
    config.beta1 = 0.9  # AdamW first-moment decay.
    config.beta2 = 0.98  # AdamW second-moment decay.
    config.clip_norm = 1.0  # Global gradient-norm clipping; 0 turns it off.
    config.label_smoothing = 0.0  # Smoothing of the training loss (metrics never smooth).
    # Evaluation, stopping, sampling.
    config.eval_every = 250  # Steps between evaluations (and checkpoints).
    config.eval_steps = 10  # Validation batches per evaluation (for val_loss).
    config.init_from = ""  # A workdir whose weights start training, e.g. a converted BERT (docs/pretrained.md).
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ("the food was good but the service was not great",)  # Classified at the end.
    config.sample_length = 0  # Unused by classification.
    # Execution.
    config.seed = 0  # Seeds initialization, dropout, the data order and the generated reviews.
    config.distribution_strategy = "auto"  # auto, one_device, mirrored, multi_worker or tpu; docs/distributed.md.
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # none, bfloat16 or float16 (with loss scaling).
    config.jit_compile = True  # Compile the train/eval steps with XLA.
    return config
