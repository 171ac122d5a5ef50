"""`python -m tfzoo.chat` (issue 20): cache reuse gives the full re-prefill's replies, streaming, bad input."""

from __future__ import annotations

import io
import json

import keras
import numpy as np
import pytest

from tfzoo.chat import ChatError, ChatSession, keras_runtime, main
from tfzoo.data.chat_template import render_conversation
from tfzoo.data.tokenizers import build_tokenizer

QUESTIONS = ("Hi!", "How much is the Red Mug?", "Is it in stock?", "When are you open on Monday?", "Thanks, bye.")


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("chat:byte", "")


def _model(tokenizer, max_length: int):
    keras.utils.set_random_seed(3)
    from tfzoo.models.gpt import GPT

    model = GPT(vocabulary_size=tokenizer.vocabulary_size, num_layers=2, num_heads=2, hidden_dim=16,
                intermediate_dim=32, max_sequence_length=max_length)  # fmt: skip
    model.build((None, None))
    for weight in model.weights:  # larger than the initialisation: replies that differ by turn
        weight.assign(weight.numpy() + np.random.default_rng(7).normal(0, 0.3, weight.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def runtime(tokenizer):
    return keras_runtime(_model(tokenizer, 192), tokenizer)


class CountingRuntime:
    """A runtime that counts its steps (to see that a reply streams while it is decoded)."""

    def __init__(self, runtime):
        self.runtime, self.max_length, self.decodes = runtime, runtime.max_length, 0

    def init_cache(self, batch_size):
        return self.runtime.init_cache(batch_size)

    def prefill(self, *args):
        return self.runtime.prefill(*args)

    def decode(self, *args):
        self.decodes += 1
        return self.runtime.decode(*args)


def test_cache_reuse_gives_the_replies_of_a_full_prefill_of_the_history(runtime, tokenizer):
    system = "Maple Store. Items: Red Mug $12, 3 in stock."
    reuse = ChatSession(runtime, tokenizer, system=system, max_new_tokens=10)
    full = ChatSession(runtime, tokenizer, system=system, max_new_tokens=10, reuse_cache=False)
    replies, cut = [], False
    for question in QUESTIONS:
        before = len(reuse.history_ids())
        a, b = "".join(reuse.send(question)), "".join(full.send(question))
        assert a == b
        replies.append(a)
        assert np.array_equal(reuse.history_ids(), full.history_ids())
        reply_ids = full.timing["new_tokens"] + 1  # and its <eos>
        assert full.timing["prefill_tokens"] == len(full.history_ids()) - reply_ids  # the whole history
        # Turn 2 on, only what the cache lacks is prefilled: the previous reply's <eos> (and its last
        # token when it stopped at max_new_tokens: that one was never fed), then `<|user|> ... <|assistant|>`.
        turn = 1 + len(tokenizer.encode(question)) + 1
        assert reuse.timing["prefill_tokens"] == (turn + before if question == QUESTIONS[0] else turn + 1 + cut)
        cut = reuse.timing["new_tokens"] == 10
    assert len(set(replies)) > 1  # the turns are not all one reply
    # The history is the template's rendering of the conversation (and the ids of each reply).
    assert [m["role"] for m in reuse.messages] == ["system"] + ["user", "assistant"] * len(QUESTIONS)
    ids = reuse.history_ids()
    assert ids[0] == tokenizer.role_id("system") and ids[-1] == tokenizer.eos_id
    assert np.sum(ids == tokenizer.role_id("user")) == len(QUESTIONS)


def test_a_history_renders_as_the_template_and_the_reply_streams(runtime, tokenizer):
    history = [
        {"role": "user", "content": "How much is the Red Mug?"},
        {"role": "assistant", "content": "The Red Mug costs $12."},
    ]
    counting = CountingRuntime(runtime)
    session = ChatSession(counting, tokenizer, system="Shop.", history=history, max_new_tokens=8)
    expected, _ = render_conversation(tokenizer, [{"role": "system", "content": "Shop."}, *history])
    assert np.array_equal(session.history_ids(), expected)
    decodes_at_piece = []
    pieces = []
    for piece in session.send("Is it in stock?"):
        pieces.append(piece)
        decodes_at_piece.append(counting.decodes)
    # Streams: the first piece comes before any decode step, later ones while decoding goes on.
    assert decodes_at_piece[0] == 0 and decodes_at_piece[-1] >= 1
    reply = "".join(pieces)
    assert session.messages[-1] == {"role": "assistant", "content": reply}
    again, _ = render_conversation(tokenizer, session.messages[:-1], add_generation_prompt=True)
    assert np.array_equal(session.history_ids()[: len(again)], again)


def test_a_conversation_longer_than_the_context_drops_the_oldest_exchanges(tokenizer):
    runtime = keras_runtime(_model(tokenizer, 96), tokenizer)
    sessions = [ChatSession(runtime, tokenizer, system="Shop.", max_new_tokens=8, reuse_cache=r) for r in (True, False)]
    question = "Tell me about the Red Mug and its price, please."  # 50 tokens with the role tokens
    for turn in range(3):
        replies = ["".join(s.send(f"{turn}. {question}")) for s in sessions]
        assert replies[0] == replies[1]
        for session in sessions:
            assert len(session.history_ids()) <= 96
            assert session.messages[0]["role"] == "system"  # the system message is kept
            assert session.messages[1]["content"].startswith(f"{turn}.")  # only the last exchange fits
    assert sessions[0].timing["dropped_exchanges"] == 1
    with pytest.raises(ChatError, match="does not fit in the model's context of 96") as error:
        sessions[0].send("x" * 95)
    assert "\n" not in str(error.value) and sessions[0].messages[1]["content"].startswith("2.")  # unchanged


def test_bad_messages_and_histories_are_one_line_errors(runtime, tokenizer):
    session = ChatSession(runtime, tokenizer, max_new_tokens=4)
    for text in ("", "   ", "\n"):
        with pytest.raises(ChatError, match="the message is empty"):
            session.send(text)
    assert session.messages == []
    cases = {
        "unknown role 'robot'": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}],
        "user and assistant must alternate": [{"role": "assistant", "content": "y"}],
        "is empty": [{"role": "user", "content": ""}, {"role": "assistant", "content": "y"}],
        "ends with a user message": [{"role": "user", "content": "x"}],
    }
    for message, history in cases.items():
        with pytest.raises(ChatError, match=message):
            ChatSession(runtime, tokenizer, history=history)
    with pytest.raises(ChatError, match="not a chat tokenizer"):
        ChatSession(runtime, build_tokenizer("byte", ""))
    with pytest.raises(ChatError, match="max_new_tokens"):
        ChatSession(runtime, tokenizer, max_new_tokens=0)


def test_the_cli_streams_replies_and_keeps_going_after_bad_lines(tmp_path, tokenizer, capsys):
    workdir = tmp_path / "run"
    (workdir / "tokenizer").mkdir(parents=True)
    _model(tokenizer, 128).save(str(workdir / "model.keras"))
    tokenizer.save(str(workdir / "tokenizer"))
    stdin, stdout = io.StringIO("Hi!\n\nHow much is it?\n/reset\nBye.\n"), io.StringIO()
    assert main([f"--workdir={workdir}", "--max_new_tokens=6", "--system=Shop."], stdin=stdin, stdout=stdout) == 0
    lines = stdout.getvalue().split("\n")
    assert len(lines) == 4 and lines[-1] == ""  # three replies, one per line; the empty line got none
    assert capsys.readouterr().err.strip().splitlines() == ["error: the message is empty"]

    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "yo"}]))
    assert main([f"--workdir={workdir}", f"--history={history}", "--max_new_tokens=6"], stdin=io.StringIO("")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: history message 0: unknown role 'robot'") and "\n" not in err
    assert main([f"--workdir={tmp_path / 'nope'}"], stdin=io.StringIO("")) == 2
    assert "does not exist" in capsys.readouterr().err
