"""Assistant recipe, stage 3 (issue 20): direct preference optimisation (DPO) after SFT.

    python -m tfzoo.train --config=configs/assistant_dpo.py --workdir=runs/assistant_dpo \
        --config.init_from=runs/assistant_sft

Task `dpo` (tfzoo/training/assistant_tasks.py): pairs of replies to the same prompt (chosen:
correct, grounded, polite; rejected: wrong fact, invented product, off-topic or rude). The
reference is the `init_from` model, frozen (its log-probabilities are computed once); the policy
starts from the same weights, so the first loss is log 2. `batch_size` counts rows: two per pair.
The loss is DPO + NLL (the RPO form, Pang et al., 2024: `dpo_nll_weight` times the chosen reply's
mean token NLL is added) at a learning rate 6x below the first run's 3e-4, which degenerated the
replies (docs/tasks.md).
"""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "assistant_sft")  # Same model, tokenizer, context and measures.
    config.task = "dpo"  # tfzoo.training.tasks: DPO against the frozen init_from model.
    config.dataset = "assistant:prefs"  # The shop world's preference pairs.
    config.init_from = "runs/assistant_sft"  # The SFT run: policy start and frozen reference.
    config.preference_pairs = 800  # Generated training pairs (one pass at 100 steps of 8 pairs).
    config.dpo_beta = 0.1  # DPO's beta.
    config.dpo_nll_weight = 1.0  # + this times the chosen reply's mean token NLL (DPO + NLL, RPO; 0 = pure DPO).
    config.batch_size = 16  # Rows: 8 pairs.
    config.train_steps = 100  # Optimizer steps (8 pairs each).
    config.warmup_steps = 10  # Linear warmup.
    config.learning_rate = 5e-5  # Peak learning rate (3e-4 degenerated the replies; docs/tasks.md).
    config.min_learning_rate = 5e-6  # End of the cosine decay.
    config.eval_every = 100  # Steps between evaluations.
    config.eval_dialogues = 100  # Held-out dialogues decoded per evaluation (bench/assistant_table.py: more).
    return config
