"""ONNX Runtime GenAI bundles (`--formats=genai`): the runtime's own search gives the Keras model's tokens.

The model is a tiny GPT with perturbed weights (long, varied, prompt-dependent continuations); the
bundle runs in `onnxruntime_genai` (its greedy, penalties and beam search loops, not ours).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from export.errors import ExportError
from export_helpers import make_workdir, perturb_workdir


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from export.pipeline import export_workdir

    workdir = perturb_workdir(make_workdir(tmp_path_factory.mktemp("genai") / "run"))
    report = export_workdir(workdir, formats=["genai"], strategy="greedy", log=lambda line: None)
    return workdir, report


@pytest.fixture(scope="module")
def keras_runtime(exported):
    from export.trained_model import inspect_workdir
    from tfzoo.runtimes.keras import KerasRuntime

    workdir, report = exported
    trained = inspect_workdir(workdir)
    trained.load_model()
    return KerasRuntime(trained.model, report["model"])


def test_report_records_the_bundle_and_its_parity(exported):
    workdir, report = exported
    artefact = report["artefacts"]["genai"]
    assert report["passed"], report["failures"]
    assert artefact["parity"]["passed"]
    assert set(artefact["parity"]["generate"]) == {"greedy", "greedy_penalties", "beam"}
    folder = os.path.join(workdir, "export", artefact["path"])
    assert artefact["size_bytes"] == sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    with open(os.path.join(folder, "genai_config.json"), encoding="utf-8") as file:
        config = json.load(file)["model"]
    assert config["type"] == "decoder" and config["context_length"] == report["model"]["max_length"]
    assert config["vocab_size"] == report["model"]["vocabulary_size"]
    assert config["pad_token_id"] == report["model"]["pad_id"]
    assert artefact["inputs"][:2] == ["input_ids", "attention_mask"]  # no position_ids: from the mask


def _batch(rng, rows: int, vocabulary: int):
    lengths = rng.integers(1, 10, size=rows).astype(np.int32)
    token_ids = np.zeros((rows, int(lengths.max())), np.int32)  # right-padded with the pad id 0
    for row, length in enumerate(lengths):
        token_ids[row, :length] = rng.integers(2, vocabulary, length)
    return token_ids, lengths


CASES = {
    "greedy": ("greedy", {}),
    "penalties": ("greedy", {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2}),
    "beam": ("beam", {"length_penalty": 0.0}),
    "beam_penalties": ("beam", {"length_penalty": 0.0, "no_repeat_ngram_size": 3, "repetition_penalty": 1.2}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_search_matches_keras_on_right_padded_batches(exported, keras_runtime, case):
    from export.genai_export import GenaiRunner

    workdir, report = exported
    runner = GenaiRunner(os.path.join(workdir, "export", "genai"))
    strategy, knobs = CASES[case]
    rng = np.random.default_rng(sorted(CASES).index(case))
    continuations = set()
    for _ in range(3):
        token_ids, lengths = _batch(rng, 5, report["model"]["vocabulary_size"])
        want, want_lengths, _ = keras_runtime.generate(token_ids, lengths, 18, strategy=strategy, **knobs)
        got, got_lengths = runner.generate(token_ids, lengths, 18, strategy=strategy, beam_size=4, **knobs)
        for row, length in enumerate(lengths):
            expected = want[row, : want_lengths[row]].tolist()
            assert got[row, : got_lengths[row]].tolist() == expected, (case, row)
            continuations.add(tuple(expected[length:]))
    assert len(continuations) >= 12  # the prompts lead to different continuations: a real comparison
    assert max(len(set(c)) for c in continuations) >= 5


def test_decoder_graph_grows_the_cache_by_the_tokens_run(exported):
    import onnxruntime as ort

    workdir, report = exported
    info = report["model"]
    session = ort.InferenceSession(os.path.join(workdir, "export", "genai", "model.onnx"))
    layers, heads, head_dim = info["num_layers"], info["num_heads"], info["head_dim"]
    feeds = {"input_ids": np.array([[5, 6, 7]], np.int32), "attention_mask": np.ones((1, 3), np.int32)}
    for i in range(layers):
        for part in ("key", "value"):
            feeds[f"past_key_values.{i}.{part}"] = np.zeros((1, heads, 0, head_dim), np.float32)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    assert outputs["logits"].shape == (1, 3, info["vocabulary_size"])
    assert outputs["present.0.key"].shape == (1, heads, 3, head_dim)
    assert np.all(outputs["logits"][..., info["banned_ids"]] <= -1e8)  # the pad id is never chosen
    step = {"input_ids": np.array([[8]], np.int32), "attention_mask": np.ones((1, 4), np.int32)}
    for i in range(layers):
        for part in ("key", "value"):
            step[f"past_key_values.{i}.{part}"] = outputs[f"present.{i}.{part}"]
    again = dict(zip([o.name for o in session.get_outputs()], session.run(None, step)))
    assert again["present.1.value"].shape == (1, heads, 4, head_dim)
    whole = dict(feeds, input_ids=np.array([[5, 6, 7, 8]], np.int32), attention_mask=np.ones((1, 4), np.int32))
    full = session.run(["logits"], whole)[0]
    np.testing.assert_allclose(again["logits"][0, -1], full[0, -1], atol=1e-4)  # the step equals the whole run


def test_bundles_refuse_models_with_an_encoder(tmp_path):
    from export.pipeline import export_workdir
    from test_export_seq2seq import make_workdir as make_seq2seq_workdir

    workdir = make_seq2seq_workdir(tmp_path / "seq2seq")
    before = sorted(os.listdir(workdir))
    with pytest.raises(ExportError, match="--formats=genai carries decoder-only models") as error:
        export_workdir(workdir, formats=["onnx", "genai"], log=lambda line: None)
    assert "\n" not in str(error.value)
    assert sorted(os.listdir(workdir)) == before  # nothing written


def test_converted_gpt2_bundle_carries_its_bpe_and_decodes_like_hugging_face(tmp_path):
    import onnxruntime_genai as og
    import torch
    from transformers import GPT2Tokenizer

    from export.genai_export import GenaiRunner
    from export.pipeline import export_workdir
    from gpt2_reference import bpe_files, hf_checkpoint
    from tfzoo.convert import convert_gpt2

    source, workdir = str(tmp_path / "hf"), str(tmp_path / "out")
    reference = hf_checkpoint(source, bpe_files(source), seed=5)
    convert_gpt2(source, workdir)
    report = export_workdir(workdir, formats=["genai"], strategy="greedy", max_length=24, log=lambda line: None)
    assert report["passed"], report["failures"]
    folder = os.path.join(workdir, "export", "genai")
    hf_tokenizer = GPT2Tokenizer(f"{source}/vocab.json", f"{source}/merges.txt")
    genai_tokenizer = og.Tokenizer(og.Model(folder))
    texts = ["The quick brown", "def add(a, b):", "Héllo wörld  日本", " spaces\tand\nnewlines"]
    prompts = []
    for text in texts:
        ids = hf_tokenizer.encode(text)
        assert [int(i) for i in genai_tokenizer.encode(text)] == ids, text
        assert genai_tokenizer.decode(ids) == hf_tokenizer.decode(ids) == text
        prompts.append(ids[:8])
    eos = report["model"]["eos_ids"][0]
    lengths = np.asarray([len(p) for p in prompts], np.int32)
    token_ids = np.asarray([p + [eos] * (8 - len(p)) for p in prompts], np.int32)  # GPT-2 pads with eos
    got, got_lengths = GenaiRunner(folder).generate(token_ids, lengths, 12)
    for row, ids in enumerate(prompts):
        with torch.no_grad():
            out = reference.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=12,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos,
            )
        want = out[0].tolist()
        want = want[: want.index(eos, len(ids)) + 1] if eos in want[len(ids) :] else want
        assert got[row, : got_lengths[row]].tolist() == want, row
