"""Stop sequences and banned sequences (issue 20): in the graph of every strategy and every exported format.

A tiny chat GPT (byte tokenizer with role tokens) with perturbed weights, so that its greedy
continuations are long and differ by prompt; the stop and banned sequences are taken from those
continuations, so the options really change the output (asserted). The export fixture converts
one module (greedy and beam `generate`, `prefill`, `decode`) to a SavedModel, TFLite and ONNX.
"""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.parity import stop_ban_options
from tfzoo.chat import ChatError, ChatSession, keras_runtime
from tfzoo.chat import main as chat_main
from tfzoo.data.tokenizers import build_tokenizer
from tfzoo.decoding.generator import Generator
from tfzoo.decoding.validation import DecodingError
from tfzoo.runtimes import KerasRuntime, RuntimeInputError
from tfzoo.stop_words import banned_sequences, stop_sequences, trim_at_stop

MAX_LENGTH = 48
PROMPTS = ["Hi", "How much?", "ok then", "Is it open on Monday"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("chat:byte", "")


@pytest.fixture(scope="module")
def model(tokenizer):
    keras.utils.set_random_seed(3)
    from tfzoo.models.gpt import GPT

    model = GPT(vocabulary_size=tokenizer.vocabulary_size, num_layers=2, num_heads=2, hidden_dim=16,
                intermediate_dim=32, max_sequence_length=MAX_LENGTH)  # fmt: skip
    model.build((None, None))
    rng = np.random.default_rng(7)
    for weight in model.weights:  # larger than the initialisation: long continuations that differ by prompt
        weight.assign(weight.numpy() + rng.normal(0, 0.3, weight.shape).astype("float32"))
    return model


def _prompts(tokenizer):
    encoded = [tokenizer.encode(p) for p in PROMPTS]
    token_ids = np.zeros((len(encoded), max(map(len, encoded))), np.int32)
    for row, ids in enumerate(encoded):
        token_ids[row, : len(ids)] = ids
    return token_ids, np.array([len(ids) for ids in encoded], np.int32)


def _info(model, tokenizer) -> dict:
    return {
        "max_length": MAX_LENGTH,
        "strategy": "greedy",
        "strategies": {"greedy": "generate", "beam": "generate_beam"},
        "beam_size": 3,
        "eos_ids": [tokenizer.eos_id],
        "banned_ids": [tokenizer.pad_id],
        "pad_id": tokenizer.pad_id,
        "num_layers": 2,
        "num_heads": 2,
        "head_dim": 8,
        "vocabulary_size": int(model.vocabulary_size),
        "sequence_shapes": {"stop_sequences": [4, 16], "banned_sequences": [16, 16]},
    }


def _new(sequences, lengths, prompt_lengths) -> list[list[int]]:
    return [sequences[r, prompt_lengths[r] : lengths[r]].tolist() for r in range(len(lengths))]


def _occurs(row: list[int], sequence: list[int], start: int) -> bool:
    """`sequence` occurs in `row` ending at a position >= `start` (a generated token)."""
    n = len(sequence)
    return any(row[i - n + 1 : i + 1] == sequence for i in range(max(start, n - 1), len(row)))


@pytest.fixture(scope="module")
def options(model, tokenizer):
    """The parity's own stop/ban choice on this model's greedy continuations (Keras, no options)."""
    token_ids, lengths = _prompts(tokenizer)
    runtime = KerasRuntime(model, _info(model, tokenizer))
    sequences, out_lengths, _ = runtime.generate(token_ids, lengths, 20)
    chosen = stop_ban_options({"sequences": sequences, "sequence_lengths": out_lengths}, lengths)
    assert chosen["stop_sequences"] and chosen["banned_sequences"]
    return chosen, _new(sequences, out_lengths, lengths)


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_a_stop_sequence_ends_generation_and_a_banned_one_never_appears(model, tokenizer, strategy):
    token_ids, lengths = _prompts(tokenizer)
    generator = Generator(
        model, max_length=MAX_LENGTH, strategy=strategy, beam_size=3, eos_ids=(1,), banned_ids=(0,), jit_compile=False
    )
    knobs = dict(max_new_tokens=20, temperature=1.5, seed=5)
    base = generator(token_ids, lengths, **knobs)
    plain = _new(base["sequences"], base["sequence_lengths"], lengths)
    row = next(r for r, new in enumerate(plain) if len(new) >= 6)
    stop = plain[row][3:5]
    stopped = generator(token_ids, lengths, **knobs, stop_sequences=[stop])
    new = _new(stopped["sequences"], stopped["sequence_lengths"], lengths)
    if strategy != "beam":  # one hypothesis: the row ends right after the stop tokens, which are kept
        first = next(i for i in range(1, len(plain[row])) if plain[row][i - 1 : i + 1] == stop)
        assert new[row] == plain[row][: first + 1]
        assert stopped["sequence_lengths"][row] == lengths[row] + first + 1
    for r, tokens in enumerate(new):  # no row runs past a stop sequence
        hits = [i for i in range(2, len(tokens) + 1) if tokens[i - 2 : i] == stop]
        assert hits in ([], [len(tokens)]), (r, tokens)
    assert new != plain

    ban = [plain[row][0:2], [plain[(row + 1) % len(plain)][0]]]  # a two-token and a one-token ban
    banned = generator(token_ids, lengths, **knobs, banned_sequences=ban)
    assert not np.array_equal(banned["sequences"], base["sequences"])
    for r in range(len(lengths)):
        tokens = banned["sequences"][r, : banned["sequence_lengths"][r]].tolist()
        assert banned["sequence_lengths"][r] > lengths[r]
        for sequence in ban:
            assert not _occurs(tokens, sequence, int(lengths[r])), (r, sequence, tokens)


def test_a_ban_matches_a_prefix_in_the_prompt_and_empty_tables_change_nothing(model, tokenizer):
    token_ids, lengths = _prompts(tokenizer)
    generator = Generator(model, max_length=MAX_LENGTH, eos_ids=(1,), banned_ids=(0,), jit_compile=False)
    base = generator(token_ids, lengths, max_new_tokens=12)
    first = int(base["sequences"][0, lengths[0]])
    last_prompt = int(token_ids[0, lengths[0] - 1])
    out = generator(token_ids, lengths, max_new_tokens=12, banned_sequences=[[last_prompt, first]])
    assert out["sequences"][0, lengths[0]] != first  # the prefix is the prompt's last token
    none = generator(token_ids, lengths, max_new_tokens=12, stop_sequences=[], banned_sequences=np.full((2, 3), -1))
    np.testing.assert_array_equal(none["sequences"], base["sequences"])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"stop_sequences": [[]]}, "stop_sequences[0] is empty"),
        ({"banned_sequences": [[5, -2]]}, "banned_sequences[0] has token id -2 outside"),
        ({"stop_sequences": [[9999]]}, "outside [0, 261)"),
        ({"stop_sequences": "ab"}, "must be a list of token-id sequences"),
        ({"stop_sequences": [[5]] * 5}, "5 stop_sequences given; this model takes at most 4"),
        ({"banned_sequences": [list(range(2, 19))]}, "is 17 tokens; this model takes at most 16"),
    ],
)
def test_bad_tables_are_one_line_errors(model, tokenizer, options, message):
    token_ids, lengths = _prompts(tokenizer)
    runtime = KerasRuntime(model, _info(model, tokenizer))
    with pytest.raises((RuntimeInputError, DecodingError)) as error:
        runtime.generate(token_ids, lengths, 8, **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_text_options(tokenizer):
    assert stop_sequences(tokenizer, ["\nQ:", "\nQ:"]) == [tokenizer.encode("\nQ:").tolist()]
    assert trim_at_stop("a.\nQ: b", ["\nQ:", "b"]) == ("a.", True)
    assert trim_at_stop("abc", ["x"]) == ("abc", False)
    assert banned_sequences(tokenizer, ["bad"]) == [tokenizer.encode("bad").tolist()]
    for flag, call in (("--stop", stop_sequences), ("--ban", banned_sequences)):
        with pytest.raises(ValueError, match=f"{flag} is empty"):
            call(tokenizer, [""])


@pytest.fixture(scope="module")
def exported(model, tokenizer, tmp_path_factory):
    """One module (greedy `generate`, `generate_beam`, `prefill`, `decode`) as a SavedModel, TFLite and ONNX."""
    from export import tflite_export
    from export.export_module import ExportModule
    from export.onnx_export import convert_onnx
    from tfzoo.runtimes import OnnxRuntime, SavedModelRuntime, TFLiteRuntime

    info = _info(model, tokenizer)
    directory = tmp_path_factory.mktemp("stop_ban")
    module = ExportModule(model, max_length=MAX_LENGTH, strategy="greedy", beam_size=3, eos_ids=(1,), banned_ids=(0,))
    saved = str(directory / "saved_model")
    tf.saved_model.save(module, saved, signatures=module.signatures())
    names = ["generate", "generate_beam", "prefill", "decode"]
    with open(directory / "gpt.tflite", "wb") as file:
        file.write(tflite_export.convert_tflite(saved, names, "none"))
    files = {}
    for name in ("generate", "generate_beam"):
        files[name] = str(directory / f"{name}.onnx")
        with open(files[name], "wb") as file:
            file.write(convert_onnx(module.portable_function(name)).SerializeToString())
    return {
        "keras": KerasRuntime(model, info),
        "saved_model": SavedModelRuntime(saved, info),
        "tflite": TFLiteRuntime(str(directory / "gpt.tflite"), info),
        "onnx": OnnxRuntime(files, info),
        "tflite_path": str(directory / "gpt.tflite"),
    }


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_the_same_tokens_with_stop_and_ban_in_every_runtime(exported, options, tokenizer, strategy):
    chosen, plain = options
    token_ids, lengths = _prompts(tokenizer)
    outputs = {}
    for name in ("keras", "saved_model", "tflite", "onnx"):
        runtime = exported[name]
        without = runtime.generate(token_ids, lengths, 20, strategy=strategy)
        outputs[name] = runtime.generate(token_ids, lengths, 20, strategy=strategy, **chosen)
        assert not np.array_equal(outputs[name][0], without[0]), name  # the options change the output
    for name in ("saved_model", "tflite", "onnx"):
        np.testing.assert_array_equal(outputs[name][0], outputs["keras"][0], err_msg=name)
        np.testing.assert_array_equal(outputs[name][1], outputs["keras"][1], err_msg=name)
    sequences, out_lengths, _ = outputs["keras"]
    for r, tokens in enumerate(_new(sequences, out_lengths, lengths)):
        row = token_ids[r, : lengths[r]].tolist() + tokens
        for sequence in chosen["banned_sequences"]:
            assert not _occurs(row, sequence, int(lengths[r]))
    if strategy == "greedy":  # with the stop alone, the row it came from ends at its first match, stop kept
        row = next(r for r, new in enumerate(plain) if len(new) >= 4)
        stop = chosen["stop_sequences"][0]
        first = next(i for i in range(1, len(plain[row])) if plain[row][i - 1 : i + 1] == stop)
        assert first <= 3
        for name in ("keras", "tflite"):
            _, out_lengths, _ = exported[name].generate(token_ids, lengths, 20, stop_sequences=[stop])
            assert out_lengths[row] == lengths[row] + first + 1, name
    with pytest.raises(RuntimeInputError, match="5 stop_sequences given; this model takes at most 4"):
        exported["tflite"].generate(token_ids, lengths, 8, stop_sequences=[[5]] * 5)


def test_the_edge_app_feeds_stop_and_ban_to_the_tflite_file(exported, options, tokenizer):
    from apps.edge.edge_model import EdgeModel
    from apps.edge.errors import AppError
    from apps.edge.json_files import report_knobs as read_knobs
    from tfzoo.decoding.knobs import report_knobs

    chosen, _ = options
    knobs = read_knobs({"knobs": report_knobs()})  # the export's knob table, as the app reads it
    edge = EdgeModel(exported["tflite_path"], eos_id=1, pad_id=0, knobs=knobs)
    token_ids, lengths = _prompts(tokenizer)
    want_sequences, want_lengths, _ = exported["keras"].generate(token_ids, lengths, 20, **chosen)
    for r in range(len(lengths)):
        prompt = token_ids[r, : lengths[r]].tolist()
        got = edge.generate(prompt, 20, **chosen)
        want = [t for t in want_sequences[r, lengths[r] : want_lengths[r]].tolist() if t != 1]
        assert got == want
    with pytest.raises(AppError, match="is 17 tokens; this export takes at most 16"):
        edge.generate([5, 6], 4, banned_sequences=[list(range(2, 19))])


def _ascii(session: ChatSession) -> ChatSession:
    """Bytes >= 128 never emitted (ids 130..257): replies are ASCII text, so the strings are the tokens."""
    session.banned = np.union1d(session.banned, np.arange(130, 258))
    return session


def test_chat_stops_before_the_stop_string_and_never_says_a_banned_word(model, tokenizer, exported):
    system = "Maple Store."
    plain = _ascii(ChatSession(keras_runtime(model, tokenizer), tokenizer, system=system, max_new_tokens=16))
    reply = "".join(plain.send("Hi!"))
    assert len(reply) >= 6
    stop, ban = reply[3:5], reply[0:2]
    sessions = {
        name: _ascii(ChatSession(runtime, tokenizer, system=system, max_new_tokens=16, stop=[stop], ban=[ban]))
        for name, runtime in (("keras", keras_runtime(model, tokenizer)), ("tflite", exported["tflite"]))
    }
    replies = {}
    for name, session in sessions.items():
        replies[name] = ["".join(session.send(q)) for q in ("Hi!", "How much is it?")]
        for text in replies[name]:
            assert stop not in text and ban not in text
        assert replies[name][0] != reply
    assert replies["tflite"] == replies["keras"]
    full = _ascii(ChatSession(keras_runtime(model, tokenizer), tokenizer, system=system, max_new_tokens=16,
                              stop=[stop], ban=[ban], reuse_cache=False))  # fmt: skip
    assert ["".join(full.send(q)) for q in ("Hi!", "How much is it?")] == replies["keras"]  # the cache rolled back
    with pytest.raises(ChatError, match="--stop is empty"):
        ChatSession(exported["keras"], tokenizer, max_new_tokens=8, stop=[""])


def test_chat_cli_refuses_an_empty_stop_in_one_line(tmp_path, capsys):
    code = chat_main(["--workdir", str(tmp_path), "--stop="], stdin=io.StringIO(""), stdout=io.StringIO())
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
