"""LiteRT-LM bundles (`--formats=litertlm`): Google's `litert_lm.Engine` gives the Keras model's greedy tokens.

The model is a tiny GPT with perturbed weights (long, varied, prompt-dependent continuations). The
bundle runs in LiteRT-LM's own engine (its tokenizer, prompt chunking, prefill/decode loop and
sampler), not in ours; the Keras reference is `tfzoo.decoding.Generator`, computed here.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from export.errors import ExportError
from export_helpers import TEXT, make_workdir, perturb_workdir

MAX_LENGTH = 32  # the model's max_sequence_length: prefill_8 and prefill_32
# 1 to 24 tokens: shorter and longer than the smallest prefill chunk (8), one of 9 (the engine prefills all
# but the last token: 8, a whole chunk), one with an unknown character ("x" is not in TEXT), one with two newlines.
PROMPTS = (
    "d",
    "def ",
    "return a ",
    "import os\n",
    "class Parser(o",
    "self.items = []\n\n",
    "x = add(1, 2)\n",
    TEXT[:24],
)
SPLIT_PROMPTS = ("def add(a, b):\n", "class Parser(object):\n", TEXT[40:64], "import os\nimport sys\n")


_GENERATORS = {}


def _keras_greedy(model, tokenizer, text: str, eos_ids=None, banned_ids=None) -> list[int]:
    """The Keras model's greedy continuation of `text` (ending eos dropped), as the export's parity runs it."""
    from tfzoo.decoding.generator import Generator

    ids = tokenizer.encode(text).tolist()
    eos_ids = (tokenizer.eos_id,) if eos_ids is None else tuple(eos_ids)
    banned_ids = (tokenizer.pad_id,) if banned_ids is None else tuple(banned_ids)
    key = (id(model), eos_ids, banned_ids)
    if key not in _GENERATORS:  # one trace per model and ids: every prompt is padded to one width
        _GENERATORS[key] = Generator(
            model, max_length=MAX_LENGTH, strategy="greedy", eos_ids=eos_ids, banned_ids=banned_ids
        )
    padded = np.asarray([ids + [tokenizer.pad_id] * (MAX_LENGTH - 1 - len(ids))], np.int32)
    out = _GENERATORS[key](padded, np.asarray([len(ids)], np.int32), max_new_tokens=_room(ids))
    new = np.asarray(out["sequences"])[0, len(ids) : int(np.asarray(out["sequence_lengths"])[0])].tolist()
    return new[:-1] if new and new[-1] in eos_ids else new


def _room(ids) -> int:
    return min(16, MAX_LENGTH - len(ids))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from export.pipeline import export_workdir

    workdir = perturb_workdir(make_workdir(tmp_path_factory.mktemp("litertlm") / "run"))
    report = export_workdir(
        workdir, formats=["litertlm"], quantization=["none", "int8"], strategy="greedy", log=lambda line: None
    )
    return workdir, report


@pytest.fixture(scope="module")
def trained(exported):
    from export.trained_model import inspect_workdir

    trained = inspect_workdir(exported[0])
    trained.load_model()
    return trained


@pytest.fixture(scope="module")
def runner(exported):
    from export.litertlm_engine import EngineRunner

    workdir, _ = exported
    with EngineRunner(os.path.join(workdir, "export", "gpt.litertlm"), max_length=MAX_LENGTH) as runner:
        yield runner


def test_report_records_the_bundles_their_parity_and_the_engine_benchmark(exported):
    workdir, report = exported
    assert report["passed"], report["failures"]
    assert sorted(os.listdir(os.path.join(workdir, "export"))) == [
        "gpt.int8.litertlm",
        "gpt.litertlm",
        "hf_tokenizer.json",
        "report.json",
        "tokenizer.json",
    ]  # no engine caches, no scratch files beside the bundles
    artefact = report["artefacts"]["litertlm"]
    assert artefact["format"] == "litertlm" and artefact["quantization"] == "none"
    assert artefact["size_bytes"] == os.path.getsize(os.path.join(workdir, "export", "gpt.litertlm"))
    assert artefact["prefill_lengths"] == [8, 32] and artefact["cache_length"] == MAX_LENGTH + 1
    names = ["input_pos", "kv_cache_k_0", "kv_cache_k_1", "kv_cache_v_0", "kv_cache_v_1", "tokens"]
    for signature in ("prefill_8", "prefill_32", "decode"):
        assert artefact["signatures"][signature]["inputs"] == names
        assert artefact["signatures"][signature]["outputs"] == sorted([*names[1:5], "logits"])
    assert "DYNAMIC_UPDATE_SLICE" in artefact["ops"]  # decode writes its one cache slot in place
    assert artefact["llm_metadata"]["stop_tokens"] == report["model"]["eos_ids"]
    assert artefact["llm_metadata"]["suppress_tokens"] == report["model"]["banned_ids"]
    parity = artefact["parity"]
    assert parity["passed"] and parity["failures"] == []
    rows = parity["generate"]["greedy"]["rows"]
    assert [row["prompt_length"] for row in rows] == report["reference"]["lengths"]
    assert max(report["reference"]["lengths"]) > 8  # a parity prompt longer than the smallest chunk
    assert len({row["text"] for row in rows}) == len(rows)  # each prompt continues differently
    benchmark = artefact["benchmark"]
    assert benchmark["prefill_tokens"] == MAX_LENGTH // 2 and benchmark["decode_tokens"] > 0
    assert benchmark["prefill_tokens_per_second"] > 0 and benchmark["decode_tokens_per_second"] > 0
    quantized = report["artefacts"]["litertlm_int8"]
    assert quantized["size_bytes"] < artefact["size_bytes"]
    assert 0.0 <= quantized["parity"]["generate"]["greedy"]["token_agreement"] <= 1.0


def test_engine_greedy_tokens_equal_keras_greedy(trained, runner):
    tokenizer = trained.tokenizer
    continuations = set()
    for text in PROMPTS:
        want = _keras_greedy(trained.model, tokenizer, text)
        got = runner.generate(text, _room(tokenizer.encode(text)))
        assert runner.tokenize(got) == want, text
        assert got == tokenizer.decode(want), text
        continuations.add(tuple(want))
    assert len(continuations) == len(PROMPTS)  # the greedy output varies from prompt to prompt
    assert max(len(c) for c in continuations) >= 8


def test_bundle_tokenizer_gives_tfzoo_ids(trained, runner):
    text = TEXT[:200] + "x\u00e9\n\n\n"  # unknown characters, runs of newlines
    assert runner.tokenize(text) == trained.tokenizer.encode(text).tolist()
    ids = trained.tokenizer.encode(TEXT[:200]).tolist()
    assert runner.detokenize(ids) == TEXT[:200]


@pytest.fixture(scope="module")
def small_chunk_bundles(trained, tmp_path_factory):
    """Bundles with `prefill_8` only, so that the engine splits each longer prompt into chunks of 8
    and right-pads the last: with the padding guard (as exported) and without it."""
    from export.litertlm_export import (
        _hf_tokenizer,
        litertlm_module,
        llm_metadata,
        save_litertlm_saved_model,
        write_litertlm,
    )
    from export.tflite_export import convert_tflite

    folder = tmp_path_factory.mktemp("chunks")
    tokenizer = trained.tokenizer
    tokenizer_path = str(folder / "tokenizer.json")
    with open(tokenizer_path, "w", encoding="utf-8") as file:
        import json

        json.dump(_hf_tokenizer(tokenizer), file)
    metadata = llm_metadata(eos_ids=[tokenizer.eos_id], banned_ids=[tokenizer.pad_id], max_length=MAX_LENGTH)
    paths = {"tokenizer": tokenizer_path}
    for guarded in (True, False):
        module = litertlm_module(trained.model, max_length=MAX_LENGTH, prefill=(8,), route_padding=guarded)
        names = save_litertlm_saved_model(module, str(folder / f"saved_model_{guarded}"))
        assert names == ["prefill_8", "decode"]
        tflite = folder / f"model_{guarded}.tflite"
        tflite.write_bytes(convert_tflite(str(folder / f"saved_model_{guarded}"), names))
        paths[f"tflite_{guarded}"] = str(tflite)
        paths[guarded] = write_litertlm(
            str(folder / f"model_{guarded}.litertlm"),
            tflite_path=str(tflite),
            tokenizer_json_path=tokenizer_path,
            metadata=metadata,
        )
    return paths


def test_prompts_split_into_padded_chunks_decode_like_keras(trained, small_chunk_bundles):
    from export.litertlm_engine import EngineRunner

    tokenizer = trained.tokenizer
    outputs = {}
    for guarded in (True, False):
        with EngineRunner(small_chunk_bundles[guarded], max_length=MAX_LENGTH) as runner:
            outputs[guarded] = [runner.generate(t, _room(tokenizer.encode(t))) for t in SPLIT_PROMPTS]
    want = [tokenizer.decode(_keras_greedy(trained.model, tokenizer, text)) for text in SPLIT_PROMPTS]
    assert all(len(tokenizer.encode(text)) > 9 for text in SPLIT_PROMPTS)  # two chunks at least
    assert outputs[True] == want
    # Without the guard the engine's padding (token 0 at position 0) is summed into slot 0: tokens diverge.
    assert sum(got != expected for got, expected in zip(outputs[False], want)) >= len(SPLIT_PROMPTS) // 2


def test_metadata_stop_and_suppressed_tokens_act_as_keras_eos_and_banned_ids(trained, small_chunk_bundles, tmp_path):
    from export.litertlm_engine import EngineRunner
    from export.litertlm_export import llm_metadata, write_litertlm

    tokenizer, model, text = trained.tokenizer, trained.model, "def add(a, b):\n"
    pad, eos = tokenizer.pad_id, tokenizer.eos_id
    banned = _keras_greedy(model, tokenizer, text)[0]  # the token greedy would emit first
    unstopped = _keras_greedy(model, tokenizer, text, banned_ids=(pad, banned))
    stop = next(t for i, t in enumerate(unstopped) if i >= 2 and t not in unstopped[:i])  # first seen at i >= 2
    want = _keras_greedy(model, tokenizer, text, eos_ids=(eos, stop), banned_ids=(pad, banned))
    assert banned not in want and 2 <= len(want) < len(unstopped)
    path = write_litertlm(
        str(tmp_path / "stops.litertlm"),
        tflite_path=small_chunk_bundles["tflite_True"],
        tokenizer_json_path=small_chunk_bundles["tokenizer"],
        metadata=llm_metadata(eos_ids=[eos, stop], banned_ids=[pad, banned], max_length=MAX_LENGTH),
    )
    with EngineRunner(path, max_length=MAX_LENGTH) as runner:
        assert runner.generate(text, _room(tokenizer.encode(text))) == tokenizer.decode(want)


def test_padding_at_position_zero_leaves_the_cache_as_keras_writes_it(trained, exported, tmp_path):
    """The bundle's graph alone: a prefill_8 chunk of 3 tokens right-padded with token 0 at position 0
    (what the engine feeds), then a decode step, against the Keras model on the 3 tokens."""
    import litert_lm_builder
    from ai_edge_litert.interpreter import Interpreter

    workdir, report = exported
    litert_lm_builder.unpack_litertlm_file(os.path.join(workdir, "export", "gpt.litertlm"), str(tmp_path))
    tflite = [os.path.join(root, f) for root, _, files in os.walk(tmp_path) for f in files if f.endswith(".tflite")]
    assert len(tflite) == 1
    interpreter = Interpreter(model_path=tflite[0])
    info = report["model"]
    shape = (1, info["num_heads"], MAX_LENGTH + 1, info["head_dim"])
    layers = range(info["num_layers"])
    cache = {f"kv_cache_{part}_{i}": np.zeros(shape, np.float32) for i in layers for part in "kv"}
    ids = trained.tokenizer.encode("def").tolist()
    tokens = np.asarray([ids + [0] * 5], np.int32)
    positions = np.asarray([[0, 1, 2] + [0] * 5], np.int32)
    out = interpreter.get_signature_runner("prefill_8")(tokens=tokens, input_pos=positions, **cache)
    step = interpreter.get_signature_runner("decode")(
        tokens=np.asarray([[ids[-1]]], np.int32),
        input_pos=np.asarray([[3]], np.int32),
        **{key: value for key, value in out.items() if key.startswith("kv_cache")},
    )
    model = trained.model
    empty = tuple((np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in layers)
    _, want_cache = model.call_with_cache(np.asarray([ids], np.int32), np.asarray([[0, 1, 2]], np.int32), empty)
    want_logits, _ = model.call_with_cache(np.asarray([[ids[-1]]], np.int32), np.asarray([[3]], np.int32), want_cache)
    for i in layers:
        for part, index in (("k", 0), ("v", 1)):
            got = out[f"kv_cache_{part}_{i}"][:, :, :MAX_LENGTH]
            np.testing.assert_allclose(got, np.asarray(want_cache[i][index])[:, :, :MAX_LENGTH], atol=1e-5)
    np.testing.assert_allclose(step["logits"], np.asarray(want_logits), atol=1e-4)
    assert np.any(out["kv_cache_k_0"][:, :, MAX_LENGTH] != 0)  # the padding went to the spare slot


def test_models_with_an_encoder_get_a_one_line_error_and_nothing_is_written(tmp_path, capsys):
    from export.__main__ import main
    from export.pipeline import export_workdir
    from test_export_seq2seq import make_workdir as make_seq2seq_workdir

    workdir = make_seq2seq_workdir(tmp_path / "seq2seq")
    before = sorted(os.listdir(workdir))
    with pytest.raises(ExportError, match="--formats=litertlm carries decoder-only models") as error:
        export_workdir(workdir, formats=["tflite", "litertlm"], log=lambda line: None)
    assert "\n" not in str(error.value) and "'decoder'" in str(error.value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as status:
        main([f"--workdir={workdir}", "--formats=litertlm"])
    assert status.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --formats=litertlm carries decoder-only models")
    assert sorted(os.listdir(workdir)) == before  # nothing written


def test_missing_packages_are_a_one_line_error_before_anything_is_written(tmp_path, monkeypatch):
    import importlib.util

    from export.pipeline import export_workdir

    workdir = make_workdir(tmp_path / "run")
    before = sorted(os.listdir(workdir))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "litert_lm" else find_spec(name, *a)
    )
    with pytest.raises(ExportError, match=r"needs the packages litert-lm-api \(the runtimes extra") as error:
        export_workdir(workdir, formats=["litertlm"], log=lambda line: None)
    assert "\n" not in str(error.value)
    assert sorted(os.listdir(workdir)) == before


def test_a_tokenizer_without_a_utf8_form_is_a_one_line_error():
    from export.litertlm_export import check_litertlm_export
    from tfzoo.data.char_tokenizer import CharTokenizer

    with pytest.raises(ExportError, match="a token UTF-8 cannot hold") as error:
        check_litertlm_export(CharTokenizer(["a", "\ud800"]))  # a lone surrogate: tfzoo's char tokenizer allows it
    assert "\n" not in str(error.value)


@pytest.mark.reference
def test_converted_gpt2_bundle_carries_its_bpe_and_decodes_like_hugging_face(tmp_path):
    import torch
    from transformers import GPT2Tokenizer

    from export.litertlm_engine import EngineRunner
    from export.pipeline import export_workdir
    from gpt2_reference import bpe_files, hf_checkpoint
    from tfzoo.convert import convert_gpt2

    source, workdir = str(tmp_path / "hf"), str(tmp_path / "out")
    reference = hf_checkpoint(source, bpe_files(source), seed=5)
    convert_gpt2(source, workdir)
    report = export_workdir(
        workdir, formats=["litertlm"], quantization=["none"], strategy="greedy", max_length=24, log=lambda line: None
    )
    assert report["passed"], report["failures"]
    assert report["artefacts"]["litertlm"]["llm_metadata"]["suppress_tokens"] == []  # pad == eos: nothing banned
    hf_tokenizer = GPT2Tokenizer(f"{source}/vocab.json", f"{source}/merges.txt")
    eos = report["model"]["eos_ids"][0]
    texts = ["The quick brown fox", "def add(a, b):", "Héllo wörld", " spaces\tand\nnewlines"]
    continuations = []
    with EngineRunner(os.path.join(workdir, "export", "gpt.litertlm"), max_length=24) as runner:
        for text in texts:
            ids = hf_tokenizer.encode(text)
            assert runner.tokenize(text) == ids, text
            assert runner.detokenize(ids) == hf_tokenizer.decode(ids) == text
            room = min(12, 24 - len(ids))  # whole texts: a cut inside a character is no text to give the engine
            with torch.no_grad():
                out = reference.generate(
                    torch.tensor([ids]),
                    attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                    max_new_tokens=room,
                    do_sample=False,
                    eos_token_id=eos,
                    pad_token_id=eos,
                )
            new = out[0, len(ids) :].tolist()
            new = new[: new.index(eos)] if eos in new else new
            assert runner.generate(text, room) == hf_tokenizer.decode(new), text
            continuations.append(tuple(new))
    assert len(set(continuations)) == len(texts) and max(len(set(c)) for c in continuations) > 2


@pytest.fixture(scope="module")
def tokenizer_bundles(tmp_path_factory):
    """One tiny TFLite model packed with each tokenizer type's Hugging Face form (the vocabulary fits all)."""
    import json

    import keras

    from export.litertlm_export import (
        _hf_tokenizer,
        litertlm_module,
        llm_metadata,
        save_litertlm_saved_model,
        write_litertlm,
    )
    from export.tflite_export import convert_tflite
    from test_hf_tokenizer import TYPES, _build
    from tfzoo.models.gpt import GPT

    folder = tmp_path_factory.mktemp("tokenizers")
    tokenizers = {kind: _build(kind, tmp_path_factory) for kind in TYPES}
    keras.utils.set_random_seed(0)
    vocabulary = max(t.vocabulary_size for t in tokenizers.values())
    model = GPT(vocabulary, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
    names = save_litertlm_saved_model(litertlm_module(model, max_length=16), str(folder / "saved_model"))
    tflite = folder / "model.tflite"
    tflite.write_bytes(convert_tflite(str(folder / "saved_model"), names))
    bundles = {}
    for kind, tokenizer in tokenizers.items():
        tokenizer_path = folder / f"{kind}.json"
        tokenizer_path.write_text(json.dumps(_hf_tokenizer(tokenizer)), encoding="utf-8")
        metadata = llm_metadata(eos_ids=[tokenizer.eos_id], banned_ids=[], max_length=16)
        path = str(folder / f"{kind}.litertlm")
        write_litertlm(path, tflite_path=str(tflite), tokenizer_json_path=str(tokenizer_path), metadata=metadata)
        bundles[kind] = (tokenizer, path)
    return bundles


@pytest.mark.parametrize("kind", ["char", "byte", "wordpiece", "sentencepiece_unigram", "sentencepiece_bpe", "bpe"])
def test_the_engine_reads_every_tokenizer_with_tfzoo_ids(tokenizer_bundles, kind):
    from export.litertlm_engine import EngineRunner
    from test_hf_tokenizer import TEXTS, _known

    tokenizer, path = tokenizer_bundles[kind]
    with EngineRunner(path, max_length=16) as runner:
        for text in (t.split("\x00")[0] for t in TEXTS if t and _known(tokenizer, t)):  # C strings: up to a NUL
            ids = tokenizer.encode(text).tolist()
            assert runner.tokenize(text) == ids, text
            assert runner.detokenize(ids) == tokenizer.decode(ids), text
