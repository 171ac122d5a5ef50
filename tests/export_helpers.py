"""Helpers of the export tests: a tiny GPT run folder (`make_workdir`), its text and the subprocess env."""

from __future__ import annotations

import json
import os

import keras

from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.models.gpt import GPT

TEXT = (
    "def add(a, b):\n    return a + b\n\n"
    "class Parser(object):\n    def __init__(self):\n        self.items = []\n\n"
    "import os\nimport sys\n\n"
    "def main():\n    print(add(1, 2))\n\n"
) * 6
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", KERAS_BACKEND="tensorflow")


def make_workdir(
    workdir,
    *,
    hidden_dim: int = 32,
    intermediate_dim: int = 64,
    embedding_scale: float = 50.0,
    max_sequence_length: int = 32,
) -> str:
    """A tiny run folder as `python -m tfzoo.train` leaves it (config.json, model.keras, tokenizer/).

    The model is not trained: its token embedding is scaled up (by `embedding_scale`, 50: std 1 instead
    of 0.02) so that its logits are spread out, like a trained model's, and no
    near-tie lets float noise flip a token between runtimes; its position table
    too (std ~0.18 instead of 0.02), so that continuations move with the
    position instead of repeating one token.
    """
    workdir = str(workdir)
    os.makedirs(workdir, exist_ok=True)
    data_path = os.path.join(workdir, "data.txt")
    with open(data_path, "w", encoding="utf-8") as file:
        file.write(TEXT)
    tokenizer = CharTokenizer.from_text(TEXT)
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    keras.utils.set_random_seed(0)
    model = GPT(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=2,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        max_sequence_length=max_sequence_length,
    )
    model.build((None, None))
    embeddings = model.token_embedding.embeddings
    embeddings.assign(embeddings * embedding_scale)
    positions = model.position_embedding.embeddings
    positions.assign(positions * 10.0)
    model.save(os.path.join(workdir, "model.keras"))
    config = {"model": "gpt", "dataset": f"text:{data_path}", "tokenizer": "char", "seq_len": 16}
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file)
    return workdir


def perturb_workdir(workdir, scale: float = 0.4, seed: int = 0) -> str:
    """Adds seeded noise (std `scale`) to every weight of the workdir's `model.keras`, in place.

    An untrained tiny GPT soon repeats one token; with its weights perturbed its greedy
    continuations are long, varied and depend on the prompt, so a parity check on it means
    something.
    """
    import numpy as np

    import tfzoo.models  # noqa: F401 (registers the model classes for loading)

    path = os.path.join(str(workdir), "model.keras")
    model = keras.models.load_model(path)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(weight.numpy() + rng.normal(0.0, scale, weight.shape).astype("float32"))
    model.save(path)
    return str(workdir)
