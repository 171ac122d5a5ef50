"""The serving client against stand-ins for TF Serving that execute its exact requests on the SavedModel.

No model server binary can be installed here, so two stand-ins run in this process on 127.0.0.1:
a gRPC `PredictionService` (tensorflow-serving-api's servicer: the request's TensorProtos are read
with `tf.make_ndarray`, the outputs written with `tf.make_tensor_proto`) and a REST endpoint
(`POST /v1/models/<name>[/versions/<v>]:predict`, columnar JSON as TF Serving documents it). Both call
the loaded SavedModel's named signature with exactly the inputs the client sent, and reject missing
or extra inputs as TF Serving does. What the client prints must equal the SavedModel's own output
(`export.runtimes.SavedModelRuntime`). What is not run: TF Serving itself, models.config, docker.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from apps.serving.client import ServingClient
from apps.serving.client import run as client_run
from export.__main__ import main as export_main
from export.runtimes import load_runtime
from export_helpers import TEXT, make_workdir
from tfzoo.data.char_tokenizer import CharTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LENGTH = 32
NEW_TOKENS = 10
PROMPTS = ("def ", "class Parser", "x = 1")
SLOW_MODEL = "slow"  # the stand-ins wait 3 s before answering for this model name


class _BadRequest(Exception):
    pass


def _execute(loaded, signature: str, arrays: dict) -> dict:
    """Runs `signature` on exactly `arrays`, as TF Serving would; returns numpy outputs."""
    if signature not in loaded.signatures:
        raise _BadRequest(f'Serving signature name: "{signature}" not found in signature def')
    function = loaded.signatures[signature]
    specs = function.structured_input_signature[1]
    if set(arrays) != set(specs):
        raise _BadRequest(f"inputs {sorted(arrays)} do not match the signature's {sorted(specs)}")
    tensors = {name: tf.constant(value, dtype=specs[name].dtype) for name, value in arrays.items()}
    return {name: value.numpy() for name, value in function(**tensors).items()}


class _Predictions(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, loaded, log, names=("gpt",)):
        self.loaded, self.log, self.names = loaded, log, (*names, SLOW_MODEL)

    def Predict(self, request, context):
        self.log.append(request)
        if request.model_spec.name == SLOW_MODEL:
            time.sleep(3)
        if request.model_spec.name not in self.names:
            name = request.model_spec.name
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
        arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            outputs = _execute(self.loaded, request.model_spec.signature_name or "serving_default", arrays)
        except _BadRequest as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = predict_pb2.PredictResponse()
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


def _json_value(value: np.ndarray):
    """TF Serving's JSON for a tensor: nested lists, strings as UTF-8 text."""
    if value.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist()
    return value.tolist()


def _rest_handler(loaded, log, names=("gpt",)):
    names = (*names, SLOW_MODEL)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            log.append((self.path, body))
            if match and match.group(1) == SLOW_MODEL:
                time.sleep(3)
            if not match or match.group(1) not in names:
                return self._answer(404, {"error": f"Servable not found for request: {self.path}"})
            try:
                outputs = _execute(loaded, body.get("signature_name", "serving_default"), body["inputs"])
            except _BadRequest as error:
                return self._answer(400, {"error": str(error)})
            json_outputs = {name: _json_value(value) for name, value in outputs.items()}
            return self._answer(200, {"outputs": json_outputs})

        def _answer(self, status, payload):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    workdir = make_workdir(tmp_path_factory.mktemp("serving") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main(
            [f"--workdir={workdir}", "--formats=saved_model", f"--max_length={MAX_LENGTH}", "--strategy=greedy"]
        )
    assert status == 0
    runtime = load_runtime(workdir, "saved_model")
    completions, scores = runtime.complete(list(PROMPTS), NEW_TOKENS)
    tokenizer = CharTokenizer.from_text(TEXT)
    greedy, beam = [], []
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt)
        for strategy, texts in (("greedy", greedy), ("beam", beam)):
            sequences, lengths, _ = runtime.generate(
                ids[None], [ids.size], NEW_TOKENS, strategy=strategy, length_penalty=0.6
            )
            texts.append(prompt + tokenizer.decode(sequences[0, ids.size : lengths[0]]))
    assert len(set(greedy)) == len(PROMPTS)
    return {
        "workdir": workdir,
        "dir": os.path.join(workdir, "export"),
        "runtime": runtime,
        "served": [p + c for p, c in zip(PROMPTS, completions, strict=True)],
        "scores": scores,
        "greedy": greedy,
        "beam": beam,
    }


