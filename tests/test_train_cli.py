"""Bad input to `python -m tfzoo.train`: one `error:` line on stderr, exit 2, nothing written."""

import concurrent.futures
import os
import re

import pytest

from train_helpers import run_cli, write_toy_text


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    paths = {"toy": write_toy_text(root / "toy.txt"), "root": root}
    for name, content in {
        "empty": b"",
        "latin1": "caf\xe9 cr\xe8me\n".encode("latin-1") * 50,
        "short": b"def f():\n    return 1\n",
    }.items():
        paths[name] = str(root / f"{name}.txt")
        with open(paths[name], "wb") as f:
            f.write(content)
    return paths


CASES = {
    "unknown field": (["--config.no_such_field=1"], "unknown config field.*no_such_field"),
    "misspelt field": (["--config.seq_lne=16"], "seq_lne.*Did you mean.*seq_len"),
    "bad value type": (["--config.seq_len=abc"], "config.seq_len"),
    "missing config file": (["--config=configs/no_such_config.py"], "config file not found"),
    "bad dataset spec": (["--config.dataset=nonsense"], "unknown dataset spec 'nonsense'"),
    "missing file": (["--config.dataset=text:{root}/missing.txt"], "missing.txt: file not found"),
    "empty file": (["--config.dataset=text:{empty}"], "empty"),
    "not UTF-8": (["--config.dataset=text:{latin1}"], "not valid UTF-8"),
    "too short for seq_len": (["--config.dataset=text:{short}"], "tokens.*seq_len"),
    "heads do not divide width": (
        ["--config.num_heads=5"],
        "hidden_dim \\(32\\) must be divisible by num_heads \\(5\\)",
    ),
    "unknown model": (["--config.model=lstm"], "model must be one of 'gpt'.*got 'lstm'"),
    "tpu without a TPU": (
        ["--config.distribution_strategy=tpu"],
        "^error: distribution_strategy 'tpu' found no TPU at tpu_address='local': ",
    ),
    "multi_worker without TF_CONFIG": (
        ["--config.distribution_strategy=multi_worker"],
        "needs the TF_CONFIG environment variable",
    ),
    "parameter server": (
        ["--config.distribution_strategy=parameter_server"],
        "does not support ParameterServerStrategy",
    ),
    "mixed precision": (["--config.mixed_precision=float8"], "mixed_precision must be one of 'none', '', 'bfloat16'"),
    "batch does not split over replicas": (
        ["--config.distribution_strategy=mirrored", "--config.num_cpu_devices=2", "--config.batch_size=7"],
        "^error: batch_size \\(7\\) must be divisible by the 2 replicas of distribution_strategy 'mirrored'$",
    ),
    "stray argument": (["oops"], "unexpected arguments: oops"),
    "the old strategy field": (
        ["--config.strategy=mirrored"],
        "^error: config field 'strategy' is now 'distribution_strategy' \\(e.g. ",
    ),
}


def test_bad_input_is_one_error_line_exit_2_and_no_workdir(files):
    def attempt(item):
        name, (extra, _) = item
        workdir = os.path.join(files["root"], "runs", name.replace(" ", "_"))
        args = [a.format(**files) for a in extra]
        base = ["--config=configs/gpt_tiny.py", f"--workdir={workdir}", f"--config.dataset=text:{files['toy']}"]
        return name, workdir, run_cli(*base, *args, timeout=120)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(attempt, CASES.items()))
    for name, workdir, result in results:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, (name, result.stderr[-2000:])
        assert lines and lines[-1].startswith("error: "), (name, lines[-3:])
        assert re.search(CASES[name][1], lines[-1]), (name, lines[-1])
        assert not os.path.exists(workdir), name
