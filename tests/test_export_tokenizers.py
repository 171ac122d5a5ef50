"""`serving_default` (text in, text out) with the wordpiece, sentencepiece and bpe tokenizers in the graph.

- `TokenizerOps` against each Python tokenizer: the same ids, the same text.
- A tiny GPT per tokenizer type (`ExportModule`, greedy `generate` and
  `serving_default` only) and a tiny wordpiece `Transformer` through the whole
  pipeline (`export_workdir`, SavedModel and TFLite fp32), each saved once
  (module fixture). Their `serving_default` completions must equal the Python
  tokenizer's decoding of the `generate` tokens for the same text, in this
  process and in a fresh process that imports only `tensorflow` and
  `tensorflow_text` (no tfzoo, no keras-hub) from outside the repo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.export_module import ExportModule
from export.pipeline import export_workdir
from export.runtimes import load_runtime
from export.tokenizer_ops import TokenizerOps
from gpt2_reference import CORPUS, learn_merges
from tfzoo.data.bpe_tokenizer import BpeTokenizer, bytes_to_unicode
from tfzoo.data.sentencepiece_tokenizer import SentencepieceTokenizer
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.data.translation_data import load_translation_data
from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer
from tfzoo.models.gpt import GPT
from tfzoo.models.transformer import Transformer

TEXT = (
    "def add(a, b):\n    return a + b\n\nclass Parser(object):\n    def __init__(self):\n        self.items = []\n"
    "import os\nimport sys\nprint(add(1, 2))\n"
) * 8
TEXTS = ["def add(a, b):", "", "héllo ☃ x", "return a + b", "zzzz " * 10, "self.items"]
PROMPTS = ("def", "return a", "self.items")
SOURCES = ("five", "eighty-one", "two hundred and six")
MAX_LENGTH = 16
NEW_TOKENS = 8
TYPES = ("wordpiece", "sentencepiece", "bpe")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the tokenizer ops; nothing else is imported
    results = {}
    for name, case in json.loads(sys.argv[1]).items():
        served = tf.saved_model.load(case["path"]).signatures["serving_default"](
            **{case["input"]: tf.constant(case["texts"])}, max_new_tokens=tf.constant(case["max_new_tokens"]))
        results[name] = [c.decode("utf-8") for c in served["completions"].numpy()]
    results["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tfzoo", "export", "keras_hub"))
    print(json.dumps(results))
    """
)


def _bpe() -> BpeTokenizer:
    merges = learn_merges(CORPUS, 40)
    symbols = [bytes_to_unicode()[b] for b in sorted(bytes_to_unicode())]
    return BpeTokenizer(symbols + [a + b for a, b in merges] + ["<|endoftext|>"], [f"{a} {b}" for a, b in merges])


@pytest.fixture(scope="module")
def tokenizers() -> dict:
    return {
        "wordpiece": WordpieceTokenizer.from_text(TEXT, vocabulary_size=80),
        "sentencepiece": SentencepieceTokenizer.from_text(TEXT, vocabulary_size=60),
        "bpe": _bpe(),
    }


@pytest.mark.parametrize("kind", TYPES)
def test_tokenizer_ops_match_the_python_tokenizer(tokenizers, kind):
    tokenizer = tokenizers[kind]
    ops = TokenizerOps(tokenizer)
    token_ids, lengths = ops.encode(tf.constant(TEXTS), max_tokens=12, empty_id=tokenizer.eos_id)
    assert ops.trackable is not None  # the resources a SavedModel must track
    for row, text in enumerate(TEXTS):
        want = tokenizer.encode(text)[-12:] if tokenizer.encode(text).size else np.array([tokenizer.eos_id])
        np.testing.assert_array_equal(token_ids[row, : lengths[row]], want, err_msg=f"{kind} {text!r}")
        assert np.all(token_ids[row, lengths[row] :].numpy() == tokenizer.pad_id)
    counts = ops.token_counts(tf.constant(TEXTS)).numpy()
    assert counts.tolist() == [len(tokenizer.encode(text)) for text in TEXTS]
    rng = np.random.default_rng(0)
    sequences = rng.integers(0, tokenizer.vocabulary_size, (4, 10)).astype(np.int32)
    sequences[:, 3] = [0, 1, 2, tokenizer.eos_id]  # specials (and <unk>) among the ids
    start, end = np.array([0, 2, 5, 9], np.int32), np.array([10, 7, 5, 10], np.int32)
    decoded = ops.decode(tf.constant(sequences), tf.constant(start), tf.constant(end)).numpy()
    for row in range(4):
        assert decoded[row].decode("utf-8") == tokenizer.decode(sequences[row, start[row] : end[row]]), (kind, row)


