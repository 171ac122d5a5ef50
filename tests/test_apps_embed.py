"""The apps on encoder (BERT) exports: `python -m apps.edge --text` and `python -m apps.serving.client --text`.

A tiny random Hugging Face `BertModel` (tests/test_convert_bert.py's, uncased, with pooler) is converted with
`tfzoo.convert bert` and exported (SavedModel + TFLite fp32); a `BertClassifier` around the converted encoder is
exported too. The edge app's embeddings must give `python -m tfzoo.embed`'s cosine (Keras) within 1e-5 and equal
tfzoo's own TFLite runtime on the same texts; a classifier's probabilities must be the softmax of tfzoo's
`classify` logits. The edge app runs in a fresh process that never imports TensorFlow. The serving client runs
against the gRPC/REST stand-ins of tests/test_apps_serving.py (the loaded SavedModel executes its exact requests):
`serving_default` (text in), `embed` and `classify` (ids from `hf_tokenizer.json`) equal the SavedModel's own
outputs. Bad input: one line, exit 2.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent import futures
from http.server import ThreadingHTTPServer

import numpy as np
import pytest

from apps.edge.__main__ import run as edge_run
from apps.serving.client import run as client_run
from gpt2_reference import run_cli
from test_apps_serving import _Predictions, _rest_handler
from test_convert_bert import SMALL, _checkpoint
from tfzoo.convert_bert import convert_bert
from tfzoo.embed import main as embed_main
from tfzoo.run_folder import RunFolder

pytestmark = pytest.mark.reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ("A cat sits on the mat.", "Un café, s'il vous plaît — 中国人!", "zzzqqq unknownword", "hello " * 30)


def _export(workdir, **options):
    from export.pipeline import export_workdir

    report = export_workdir(workdir, log=lambda line: None, formats=["saved_model", "tflite"], quantization=["none"])
    assert report["passed"], report["failures"]
    return report


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> dict:
    """The converted BERT (with pooler) and its classifier, both exported: workdirs and export folders."""
    from transformers import BertModel

    from tfzoo.convert_files import write_workdir
    from tfzoo.models.bert import BertClassifier

    source = str(tmp_path_factory.mktemp("bert_source"))
    _checkpoint(source, BertModel, seed=1, lower_case=True, **SMALL)
    workdir = str(tmp_path_factory.mktemp("out") / "bert")
    convert_bert(source, workdir)
    report = _export(workdir)
    folder = RunFolder(workdir)
    encoder, tokenizer = folder.load_model(), folder.load_tokenizer()
    classifier = BertClassifier(encoder, num_classes=3)
    classifier.build()
    with open(folder.config_path, encoding="utf-8") as file:
        config = json.load(file)
    classify_dir = str(tmp_path_factory.mktemp("out") / "classify")
    write_workdir(classify_dir, {**config, "model": "bert_classify"}, tokenizer, classifier)
    classify_report = _export(classify_dir)
    return {
        "workdir": workdir,
        "dir": folder.export_dir,
        "model": os.path.join(folder.export_dir, report["artefacts"]["tflite"]["path"]),
        "report": report,
        "classify_workdir": classify_dir,
        "classify_dir": RunFolder(classify_dir).export_dir,
        "classify_report": classify_report,
    }


def _edge(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        status = edge_run(list(args), out=out)
    return status, out.getvalue(), err.getvalue()


def _texts(texts=TEXTS) -> list[str]:
    return [f"--text={text}" for text in texts]


def test_report_names_the_cls_id(bert):
    from tfzoo.data.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(os.path.join(bert["dir"], "tokenizer.json"))
    assert bert["report"]["model"]["cls_id"] == tokenizer.special_tokens["<cls>"] == tokenizer.encode_input("a")[0]


def test_edge_cosine_equals_tfzoo_embed(bert):
    pair = _texts(TEXTS[:2])
    code, out, err = run_cli(embed_main, [f"--workdir={bert['workdir']}", "--cosine_only", *pair])
    assert code == 0, err
    keras_cosine = json.loads(out)
    for model in (bert["model"], bert["dir"]):  # the .tflite file, or the export folder
        status, out, err = _edge(f"--model={model}", *pair)
        assert status == 0, err
        result = json.loads(out)
        assert result["dim"] == 32 and len(result["embeddings"]) == 2
        assert abs(result["cosine"] - keras_cosine) < 1e-5
        assert "probabilities" not in result
    status, out, err = _edge(f"--model={bert['model']}", "--cosine_only", *pair)
    assert status == 0 and abs(json.loads(out) - keras_cosine) < 1e-5 and "embed]" in err


@pytest.mark.parametrize("max_length", [None, 6])
def test_edge_embeddings_equal_the_tfzoo_tflite_runtime(bert, max_length):
    from tfzoo.embed import embed_exported

    want = embed_exported(bert["workdir"], list(TEXTS), "tflite", max_length=max_length)
    flags = [] if max_length is None else [f"--max_length={max_length}"]
    status, out, err = _edge(f"--model={bert['model']}", *flags, *_texts())
    assert status == 0, err
    got = np.asarray(json.loads(out)["embeddings"], np.float32)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-6
    assert np.abs(np.linalg.norm(got, axis=-1) - 1).max() < 1e-5


def test_edge_classify_prints_probabilities_and_labels(bert):
    from tfzoo.embed import embed_exported
    from tfzoo.kinds import kind_named
    from tfzoo.runtimes import load_runtime

    workdir = bert["classify_workdir"]
    status, out, err = _edge(f"--model={bert['classify_dir']}", *_texts())
    assert status == 0, err
    result = json.loads(out)
    tokenizer = RunFolder(workdir).load_tokenizer()
    encoded = kind_named("encoder").encode_texts(tokenizer, TEXTS, 40)
    logits = load_runtime(workdir, "tflite").classify(encoded["token_ids"], encoded["lengths"])
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    assert np.abs(np.asarray(result["probabilities"]) - weights).max() < 1e-6
    assert result["labels"] == weights.argmax(-1).tolist()
    assert np.abs(np.asarray(result["embeddings"]) - embed_exported(workdir, list(TEXTS), "tflite")).max() < 1e-6


def test_edge_embed_in_a_fresh_process_without_tensorflow(bert):
    code = (
        "import json, sys\n"
        "from apps.edge.__main__ import run\n"
        f"status = run(['--model={bert['model']}', '--cosine_only', '--text=a cat', '--text=café'])\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tfzoo', 'export') if m in sys.modules)\n"
        "print(json.dumps([status, heavy]))\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    cosine, status_and_modules = result.stdout.split("\n")[:2]
    assert json.loads(status_and_modules) == [0, []]
    code, out, err = run_cli(
        embed_main, [f"--workdir={bert['workdir']}", "--cosine_only", "--text=a cat", "--text=café"]
    )
    assert code == 0 and abs(float(cosine) - json.loads(out)) < 1e-5


def _bad_edge(*args) -> str:
    status, out, err = _edge(*args)
    assert status == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_edge_bad_input(bert, tmp_path):
    model = bert["model"]
    assert "is an encoder (BERT) export: it embeds" in _bad_edge(f"--model={model}", "--prompt=hi")
    assert "is an encoder (BERT) export: it embeds" in _bad_edge(f"--model={bert['dir']}", "--interactive")
    assert "--max_new_tokens is a generation flag" in _bad_edge(f"--model={model}", "--text=a", "--max_new_tokens=3")
    assert "--temperature is a generation flag" in _bad_edge(f"--model={model}", "--text=a", "--temperature=0.5")
    assert "--loop is a generation flag" in _bad_edge(f"--model={model}", "--text=a", "--loop=generate")
    assert "--cosine_only needs exactly two --text, got 3" in _bad_edge(
        f"--model={model}", "--cosine_only", *_texts()[:3]
    )
    assert "--max_length must be >= 2" in _bad_edge(f"--model={model}", "--text=a", "--max_length=1")
    assert "exceeds the model's max_sequence_length=40" in _bad_edge(f"--model={model}", "--text=a", "--max_length=41")
    assert "--cosine_only goes with --text" in _bad_edge(f"--model={model}", "--prompt=a", "--cosine_only")
    copy = tmp_path / "copy"
    shutil.copytree(bert["dir"], copy, ignore=shutil.ignore_patterns("saved_model"))
    report = dict(bert["report"])
    (copy / "report.json").write_text(json.dumps({**report, "model": {**report["model"], "kind": "decoder"}}))
    assert "--text needs an encoder (BERT) export" in _bad_edge(f"--model={copy}", "--text=a")
    old = {k: v for k, v in report["model"].items() if k != "cls_id"}
    (copy / "report.json").write_text(json.dumps({**report, "model": old}))
    assert "has no model.cls_id" in _bad_edge(f"--model={copy}", "--text=a")
    (copy / "report.json").write_text(json.dumps({**report, "artefacts": {}}))
    assert "has no TFLite model" in _bad_edge(f"--model={copy}", "--text=a")


# ---- the serving client ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(bert):
    """gRPC and REST stand-ins serving the encoder (`bert_encoder`) and the classifier (`bert_classify`)."""
    import grpc
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (the in-graph WordPiece's ops)
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    started = {}
    for key, folder, report in (
        ("encoder", bert["dir"], bert["report"]),
        ("classify", bert["classify_dir"], bert["classify_report"]),
    ):
        loaded = tf.saved_model.load(os.path.join(folder, report["artefacts"]["saved_model"]["path"]))
        name, log = report["model"]["name"], {"grpc": [], "rest": []}
        grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        servicer = _Predictions(loaded, log["grpc"], names=(name,))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, grpc_server)
        grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
        grpc_server.start()
        rest_server = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(loaded, log["rest"], names=(name,)))
        threading.Thread(target=rest_server.serve_forever, daemon=True).start()
        started[key] = {
            "grpc": grpc_port,
            "rest": rest_server.server_address[1],
            "log": log,
            "loaded": loaded,
            "name": name,
            "servers": (grpc_server, rest_server),
        }
    yield started
    for entry in started.values():
        grpc_server, rest_server = entry["servers"]
        rest_server.shutdown()
        rest_server.server_close()
        grpc_server.stop(grace=None)


def _client(protocol, server, *args) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = client_run([f"--{protocol}", "--host=127.0.0.1", f"--port={server[protocol]}", *args])
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_serving_default_text_in_equals_the_saved_model(protocol, servers, bert):
    import tensorflow as tf

    server = servers["encoder"]
    status, out, err = _client(protocol, server, f"--model={server['name']}", *_texts())
    assert status == 0, err
    got = np.asarray(json.loads(out)["embeddings"], np.float32)
    want = server["loaded"].signatures["serving_default"](texts=tf.constant(TEXTS))["sentence_embedding"].numpy()
    assert np.abs(got - want).max() < 1e-6
    status, out, err = _client(protocol, server, f"--model={server['name']}", "--cosine_only", *_texts(TEXTS[:2]))
    assert status == 0, err
    code, keras_out, _ = run_cli(embed_main, [f"--workdir={bert['workdir']}", "--cosine_only", *_texts(TEXTS[:2])])
    assert code == 0 and abs(json.loads(out) - json.loads(keras_out)) < 1e-5


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_embed_signature_sends_ids_and_equals_the_saved_model(protocol, servers, bert):
    import tensorflow as tf

    from tfzoo.kinds import kind_named

    server = servers["encoder"]
    status, out, err = _client(protocol, server, "--signature=embed", f"--export={bert['dir']}", *_texts())
    assert status == 0, err  # --model defaults to the report's name
    tokenizer = RunFolder(bert["workdir"]).load_tokenizer()
    encoded = kind_named("encoder").encode_texts(tokenizer, TEXTS, 40)
    if protocol == "grpc":
        request = server["log"]["grpc"][-1]
        assert request.model_spec.name == "bert_encoder" and request.model_spec.signature_name == "embed"
        arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    else:
        path, body = server["log"]["rest"][-1]
        assert path.endswith("/v1/models/bert_encoder:predict") and body["signature_name"] == "embed"
        arrays = {name: np.asarray(value) for name, value in body["inputs"].items()}
    assert sorted(arrays) == ["lengths", "segment_ids", "token_ids"]
    assert arrays["token_ids"].tolist() == encoded["token_ids"].tolist()
    assert arrays["lengths"].tolist() == encoded["lengths"].tolist() and not arrays["segment_ids"].any()
    signature = server["loaded"].signatures["embed"]
    want = signature(**{k: tf.constant(v, tf.int32) for k, v in arrays.items()})["sentence_embedding"].numpy()
    assert np.abs(np.asarray(json.loads(out)["embeddings"]) - want).max() < 1e-6


def test_classify_signature_prints_probabilities(servers, bert):
    from tfzoo.kinds import kind_named
    from tfzoo.runtimes import load_runtime

    server = servers["classify"]
    status, out, err = _client("grpc", server, "--signature=classify", f"--export={bert['classify_dir']}", *_texts())
    assert status == 0, err
    result = json.loads(out)
    tokenizer = RunFolder(bert["classify_workdir"]).load_tokenizer()
    encoded = kind_named("encoder").encode_texts(tokenizer, TEXTS, 40)
    logits = load_runtime(bert["classify_workdir"], "saved_model").classify(encoded["token_ids"], encoded["lengths"])
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    assert np.abs(np.asarray(result["probabilities"]) - weights).max() < 1e-6
    assert result["labels"] == weights.argmax(-1).tolist() and len(result["embeddings"]) == len(TEXTS)


def test_client_embed_in_a_fresh_process(servers, bert):
    server = servers["encoder"]
    command = [sys.executable, "-m", "apps.serving.client", "--grpc", "--host=127.0.0.1", f"--port={server['grpc']}"]
    command += ["--signature=embed", f"--export={bert['dir']}", "--cosine_only", *_texts(TEXTS[:2]), "--timeout=60"]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    )
    assert result.returncode == 0, result.stderr[-2000:]
    code, out, _ = run_cli(embed_main, [f"--workdir={bert['workdir']}", "--cosine_only", *_texts(TEXTS[:2])])
    assert code == 0 and abs(float(result.stdout) - json.loads(out)) < 1e-5


def test_client_bad_input(servers, bert, tmp_path):
    server = servers["encoder"]

    def bad(*args) -> str:
        status, out, err = _client("rest", server, *args)
        assert status == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    assert "pass --prompt TEXT (generation) or --text TEXT" in bad("--prompt=a", "--text=a")
    assert "pass --prompt TEXT (generation) or --text TEXT" in bad()
    assert "is an encoder (BERT) export: pass --text, not --prompt" in bad("--prompt=a", f"--export={bert['dir']}")
    assert "--signature embed is an encoder export's: pass --text" in bad("--prompt=a", "--signature=embed")
    assert "--signature generate is a generative export's" in bad("--text=a", "--signature=generate")
    assert "--max_new_tokens is a generation flag" in bad("--text=a", "--max_new_tokens=4")
    assert "--signature embed needs --export DIR" in bad("--text=a", "--signature=embed")
    assert "--cosine_only needs exactly two --text, got 1" in bad("--text=a", "--cosine_only")
    assert "no 'classify' signature" in bad("--text=a", "--signature=classify", f"--export={bert['dir']}")
    report = dict(bert["report"])
    (tmp_path / "report.json").write_text(json.dumps({**report, "model": {**report["model"], "kind": "decoder"}}))
    assert "--text needs an encoder (BERT) export" in bad("--text=a", f"--export={tmp_path}")
    assert "Servable not found" in bad("--text=a", "--model=nope")
