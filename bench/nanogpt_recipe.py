"""tfzoo against nanoGPT itself on nanoGPT's CPU "baby GPT" recipe, on the same text, in one run.

nanoGPT (github.com/karpathy/nanoGPT) is not shipped with tfzoo: fetch it yourself and pass the
folder holding its train.py, model.py and configurator.py. PyTorch comes from the dev extra.

    python bench/nanogpt_recipe.py --nanogpt=/path/to/nanoGPT [--text=PATH] [--threads=2]

Both sides train on the same characters with tfzoo's `text:PATH` split (first 90% train):
nanoGPT runs `train.py config/train_shakespeare_char.py` with its README's CPU overrides
(`NANOGPT_FLAGS`, plus `--always_save_checkpoint=True` so `ckpt.pt` holds the final model) on
`data/<name>/` files made as its `data/shakespeare_char/prepare.py` makes them; tfzoo runs
`python -m tfzoo.train --config=configs/nanogpt_baby.py --config.dataset=text:PATH`.

Each training process is timed from start to exit with `--threads` threads (OMP/MKL for PyTorch;
OMP and TensorFlow's intra/inter-op pools for tfzoo). On a busy machine PyTorch's threads stall far
more than TensorFlow's: read `iter_ms_median` / `iter_ms_p90` and the load averages beside the wall
times. Quality is read twice: each side's own last reported validation loss (nanoGPT: 20 random
batches; tfzoo: 20 fixed ones), and both final models' mean cross-entropy per character over the
whole validation split, computed here identically: every non-overlapping window of 65 ids, the
model reading the first 64 and predicting the last 64.

One JSON line on stdout, progress on stderr. `--workdir=DIR` keeps data, logs and models (default:
a temporary folder, removed after a successful run); with it `--skip-nanogpt` / `--skip-tfzoo`
rerun one side and reuse the other's earlier result.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # `python bench/nanogpt_recipe.py` from anywhere: the tfzoo of this checkout
    sys.path.insert(0, REPO)

from tfzoo.data.errors import DatasetError  # noqa: E402 (after the path set-up)
from tfzoo.data.text_datasets import load_text_splits, stdlib_code_files  # noqa: E402 (after the path set-up)
from tfzoo.files import atomic_write_bytes, atomic_write_text  # noqa: E402 (after the path set-up)
from tfzoo.run_folder import RunFolder  # noqa: E402 (after the path set-up)

NANOGPT_FILES = ("train.py", "model.py", "configurator.py")
NANOGPT_CONFIG = os.path.join("config", "train_shakespeare_char.py")
NANOGPT_DATASET = "bench_char"  # data/<name>/ in nanoGPT's run folder
NANOGPT_OUT_DIR = "out-shakespeare-char"  # config/train_shakespeare_char.py's out_dir
BLOCK_SIZE = 64  # the recipe's context, both sides
# The README's CPU baby GPT, plus a checkpoint at every evaluation (the last one is the final model).
NANOGPT_FLAGS = (
    "--device=cpu",
    "--compile=False",
    "--eval_iters=20",
    "--log_interval=1",
    f"--block_size={BLOCK_SIZE}",
    "--batch_size=12",
    "--n_layer=4",
    "--n_head=4",
    "--n_embd=128",
    "--max_iters=2000",
    "--lr_decay_iters=2000",
    "--dropout=0.0",
    "--always_save_checkpoint=True",
    f"--dataset={NANOGPT_DATASET}",
)
TFZOO_CONFIG = os.path.join(REPO, "configs", "nanogpt_baby.py")
CORPUS_CHARS = 1_000_000  # default corpus: this many characters of the stdlib's source
EVAL_BATCH = 64  # windows per forward pass of the full-split evaluation
NANOGPT_EVAL_LINE = re.compile(r"^step (\d+): train loss (\S+), val loss (\S+)")
NANOGPT_ITER_LINE = re.compile(r"^iter \d+: loss \S+, time ([\d.]+)ms")


class BenchError(Exception):
    """Bad input or a failed run; printed as one `error:` line."""


def _log(message: str) -> None:
    print(f"[nanogpt_recipe] {message}", file=sys.stderr, flush=True)


def check_nanogpt_dir(path: str) -> str:
    """Returns `path` made absolute after checking it holds nanoGPT's `train.py`, `model.py`, `configurator.py`.

    Example:
    >>> check_nanogpt_dir("/nonexistent")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    BenchError: --nanogpt=/nonexistent does not hold nanoGPT's train.py, ...
    """
    path = os.path.abspath(os.path.expanduser(path))
    missing = [name for name in (*NANOGPT_FILES, NANOGPT_CONFIG) if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise BenchError(
            f"--nanogpt={path} does not hold nanoGPT's {', '.join(missing)} "
            "(clone github.com/karpathy/nanoGPT and pass its folder)"
        )
    return path


def default_corpus(root: str | None = None, num_chars: int = CORPUS_CHARS) -> str:
    """The first `num_chars` characters of the stdlib's `.py` files (tfzoo's `stdlib_code` list), concatenated.

    Files are taken in sorted path order, each followed by a newline; the same
    Python install always gives the same text.

    Example:
    >>> len(default_corpus(num_chars=1000))
    1000
    """
    root = root or sysconfig.get_paths()["stdlib"]
    parts, total = [], 0
    for relative in stdlib_code_files(root):
        try:
            with open(os.path.join(root, relative), encoding="utf-8") as file:
                text = file.read() + "\n"
        except (OSError, UnicodeDecodeError):
            continue
        parts.append(text)
        total += len(text)
        if total >= num_chars:
            break
    text = "".join(parts)[:num_chars]
    if len(text) < num_chars:
        raise BenchError(f"the stdlib under {root} has only {len(text)} characters of .py source; pass --text")
    return text


def prepare_nanogpt_data(text_path: str, data_dir: str) -> dict:
    """Writes nanoGPT's `train.bin`, `val.bin` (uint16 ids) and `meta.pkl` for the text file at `text_path`.

    The split is tfzoo's own (`load_text_splits("text:PATH")`); the vocabulary
    is the sorted distinct characters of the whole text, as nanoGPT's
    `data/shakespeare_char/prepare.py` builds it.

    Returns:
        dict with `chars`, `train_chars`, `val_chars`, `vocab_size` and
        `val_chars_unseen_in_train` (validation characters absent from the
        training text: tfzoo's tokenizer, built from the train split, reads
        them as `<unk>`).

    Example:
    >>> info = prepare_nanogpt_data("corpus.txt", "run/data/bench_char")  # doctest: +SKIP
    >>> info["vocab_size"]  # doctest: +SKIP
    98
    """
    splits = load_text_splits(f"text:{text_path}")
    text = splits.train + splits.validation
    chars = sorted(set(text))
    if len(chars) > np.iinfo(np.uint16).max + 1:
        raise BenchError(f"{text_path} has {len(chars)} distinct characters; nanoGPT's uint16 ids hold at most 65536")
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = dict(enumerate(chars))
    os.makedirs(data_dir, exist_ok=True)
    for name, part in (("train.bin", splits.train), ("val.bin", splits.validation)):
        ids = np.fromiter((stoi[ch] for ch in part), dtype=np.uint16, count=len(part))
        atomic_write_bytes(os.path.join(data_dir, name), ids.tobytes())
    # nanoGPT's train.py reads its vocabulary size from this pickle (else it builds a 50304-token model);
    # tfzoo never loads it.
    meta = {"vocab_size": len(chars), "itos": itos, "stoi": stoi}
    atomic_write_bytes(os.path.join(data_dir, "meta.pkl"), pickle.dumps(meta))
    train_chars = set(splits.train)
    return {
        "chars": len(text),
        "train_chars": len(splits.train),
        "val_chars": len(splits.validation),
        "vocab_size": len(chars),
        "val_chars_unseen_in_train": sum(ch not in train_chars for ch in splits.validation),
    }


def full_split_windows(ids: np.ndarray, block_size: int = BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets (W, block_size) of every non-overlapping window of `block_size + 1` ids.

    Window `k` is `ids[k * block_size : k * block_size + block_size + 1]`;
    inputs are its first `block_size` ids, targets its last `block_size`, so
    the targets are `ids[1 : W * block_size + 1]`, each predicted once.

    Example:
    >>> x, y = full_split_windows(np.arange(10), block_size=4)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2, 3], [4, 5, 6, 7]], [[1, 2, 3, 4], [5, 6, 7, 8]])
    """
    ids = np.asarray(ids, dtype=np.int64)
    num_windows = (ids.size - 1) // block_size
    if num_windows < 1:
        raise BenchError(f"the validation split has {ids.size} characters, fewer than one window of {block_size + 1}")
    starts = np.arange(num_windows) * block_size  # (W,)
    windows = ids[starts[:, None] + np.arange(block_size + 1)]  # (W, T + 1)
    return windows[:, :-1], windows[:, 1:]


