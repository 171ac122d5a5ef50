"""Fuzzing the command lines: bad flags give exit status 2 and one `error:` line on stderr, never a traceback.

- `python -m export` and `python -m tfzoo.generate`: their `main(argv)` in
  this process, fed random flag lists by Hypothesis (known and unknown
  flags, odd values, stray arguments) against a folder that holds no
  trained model, so that nothing can run for real.
- `python -m tfzoo.generate` on a tiny trained workdir, in this process:
  hostile generation settings (NaN knobs, lengths beyond the model, empty
  prompts, ...) are refused with one line, or generate.
- Subprocesses (the real entry points): a handful of bad command lines of
  each CLI, `tfzoo.train` included (absl keeps its flags in a process-wide
  registry, so its parser is fuzzed only there); a prompt that is not valid
  UTF-8; and a beam size that would need terabytes, run under a 6 GB
  address-space limit so that the test fails instead of the machine.
"""

from __future__ import annotations

import concurrent.futures
import os
import resource
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", KERAS_BACKEND="tensorflow")
# capsys is read after every example, so sharing it between examples is fine.
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
MEMORY_LIMIT = 6 * 2**30  # bytes of address space for the subprocesses that could allocate without bound


def _assert_one_error_line(status, err: str, out: str = "") -> None:
    assert status == 2, (status, err, out)
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert "Traceback" not in err and out == "", (err, out)


@pytest.fixture(scope="module")
def empty_workdir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("fuzz_cli_empty"))


VALUES = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    [
        "",
        "-1",
        "0",
        "nan",
        "inf",
        "1e999",
        "99999999999999999999",
        "abc",
        "none,int4",
        ",",
        "saved_model,,onnx",
        "tflite",
        "beam",
        "a\nb",
        "--workdir",
        "=",
        " ",
    ]
)


def _argv(names: list[str]):
    """Random argument lists: known or unknown flags with random values, bare flags and stray words."""
    flag = st.builds(lambda n, v: f"--{n}={v}", st.sampled_from(names + ["bogus", "workdir", ""]), VALUES)
    bare = st.builds(lambda n: f"--{n}", st.sampled_from(names + ["bogus", ""]))
    token = flag | bare | VALUES | st.sampled_from(["--", "-", "-x"])
    return st.lists(token, max_size=6).filter(
        lambda argv: not any(t.startswith(("-h", "--h")) for t in argv)  # --help (or its abbreviations) exits 0
    )


EXPORT_FLAGS = ["formats", "quantization", "strategy", "beam_size", "max_length", "version"]
GENERATE_FLAGS = [
    "prompt",
    "runtime",
    "quantization",
    "strategy",
    "beam_size",
    "length_penalty",
    "length_penalty_form",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "max_new_tokens",
    "min_new_tokens",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "num_return_sequences",
    "stop",
    "ban",
    "show_beams",
    "no_jit_compile",
]


@FUZZ
@given(_argv(EXPORT_FLAGS))
def test_export_cli_bad_flags_fail_with_one_error_line(capsys, empty_workdir, argv):
    from export.__main__ import main

    workdir = empty_workdir
    with pytest.raises(SystemExit) as exit_info:
        main([f"--workdir={workdir}", *argv])
    captured = capsys.readouterr()
    _assert_one_error_line(exit_info.value.code, captured.err, captured.out)
    assert os.listdir(workdir) == []


@FUZZ
@given(_argv(GENERATE_FLAGS), st.booleans())
def test_generate_cli_bad_flags_fail_with_one_error_line(capsys, empty_workdir, argv, with_workdir):
    from tfzoo.generate import main

    workdir = [f"--workdir={empty_workdir}/missing"] if with_workdir else []
    status = main([*workdir, *argv])
    captured = capsys.readouterr()
    _assert_one_error_line(status, captured.err, captured.out)


# --- generate on a trained workdir --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> str:
    from export_helpers import make_workdir  # a tiny GPT (max_sequence_length 32) with a char tokenizer

    return make_workdir(tmp_path_factory.mktemp("fuzz_cli") / "run")


HOSTILE_GENERATION = [
    (["--strategy=sample", "--temperature=nan"], "temperature must be finite"),
    (["--strategy=sample", "--temperature=-1"], "temperature must be > 0"),
    (["--strategy=sample", "--top_p=nan"], "top_p must be finite"),
    (["--strategy=sample", "--top_p=2"], "top_p must be in (0, 1]"),
    (["--strategy=sample", "--top_k=-5"], "top_k must be >= 0"),
    (["--strategy=beam", "--length_penalty=inf"], "length_penalty must be finite"),
    (["--strategy=beam", "--beam_size=0"], "beam_size must be an integer >= 1"),
    (["--repetition_penalty=0"], "repetition_penalty must be > 0"),
    (["--no_repeat_ngram_size=-1"], "no_repeat_ngram_size must be >= 0"),
    (["--max_new_tokens=-1"], "max_new_tokens must be >= 0"),
    (["--max_new_tokens=1000000000000"], "exceeds the model's max_sequence_length=32"),
    (["--prompt=" + "def " * 100], "exceeds the model's max_sequence_length=32"),
    (["--prompt="], "empty prompt"),
    (["--seed=99999999999999"], "seed=99999999999999 does not fit in int32"),
    (["--strategy=greedy", "--num_return_sequences=2"], "greedy decoding has one result"),
    (["--num_return_sequences=0"], "--num_return_sequences must be >= 1"),
    (["--bogus=a\nb"], "unrecognized arguments"),
    (["--runtime=onnx"], "no export in"),
]


