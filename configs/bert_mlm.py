"""BERT-style encoder pre-trained with the masked-language-model objective on the embedded reviews.

`python -m tfzoo.train --config=configs/bert_mlm.py` masks 15% of the WordPiece
tokens of the 10000 generated `reviews` (BERT's 80/10/10 rule, fresh masks
every batch) and trains `BertMaskedLM` to restore them; metrics.jsonl reports
the masked-token cross-entropy (`train_loss`, `val_loss`) and
`masked_accuracy` on the 1000 held-out reviews (masked once, fixed seed).
Any text spec works too (`stdlib_code`, `text:PATH`: one example per line).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "reviews"  # `reviews` (embedded) or a text spec (`stdlib_code`, `text:PATH`): one row per line.
    config.data_dir = ""  # tfds specs: folder of the prepared data ("" = tfds's default); nothing is downloaded.
    config.max_examples = 0  # Text specs: lines used per split (and tfds examples read); 0 = all.
    config.tokenizer = "wordpiece"  # `wordpiece` or `sentencepiece` (they have a <mask> token).
    config.vocabulary_size = 300  # Upper bound of the subword vocabulary learned from the training texts (144 here).
    config.seq_len = 16  # Tokens per row incl. the leading <cls> (the longest review has 15); longer texts are cut.
    config.max_predictions = 5  # Masked (predicted) tokens per row at most.
    config.mask_rate = 0.15  # Share of each row's real tokens that is masked.
    config.batch_size = 64  # Global batch size (rows), split over the strategy's replicas.
    # Model.
    config.model = "bert_mlm"  # Name in tfzoo.models.registry.MODELS (task kind: masked_lm).
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
    config.tie_embeddings = True  # The MLM head always projects with the token embedding (BERT's tying).
    config.dropout = 0.1  # Dropout in the encoder.
    # Optimization.
    config.train_steps = 1000  # Optimizer steps in total; a multiple of eval_every (masked accuracy plateaus by ~750).
    config.learning_rate = 1e-3  # Peak learning rate, reached after the warmup.
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
    config.eval_decode_examples = 0  # Held-out rows scored for masked_accuracy per evaluation; 0 = all.
    config.init_from = ""  # A workdir whose weights start training, e.g. a converted BERT (docs/pretrained.md).
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ()  # Unused: the samples are the first held-out rows with their masks filled in.
    config.sample_length = 0  # Unused by the masked LM.
    # Execution.
    config.seed = 0  # Seeds initialization, dropout, the masks, the data order and the generated reviews.
    config.distribution_strategy = "auto"  # auto, one_device, mirrored, multi_worker or tpu; docs/distributed.md.
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # none, bfloat16 or float16 (with loss scaling).
    config.jit_compile = True  # Compile the train/eval steps with XLA.
    return config
