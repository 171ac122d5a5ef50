"""The edge app (`python -m apps.edge`) on a tiny exported `.tflite`: in a venv without TensorFlow, greedy parity
with the Python TFLite runtime in both loops, streaming, interactive mode, its tokenizer, and bad input.

The clean venv (numpy + ai-edge-litert only, `python -m venv` without system site packages) is made
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
from apps.edge.tokenizer import JsonTokenizer
from export.__main__ import main as export_main
from export.runtimes import load_runtime
from export_helpers import TEXT, make_workdir
from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.char_tokenizer import CharTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LENGTH = 32
PROMPTS = ("def ", "class Parser", "x = 1")  # "x" is not in the vocabulary: encodes to <unk>
NEW_TOKENS = 12
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH="", PYTHONNOUSERSITE="1")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    workdir = make_workdir(tmp_path_factory.mktemp("edge") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main([f"--workdir={workdir}", "--formats=tflite", "--quantize=none",
                              f"--max_length={MAX_LENGTH}", "--strategy=greedy"])  # fmt: skip
    assert status == 0
    return {"workdir": workdir, "model": os.path.join(workdir, "export", "gpt.tflite")}


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
    """A venv with numpy and ai-edge-litert only, and a copy of the app outside the repository."""
    root = tmp_path_factory.mktemp("clean")
    venv = str(root / "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, env=ENV)
    python = os.path.join(venv, "bin", "python")
    numpy_version = importlib.metadata.version("numpy")
    litert_version = importlib.metadata.version("ai-edge-litert")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    f"numpy=={numpy_version}", f"ai-edge-litert=={litert_version}"],
                   check=True, env=ENV, timeout=600)  # fmt: skip
    app = root / "app"
    shutil.copytree(os.path.join(REPO, "apps", "edge"), app / "apps" / "edge",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copyfile(os.path.join(REPO, "apps", "__init__.py"), app / "apps" / "__init__.py")
    return {"python": python, "cwd": str(app)}


def _run_clean(clean_venv, *args, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([clean_venv["python"], "-m", "apps.edge", *args], cwd=clean_venv["cwd"], env=ENV,
                          input=stdin, capture_output=True, text=True, timeout=120)  # fmt: skip


def test_clean_venv_has_no_tensorflow(clean_venv):
    modules = ("tensorflow", "tfzoo", "export", "keras")
    probe = f"import importlib.util as u; print([m for m in {modules} if u.find_spec(m)])"
    result = subprocess.run([clean_venv["python"], "-c", probe], cwd=clean_venv["cwd"], env=ENV,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("loop", ["steps", "generate"])
def test_greedy_output_equals_python_runtime_without_tensorflow(clean_venv, exported, expected, loop):
    for prompt in PROMPTS:
        result = _run_clean(clean_venv, "--model", exported["model"], "--prompt", prompt,
                            "--max_new_tokens", str(NEW_TOKENS), f"--loop={loop}")  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected[prompt] + "\n"
        assert f"loop={loop}, strategy=greedy" in result.stderr and "tokens/s" in result.stderr


def test_interactive_in_clean_venv(clean_venv, exported, expected):
    lines = "".join(f"{p}\n" for p in PROMPTS[:2]) + "/quit\n"
    result = _run_clean(clean_venv, "--model", exported["model"], "--interactive", "--max_new_tokens",
                        str(NEW_TOKENS), stdin=lines)  # fmt: skip
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
    status = edge_run(["--model", exported["model"], "--prompt", "def ", "--max_new_tokens", str(NEW_TOKENS),
                       "--loop=generate"], out=(out := _Writes()))  # fmt: skip
    assert status == 0 and out.chunks == [expected["def "] + "\n"]
    capsys.readouterr()


def test_sampling_is_seeded_and_stays_in_vocabulary(exported, capsys):
    def sample(seed):
        out = io.StringIO()
        args = ["--model", exported["model"], "--prompt", "def ", "--strategy=sample", "--temperature=1e4",
                f"--seed={seed}", "--max_new_tokens=20"]  # fmt: skip
        assert edge_run(args, out=out) == 0
        return out.getvalue()

    first, again, other = sample(1), sample(1), sample(2)
    assert first == again and first != other
    assert first.startswith("def ") and set(first[4:-1]) <= set(TEXT) | {"\ufffd"}
    capsys.readouterr()


@pytest.mark.parametrize("text", ["def f(x):\n  return x", "héllo wörld ✓ 😀", ""])
def test_tokenizer_matches_tfzoo(text, tmp_path):
    for tokenizer in (CharTokenizer.from_text(TEXT + "é"), ByteTokenizer()):
        tokenizer.save(str(tmp_path))
        with open(tmp_path / "tokenizer.json", encoding="utf-8") as file:
            mine = JsonTokenizer(json.load(file))
        ids = tokenizer.encode(text)
        assert mine.encode(text) == ids.tolist()
        with_specials = np.concatenate([ids, [tokenizer.eos_id, tokenizer.pad_id]]).astype(np.int64)
        assert mine.decode(with_specials) == tokenizer.decode(with_specials)
        stream = mine.stream_decoder()
        assert "".join(stream(int(i)) for i in with_specials) + stream(None) == tokenizer.decode(with_specials)


@pytest.fixture(scope="module")
def no_generation_model(tmp_path_factory) -> str:
    """A valid `.tflite` (an add) without the generation signatures, with a valid tokenizer.json next to it."""
    import tensorflow as tf  # noqa: PLC0415

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def add_one(x):
        return {"y": x + 1.0}

    folder = tmp_path_factory.mktemp("plain")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([add_one.get_concrete_function()], add_one)
    path = str(folder / "plain.tflite")
    with open(path, "wb") as file:
        file.write(converter.convert())
    CharTokenizer.from_text(TEXT).save(str(folder))
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
    shutil.copyfile(os.path.join(exported["workdir"], "export", "tokenizer.json"), tmp_path / "tokenizer.json")
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
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(model, other / "gpt.tflite")
    assert "no tokenizer at" in _bad(str(other / "gpt.tflite"), "--prompt", "a")
    (other / "tokenizer.json").write_text(json.dumps({"type": "wordpiece", "special_tokens": {}}))
    assert "tokenizer type 'wordpiece' is not supported" in _bad(str(other / "gpt.tflite"), "--prompt", "a")


def test_bad_prompt_in_interactive_mode_does_not_end_the_session(exported, expected, capsys):
    out = io.StringIO()
    status = edge_run(["--model", exported["model"], "--interactive", "--max_new_tokens", str(NEW_TOKENS)],
                      stdin=io.StringIO("a" * 40 + "\ndef \n"), out=out)  # fmt: skip
    assert status == 0
    assert out.getvalue() == f"> > {expected['def ']}\n> \n"
    assert "must be under 32" in capsys.readouterr().err
