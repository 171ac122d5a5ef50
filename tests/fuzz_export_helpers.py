"""Helpers of the exported-model fuzz and soak tests: a tiny GPT export, its adapters, the cases, the child.

`build_export` exports a tiny GPT (the `ExportModule` that `python -m export`
uses, converted by the same `convert_tflite` / `convert_onnx`); `child_main`
runs every case in a subprocess (`run_child`, `CHILD`) and reports one JSON
line per case (see `tests/test_fuzz_exported.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

VOCABULARY_SIZE = 20
MAX_LENGTH = 16
NUM_LAYERS = 1
NUM_HEADS = 2
HIDDEN_DIM = 16
STRATEGIES = ("sample", "greedy", "beam")  # a `--strategy=sample` export: generate, generate_greedy, generate_beam
RANDOM_CASES = 60  # per generate signature, plus as many for decode
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS_DIR)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", KERAS_BACKEND="tensorflow")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def build_export(directory: str, strategies=STRATEGIES, steps: bool = True, jit_compile: bool = True) -> dict:
    """Exports a tiny GPT to `directory` (TFLite + one ONNX file per signature); returns what `load` needs.

    The token embedding is scaled up (as in export_helpers.make_workdir) so that
    the logits are spread out like a trained model's. `jit_compile=True` is
    what the pipeline does; False saves ~25% of the build (ONNX is converted
    from the plain graph either way).
    """
    import keras
    import tensorflow as tf

    from export.export_module import ExportModule, generate_signature_name
    from export.onnx_export import convert_onnx
    from export.tflite_export import convert_tflite
    from tfzoo.models.gpt import GPT

    os.makedirs(directory, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = GPT(
        vocabulary_size=VOCABULARY_SIZE,
        num_layers=NUM_LAYERS,
        num_heads=NUM_HEADS,
        hidden_dim=HIDDEN_DIM,
        intermediate_dim=2 * HIDDEN_DIM,
        max_sequence_length=MAX_LENGTH,
    )
    model.build((None, None))
    embeddings = model.token_embedding.embeddings
    embeddings.assign(embeddings * 50.0)
    module = ExportModule(
        model,
        max_length=MAX_LENGTH,
        strategy=strategies[0],
        beam_size=2,
        eos_ids=(1,),
        banned_ids=(0,),
        strategies=strategies,
        steps=steps,
        jit_compile=jit_compile,
    )
    saved_model = os.path.join(directory, "saved_model")
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(module, saved_model, signatures=module.signatures(), options=options)
    names = module.signature_names
    tflite = os.path.join(directory, "gpt.tflite")
    with open(tflite, "wb") as file:
        file.write(convert_tflite(saved_model, names, "none"))
    onnx_files = {}
    for name in names:
        onnx_files[name] = os.path.join(directory, f"gpt.{name}.onnx")
        with open(onnx_files[name], "wb") as file:
            file.write(convert_onnx(module.portable_function(name), name=name).SerializeToString())
    info = {
        "max_length": MAX_LENGTH,
        "strategy": strategies[0],
        "strategies": {s: generate_signature_name(s, strategies[0]) for s in strategies},
        "num_layers": NUM_LAYERS,
        "num_heads": NUM_HEADS,
        "head_dim": HIDDEN_DIM // NUM_HEADS,
        "vocabulary_size": VOCABULARY_SIZE,
        "beam_size": 2,
        "eos_ids": [1],
        "banned_ids": [0],
        "pad_id": 0,
    }
    return {"info": info, "tflite": tflite, "onnx": onnx_files}


def load(export: dict, runtime: str):
    """The `tfzoo.runtimes` adapter of one runtime ("tflite" or "onnx") for a `build_export` result."""
    from tfzoo.runtimes import OnnxRuntime, TFLiteRuntime

    if runtime == "tflite":
        return TFLiteRuntime(export["tflite"], export["info"], num_threads=1)
    return OnnxRuntime(export["onnx"], export["info"], num_threads=1)


def run_child(code: str, args: list[str], timeout: float) -> tuple[int, str, str]:
    """Runs `code` in a fresh Python (cwd: the repo, tests/ importable); returns (status, stdout, stderr)."""
    env = dict(ENV, PYTHONPATH=os.pathsep.join([REPO, TESTS_DIR, ENV.get("PYTHONPATH", "")]))
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        out = error.stdout.decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
        return -999, out, f"timed out after {timeout} s"
    return result.returncode, result.stdout, result.stderr


# ---------------------------------------------------------------------------------------------------------------
# The cases (built in the child: numpy only).

FLOAT_EDGES = (float("nan"), float("inf"), float("-inf"), 0.0, -0.0, -1.0, 1e-38, 1e38, 3.4e38, -3.4e38, 1.0, 0.5)
INT_EDGES = (INT32_MIN, INT32_MAX, -1, 0, 1, 2, 1000, -1000)


def _int32(values) -> np.ndarray:
    return np.asarray(np.clip(np.asarray(values, np.int64), INT32_MIN, INT32_MAX), np.int32)


def _default_knobs(dtypes: dict) -> dict:
    from tfzoo.decoding.knobs import KNOB_TABLE

    return {k.name: np.asarray(k.default, k.numpy_dtype) for k in KNOB_TABLE if k.name in dtypes and k.exported}


def _generate_inputs(dtypes: dict, token_ids, lengths, max_new_tokens=8, **knobs) -> dict:
    inputs = {"token_ids": _int32(token_ids), "lengths": _int32(lengths), "max_new_tokens": _int32(max_new_tokens)}
    inputs.update(_default_knobs(dtypes))
    from tfzoo.decoding.sequence_tables import DEFAULT_SHAPES, empty_table

    inputs.update({name: empty_table(shape) for name, shape in DEFAULT_SHAPES.items() if name in dtypes})
    for key, value in knobs.items():
        if key in dtypes:
            inputs[key] = np.asarray(value, dtypes[key])
    return inputs


def _hostile_tables(dtypes: dict) -> dict:
    """Stop and banned tables of ids out of every range (never a match), -1 gaps and a token of every id."""
    from tfzoo.decoding.sequence_tables import DEFAULT_SHAPES

    tables = {}
    for name, (count, width) in DEFAULT_SHAPES.items():
        if name in dtypes:
            table = np.full((count, width), -1, np.int64)
            table[0, :3] = [INT32_MAX, INT32_MIN, VOCABULARY_SIZE]
            table[1, 1] = 2  # a gap first: the row is ragged
            table[2, :] = np.arange(width) % VOCABULARY_SIZE
            tables[name] = np.clip(table, INT32_MIN, INT32_MAX).astype(np.int32)
    return tables


def generate_cases(dtypes: dict, rng: np.random.Generator) -> list[tuple[str, dict]]:
    """(name, raw inputs) of one generate signature: the fixed hostile cases, then seeded random ones."""
    good_ids, good_lengths = [[5, 6, 7], [8, 9, 0]], [3, 2]
    cases = [
        ("good", _generate_inputs(dtypes, good_ids, good_lengths)),
        ("stop and ban tables hostile", _generate_inputs(dtypes, good_ids, good_lengths, **_hostile_tables(dtypes))),
        ("ids huge", _generate_inputs(dtypes, [[INT32_MAX, 10**6, VOCABULARY_SIZE]], [3])),
        ("ids negative", _generate_inputs(dtypes, [[INT32_MIN, -1, -VOCABULARY_SIZE]], [3])),
        ("lengths 0", _generate_inputs(dtypes, good_ids, [0, 0])),
        ("lengths negative", _generate_inputs(dtypes, good_ids, [-1, INT32_MIN])),
        ("lengths beyond width", _generate_inputs(dtypes, good_ids, [4, INT32_MAX])),
        ("max_new_tokens -1", _generate_inputs(dtypes, good_ids, good_lengths, -1)),
        ("max_new_tokens int32 min", _generate_inputs(dtypes, good_ids, good_lengths, INT32_MIN)),
        ("max_new_tokens int32 max", _generate_inputs(dtypes, good_ids, good_lengths, INT32_MAX)),
        ("max_new_tokens beyond room", _generate_inputs(dtypes, good_ids, good_lengths, MAX_LENGTH + 5)),
        (
            "prompt wider than max_length",
            _generate_inputs(dtypes, [list(range(2, 2 + 3 * MAX_LENGTH))], [3 * MAX_LENGTH]),
        ),
        ("prompt fills max_length", _generate_inputs(dtypes, [[3] * MAX_LENGTH], [MAX_LENGTH])),
        ("empty batch", _generate_inputs(dtypes, np.zeros((0, 3)), np.zeros((0,)))),
        ("empty prompt width", _generate_inputs(dtypes, np.zeros((2, 0)), [1, 1])),
        ("batch 64", _generate_inputs(dtypes, np.full((64, 4), 7), np.full((64,), 4))),
    ]
    for name in ("temperature", "top_p", "length_penalty", "repetition_penalty"):
        if name in dtypes:
            for value in FLOAT_EDGES[:10]:
                cases.append((f"{name}={value}", _generate_inputs(dtypes, good_ids, good_lengths, **{name: value})))
    for name in ("top_k", "seed", "no_repeat_ngram_size"):
        if name in dtypes:
            for value in INT_EDGES:
                cases.append((f"{name}={value}", _generate_inputs(dtypes, good_ids, good_lengths, **{name: value})))
    for index in range(RANDOM_CASES):
        batch, width = int(rng.integers(1, 4)), int(rng.integers(1, 2 * MAX_LENGTH))
        ids = rng.choice(
            [rng.integers(0, VOCABULARY_SIZE), rng.integers(INT32_MIN, INT32_MAX), -1, INT32_MAX],
            size=(batch, width),
            p=[0.7, 0.1, 0.1, 0.1],
        )
        lengths = rng.choice(
            [rng.integers(1, width + 1), 0, -5, width + 3, INT32_MIN, INT32_MAX],
            size=(batch,),
            p=[0.6, 0.1, 0.1, 0.1, 0.05, 0.05],
        )
        max_new = int(rng.choice([rng.integers(0, MAX_LENGTH), -3, INT32_MAX, INT32_MIN, 2 * MAX_LENGTH]))
        knobs = {}
        for name in dtypes:
            if name in ("token_ids", "lengths", "max_new_tokens") or rng.random() < 0.5:
                continue
            if np.issubdtype(dtypes[name], np.floating):
                knobs[name] = float(rng.choice([*FLOAT_EDGES, rng.normal(0, 10)]))
            else:
                knobs[name] = int(rng.choice([*INT_EDGES, rng.integers(-50, 50)]))
        cases.append((f"random {index}", _generate_inputs(dtypes, ids, lengths, max_new, **knobs)))
    return cases


def step_cases(runtime, signature: str, rng: np.random.Generator) -> list[tuple[str, dict]]:
    """(name, raw inputs) of `prefill` or `decode`."""
    width = 1 if signature == "decode" else 3

    def inputs(token_ids, positions, cache=None):
        token_ids, positions = _int32(token_ids), _int32(positions)
        # What an app sends straight to the runtime: the fixed-size cache (the adapter grows its own).
        cache = cache if cache is not None else runtime.init_cache(token_ids.shape[0], runtime.max_length)
        feed = {"token_ids": token_ids, "positions": positions}
        for i, (keys, values) in enumerate(cache):
            feed[f"past_k_{i}"], feed[f"past_v_{i}"] = keys, values
        return feed

    def cache_of(shape, fill=0.0):
        return tuple((np.full(shape, fill, np.float32),) * 2 for _ in range(runtime.num_layers))

    ids = [list(range(4, 4 + width)), list(range(7, 7 + width))]
    positions = [list(range(width))] * 2
    shape = (2, runtime.num_heads, MAX_LENGTH, runtime.head_dim)
    cases = [
        ("good", inputs(ids, positions)),
        ("ids huge", inputs([[INT32_MAX] * width, [VOCABULARY_SIZE] * width], positions)),
        ("ids negative", inputs([[INT32_MIN] * width, [-1] * width], positions)),
        ("positions negative", inputs(ids, [[-1] * width, [INT32_MIN] * width])),
        ("positions huge", inputs(ids, [[MAX_LENGTH] * width, [INT32_MAX] * width])),
        ("empty batch", inputs(np.zeros((0, width)), np.zeros((0, width)))),
        ("positions shape differs", inputs(ids, [[0] * (width + 1)] * 2)),
        ("batch of ids and cache differ", inputs(ids, positions, cache_of((3,) + shape[1:]))),
        ("cache shorter than max_length", inputs(ids, positions, cache_of(shape[:2] + (4,) + shape[3:]))),
        ("cache without slots", inputs(ids, positions, cache_of(shape[:2] + (0,) + shape[3:]))),
        ("cache longer than max_length", inputs(ids, positions, cache_of(shape[:2] + (4 * MAX_LENGTH,) + shape[3:]))),
        ("cache head_dim differs", inputs(ids, positions, cache_of(shape[:3] + (runtime.head_dim * 3,)))),
        ("cache heads differ", inputs(ids, positions, cache_of((2, runtime.num_heads + 3) + shape[2:]))),
        ("cache NaN", inputs(ids, positions, cache_of(shape, np.nan))),
        ("cache huge", inputs(ids, positions, cache_of(shape, 3e38))),
    ]
    if signature == "decode":
        cases.append(("decode two tokens per row", inputs([[4, 5], [6, 7]], [[0, 1], [0, 1]])))
    for index in range(RANDOM_CASES):
        batch = int(rng.integers(1, 4))
        ids = rng.choice(
            [rng.integers(0, VOCABULARY_SIZE), INT32_MIN, INT32_MAX, -1, VOCABULARY_SIZE],
            size=(batch, width),
            p=[0.6, 0.1, 0.1, 0.1, 0.1],
        )
        positions = rng.choice(
            [rng.integers(0, MAX_LENGTH), INT32_MIN, INT32_MAX, -1, MAX_LENGTH],
            size=(batch, width),
            p=[0.6, 0.1, 0.1, 0.1, 0.1],
        )
        cases.append((f"random {index}", inputs(ids, positions)))
    return cases


# ---------------------------------------------------------------------------------------------------------------
# The checks (in the child).


def check_generate(inputs: dict, outputs: dict) -> list[str]:
    """What is wrong with `generate` outputs for `inputs` (empty: nothing)."""
    problems = []
    batch = inputs["token_ids"].shape[0]
    sequences, lengths, scores = (np.asarray(outputs.get(k)) for k in ("sequences", "sequence_lengths", "scores"))
    if sequences.shape != (batch, MAX_LENGTH):
        return [f"sequences shape {sequences.shape}, expected {(batch, MAX_LENGTH)}"]
    if lengths.shape != (batch,) or scores.shape != (batch,):
        return [f"sequence_lengths shape {lengths.shape}, scores shape {scores.shape}, expected {(batch,)}"]
    if batch == 0:
        return []
    if sequences.min() < 0 or sequences.max() >= VOCABULARY_SIZE:
        problems.append(f"token ids outside [0, {VOCABULARY_SIZE}): min {sequences.min()}, max {sequences.max()}")
    if lengths.min() < 1 or lengths.max() > MAX_LENGTH:
        problems.append(f"sequence_lengths outside [1, {MAX_LENGTH}]: {lengths.tolist()}")
    else:
        after_end = np.arange(MAX_LENGTH)[None, :] >= lengths[:, None]
        if np.any(sequences[after_end] != 0):
            problems.append("sequences are not padded with the pad id after sequence_lengths")
    if not np.all(np.isfinite(scores)):
        problems.append(f"scores not finite: {scores.tolist()}")
    return problems


def check_step(inputs: dict, outputs: dict, num_layers: int) -> list[str]:
    """What is wrong with `prefill`/`decode` outputs for `inputs` (empty: nothing)."""
    token_ids = inputs["token_ids"]
    logits = np.asarray(outputs.get("logits"))
    if logits.shape != token_ids.shape + (VOCABULARY_SIZE,):
        return [f"logits shape {logits.shape}, expected {token_ids.shape + (VOCABULARY_SIZE,)}"]
    problems = []
    for i in range(num_layers):
        for kind in ("k", "v"):
            past, present = inputs[f"past_{kind}_{i}"], np.asarray(outputs[f"present_{kind}_{i}"])
            if present.shape != past.shape:
                problems.append(f"present_{kind}_{i} shape {present.shape} != past shape {past.shape}")
            elif np.all(np.isfinite(past)) and not np.all(np.isfinite(present)):
                problems.append(f"present_{kind}_{i} not finite for a finite cache")
    caches_finite = all(np.all(np.isfinite(v)) for k, v in inputs.items() if k.startswith("past_"))
    if caches_finite and not np.all(np.isfinite(logits)):
        problems.append("logits not finite for a finite cache")
    return problems


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"


def child_main(runtime_name: str, export_json: str) -> None:
    """Runs every case through one runtime; prints `START <case>` before and a JSON result line after each."""
    export = json.loads(export_json)
    runtime = load(export, runtime_name)
    rng = np.random.default_rng(0)

    def emit(record):
        print(json.dumps(record), flush=True)

    def good_call(signature, check):
        inputs = check[0]
        try:
            outputs = runtime._run(signature, dict(inputs))
        except Exception as error:  # noqa: BLE001 (any failure is a result to report)
            return f"a good request fails after the rejection: {_describe(error)}"
        problems = check[1](inputs, outputs)
        return f"a good request goes wrong after the rejection: {problems}" if problems else None

    suites = []
    for signature in runtime.strategies.values():
        dtypes = runtime._input_dtypes(signature)
        cases = generate_cases(dtypes, rng)
        suites.append((signature, cases, check_generate))
    for signature in ("prefill", "decode"):
        checker = lambda inputs, outputs: check_step(inputs, outputs, runtime.num_layers)  # noqa: E731 (a one-line closure)
        suites.append((signature, step_cases(runtime, signature, rng), checker))

    for signature, cases, checker in suites:
        good = dict(cases)["good"]
        for name, inputs in cases:
            label = f"{signature}: {name}"
            print(f"START {label}", flush=True)
            record = {"case": label}
            try:
                outputs = runtime._run(signature, dict(inputs))
            except Exception as error:  # noqa: BLE001 (a clean rejection by the runtime)
                record["rejected"] = _describe(error)
                after = good_call(signature, (good, checker))
                record["problems"] = [after] if after else []
            else:
                record["problems"] = checker(inputs, outputs)
            emit(record)

    # The Python adapter (`Runtime.generate` / `decode`) with hostile Python values.
    adapter_cases = [
        ("ids beyond int32", lambda: runtime.generate([[2**40, -(2**40)]], [2], 4)),
        ("lengths beyond int32", lambda: runtime.generate([[5, 6]], [2**33 + 2], 4)),
        ("max_new_tokens beyond int32", lambda: runtime.generate([[5, 6]], [2], 2**32 + 3)),
        ("max_new_tokens float", lambda: runtime.generate([[5, 6]], [2], 3.5)),
        ("float token ids", lambda: runtime.generate([[5.5, 6.0]], [2], 4)),
        ("ragged prompts", lambda: runtime.generate([[5, 6], [7]], [2, 1], 4)),
        ("empty batch", lambda: runtime.generate(np.zeros((0, 3), np.int32), np.zeros((0,), np.int32), 4)),
        ("1-D prompt", lambda: runtime.generate([5, 6], [2], 4)),
        ("temperature NaN", lambda: runtime.generate([[5, 6]], [2], 4, temperature=float("nan"))),
        ("top_p string", lambda: runtime.generate([[5, 6]], [2], 4, top_p="high")),
        ("top_k beyond int32", lambda: runtime.generate([[5, 6]], [2], 4, top_k=2**40)),
        ("seed beyond int32", lambda: runtime.generate([[5, 6]], [2], 4, seed=2**40 + 7)),
        ("decode positions huge", lambda: runtime.decode([[5]], [[2**40]], runtime.init_cache(1))),
        ("decode cache of another model", lambda: runtime.decode([[5]], [[0]], runtime.init_cache(1)[:0])),
        ("decode cache of another batch", lambda: runtime.decode([[5]], [[0]], runtime.init_cache(3))),
    ]
    for name, call in adapter_cases:
        label = f"adapter: {name}"
        print(f"START {label}", flush=True)
        record = {"case": label, "problems": []}
        try:
            result = call()
        except Exception as error:  # noqa: BLE001 (any failure is a result to report)
            record["rejected"] = _describe(error)
        else:
            if name.startswith("decode"):
                logits = np.asarray(result[0])
                if not np.all(np.isfinite(logits)):
                    record["problems"].append("logits not finite")
            else:
                sequences, lengths, scores = result
                fake = {"token_ids": np.zeros((len(lengths), 1), np.int32)}
                outputs = {"sequences": sequences, "sequence_lengths": lengths, "scores": scores}
                record["problems"] = check_generate(fake, outputs)
        emit(record)
    print("DONE", flush=True)


CHILD = "import sys, fuzz_export_helpers as t; t.child_main(sys.argv[1], sys.argv[2])"


def parse_child_output(status: int, stdout: str, stderr: str) -> tuple[list[dict], str | None]:
    """The JSON records and, when the child died, the case it was running."""
    records, running = [], None
    for line in stdout.splitlines():
        if line.startswith("START "):
            running = line[len("START ") :]
        elif line.startswith("{"):
            records.append(json.loads(line))
            running = None
    died = None
    if status != 0 or "DONE" not in stdout.splitlines():
        died = f"child exited with status {status} while running case {running!r}; stderr: {stderr[-1500:]}"
    return records, died
