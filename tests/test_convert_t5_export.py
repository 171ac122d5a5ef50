"""A converted T5 exports (`python -m export`: SavedModel, TFLite, ONNX) and each artefact gives transformers' tokens.

T5 and T5 v1.1 folders made by transformers (tests/t5_reference.py) are
converted with `python -m tfzoo.convert t5` and exported with the beam-4
`generate` and `generate_greedy`; every runtime's tokens must equal
`T5ForConditionalGeneration.generate` (set up to mean what tfzoo means: see
tests/test_convert_t5.py), `encode`/`prefill`/`decode` must reproduce greedy
decoding, and the SavedModel's text-in, text-out `serving_default` (the
SentencePiece model in the graph) must give T5Tokenizer's decoding of those
tokens.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest

from export.__main__ import main as export_main
from export.runtimes import load_runtime
from t5_reference import SOURCES, hf_tokenizer, t5_checkpoint
from test_convert_t5 import BANNED, _convert, _hf_generate, _sources

pytestmark = pytest.mark.reference

MAX_LENGTH = 13  # the start token and NEW_TOKENS (tests/test_convert_t5.py) new ones
RUNTIMES = ("saved_model", "tflite", "onnx")


@pytest.fixture(scope="module", params=["t5", "t5_v1_1"])
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    source, workdir = str(root / "hf"), str(root / "out")
    v1_1 = request.param == "t5_v1_1"
    reference = t5_checkpoint(source, v1_1=v1_1, seed=2, **({"num_heads": 6} if v1_1 else {}))  # 6 x 8 over 32
    _convert(source, workdir)
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main([f"--workdir={workdir}", f"--max_length={MAX_LENGTH}", "--quantization=none"])
    assert status == 0
    with open(os.path.join(workdir, "export", "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    return source, reference, workdir, report


def test_report_and_signatures(exported):
    _, _, _, report = exported
    assert report["passed"], report["failures"]
    model = report["model"]
    assert (model["kind"], model["start_id"], model["banned_ids"], model["eos_ids"]) == (
        "seq2seq",
        0,
        list(BANNED),
        [1],
    )
    for name in RUNTIMES:
        signatures = report["artefacts"][name]["signatures"]
        assert {"generate", "generate_greedy", "encode", "prefill", "decode"} <= set(signatures), name
        assert report["artefacts"][name]["parity"]["passed"], name
    assert "serving_default" in report["artefacts"]["saved_model"]["signatures"]


def test_every_runtime_gives_the_tokens_of_transformers(exported):
    source, reference, workdir, _ = exported
    ids, lengths = _sources(hf_tokenizer(source))
    expected = {
        "greedy": _hf_generate(reference, ids, lengths),
        "beam": _hf_generate(reference, ids, lengths, num_beams=4, length_penalty=1.0, early_stopping="never"),
    }
    assert len(set(map(tuple, expected["beam"]))) == len(SOURCES)  # the source matters
    for name in RUNTIMES:
        runtime = load_runtime(workdir, name)
        for strategy, want in expected.items():
            sequences, sequence_lengths, _ = runtime.generate(
                None,
                None,
                MAX_LENGTH - 1,
                strategy=strategy,
                source_ids=ids.astype(np.int32),
                source_lengths=lengths.astype(np.int32),
            )
            actual = [sequences[row, 1:end].tolist() for row, end in enumerate(sequence_lengths)]
            assert actual == want, (name, strategy)


def test_encode_prefill_decode_reproduce_greedy(exported):
    source, reference, workdir, _ = exported
    ids, lengths = _sources(hf_tokenizer(source))
    want = _hf_generate(reference, ids, lengths)
    steps = 6
    for name in ("tflite", "onnx"):
        runtime = load_runtime(workdir, name)
        context = runtime.encode(source_ids=ids.astype(np.int32), source_lengths=lengths.astype(np.int32))
        batch = len(ids)
        tokens = np.zeros((batch, 1), np.int32)  # T5's decoder start: <pad>
        logits, cache = runtime.prefill(tokens, np.zeros((batch, 1), np.int32), runtime.init_cache(batch), context)
        produced = []
        for step in range(1, steps + 1):
            logits = np.array(logits)
            logits[..., list(BANNED)] = -np.inf
            tokens = np.argmax(logits[:, -1], axis=-1).astype(np.int32)[:, None]
            produced.append(tokens[:, 0])
            logits, cache = runtime.decode(tokens, np.full((batch, 1), step, np.int32), cache, context)
        produced = np.stack(produced, 1).tolist()
        for row, tokens in zip(produced, want):
            assert row[: len(tokens)] == tokens[:steps], name


def test_serving_default_is_text_in_text_out(exported):
    source, reference, workdir, _ = exported
    tokenizer = hf_tokenizer(source)
    ids, lengths = _sources(tokenizer)
    expected = _hf_generate(reference, ids, lengths, num_beams=4, length_penalty=1.0, early_stopping="never")
    texts, _ = load_runtime(workdir, "saved_model").complete(list(SOURCES), max_new_tokens=MAX_LENGTH - 1)
    assert texts == [tokenizer.decode(tokens, skip_special_tokens=True) for tokens in expected]
