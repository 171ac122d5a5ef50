"""GPT-2 small (124M): 12 layers, 768 wide, 12 heads, 1024 positions, tanh-GELU, tied embeddings.

The architecture of OpenAI's smallest GPT-2, with its byte-level BPE
vocabulary (50257 tokens) taken from a converted checkpoint: run
`python -m tfzoo.convert gpt2 --source=DIR --workdir=runs/gpt2` first (see
docs/pretrained.md). Training from scratch on 2 CPU cores is slow; fine-tune
instead with configs/gpt2_finetune.py.
"""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "gpt_char")  # Every field as documented there; GPT-2's values below.
    # Data.
    config.dataset = "stdlib_code"  # `stdlib_code`, `text:PATH` or `tfds:NAME[/CONFIG][:FIELD]`.
    config.tokenizer = "file:runs/gpt2/tokenizer"  # GPT-2's BPE, saved by `python -m tfzoo.convert gpt2`.
    config.seq_len = 256  # Tokens per training/eval sequence (at most max_sequence_length).
    config.batch_size = 8  # Global batch size.
    # Model: GPT-2 small.
    config.num_layers = 12  # Transformer blocks.
    config.num_heads = 12  # Attention heads.
    config.hidden_dim = 768  # Width of the residual stream.
    config.intermediate_dim = 3072  # Feed-forward width (4 * hidden_dim).
    config.max_sequence_length = 1024  # Learned position table (GPT-2's n_positions).
    config.position = "learned"  # GPT-2 learns absolute positions.
    config.activation = "gelu_tanh"  # GPT-2's tanh approximation of GELU ("gelu_new" in Hugging Face).
    config.norm_first = True  # Pre-norm blocks and a final norm.
    config.tie_embeddings = True  # The output projection is the token embedding.
    config.layer_norm_epsilon = 1e-5  # GPT-2's layer norm epsilon.
    config.dropout = 0.1  # GPT-2's dropout (attention, residual, embedding).
    # Optimization (GPT-2 paper scale, shortened).
    config.train_steps = 10000  # Optimizer steps in total.
    config.learning_rate = 6e-4  # Peak learning rate.
    config.min_learning_rate = 6e-5  # Learning rate at the end of the cosine decay.
    config.warmup_steps = 500  # Steps of linear warmup.
    config.weight_decay = 0.1  # AdamW decay on kernels.
    config.beta2 = 0.95  # AdamW second-moment decay.
    config.eval_every = 500  # Steps between evaluations (and checkpoints).
    config.eval_steps = 10  # Validation batches per evaluation.
    config.sample_prompts = ("def ",)  # Completions printed at the end.
    return config
