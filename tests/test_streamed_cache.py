"""Streamed `prefill`/`decode` with a dynamic slot count: the runtimes feed the slots in use, grown in blocks.

The step signatures take `past_k_<i>`/`past_v_<i>` of shape (B, heads, S, head_dim) with S dynamic;
`tfzoo.runtimes` start from an empty cache and grow it by `cache_block` slots as the positions
need, so a step costs the tokens held, not the export's `max_length`. Here a perturbed tiny GPT
(continuations long, varied and prompt-dependent) is exported once through the CLI, then a
streamed greedy loop over a right-padded batch, with blocks of 8 slots over a 48-slot context
(six blocks), must give the tokens of the Keras `Generator` (fixed-size cache, no export code) in
Keras, SavedModel, TFLite and ONNX, and the same logits as a caller that feeds all `max_length`
slots (what earlier releases did, and what apps written for them still do).
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import keras
import numpy as np
import onnx
import pytest
from ai_edge_litert.interpreter import Interpreter

from apps.edge import edge_model
from apps.edge.errors import AppError
from apps.edge.json_files import report_knobs
from export.__main__ import main as export_main
from export_helpers import TEXT, make_workdir, perturb_workdir
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.decoding.generator import Generator
from tfzoo.runtimes import KerasRuntime, Runtime, RuntimeInputError, load_runtime
from tfzoo.runtimes.base import grow_cache

MAX_LENGTH = 48
BLOCK = 8  # the runtimes' block, made small so that the context spans six blocks
PROMPTS = ("def ", "class Parser(", "import os\nimport ")  # 4, 13 and 17 tokens: rows at different positions
NEW_TOKENS = MAX_LENGTH - 18
EOS, PAD = 1, 0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("streamed") / "run", max_sequence_length=64)
    perturb_workdir(workdir, scale=0.4, seed=3)
    argv = [f"--workdir={workdir}", f"--max_length={MAX_LENGTH}", "--quantization=none", "--strategy=greedy"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert export_main([*argv, "--formats=saved_model,tflite,onnx"]) == 0
    with open(os.path.join(workdir, "export", "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    tokenizer = CharTokenizer.from_text(TEXT)
    encoded = [tokenizer.encode(p) for p in PROMPTS]
    lengths = np.array([len(e) for e in encoded], np.int32)
    token_ids = np.zeros((len(encoded), lengths.max()), np.int32)
    for row, ids in enumerate(encoded):
        token_ids[row, : len(ids)] = ids
    model = keras.saving.load_model(os.path.join(workdir, "model.keras"), compile=False)
    generator = Generator(
        model, max_length=MAX_LENGTH, strategy="greedy", eos_ids=(EOS,), banned_ids=(PAD,), jit_compile=False
    )
    want = generator(token_ids, lengths, max_new_tokens=NEW_TOKENS)
    reference = [
        want["sequences"][row, length : want["sequence_lengths"][row]].tolist() for row, length in enumerate(lengths)
    ]
    runtimes = {name: load_runtime(workdir, name) for name in ("saved_model", "tflite", "onnx")}
    runtimes["keras"] = KerasRuntime(model, report["model"])
    for runtime in runtimes.values():
        runtime.cache_block = BLOCK
    return {
        "workdir": workdir,
        "report": report,
        "token_ids": token_ids,
        "lengths": lengths,
        "reference": reference,
        "runtimes": runtimes,
    }


def _streamed_greedy(runtime, token_ids, lengths, cache) -> tuple[list[list[int]], list[int], list[np.ndarray]]:
    """Greedy decoding through `prefill` then `decode`: (new tokens per row, slots fed per step, logits per step)."""
    batch, width = token_ids.shape
    rows = np.arange(batch)
    logits, cache = runtime.prefill(token_ids, np.tile(np.arange(width, dtype=np.int32), (batch, 1)), cache)
    last = logits[rows, lengths - 1]
    positions, done = lengths.astype(np.int32), np.zeros(batch, bool)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    slots, steps = [cache[0][0].shape[2]], [last]
    for _ in range(NEW_TOKENS):
        last = last.copy()
        last[:, PAD] = -np.inf  # the export's banned id
        token = np.argmax(last, axis=-1).astype(np.int32)
        for row in np.flatnonzero(~done):
            tokens[row].append(int(token[row]))
        done |= token == EOS
        if done.all():
            break
        logits, cache = runtime.decode(token[:, None], positions[:, None], cache)
        slots.append(cache[0][0].shape[2])
        last = logits[:, 0]
        steps.append(last)
        positions = np.minimum(positions + 1, MAX_LENGTH - 1)
    return tokens, slots, steps


def test_the_continuations_are_a_real_comparison(exported):
    for row, tokens in enumerate(exported["reference"]):
        assert len(tokens) >= 20 and len(set(tokens)) >= 5, (row, tokens)
    first, second, third = exported["reference"]
    assert first != second != third != first  # prompt-dependent


def test_step_signatures_take_any_slot_count(exported):
    export_dir = os.path.join(exported["workdir"], "export")
    interpreter = Interpreter(model_path=os.path.join(export_dir, exported["report"]["artefacts"]["tflite"]["path"]))
    for signature in ("prefill", "decode"):
        details = interpreter.get_signature_runner(signature).get_input_details()
        assert list(details["past_k_0"]["shape_signature"]) == [-1, 2, -1, 16]
        files = exported["report"]["artefacts"]["onnx"]["files"]
        graph = onnx.load(os.path.join(export_dir, files[signature]["path"]), load_external_data=False).graph
        dims = next(i for i in graph.input if i.name == "past_v_1").type.tensor_type.shape.dim
        assert not dims[2].HasField("dim_value") and dims[3].dim_value == 16
    for runtime in exported["runtimes"].values():
        assert runtime._dynamic_slots("decode"), runtime.name


@pytest.mark.parametrize("runtime", ["keras", "saved_model", "tflite", "onnx"])
def test_streamed_steps_grow_by_blocks_and_give_the_generate_tokens(exported, runtime):
    runtime = exported["runtimes"][runtime]
    token_ids, lengths = exported["token_ids"], exported["lengths"]
    tokens, slots, steps = _streamed_greedy(runtime, token_ids, lengths, runtime.init_cache(len(lengths)))
    assert tokens == exported["reference"]
    # The cache fed is the slots in use rounded up to a block: it grows once per block, not per token.
    widest = lengths.max()
    assert slots[0] == -(-token_ids.shape[1] // BLOCK) * BLOCK
    for step, count in enumerate(slots[1:]):
        assert count == min(-(-(widest + step + 1) // BLOCK) * BLOCK, MAX_LENGTH), (step, count)
    assert len(set(slots)) >= 4 and slots[-1] == MAX_LENGTH
    # A caller that feeds every slot (earlier releases, apps written for them): the same logits.
    full_tokens, full_slots, full_steps = _streamed_greedy(
        runtime, token_ids, lengths, runtime.init_cache(len(lengths), slots=MAX_LENGTH)
    )
    assert full_tokens == tokens and set(full_slots) == {MAX_LENGTH}
    for got, want in zip(steps, full_steps):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_exported_generate_agrees(exported):
    for name in ("tflite", "onnx"):  # the SavedModel's (XLA) generate: the export's parity
        runtime = exported["runtimes"][name]
        sequences, sequence_lengths, _ = runtime.generate(exported["token_ids"], exported["lengths"], NEW_TOKENS)
        got = [sequences[row, n : sequence_lengths[row]].tolist() for row, n in enumerate(exported["lengths"])]
        assert got == exported["reference"], name


def test_a_fixed_slot_export_is_fed_max_length_slots(exported):
    """Steps whose cache inputs have a static slot dimension (exports before this change) get all the slots."""
    runtime = load_runtime(exported["workdir"], "tflite")
    runtime.cache_block = BLOCK
    runtime._fixed_slots = {"prefill", "decode"}  # as the adapters mark a static `past_k_0` slot dimension
    tokens, slots, _ = _streamed_greedy(runtime, exported["token_ids"], exported["lengths"], runtime.init_cache(3))
    assert set(slots) == {MAX_LENGTH} and tokens == exported["reference"]


def test_cache_sizes_are_checked_and_grown_once_per_block():
    info = {"max_length": 20, "num_layers": 1, "num_heads": 2, "head_dim": 4, "vocabulary_size": 10}
    base = Runtime(info)
    assert base.init_cache(2)[0][0].shape == (2, 2, 0, 4)
    with pytest.raises(RuntimeInputError, match=r"slots must be an integer in \[0, 20\], got 21"):
        base.init_cache(1, slots=21)
    flat = ((np.zeros((1, 2, 4)), np.zeros((1, 2, 4))),)
    with pytest.raises(RuntimeInputError, match=r"cache arrays must be \(batch, 2, slots, 4\), got \(1, 2, 4\)"):
        base._grown_cache("decode", np.zeros((1, 1), np.int32), flat)
    cache = ((np.ones((1, 2, 5, 4), np.float32), np.ones((1, 2, 5, 4), np.float32)),)
    assert grow_cache(cache, 5, 20, 8)[0][0] is cache[0][0]  # room enough: not copied
    grown = grow_cache(cache, 6, 20, 8)[0][1]
    assert grown.shape == (1, 2, 8, 4) and grown[:, :, :5].min() == 1 and not grown[:, :, 5:].any()
    assert grow_cache(cache, 17, 20, 8)[0][0].shape[2] == 20  # capped at max_length


def test_edge_app_streams_the_generate_tokens_in_blocks(exported, monkeypatch):
    monkeypatch.setattr(edge_model, "CACHE_BLOCK", BLOCK)
    path = os.path.join(exported["workdir"], "export", exported["report"]["artefacts"]["tflite"]["path"])
    model = edge_model.EdgeModel(path, eos_id=EOS, pad_id=PAD, knobs=report_knobs(exported["report"], "r", AppError))
    assert model.max_length == MAX_LENGTH and model.cache_slots is None
    fed = []

    class Spy:  # the decode runner, noting the slots each call is fed
        def __init__(self, runner):
            self.runner = runner

        def __call__(self, **inputs):
            fed.append(inputs["past_k_0"].shape[2])
            return self.runner(**inputs)

        def __getattr__(self, name):
            return getattr(self.runner, name)

    model._runners["decode"] = Spy(model._runner("decode"))
    for row, length in enumerate(exported["lengths"]):
        prompt = exported["token_ids"][row, :length].tolist()
        want = [t for t in exported["reference"][row] if t != EOS]
        assert list(model.steps(prompt, NEW_TOKENS)) == want
        assert model.generate(prompt, NEW_TOKENS) == want
    assert set(fed) >= {24, 32, 40, 48} and all(count % BLOCK == 0 for count in fed)
