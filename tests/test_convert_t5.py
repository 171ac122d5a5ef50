"""`python -m tfzoo.convert t5`: parity with transformers' T5ForConditionalGeneration and T5Tokenizer, and bad input.

Tiny random T5 and T5 v1.1 folders are made by transformers itself
(tests/t5_reference.py). The converted tfzoo `Transformer` must give the same
encoder output and logits (within 1e-4), the same greedy and beam-4 tokens as
`T5ForConditionalGeneration.generate` (also with n-gram blocking and, greedy,
the repetition penalty), and the tokenizer the same ids as `T5Tokenizer`.

The two mean the same thing with these settings: tfzoo bans `<pad>` and
`<unk>` (the start token and the unknown token) and takes the log-softmax of
the processed logits; transformers' beam search processes log-probabilities,
so its reference run gets a last processor that bans the same ids and
normalizes again (`SameAsTfzoo`). The length penalty is transformers' form
(`sum / len**alpha`, tfzoo's "hf"), and tfzoo's exact stopping rule is
transformers' `early_stopping="never"`.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import torch

from gpt2_reference import load, run_cli
from t5_reference import SOURCES, hf_tokenizer, t5_checkpoint
from tfzoo.convert import main as convert_main
from tfzoo.convert_t5 import ConvertError, convert_t5
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.generate import main as generate_main

pytestmark = pytest.mark.reference

MAX_LENGTH = 64  # --max_sequence_length of the conversions
NEW_TOKENS = 12
BANNED = (0, 2)  # <pad> (the decoder start) and <unk>: what tfzoo never emits
TEXTS = SOURCES + ("", "  spaces   and\ttabs\n", "ｆｕｌｌ width ①", "unknown QQQ xyz", "dog.dog,dog")


def _convert(source: str, workdir: str, *flags: str) -> dict:
    code, out, err = run_cli(
        convert_main,
        ["t5", f"--source={source}", f"--workdir={workdir}", f"--max_sequence_length={MAX_LENGTH}", *flags],
    )
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module", params=["t5", "t5_v1_1"])
def converted(request, tmp_path_factory):
    """(kind, source dir, torch model, converted workdir, summary).

    v1.1 has 6 unused embedding rows and, as flan-T5-small, heads narrower than d_model / num_heads (6 x 8 over 32).
    """
    root = tmp_path_factory.mktemp(request.param)
    v1_1 = request.param == "t5_v1_1"
    source = str(root / "hf")
    reference = t5_checkpoint(source, v1_1=v1_1, vocab_size=87 if v1_1 else None, **({"num_heads": 6} if v1_1 else {}))
    workdir = str(root / "out")
    summary = _convert(source, workdir)
    return request.param, source, reference, workdir, summary


def _sources(tokenizer, texts=SOURCES):
    rows = [tokenizer(text).input_ids for text in texts]
    width = max(map(len, rows))
    ids = np.asarray([row + [0] * (width - len(row)) for row in rows], np.int64)
    lengths = np.asarray([len(row) for row in rows], np.int64)
    return ids, lengths


def test_workdir_and_architecture(converted):
    kind, source, reference, workdir, summary = converted
    assert sorted(os.listdir(workdir)) == ["config.json", "model.keras", "tokenizer"]
    assert summary["model"] == "Transformer" and summary["tokenizer"] == "sentencepiece"
    assert summary["num_parameters"] == sum(p.numel() for p in reference.parameters())
    model = load(workdir)
    expected = {
        "t5": dict(activation="relu", tie_embeddings=True, scale_decoder_output=True),
        "t5_v1_1": dict(activation="geglu_tanh", tie_embeddings=False, scale_decoder_output=False),
    }[kind]
    assert {name: getattr(model, name) for name in expected} == expected
    assert (model.norm, model.use_bias, model.scale_queries, model.scale_embeddings) == ("rms", False, False, False)
    assert (model.position, model.decoder_start_id, model.max_sequence_length) == ("relative", 0, MAX_LENGTH)
    config = json.load(open(os.path.join(workdir, "config.json"), encoding="utf-8"))
    assert config["model"] == "transformer" and config["converted_from"] == os.path.abspath(source)


def test_encoder_output_and_logits_match_transformers(converted):
    _, source, reference, workdir, summary = converted
    model = load(workdir)
    ids, lengths = _sources(hf_tokenizer(source))
    mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
    targets = np.random.default_rng(0).integers(0, summary["vocabulary_size"], (len(ids), 10))
    targets[:, 0] = 0
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask.astype(np.int64)),
            decoder_input_ids=torch.tensor(targets),
        )
    memory = np.asarray(model.encode(ids, lengths))
    np.testing.assert_allclose(memory[mask], expected.encoder_last_hidden_state.numpy()[mask], atol=1e-4, rtol=0)
    logits = np.asarray(model({"source_ids": ids, "target_ids": targets, "source_lengths": lengths}))
    assert np.abs(expected.logits.numpy()).max() > 1.0  # far from uniform: a real comparison
    np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4, rtol=0)


def test_tokenizer_ids_match_t5_tokenizer(converted):
    _, source, _, workdir, summary = converted
    reference = hf_tokenizer(source)
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    assert tokenizer.vocabulary_size == summary["vocabulary_size"]
    assert (tokenizer.pad_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2)
    for text in TEXTS:
        assert tokenizer.encode(text).tolist() == reference(text).input_ids, text
    sentinels = [f"<extra_id_{i}>" for i in (0, 7)]
    assert [tokenizer.vocabulary.index(s) for s in sentinels] == reference.convert_tokens_to_ids(sentinels)
    for text in SOURCES:
        ids = reference(text).input_ids
        assert tokenizer.decode(ids) == reference.decode(ids, skip_special_tokens=True)


def test_the_apps_tokenizer_json_gives_the_same_ids(converted):
    from tokenizers import Tokenizer

    from tfzoo.data.hf_tokenizer import hf_tokenizer_json

    tokenizer = load_tokenizer(os.path.join(converted[3], "tokenizer"))
    apps = Tokenizer.from_str(json.dumps(hf_tokenizer_json(tokenizer)))  # the export's hf_tokenizer.json
    for text in (*TEXTS, "a <extra_id_0> b"):  # sentinels in the text are not parsed, as in tfzoo
        assert apps.encode(text).ids == tokenizer.encode(text).tolist(), text


class SameAsTfzoo:
    """A last transformers logits processor: ban tfzoo's banned ids, then normalize (tfzoo's log-softmax)."""

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, list(BANNED)] = -float("inf")
        return torch.log_softmax(scores, dim=-1)


def _hf_generate(reference, ids, lengths, **options):
    from transformers import LogitsProcessorList

    results = []
    for row, length in zip(ids, lengths):
        with torch.no_grad():
            out = reference.generate(
                torch.tensor(row[None, :length]),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                logits_processor=LogitsProcessorList([SameAsTfzoo()]),
                **options,
            )
        tokens = out[0, 1:].tolist()  # after the decoder start token
        results.append(tokens[: tokens.index(1) + 1] if 1 in tokens else tokens)
    return results


def _tfzoo_generate(model, ids, lengths, strategy, **knobs):
    from tfzoo.kinds import kind_of

    generator = kind_of(model).generator(
        max_length=NEW_TOKENS + 1,
        strategy=strategy,
        beam_size=4,
        eos_ids=(1,),
        banned_ids=BANNED,
        pad_id=0,
        jit_compile=False,
    )
    batch = len(ids)
    out = generator(
        np.zeros([batch, 1], np.int32),
        np.ones([batch], np.int32),
        max_new_tokens=NEW_TOKENS,
        source_ids=ids,
        source_lengths=lengths,
        **knobs,
    )
    return [out["sequences"][row, 1 : out["sequence_lengths"][row]].tolist() for row in range(batch)]


@pytest.mark.parametrize(
    "strategy, knobs, hf_options",
    [
        ("greedy", {}, {}),
        (
            "greedy",
            dict(no_repeat_ngram_size=2, repetition_penalty=1.3),
            dict(no_repeat_ngram_size=2, repetition_penalty=1.3),
        ),
        ("beam", dict(length_penalty=1.0), dict(num_beams=4, length_penalty=1.0, early_stopping="never")),
        (
            "beam",
            dict(length_penalty=0.6, no_repeat_ngram_size=2),
            dict(num_beams=4, length_penalty=0.6, no_repeat_ngram_size=2, early_stopping="never"),
        ),
        ("greedy", dict(min_new_tokens=6), dict(min_new_tokens=6)),
        ("sample", dict(top_k=1, temperature=0.7, seed=3), {}),  # one candidate: transformers' greedy tokens
    ],
    ids=["greedy", "greedy-penalties", "beam4", "beam4-ngram", "greedy-min-tokens", "sample-top1"],
)
def test_generation_matches_transformers(converted, strategy, knobs, hf_options):
    _, source, reference, workdir, _ = converted
    model = load(workdir)
    ids, lengths = _sources(hf_tokenizer(source))
    expected = _hf_generate(reference, ids, lengths, **hf_options)
    assert _tfzoo_generate(model, ids.astype(np.int32), lengths.astype(np.int32), strategy, **knobs) == expected
    assert len(set(map(tuple, expected))) == len(SOURCES)  # the source matters: not one constant output


def test_generate_cli_translates_text(converted):
    _, source, reference, workdir, _ = converted
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    ids, lengths = _sources(hf_tokenizer(source), SOURCES[:1])
    expected = _hf_generate(reference, ids, lengths)[0]
    code, text, err = run_cli(
        generate_main,
        [f"--workdir={workdir}", f"--prompt={SOURCES[0]}", f"--max_new_tokens={NEW_TOKENS}", "--no_jit_compile"],
    )
    assert code == 0, err
    assert text.rstrip("\n") == tokenizer.decode(expected)


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    source = str(tmp_path_factory.mktemp("bad") / "hf")
    t5_checkpoint(source, seed=1)
    return source


def _error(source, workdir, *flags):
    code, _, err = run_cli(convert_main, ["t5", f"--source={source}", f"--workdir={workdir}", *flags])
    assert not os.path.exists(workdir)
    assert err.count("\n") == 1 and err.startswith("error: ")
    return code, err


def test_another_model_type_or_no_folder(tmp_path, folder):
    source = shutil.copytree(folder, tmp_path / "hf")
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "model_type": "bart"}))
    code, err = _error(source, tmp_path / "out")
    assert code == 2 and f"{source}/config.json: model_type is 'bart', not 't5'" in err
    (source / "config.json").unlink()
    assert "is not a T5 checkpoint: no config.json" in _error(source, tmp_path / "out")[1]
    assert "is not a directory" in _error(tmp_path / "missing", tmp_path / "out")[1]


def test_missing_and_truncated_files(tmp_path, folder):
    source = shutil.copytree(folder, tmp_path / "hf")
    weights = source / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    code, err = _error(source, tmp_path / "out")
    assert code == 2 and f"{weights}: not a readable safetensors file (truncated or corrupt?)" in err
    weights.unlink()
    assert f"{source} has no model.safetensors" in _error(source, tmp_path / "out")[1]
    shutil.copy(os.path.join(folder, "model.safetensors"), weights)
    spiece = source / "spiece.model"
    spiece.write_bytes(spiece.read_bytes()[:100])
    assert f"{spiece}: not a valid sentencepiece model" in _error(source, tmp_path / "out")[1]
    spiece.unlink()
    assert f"{spiece} not found (T5's SentencePiece model)" in _error(source, tmp_path / "out")[1]


def test_shape_mismatches_and_unsupported_settings(tmp_path, folder):
    source = shutil.copytree(folder, tmp_path / "hf")
    path = source / "config.json"
    config = json.loads(path.read_text())
    cases = [
        (
            {"d_ff": 40},
            r"model.safetensors: encoder.block.0.layer.1.DenseReluDense.wi.weight has shape \(48, 32\), but config",
        ),
        (
            {"num_layers": 3, "num_decoder_layers": 3},
            "model.safetensors: tensor 'encoder.block.2.layer.0.SelfAttention.q.weight' is missing",
        ),
        ({"feed_forward_proj": "gated-gelu"}, "tensor 'encoder.block.0.layer.1.DenseReluDense.wi_0.weight' is missing"),
        ({"d_kv": 4}, r"SelfAttention.q.weight has shape \(32, 32\), but config.json implies \(16, 32\)"),
        ({"num_decoder_layers": 1}, "num_decoder_layers 1 != num_layers 2 is not supported"),
        ({"relative_attention_num_buckets": 64}, "relative_attention_num_buckets 64 is not supported"),
        ({"feed_forward_proj": "gated-silu"}, "feed_forward_proj 'gated-silu' is not supported"),
    ]
    for change, message in cases:
        path.write_text(json.dumps({**config, **change}))
        code, err = _error(source, tmp_path / "out")
        assert code == 2 and re.search(message, err), (change, err)
    path.write_text(json.dumps(config))
    with pytest.raises(ConvertError, match="must be an integer >= 2"):
        convert_t5(str(source), str(tmp_path / "out"), max_sequence_length=1)


def test_vocabulary_larger_than_the_embedding(tmp_path, folder):
    source = shutil.copytree(folder, tmp_path / "hf")
    path = source / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "extra_ids": 12}))
    code, err = _error(source, tmp_path / "out")
    assert code == 2 and f"{source}/spiece.model: " in err
    assert "tokens (73 pieces + 12 extra ids), more than config.json's vocab_size (the embedding) 81" in err


def test_special_ids_outside_a_small_vocabulary_convert_with_a_warning(tmp_path, folder):
    source = shutil.copytree(folder, tmp_path / "hf")
    path = source / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "eos_token_id": 32000, "decoder_start_token_id": 5000}))
    workdir = tmp_path / "out"
    code, out, err = run_cli(convert_main, ["t5", f"--source={source}", f"--workdir={workdir}"])
    assert code == 0, err
    assert err.count("warning: ") == 2 and "eos_token_id 32000 is outside the vocabulary [0, 81)" in err
    assert "decoder_start_token_id 5000 is outside the vocabulary" in err
    model = load(str(workdir))
    assert model.decoder_start_id == 0 and model.max_sequence_length == 512  # T5Tokenizer's pad; the default length


def test_max_sequence_length_is_for_t5(tmp_path, folder):
    code, _, err = run_cli(
        convert_main, ["gpt2", f"--source={folder}", f"--workdir={tmp_path / 'out'}", "--max_sequence_length=8"]
    )
    assert code == 2 and "--max_sequence_length is for t5" in err
