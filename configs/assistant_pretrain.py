"""Assistant recipe, stage 1 (issue 20): pre-train a small byte-level GPT on the shop world's documents.

    python -m tfzoo.train --config=configs/assistant_pretrain.py --workdir=runs/assistant_pretrain

The corpus (`assistant:docs:12.8`, tfzoo/data/assistant_world.py, 12.8 MB): system cards of freshly drawn
products followed by prose that restates them (copying from context is the only way to predict the
prose), the store's hours and policies, and few-shot blocks (a word rule shown by examples: the
in-context probe). The tokenizer is
`chat:byte`, bytes plus the chat role tokens, so the next stages (configs/assistant_sft.py,
configs/assistant_dpo.py) `init_from` this run with the same ids.
"""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "gpt_char")  # Every field as documented there; these differ.
    config.dataset = "assistant:docs:12.8"  # 12.8 MB of the shop world's documents (@SEED:MB: another world).
    config.tokenizer = "chat:byte"  # UTF-8 bytes plus <|system|>, <|user|>, <|assistant|> (261 ids).
    config.seq_len = 384  # Tokens per window; also the model's context (SFT dialogues fit in it).
    config.batch_size = 8  # Windows per step (small: the machine is shared).
    config.num_layers = 4  # A small model: each stage trains in minutes here.
    config.num_heads = 4  # Attention heads.
    config.hidden_dim = 128  # Width of the residual stream.
    config.intermediate_dim = 512  # Feed-forward width.
    config.train_steps = 4000  # Optimizer steps, about one pass over the corpus (time: docs/tasks.md).
    config.warmup_steps = 200  # Linear warmup.
    config.learning_rate = 2e-3  # Peak learning rate.
    config.min_learning_rate = 1e-4  # End of the cosine decay.
    config.eval_every = 1000  # Steps between evaluations.
    config.eval_steps = 8  # Validation windows batches per evaluation.
    config.sample_prompts = (  # Printed during training: a price lookup and a few-shot pattern.
        "Items: Teal Kettle $12, 3 in stock.\nThe Teal Kettle costs",
        "abc -> ABC\nxyz -> ",
    )
    config.sample_length = 48  # Tokens per sample.
    return config