def mean_cross_entropy(
    logits_fn: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, targets: np.ndarray, batch: int = EVAL_BATCH
) -> float:
    """Mean cross-entropy in nats of `targets` under `logits_fn(inputs)`, over every target.

    Args:
        logits_fn: maps int64 inputs (B, T) to logits (B, T, V).
        inputs: int array (W, T).
        targets: int array (W, T).
        batch: int. Windows per `logits_fn` call.

    Example:
    >>> uniform = lambda x: np.zeros(x.shape + (4,))
    >>> round(mean_cross_entropy(uniform, np.zeros((3, 2), int), np.ones((3, 2), int)), 4)
    1.3863
    """
    total, count = 0.0, 0
    for start in range(0, len(inputs), batch):
        x, y = inputs[start : start + batch], targets[start : start + batch]
        logits = np.asarray(logits_fn(x), dtype=np.float64)  # (B, T, V)
        peak = logits.max(axis=-1, keepdims=True)
        log_norm = np.log(np.exp(logits - peak).sum(axis=-1)) + peak[..., 0]  # (B, T)
        picked = np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]  # (B, T)
        total += float((log_norm - picked).sum())
        count += y.size
    return total / count


def parse_nanogpt_log(lines) -> dict | None:
    """From nanoGPT's train.py output: its last evaluation and its per-iteration times (None without evaluations).

    The iteration times show how much a busy machine stalled it: on 2 shared
    cores PyTorch's threads can wait far longer than the median step.

    Example:
    >>> parse_nanogpt_log(["step 0: train loss 4.2, val loss 4.3", "iter 0: loss 4.2, time 30.5ms, mfu -100.00%"])
    {'val_loss_reported': 4.3, 'step': 0, 'iter_ms_median': 30.5, 'iter_ms_p90': 30.5}
    """
    evaluations, times = [], []
    for line in lines:
        if match := NANOGPT_EVAL_LINE.match(line):
            evaluations.append((int(match[1]), float(match[3])))
        elif match := NANOGPT_ITER_LINE.match(line):
            times.append(float(match[1]))
    if not evaluations:
        return None
    step, val_loss = evaluations[-1]
    stats = {"iter_ms_median": None, "iter_ms_p90": None}
    if times:
        stats = {
            key: round(float(np.percentile(times, q)), 1) for key, q in (("iter_ms_median", 50), ("iter_ms_p90", 90))
        }
    return {"val_loss_reported": val_loss, "step": step, **stats}