@pytest.mark.parametrize("flags, message", HOSTILE_GENERATION, ids=[" ".join(f)[:40] for f, _ in HOSTILE_GENERATION])
def test_generate_cli_refuses_hostile_settings_on_a_trained_workdir(trained, capsys, flags, message):
    from tfzoo.generate import main

    status = main([f"--workdir={trained}", "--prompt=def", "--max_new_tokens=8", "--no_jit_compile", *flags])
    captured = capsys.readouterr()
    _assert_one_error_line(status, captured.err, captured.out)
    assert message in captured.err, captured.err


# --- the real entry points, in subprocesses ------------------------------------------------------------------------


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _run(argv: list, timeout: float = 240, limit_memory: bool = False, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        env=dict(ENV, **env),
        cwd=REPO,
        timeout=timeout,
        preexec_fn=_limit_memory if limit_memory else None,
    )


def _our_lines(stderr: bytes) -> list[str]:
    """stderr without TensorFlow's and absl's C++ start-up logs (not ours to silence)."""
    lines = stderr.decode("utf-8", "replace").splitlines()
    return [line for line in lines if line.strip() and not line.startswith(("W0000", "I0000", "E0000", "WARNING: All"))]


def _assert_cli_failed_cleanly(result: subprocess.CompletedProcess, message: str) -> None:
    lines = _our_lines(result.stderr)
    assert result.returncode == 2, (result.returncode, lines[-10:])
    assert not any("Traceback" in line for line in lines), lines[-20:]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines[-5:]
    assert message in errors[0], errors[0]


TRAIN_CASES = [
    (["--config.seq_len=1e3"], "config.seq_len"),
    (["--config.no_such_field=1"], "no_such_field"),
    (["--config.position=[1,2]"], "position must be one of"),
    (["--config.learning_rate=nan"], "learning_rate must be a number > 0"),
    (["--config=configs/no_such_config.py"], "config file not found"),
    (["--workdir"], "Missing value for flag --workdir"),
    (["--no_such_flag=1"], "no_such_flag"),
    (["--flagfile=/no/such/file"], "flagfile"),
    (["stray"], "unexpected arguments: stray"),
]


def test_cli_processes_fail_cleanly_on_bad_flags(tmp_path):
    cases = [
        (["-m", "tfzoo.train", "--config=configs/gpt_tiny.py", f"--workdir={tmp_path}/train_{i}", *flags], message)
        for i, (flags, message) in enumerate(TRAIN_CASES)
    ]
    cases += [
        (["-m", "export", f"--workdir={tmp_path}", "--formats=tflite,coreml"], "unknown --formats value 'coreml'"),
        (["-m", "export", f"--workdir={tmp_path}", "--max_length=abc"], "invalid int value"),
        (["-m", "tfzoo.generate", f"--workdir={tmp_path}", "--prompt=a", "--temperature=abc"], "invalid float value"),
        (["-m", "tfzoo.generate", "--prompt=a"], "the following arguments are required: --workdir"),
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda case: _run(case[0], timeout=120), cases))
    for (_, message), result in zip(cases, results):
        _assert_cli_failed_cleanly(result, message)
    assert os.listdir(tmp_path) == []  # no workdir, no export


def test_generate_process_survives_undecodable_prompts_and_refuses_huge_beams(trained):
    common = ["-m", "tfzoo.generate", f"--workdir={trained}", "--max_new_tokens=4", "--no_jit_compile"]
    cases = {
        # Not UTF-8: Python decodes argv with surrogateescape, and stdout is strict UTF-8.
        "undecodable prompt": [*common, b"--prompt=def \xff"],
        # Would allocate the cache of a billion beams (~20 GB here before the kernel kills it).
        "huge beam": [*common, "--prompt=def", "--strategy=beam", "--beam_size=1000000000"],
        "huge sample count": [*common, "--prompt=def", "--strategy=sample", "--num_return_sequences=1000000000"],
    }
    # PYTHONIOENCODING: stdout as in a UTF-8 locale such as en_US.UTF-8 (strict); C.UTF-8 would escape surrogates.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run, argv, 240, True, PYTHONIOENCODING="utf-8") for name, argv in cases.items()}
        results = {name: future.result() for name, future in futures.items()}
    prompt = results["undecodable prompt"]
    lines = _our_lines(prompt.stderr)
    assert prompt.returncode in (0, 2) and not any("Traceback" in line for line in lines), lines[-10:]
    if prompt.returncode == 0:
        assert prompt.stdout.startswith(b"def "), prompt.stdout
    else:
        _assert_cli_failed_cleanly(prompt, "prompt")
    _assert_cli_failed_cleanly(results["huge beam"], "beam_size")
    _assert_cli_failed_cleanly(results["huge sample count"], "num_return_sequences")