@pytest.fixture(scope="module")
def servers(exported):
    """The gRPC and REST stand-ins on free ports of 127.0.0.1, with the requests they received."""
    loaded = exported["runtime"].loaded
    log = {"grpc": [], "rest": []}
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_Predictions(loaded, log["grpc"]), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    rest_server = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(loaded, log["rest"]))
    thread = threading.Thread(target=rest_server.serve_forever, daemon=True)
    thread.start()
    yield {"grpc": grpc_port, "rest": rest_server.server_address[1], "log": log}
    rest_server.shutdown()
    rest_server.server_close()
    grpc_server.stop(grace=None)


def _client(protocol, servers, *args) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = client_run([f"--{protocol}", "--host=127.0.0.1", f"--port={servers[protocol]}", *args])
    return status, stdout.getvalue(), stderr.getvalue()


def _prompts():
    return [f"--prompt={p}" for p in PROMPTS]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_serving_default_matches_the_saved_model(protocol, servers, exported):
    status, out, err = _client(protocol, servers, *_prompts(), f"--max_new_tokens={NEW_TOKENS}")
    assert status == 0, err
    assert out == "".join(text + "\n" for text in exported["served"])
    assert f"{protocol} serving_default: scores" in err


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_generate_matches_the_saved_model(protocol, servers, exported):
    common = ["--signature=generate", f"--export={exported['dir']}", *_prompts(), f"--max_new_tokens={NEW_TOKENS}"]
    for expected, flags in (("greedy", []), ("beam", ["--strategy=beam", "--length_penalty=0.6"])):
        status, out, err = _client(protocol, servers, *common, *flags)
        assert status == 0, err
        assert out == "".join(text + "\n" for text in exported[expected])