def test_dict_input_needs_the_tokenizer_object_for_side_files(tokenizers):
    with pytest.raises(ValueError, match="wordpiece tokenizer's ops need the tokenizer object"):
        TokenizerOps(tokenizers["wordpiece"].to_json())
    with pytest.raises(ValueError, match="no in-graph ops for tokenizer type 'ids'"):
        TokenizerOps({"type": "ids", "special_tokens": {"<|endoftext|>": 9}})


def _gpt_export(tokenizer, directory: str) -> str:
    """A tiny GPT's greedy `generate` and `serving_default`, saved as the pipeline saves them."""
    keras.utils.set_random_seed(1)
    model = GPT(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=MAX_LENGTH,
    )
    model.build((None, None))
    model.token_embedding.embeddings.assign(model.token_embedding.embeddings * 20.0)  # spread-out logits
    banned = sorted({tokenizer.pad_id} - {tokenizer.eos_id})
    module = ExportModule(
        model,
        max_length=MAX_LENGTH,
        strategy="greedy",
        eos_ids=(tokenizer.eos_id,),
        banned_ids=banned,
        pad_id=tokenizer.pad_id,
        tokenizer=tokenizer,
        strategies=("greedy",),
        steps=False,
    )
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(module, directory, signatures=module.signatures(), options=options)
    return directory


def _translation_workdir(workdir: str) -> str:
    """A run folder of a tiny wordpiece Transformer, as `python -m tfzoo.train` leaves it."""
    os.makedirs(workdir)
    task = load_translation_data("numbers:en-fr", max_number=999)
    tokenizer = WordpieceTokenizer.from_text(task.tokenizer_text(), vocabulary_size=200)
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    keras.utils.set_random_seed(0)
    model = Transformer(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=MAX_LENGTH,
        tie_embeddings=False,
    )
    model.build()
    for weight in model.token_embedding.weights:
        weight.assign(weight * 4.0)
    model.save(os.path.join(workdir, "model.keras"))
    config = {"model": "transformer", "dataset": "numbers:en-fr", "tokenizer": "wordpiece", "seq_len": MAX_LENGTH}
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file)
    return workdir


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tokenizers) -> dict:
    """Every SavedModel of this file, and what a fresh process's `serving_default` made of them."""
    root = tmp_path_factory.mktemp("export_tokenizers")
    paths = {kind: _gpt_export(tokenizers[kind], str(root / kind)) for kind in TYPES}
    workdir = _translation_workdir(str(root / "translate"))
    log = []
    report = export_workdir(
        workdir, formats=("saved_model", "tflite"), quantization=("none",), strategy="greedy", log=log.append
    )
    cases = {
        kind: {"path": path, "input": "prompts", "texts": list(PROMPTS), "max_new_tokens": NEW_TOKENS}
        for kind, path in paths.items()
    }
    cases["translate"] = {
        "path": os.path.join(workdir, "export", "saved_model", "transformer", "1"),
        "input": "sources",
        "texts": list(SOURCES),
        "max_new_tokens": MAX_LENGTH - 1,
    }
    outside = str(tmp_path_factory.mktemp("outside"))  # cwd outside the repo: tfzoo is not importable by accident
    process = subprocess.Popen(
        [sys.executable, "-c", FRESH_PROCESS, json.dumps(cases)],
        cwd=outside,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    yield {"paths": paths, "workdir": workdir, "report": report, "log": log, "process": process}
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def fresh_process(exports) -> dict:
    stdout, stderr = exports["process"].communicate(timeout=300)
    assert exports["process"].returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def _gpt_expected(path: str, tokenizer) -> tuple[list[str], list[str]]:
    """(`serving_default` completions, the Python decoding of `generate` on the Python-encoded prompts)."""
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](prompts=tf.constant(PROMPTS), max_new_tokens=tf.constant(NEW_TOKENS))
    encoded = [tokenizer.encode(p) for p in PROMPTS]
    lengths = np.array([len(e) for e in encoded], np.int32)
    token_ids = np.full((len(PROMPTS), lengths.max()), tokenizer.pad_id, np.int32)
    for row, ids in enumerate(encoded):
        token_ids[row, : len(ids)] = ids
    out = loaded.signatures["generate"](
        token_ids=tf.constant(token_ids),
        lengths=tf.constant(lengths),
        max_new_tokens=tf.constant(NEW_TOKENS),
        repetition_penalty=tf.constant(1.0),
        no_repeat_ngram_size=tf.constant(0),
        stop_sequences=tf.fill([4, 16], -1),
        banned_sequences=tf.fill([16, 16], -1),
    )
    sequences, ends = out["sequences"].numpy(), out["sequence_lengths"].numpy()
    assert np.all(ends > lengths)  # something was generated
    expected = [tokenizer.decode(sequences[row, lengths[row] : ends[row]]) for row in range(len(PROMPTS))]
    return [c.decode("utf-8") for c in served["completions"].numpy()], expected


