"""Helpers of the speech-synthesis export tests: a tiny `SpeechSynthesizer` run folder with perturbed weights."""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.speech_data import all_texts
from tfzoo.models.speech_synthesizer import SpeechSynthesizer

MAX_SEQUENCE_LENGTH = 34  # the longest parity sentence of seed 0 that fits: "set the timer to seventy six minutes"


def make_tts_workdir(workdir, *, griffin_lim_iterations: int = 8, seed: int = 0) -> str:
    """A tiny run folder as `python -m tfzoo.train --config=configs/tts_numbers.py` leaves it, without training.

    Every weight gets seeded noise (std 0.3) so that the frames and the predicted durations depend on
    the text; the duration predictor's output is then set to about log(1 + 3) +- 0.6 per character
    (1 to 6 frames, in pairs: `frames_per_step=2`) and the mel projection scaled so that the log-mel
    power lies where speech's does (about -11 to -1), not in the overflow range of exp().
    """
    workdir = str(workdir)
    os.makedirs(workdir, exist_ok=True)
    tokenizer = CharTokenizer.from_text("\n".join(all_texts()))
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    keras.utils.set_random_seed(seed)
    model = SpeechSynthesizer(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        max_frames=160,
        num_mel_bins=16,
        duration_filters=8,
        mel_mean=-6.0,
        mel_std=2.0,
        frames_per_step=2,
        griffin_lim_iterations=griffin_lim_iterations,
        dropout=0.0,
    )
    model.build()
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(weight.numpy() + rng.normal(0.0, 0.3, weight.shape).astype("float32"))
    projection = model.duration_predictor.projection
    projection.kernel.assign(projection.kernel.numpy() * 0.2)
    projection.bias.assign(np.array([1.4], "float32"))
    model.mel_projection.kernel.assign(model.mel_projection.kernel.numpy() * 0.3)
    model.save(os.path.join(workdir, "model.keras"))
    config = {
        "model": "speech_synthesizer",
        "dataset": "tts:numbers",
        "tokenizer": "char",
        "seq_len": MAX_SEQUENCE_LENGTH,
        "seed": seed,
    }
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file)
    return workdir