def test_serving_default_takes_max_new_tokens_from_the_report(servers, exported, tmp_path):
    """Without --max_new_tokens, serving_default sends the report's default (--export); without either, an error."""
    with open(os.path.join(exported["dir"], "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    report["knobs"]["max_new_tokens"]["default"] = NEW_TOKENS
    (tmp_path / "report.json").write_text(json.dumps(report))
    shutil.copyfile(os.path.join(exported["dir"], "hf_tokenizer.json"), tmp_path / "hf_tokenizer.json")
    status, out, err = _client("rest", servers, *_prompts(), f"--export={tmp_path}")
    assert status == 0, err
    assert out == "".join(text + "\n" for text in exported["served"])
    assert servers["log"]["rest"][-1][1]["inputs"]["max_new_tokens"] == NEW_TOKENS
    status, out, err = _client("rest", servers, *_prompts())
    assert (
        status == 2 and err == "error: pass --max_new_tokens N, or --export DIR whose report.json gives its default\n"
    )


def test_requests_on_the_wire(servers, exported):
    """The exact requests: REST columnar JSON on the model's predict URL, gRPC protos with every input typed."""
    client = ServingClient("rest", "127.0.0.1", servers["rest"], version=1)
    url, body = client.rest_request(
        "serving_default", {"prompts": np.array(["def "], object), "max_new_tokens": np.int32(4)}
    )
    assert url == f"http://127.0.0.1:{servers['rest']}/v1/models/gpt/versions/1:predict"
    inputs = {"prompts": ["def "], "max_new_tokens": 4}
    assert json.loads(body) == {"signature_name": "serving_default", "inputs": inputs}
    status, _, err = _client(
        "grpc",
        servers,
        "--signature=generate",
        f"--export={exported['dir']}",
        "--prompt=def ",
        "--prompt=class Parser",
        "--max_new_tokens=5",
        "--version=1",
    )
    assert status == 0, err
    request = servers["log"]["grpc"][-1]
    assert request.model_spec.name == "gpt" and request.model_spec.signature_name == "generate"
    assert request.model_spec.version.value == 1
    arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    knobs = {"max_new_tokens", "repetition_penalty", "no_repeat_ngram_size"}
    assert set(arrays) == {"token_ids", "lengths", "stop_sequences", "banned_sequences"} | knobs
    for name in ("stop_sequences", "banned_sequences"):  # none given: all -1, in the export's shape
        assert arrays[name].dtype == np.int32 and arrays[name].ndim == 2 and np.all(arrays[name] == -1), name
    tokenizer = CharTokenizer.from_text(TEXT)
    assert arrays["token_ids"].dtype == np.int32 and arrays["token_ids"].shape == (2, 12)
    assert arrays["token_ids"][0].tolist() == tokenizer.encode("def ").tolist() + [0] * 8
    assert arrays["lengths"].tolist() == [4, 12] and arrays["max_new_tokens"].shape == ()
    with open(os.path.join(exported["dir"], "report.json"), encoding="utf-8") as file:
        defaults = {name: knob["default"] for name, knob in json.load(file)["knobs"].items()}
    assert arrays["repetition_penalty"].dtype == np.float32 and arrays["repetition_penalty"] == 1.0
    assert arrays["repetition_penalty"] == defaults["repetition_penalty"]
    assert arrays["no_repeat_ngram_size"].dtype == np.int32
    assert arrays["no_repeat_ngram_size"] == defaults["no_repeat_ngram_size"]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_timeout_unreachable_and_server_errors(protocol, servers, exported, tmp_path):
    start = time.perf_counter()
    status, out, err = _client(
        protocol, servers, f"--model={SLOW_MODEL}", "--prompt=def ", "--timeout=0.5", "--max_new_tokens=4"
    )
    assert status == 2 and out == "" and "within 0.5 s (--timeout)" in err
    assert time.perf_counter() - start < 2.5
    status, _, err = _client(protocol, servers, "--model=nope", "--prompt=def ", f"--export={exported['dir']}")
    assert status == 2 and err.startswith("error: server error") and "Servable not found" in err
    with socket_closed_port() as port:
        status, _, err = _client(protocol, {protocol: port}, "--prompt=def ", "--timeout=5", "--max_new_tokens=4")
    assert status == 2 and err.startswith("error: cannot reach") and err.count("\n") == 1


@contextlib.contextmanager
def socket_closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port  # nothing listens there now


def test_bad_input(servers, exported, tmp_path):
    def bad(*args) -> str:
        status, out, err = _client("rest", servers, *args)
        assert status == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    assert "the prompt is empty" in bad("--prompt=")
    assert "needs --export DIR" in bad("--signature=generate", "--prompt=def ")
    assert "no export folder at" in bad("--signature=generate", f"--export={tmp_path / 'missing'}", "--prompt=a")
    assert "must be under 32" in bad("--signature=generate", f"--export={exported['dir']}", "--prompt=" + "a" * 40)
    assert "no 'generate_sample' signature" in bad(
        "--signature=generate", f"--export={exported['dir']}", "--strategy=sample", "--prompt=a"
    )
    assert "--timeout must be > 0" in bad("--prompt=a", "--timeout=0")
    assert "use --signature generate" in bad("--prompt=a", "--temperature=0.5")
    with open(os.path.join(exported["dir"], "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    (tmp_path / "report.json").write_text(json.dumps({**report, "artefacts": {}}))
    assert "has no SavedModel" in bad("--signature=generate", f"--export={tmp_path}", "--prompt=a")
    (tmp_path / "report.json").write_text(json.dumps({**report, "format_version": 3}))
    assert "has format_version 3; this app reads format_version 2" in bad(f"--export={tmp_path}", "--prompt=a")
    (tmp_path / "report.json").write_text(json.dumps({key: value for key, value in report.items() if key != "knobs"}))
    assert "'knobs' must map each decoding knob" in bad(f"--export={tmp_path}", "--prompt=a")


def test_cli_in_a_fresh_process(servers, exported):
    """`python -m apps.serving.client` as a user runs it (gRPC, the generate signature)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "apps.serving.client",
            "--grpc",
            "--host=127.0.0.1",
            f"--port={servers['grpc']}",
            "--signature=generate",
            f"--export={exported['dir']}",
            "--prompt=def ",
            f"--max_new_tokens={NEW_TOKENS}",
            "--timeout=60",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == exported["greedy"][0] + "\n"
