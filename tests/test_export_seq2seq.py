"""Export of the encoder-decoder Transformer: `python -m export` on a tiny workdir, every runtime against Keras.

One export (module fixture) serves every test: the report and signatures,
greedy and beam tokens of SavedModel, TFLite (fp32) and ONNX against a Keras
reference computed here independently (`model.init_decoding_cache` +
`tfzoo.decoding.generate`), the `encode`/`prefill`/`decode` steps,
`serving_default` (text in, text out), `python -m tfzoo.generate`, and bad input.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.__main__ import main as export_main
from export.runtimes import RuntimeInputError, load_runtime
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.data.translation_data import load_translation_data
from tfzoo.decoding import generate
from tfzoo.generate import main as generate_main
from tfzoo.models.transformer import Transformer

MAX_SEQUENCE_LENGTH = 24
MAX_LENGTH = 12
BEAM_SIZE = 2
SOURCES = ("five", "eighty-one", "two hundred and six", "two thousand and sixty")  # 4 to 22 characters
RUNTIMES = ("saved_model", "tflite", "onnx")


def make_workdir(workdir) -> str:
    """A run folder as training leaves it, with an untrained Transformer whose logits are spread out.

    The embeddings are scaled up (untied output projection) so that tokens
    depend on the source and no near-tie lets float noise flip a token.
    """
    workdir = str(workdir)
    os.makedirs(workdir, exist_ok=True)
    task = load_translation_data("numbers:en-fr", max_number=999)
    tokenizer = CharTokenizer.from_text(task.tokenizer_text())
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    keras.utils.set_random_seed(0)
    model = Transformer(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        tie_embeddings=False,
    )
    model.build()
    for weight in model.token_embedding.weights:
        weight.assign(weight * 4.0)
    model.save(os.path.join(workdir, "model.keras"))
    config = {
        "model": "transformer",
        "dataset": "numbers:en-fr",
        "tokenizer": "char",
        "seq_len": MAX_SEQUENCE_LENGTH,
        "seed": 0,
    }
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file)
    return workdir


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("export_seq2seq") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main(
            [
                f"--workdir={workdir}",
                f"--max_length={MAX_LENGTH}",
                f"--beam_size={BEAM_SIZE}",
                "--quantization=none,int8",
            ]
        )
    assert status == 0
    with open(os.path.join(workdir, "export", "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    return {"workdir": workdir, "report": report, "tokenizer": tokenizer}


@pytest.fixture(scope="module")
def runtimes(exported):
    return {name: load_runtime(exported["workdir"], name) for name in RUNTIMES}


def _sources(tokenizer, width: int | None = None):
    rows = [tokenizer.encode(text) for text in SOURCES]
    lengths = np.array([len(r) for r in rows], np.int32)
    source_ids = np.zeros((len(rows), width or int(lengths.max())), np.int32)
    for i, row in enumerate(rows):
        source_ids[i, : len(row)] = row
    return source_ids, lengths


@pytest.fixture(scope="module")
def keras_reference(exported):
    """Greedy and beam tokens of the Keras model through the training-time decoding path (not export code)."""
    model = keras.saving.load_model(os.path.join(exported["workdir"], "model.keras"), compile=False)
    info = exported["report"]["model"]
    source_ids, lengths = _sources(exported["tokenizer"])
    outputs = {}
    for strategy in ("greedy", "beam"):

        @tf.function(autograph=False)
        def run(source_ids, lengths, strategy=strategy):
            cache = model.init_decoding_cache(source_ids, lengths, MAX_LENGTH)
            return generate(
                model.decoding_step,
                cache,
                tf.fill([len(SOURCES), 1], info["start_id"]),
                tf.ones([len(SOURCES)], tf.int32),
                max_length=MAX_LENGTH,
                strategy=strategy,
                beam_size=BEAM_SIZE,
                eos_ids=info["eos_ids"],
                banned_ids=info["banned_ids"],
                pad_id=info["pad_id"],
                max_new_tokens=MAX_LENGTH - 1,
            )

        out = run(tf.constant(source_ids), tf.constant(lengths))
        outputs[strategy] = {key: value.numpy() for key, value in out.items()}
    return {"model": model, "source_ids": source_ids, "lengths": lengths, **outputs}


def test_report_names_signatures_and_parity(exported):
    report = exported["report"]
    assert report["passed"], report["failures"]
    assert report["model"]["kind"] == "seq2seq" and report["model"]["max_source_length"] == MAX_SEQUENCE_LENGTH
    export_dir = os.path.join(exported["workdir"], "export")
    for name in (
        "transformer.tflite",
        "transformer.int8.tflite",
        "transformer.onnx",
        "transformer.encode.onnx",
        "saved_model/transformer/1/saved_model.pb",
    ):
        assert os.path.isfile(os.path.join(export_dir, name)), name
    generate_inputs = {
        "source_ids",
        "source_lengths",
        "token_ids",
        "lengths",
        "max_new_tokens",
        "length_penalty",
        "repetition_penalty",
        "no_repeat_ngram_size",
        "stop_sequences",
        "banned_sequences",
    }
    step_inputs = {"token_ids", "positions", "past_k_0", "past_v_0", "cross_k_0", "cross_v_0", "source_lengths"}
    for key in ("saved_model", "tflite", "tflite_int8", "onnx"):
        signatures = report["artefacts"][key]["signatures"]
        assert {"generate", "generate_greedy", "encode", "prefill", "decode"} <= set(signatures), key
        assert set(signatures["generate"]["inputs"]) == generate_inputs, key
        assert set(signatures["generate"]["outputs"]) == {"sequences", "sequence_lengths", "scores"}, key
        assert set(signatures["encode"]["inputs"]) == {"source_ids", "source_lengths"}, key
        assert set(signatures["encode"]["outputs"]) == {"encoder_output", "cross_k_0", "cross_v_0"}, key
        assert set(signatures["decode"]["inputs"]) == step_inputs, key
        assert set(signatures["decode"]["outputs"]) == {"logits", "present_k_0", "present_v_0"}, key
    assert "serving_default" in report["artefacts"]["saved_model"]["signatures"]
    sources = report["reference"]["prompts"]
    held_out = set(load_translation_data("numbers:en-fr").validation_sources)
    assert len(sources) >= 3 and set(sources) <= held_out  # parity inputs come from the held-out split
    for key in ("saved_model", "tflite", "onnx"):
        parity = report["artefacts"][key]["parity"]
        assert parity["passed"], key
        assert parity["generate"]["beam"]["identical"] and parity["generate"]["greedy"]["identical"], key
    assert "validation_loss_change" in report["artefacts"]["tflite_int8"]["parity"]


def test_greedy_and_beam_tokens_match_keras_in_every_runtime(runtimes, keras_reference):
    for strategy in ("greedy", "beam"):
        want = keras_reference[strategy]
        assert len({tuple(row) for row in want["sequences"]}) > 1  # outputs depend on the source
        for name, runtime in runtimes.items():
            sequences, lengths, scores = runtime.generate(
                None,
                None,
                MAX_LENGTH - 1,
                strategy=strategy,
                source_ids=keras_reference["source_ids"],
                source_lengths=keras_reference["lengths"],
            )
            np.testing.assert_array_equal(sequences, want["sequences"], err_msg=f"{name} {strategy}")
            np.testing.assert_array_equal(lengths, want["sequence_lengths"], err_msg=f"{name} {strategy}")
            np.testing.assert_allclose(scores, want["scores"], atol=1e-3, err_msg=f"{name} {strategy}")


def test_encode_prefill_decode_reproduce_greedy_generate(runtimes, keras_reference):
    want = keras_reference["greedy"]["sequences"]
    for name in ("tflite", "onnx"):
        runtime = runtimes[name]
        context = runtime.encode(source_ids=keras_reference["source_ids"], source_lengths=keras_reference["lengths"])
        assert context["cross_k_0"].shape == (len(SOURCES), 2, MAX_SEQUENCE_LENGTH, 16)
        batch = len(SOURCES)
        tokens = np.full((batch, 1), runtime.start_id, np.int32)
        logits, cache = runtime.prefill(tokens, np.zeros((batch, 1), np.int32), runtime.init_cache(batch), context)
        produced = [tokens[:, 0]]
        for step in range(1, 5):
            logits = np.array(logits)
            logits[..., runtime.info["banned_ids"]] = -np.inf
            tokens = np.argmax(logits[:, -1], axis=-1).astype(np.int32)[:, None]
            produced.append(tokens[:, 0])
            logits, cache = runtime.decode(tokens, np.full((batch, 1), step, np.int32), cache, context)
        filled = np.arange(5)[None, :] < keras_reference["greedy"]["sequence_lengths"][:, None]
        assert filled.sum() > 10
        np.testing.assert_array_equal(
            np.where(filled, np.stack(produced, 1), 0), np.where(filled, want[:, :5], 0), err_msg=name
        )


def test_serving_default_translates_text_with_the_tokenizer_in_graph(runtimes, exported):
    runtime = runtimes["saved_model"]
    texts, scores = runtime.complete(list(SOURCES), max_new_tokens=MAX_LENGTH - 1)
    source_ids, lengths = _sources(exported["tokenizer"])
    sequences, sequence_lengths, want_scores = runtime.generate(
        None, None, MAX_LENGTH - 1, source_ids=source_ids, source_lengths=lengths
    )
    tokenizer = exported["tokenizer"]
    assert texts == [tokenizer.decode(row[1:end]) for row, end in zip(sequences, sequence_lengths)]
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="a source has more tokens than max_sequence_length=24"):
        runtime.complete(["x" * (MAX_SEQUENCE_LENGTH + 1)], max_new_tokens=4)


def test_bad_sources_give_clear_errors(runtimes):
    too_long = np.ones((1, MAX_SEQUENCE_LENGTH + 1), np.int32)
    for runtime in runtimes.values():
        with pytest.raises(RuntimeInputError, match="longer than the model's max_sequence_length=24"):
            runtime.generate(None, None, 4, source_ids=too_long, source_lengths=[MAX_SEQUENCE_LENGTH + 1])
        with pytest.raises(RuntimeInputError, match="pass source_ids and source_lengths"):
            runtime.generate([[1]], [1], 4)
        with pytest.raises(RuntimeInputError, match=r"source_lengths must be in \[1, 3\]"):
            runtime.generate(None, None, 4, source_ids=[[5, 6, 7]], source_lengths=[4])
        with pytest.raises(RuntimeInputError, match="takes source_ids and source_lengths, not image"):
            runtime.generate(None, None, 4, source_ids=[[5]], source_lengths=[1], image=np.zeros((1, 8, 8, 3)))
        with pytest.raises(RuntimeInputError, match="need the context from encode"):
            runtime.prefill([[1]], [[0]], runtime.init_cache(1))
    # Padding beyond max_sequence_length is cut: same tokens as the unpadded source.
    wide = np.zeros((1, MAX_SEQUENCE_LENGTH + 6), np.int32)
    wide[0, :4] = [5, 6, 7, 8]
    padded = runtimes["tflite"].generate(None, None, 6, source_ids=wide, source_lengths=[4])[0]
    narrow = runtimes["tflite"].generate(None, None, 6, source_ids=wide[:, :4], source_lengths=[4])[0]
    np.testing.assert_array_equal(padded, narrow)


def test_graphs_clamp_out_of_range_sources(runtimes):
    """Fed directly (no adapter checks), the graphs cut wide sources and clamp lengths and ids, never crash."""
    wide = np.full((2, MAX_SEQUENCE_LENGTH + 8), 5, np.int32)
    wide[1, 3] = 10_000  # beyond the vocabulary
    wide[1, 4] = -7
    inputs = {
        "source_ids": wide,
        "source_lengths": np.array([MAX_SEQUENCE_LENGTH + 8, -3], np.int32),
        "token_ids": np.ones((2, 1), np.int32),
        "lengths": np.ones(2, np.int32),
        "max_new_tokens": np.int32(4),
        "repetition_penalty": np.float32(1.0),
        "no_repeat_ngram_size": np.int32(0),
        **runtimes["tflite"].sequence_tables({}),  # no stop or banned sequences: all -1
    }
    results = []
    for name in ("tflite", "onnx"):
        outputs = runtimes[name]._call("generate_greedy", inputs)
        assert outputs["sequences"].shape == (2, MAX_LENGTH)
        assert outputs["sequences"].min() >= 0 and outputs["sequences"].max() < runtimes[name].vocabulary_size
        results.append(outputs["sequences"])
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("runtime", ("keras", "tflite", "onnx"))
def test_generate_cli_translates_in_each_runtime(exported, runtimes, runtime, capsys):
    argv = [
        f"--workdir={exported['workdir']}",
        "--prompt=eighty-one",
        f"--runtime={runtime}",
        "--strategy=beam",
        f"--beam_size={BEAM_SIZE}",
        "--length_penalty=1.0",
        f"--max_new_tokens={MAX_LENGTH - 1}",
        "--no_jit_compile",
    ]
    assert generate_main(argv) == 0
    out = capsys.readouterr().out
    source_ids, lengths = _sources(exported["tokenizer"])
    sequences, sequence_lengths, _ = runtimes["onnx"].generate(
        None, None, MAX_LENGTH - 1, source_ids=source_ids[1:2], source_lengths=lengths[1:2]
    )
    assert out == exported["tokenizer"].decode(sequences[0, 1 : sequence_lengths[0]]) + "\n"
    assert generate_main([*argv[:1], "--prompt=" + "nine" * 7, f"--runtime={runtime}"]) == 2
    err = capsys.readouterr().err
    assert err == "error: the source has 28 tokens, more than the model's max_sequence_length=24\n"


def test_export_cli_refuses_a_max_length_beyond_the_model(exported, capsys):
    before = os.path.getmtime(os.path.join(exported["workdir"], "export", "report.json"))
    with pytest.raises(SystemExit) as exit_info:
        export_main([f"--workdir={exported['workdir']}", f"--max_length={MAX_SEQUENCE_LENGTH + 1}"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "error: --max_length=25 exceeds the model's max_sequence_length=24 (a seq2seq model's decoder cache holds "
        "at most that many tokens)\n"
    )
    assert os.path.getmtime(os.path.join(exported["workdir"], "export", "report.json")) == before
