"""Encoder-decoder Transformer translating numbers written in English words into French words.

`python -m tfzoo.train --config=configs/transformer_translate.py` trains on the
embedded `numbers:en-fr` task (0..9999, 10% of the numbers held out) and
reports `exact_match` and `bleu` of greedy translations of every held-out
number in metrics.jsonl.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "numbers:en-fr"  # `numbers:SRC-TGT` (embedded) or `tfds:NAME/SRC-TGT` (wmt14_translate/de-en).
    config.data_dir = ""  # tfds specs: folder of the prepared data ("" = tfds's default); nothing is downloaded.
    config.max_examples = 0  # tfds specs: pairs read per split; 0 = all.
    config.tokenizer = "wordpiece"  # `wordpiece`, `sentencepiece`, `char` or `byte`; one vocabulary for both languages.
    config.vocabulary_size = 400  # Subword vocabulary learned from the training pairs (wordpiece/sentencepiece).
    config.seq_len = 24  # Longest source and target (incl. the start token); longer pairs are left out.
    config.batch_size = 64  # Global batch size (pairs), split over the strategy's replicas.
    # Model.
    config.model = "transformer"  # Name in tfzoo.models.registry.MODELS (task kind: seq2seq).
    config.num_layers = 2  # Encoder blocks, and as many decoder blocks.
    config.num_heads = 4  # Attention heads; must divide hidden_dim.
    config.hidden_dim = 128  # Width of the residual streams.
    config.intermediate_dim = 256  # Width of the feed-forward hidden layer.
    config.position = "sinusoidal"  # sinusoidal or relative (T5 buckets).
    config.activation = "relu"  # Feed-forward activation: relu, gelu or swiglu.
    config.norm_first = True  # Pre-norm (True) or post-norm (False) blocks.
    config.tie_embeddings = True  # Output projection shares the (source and target) token embedding.
    config.dropout = 0.0  # Dropout rate in attention, feed-forward and embeddings.
    # Optimization.
    config.train_steps = 1000  # Optimizer steps in total; a multiple of eval_every.
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
    config.eval_decode_examples = 0  # Held-out pairs translated for exact_match/bleu per evaluation; 0 = all.
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ("one thousand, two hundred and thirty-four", "ninety-nine")  # Translated at the end.
    config.sample_length = 24  # Unused by seq2seq (translations stop at <eos> or seq_len).
    # Execution.
    config.seed = 0  # Seeds initialization, dropout, the data order and the held-out numbers.
    config.distribution_strategy = "auto"  # auto, one_device, mirrored, multi_worker or tpu; docs/distributed.md.
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # none, bfloat16 or float16 (with loss scaling).
    config.jit_compile = True  # Compile the train/eval steps with XLA.
    return config
