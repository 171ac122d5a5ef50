"""`python -m tfzoo.convert gpt2`: parity with Hugging Face transformers and keras-hub, and bad input.

Tiny random checkpoints are made here by the reference implementations
(tests/gpt2_reference.py); the converted tfzoo GPT must give the same logits
(within 1e-4) and the same greedy continuations.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from gpt2_reference import ARCH, NEW_TOKENS, bpe_files, convert_error, greedy, hf_checkpoint, load, run_cli
from tfzoo.convert import ConvertError, convert_gpt2
from tfzoo.convert import main as convert_main
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.generate import main as generate_main

pytestmark = pytest.mark.reference

PROMPTS = ("The quick brown", "def add(a, b):", "Héllo")


def _until_eos(tokens, eos_id):
    return tokens[: tokens.index(eos_id) + 1] if eos_id in tokens else tokens


@pytest.fixture(scope="module")
def vocabulary_size(tmp_path_factory):
    return bpe_files(str(tmp_path_factory.mktemp("vocab")))


@pytest.fixture(scope="module")
def hf(tmp_path_factory, vocabulary_size):
    """(source dir, torch model, converted workdir): converted with the CLI."""
    source = str(tmp_path_factory.mktemp("hf"))
    model = hf_checkpoint(source, vocabulary_size)
    workdir = str(tmp_path_factory.mktemp("out") / "gpt2")
    code, out, err = run_cli(convert_main, ["gpt2", f"--source={source}", f"--workdir={workdir}"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["format"] == "huggingface" and summary["tokenizer"] == "bpe"
    assert summary["num_parameters"] == sum(p.numel() for p in model.parameters())  # tied: wte counted once
    return source, model, workdir


def test_workdir_layout(hf, vocabulary_size):
    _, _, workdir = hf
    assert sorted(os.listdir(workdir)) == ["config.json", "model.keras", "tokenizer"]
    config = json.load(open(os.path.join(workdir, "config.json"), encoding="utf-8"))
    assert (config["model"], config["num_layers"], config["hidden_dim"], config["activation"]) == (
        "gpt",
        ARCH["n_layer"],
        ARCH["n_embd"],
        "gelu_tanh",
    )
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    assert tokenizer.type_name == "bpe" and tokenizer.pad_id == tokenizer.eos_id == vocabulary_size - 1
    model = load(workdir)
    assert model.pad_id == vocabulary_size - 1 and model.max_sequence_length == ARCH["n_positions"]


def test_logits_match_hugging_face(hf, vocabulary_size):
    _, reference, workdir = hf
    model = load(workdir)
    ids = np.random.default_rng(0).integers(0, vocabulary_size, (3, ARCH["n_positions"]))
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    actual = np.asarray(model(ids))
    assert np.abs(expected).max() > 1.0  # random weights give far-from-uniform logits: a real comparison
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


def test_greedy_continuations_match_hugging_face(hf):
    _, reference, workdir = hf
    model = load(workdir)
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    eos = tokenizer.eos_id
    prompts = [tokenizer.encode(prompt).tolist() for prompt in PROMPTS]
    expected = []
    for ids in prompts:
        with torch.no_grad():
            out = reference.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos,
            )
        expected.append(_until_eos(out[0, len(ids) :].tolist(), eos))
    assert greedy(model, prompts, eos) == expected
    assert len(set(map(tuple, expected))) == len(PROMPTS)  # the prompts matter: not one constant continuation
    code, text, err = run_cli(
        generate_main,
        [f"--workdir={workdir}", f"--prompt={PROMPTS[0]}", f"--max_new_tokens={NEW_TOKENS}", "--no_jit_compile"],
    )
    assert code == 0, err
    assert text == PROMPTS[0] + tokenizer.decode(expected[0]) + "\n"


def test_without_vocabulary_the_workdir_speaks_token_ids(tmp_path, vocabulary_size):
    source = str(tmp_path / "hf")
    reference = hf_checkpoint(source, vocabulary_size, tokenizer=False, seed=3)
    workdir = str(tmp_path / "out")
    assert convert_gpt2(source, workdir)["tokenizer"] == "ids"
    ids = [5, 17, 260]
    with torch.no_grad():
        out = reference.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, 3, dtype=torch.long),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            pad_token_id=vocabulary_size - 1,
        )
    expected = _until_eos(out[0, 3:].tolist(), vocabulary_size - 1)
    code, text, err = run_cli(
        generate_main,
        [f"--workdir={workdir}", "--prompt=5 17 260", f"--max_new_tokens={NEW_TOKENS}", "--no_jit_compile"],
    )
    assert code == 0, err
    expected_text = "5 17 260" + "".join(f" {t}" for t in expected if t != vocabulary_size - 1)
    assert text.strip() == expected_text


def test_tokenizer_saved_by_transformers_5_comes_along(tmp_path, hf):
    from transformers import GPT2Tokenizer

    source = shutil.copytree(hf[0], tmp_path / "hf")
    reference = GPT2Tokenizer(str(source / "vocab.json"), str(source / "merges.txt"))
    (source / "vocab.json").unlink()
    (source / "merges.txt").unlink()
    reference.save_pretrained(str(source))  # tokenizer.json + tokenizer_config.json only
    assert convert_gpt2(str(source), str(tmp_path / "out"))["tokenizer"] == "bpe"
    assert load_tokenizer(str(tmp_path / "out" / "tokenizer")) == load_tokenizer(os.path.join(hf[2], "tokenizer"))


def test_untied_head_is_kept(tmp_path, vocabulary_size):
    source = str(tmp_path / "hf")
    reference = hf_checkpoint(source, vocabulary_size, tie_word_embeddings=False)
    convert_gpt2(source, str(tmp_path / "out"))
    model = load(str(tmp_path / "out"))
    assert not model.tie_embeddings
    ids = np.arange(20)[None] * 7 % vocabulary_size
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(np.asarray(model(ids)), expected, atol=1e-4, rtol=0)


def test_not_a_gpt2_directory(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = convert_error(empty, tmp_path / "out")
    assert code == 2 and err.startswith("error: ") and "is not a GPT-2 checkpoint: no config.json" in err
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text('{"model_type": "bert", "vocab_size": 10}')
    code, err = convert_error(bert, tmp_path / "out")
    assert code == 2 and f"{bert}/config.json: model_type is 'bert', not 'gpt2'" in err
    (bert / "config.json").write_text('{"class_name": "BertBackbone", "config": {}}')
    with pytest.raises(ConvertError, match="a keras-hub BertBackbone, not a GPT2Backbone"):
        convert_gpt2(str(bert), str(tmp_path / "out"))
    with pytest.raises(ConvertError, match="is not a directory"):
        convert_gpt2(str(tmp_path / "missing"), str(tmp_path / "out"))


def test_mismatched_shapes_and_missing_tensors(tmp_path, hf):
    source = shutil.copytree(hf[0], tmp_path / "hf")
    config_path = source / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "n_embd": 32}))
    code, err = convert_error(source, tmp_path / "out")
    assert code == 2
    expected = (
        f"{source}/model.safetensors: wte.weight has shape ({config['vocab_size']}, 16), but config.json implies ("
    )
    assert expected in err
    config_path.write_text(json.dumps({**config, "n_layer": 3}))
    with pytest.raises(ConvertError, match=r"model.safetensors: tensor 'h.2.attn.c_attn.weight' is missing"):
        convert_gpt2(str(source), str(tmp_path / "out"))
    config_path.write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 1}))
    with pytest.raises(ConvertError, match=r"wte.weight has shape \(\d+, 16\), but config.json implies"):
        convert_gpt2(str(source), str(tmp_path / "out"))
    config_path.write_text(json.dumps({**config, "activation_function": "silu"}))
    with pytest.raises(ConvertError, match="config.json: activation_function 'silu' is not supported"):
        convert_gpt2(str(source), str(tmp_path / "out"))


def test_truncated_or_missing_weights(tmp_path, hf):
    source = shutil.copytree(hf[0], tmp_path / "hf")
    weights = source / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    code, err = convert_error(source, tmp_path / "out")
    assert code == 2 and f"{weights}: not a readable safetensors file (truncated or corrupt?)" in err
    weights.unlink()
    code, err = convert_error(source, tmp_path / "out")
    assert code == 2 and f"{source} has no model.safetensors" in err


def test_existing_workdir_needs_overwrite(tmp_path, hf):
    workdir = tmp_path / "out"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    with pytest.raises(ConvertError, match="already exists and is not empty; pass --overwrite"):
        convert_gpt2(hf[0], str(workdir))
    with pytest.raises(ConvertError, match="is not a tfzoo workdir .*not overwriting"):
        convert_gpt2(hf[0], str(workdir), overwrite=True)
    assert (workdir / "notes.txt").read_text() == "mine"
    shutil.copytree(hf[2], workdir, dirs_exist_ok=True)
    assert convert_gpt2(hf[0], str(workdir), overwrite=True)["format"] == "huggingface"
    assert not (workdir / "notes.txt").exists()


def test_eos_outside_a_small_vocabulary_is_a_warning_and_no_eos(tmp_path):
    # transformers' GPT2Config keeps eos 50256 for a 96-token model and generates with it (never stopping).
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(5)
    config = GPT2Config(vocab_size=96, **ARCH)
    assert config.eos_token_id == 50256
    reference = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.3)
    source, workdir = str(tmp_path / "hf"), str(tmp_path / "out")
    reference.save_pretrained(source)
    code, out, err = run_cli(convert_main, ["gpt2", f"--source={source}", f"--workdir={workdir}"])
    assert code == 0, err
    assert err.count("warning: ") == 1 and "eos_token_id 50256 is outside the vocabulary [0, 96)" in err
    assert json.loads(out)["tokenizer"] == "ids"
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    assert tokenizer.eos_id is None and tokenizer.special_tokens == {}
    with torch.no_grad():
        expected = reference.generate(
            torch.tensor([[5, 17, 60]]),
            attention_mask=torch.ones(1, 3, dtype=torch.long),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            pad_token_id=0,
        )[0, 3:].tolist()
    assert len(expected) == NEW_TOKENS  # no end-of-text id: it runs to max_new_tokens
    code, text, err = run_cli(
        generate_main,
        [f"--workdir={workdir}", "--prompt=5 17 60", f"--max_new_tokens={NEW_TOKENS}", "--no_jit_compile"],
    )
    assert code == 0, err
    assert text.strip() == "5 17 60" + "".join(f" {t}" for t in expected)
