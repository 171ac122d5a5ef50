"""Tiny random GPT-2 checkpoints made by the reference implementations, for the conversion tests.

`bpe_files(directory)` writes a small byte-level BPE (`vocab.json`,
`merges.txt`: the 256 byte symbols, merges learned from `CORPUS`,
`<|endoftext|>` last); `hf_checkpoint` saves a Hugging Face `GPT2LMHeadModel`
(every weight random, biases and norms included) with it; `keras_hub_preset`
saves a keras-hub `GPT2Backbone` preset the same way.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os

import numpy as np

from tfzoo.data.bpe_tokenizer import SPLIT_PATTERN, bytes_to_unicode

CORPUS = (
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!\n"
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5\n"
    "Héllo wörld, naïve café. It's 2024 and we're here, they'll say.\n"
) * 3
NUM_MERGES = 60
ARCH = {"n_positions": 32, "n_embd": 16, "n_layer": 2, "n_head": 2}
NEW_TOKENS = 12  # greedy continuations compared per prompt


def learn_merges(text: str, num_merges: int) -> list[tuple[str, str]]:
    """Byte-level BPE merges learned from `text` (most frequent adjacent pair first; ties by the pair)."""
    import regex

    byte_encoder = bytes_to_unicode()
    words = collections.Counter(
        tuple(byte_encoder[b] for b in w.encode("utf-8")) for w in regex.findall(SPLIT_PATTERN, text)
    )
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs.items(), key=lambda item: (item[1], item[0]))[0]
        merges.append(best)
        merged = {}
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    return merges


def bpe_files(directory: str, vocab_name: str = "vocab.json") -> int:
    """Writes `vocab_name` and `merges.txt` into `directory`; returns the vocabulary size."""
    os.makedirs(directory, exist_ok=True)
    merges = learn_merges(CORPUS, NUM_MERGES)
    symbols = [bytes_to_unicode()[b] for b in sorted(bytes_to_unicode())]
    symbols += [a + b for a, b in merges] + ["<|endoftext|>"]
    with open(os.path.join(directory, vocab_name), "w", encoding="utf-8") as file:
        json.dump({s: i for i, s in enumerate(symbols)}, file, ensure_ascii=False)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as file:
        file.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return len(symbols)


def hf_checkpoint(directory: str, vocabulary_size: int, tokenizer: bool = True, seed: int = 0, **overrides):
    """Saves a random Hugging Face GPT-2 (and its BPE files when `tokenizer`); returns the torch model."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    eos = vocabulary_size - 1
    config = GPT2Config(vocab_size=vocabulary_size, bos_token_id=eos, eos_token_id=eos, **{**ARCH, **overrides})
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            scale = 0.3 if "wte" in name or "wpe" in name else 0.2
            parameter.copy_(torch.randn_like(parameter) * scale + (1.0 if name.endswith("ln_1.weight") else 0.0))
    model.save_pretrained(directory)
    if tokenizer:
        assert bpe_files(directory) == vocabulary_size
    return model


def keras_hub_preset(directory: str, vocabulary_size: int, tokenizer: bool = True, seed: int = 0):
    """Saves a random keras-hub GPT2Backbone preset (with its GPT2Tokenizer when `tokenizer`); returns the backbone."""
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size,
        num_layers=ARCH["n_layer"],
        num_heads=ARCH["n_head"],
        hidden_dim=ARCH["n_embd"],
        intermediate_dim=4 * ARCH["n_embd"],
        max_sequence_length=ARCH["n_positions"],
        dropout=0.0,
    )
    rng = np.random.default_rng(seed)
    for variable in backbone.weights:
        offset = 1.0 if "gamma" in variable.path else 0.0  # layer norm scales near 1
        variable.assign(rng.normal(0.0, 0.2, variable.shape).astype("float32") + offset)
    backbone.save_to_preset(directory)
    if tokenizer:
        files = os.path.join(directory, "bpe")
        bpe_files(files)
        with open(os.path.join(files, "vocab.json"), encoding="utf-8") as file:
            vocabulary = json.load(file)
        gpt2_tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=os.path.join(files, "merges.txt"))
        gpt2_tokenizer.save_to_preset(directory)
    return backbone


def load(workdir):
    """The converted workdir's `model.keras`."""
    import keras

    import tfzoo.models.registry  # noqa: F401 (registers the zoo's classes for loading)

    return keras.saving.load_model(os.path.join(workdir, "model.keras"), compile=False)


def run_cli(main, argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def greedy(model, prompts, eos_id):
    """tfzoo's in-graph greedy decoder, one batch: per prompt, the new tokens up to and including end-of-text."""
    from tfzoo.decoding.generator import Generator

    width = max(map(len, prompts))
    generator = Generator(model, max_length=width + NEW_TOKENS, eos_ids=(eos_id,), pad_id=eos_id, jit_compile=False)
    token_ids = np.asarray([p + [eos_id] * (width - len(p)) for p in prompts], np.int32)
    out = generator(token_ids, np.asarray([len(p) for p in prompts], np.int32), max_new_tokens=NEW_TOKENS)
    return [out["sequences"][row, len(p) : out["sequence_lengths"][row]].tolist() for row, p in enumerate(prompts)]


def convert_error(source, workdir):
    """`python -m tfzoo.convert`'s exit code and stderr; the workdir must not exist afterwards."""
    from tfzoo.convert import main as convert_main

    code, _, err = run_cli(convert_main, ["gpt2", f"--source={source}", f"--workdir={workdir}"])
    assert not os.path.exists(workdir)
    return code, err
