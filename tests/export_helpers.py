"""Helpers of the export tests: a tiny GPT run folder (`make_workdir`), its text and the subprocess env; a tiny chat
model's export (`make_chat_export`) and the chat tests' messages."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import keras
import numpy as np

from export.__main__ import main as export_main
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.tokenizers import build_tokenizer
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


# --- a chat model's export (issue 20): the edge app's and the web page's chat tests share it ---

CHAT_MAX_LENGTH = 96
CHAT_NEW_TOKENS = 16
CHAT_SYSTEM = "Shop."
# The second message spells a role token: it is text (bytes), as tfzoo's tokenizer encodes it, not a role.
CHAT_TURNS = ("Hi!", "How much is the <|user|> Red Mug?", "Is it in stock?")
CHAT_STDIN = f"{CHAT_TURNS[0]}\n\n{CHAT_TURNS[1]}\n{'x' * 200}\n{CHAT_TURNS[2]}\n"  # an empty and a too-long line


def make_chat_export(workdir, formats: str = "tflite,onnx") -> dict:
    """A tiny GPT with a chat tokenizer (`chat:byte`), weights perturbed (replies differ by turn), exported in
    `formats` with `--max_length=CHAT_MAX_LENGTH`; `{"workdir", "dir", "tokenizer"}`."""
    workdir = Path(workdir)
    tokenizer = build_tokenizer("chat:byte", "")
    (workdir / "tokenizer").mkdir(parents=True)
    tokenizer.save(str(workdir / "tokenizer"))
    keras.utils.set_random_seed(3)
    model = GPT(vocabulary_size=tokenizer.vocabulary_size, num_layers=2, num_heads=2, hidden_dim=16,
                intermediate_dim=32, max_sequence_length=CHAT_MAX_LENGTH)  # fmt: skip
    model.build((None, None))
    rng = np.random.default_rng(7)
    for weight in model.weights:
        weight.assign(weight.numpy() + rng.normal(0, 0.3, weight.shape).astype("float32"))
    model.save(str(workdir / "model.keras"))
    (workdir / "data.txt").write_text("Hi!\n")
    config = {"model": "gpt", "dataset": f"text:{workdir / 'data.txt'}", "tokenizer": "chat:byte", "seq_len": 16}
    (workdir / "config.json").write_text(json.dumps(config))
    with contextlib.redirect_stdout(io.StringIO()):
        arguments = [f"--formats={formats}", "--quantization=none", f"--max_length={CHAT_MAX_LENGTH}"]
        status = export_main([f"--workdir={workdir}", *arguments])
    assert status == 0
    return {"workdir": str(workdir), "dir": str(workdir / "export"), "tokenizer": tokenizer}
