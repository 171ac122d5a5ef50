"""A converted GPT-2 exports (SavedModel, TFLite, ONNX) and each artefact gives Hugging Face's greedy tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.pipeline import export_workdir
from export.runtimes import load_runtime
from gpt2_reference import bpe_files, hf_checkpoint
from tfzoo.convert import convert_gpt2
from tfzoo.data.tokenizers import load_tokenizer

pytestmark = pytest.mark.reference

PROMPTS = ("The quick brown", "def add(a, b):", "Héllo")
MAX_LENGTH = 20
RUNTIMES = ("saved_model", "tflite", "onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt2")
    reference = hf_checkpoint(str(root / "hf"), bpe_files(str(root / "hf")), seed=5)
    workdir = str(root / "out")
    assert convert_gpt2(str(root / "hf"), workdir)["tokenizer"] == "bpe"
    log = []
    report = export_workdir(
        workdir, formats=RUNTIMES, quantization=("none",), strategy="greedy", max_length=MAX_LENGTH, log=log.append
    )
    return workdir, reference, report, log


def test_every_artefact_gives_the_source_models_greedy_tokens(exported):
    workdir, reference, report, _ = exported
    tokenizer = load_tokenizer(f"{workdir}/tokenizer")
    eos = tokenizer.eos_id
    prompts = [tokenizer.encode(p).tolist() for p in PROMPTS]
    width = max(map(len, prompts))
    new_tokens = MAX_LENGTH - width
    expected = []
    for ids in prompts:
        with torch.no_grad():
            out = reference.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos,
            )
        tokens = out[0, len(ids) :].tolist()
        expected.append(tokens[: tokens.index(eos) + 1] if eos in tokens else tokens)
    token_ids = np.asarray([p + [eos] * (width - len(p)) for p in prompts], np.int32)
    lengths = np.asarray([len(p) for p in prompts], np.int32)
    for name in RUNTIMES:
        runtime = load_runtime(workdir, name)
        sequences, sequence_lengths, _ = runtime.generate(token_ids, lengths, new_tokens, strategy="greedy")
        actual = [sequences[row, len(p) : sequence_lengths[row]].tolist() for row, p in enumerate(prompts)]
        assert actual == expected, name
        if name == "saved_model":  # text in, text out: keras-hub's BPE in the graph, the same tokens
            completions, _ = runtime.complete(list(PROMPTS), max_new_tokens=new_tokens)
            assert completions == [tokenizer.decode(tokens) for tokens in expected]
    assert report["passed"]
    assert report["model"]["banned_ids"] == []  # pad == eos: nothing banned, so rows can end at end-of-text
    assert report["artefacts"]["saved_model"]["load_imports"] == ["tensorflow", "tensorflow_text"]
    assert "serving_default" not in report["artefacts"]["tflite"]["signatures"]


def test_without_a_vocabulary_serving_default_is_left_out_with_a_warning(tmp_path):
    reference = hf_checkpoint(str(tmp_path / "hf"), 300, tokenizer=False, seed=6)
    workdir = str(tmp_path / "out")
    assert convert_gpt2(str(tmp_path / "hf"), workdir)["tokenizer"] == "ids"
    log = []
    report = export_workdir(
        workdir,
        formats=("saved_model",),
        quantization=("none",),
        strategy="greedy",
        max_length=MAX_LENGTH,
        log=log.append,
    )
    message = "not exported: no in-graph ops for tokenizer type 'ids'"
    assert report["model"]["serving_default"] == message and message in log
    signatures = report["artefacts"]["saved_model"]["signatures"]
    assert "serving_default" not in signatures and {"generate", "prefill", "decode"} <= set(signatures)
    prompt = [5, 17, 260, 3]
    with torch.no_grad():
        out = reference.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, 4, dtype=torch.long),
            max_new_tokens=8,
            do_sample=False,
            pad_token_id=299,
        )
    expected = out[0, 4:].tolist()
    expected = expected[: expected.index(299) + 1] if 299 in expected else expected
    sequences, lengths, _ = load_runtime(workdir, "saved_model").generate(
        np.asarray([prompt], np.int32), [4], 8, strategy="greedy"
    )
    assert sequences[0, 4 : lengths[0]].tolist() == expected
