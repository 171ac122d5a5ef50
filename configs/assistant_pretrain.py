"""Assistant recipe, stage 1 (issue 20): pre-train a small byte-level GPT on the shop world's documents.

    python -m tfzoo.train --config=configs/assistant_pretrain.py --workdir=runs/assistant_pretrain

The corpus (`assistant:docs`, tfzoo/data/assistant_world.py) is the catalogue, hours, policies and
order notes in prose, plus few-shot pattern blocks (the in-context probe). The tokenizer is
`chat:byte`, bytes plus the chat role tokens, so the next stages (configs/assistant_sft.py,
configs/assistant_dpo.py) `init_from` this run with the same ids.
"""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "gpt_char")  # Every field as documented there; these differ.
    config.dataset = "assistant:docs"  # The shop world's documents (assistant:docs@SEED for another world).
    config.tokenizer = "chat:byte"  # UTF-8 bytes plus <|system|>, <|user|>, <|assistant|> (261 ids).
    config.seq_len = 384  # Tokens per window; also the model's context (SFT dialogues fit in it).
    config.batch_size = 8
    config.num_layers = 4
    config.num_heads = 4
    config.hidden_dim = 128
    config.intermediate_dim = 512
    config.train_steps = 500
    config.warmup_steps = 100
    config.learning_rate = 2e-3
    config.min_learning_rate = 1e-4
    config.eval_every = 250
    config.eval_steps = 8
    config.sample_prompts = ("The Red Mug costs", "Order ")
    config.sample_length = 48
    return config
