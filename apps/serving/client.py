"""`python -m apps.serving.client`: calls a TF Serving model's `serving_default` or `generate` over REST or gRPC.

    python -m apps.serving.client --rest --prompt "def "                       # serving_default: text in, text out
    python -m apps.serving.client --grpc --signature generate --export runs/gpt_char/export --prompt "def "
        [--strategy beam] [--repetition_penalty 1.2 ...]
    common: [--host localhost] [--port 8501|8500] [--model gpt] [--version N] [--max_new_tokens N] [--timeout 30]
    python -m apps.serving.client --rest --model bert_encoder --text "A cat sits." --text "A kitten sits."
    python -m apps.serving.client --grpc --signature embed --export runs/minilm/export --text "A cat sits."
        [--cosine_only]                             # an encoder (BERT) export: embeddings (and classify)

`serving_default` takes strings and needs nothing local but `--max_new_tokens`
(or `--export DIR`, whose report.json gives its default). `generate` takes
token ids: `--export DIR` gives the tokenizer (hf_tokenizer.json) and, from
report.json, the signature's inputs, `max_length` and the knob table; every
input the signature has is sent (TF Serving wants them all), each knob not
given on the command line with the export's default and dtype.
REST uses TF Serving's columnar JSON (`{"signature_name", "inputs"}` to
`/v1/models/<model>[/versions/<v>]:predict`); gRPC a `PredictRequest` with
hand-built `TensorProto`s (`tensorflow-serving-api` for the protos and stub).
Each prompt's text (prompt + completion) goes to stdout, one per line; the
score and time to stderr. Every call has a deadline (`--timeout`). Bad input,
an unreachable server, a timeout or a server error print `error: ...` and exit 2.

`--text` (repeat for a batch) calls an encoder (BERT) export: `serving_default`
sends the strings (`texts`; WordPiece runs in the served graph) and gets
`sentence_embedding`; `--signature embed` (or `classify`, a classifier's export)
sends `[CLS] text [SEP]` ids built from `--export DIR`'s `hf_tokenizer.json` and
`report.json` (`token_ids`, `lengths` and, when the signature takes them,
`segment_ids` zeros). stdout gets `python -m tfzoo.embed`'s JSON: `{"dim",
"embeddings"}`, `"cosine"` for two texts (`--cosine_only`: just that number),
`"probabilities"` and `"labels"` for `classify`. `--model` defaults to the
report's model name with `--export`, else `gpt`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

import numpy as np

from apps.edge.embedder import ENCODER_KIND, embedding_result, encode_texts, encoder_facts, export_kind, probabilities
from apps.edge.errors import AppError
from apps.edge.json_files import Knob, read_report, report_knobs
from apps.edge.knobs import add_knob_flags, given_knobs, knob_inputs, sequence_inputs
from apps.edge.tokenizer import load_tokenizer

# numpy dtype kind -> (TensorProto DataType enum, value field): DT_FLOAT=1, DT_INT32=3, DT_STRING=7.
_PROTO_TYPES = {
    np.dtype(np.float32): (1, "float_val"),
    np.dtype(np.int32): (3, "int_val"),
    np.dtype(object): (7, "string_val"),
}
_PROTO_NUMPY = {1: np.float32, 3: np.int32, 9: np.int64}


class ServingClient:
    """Sends `Predict` calls to TF Serving over REST or gRPC, with a deadline on each.

    Args:
        protocol: str. "rest" or "grpc".
        host: str. Server host. Defaults to "localhost".
        port: int or None. None: 8501 for REST, 8500 for gRPC.
        model: str. The served model name (models.config). Defaults to "gpt".
        version: int or None. A version to pin; None: the latest.
        timeout: float. Seconds to wait for each answer. Defaults to 30.

    Example:
    >>> client = ServingClient("rest", port=8501)  # doctest: +SKIP
    >>> inputs = {"prompts": np.array(["def "], object), "max_new_tokens": np.int32(8)}
    >>> client.predict("serving_default", inputs)  # doctest: +SKIP
    """

    def __init__(
        self,
        protocol: str,
        host: str = "localhost",
        port: int | None = None,
        model: str = "gpt",
        version: int | None = None,
        timeout: float = 30.0,
    ):
        if protocol not in ("rest", "grpc"):
            raise AppError(f"protocol must be rest or grpc, got {protocol!r}")
        if timeout <= 0:
            raise AppError(f"--timeout must be > 0 seconds, got {timeout}")
        self.protocol = protocol
        self.host = host
        self.port = port or (8501 if protocol == "rest" else 8500)
        self.model = model
        self.version = version
        self.timeout = timeout
        self._stub = None

    # REST ------------------------------------------------------------------------------------------------------
    def rest_request(self, signature: str, inputs: dict[str, np.ndarray]) -> tuple[str, bytes]:
        """The URL and JSON body of a REST predict call (columnar `inputs`)."""
        version = f"/versions/{self.version}" if self.version is not None else ""
        url = f"http://{self.host}:{self.port}/v1/models/{self.model}{version}:predict"
        body = {"signature_name": signature, "inputs": {name: _to_json(value) for name, value in inputs.items()}}
        return url, json.dumps(body).encode("utf-8")

    def _rest_predict(self, signature, inputs):
        url, body = self.rest_request(signature, inputs)
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            raise AppError(f"server error (HTTP {error.code}) from {url}: {_rest_error(error)}") from None
        except TimeoutError:
            raise AppError(f"no answer from {url} within {self.timeout:g} s (--timeout)") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise AppError(f"no answer from {url} within {self.timeout:g} s (--timeout)") from None
            raise AppError(f"cannot reach {url}: {error.reason}") from None
        except ValueError as error:
            raise AppError(f"{url} answered with invalid JSON: {error}") from None
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        if not isinstance(outputs, dict):
            raise AppError(f"unexpected answer from {url}: {str(answer)[:200]}")
        return {name: np.asarray(value, dtype=object if _is_text(value) else None) for name, value in outputs.items()}

    # gRPC ------------------------------------------------------------------------------------------------------
    def grpc_request(self, signature: str, inputs: dict[str, np.ndarray]):
        """The `tensorflow.serving.PredictRequest` of a gRPC predict call."""
        from tensorflow_serving.apis import predict_pb2  # noqa: PLC0415 (gRPC only: REST needs no protos)

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model
        request.model_spec.signature_name = signature
        if self.version is not None:
            request.model_spec.version.value = self.version
        for name, value in inputs.items():
            value = np.asarray(value)
            dtype, field = _PROTO_TYPES[value.dtype]
            proto = request.inputs[name]
            proto.dtype = dtype
            for size in value.shape:
                proto.tensor_shape.dim.add().size = size
            flat = value.reshape(-1).tolist()
            if dtype == 7:
                flat = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in flat]
            getattr(proto, field).extend(flat)
        return request

    def _grpc_predict(self, signature, inputs):
        import grpc  # noqa: PLC0415 (gRPC only: REST needs no grpc)
        from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: PLC0415 (gRPC only)

        request = self.grpc_request(signature, inputs)
        target = f"{self.host}:{self.port}"
        if self._stub is None:
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise AppError(f"no answer from {target} within {self.timeout:g} s (--timeout)") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise AppError(f"cannot reach {target}: {error.details()}") from None
            raise AppError(f"server error ({code.name}) from {target}: {error.details()}") from None
        return {name: _from_proto(proto) for name, proto in response.outputs.items()}

    def predict(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Calls `signature` with `inputs` (name -> numpy array; strings as object arrays); returns its outputs."""
        if self.protocol == "rest":
            return self._rest_predict(signature, inputs)
        return self._grpc_predict(signature, inputs)