def _run(command: list[str], *, cwd: str, env: dict, log_path: str, echo: Callable[[str], bool]) -> float:
    """Runs `command`, teeing its output to `log_path` (lines where `echo` is true also to stderr); wall seconds."""
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:  # a scratch log of this benchmark run
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        for line in process.stdout:
            log.write(line)
            if echo(line):
                _log(line.rstrip())
        status = process.wait()
    wall = time.perf_counter() - start
    if status != 0:
        with open(log_path, encoding="utf-8") as log:
            for line in log.readlines()[-15:]:
                _log(line.rstrip())
        raise BenchError(f"{command[1]} exited with status {status}; full log: {log_path}")
    return wall


def _thread_env(threads: int, **extra: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), **extra)
    return env


def run_nanogpt(nanogpt_dir: str, text_path: str, workdir: str, threads: int, flags: list[str]) -> dict:
    """Trains nanoGPT on the text; returns its wall time, last reported val loss and checkpoint path."""
    run_dir = os.path.join(workdir, "nanogpt")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(os.path.join(run_dir, "config"))
    for name in (*NANOGPT_FILES, NANOGPT_CONFIG):  # train.py execs configurator.py and reads data/ from its cwd
        shutil.copyfile(os.path.join(nanogpt_dir, name), os.path.join(run_dir, name))
    data = prepare_nanogpt_data(text_path, os.path.join(run_dir, "data", NANOGPT_DATASET))
    command = [sys.executable, "train.py", NANOGPT_CONFIG, *NANOGPT_FLAGS, *flags]
    env = _thread_env(threads, MKL_NUM_THREADS=str(threads), CUDA_VISIBLE_DEVICES="")
    _log(f"nanoGPT: {' '.join(command[1:])} (threads {threads})")
    log_path = os.path.join(run_dir, "train.log")
    wall = _run(command, cwd=run_dir, env=env, log_path=log_path, echo=lambda line: line.startswith("step "))
    with open(log_path, encoding="utf-8") as log:
        parsed = parse_nanogpt_log(log)
    if parsed is None:
        raise BenchError(f"nanoGPT printed no 'step N: ... val loss X' line; see {log_path}")
    checkpoint = os.path.join(run_dir, NANOGPT_OUT_DIR, "ckpt.pt")
    if not os.path.isfile(checkpoint):
        raise BenchError(f"nanoGPT wrote no checkpoint at {checkpoint}")
    return {"wall_s": round(wall, 1), **parsed, "checkpoint": checkpoint, **data}


