"""Assistant recipe, stage 2 (issue 20): supervised fine-tuning on the shop's dialogues.

    python -m tfzoo.train --config=configs/assistant_sft.py --workdir=runs/assistant_sft \
        --config.init_from=runs/assistant_pretrain

Task `sft` (tfzoo/training/assistant_tasks.py): generated multi-turn dialogues rendered with the
chat template (tfzoo/data/chat_template.py), packed whole into rows of `seq_len + 1` tokens, the
loss on the assistant's tokens only. Every evaluation adds the assistant measures
(answer, refusal, follow-up and preference accuracy on held-out products and phrasings).
The architecture fields must equal the pre-trained run's (`init_from` checks them).
"""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "assistant_pretrain")  # Same model, tokenizer and context.
    config.task = "sft"  # tfzoo.training.tasks: dialogues, loss on assistant tokens.
    config.dataset = "assistant:sft"  # The shop world's dialogues (assistant:sft@SEED: another world).
    config.init_from = "runs/assistant_pretrain"  # The pre-trained run ("" trains from scratch).
    config.sft_dialogues = 4000  # Generated training dialogues (each with its own products; ~1 per row).
    config.eval_dialogues = 100  # Held-out dialogues decoded greedily per evaluation (the bench: more).
    config.eval_pairs = 200  # Held-out preference pairs scored per evaluation.
    config.batch_size = 8  # Rows of seq_len tokens (~1 dialogue each).
    config.train_steps = 400  # Optimizer steps.
    config.warmup_steps = 50  # Linear warmup.
    config.learning_rate = 1e-3  # Peak learning rate.
    config.min_learning_rate = 1e-4  # End of the cosine decay.
    config.eval_every = 400  # Steps between evaluations (each decodes eval_dialogues).
    config.eval_steps = 8  # Held-out packed batches for val_loss.
    config.sample_prompts = ()  # Unused: the samples are held-out replies.
    return config