@pytest.mark.parametrize("kind", TYPES)
def test_gpt_serving_default_decodes_the_generate_tokens(exports, tokenizers, fresh_process, kind):
    completions, expected = _gpt_expected(exports["paths"][kind], tokenizers[kind])
    assert completions == expected
    assert fresh_process[kind] == expected  # tensorflow + tensorflow_text only
    assert len(set(expected)) > 1 and all(expected)


def test_wordpiece_translation_export_has_serving_default(exports, fresh_process):
    report = exports["report"]
    assert report["passed"], report["failures"]
    assert "serving_default" not in report["model"] and not any("not exported" in line for line in exports["log"])
    artefact = report["artefacts"]["saved_model"]
    assert artefact["signatures"]["serving_default"]["inputs"] == ["sources", "max_new_tokens"]
    assert artefact["load_imports"] == ["tensorflow", "tensorflow_text"]
    # TFLite is converted from a copy without serving_default (the tokenizer's resources do not convert).
    assert "serving_default" not in report["artefacts"]["tflite"]["signatures"]
    assert report["artefacts"]["tflite"]["parity"]["generate"]["greedy"]["identical"]
    export_dir = os.path.join(exports["workdir"], "export")
    for folder in (export_dir, os.path.join(export_dir, "saved_model", "transformer", "1", "assets.extra")):
        assert {"tokenizer.json", "vocab.txt"} <= set(os.listdir(folder)), folder
    runtime = load_runtime(exports["workdir"], "saved_model")
    texts, scores = runtime.complete(list(SOURCES), max_new_tokens=MAX_LENGTH - 1)
    tokenizer = load_tokenizer(export_dir)  # the exported copy, side file included
    encoded = [tokenizer.encode(s) for s in SOURCES]
    lengths = np.array([len(e) for e in encoded], np.int32)
    source_ids = np.zeros((len(SOURCES), lengths.max()), np.int32)
    for row, ids in enumerate(encoded):
        source_ids[row, : len(ids)] = ids
    sequences, ends, want_scores = runtime.generate(
        None, None, MAX_LENGTH - 1, source_ids=source_ids, source_lengths=lengths
    )
    expected = [tokenizer.decode(sequences[row, 1 : ends[row]]) for row in range(len(SOURCES))]
    assert texts == expected and fresh_process["translate"] == expected
    assert len(set(expected)) > 1
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_fresh_process_imported_no_tfzoo_and_no_keras_hub(fresh_process):
    assert fresh_process["imported"] == []