def _to_json(value):
    value = np.asarray(value)
    if value.dtype == object:
        return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v, otypes=[object])(value).tolist()
    return value.tolist()


def _is_text(value) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, str)


def _rest_error(error) -> str:
    try:
        return json.loads(error.read().decode("utf-8"))["error"]
    except Exception:  # noqa: BLE001 (any unreadable body: the status line is the message)
        return error.reason


def _from_proto(proto) -> np.ndarray:
    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.dtype == 7:
        return np.array([v.decode("utf-8", "replace") for v in proto.string_val], dtype=object).reshape(shape)
    dtype = _PROTO_NUMPY.get(proto.dtype)
    if dtype is None:
        raise AppError(f"unexpected output type {proto.dtype} in the answer")
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    values = {1: proto.float_val, 3: proto.int_val, 9: proto.int64_val}[proto.dtype]
    values = np.asarray(list(values), dtype=dtype)
    size = int(np.prod(shape)) if shape else 1
    if values.size == 1 and size != 1:  # TF's compact form: one value repeated
        values = np.repeat(values, size)
    return values.reshape(shape)


def _read_export(export_dir: str) -> tuple[object, dict, dict[str, Knob]]:
    """The tokenizer, the report (with a SavedModel) and the knob table of an export folder."""
    if not os.path.isdir(export_dir):
        raise AppError(f"no export folder at {export_dir}")
    report = read_report(export_dir, AppError)
    if not report.get("artefacts", {}).get("saved_model"):
        raise AppError(f"the export in {export_dir} has no SavedModel; re-export with --formats=saved_model")
    knobs = report_knobs(report, error=AppError)
    tokenizer = load_tokenizer(export_dir, report)
    return tokenizer, report, knobs


