"""Helpers of the speech-recognition tests: a tiny `configs/asr_numbers.py` run config (a few utterances)."""

from __future__ import annotations

import os

from tfzoo.config_files import load_config_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_asr_config(data_dir: str, **overrides):
    """configs/asr_numbers.py shrunk to 8 + 4 utterances of at most 2 s and a 1-layer, 16-wide model, no XLA."""
    config = load_config_file(os.path.join(REPO, "configs", "asr_numbers.py"))
    config.update(
        dict(
            data_dir=str(data_dir),
            num_train=8,
            num_validation=4,
            max_audio_seconds=2.0,
            num_layers=1,
            num_heads=2,
            hidden_dim=16,
            intermediate_dim=32,
            num_mel_bins=16,
            batch_size=4,
            train_steps=2,
            eval_every=2,
            eval_steps=1,
            warmup_steps=1,
            jit_compile=False,
            dropout=0.0,
        )
    )
    config.update(overrides)
    return config
