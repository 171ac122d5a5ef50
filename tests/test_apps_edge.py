"""The edge app (`python -m apps.edge`) on a tiny exported `.tflite`: in a venv without TensorFlow, greedy parity
with the Python TFLite runtime in both loops, streaming, interactive mode, its tokenizer, the report reader the
apps share (`apps/edge/json_files.py`: format_version, the knob table and its defaults), and bad input.

The clean venv (numpy + ai-edge-litert + tokenizers only, `python -m venv` without system site packages) is made
once per module under tmp; the app runs there from a copy of `apps/edge` outside the repository, so
neither TensorFlow nor tfzoo nor the export package can be imported by accident.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from apps.edge.__main__ import run as edge_run
from apps.edge.edge_model import EdgeModel
from apps.edge.errors import AppError
from apps.edge.json_files import REPORT_FORMAT_VERSION, check_report, read_report, report_knobs
from apps.edge.knobs import knob_inputs
from apps.edge.tokenizer import load_tokenizer as load_app_tokenizer
from export.__main__ import main as export_main
from export.runtimes import load_runtime
from export_helpers import CHAT_MAX_LENGTH, CHAT_NEW_TOKENS, CHAT_STDIN, CHAT_SYSTEM, CHAT_TURNS, TEXT, make_workdir
from gpt2_reference import bpe_files, hf_checkpoint
from tfzoo.convert import convert_gpt2
from tfzoo.data.bpe_tokenizer import BpeTokenizer
from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.hf_tokenizer import hf_tokenizer_json
from tfzoo.data.tokenizers import build_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LENGTH = 32
PROMPTS = ("def ", "class Parser", "x = 1")  # "x" is not in the vocabulary: encodes to <unk>
NEW_TOKENS = 12
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH="", PYTHONNOUSERSITE="1")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    workdir = make_workdir(tmp_path_factory.mktemp("edge") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main(
            [
                f"--workdir={workdir}",
                "--formats=tflite",
                "--quantization=none",
                f"--max_length={MAX_LENGTH}",
                "--strategy=greedy",
            ]
        )
    assert status == 0
    export_dir = os.path.join(workdir, "export")
    return {"workdir": workdir, "dir": export_dir, "model": os.path.join(export_dir, "gpt.tflite")}


@pytest.fixture(scope="module")
def expected(exported) -> dict:
    """Prompt -> prompt + greedy completion from the Python TFLite runtime (export.runtimes) and tfzoo's tokenizer."""
    runtime = load_runtime(exported["workdir"], "tflite")
    tokenizer = CharTokenizer.from_text(TEXT)
    result = {}
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt)
        sequences, lengths, _ = runtime.generate(ids[None], [ids.size], NEW_TOKENS, strategy="greedy")
        result[prompt] = prompt + tokenizer.decode(sequences[0, ids.size : lengths[0]])
    assert len(set(result.values())) == len(PROMPTS)
    return result


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory) -> dict:
    """A venv with numpy, ai-edge-litert and tokenizers only, and a copy of the app outside the repository."""
    root = tmp_path_factory.mktemp("clean")
    venv = str(root / "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, env=ENV)
    python = os.path.join(venv, "bin", "python")
    numpy_version = importlib.metadata.version("numpy")
    litert_version = importlib.metadata.version("ai-edge-litert")
    tokenizers_version = importlib.metadata.version("tokenizers")
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"numpy=={numpy_version}",
            f"ai-edge-litert=={litert_version}",
            f"tokenizers=={tokenizers_version}",
        ],
        check=True,
        env=ENV,
        timeout=600,
    )
    app = root / "app"
    shutil.copytree(
        os.path.join(REPO, "apps", "edge"), app / "apps" / "edge", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copyfile(os.path.join(REPO, "apps", "__init__.py"), app / "apps" / "__init__.py")
    return {"python": python, "cwd": str(app)}


def _run_clean(clean_venv, *args, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [clean_venv["python"], "-m", "apps.edge", *args],
        cwd=clean_venv["cwd"],
        env=ENV,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_clean_venv_has_no_tensorflow(clean_venv):
    modules = ("tensorflow", "tfzoo", "export", "keras")
    probe = f"import importlib.util as u; print([m for m in {modules} if u.find_spec(m)])"
    result = subprocess.run(
        [clean_venv["python"], "-c", probe], cwd=clean_venv["cwd"], env=ENV, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("loop", ["steps", "generate"])
def test_greedy_output_equals_python_runtime_without_tensorflow(clean_venv, exported, expected, loop):
    for prompt in PROMPTS:
        result = _run_clean(
            clean_venv,
            "--model",
            exported["model"],
            "--prompt",
            prompt,
            "--max_new_tokens",
            str(NEW_TOKENS),
            f"--loop={loop}",
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected[prompt] + "\n"
        assert f"loop={loop}, strategy=greedy" in result.stderr and "tokens/s" in result.stderr


def test_interactive_in_clean_venv(clean_venv, exported, expected):
    lines = "".join(f"{p}\n" for p in PROMPTS[:2]) + "/quit\n"
    result = _run_clean(
        clean_venv, "--model", exported["model"], "--interactive", "--max_new_tokens", str(NEW_TOKENS), stdin=lines
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(f"> {expected[p]}\n" for p in PROMPTS[:2]) + "> "
    assert result.stderr.count("tokens/s") == 2


class _Writes(io.StringIO):
    """Records each `write` (with the flush after it) to see the stream arrive token by token."""

    def __init__(self):
        super().__init__()
        self.chunks = []

    def write(self, text):
        self.chunks.append(text)
        return super().write(text)


def test_steps_loop_streams_each_token(exported, expected, capsys):
    out = _Writes()
    status = edge_run(["--model", exported["model"], "--prompt", "def ", "--max_new_tokens", str(NEW_TOKENS)], out=out)
    assert status == 0 and out.getvalue() == expected["def "] + "\n"
    new_tokens = len(expected["def "]) - len("def ")
    assert len(out.chunks) == 1 + new_tokens + 1  # the prompt, one chunk per token, the end of line
    status = edge_run(
        ["--model", exported["model"], "--prompt", "def ", "--max_new_tokens", str(NEW_TOKENS), "--loop=generate"],
        out=(out := _Writes()),
    )
    assert status == 0 and out.chunks == [expected["def "] + "\n"]
    argv = ["--model", exported["dir"], "--prompt", "def ", "--max_new_tokens", str(NEW_TOKENS)]
    status = edge_run(argv, out=(out := _Writes()))
    assert status == 0 and out.getvalue() == expected["def "] + "\n"  # the export folder: its report's gpt.tflite
    capsys.readouterr()


def test_builtin_kernels_give_the_same_text_in_both_loops(exported, expected, capsys):
    for loop in ("steps", "generate"):
        out = io.StringIO()
        argv = ["--model", exported["model"], "--prompt", "def ", "--max_new_tokens", str(NEW_TOKENS)]
        status = edge_run([*argv, f"--loop={loop}", "--kernels=builtin"], out=out)
        assert status == 0 and out.getvalue() == expected["def "] + "\n", loop
    with pytest.raises(AppError, match="unknown kernels 'gpu'; choose from xnnpack, builtin"):
        EdgeModel(exported["model"], eos_id=1, pad_id=0, knobs={}, kernels="gpu")
    capsys.readouterr()


def test_sampling_is_seeded_and_stays_in_vocabulary(exported, capsys):
    def sample(seed):
        out = io.StringIO()
        args = [
            "--model",
            exported["model"],
            "--prompt",
            "def ",
            "--strategy=sample",
            "--temperature=1e4",
            f"--seed={seed}",
            "--max_new_tokens=20",
        ]
        assert edge_run(args, out=out) == 0
        return out.getvalue()

    first, again, other = sample(1), sample(1), sample(2)
    assert first == again and first != other
    assert first.startswith("def ") and set(first[4:-1]) <= set(TEXT) | {"\ufffd"}
    capsys.readouterr()


@pytest.fixture(scope="module")
def every_tokenizer(tmp_path_factory) -> dict:
    """A tiny tfzoo tokenizer of every type that has a Hugging Face form."""
    directory = str(tmp_path_factory.mktemp("gpt2_bpe"))
    bpe_files(directory)
    return {
        "char": CharTokenizer.from_text(TEXT + "é"),
        "byte": ByteTokenizer(),
        "wordpiece": build_tokenizer("wordpiece", TEXT, vocabulary_size=80),
        "sentencepiece": build_tokenizer("sentencepiece", TEXT, vocabulary_size=60),
        "bpe": BpeTokenizer.from_files(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")),
    }


@pytest.mark.parametrize("text", ["def f(x):\n  return x", "héllo wörld ✓ 😀", "", "  class   Parser:"])
def test_tokenizer_matches_tfzoo(every_tokenizer, text, tmp_path):
    for kind, tokenizer in every_tokenizer.items():
        (tmp_path / "hf_tokenizer.json").write_text(json.dumps(hf_tokenizer_json(tokenizer)), encoding="utf-8")
        report = {"model": {"hf_tokenizer": "hf_tokenizer.json", "eos_ids": [tokenizer.eos_id], "pad_id": 0}}
        mine = load_app_tokenizer(str(tmp_path), report)
        ids = tokenizer.encode(text)
        assert mine.encode(text) == ids.tolist(), kind
        with_specials = np.concatenate([ids, [tokenizer.eos_id, tokenizer.pad_id]]).astype(np.int64)
        assert mine.decode(with_specials) == tokenizer.decode(with_specials), kind
        prompt = tokenizer.encode("def").tolist()
        expected = tokenizer.decode(prompt + ids.tolist())[len(tokenizer.decode(prompt)) :]
        assert mine.continuation(prompt, ids.tolist()) == expected, kind
        stream = mine.stream_decoder(prompt)
        pieces = [stream(int(i)) for i in with_specials] + [stream(None)]
        assert "".join(pieces) == expected, kind
        if "\ufffd" not in expected:  # (an unknown character decodes to U+FFFD)
            assert all("\ufffd" not in piece for piece in pieces), kind  # no character split between tokens


def test_tokenizer_streams_bytes_of_one_character_together(tmp_path):
    tokenizer = ByteTokenizer()
    (tmp_path / "hf_tokenizer.json").write_text(json.dumps(hf_tokenizer_json(tokenizer)), encoding="utf-8")
    mine = load_app_tokenizer(
        str(tmp_path), {"model": {"hf_tokenizer": "hf_tokenizer.json", "eos_ids": [1], "pad_id": 0}}
    )
    stream = mine.stream_decoder()
    assert [stream(int(i)) for i in tokenizer.encode("é😀a")] == ["", "é", "", "", "", "😀", "a"]
    stream = mine.stream_decoder()
    assert [stream(int(i)) for i in tokenizer.encode("é")[:1]] + [stream(None)] == ["", "\ufffd"]  # a dangling byte


GPT2_PROMPTS = ("The quick brown", "def add(a, b):", "Héllo  wörld 🙂")
GPT2_NEW_TOKENS = 6


@pytest.fixture(scope="module")
def gpt2_export(tmp_path_factory) -> dict:
    """A tiny random Hugging Face GPT-2 converted with `tfzoo.convert` and exported to TFLite."""
    root = tmp_path_factory.mktemp("gpt2")
    source = str(root / "hf")
    reference = hf_checkpoint(source, bpe_files(source), seed=5)
    workdir = str(root / "run")
    assert convert_gpt2(source, workdir)["tokenizer"] == "bpe"
    arguments = ["--formats=tflite", "--quantization=none", "--max_length=20", "--strategy=greedy"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert export_main([f"--workdir={workdir}", *arguments]) == 0
    export_dir = os.path.join(workdir, "export")
    return {
        "source": source,
        "reference": reference,
        "dir": export_dir,
        "model": os.path.join(export_dir, "gpt.tflite"),
    }


def test_converted_gpt2_has_the_hugging_face_tokenizer_ids_and_greedy_text(gpt2_export, capsys):
    import torch
    from transformers import GPT2Tokenizer

    source = gpt2_export["source"]
    hf = GPT2Tokenizer(os.path.join(source, "vocab.json"), os.path.join(source, "merges.txt"))
    app = load_app_tokenizer(gpt2_export["dir"], _report(gpt2_export))
    for text in (*GPT2_PROMPTS, "x<|endoftext|>y  \n\n  z", "日本語 's 'll"):
        assert app.encode(text) == hf.encode(text), text
        assert app.decode(hf.encode(text)) == hf.decode(hf.encode(text), skip_special_tokens=True)
    assert app.eos_id == app.pad_id == hf.eos_token_id
    for prompt in GPT2_PROMPTS:
        ids = hf.encode(prompt)
        with torch.no_grad():
            out = gpt2_export["reference"].generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=GPT2_NEW_TOKENS,
                do_sample=False,
                eos_token_id=hf.eos_token_id,
                pad_token_id=hf.eos_token_id,
            )
        expected = prompt + hf.decode(out[0, len(ids) :].tolist(), skip_special_tokens=True) + "\n"
        for loop in ("steps", "generate"):
            out_text = io.StringIO()
            argv = ["--model", gpt2_export["model"], "--prompt", prompt, f"--max_new_tokens={GPT2_NEW_TOKENS}"]
            assert edge_run([*argv, f"--loop={loop}"], out=out_text) == 0
            assert out_text.getvalue() == expected, (prompt, loop)
    capsys.readouterr()


@pytest.fixture(scope="module")
def no_generation_model(tmp_path_factory, exported) -> str:
    """A valid `.tflite` (an add) without the generation signatures, with the real export's hf_tokenizer.json
    and report.json next to it."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def add_one(x):
        return {"y": x + 1.0}

    folder = tmp_path_factory.mktemp("plain")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([add_one.get_concrete_function()], add_one)
    path = str(folder / "plain.tflite")
    with open(path, "wb") as file:
        file.write(converter.convert())
    for name in ("hf_tokenizer.json", "report.json"):
        shutil.copyfile(os.path.join(exported["dir"], name), folder / name)
    return path


def _bad(model: str, *args) -> str:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = edge_run(["--model", model, *args], out=io.StringIO())
    assert status == 2, stderr.getvalue()
    message = stderr.getvalue()
    assert message.startswith("error: ") and message.count("\n") == 1 and "Traceback" not in message, message
    return message


def test_bad_input_gives_one_line_and_exit_2(exported, no_generation_model, tmp_path):
    model = exported["model"]
    assert "no model file at" in _bad(str(tmp_path / "missing.tflite"), "--prompt", "a")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer" * 10)
    for name in ("hf_tokenizer.json", "report.json"):
        shutil.copyfile(os.path.join(exported["dir"], name), tmp_path / name)
    assert "cannot load" in _bad(str(garbage), "--prompt", "a")
    assert "has no prefill/decode signature" in _bad(no_generation_model, "--prompt", "a")
    assert "has no generate signature" in _bad(no_generation_model, "--prompt", "a", "--loop=generate")
    assert "the prompt is empty" in _bad(model, "--prompt", "")
    assert "must be under 32" in _bad(model, "--prompt", "a" * MAX_LENGTH)
    assert "must be under 32" in _bad(model, "--prompt", "a" * MAX_LENGTH, "--loop=generate")
    assert "--loop=generate --strategy=beam" in _bad(model, "--prompt", "a", "--strategy=beam")
    assert "no 'sample' loop" in _bad(model, "--prompt", "a", "--loop=generate", "--strategy=sample")
    assert "--prompt TEXT or --interactive" in _bad(model)
    assert "--top_p must be in (0, 1]" in _bad(model, "--prompt", "a", "--strategy=sample", "--top_p=0")
    assert "--seed must be an int32" in _bad(model, "--prompt", "a", "--strategy=sample", "--seed=2147483648")
    assert "--top_k must be a whole number" in _bad(model, "--prompt", "a", "--strategy=sample", "--top_k=1.5")
    assert "--temperature needs --strategy=sample" in _bad(model, "--prompt", "a", "--temperature=0.5")
    assert "--repetition_penalty works with --loop=generate only" in _bad(
        model, "--prompt", "a", "--repetition_penalty=1.2"
    )
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(model, other / "gpt.tflite")
    assert "no report.json in" in _bad(str(other / "gpt.tflite"), "--prompt", "a")
    report = _report(exported)
    (other / "report.json").write_text(json.dumps(report))
    assert f"no tokenizer at {other / 'hf_tokenizer.json'}" in _bad(str(other / "gpt.tflite"), "--prompt", "a")
    (other / "hf_tokenizer.json").write_text('{"model": {"type": "WordPiece"}}')
    assert f"{other / 'hf_tokenizer.json'}: not a Hugging Face tokenizer" in _bad(
        str(other / "gpt.tflite"), "--prompt", "a"
    )
    (other / "hf_tokenizer.json").write_text("{")
    assert f"{other / 'hf_tokenizer.json'}: not a Hugging Face tokenizer" in _bad(
        str(other / "gpt.tflite"), "--prompt", "a"
    )
    shutil.copyfile(os.path.join(exported["dir"], "hf_tokenizer.json"), other / "hf_tokenizer.json")
    old_report = {**report, "model": {k: v for k, v in report["model"].items() if k != "hf_tokenizer"}}
    (other / "report.json").write_text(json.dumps(old_report))
    assert "names no hf_tokenizer.json" in _bad(str(other / "gpt.tflite"), "--prompt", "a")
    (other / "report.json").write_text(json.dumps({**report, "format_version": REPORT_FORMAT_VERSION + 1}))
    assert f"format_version {REPORT_FORMAT_VERSION + 1}; this app reads" in _bad(
        str(other / "gpt.tflite"), "--prompt", "a"
    )
    del report["format_version"]
    (other / "report.json").write_text(json.dumps(report))
    assert "has no format_version" in _bad(str(other / "gpt.tflite"), "--prompt", "a")


def _report(exported) -> dict:
    with open(os.path.join(exported["dir"], "report.json"), encoding="utf-8") as file:
        return json.load(file)


def test_the_export_writes_the_knob_table_the_apps_read(exported):
    """The real report: format_version and a knob for every input of the exported generate signature."""
    report = _report(exported)
    check_report(report, "report.json", AppError)
    knobs = report_knobs(report, error=AppError)
    assert {
        "max_new_tokens",
        "repetition_penalty",
        "no_repeat_ngram_size",
        "length_penalty",
        "temperature",
        "top_k",
        "top_p",
        "seed",
    } <= set(knobs)
    assert "greedy" in knobs["max_new_tokens"].strategies and knobs["temperature"].strategies == ("sample",)
    assert knobs["length_penalty"].strategies == ("beam",) and knobs["length_penalty"].default == 1.0


def test_knob_defaults_come_from_the_report(exported, tmp_path, capsys):
    """The same model with another report: the CLI's --max_new_tokens default and the loop's knobs follow it."""
    for name in os.listdir(exported["dir"]):
        if name != "report.json":
            os.symlink(os.path.join(exported["dir"], name), tmp_path / name)
    report = _report(exported)
    report["knobs"]["max_new_tokens"]["default"] = 3
    (tmp_path / "report.json").write_text(json.dumps(report))
    model = str(tmp_path / "gpt.tflite")
    for loop in ("steps", "generate"):
        out = io.StringIO()
        assert edge_run(["--model", model, "--prompt", "def ", f"--loop={loop}"], out=out) == 0
        assert "[3 new tokens in" in capsys.readouterr().err
        assert len(out.getvalue()) == len("def ") + 3 + 1

    def in_graph(folder, *flags) -> str:
        out = io.StringIO()
        args = ["--model", os.path.join(folder, "gpt.tflite"), "--prompt", "def ", "--loop=generate", *flags]
        assert edge_run([*args, "--max_new_tokens=20"], out=out) == 0
        return out.getvalue()

    plain = in_graph(exported["dir"])
    report["knobs"]["repetition_penalty"]["default"] = 3.0
    (tmp_path / "report.json").write_text(json.dumps(report))
    penalised = in_graph(str(tmp_path))
    assert penalised == in_graph(exported["dir"], "--repetition_penalty=3") != plain
    capsys.readouterr()


GOOD_REPORT = {
    "format_version": REPORT_FORMAT_VERSION,
    "knobs": {
        "max_new_tokens": {"dtype": "int32", "default": 7, "strategies": ["greedy", "sample"]},
        "repetition_penalty": {"dtype": "float32", "default": 1.5, "strategies": ["greedy", "sample"]},
        "top_k": {"dtype": "int32", "default": 3, "strategies": ["sample"]},
    },
}


def test_report_reader_checks_format_version(tmp_path):
    check_report(GOOD_REPORT, "r.json", AppError)
    cases = [
        ({"knobs": {}}, "r.json has no format_version (an older `python -m export` wrote it): re-export the model"),
        ({**GOOD_REPORT, "format_version": 3}, "r.json has format_version 3; this app reads format_version 2"),
        ({**GOOD_REPORT, "format_version": 1}, "r.json has format_version 1; this app reads 2: re-export"),
        ({**GOOD_REPORT, "format_version": "2"}, "r.json: format_version must be a positive integer, got '2'"),
        ({**GOOD_REPORT, "format_version": True}, "r.json: format_version must be a positive integer, got True"),
        ([GOOD_REPORT], "r.json: expected a JSON object"),
    ]
    for report, message in cases:
        with pytest.raises(AppError) as caught:
            check_report(report, "r.json", AppError)
        assert str(caught.value).startswith(message) and "\n" not in str(caught.value), caught.value
    (tmp_path / "report.json").write_text(json.dumps(GOOD_REPORT))
    assert read_report(str(tmp_path), AppError) == GOOD_REPORT
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(AppError, match="cannot read .*report.json"):
        read_report(str(tmp_path), AppError)
    with pytest.raises(AppError, match="no report.json in .*missing: not a `python -m export` folder"):
        read_report(str(tmp_path / "missing"), AppError)


def test_report_knob_table_is_checked_and_its_defaults_are_fed():
    knobs = report_knobs(GOOD_REPORT, error=AppError)
    inputs = knob_inputs(knobs, ["token_ids", "max_new_tokens", "repetition_penalty", "top_k"], {"top_k": 5}, AppError)
    assert inputs == {"max_new_tokens": 7, "repetition_penalty": 1.5, "top_k": 5}
    assert [inputs[n].dtype for n in inputs] == [np.int32, np.float32, np.int32]
    assert knob_inputs(knobs, ["top_k"], {}, AppError) == {"top_k": 3}
    with pytest.raises(AppError, match="--top_k must be a whole number"):
        knob_inputs(knobs, ["top_k"], {"top_k": 2.5}, AppError)
    bad_entries = [
        ({"dtype": "int64", "default": 0, "strategies": []}, "dtype 'int64'; expected one of int32, float32"),
        ({"dtype": "int32", "default": 0.5, "strategies": []}, "default 0.5, not a number of dtype int32"),
        ({"dtype": "float32", "default": "1", "strategies": []}, "default '1', not a number of dtype float32"),
        ({"dtype": "int32", "default": 0, "strategies": "greedy"}, "needs 'strategies', a list of strategy names"),
    ]
    for entry, message in bad_entries:
        with pytest.raises(AppError, match=f"r.json: knob 'top_k' has {message}|r.json: knob 'top_k' {message}"):
            report_knobs({**GOOD_REPORT, "knobs": {"top_k": entry}}, "r.json", AppError)
    with pytest.raises(AppError, match="'knobs' must map each decoding knob"):
        report_knobs({"format_version": REPORT_FORMAT_VERSION}, "r.json", AppError)


@pytest.fixture(scope="module")
def sample_exported(tmp_path_factory) -> dict:
    """The tiny model exported with the sample strategy: `generate` is the in-graph sampler."""
    workdir = make_workdir(tmp_path_factory.mktemp("edge_sample") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main(
            [
                f"--workdir={workdir}",
                "--formats=tflite",
                "--quantization=none",
                f"--max_length={MAX_LENGTH}",
                "--strategy=sample",
            ]
        )
    assert status == 0
    return {"dir": os.path.join(workdir, "export"), "model": os.path.join(workdir, "export", "gpt.tflite")}


SAMPLE_SETTINGS = [  # (seed, temperature, top_k, top_p): extreme seeds, each filter alone and together
    (0, 3.0, 0, 1.0),  # (the model's logits are spread out by ~20: high temperatures make the draws vary)
    (1, 6.0, 0, 1.0),
    (-7, 10.0, 5, 1.0),
    (2**31 - 1, 8.0, 0, 0.9),
    (-(2**31), 12.0, 8, 0.8),
    (12345, 5.0, 3, 0.95),
    (99, 20.0, 0, 0.99),
]


def test_streamed_sampling_equals_in_graph_generate(sample_exported):
    """`steps` with the hash gives the in-graph sampler's tokens for every seed and knob setting."""
    report = read_report(sample_exported["dir"], AppError)
    table = report_knobs(report, error=AppError)
    tokenizer = load_app_tokenizer(sample_exported["dir"], report)
    model = EdgeModel(
        sample_exported["model"], tokenizer.eos_id, tokenizer.pad_id, table, banned_ids=report["model"]["banned_ids"]
    )
    assert model.strategies["sample"] == "generate"
    seen, count = set(), 0
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt)
        for seed, temperature, top_k, top_p in SAMPLE_SETTINGS:
            knobs = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
            in_graph = model.generate(ids, MAX_LENGTH, strategy="sample", **knobs)
            streamed = list(model.steps(ids, MAX_LENGTH, **knobs))
            assert streamed == in_graph, (prompt, knobs)
            seen.add(tuple(streamed))
            count += len(streamed)
    # The draws vary (18 distinct sequences of 21 here, 430 tokens compared).
    assert len(seen) >= 0.8 * len(PROMPTS) * len(SAMPLE_SETTINGS) and count >= 300


@pytest.mark.parametrize("seed", [3, -(2**31)])
def test_cli_streamed_sampling_prints_the_in_graph_text(sample_exported, seed, capsys):
    def complete(loop):
        args = ["--model", sample_exported["model"], "--prompt", "class Parser", f"--loop={loop}"]
        knobs = ["--strategy=sample", f"--seed={seed}", "--temperature=8", "--top_k=10", "--top_p=0.9"]
        assert edge_run([*args, *knobs, "--max_new_tokens=16"], out=(out := io.StringIO())) == 0
        return out.getvalue()

    streamed = complete("steps")
    assert streamed == complete("generate") and len(streamed) > len("class Parser\n")
    assert "loop=steps, strategy=sample" in capsys.readouterr().err


def test_streamed_sampling_in_clean_venv(clean_venv, sample_exported):
    """The same without TensorFlow: numpy + ai-edge-litert + tokenizers only."""
    knobs = ["--strategy=sample", "--seed=-2147483648", "--temperature=12", "--top_k=8", "--top_p=0.8"]
    knobs.append("--max_new_tokens=24")
    streamed, in_graph = (
        _run_clean(clean_venv, "--model", sample_exported["model"], "--prompt", "def ", f"--loop={loop}", *knobs)
        for loop in ("steps", "generate")
    )
    assert streamed.returncode == in_graph.returncode == 0, streamed.stderr + in_graph.stderr
    assert streamed.stdout == in_graph.stdout and len(streamed.stdout) > len("def \n") + 5


# ---- speech recognition (`--audio`): a tiny `asr` export, a held-out utterance as a WAV file ----


@pytest.fixture(scope="module")
def asr_exported(tmp_path_factory) -> dict:
    """A tiny speech recognizer (perturbed weights) exported to TFLite, a held-out clip and its expected transcript."""
    from asr_helpers import tiny_asr_export
    from tfzoo.data.speech_data import load_speech_data, write_wav
    from tfzoo.run_folder import RunFolder

    root = tmp_path_factory.mktemp("edge_asr")
    with contextlib.redirect_stdout(io.StringIO()):
        workdir, export_dir, report = tiny_asr_export(root, formats="tflite")
    config = RunFolder(workdir).read_config()
    data = load_speech_data(
        num_train=config["num_train"],
        num_validation=config["num_validation"],
        seed=config["seed"],
        data_dir=config["data_dir"],
        max_seconds=config["max_audio_seconds"],
    )
    clips, transcripts = [], []
    runtime = load_runtime(workdir, "tflite")
    tokenizer = RunFolder(workdir).load_tokenizer()
    for index in range(3):
        samples = data.validation_audio[index, : data.validation_lengths[index]]
        clips.append(str(root / f"clip{index}.wav"))
        write_wav(clips[-1], samples)
        sequences, lengths, _ = runtime.generate(audio=samples[None], max_new_tokens=report["model"]["max_length"] - 1)
        transcripts.append(tokenizer.decode(sequences[0, 1 : lengths[0]]))
    assert len(set(transcripts)) >= 2 and any(transcripts)  # audio-dependent
    return {"workdir": workdir, "dir": export_dir, "clips": clips, "transcripts": transcripts, "report": report}


def test_audio_transcript_equals_python_runtime_without_tensorflow(clean_venv, asr_exported):
    for clip, expected in zip(asr_exported["clips"], asr_exported["transcripts"]):
        result = _run_clean(clean_venv, "--model", asr_exported["dir"], "--audio", clip)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected + "\n"
        assert "real-time factor" in result.stderr


def test_generate_cli_transcribes_a_wav_file_in_keras_and_tflite(asr_exported, capsys):
    from tfzoo.generate import main as generate_main

    clip, expected = asr_exported["clips"][0], asr_exported["transcripts"][0]
    for runtime in ("keras", "tflite"):
        assert generate_main(["--workdir", asr_exported["workdir"], "--audio", clip, f"--runtime={runtime}"]) == 0
        assert capsys.readouterr().out == expected + "\n", runtime
    assert generate_main(["--workdir", asr_exported["workdir"], "--prompt", "one"]) == 2
    assert "pass --audio=PATH" in capsys.readouterr().err


def _wav(path, samples, rate: int = 16000, channels: int = 1, width: int = 2) -> str:
    import wave

    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(np.asarray(samples).tobytes())
    return str(path)


def test_bad_audio_gives_one_line_naming_what_was_expected(asr_exported, exported, tmp_path, capsys):
    import re

    from tfzoo.generate import main as generate_main

    model, limit = asr_exported["dir"], asr_exported["report"]["model"]["max_audio_samples"]
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("not audio at all")
    cases = {
        _wav(tmp_path / "rate.wav", np.zeros(800, np.int16), rate=22050): "sample rate of 22050 Hz; expected 16000 Hz",
        _wav(tmp_path / "stereo.wav", np.zeros(1600, np.int16), channels=2): "2 channels; expected mono",
        _wav(tmp_path / "byte.wav", np.zeros(800, np.uint8), width=1): "8-bit samples; expected 16-bit PCM",
        _wav(tmp_path / "empty.wav", np.zeros(0, np.int16)): "holds no audio",
        _wav(tmp_path / "long.wav", np.zeros(limit + 1, np.int16)): f"expected at most {limit / 16000:g} s",
        str(not_wav): "is not a WAV file .*expected 16 kHz mono 16-bit PCM WAV",
        str(tmp_path / "missing.wav"): "no audio file at",
    }
    for path, expected in cases.items():
        assert re.search(expected, _bad(model, "--audio", path)), path
        if os.path.basename(path) in ("rate.wav", "long.wav", "notes.wav"):  # tfzoo.generate's reader too
            assert generate_main(["--workdir", asr_exported["workdir"], "--audio", path]) == 2
            error = capsys.readouterr().err.strip().splitlines()[-1]  # after any library warnings
            assert error.startswith("error: ") and re.search(expected.split(";")[0].split(" .*")[0], error), error
    clip = asr_exported["clips"][0]
    assert "pass --audio clip.wav, not --prompt" in _bad(model, "--prompt", "one")
    assert "--audio needs a speech recognizer's export" in _bad(exported["model"], "--audio", clip)
    assert "--strategy does not go with --audio" in _bad(model, "--audio", clip, "--strategy=beam")


# --- `--chat` (issue 20): a multi-turn chat over an exported chat model, as `python -m tfzoo.chat` ---


def _tfzoo_chat(chat_exported, capsys, *flags) -> tuple[str, str]:
    """`python -m tfzoo.chat --runtime=tflite` over the same export, on CHAT_STDIN: (stdout, stderr)."""
    from tfzoo.chat import main as chat_main

    capsys.readouterr()
    stdout = io.StringIO()
    argv = [f"--workdir={chat_exported['workdir']}", "--runtime=tflite", f"--max_new_tokens={CHAT_NEW_TOKENS}"]
    assert chat_main([*argv, f"--system={CHAT_SYSTEM}", *flags], stdin=io.StringIO(CHAT_STDIN), stdout=stdout) == 0
    return stdout.getvalue(), capsys.readouterr().err


def _edge_chat(clean_venv, chat_exported, *flags) -> subprocess.CompletedProcess:
    return _run_clean(
        clean_venv,
        *("--model", chat_exported["dir"], "--chat", "--verbose", f"--system={CHAT_SYSTEM}"),
        *(f"--max_new_tokens={CHAT_NEW_TOKENS}", *flags),
        stdin=CHAT_STDIN,
    )


def _turn_lines(stderr: str) -> list[tuple[int, int, int]]:
    """(prefilled, history, new tokens) of each `--verbose` turn line."""
    import re

    pattern = r"\[turn \d+: prefilled (\d+) of (\d+) tokens, (\d+) new tokens in"
    return [tuple(int(n) for n in m.groups()) for m in re.finditer(pattern, stderr)]


def test_chat_replies_equal_tfzoo_chat_over_the_tflite_runtime_without_tensorflow(clean_venv, chat_exported, capsys):
    from tfzoo.chat import ChatSession
    from tfzoo.runtimes import load_runtime as load_tfzoo_runtime

    want, want_err = _tfzoo_chat(chat_exported, capsys)
    result = _edge_chat(clean_venv, chat_exported)
    assert result.returncode == 0, result.stderr
    assert result.stdout == want  # the same greedy tokens, turn after turn, the bad lines skipped alike
    replies = want.split("\n")[:-1]
    assert len(replies) == len(CHAT_TURNS) and len(set(replies)) == len(CHAT_TURNS)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [line for line in want_err.splitlines() if line.startswith("error: ")]
    assert errors[0] == "error: the message is empty" and "202 tokens" in errors[1] and len(errors) == 2
    dropped = "(context full: dropped the oldest 1 exchange(s))"
    assert dropped in result.stderr and dropped in want_err  # turn 3 overflows the 96-token context alike
    # The KV cache is kept: turn 2 prefills only what it lacks, as tfzoo.chat's session does (its counts).
    turns = _turn_lines(result.stderr)
    session = ChatSession(
        load_tfzoo_runtime(chat_exported["workdir"], "tflite"),
        chat_exported["tokenizer"],
        system=CHAT_SYSTEM,
        max_new_tokens=CHAT_NEW_TOKENS,
    )
    counts = []
    for text in CHAT_TURNS:
        "".join(session.send(text))
        counts.append((session.timing["prefill_tokens"], session.timing["history_tokens"]))
    assert [turn[:2] for turn in turns] == counts
    first_new = turns[0][2]
    message = 1 + len(CHAT_TURNS[1].encode()) + 1  # <|user|> bytes <|assistant|>
    # The previous reply's <eos> (and its last token when it stopped at max_new_tokens: never fed), the message.
    assert turns[1][0] == 1 + (first_new == CHAT_NEW_TOKENS) + message < turns[1][1]
    assert turns[2][0] == turns[2][1]  # after dropping an exchange the cache is rebuilt from the kept history


def _ascii_pair(text: str, start: int = 0) -> str:
    return next(text[i : i + 2] for i in range(start, len(text) - 1) if text[i : i + 2].isascii())


def test_chat_stop_and_ban_equal_tfzoo_chat(clean_venv, chat_exported, capsys):
    plain = _tfzoo_chat(chat_exported, capsys)[0].split("\n")
    stop, ban = _ascii_pair(plain[1], 2), _ascii_pair(plain[0])
    want = _tfzoo_chat(chat_exported, capsys, f"--stop={stop}", f"--ban={ban}")[0]
    result = _edge_chat(clean_venv, chat_exported, f"--stop={stop}", f"--ban={ban}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == want
    assert want != "\n".join(plain) and stop not in want and ban not in want


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_chat_prompts_on_a_terminal_resets_and_ends_at_eof(chat_exported, capsys):
    out = io.StringIO()
    assert edge_run(["--model", chat_exported["dir"], "--chat", "--verbose"], stdin=io.StringIO(""), out=out) == 0
    assert out.getvalue() == ""
    stdin = _Terminal("Hi!\n/reset\nHi!\n/quit\nHi!\n")
    capsys.readouterr()
    assert edge_run(["--model", chat_exported["dir"], "--chat", "--verbose", "--max_new_tokens=8"], stdin, out) == 0
    first, second, end = out.getvalue().split("\n")
    err = capsys.readouterr().err
    assert first == second and end == "" and err.count("> ") == 4  # /reset: the same reply; /quit ends
    assert [turn[0] for turn in _turn_lines(err)] == [5, 5]  # after /reset the whole (new) history again


def test_chat_bad_input_is_one_line_and_exit_2(exported, chat_exported):
    chat = chat_exported["dir"]
    assert "has no model.chat_template: not a chat model" in _bad(exported["model"], "--chat")
    assert "--prompt does not go with --chat" in _bad(chat, "--chat", "--prompt", "a")
    assert "--interactive does not go with --chat" in _bad(chat, "--chat", "--interactive")
    assert "--loop=generate does not go with it" in _bad(chat, "--chat", "--loop=generate")
    assert "--system goes with --chat" in _bad(chat, "--prompt", "a", "--system=Shop.")
    assert "--verbose goes with --chat" in _bad(chat, "--prompt", "a", "--verbose")
    assert "--chat is a generation flag" in _bad(chat, "--text", "a", "--chat")
    assert f"--max_new_tokens must be from 1 to {CHAT_MAX_LENGTH - 1}" in _bad(chat, "--chat", "--max_new_tokens=96")
    assert "--stop is empty" in _bad(chat, "--chat", "--stop=")
    assert "--repetition_penalty works with --loop=generate only" in _bad(chat, "--chat", "--repetition_penalty=1.2")
    assert "the system message is 101 tokens, too long" in _bad(chat, "--chat", f"--system={'s' * 100}")
