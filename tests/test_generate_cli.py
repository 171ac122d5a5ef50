"""`python -m tfzoo.generate`: completions from a workdir, beams with scores, one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tfzoo.data.tokenizers import build_tokenizer
from tfzoo.decoding.generator import Generator
from tfzoo.generate import main
from tfzoo.models.gpt import GPT

TEXT = "abcdefgh ij\n"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("generate_cli"))
    tokenizer = build_tokenizer("char", TEXT)
    model = GPT(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=40,
    )
    model(np.zeros((1, 2), np.int32))
    model.save(os.path.join(directory, "model.keras"))
    tokenizer.save(os.path.join(directory, "tokenizer"))
    return directory


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_greedy_prints_the_prompt_and_its_completion(workdir, capsys):
    code, out, err = _cli(capsys, f"--workdir={workdir}", "--prompt=abc", "--max_new_tokens=12", "--no_jit_compile")
    assert code == 0, err
    # The same completion as decoding the model directly (pad and <unk> banned, EOS ends it).
    import keras

    tokenizer = build_tokenizer("char", TEXT)
    model = keras.saving.load_model(os.path.join(workdir, "model.keras"), compile=False)
    generator = Generator(model, max_length=15, eos_ids=(1,), banned_ids=(0, 2), jit_compile=False)
    expected = generator([tokenizer.encode("abc")], [3], max_new_tokens=12)
    completion = tokenizer.decode(expected["sequences"][0, 3 : expected["sequence_lengths"][0]])
    assert out == "abc" + completion + "\n"


def test_show_beams_prints_every_beam_best_first(workdir, capsys):
    code, out, err = _cli(
        capsys,
        f"--workdir={workdir}",
        "--prompt=ab",
        "--strategy=beam",
        "--beam_size=3",
        "--show_beams",
        "--max_new_tokens=6",
        "--length_penalty=0",
        "--no_jit_compile",
    )
    assert code == 0, err
    headers = [line for line in out.splitlines() if line.startswith("--- beam ")]
    assert [h.split()[2] for h in headers] == ["1", "2", "3"]
    scores = [float(h.split("score=")[1]) for h in headers]
    assert scores == sorted(scores, reverse=True)
    assert all(s <= 0 for s in scores)


def test_samples_are_reproducible_and_differ_by_seed(workdir, capsys):
    argv = [
        f"--workdir={workdir}",
        "--prompt=a",
        "--strategy=sample",
        "--num_return_sequences=3",
        "--max_new_tokens=10",
        "--temperature=1.5",
        "--no_jit_compile",
    ]
    code, first, _ = _cli(capsys, *argv, "--seed=1")
    assert code == 0
    assert first.count("--- sample ") == 3
    _, again, _ = _cli(capsys, *argv, "--seed=1")
    _, other, _ = _cli(capsys, *argv, "--seed=2")
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--prompt=abc", "--top_p=2", "--max_new_tokens=4"], "error: top_p must be in (0, 1]"),
        (["--prompt=abc", "--repetition_penalty=0", "--max_new_tokens=4"], "error: repetition_penalty must be > 0"),
        (["--prompt=abc", "--strategy=beam", "--beam_size=0", "--max_new_tokens=4"], "error: beam_size must be"),
        (["--prompt=abc", "--max_new_tokens=-1"], "error: max_new_tokens must be >= 0"),
        (["--prompt=", "--max_new_tokens=4"], "error: empty prompt"),
        (["--prompt=abc", "--max_new_tokens=60"], "exceeds the model's max_sequence_length=40"),
        (["--prompt=abc", "--runtime=onnx"], "error: no export in"),
        (["--prompt=abc", "--strategy=nucleus"], "error: argument --strategy: invalid choice"),
        (["--prompt=abc", "--num_return_sequences=2", "--max_new_tokens=4"], "error: greedy decoding has one result"),
        (
            ["--prompt=abc", "--strategy=beam", "--beam_size=2", "--num_return_sequences=3", "--max_new_tokens=4"],
            "exceeds --beam_size=2",
        ),
    ],
)
def test_bad_arguments_print_one_error_line_and_exit_2(workdir, capsys, argv, message):
    code, out, err = _cli(capsys, f"--workdir={workdir}", "--no_jit_compile", *argv)
    assert code == 2
    assert message in err
    assert err.strip().count("\n") == 0 and err.startswith("error: ")
    assert out == ""


def test_missing_workdir_files(tmp_path, capsys):
    code, _, err = _cli(capsys, f"--workdir={tmp_path / 'nope'}", "--prompt=a")
    assert code == 2 and "does not exist" in err
    code, _, err = _cli(capsys, f"--workdir={tmp_path}", "--prompt=a")
    assert code == 2 and "model.keras not found" in err


def test_module_entry_point(workdir):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfzoo.generate",
            f"--workdir={workdir}",
            "--prompt=hi",
            "--strategy=beam",
            "--beam_size=2",
            "--max_new_tokens=5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("hi")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfzoo.generate",
            f"--workdir={workdir}",
            "--prompt=hi",
            "--temperature=0",
            "--strategy=sample",
            "--max_new_tokens=5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 2
    assert "error: temperature must be > 0" in bad.stderr and "Traceback" not in bad.stderr
