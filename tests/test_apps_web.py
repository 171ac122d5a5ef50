"""The web app end to end: `python -m apps.web.serve` on 127.0.0.1, headless Debian Chromium driven by
playwright-core (apps/web/e2e.mjs), desktop and phone viewports; the text the page generates equals the
Python ONNX runtime's greedy output. Also the page's and the server's bad-input messages, and the speech page
(listen.html) with Chromium's fake microphone: its transcripts equal the Python ONNX runtime's on the samples it fed.

Needs `chromium`, `node` and apps/web/node_modules: `.ci/setup_apps` installs them, and these tests
fail (not skip) without them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest

from apps.web.serve import bundle
from apps.web.serve import main as serve_main
from export.__main__ import main as export_main
from export.runtimes import load_runtime
from export_helpers import CHAT_NEW_TOKENS, CHAT_SYSTEM, CHAT_TURNS, TEXT, make_workdir
from gpt2_reference import bpe_files, hf_checkpoint
from tfzoo.convert import convert_gpt2
from tfzoo.data.bpe_tokenizer import BpeTokenizer
from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.hf_tokenizer import hf_tokenizer_json
from tfzoo.data.tokenizers import build_tokenizer
from tfzoo.run_folder import RunFolder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB = os.path.join(REPO, "apps", "web")
MAX_LENGTH = 32
NEW_TOKENS = 12
PROMPTS = ("def ", "class Parser", "x = 1")  # "x" is not in the vocabulary: <unk>
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def _require_browser() -> None:
    missing = [name for name in ("chromium", "node") if shutil.which(name) is None]
    if not os.path.isfile(os.path.join(WEB, "node_modules", "playwright-core", "package.json")):
        missing.append("apps/web/node_modules")
    assert not missing, f"missing {', '.join(missing)}: run .ci/setup_apps"


@contextlib.contextmanager
def _serve(export_dir: str):
    """`python -m apps.web.serve --export export_dir` on a free port of 127.0.0.1; yields its URL, then stops it."""
    command = [sys.executable, "-m", "apps.web.serve", "--export", export_dir, "--port", "0"]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + process.stderr.read()
        yield line.split()[1]
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _run_e2e(spec: dict, timeout: int = 600) -> list:
    """apps/web/e2e.mjs on `spec` (headless Chromium): one result per case."""
    _require_browser()
    result = subprocess.run(
        ["node", os.path.join(WEB, "e2e.mjs"), json.dumps(spec)],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    workdir = make_workdir(tmp_path_factory.mktemp("web") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main(
            [f"--workdir={workdir}", "--formats=onnx", f"--max_length={MAX_LENGTH}", "--strategy=greedy"]
        )
    assert status == 0
    runtime = load_runtime(workdir, "onnx")
    tokenizer = CharTokenizer.from_text(TEXT)
    expected = {}
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt)
        sequences, lengths, _ = runtime.generate(ids[None], [ids.size], NEW_TOKENS, strategy="greedy")
        expected[prompt] = prompt + tokenizer.decode(sequences[0, ids.size : lengths[0]])
    assert len(set(expected.values())) == len(PROMPTS)
    return {"workdir": workdir, "dir": os.path.join(workdir, "export"), "expected": expected}


@pytest.fixture(scope="module")
def server(exported):
    with _serve(exported["dir"]) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server, exported, tmp_path_factory) -> dict:
    """Runs every page case in Chromium once (two browser profiles: desktop and phone)."""
    shots = tmp_path_factory.mktemp("shots")
    runs = [
        {"prompt": "def ", "maxNewTokens": NEW_TOKENS, "loop": "steps"},
        {"prompt": "class Parser", "maxNewTokens": NEW_TOKENS, "loop": "generate"},
        {"prompt": "", "maxNewTokens": NEW_TOKENS},
        {"prompt": "a" * MAX_LENGTH, "maxNewTokens": NEW_TOKENS},
        {"prompt": "x = 1", "maxNewTokens": NEW_TOKENS, "loop": "steps"},
    ]
    spec = {
        "url": server,
        "cases": [
            {
                "viewport": "desktop",
                "visits": [
                    {"runs": runs, "screenshot": str(shots / "desktop.png"), "tokenize": list(TOKENIZE)},
                    {"query": "?model=missing/"},
                    {"query": "?timeout=0.001"},
                    {"query": "chat.html"},  # the chat page on a model without a chat template
                ],
            },
            {
                "viewport": "mobile",
                "visits": [
                    {
                        "runs": [{"prompt": "class Parser", "maxNewTokens": NEW_TOKENS}],
                        "screenshot": str(shots / "mobile.png"),
                    },
                ],
            },
        ],
    }
    desktop, mobile = _run_e2e(spec)
    return {"desktop": desktop, "mobile": mobile, "shots": shots}


def test_desktop_generates_the_python_greedy_text(browser, exported):
    expected = exported["expected"]
    visit = browser["desktop"]["visits"][0]
    assert visit["load"]["state"] == "ready", visit["load"]
    assert "gpt · 2 layers" in visit["load"]["info"] and "up to 32 tokens" in visit["load"]["info"]
    with open(os.path.join(exported["dir"], "report.json"), encoding="utf-8") as file:
        default = json.load(file)["knobs"]["max_new_tokens"]["default"]
    assert visit["load"]["maxNewTokens"] == str(min(default, MAX_LENGTH - 1))  # the report's default, capped
    streamed, in_graph, _, _, unknown = visit["runs"]
    for run, prompt in ((streamed, "def "), (in_graph, "class Parser"), (unknown, "x = 1")):
        assert run["state"] == "done", run
        assert run["output"] == expected[prompt]
        assert "tokens/s" in run["status"]
    new_tokens = len(expected["def "]) - len("def ")
    assert streamed["updates"] >= 2 + new_tokens  # the output was rewritten token by token while generating
    assert in_graph["updates"] <= 4  # the in-graph loop shows its text once
    assert "in-graph greedy" in in_graph["status"] and "greedy, streamed" in streamed["status"]
    assert not streamed["sampling"] and not in_graph["sampling"]  # a greedy export shows no sampling knobs
    assert streamed["cacheSlots"].split(",")[0] == "16"  # the slots in use (blocks of 16), not max_length 32
    assert browser["desktop"]["offsite"] == [] and visit["consoleErrors"] == []


TOKENIZE = ("def f(x):\n  return x", "héllo wörld ✓ 😀", "", "x = 1")


def test_page_tokenizer_gives_tfzoo_ids_in_chromium(browser):
    tokenizer = CharTokenizer.from_text(TEXT)
    for text, (ids, decoded, streamed) in zip(TOKENIZE, browser["desktop"]["visits"][0]["tokenized"], strict=True):
        assert ids == tokenizer.encode(text).tolist(), text
        assert decoded == streamed == tokenizer.decode(tokenizer.encode(text)), text


GPT2_PROMPTS = ("The quick brown", "def add(a, b):", "Héllo  wörld 🙂")
GPT2_NEW_TOKENS = 6


@pytest.fixture(scope="module")
def gpt2_page(tmp_path_factory) -> dict:
    """A tiny random HF GPT-2 converted with `tfzoo.convert`, exported to ONNX, served, run in Chromium."""
    import torch
    from transformers import GPT2Tokenizer

    _require_browser()
    root = tmp_path_factory.mktemp("gpt2")
    source = str(root / "hf")
    reference = hf_checkpoint(source, bpe_files(source), seed=5)
    workdir = str(root / "run")
    assert convert_gpt2(source, workdir)["tokenizer"] == "bpe"
    with contextlib.redirect_stdout(io.StringIO()):
        arguments = ["--formats=onnx", "--max_length=20", "--strategy=greedy"]
        assert export_main([f"--workdir={workdir}", *arguments]) == 0
    hf = GPT2Tokenizer(os.path.join(source, "vocab.json"), os.path.join(source, "merges.txt"))

    def greedy(ids: list[int], **options) -> list[int]:
        with torch.no_grad():
            out = reference.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=GPT2_NEW_TOKENS,
                do_sample=False,
                eos_token_id=hf.eos_token_id,
                pad_token_id=hf.eos_token_id,
                **options,
            )
        return out[0, len(ids) :].tolist()

    expected, new_ids = {}, {}
    for prompt in GPT2_PROMPTS:
        new_ids[prompt] = greedy(hf.encode(prompt))
        expected[prompt] = prompt + hf.decode(new_ids[prompt], skip_special_tokens=True)
    runs = [{"prompt": p, "maxNewTokens": GPT2_NEW_TOKENS, "loop": loop} for p in GPT2_PROMPTS for loop in LOOPS]
    stop_ban = _gpt2_stop_ban(hf, greedy, new_ids, os.path.join(workdir, "export"))
    for fields in (
        {"stop-strings": stop_ban["stop"], "banned-words": ""},
        {"stop-strings": "", "banned-words": stop_ban["ban"]},
    ):
        runs += [
            {"prompt": GPT2_STOP_PROMPT, "maxNewTokens": GPT2_NEW_TOKENS, "loop": loop, "fields": fields}
            for loop in LOOPS
        ]
    texts = [*GPT2_PROMPTS, "x<|endoftext|>y  \n\n  z", "日本語 's 'll"]
    with _serve(os.path.join(workdir, "export")) as url:
        ((visit,),) = [
            case["visits"]
            for case in _run_e2e({"url": url, "cases": [{"visits": [{"runs": runs, "tokenize": texts}]}]})
        ]
    return {"visit": visit, "hf": hf, "texts": texts, "expected": expected, "stop_ban": stop_ban}


GPT2_STOP_PROMPT = GPT2_PROMPTS[1]


def _gpt2_stop_ban(hf, greedy, new_ids: dict, export_dir: str) -> dict:
    """A stop string and a banned word from the greedy continuation of GPT2_STOP_PROMPT (its first token's word
    is banned, the next other word stops), and the texts they give: cut before the stop string (`trim_at_stop`);
    Hugging Face's greedy generate with `bad_words_ids` = the edge app's banned sequences of the word (`word` and
    `" word"`, from the export's hf_tokenizer.json)."""
    from apps.edge.json_files import read_report
    from apps.edge.tokenizer import banned_sequences, load_tokenizer
    from tfzoo.stop_words import trim_at_stop

    words = [hf.decode([token]) for token in new_ids[GPT2_STOP_PROMPT]]
    ban = words[0].strip()
    stop = next(word for word in words if word != words[0]).strip()
    plain = hf.decode(new_ids[GPT2_STOP_PROMPT], skip_special_tokens=True)
    sequences = banned_sequences(load_tokenizer(export_dir, read_report(export_dir, ValueError)), [ban])
    banned = greedy(hf.encode(GPT2_STOP_PROMPT), bad_words_ids=sequences)
    return {"stop": stop, "ban": ban, "plain": plain, "sequences": sequences,
            "stopped": GPT2_STOP_PROMPT + trim_at_stop(plain, [stop])[0],
            "banned": GPT2_STOP_PROMPT + hf.decode(banned, skip_special_tokens=True)}  # fmt: skip


LOOPS = ("steps", "generate")


def test_converted_gpt2_in_chromium_has_the_hugging_face_ids_and_greedy_text(gpt2_page):
    visit, hf = gpt2_page["visit"], gpt2_page["hf"]
    assert visit["load"]["state"] == "ready", visit["load"]
    for text, (ids, decoded, streamed) in zip(gpt2_page["texts"], visit["tokenized"], strict=True):
        assert ids == hf.encode(text), text
        assert decoded == streamed == hf.decode(ids, skip_special_tokens=True), text
    prompts = [p for p in GPT2_PROMPTS for _ in LOOPS]
    for run, prompt in zip(visit["runs"][: len(prompts)], prompts, strict=True):
        assert run["state"] == "done", run
        assert run["output"] == gpt2_page["expected"][prompt], (prompt, run["status"])
    assert visit["consoleErrors"] == []


def test_converted_gpt2_in_chromium_stops_and_bans_as_the_edge_app(gpt2_page):
    """BPE: the model writes the stop word with its word-initial token (`" word"`), not the ids of `"word"` the
    in-graph table holds, so that loop runs on to its limit and the text is cut all the same (the streamed loop
    ends at the text); the banned word goes as `word` and `" word"` (both sequences: the model writes `" word"`),
    in both loops Hugging Face's greedy text with the edge app's sequences as `bad_words_ids`."""
    case = gpt2_page["stop_ban"]
    assert case["stop"] in case["plain"] and case["ban"] in case["plain"]  # the checks can fail
    assert len(case["sequences"]) == 2 and case["banned"] != GPT2_STOP_PROMPT + case["plain"]
    assert case["ban"] not in case["banned"][len(GPT2_STOP_PROMPT) :] and case["stopped"] != case["banned"]
    runs = gpt2_page["visit"]["runs"][len(GPT2_PROMPTS) * len(LOOPS) :]
    for run, want in zip(runs, [case["stopped"]] * len(LOOPS) + [case["banned"]] * len(LOOPS), strict=True):
        assert run["state"] == "done" and run["output"] == want, (run["status"], want)
    streamed, in_graph = runs[:2]  # the stop string: the streamed loop ends at its text, the in-graph one runs on
    assert in_graph["status"].startswith(f"{GPT2_NEW_TOKENS} new tokens") and "at a stop string" in in_graph["status"]
    assert int(streamed["status"].split()[0]) < GPT2_NEW_TOKENS and "at a stop string" in streamed["status"]


SAMPLE_SETTINGS = [  # (prompt, seed, temperature, top_k, top_p); high temperatures: the model's logits are spread
    ("def ", 3, 8.0, 10, 0.9),
    ("class Parser", -(2**31), 5.0, 0, 1.0),
    ("x = 1", 2**31 - 1, 12.0, 0, 0.8),
    ("def ", 77, 6.0, 4, 1.0),
]


@pytest.fixture(scope="module")
def sample_exported(tmp_path_factory) -> dict:
    """The tiny model exported to ONNX with the sample strategy, and the Python ONNX runtime's sampled texts."""
    workdir = make_workdir(tmp_path_factory.mktemp("web_sample") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main(
            [f"--workdir={workdir}", "--formats=onnx", f"--max_length={MAX_LENGTH}", "--strategy=sample"]
        )
    assert status == 0
    runtime = load_runtime(workdir, "onnx")
    tokenizer = CharTokenizer.from_text(TEXT)
    expected = []
    for prompt, seed, temperature, top_k, top_p in SAMPLE_SETTINGS:
        ids = tokenizer.encode(prompt)
        knobs = dict(seed=seed, temperature=temperature, top_k=top_k, top_p=top_p)
        sequences, lengths, _ = runtime.generate(ids[None], [ids.size], MAX_LENGTH, strategy="sample", **knobs)
        expected.append(prompt + tokenizer.decode(sequences[0, ids.size : lengths[0]]))
    assert len(set(expected)) == len(expected)
    return {"dir": os.path.join(workdir, "export"), "expected": expected}


def test_streamed_sampling_gives_the_in_graph_tokens(sample_exported, tmp_path):
    """In Chromium, the streamed loop (sampler.mjs) prints the in-graph ONNX sampler's text for each seed and knobs."""
    _require_browser()
    runs = []
    for prompt, seed, temperature, top_k, top_p in SAMPLE_SETTINGS:
        fields = {"seed": seed, "temperature": temperature, "top-k": top_k, "top-p": top_p}
        for loop in ("steps", "generate"):
            runs.append({"prompt": prompt, "maxNewTokens": MAX_LENGTH - 1, "loop": loop, "fields": fields})
    runs.append({"prompt": "def ", "maxNewTokens": 4, "fields": {"seed": 1.5}})
    runs.append({"prompt": "def ", "maxNewTokens": 4, "fields": {"seed": 3, "top-p": 0}})
    with _serve(sample_exported["dir"]) as url:
        ((visit,),) = [case["visits"] for case in _run_e2e({"url": url, "cases": [{"visits": [{"runs": runs}]}]})]
    assert visit["load"]["state"] == "ready" and visit["consoleErrors"] == []
    *sampled, bad_seed, bad_top_p = visit["runs"]
    for i, expected in enumerate(sample_exported["expected"]):
        streamed, in_graph = sampled[2 * i : 2 * i + 2]
        assert streamed["state"] == in_graph["state"] == "done" and streamed["sampling"], (streamed, in_graph)
        assert streamed["output"] == in_graph["output"] == expected, (SAMPLE_SETTINGS[i], streamed["output"])
        grew = [int(n) for n in streamed["cacheSlots"].split(",")]
        assert grew == sorted(set(grew)) and grew[-1] <= MAX_LENGTH, grew
        seed = SAMPLE_SETTINGS[i][1]
        assert f"sample (seed {seed}), streamed" in streamed["status"] and "in-graph sample" in in_graph["status"]
    # Long samples grow the cache mid-stream (16 -> 32 slots) and still give the in-graph tokens.
    assert any(run["cacheSlots"] == "16,32" for run in sampled[::2]), [run["cacheSlots"] for run in sampled[::2]]
    assert bad_seed["state"] == "error" and bad_seed["status"].startswith("error: Seed must be a whole number")
    assert bad_top_p["state"] == "error" and bad_top_p["status"] == "error: Top-p must be a number in (0, 1]"


def test_phone_viewport(browser, exported):
    mobile = browser["mobile"]
    (run,) = mobile["visits"][0]["runs"]
    assert run["state"] == "done" and run["output"] == exported["expected"]["class Parser"]
    assert run["scrollsSideways"] is False
    assert mobile["offsite"] == [] and mobile["visits"][0]["consoleErrors"] == []
    for name in ("desktop.png", "mobile.png"):
        data = (browser["shots"] / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_page_bad_input_messages(browser):
    _, _, empty, too_long, _ = browser["desktop"]["visits"][0]["runs"]
    assert empty["state"] == "error" and empty["status"] == "error: the prompt is empty"
    assert too_long["state"] == "error" and too_long["status"].startswith("error: the prompt is 32 tokens")
    assert "must be under 32" in too_long["status"]
    missing, timed_out, chat_page = browser["desktop"]["visits"][1:]
    assert missing["load"]["state"] == "error"
    assert (
        missing["load"]["status"].startswith("error: cannot load ")
        and "missing/report.json: HTTP 404" in missing["load"]["status"]
    )
    assert timed_out["load"]["state"] == "error" and "timed out after 0.001 s" in timed_out["load"]["status"]
    assert chat_page["load"]["state"] == "error"
    assert chat_page["load"]["status"].startswith("error: report.json has no model.chat_template: not a chat model")


def _serve_error(*args) -> str:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = serve_main(list(args))
    assert status == 2
    message = stderr.getvalue()
    assert message.startswith("error: ") and message.count("\n") == 1, message
    return message


def test_server_bad_input(exported, tmp_path):
    assert "no export folder at" in _serve_error("--export", str(tmp_path / "nothing"))
    assert "no report.json in" in _serve_error("--export", str(tmp_path))
    with open(os.path.join(exported["dir"], "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    (tmp_path / "report.json").write_text(json.dumps({**report, "artefacts": {}}))
    assert "has no ONNX model" in _serve_error("--export", str(tmp_path))
    (tmp_path / "report.json").write_text(json.dumps({**report, "format_version": 3}))
    assert "has format_version 3; this app reads format_version 2" in _serve_error("--export", str(tmp_path))
    (tmp_path / "report.json").write_text(json.dumps({key: value for key, value in report.items() if key != "knobs"}))
    assert "'knobs' must map each decoding knob" in _serve_error("--export", str(tmp_path))
    onnx = report["artefacts"]["onnx"]
    files = {key: value for key, value in onnx["files"].items() if key != "decode"}
    (tmp_path / "report.json").write_text(json.dumps({**report, "artefacts": {"onnx": {**onnx, "files": files}}}))
    assert "lacks the decode signature" in _serve_error("--export", str(tmp_path))
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert "lacks gpt.onnx" in _serve_error("--export", str(tmp_path))
    assert "hf_tokenizer.json" in _serve_error("--export", str(tmp_path)).split("lacks")[1]
    old = {**report, "model": {k: v for k, v in report["model"].items() if k != "hf_tokenizer"}}
    (tmp_path / "report.json").write_text(json.dumps(old))
    assert "names no hf_tokenizer.json" in _serve_error("--export", str(tmp_path))


def test_bundle_is_a_complete_static_site(exported, tmp_path):
    site = tmp_path / "site"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert serve_main(["--export", exported["dir"], "--bundle", str(site)]) == 0
    assert "(open index.html over http)" in out.getvalue()  # a speech export's bundle names listen.html
    names = {os.path.relpath(os.path.join(root, f), site) for root, _, files in os.walk(site) for f in files}
    assert {
        "index.html",
        "app.mjs",
        "tokenizer.mjs",
        "sampler.mjs",
        "common.mjs",
        "listen.html",
        "listen.mjs",
        "chat.html",
        "chat.mjs",
        "steps.mjs",
        "style.css",
        "ort/ort.wasm.min.mjs",
        "ort/ort-wasm-simd-threaded.mjs",
        "ort/ort-wasm-simd-threaded.wasm",
        "model/report.json",
        "lib/tokenizers.min.mjs",
        "model/hf_tokenizer.json",
        "model/gpt.onnx",
        "model/gpt.prefill.onnx",
        "model/gpt.decode.onnx",
    } <= names


JS_TOKENIZER = """
import { HfTokenizer } from './tokenizer.mjs';
const [data, texts, prompt] = JSON.parse(process.argv[1]);
const tokenizer = new HfTokenizer(data);
console.log(JSON.stringify(texts.map((text) => {
  const ids = tokenizer.encode(text);
  const withSpecials = [...ids, ...prompt.specials];
  const promptIds = tokenizer.encode(prompt.text);
  const textOf = tokenizer.streamDecoder(promptIds);
  return [ids, tokenizer.decode(withSpecials), tokenizer.continuation(promptIds, withSpecials),
    withSpecials.map((id) => textOf(id)).join('') + textOf(null)];
})));
"""


@pytest.fixture(scope="module")
def every_tokenizer(tmp_path_factory) -> dict:
    directory = str(tmp_path_factory.mktemp("gpt2_bpe"))
    bpe_files(directory)
    return {
        "char": CharTokenizer.from_text(TEXT + "é"),
        "byte": ByteTokenizer(),
        "wordpiece": build_tokenizer("wordpiece", TEXT, vocabulary_size=80),
        "sentencepiece": build_tokenizer("sentencepiece", TEXT, vocabulary_size=60),
        "sentencepiece_bpe": build_tokenizer("sentencepiece", TEXT, vocabulary_size=60, model_type="bpe"),
        "bpe": BpeTokenizer.from_files(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")),
    }


def test_js_tokenizer_matches_tfzoo(every_tokenizer, tmp_path):
    """static/tokenizer.mjs (tokenizers.js from node_modules) in node: tfzoo's ids and text for every type."""
    _require_browser()
    page = tmp_path / "page"
    shutil.copytree(os.path.join(WEB, "static"), page)
    shutil.copytree(os.path.join(WEB, "node_modules", "@huggingface", "tokenizers", "dist"), page / "lib")
    texts = ["def f(x):\n  return x", "héllo wörld ✓ 😀", "", "\ufffd?", "  class   Parser:\n\tpass ", "日本語 's 🙂🙂"]
    for kind, tokenizer in every_tokenizer.items():
        prompt = {"text": "def", "specials": [tokenizer.eos_id, tokenizer.pad_id]}
        arguments = json.dumps([hf_tokenizer_json(tokenizer), texts, prompt])
        result = subprocess.run(
            ["node", "--input-type=module", "-e", JS_TOKENIZER, arguments],
            cwd=page,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        prompt_ids = tokenizer.encode("def").tolist()
        for text, (ids, decoded, continued, streamed) in zip(texts, json.loads(result.stdout), strict=True):
            expected = tokenizer.encode(text).tolist()
            assert ids == expected, (kind, text)
            specials = [*expected, tokenizer.eos_id, tokenizer.pad_id]
            assert decoded == tokenizer.decode(specials), (kind, text)
            after = tokenizer.decode(prompt_ids + specials)[len(tokenizer.decode(prompt_ids)) :]
            assert continued == streamed == after, (kind, text)


JS_SEQUENCES = """
import { StopText, bannedNext, bannedSequences, fieldValues, readOptions, sequenceTable, trimAtStop }
  from './sequences.mjs';
import { HfTokenizer } from './tokenizer.mjs';
const [data, words, fields, tables, trims, streamed] = JSON.parse(process.argv[1]);
const tokenizer = new HfTokenizer(data);
const errorOf = (work) => { try { return work(); } catch (error) { return `error: ${error.message}`; } };
const stream = ([text, stops]) => {
  const view = new StopText(stops);
  const pieces = [...text].map((_, i) => view.update(text.slice(0, i + 1))); // the text so far, a character more
  return [pieces.join('') + view.finish(), view.stopped];
};
console.log(JSON.stringify({
  banned: [false, true].map((specialsAsText) => bannedSequences(tokenizer, words, specialsAsText)),
  fields: fields.map((text) => fieldValues(text)),
  options: fields.map((text) => errorOf(() => readOptions(text, '').stop))
    .concat(errorOf(() => readOptions('', '\\n\\n'))),
  tables: tables.map(([rows, shape]) => errorOf(() => sequenceTable('stop_sequences', rows, shape))),
  trims: trims.map(([text, stops]) => trimAtStop(text, stops)),
  streamed: streamed.map(stream),
  next: [[], [1], [2, 3], [9, 2, 3]].map((context) => bannedNext([[5], [1, 2], [2, 3, 4]], context)),
}));
"""
SEQUENCE_FIELDS = ["", "a", "a\n", "a\nb", "a\n\nb", "x\\ny", "\\\\n", "a\\tb", "\\q", " b "]
SEQUENCE_TABLES = [([[1, 2]], [2, 3]), ([[1], [2], [3]], [2, 3]), ([[4], []], [2, 3]), ([[1, 2, 3, 4]], [2, 3]),
                   ([[1, -2]], [2, 3]), ([], [1, 2])]  # fmt: skip
STOP_TEXTS = [("abc<END>d<END>", ["<END>"]), ("abc", ["zz", "b"]), ("abc", []), ("ab\nQ: x", ["\nQ:", "x"])]


def test_js_stop_and_ban_helpers_match_the_edge_app(every_tokenizer, tmp_path):
    """static/sequences.mjs in node (common.mjs stubbed: it needs a browser): the banned sequences of every tokenizer
    type are apps.edge's (`word`, `" word"`; with specials as text, the chat's), the tables and their errors are
    apps/edge/knobs.py's, the cut is tfzoo.stop_words.trim_at_stop's, and the streamed text never shows a stop
    string; the fields' one-per-line syntax with its escapes."""
    from apps.edge.errors import AppError
    from apps.edge.knobs import sequence_table
    from apps.edge.tokenizer import HfTokenizer, banned_sequences
    from tfzoo.stop_words import OptionError, stop_sequences, trim_at_stop

    _require_browser()
    page = tmp_path / "page"
    shutil.copytree(os.path.join(WEB, "static"), page)
    shutil.copytree(os.path.join(WEB, "node_modules", "@huggingface", "tokenizers", "dist"), page / "lib")
    (page / "common.mjs").write_text(
        "export class AppError extends Error {}\nexport const int32 = (values, dims) => ({ values, dims });\n"
    )
    words = ["def", " class", "wörld", "<eos>", "x y", "Parser"]
    counts = {}
    for kind, tokenizer in every_tokenizer.items():
        arguments = json.dumps([hf_tokenizer_json(tokenizer), words, SEQUENCE_FIELDS, SEQUENCE_TABLES, STOP_TEXTS,
                                STOP_TEXTS])  # fmt: skip
        result = subprocess.run(
            ["node", "--input-type=module", "-e", JS_SEQUENCES, arguments],
            cwd=page,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        got = json.loads(result.stdout)
        edge = HfTokenizer(json.dumps(hf_tokenizer_json(tokenizer)))
        want = [banned_sequences(edge, words, specials_as_text=flag) for flag in (False, True)]
        assert got["banned"] == want, kind
        counts[kind] = [len(sequences) for sequences in want]
    assert got["fields"] == [
        [],
        ["a"],
        ["a"],
        ["a", "b"],
        ["a", "", "b"],
        ["x\ny"],
        ["\\n"],
        ["a\tb"],
        ["\\q"],
        [" b "],
    ]
    with pytest.raises(OptionError) as stop_error:
        stop_sequences(ByteTokenizer(), [""])
    assert got["options"][4] == f"error: {stop_error.value}" == "error: --stop is empty: give the text to stop at"
    assert got["options"][-1] == "error: --ban is empty: give the text to ban"
    for (rows, shape), table in zip(SEQUENCE_TABLES, got["tables"], strict=True):
        try:
            want = sequence_table("stop_sequences", rows, shape, AppError).reshape(-1).tolist()
        except AppError as error:
            want = f"error: {error}"
        assert table == want, (rows, shape)
    assert sum(isinstance(table, str) for table in got["tables"]) == 4  # four of the tables are errors
    assert got["trims"] == [list(trim_at_stop(text, stops)) for text, stops in STOP_TEXTS]
    # The pieces only append: their join is the cut text, so no piece showed a stop string's start.
    assert got["streamed"] == [list(trim_at_stop(text, stops)) for text, stops in STOP_TEXTS]
    assert got["next"] == [[5], [5, 2], [5, 4], [5, 4]]


# ---- speech recognition (listen.html): a tiny `asr` export, a fake microphone fed a synthesised phrase ----


def _python_transcript(runtime, tokenizer, samples, ends) -> str:
    """The Python ONNX runtime's transcript of exactly these samples (the page's feed: every knob's default)."""
    sequences, lengths, _ = runtime.generate(audio=np.asarray(samples, np.float32)[None], max_new_tokens=64)
    ids = []
    for token in sequences[0, 1 : lengths[0]].tolist():
        if token in ends:
            break
        ids.append(token)
    return tokenizer.decode(ids)


@pytest.fixture(scope="module")
def asr_page(tmp_path_factory, server) -> dict:
    """listen.html in Chromium: two recordings from the fake microphone (stopped after 1 s; stopped by the page at
    the model's limit), .wav uploads (16 kHz, 22.05 kHz stereo, noise, too long, not a WAV), a refused microphone,
    and each page on the other kind's export."""
    from asr_helpers import tiny_asr_export
    from tfzoo.data.speech_data import resample, synthesize, write_wav

    _require_browser()
    root = tmp_path_factory.mktemp("web_asr")
    with contextlib.redirect_stdout(io.StringIO()):
        workdir, export_dir, report = tiny_asr_export(root, formats="onnx")
    site_home = bundle(export_dir, str(root / "site"))
    site_files = sorted(os.listdir(root / "site" / "model"))
    phrase, other = synthesize("three hundred and five", "en-us", 175, 50), synthesize("forty two", "en-gb", 175, 50)
    files = {name: str(root / f"{name}.wav") for name in ("mic", "upload", "stereo", "noise", "long")}
    write_wav(files["mic"], phrase)
    write_wav(files["upload"], other)
    stereo = np.round(np.clip(resample(other, 16000, 22050), -1, 1) * 32767).astype("<i2")
    with wave.open(files["stereo"], "wb") as writer:  # 22.05 kHz, two channels (the second one at half volume)
        writer.setnchannels(2), writer.setsampwidth(2), writer.setframerate(22050)
        writer.writeframes(np.stack([stereo, stereo // 2], axis=1).tobytes())
    write_wav(files["noise"], 0.3 * np.random.default_rng(0).standard_normal(12000))
    write_wav(files["long"], np.tile(phrase, 3))
    (root / "notes.wav").write_text("not audio")
    listen = [{"record": 1}, {"record": 8}, *({"upload": files[k]} for k in ("upload", "stereo", "noise", "long"))]
    listen.append({"upload": str(root / "notes.wav")})
    cases = [
        {"audioFile": files["mic"], "visits": [{"listen": listen}, {"query": "index.html"}, {"query": "chat.html"}]},
        {"microphone": "denied", "visits": [{"listen": [{"record": 1}]}]},
    ]
    with _serve(export_dir) as url:
        microphone, denied = _run_e2e({"url": url, "cases": cases}, timeout=300)
    spec = {"url": server, "cases": [{"visits": [{"query": "listen.html"}]}]}  # the GPT export's server
    ((gpt_visit,),) = [case["visits"] for case in _run_e2e(spec, timeout=300)]
    runtime = load_runtime(workdir, "onnx")
    tokenizer = RunFolder(workdir).load_tokenizer()
    ends = {*report["model"]["eos_ids"], report["model"]["pad_id"]}
    expected = [
        _python_transcript(runtime, tokenizer, run["samples"], ends) if run["samples"] else None
        for run in microphone["visits"][0]["listens"]
    ]
    return {
        "microphone": microphone,
        "denied": denied,
        "gpt_visit": gpt_visit,
        "expected": expected,
        "phrase": phrase,
        "other": other,
        "report": report,
        "site_home": site_home,
        "site_files": site_files,
        "transcribe_file": report["artefacts"]["onnx"]["files"]["transcribe"]["path"],
    }


def test_a_speech_export_bundles_the_listen_page_and_only_its_graph(asr_page):
    assert asr_page["site_home"] == "listen.html"
    onnx = [name for name in asr_page["site_files"] if name.endswith(".onnx")]
    assert onnx == [asr_page["transcribe_file"]], asr_page["site_files"]


def _heard_the_loop(captured: np.ndarray, loop: np.ndarray, chunk: int = 2000) -> bool:
    """Whether `captured` is `loop` played in a loop: at least two chunks carry sound and three in four of those match
    a stretch of the loop (> 0.95). Chunk by chunk, because under load Chromium's fake device can drop or repeat a
    buffer, which breaks one long window's alignment though every stretch between the glitches is the file's."""
    chunks = [captured[i : i + chunk] for i in range(0, len(captured) - chunk + 1, chunk)]
    loud = [c for c in chunks if np.sqrt(np.mean(c**2)) > 1e-3]
    matched = [_best_correlation(c, loop) > 0.95 for c in loud]
    return len(loud) >= 2 and sum(matched) >= 0.75 * len(loud)


def _best_correlation(captured: np.ndarray, loop: np.ndarray) -> float:
    """The highest normalised correlation of `captured` with any stretch of `loop` played in a loop."""
    tiled = np.tile(loop, 2 + len(captured) // len(loop))
    windows = np.lib.stride_tricks.sliding_window_view(tiled, len(captured))[: len(loop)]
    return float((windows @ captured / np.linalg.norm(windows, axis=1) / np.linalg.norm(captured)).max())


def test_listen_page_transcribes_the_microphone_as_the_python_runtime(asr_page):
    visit = asr_page["microphone"]["visits"][0]
    assert visit["load"]["state"] == "ready", visit["load"]
    assert "16 kHz, up to 2.00 s" in visit["load"]["info"] and visit["consoleErrors"] == []
    stopped, capped, upload, stereo, noise = visit["listens"][:5]
    limit = asr_page["report"]["model"]["max_audio_samples"]
    assert 8000 <= len(stopped["samples"]) < limit and "stopped at" not in stopped["status"]  # Stop after ~1 s
    assert len(capped["samples"]) == limit and "stopped at the model's limit of 2.00 s" in capped["status"]
    for run in (stopped, capped):  # the page heard the fake microphone's file (looped), resampled back to 16 kHz
        assert _heard_the_loop(np.asarray(run["samples"][:8000], np.float32), asr_page["phrase"])
    assert np.array_equal(np.asarray(upload["samples"], np.float32), np.round(asr_page["other"] * 32767) / 32768)
    assert abs(len(stereo["samples"]) - len(asr_page["other"])) <= 2 and "resampled from 22050 Hz" in stereo["status"]
    runs = [stopped, capped, upload, stereo, noise]
    for run, expected in zip(runs, asr_page["expected"], strict=False):
        assert run["state"] == "done" and "real-time factor" in run["status"], run["status"]
        assert run["output"] == expected, (run["status"], expected)
    assert len(set(asr_page["expected"][:5])) >= 2  # the transcript depends on the audio


def test_listen_page_errors_are_one_line(asr_page):
    too_long, not_wav = asr_page["microphone"]["visits"][0]["listens"][5:]
    assert too_long["state"] == "error" and too_long["status"].startswith("error: long.wav is too long: ")
    assert "at most 2.00 s (32000 samples)" in too_long["status"] and too_long["samples"] is None
    assert (
        not_wav["state"] == "error" and not_wav["status"] == "error: notes.wav is not a WAV file (no RIFF/WAVE header)"
    )
    (refused,) = asr_page["denied"]["visits"][0]["listens"]
    assert refused["state"] == "error" and refused["status"].startswith("error: no microphone permission")
    gpt_page_on_asr = asr_page["microphone"]["visits"][1]["load"]
    assert gpt_page_on_asr["state"] == "error" and "is a speech recognizer (kind asr)" in gpt_page_on_asr["status"]
    chat_page_on_asr = asr_page["microphone"]["visits"][2]["load"]
    assert chat_page_on_asr["state"] == "error" and "(kind asr), not a chat model" in chat_page_on_asr["status"]
    load = asr_page["gpt_visit"]["load"]
    assert load["state"] == "error" and "not a speech recognizer (kind asr)" in load["status"]
    for status in (too_long["status"], not_wav["status"], refused["status"], load["status"]):
        assert "\n" not in status


# ---- the chat page (chat.html, `/` of a chat model's export): tfzoo.chat's session in the browser ----

TOO_LONG = "x" * 200


def _python_chat(chat_exported, turns) -> tuple[list[str], list[str], list[dict]]:
    """`python -m tfzoo.chat --runtime=onnx` on `turns` (one stdin line each, "/reset" starts over): its reply lines,
    its error lines, and the ONNX `ChatSession`'s timing of each reply (prefill/history tokens, dropped)."""
    from tfzoo.chat import ChatError, ChatSession
    from tfzoo.chat import main as chat_main
    from tfzoo.runtimes import load_runtime as load_tfzoo_runtime

    stdout, stderr = io.StringIO(), io.StringIO()
    argv = [f"--workdir={chat_exported['workdir']}", "--runtime=onnx", f"--max_new_tokens={CHAT_NEW_TOKENS}"]
    with contextlib.redirect_stderr(stderr):
        status = chat_main(
            [*argv, f"--system={CHAT_SYSTEM}"], stdin=io.StringIO("\n".join(turns) + "\n"), stdout=stdout
        )
    assert status == 0, stderr.getvalue()
    runtime = load_tfzoo_runtime(chat_exported["workdir"], "onnx")
    session = ChatSession(runtime, chat_exported["tokenizer"], system=CHAT_SYSTEM, max_new_tokens=CHAT_NEW_TOKENS)
    timings = []
    with contextlib.redirect_stderr(io.StringIO()):
        for text in turns:
            if text == "/reset":
                session.reset()
                continue
            with contextlib.suppress(ChatError):
                "".join(session.send(text))
                timings.append(dict(session.timing))
    return stdout.getvalue().split("\n")[:-1], stderr.getvalue().split("\n")[:-1], timings


SAMPLE_CHAT = {"temperature": 2.0, "top-k": 0, "top-p": 0.95, "seed": 5}
TEXT_PROMPT = "How much"  # the index page's stop/ban runs on the chat export


def _edge(*argv: str, stdin: str = "") -> tuple[str, list[str]]:
    """`python -m apps.edge ARGV` in this process (the .tflite file of the same export): stdout and its error lines."""
    from apps.edge.__main__ import run as edge_run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        edge_run(list(argv), stdin=io.StringIO(stdin), out=out)
    return out.getvalue(), [line for line in err.getvalue().splitlines() if line.startswith("error: ")]


def _fresh_pair(text: str, start: int = 0) -> str:
    """Two ASCII characters of `text` from `start` on that first occur there: a stop string there cuts `text` at
    `start` or later, and the pair is surely in `text`."""
    pairs = (text[i : i + 2] for i in range(start, len(text) - 1))
    return next(pair for pair in pairs if pair.isascii() and len(pair) == 2 and text.find(pair) >= start)


def _stop_ban_references(chat_exported, replies: list[str]) -> tuple[dict, dict]:
    """The chat page's and the index page's stop/ban cases on the chat export: the values (picked from the unstopped
    outputs), the page actions, and `python -m apps.edge`'s outputs and error lines for the same options."""
    export = chat_exported["dir"]
    chat_argv = ["--model", export, "--chat", f"--system={CHAT_SYSTEM}", f"--max_new_tokens={CHAT_NEW_TOKENS}"]
    two_turns = f"{CHAT_TURNS[0]}\n{CHAT_TURNS[1]}\n"
    stop, ban = _fresh_pair(replies[0], 2), _fresh_pair(replies[0])  # from the unstopped first reply
    fields = {"system": CHAT_SYSTEM, "max-new-tokens": CHAT_NEW_TOKENS}
    chat = {
        "stop": stop,
        "ban": ban,
        "replies": {
            flag: _edge(*chat_argv, f"--{flag}={value}", stdin=two_turns)[0]
            for flag, value in (("stop", stop), ("ban", ban))
        },
        "error": _edge(*chat_argv, "--stop=", stdin=two_turns)[1],
        "actions": [
            {"message": CHAT_TURNS[0], "fields": {**fields, "stop-strings": stop}},
            {"message": CHAT_TURNS[1]},
            {"reset": True},
            {"message": CHAT_TURNS[0], "fields": {"stop-strings": "", "banned-words": ban}},
            {"message": CHAT_TURNS[1]},
            {"message": CHAT_TURNS[2], "fields": {"stop-strings": f"{stop}\n\n"}},  # an empty line
        ],
    }
    text_argv = ["--model", export, "--prompt", TEXT_PROMPT, f"--max_new_tokens={CHAT_NEW_TOKENS}", "--loop=generate"]
    # The page's in-graph loop is the export's `generate` (the edge app's --loop=generate default); its streamed
    # loop is greedy: the greedy `generate`'s text for the same tables.
    loops, runs = {}, []
    for loop, strategy in (("generate", []), ("steps", ["--strategy=greedy"])):
        plain = _edge(*text_argv, *strategy)[0]
        text = plain[:-1]  # its newline out
        stop_value, ban_value = _fresh_pair(text, len(TEXT_PROMPT) + 2), _fresh_pair(text, len(TEXT_PROMPT))
        loops[loop] = {
            "plain": plain,
            "stop": stop_value,
            "ban": ban_value,
            "stopped": _edge(*text_argv, *strategy, f"--stop={stop_value}")[0],
            "banned": _edge(*text_argv, *strategy, f"--ban={ban_value}")[0],
        }
        for stop_field, ban_field in (("", ""), (stop_value, ""), ("", ban_value)):
            fields = {"stop-strings": stop_field, "banned-words": ban_field}
            runs.append({"prompt": TEXT_PROMPT, "maxNewTokens": CHAT_NEW_TOKENS, "loop": loop, "fields": fields})
    bad = [(["--stop=a", "--stop=b", "--stop=c", "--stop=d", "--stop=e"], "a\nb\nc\nd\ne", ""),  # 5 > 4 rows
           ([f"--stop={'q' * 17}"], "q" * 17, ""),  # 17 > 16 tokens
           (["--ban="], "", "\n\n")]  # fmt: skip
    errors = []
    for flags, stop_field, ban_field in bad:
        errors += _edge(*text_argv, *flags)[1]
        fields = {"stop-strings": stop_field, "banned-words": ban_field}
        runs.append({"prompt": TEXT_PROMPT, "maxNewTokens": CHAT_NEW_TOKENS, "loop": "generate", "fields": fields})
    return chat, {"loops": loops, "errors": errors, "runs": runs}


@pytest.fixture(scope="module")
def chat_page(chat_exported, tmp_path_factory) -> dict:
    """Three turns, an empty and a too-long message, Reset and a first turn again on chat.html (served at `/`); two
    turns with a stop string, two with a banned word; the index page's stop/ban runs; on a copy of the export whose
    report says `strategy: sample`, two sampled turns."""
    turns = [CHAT_TURNS[0], "", CHAT_TURNS[1], TOO_LONG, CHAT_TURNS[2], "/reset", CHAT_TURNS[0]]
    replies, errors, timings = _python_chat(chat_exported, turns)
    stop_chat, stop_text = _stop_ban_references(chat_exported, replies)
    fields = {"system": CHAT_SYSTEM, "max-new-tokens": CHAT_NEW_TOKENS}
    actions = [{"reset": True} if text == "/reset" else {"message": text} for text in turns]
    actions[0]["fields"] = fields
    index = {"query": "index.html", "runs": [{"prompt": "Hi", "maxNewTokens": 4}]}
    visits = [
        {"chat": actions},
        index,
        {"chat": stop_chat["actions"]},
        {"query": "index.html", "runs": stop_text["runs"]},
    ]
    mobile = {"viewport": "mobile", "visits": [{"chat": [{"message": CHAT_TURNS[1], "fields": fields}]}]}
    with _serve(chat_exported["dir"]) as url:
        desktop, mobile = _run_e2e({"url": url, "cases": [{"visits": visits}, mobile]})
    sample_dir = tmp_path_factory.mktemp("chat_sample") / "export"
    shutil.copytree(chat_exported["dir"], sample_dir)
    report = json.loads((sample_dir / "report.json").read_text())
    report["model"]["strategy"] = "sample"  # the page's sampling knobs; the prefill/decode graphs are the same
    (sample_dir / "report.json").write_text(json.dumps(report))
    sampled_actions = [{"message": CHAT_TURNS[0], "fields": {**fields, **SAMPLE_CHAT}}, {"message": CHAT_TURNS[1]}]
    with _serve(str(sample_dir)) as url:
        ((sampled,),) = [
            case["visits"] for case in _run_e2e({"url": url, "cases": [{"visits": [{"chat": sampled_actions}]}]})
        ]
    return {"desktop": desktop, "mobile": mobile, "replies": replies, "errors": errors, "timings": timings,
            "sampled": sampled, "stop_chat": stop_chat, "stop_text": stop_text}  # fmt: skip


def test_chat_page_replies_equal_tfzoo_chat_over_onnx_and_reuse_the_cache(chat_page):
    visit = chat_page["desktop"]["visits"][0]
    assert visit["load"]["state"] == "ready" and "chat (BPE) · context 96 tokens" in visit["load"]["info"], visit[
        "load"
    ]
    first, empty, second, too_long, third, reset, again = visit["chats"]
    replies = chat_page["replies"]
    assert len(replies) == 4 and len(set(replies[:3])) == 3, replies  # the replies differ: the check can fail
    for chat, reply in zip((first, second, third, again), replies, strict=True):
        assert chat["state"] == "done" and chat["reply"] == reply, (chat["status"], reply)
    timings = chat_page["timings"]
    for chat, timing in zip((first, second, third, again), timings, strict=True):
        assert (chat["prefillTokens"], chat["historyTokens"]) == (timing["prefill_tokens"], timing["history_tokens"])
        assert chat["dropped"] == timing["dropped_exchanges"]
        assert f"prefilled {chat['prefillTokens']} of {chat['historyTokens']} tokens" in chat["status"]
    # Turn 2 reuses the cache: it prefills the end of reply 1 (its <eos>, and its last token when it ran to the
    # limit) and <|user|> message <|assistant|>, not the history before.
    message = 1 + len(CHAT_TURNS[1].encode()) + 1
    assert second["prefillTokens"] == 1 + (first["newTokens"] == CHAT_NEW_TOKENS) + message < second["historyTokens"]
    # Turn 3 does not fit after the history: the oldest exchange is dropped, the rest re-prefilled, the page says so.
    assert third["dropped"] == 1 and third["prefillTokens"] == third["historyTokens"]
    assert third["notes"] == ["(context full: dropped the oldest 1 exchange(s))"]
    assert "(context full: dropped the oldest 1 exchange(s))" in chat_page["errors"]
    assert third["greyed"] == 2 and "dropped the oldest 1 exchange(s)" in third["status"]
    # Reset: the conversation is gone; the first message again gets the first reply from a fresh cache.
    assert reset["state"] == "ready" and reset["messages"] == 0
    assert again["prefillTokens"] == first["prefillTokens"] == first["historyTokens"]
    assert visit["consoleErrors"] == [] and chat_page["desktop"]["offsite"] == []


def test_chat_page_bad_messages_are_one_line_and_change_nothing(chat_page, chat_exported, tmp_path):
    first, empty, second, too_long = chat_page["desktop"]["visits"][0]["chats"][:4]
    python_errors = [line for line in chat_page["errors"] if line.startswith("error: ")]
    assert empty["state"] == too_long["state"] == "error"
    assert [empty["status"], too_long["status"]] == python_errors  # tfzoo.chat's words
    assert empty["status"] == "error: the message is empty" and empty["messages"] == first["messages"]
    assert (
        too_long["status"].startswith("error: the message is 202 tokens") and too_long["messages"] == second["messages"]
    )
    # The index page still generates on a chat export (its footer link); the phone layout does not scroll sideways.
    (run,) = chat_page["desktop"]["visits"][1]["runs"]
    assert run["state"] == "done" and run["output"].startswith("Hi"), run
    (mobile,) = chat_page["mobile"]["visits"][0]["chats"]
    assert mobile["state"] == "done" and mobile["scrollsSideways"] is False
    assert bundle(chat_exported["dir"], str(tmp_path / "site")) == "chat.html"  # a chat export's site opens the chat


def test_chat_page_samples_as_the_edge_app(chat_page, chat_exported):
    """With sampling knobs, the k-th token of a reply draws with step k: `apps.edge --chat --strategy sample`'s
    replies (the .tflite file of the same export, apps/edge/sampler.py) for the same seed and knobs."""
    from apps.edge.__main__ import run as edge_run

    knobs = [f"--{name.replace('-', '_')}={value}" for name, value in SAMPLE_CHAT.items()]
    argv = ["--model", chat_exported["dir"], "--chat", f"--system={CHAT_SYSTEM}", f"--max_new_tokens={CHAT_NEW_TOKENS}"]
    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()):
        assert (
            edge_run(
                [*argv, "--strategy=sample", *knobs], stdin=io.StringIO(f"{CHAT_TURNS[0]}\n{CHAT_TURNS[1]}\n"), out=out
            )
            == 0
        )
    visit = chat_page["sampled"]
    assert visit["load"]["state"] == "ready" and visit["consoleErrors"] == []
    assert all(chat["state"] == "done" and "sample (seed 5)" in chat["status"] for chat in visit["chats"]), visit
    assert "".join(chat["reply"] + "\n" for chat in visit["chats"]) == out.getvalue()
    greedy = chat_page["desktop"]["visits"][0]["chats"]
    assert [chat["reply"] for chat in visit["chats"]] != [greedy[0]["reply"], greedy[2]["reply"]]  # it sampled


def test_chat_page_stop_strings_and_banned_words_equal_the_edge_app(chat_page):
    """A stop string from the unstopped first reply cuts it there, a banned word from it is gone: the replies of
    `apps.edge --chat --stop S` / `--ban W` (the .tflite file of the same export); an empty value is its error line."""
    visit, want = chat_page["desktop"]["visits"][2], chat_page["stop_chat"]
    assert visit["load"]["state"] == "ready" and visit["consoleErrors"] == []
    stopped_1, stopped_2, reset, banned_1, banned_2, bad = visit["chats"]
    plain, stop, ban = chat_page["replies"], want["stop"], want["ban"]
    assert stop in plain[0] and ban in plain[0]  # the values occur in the unstopped reply: the checks can fail
    assert want["replies"]["stop"] == f"{stopped_1['reply']}\n{stopped_2['reply']}\n"
    assert stopped_1["reply"] == plain[0][: plain[0].index(stop)] != plain[0]  # cut before the stop string
    assert "at a stop string" in stopped_1["status"] and stop not in stopped_2["reply"]
    assert reset["state"] == "ready" and all(chat["state"] == "done" for chat in (stopped_2, banned_1, banned_2))
    assert want["replies"]["ban"] == f"{banned_1['reply']}\n{banned_2['reply']}\n"
    assert ban not in banned_1["reply"] and ban not in banned_2["reply"] and banned_1["reply"] != plain[0]
    assert bad["state"] == "error" and [bad["status"]] == want["error"]  # the edge app's words
    assert (
        bad["status"] == "error: --stop is empty: give the text to stop at" and bad["messages"] == banned_2["messages"]
    )


def test_index_page_stop_strings_and_banned_words_equal_the_edge_app(chat_page):
    """On the index page, both loops: the in-graph `generate` fed the stop/banned tables gives
    `apps.edge --loop=generate --stop S` / `--ban W`'s text; the streamed loop, applying them in the page, gives the
    greedy `generate`'s. Too many stop strings, a too long one and an empty banned word: the edge app's error lines."""
    visit, want = chat_page["desktop"]["visits"][3], chat_page["stop_text"]
    assert visit["load"]["state"] == "ready" and visit["consoleErrors"] == []
    runs = visit["runs"]
    for i, (loop, case) in enumerate(want["loops"].items()):
        plain, stopped, banned = runs[3 * i : 3 * i + 3]
        assert all(run["state"] == "done" for run in (plain, stopped, banned)), (plain, stopped, banned)
        assert plain["output"] + "\n" == case["plain"], loop
        continuation = case["plain"][len(TEXT_PROMPT) :]
        assert case["stop"] in continuation and case["ban"] in continuation  # the checks can fail
        assert stopped["output"] + "\n" == case["stopped"] != case["plain"], loop
        assert case["stop"] not in stopped["output"] and "at a stop string" in stopped["status"]
        assert banned["output"] + "\n" == case["banned"] != case["plain"], loop
        assert case["ban"] not in banned["output"][len(TEXT_PROMPT) :]
    assert "in-graph beam" in runs[0]["status"] and "greedy, streamed" in runs[3]["status"]
    # The streamed loop stops at the text: its output is the greedy text cut before the first stop string.
    greedy = want["loops"]["steps"]
    assert runs[4]["output"] == greedy["plain"][: greedy["plain"].index(greedy["stop"], len(TEXT_PROMPT))]
    bad = runs[6:]
    assert all(run["state"] == "error" for run in bad) and len(want["errors"]) == 3
    assert [run["status"] for run in bad] == want["errors"]
    assert want["errors"][0] == "error: 5 stop_sequences given; this export takes at most 4 (re-export to change it)"
    assert want["errors"][1] == "error: stop_sequences[0] is 17 tokens; this export takes at most 16 per sequence"
    assert want["errors"][2] == "error: --ban is empty: give the text to ban"