def run_tfzoo(text_path: str, workdir: str, threads: int, flags: list[str]) -> dict:
    """Trains tfzoo's `configs/nanogpt_baby.py` on the text; returns its wall time, last val loss and workdir."""
    run_dir = os.path.join(workdir, "tfzoo")
    shutil.rmtree(run_dir, ignore_errors=True)  # a workdir left by an earlier run would resume, not retrain
    os.makedirs(workdir, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "tfzoo.train",
        f"--config={TFZOO_CONFIG}",
        f"--config.dataset=text:{text_path}",
        f"--workdir={run_dir}",
        *flags,
    ]
    python_path = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))
    env = _thread_env(
        threads,
        TF_NUM_INTRAOP_THREADS=str(threads),
        TF_NUM_INTEROP_THREADS=str(threads),
        PYTHONPATH=python_path,
        CUDA_VISIBLE_DEVICES="",
    )
    env.setdefault("KERAS_BACKEND", "tensorflow")
    _log(f"tfzoo: {' '.join(command[1:])} (threads {threads})")
    log_path = os.path.join(workdir, "tfzoo.log")
    wall = _run(command, cwd=REPO, env=env, log_path=log_path, echo=lambda line: "val_loss" in line)
    records = RunFolder(run_dir).read_metrics()
    if not records or records[-1].get("val_loss") is None:
        raise BenchError(f"tfzoo wrote no val_loss to {RunFolder(run_dir).metrics_path}; see {log_path}")
    return {
        "wall_s": round(wall, 1),
        "val_loss_reported": round(float(records[-1]["val_loss"]), 4),
        "step": int(records[-1]["step"]),
        # training tokens/s of each eval_every steps, as metrics.jsonl records them
        "tokens_per_s_per_eval_period": [round(r["tokens_per_sec"]) for r in records if "tokens_per_sec" in r],
        "workdir": run_dir,
    }


