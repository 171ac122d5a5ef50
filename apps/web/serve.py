"""`python -m apps.web.serve`: serves the web app and an export folder on a local address, offline.

    python -m apps.web.serve --export runs/gpt_char/export [--host 127.0.0.1] [--port 8000]
    python -m apps.web.serve --export runs/gpt_char/export --bundle site/   # a static folder to host anywhere

URL layout: `/` the page (apps/web/static: index.html, text generation; for a speech recognizer's export
(kind `asr`) listen.html, speech recognition from the microphone or a .wav file; for a chat model's export
(`model.chat_template` in report.json) chat.html, a multi-turn chat), `/ort/` the three onnxruntime-web
files it needs and `/lib/` Hugging Face's tokenizers.js (both from apps/web/node_modules: run
.ci/setup_apps or `npm ci --prefix apps/web` first), `/model/` the export folder's top-level files
(report.json, hf_tokenizer.json, *.onnx and the weights file they share). `.mjs` is sent as text/javascript, and
COOP/COEP headers are set (harmless; the page uses one thread and needs none).
Bad input prints `error: ...` and exits with code 2.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import sys
from collections.abc import Sequence

from apps.edge.json_files import read_report, report_knobs

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC_DIR = os.path.join(HERE, "static")
ORT_DIR = os.path.join(HERE, "node_modules", "onnxruntime-web", "dist")
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
LIB_DIR = os.path.join(HERE, "node_modules", "@huggingface", "tokenizers", "dist")
LIB_FILES = ("tokenizers.min.mjs",)  # the tokenizer of every type (static/tokenizer.mjs)
CONTENT_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
    ".css": "text/css",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
}


ASR_KIND = "asr"  # report["model"]["kind"] of a speech recognizer: the page is listen.html


def page_signatures(report: dict) -> tuple[str, ...]:
    """The ONNX signatures the export's page runs: `transcribe` for a speech recognizer, else the decoding loop's."""
    return ("transcribe",) if report.get("model", {}).get("kind") == ASR_KIND else ("prefill", "decode", "generate")


def home_page(report: dict) -> str:
    """The page `/` serves for this export (a file of apps/web/static): listen.html for a speech recognizer,
    chat.html for a chat model (`report.model.chat_template`), else index.html."""
    model = report.get("model", {})
    if model.get("kind") == ASR_KIND:
        return "listen.html"
    return "chat.html" if model.get("chat_template") else "index.html"


class ServeError(ValueError):
    """Bad input to the server (export folder, missing npm packages); a one-line message."""


def check_export(export_dir: str) -> dict:
    """The export's report; raises `ServeError` unless it has the knob table and the ONNX files the page needs."""
    if not os.path.isdir(export_dir):
        raise ServeError(f"no export folder at {export_dir} (run `python -m export --workdir=DIR` first)")
    report = read_report(export_dir, ServeError)
    report_knobs(report, error=ServeError)  # the page feeds the knobs' defaults from this table
    onnx = report.get("artefacts", {}).get("onnx")
    if not onnx:
        raise ServeError(f"the export in {export_dir} has no ONNX model; re-export with --formats=onnx")
    files = onnx.get("files", {})
    missing = [s for s in page_signatures(report) if s not in files]
    if missing:
        raise ServeError(f"the ONNX export in {export_dir} lacks the {', '.join(missing)} signature(s)")
    tokenizer = report.get("model", {}).get("hf_tokenizer")
    if not isinstance(tokenizer, str) or os.path.basename(tokenizer) != tokenizer or tokenizer in ("", ".", ".."):
        raise ServeError(
            f"{os.path.join(export_dir, 'report.json')} names no hf_tokenizer.json (an export older than the apps' "
            "tokenizer, or a tokenizer without a vocabulary): re-export"
        )
    needed = [entry["path"] for name, entry in files.items() if name in page_signatures(report)] + [tokenizer]
    needed += [onnx["weights"]["path"]] if "weights" in onnx else []  # the graphs' external data
    absent = [name for name in needed if not os.path.isfile(os.path.join(export_dir, name))]
    if absent:
        raise ServeError(f"{export_dir} lacks {', '.join(absent)}")
    return report


