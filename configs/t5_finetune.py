"""Fine-tuning a converted T5 (`python -m tfzoo.convert t5`) on a translation task.

    python -m tfzoo.convert t5 --source=PATH/TO/t5-small --workdir=runs/t5
    python -m tfzoo.train --config=configs/t5_finetune.py --workdir=runs/t5_numbers \
        --config.init_from=runs/t5 --config.tokenizer=file:runs/t5/tokenizer

The model fields below are t5-small's as `tfzoo.convert t5` writes them (a
`Transformer` with T5's options); for another checkpoint set them to the
converted `config.json`'s values (flan-T5 / T5 v1.1: `activation="geglu_tanh"`,
`tie_embeddings=False`, `scale_decoder_output=False`). `init_from` checks every
architecture field against the converted `model.keras` and names the first that
differs, with the flag to pass. Sources are encoded with T5's trailing `</s>`;
targets start from `decoder_start_id` (T5: the pad id 0) and the labels end with
one `</s>`, as transformers' T5 fine-tuning does. Reports `exact_match` and `bleu`
of greedy translations of the held-out pairs in metrics.jsonl.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "numbers:en-fr"  # `numbers:SRC-TGT` (embedded) or `tfds:NAME/SRC-TGT` (wmt14_translate/de-en).
    config.data_dir = ""  # tfds specs: folder of the prepared data ("" = tfds's default); nothing is downloaded.
    config.max_examples = 0  # tfds specs: pairs read per split; 0 = all.
    config.tokenizer = "file:runs/t5/tokenizer"  # The converted T5's tokenizer: `file:WORKDIR/tokenizer`.
    config.vocabulary_size = 32128  # Unused with a `file:` tokenizer (the converted vocabulary is kept).
    config.seq_len = 48  # Longest source and target (incl. </s> and the start token); longer pairs are left out.
    config.batch_size = 32  # Global batch size (pairs), split over the strategy's replicas.
    # Model: t5-small as `tfzoo.convert t5` converts it (its config.json holds these fields).
    config.model = "transformer"  # Name in tfzoo.models.registry.MODELS (task kind: seq2seq).
    config.num_layers = 6  # Encoder blocks, and as many decoder blocks (T5's num_layers).
    config.num_heads = 8  # Attention heads (num_heads).
    config.hidden_dim = 512  # Width of the residual streams (d_model).
    config.intermediate_dim = 2048  # Width of the feed-forward hidden layer (d_ff).
    config.head_dim = 64  # Width of each head (d_kv); 0 = hidden_dim // num_heads.
    config.max_sequence_length = 512  # Longest source/target the model takes (no position table; the export's width).
    config.position = "relative"  # T5's bucketed relative position bias.
    config.activation = "relu"  # relu (T5) or geglu_tanh (T5 v1.1, flan-T5: gated tanh GELU).
    config.norm = "rms"  # RMS norm without bias (T5's layer norm).
    config.layer_norm_epsilon = 1e-6  # T5's layer_norm_epsilon.
    config.use_bias = False  # No biases in the projections.
    config.scale_queries = False  # T5 does not scale attention logits by 1/sqrt(head_dim).
    config.scale_embeddings = False  # T5 does not multiply token embeddings by sqrt(hidden_dim).
    config.scale_decoder_output = True  # hidden_dim**-0.5 before the tied projection (T5; not v1.1 / flan-T5).
    config.tie_embeddings = True  # Output projection shares the token embedding (T5; v1.1 / flan-T5: False).
    config.decoder_start_id = 0  # The decoder's first token (T5: the pad id); -1 = the tokenizer's <bos>/<eos>.
    config.norm_first = True  # Pre-norm blocks with a final norm per stack (T5).
    config.dropout = 0.1  # Dropout rate in attention, feed-forward and embeddings (T5's dropout_rate).
    config.init_from = ""  # The converted T5 workdir whose weights start training (runs/t5); "" = from scratch.
    # Optimization.
    config.train_steps = 1000  # Optimizer steps in total; a multiple of eval_every.
    config.learning_rate = 3e-4  # Peak learning rate, reached after the warmup.
    config.min_learning_rate = 1e-5  # Learning rate at the end of the cosine decay.
    config.warmup_steps = 50  # Steps of linear warmup from 0.
    config.weight_decay = 0.01  # Decoupled AdamW decay on kernels (not norms/embeddings).
    config.beta1 = 0.9  # AdamW first-moment decay.
    config.beta2 = 0.98  # AdamW second-moment decay.
    config.clip_norm = 1.0  # Global gradient-norm clipping; 0 turns it off.
    config.label_smoothing = 0.0  # Smoothing of the training loss (metrics never smooth).
    # Evaluation, stopping, sampling.
    config.eval_every = 250  # Steps between evaluations (and checkpoints).
    config.eval_steps = 10  # Validation batches per evaluation (for val_loss).
    config.eval_decode_examples = 200  # Held-out pairs translated for exact_match/bleu per evaluation; 0 = all.
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ("one thousand, two hundred and thirty-four", "ninety-nine")  # Translated at the end.
    config.sample_length = 48  # Unused by seq2seq (translations stop at </s> or seq_len).
    # Execution.
    config.seed = 0  # Seeds initialization, dropout, the data order and the held-out numbers.
    config.distribution_strategy = "auto"  # auto, one_device, mirrored, multi_worker or tpu; docs/distributed.md.
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # none, bfloat16 or float16 (with loss scaling).
    config.jit_compile = True  # Compile the train/eval steps with XLA.
    return config
