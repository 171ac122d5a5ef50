"""nanoGPT's CPU "baby GPT" recipe, for a character-level GPT on any `text:` corpus.

The recipe of nanoGPT's README (`train.py config/train_shakespeare_char.py
--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64
--batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
--lr_decay_iters=2000 --dropout=0.0`): 4 layers, 4 heads, hidden 128, block 64,
batch 12, 2000 steps, learning rate 1e-3 with 100 warmup steps and a cosine
decay to 1e-4, AdamW beta2 0.99 and weight decay 0.1, gradient clipping 1.0,
no dropout, evaluation every 250 steps on 20 batches. Give it a corpus:

    python -m tfzoo.train --config=configs/nanogpt_baby.py --config.dataset=text:PATH

`python bench/nanogpt_recipe.py --nanogpt=DIR` runs it beside nanoGPT itself.

tfzoo's own model choices are kept (biases, no decay on the embedding tables,
Keras's AdamW epsilon): measured on this recipe they end as well as or better
than nanoGPT's (README "Benchmarks"). nanoGPT's are one flag each:
`--config.use_bias=False --config.decay_embeddings=True --config.adam_epsilon=1e-8`.
"""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "gpt_char")  # Every field as documented there; these follow the recipe.
    config.tokenizer = "char"  # One id per character, as nanoGPT's shakespeare_char data.
    config.seq_len = 64  # nanoGPT's block_size.
    config.batch_size = 12  # nanoGPT's batch_size (gradient_accumulation_steps = 1).
    config.num_layers = 4  # n_layer.
    config.num_heads = 4  # n_head.
    config.hidden_dim = 128  # n_embd.
    config.intermediate_dim = 512  # 4 * n_embd, as nanoGPT's MLP.
    config.dropout = 0.0  # dropout.
    config.train_steps = 2000  # max_iters (and lr_decay_iters).
    config.learning_rate = 1e-3  # learning_rate.
    config.min_learning_rate = 1e-4  # min_lr.
    config.warmup_steps = 100  # warmup_iters.
    config.weight_decay = 0.1  # weight_decay.
    config.beta1 = 0.9  # beta1.
    config.beta2 = 0.99  # beta2.
    config.clip_norm = 1.0  # grad_clip.
    config.eval_every = 250  # eval_interval.
    config.eval_steps = 20  # eval_iters.
    config.sample_prompts = ()  # No completions printed at the end: nanoGPT's train.py prints none.
    config.sample_length = 0  # Tokens generated per sample prompt.
    return config