def check_runtime() -> None:
    packages = (("onnxruntime-web", ORT_DIR, ORT_FILES), ("@huggingface/tokenizers", LIB_DIR, LIB_FILES))
    for package, folder, names in packages:
        absent = [name for name in names if not os.path.isfile(os.path.join(folder, name))]
        if absent:
            raise ServeError(f"{package} is not installed ({folder} lacks {absent[0]}): run .ci/setup_apps")


class AppHandler(http.server.SimpleHTTPRequestHandler):
    """Routes `/`, `/ort/`, `/lib/` and `/model/` to their folders; nothing else, no directory listings."""

    def __init__(self, *args, export_dir: str, home: str = "index.html", **kwargs):
        self.export_dir, self.home = export_dir, home
        super().__init__(*args, directory=STATIC_DIR, **kwargs)

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0].split("#", 1)[0]
        name = os.path.basename(path)
        if path.startswith("/ort/"):
            return os.path.join(ORT_DIR, name) if name in ORT_FILES and path == f"/ort/{name}" else ""
        if path.startswith("/lib/"):
            return os.path.join(LIB_DIR, name) if name in LIB_FILES and path == f"/lib/{name}" else ""
        if path.startswith("/model/"):
            return os.path.join(self.export_dir, name) if path == f"/model/{name}" and name else ""
        if path == "/":
            return os.path.join(STATIC_DIR, self.home)
        return os.path.join(STATIC_DIR, name) if path == f"/{name}" else ""

    def send_head(self):
        path = self.translate_path(self.path)
        if not path or not os.path.isfile(path):
            self.send_error(404, "not found")
            return None
        return super().send_head()

    def guess_type(self, path) -> str:
        return CONTENT_TYPES.get(os.path.splitext(path)[1], "application/octet-stream")

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):
        if args and str(args[1] if len(args) > 1 else "").startswith(("4", "5")):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def bundle(export_dir: str, target: str) -> str:
    """Copies the pages, the runtime files and the export's files into `target` (a static site); returns
    the page to open (`home_page`: listen.html for a speech recognizer, chat.html for a chat model, else index.html)."""
    report = check_export(export_dir)
    check_runtime()
    staging = target.rstrip("/") + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(STATIC_DIR, staging)
    os.makedirs(os.path.join(staging, "ort"))
    for name in ORT_FILES:
        shutil.copyfile(os.path.join(ORT_DIR, name), os.path.join(staging, "ort", name))
    os.makedirs(os.path.join(staging, "lib"))
    for name in LIB_FILES:
        shutil.copyfile(os.path.join(LIB_DIR, name), os.path.join(staging, "lib", name))
    os.makedirs(os.path.join(staging, "model"))
    onnx = report["artefacts"]["onnx"]
    names = {onnx["files"][name]["path"] for name in page_signatures(report)}
    names |= {onnx["weights"]["path"]} if "weights" in onnx else set()
    names |= {"report.json", report["model"]["hf_tokenizer"]}
    for name in names:
        shutil.copyfile(os.path.join(export_dir, name), os.path.join(staging, "model", name))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return home_page(report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.web.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", required=True, help="the export folder (DIR/export of `python -m export`)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--bundle", default=None, help="write a static site to this folder instead of serving")
    args = parser.parse_args(argv)
    export_dir = os.path.abspath(args.export)
    try:
        if args.bundle:
            home = bundle(export_dir, args.bundle)
            print(f"wrote {args.bundle}: serve it with any static server (open {home} over http)")
            return 0
        report = check_export(export_dir)
        check_runtime()
        handler = functools.partial(AppHandler, export_dir=export_dir, home=home_page(report))
        server = http.server.ThreadingHTTPServer((args.host, args.port), handler)
    except (ServeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"serving http://{host}:{port}/ (model: {export_dir})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
