"""Fine-tune a converted GPT-2 on a text file (docs/pretrained.md walks through it).

    python -m tfzoo.convert gpt2 --source=PATH/TO/gpt2 --workdir=runs/gpt2
    python -m tfzoo.train --config=configs/gpt2_finetune.py --workdir=runs/gpt2_ft \
        --config.dataset=text:my_corpus.txt

`init_from` names the converted workdir: its `model.keras` weights start the
run and its tokenizer (GPT-2's BPE) encodes the text; overriding
`--config.init_from=DIR` moves both. The architecture fields are GPT-2
small's (configs/gpt2_small.py); for another size set them to the converted
config.json's values (a mismatch is a clear error naming the field).
"""

import ml_collections

from tfzoo.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "gpt2_small")  # GPT-2 small's architecture; fine-tuning values below.
    config.init_from = "runs/gpt2"  # Converted workdir whose weights start training.
    config.tokenizer = "file:" + config.get_ref("init_from") + "/tokenizer"  # Follows init_from.
    config.dataset = "text:README.md"  # Any UTF-8 file: first 90% trains, last 10% validates.
    config.seq_len = 128  # Tokens per sequence (the position table stays 1024).
    config.batch_size = 4  # Global batch size.
    config.dropout = 0.1  # GPT-2's dropout.
    config.train_steps = 200  # A short fine-tune.
    config.learning_rate = 5e-5  # Small: the weights are already good.
    config.min_learning_rate = 5e-6  # End of the cosine decay.
    config.warmup_steps = 20  # Steps of linear warmup.
    config.weight_decay = 0.01  # Light AdamW decay.
    config.eval_every = 50  # Steps between evaluations (and checkpoints).
    config.eval_steps = 5  # Validation batches per evaluation.
    config.sample_prompts = ("The ",)  # Completions printed at the end.
    config.sample_length = 32  # Tokens per sample.
    config.jit_compile = True  # XLA train steps.
    return config
