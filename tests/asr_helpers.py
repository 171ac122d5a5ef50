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


def tiny_asr_export(root, formats: str = "saved_model,tflite,onnx") -> tuple[str, str, dict]:
    """A 2-step tiny run (`tiny_asr_config`) with perturbed weights, exported in `formats` (fp32 only).

    The weights are perturbed (std 1.0) because an untrained decoder repeats one token, which would make
    token parity trivial. Returns (workdir, export folder, report).
    """
    import json

    from export.__main__ import main as export_main
    from export_helpers import perturb_workdir
    from tfzoo.training.train_lib import train_and_evaluate

    workdir = os.path.join(str(root), "run")
    train_and_evaluate(tiny_asr_config(os.path.join(str(root), "data")), workdir)
    perturb_workdir(workdir, scale=1.0)
    assert export_main(["--workdir", workdir, "--formats", formats, "--quantization", "none"]) == 0
    export_dir = os.path.join(workdir, "export")
    with open(os.path.join(export_dir, "report.json"), encoding="utf-8") as file:
        return workdir, export_dir, json.load(file)