def nanogpt_logits_fn(nanogpt_dir: str, checkpoint: str) -> Callable[[np.ndarray], np.ndarray]:
    """Logits of nanoGPT's `GPT` (its own model.py) restored from `ckpt.pt`, in eval mode."""
    import torch  # noqa: PLC0415 (only for the evaluation; the module stays importable without it)

    spec = importlib.util.spec_from_file_location("nanogpt_model", os.path.join(nanogpt_dir, "model.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(sys.stderr):  # GPT() prints its parameter count
        model = module.GPT(module.GPTConfig(**state["model_args"]))
    model.load_state_dict({key.removeprefix("_orig_mod."): value for key, value in state["model"].items()})
    model.eval()

    def logits(x: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))
        with torch.no_grad():
            out, _ = model(x, torch.zeros_like(x))  # with targets, nanoGPT returns the logits of every position
        return out.numpy()

    return logits


def tfzoo_logits_fn(run_dir: str) -> Callable[[np.ndarray], np.ndarray]:
    """Logits of the final `model.keras` of a tfzoo workdir."""
    model = RunFolder(run_dir).load_model()

    def logits(x: np.ndarray) -> np.ndarray:
        return np.asarray(model(np.asarray(x, dtype=np.int32), training=False))

    return logits


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _files_digest(folder: str, names) -> str:
    digest = hashlib.sha256()
    for name in names:
        with open(os.path.join(folder, name), "rb") as file:
            digest.update(file.read())
    return digest.hexdigest()[:12]


def _result_path(workdir: str, side: str) -> str:
    return os.path.join(workdir, f"{side}_result.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", required=True, help="Folder of a nanoGPT checkout (train.py, model.py, ...).")
    parser.add_argument("--text", default="", help="UTF-8 text file; default: 1M characters of the stdlib's source.")
    parser.add_argument("--threads", type=int, default=2, help="Threads of each training process.")
    parser.add_argument("--workdir", default="", help="Keep data, logs and models here (default: a temp folder).")
    parser.add_argument("--skip-nanogpt", action="store_true", help="Reuse nanoGPT's result from --workdir.")
    parser.add_argument("--skip-tfzoo", action="store_true", help="Reuse tfzoo's result from --workdir.")
    parser.add_argument(
        "--tfzoo-flag", action="append", default=[], help="Extra tfzoo.train flag, e.g. --tfzoo-flag=--config.x=y."
    )
    parser.add_argument(
        "--nanogpt-flag",
        action="append",
        default=[],
        help="Extra train.py flag after the recipe's (the last one wins), e.g. --nanogpt-flag=--max_iters=20.",
    )
    args = parser.parse_args(argv)
    try:
        nanogpt_dir = check_nanogpt_dir(args.nanogpt)
        if args.threads < 1:
            raise BenchError(f"--threads must be >= 1, got {args.threads}")
        if (args.skip_nanogpt or args.skip_tfzoo) and not args.workdir:
            raise BenchError("--skip-nanogpt / --skip-tfzoo reuse an earlier result: pass the same --workdir")
        workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="nanogpt_recipe.")
        os.makedirs(workdir, exist_ok=True)
        if args.text:
            text_path = os.path.abspath(os.path.expanduser(args.text))
            load_text_splits(f"text:{text_path}")  # a bad file fails here, before any training
        else:
            text_path = os.path.join(workdir, "stdlib_corpus.txt")
            atomic_write_text(text_path, default_corpus())
        result = _bench(args, nanogpt_dir, workdir, text_path)
    except Exception as error:  # noqa: BLE001 (every failure, ours or a dataset's, is reported as one line)
        message = " ".join(str(error).split())
        text = message if isinstance(error, (BenchError, DatasetError)) else f"{type(error).__name__}: {message}"
        print(f"error: {text}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _bench(args, nanogpt_dir: str, workdir: str, text_path: str) -> dict:
    load_start = os.getloadavg()
    if load_start[0] > (os.cpu_count() or 1):
        _log(f"the machine is busy (load average {load_start[0]:.2f} on {os.cpu_count()} cpus): wall times are noisy")
    text_digest = _files_digest(os.path.dirname(text_path), [os.path.basename(text_path)])
    sides = {}
    for side, skip in (("nanogpt", args.skip_nanogpt), ("tfzoo", args.skip_tfzoo)):
        if skip:
            path = _result_path(workdir, side)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as file:
                    sides[side] = dict(json.load(file), reused=True)
                if sides[side].get("text_sha256") != text_digest:
                    raise BenchError(f"{path} was measured on another text; rerun {side} (drop --skip-{side})")
                _log(f"{side}: reusing {path}")
            else:
                sides[side] = None
                _log(f"{side}: skipped, no earlier result in {workdir}")
            continue
        load = os.getloadavg()[0]
        if side == "nanogpt":
            sides[side] = run_nanogpt(nanogpt_dir, text_path, workdir, args.threads, args.nanogpt_flag)
        else:
            sides[side] = run_tfzoo(text_path, workdir, args.threads, args.tfzoo_flag)
        flags = args.nanogpt_flag if side == "nanogpt" else args.tfzoo_flag
        sides[side].update(load_average_start=round(load, 2), text_sha256=text_digest, extra_flags=flags)
        _log(f"{side}: {sides[side]['wall_s']} s, reported val loss {sides[side]['val_loss_reported']}")

    splits = load_text_splits(f"text:{text_path}")
    for side, info in sides.items():
        if info is None or info.get("reused"):
            continue
        if side == "nanogpt":
            ids = np.fromfile(os.path.join(workdir, "nanogpt", "data", NANOGPT_DATASET, "val.bin"), dtype=np.uint16)
            logits_fn = nanogpt_logits_fn(nanogpt_dir, info["checkpoint"])
        else:
            os.environ.update(
                TF_NUM_INTRAOP_THREADS=str(args.threads),
                TF_NUM_INTEROP_THREADS=str(args.threads),
                CUDA_VISIBLE_DEVICES="",
            )
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            ids = RunFolder(info["workdir"]).load_tokenizer().encode(splits.validation)
            logits_fn = tfzoo_logits_fn(info["workdir"])
        if len(ids) != len(splits.validation):
            raise BenchError(f"{side}: {len(ids)} validation ids for {len(splits.validation)} characters")
        inputs, targets = full_split_windows(ids)
        info["val_loss_full"] = round(mean_cross_entropy(logits_fn, inputs, targets), 4)
        info["val_targets_full"] = int(targets.size)
        _log(f"{side}: full validation split, {targets.size} characters: {info['val_loss_full']} nats/char")
        atomic_write_text(_result_path(workdir, side), json.dumps(info))

    nano, zoo = sides["nanogpt"], sides["tfzoo"]
    both = nano is not None and zoo is not None
    train_chars = set(splits.train)
    return {
        "benchmark": "nanogpt_recipe",
        "text": args.text or f"stdlib source, first {CORPUS_CHARS} characters",
        "chars": len(splits.train) + len(splits.validation),
        "train_chars": len(splits.train),
        "val_chars": len(splits.validation),
        "distinct_chars": len(train_chars | set(splits.validation)),
        "val_chars_unseen_in_train": sum(ch not in train_chars for ch in splits.validation),
        "nanogpt": _public(nano),
        "tfzoo": _public(zoo),
        "wall_ratio": round(zoo["wall_s"] / nano["wall_s"], 3) if both else None,
        "val_loss_delta": round(zoo["val_loss_full"] - nano["val_loss_full"], 4) if both else None,
        "val_loss_reported_delta": round(zoo["val_loss_reported"] - nano["val_loss_reported"], 4) if both else None,
        "threads": args.threads,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average {load_start[0]:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end",
        "versions": {
            "python": platform.python_version(),
            "torch": _version("torch"),
            "tensorflow": _version("tensorflow"),
            "keras": _version("keras"),
            "nanogpt_files_sha256": _files_digest(nanogpt_dir, (*NANOGPT_FILES, NANOGPT_CONFIG)),
        },
    }


def _public(info: dict | None) -> dict | None:
    if info is None:
        return None
    keys = ("wall_s", "val_loss_reported", "val_loss_full", "step", "val_targets_full", "load_average_start")
    keys += ("iter_ms_median", "iter_ms_p90", "tokens_per_s_per_eval_period", "extra_flags", "reused")
    return {key: info[key] for key in keys if key in info}


if __name__ == "__main__":
    sys.exit(main())