def generate_inputs(
    tokenizer, report: dict, knobs: dict[str, Knob], signature: str, prompts: Sequence[str], given: dict
) -> dict[str, np.ndarray]:
    """The inputs of a `generate*` call: right-padded token ids, lengths, and every knob the signature takes
    (`given`, which holds max_new_tokens, else the report's default)."""
    signatures = report["artefacts"]["saved_model"].get("signatures", {})
    names = signatures.get(signature, {}).get("inputs")
    if names is None:
        have = ", ".join(sorted(signatures)) or "none"
        raise AppError(f"the SavedModel has no {signature!r} signature (it has: {have})")
    encoded = [tokenizer.encode(p) for p in prompts]
    max_length = int(report["model"]["max_length"])
    for prompt, ids in zip(prompts, encoded, strict=True):
        if len(ids) >= max_length:
            raise AppError(f"the prompt {prompt[:20]!r}... is {len(ids)} tokens; it must be under {max_length}")
    width = max(len(ids) for ids in encoded)
    token_ids = np.full((len(encoded), width), tokenizer.pad_id, np.int32)
    for row, ids in enumerate(encoded):
        token_ids[row, : len(ids)] = ids
    lengths = np.array([len(ids) for ids in encoded], np.int32)
    inputs = {"token_ids": token_ids, "lengths": lengths, **knob_inputs(knobs, names, given, AppError)}
    shapes = {name: shape for name, shape in (report["model"].get("sequence_shapes") or {}).items() if name in names}
    inputs.update(sequence_inputs(shapes, {}, AppError))  # none: TF Serving wants every input
    unknown = sorted(set(names) - set(inputs))
    if unknown:
        raise AppError(f"signature {signature!r} wants inputs this client does not know: {unknown}")
    return inputs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m apps.serving.client", description=__doc__.split("\n\n")[0])
    protocol = parser.add_mutually_exclusive_group(required=True)
    protocol.add_argument("--rest", action="store_const", dest="protocol", const="rest")
    protocol.add_argument("--grpc", action="store_const", dest="protocol", const="grpc")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=None, help="default 8501 (REST) or 8500 (gRPC)")
    parser.add_argument(
        "--model", default=None, help="the model name in models.config (default: the report's with --export, else gpt)"
    )
    parser.add_argument("--version", type=int, default=None, help="pin a version (default: the latest)")
    parser.add_argument(
        "--signature", choices=("serving_default", "generate", "embed", "classify"), default="serving_default"
    )
    parser.add_argument("--strategy", default=None, help="generate only: call generate_<strategy> (default: generate)")
    parser.add_argument("--export", default=None, help="the export folder (hf_tokenizer.json, report.json)")
    parser.add_argument("--prompt", action="append", help="repeat for a batch")
    parser.add_argument("--text", action="append", help="encoder exports: a text to embed; repeat for a batch")
    parser.add_argument("--cosine_only", action="store_true", help="--text twice: print only their cosine")
    parser.add_argument("--max_new_tokens", type=int, default=None, help="default: from report.json (--export)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
    add_knob_flags(parser)
    return parser


def _client(args, report: dict | None) -> ServingClient:
    """The client of the command line; the model name defaults to the report's (`--export`), else `gpt`."""
    model = args.model or (report or {}).get("model", {}).get("name") or "gpt"
    return ServingClient(args.protocol, args.host, args.port, model, args.version, args.timeout)


def embed_inputs(tokenizer, report: dict, signature: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The inputs of an `embed`/`classify` call: `[CLS] text [SEP]` ids, lengths, and zero `segment_ids` when the
    SavedModel's signature takes them (`report.json`)."""
    signatures = report["artefacts"]["saved_model"].get("signatures", {})
    names = signatures.get(signature, {}).get("inputs")
    if names is None:
        have = ", ".join(sorted(signatures)) or "none"
        raise AppError(f"the SavedModel has no {signature!r} signature (it has: {have})")
    inputs = encode_texts(tokenizer, texts, encoder_facts(report, "report.json"))
    if "segment_ids" in names:
        inputs["segment_ids"] = np.zeros_like(inputs["token_ids"])
    unknown = sorted(set(names) - set(inputs))
    if unknown:
        raise AppError(f"signature {signature!r} wants inputs this client does not know: {unknown}")
    return inputs


def _embed(args, knobs: dict) -> int:
    """`--text`: an encoder export's embeddings (or a classifier's probabilities) from the server, as JSON."""
    generation = [name for name in ("strategy", "max_new_tokens") if getattr(args, name) is not None] + list(knobs)
    if generation:
        raise AppError(f"--{generation[0]} is a generation flag; --text embeds with an encoder export")
    if args.signature == "generate":
        raise AppError("--signature generate is a generative export's: pass --prompt, not --text")
    if args.cosine_only and len(args.text) != 2:
        raise AppError(f"--cosine_only needs exactly two --text, got {len(args.text)}")
    report = None
    if args.export:
        if not os.path.isdir(args.export):
            raise AppError(f"no export folder at {args.export}")
        report = read_report(args.export, AppError)
        if export_kind(report) != ENCODER_KIND:
            raise AppError(f"--text needs an encoder (BERT) export; {args.export} is a {export_kind(report)} export")
        if not report.get("artefacts", {}).get("saved_model"):
            raise AppError(f"the export in {args.export} has no SavedModel; re-export with --formats=saved_model")
    elif args.signature != "serving_default":
        raise AppError(f"--signature {args.signature} needs --export DIR (its hf_tokenizer.json and report.json)")
    client = _client(args, report)
    start = time.perf_counter()
    if args.signature == "serving_default":
        outputs = client.predict("serving_default", {"texts": np.array(args.text, dtype=object)})
    else:
        tokenizer = load_tokenizer(args.export, report)
        inputs = embed_inputs(tokenizer, report, args.signature, args.text)
        outputs = client.predict(args.signature, inputs)
        if args.signature == "classify":  # the embeddings come from the embed signature of the same export
            logits = outputs.get("logits")
            if logits is None:
                raise AppError("the answer lacks 'logits': is this a tfzoo classifier export?")
            outputs = {**client.predict("embed", embed_inputs(tokenizer, report, "embed", args.text)), "logits": logits}
    if "sentence_embedding" not in outputs:
        raise AppError("the answer lacks 'sentence_embedding': is this a tfzoo encoder export?")
    result = embedding_result(np.asarray(outputs["sentence_embedding"], np.float32))
    if "logits" in outputs:
        weights = probabilities(np.asarray(outputs["logits"], np.float32))
        result["probabilities"] = weights.tolist()
        result["labels"] = [int(i) for i in weights.argmax(axis=-1)]
    print(json.dumps(result["cosine"] if args.cosine_only else result))
    print(
        f"[{args.protocol} {args.signature}: {len(args.text)} texts; {time.perf_counter() - start:.3f} s]",
        file=sys.stderr,
    )
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit code (2 on any error)."""
    args = _parser().parse_args(argv)
    knobs = given_knobs(args)
    try:
        if (args.prompt is None) == (args.text is None):
            raise AppError("pass --prompt TEXT (generation) or --text TEXT (an encoder export's embeddings)")
        if args.text is not None:
            return _embed(args, knobs)
        if args.signature in ("embed", "classify"):
            raise AppError(f"--signature {args.signature} is an encoder export's: pass --text, not --prompt")
        if any(p == "" for p in args.prompt):
            raise AppError("the prompt is empty")
        if args.max_new_tokens is not None and args.max_new_tokens < 0:
            raise AppError(f"--max_new_tokens must be >= 0, got {args.max_new_tokens}")
        if args.cosine_only:
            raise AppError("--cosine_only goes with --text (an encoder export's embeddings)")
        if args.signature == "serving_default" and (knobs or args.strategy):
            raise AppError("serving_default takes only prompts and --max_new_tokens; use --signature generate")
        if args.export:
            tokenizer, report, table = _read_export(args.export)
            if export_kind(report) == ENCODER_KIND:
                raise AppError(f"the export in {args.export} is an encoder (BERT) export: pass --text, not --prompt")
        client = _client(args, report if args.export else None)
        if args.export:
            if "max_new_tokens" not in table:
                raise AppError("report.json's knob table lacks max_new_tokens: not a `python -m export` folder")
            max_new_tokens = table["max_new_tokens"].value(args.max_new_tokens, AppError)
        elif args.signature == "generate":
            raise AppError("--signature generate needs --export DIR (its hf_tokenizer.json and report.json)")
        elif args.max_new_tokens is None:
            raise AppError("pass --max_new_tokens N, or --export DIR whose report.json gives its default")
        else:
            max_new_tokens = args.max_new_tokens
        start = time.perf_counter()
        if args.signature == "serving_default":
            inputs = {"prompts": np.array(args.prompt, dtype=object), "max_new_tokens": np.int32(max_new_tokens)}
            outputs = client.predict("serving_default", inputs)
            texts = [p + c for p, c in zip(args.prompt, outputs["completions"].tolist(), strict=True)]
        else:
            exported = report["model"].get("strategy")
            signature = "generate" if args.strategy in (None, exported) else f"generate_{args.strategy}"
            given = dict(knobs, max_new_tokens=max_new_tokens)
            inputs = generate_inputs(tokenizer, report, table, signature, args.prompt, given)
            outputs = client.predict(signature, inputs)
            texts = []
            for row, prompt in enumerate(args.prompt):
                ids = outputs["sequences"][row, int(inputs["lengths"][row]) : int(outputs["sequence_lengths"][row])]
                prompt_ids = inputs["token_ids"][row, : int(inputs["lengths"][row])]
                texts.append(prompt + tokenizer.continuation(prompt_ids.tolist(), ids.tolist()))
        for name in ("scores",):
            if name not in outputs:
                raise AppError(f"the answer lacks {name!r}: is this a tfzoo export?")
    except AppError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for text in texts:
        print(text)
    scores = ", ".join(f"{s:.3f}" for s in np.asarray(outputs["scores"], np.float32).tolist())
    print(f"[{args.protocol} {args.signature}: scores {scores}; {time.perf_counter() - start:.3f} s]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run())
