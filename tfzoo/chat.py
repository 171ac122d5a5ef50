"""A terminal chat with a trained assistant: `python -m tfzoo.chat --workdir=DIR`.

Reads one user message per line of stdin and streams the reply to stdout token by token, as it
is decoded (greedy). The conversation is rendered with the chat template stored with the
workdir's tokenizer (`tfzoo.data.chat_template`: `<|role|> content`, `<eos>` after each
assistant message), and it is kept: each turn adds the user's message and the reply.

The KV cache of earlier turns is reused. A `ChatSession` keeps the token ids of the whole
conversation and how many of them the cache holds; a new turn prefills only the tokens the cache
lacks (the previous reply's `<eos>`, the new `<|user|> message <|assistant|>`) through the zoo's
runtime step API (`Runtime.prefill`, then `Runtime.decode` per token: `tfzoo.runtimes`), so the
time to the first token of a turn does not grow with the history. `reuse_cache=False` re-prefills
the whole history every turn (the same tokens; `bench/chat_latency.py` compares the two).

Context policy: when the history, the new message and `max_new_tokens` do not fit in the
model's context, the oldest whole exchanges (a user message and its reply) are dropped, the
system message is kept, and the cache is rebuilt from the kept history (one line on stderr says
so). A reply that reaches the end of the context stops there. A message that does not fit even
alone after the system message is refused in one line (`ChatError`), as are an empty message and
an unknown role (in `--history`); the session goes on.

`--stop=TEXT` and `--ban=WORD` (repeatable): a reply ends before a stop string (not shown, not
kept in the history); a banned word's token sequences are never generated (checked in this
loop, which decodes with the step API; `python -m tfzoo.generate` does the same in the graph).
`--runtime=saved_model|tflite|onnx` chats with the export in `DIR/export` (`python -m export`),
with the tokenizer and template the export carries.

Lines that start with `/`: `/reset` starts the conversation over (the system message stays);
`/quit` ends (as does the end of stdin).

Example:
    python -m tfzoo.chat --workdir=runs/assistant_dpo --system="Maple Store. Items: White Mug $33, 0 in stock."
    python -m tfzoo.chat --workdir=runs/assistant_dpo --history=chat.json --max_new_tokens=48 < questions.txt

>>> from tfzoo.data.chat_template import ByteTokenizer, ChatTokenizer
>>> tokenizer = ChatTokenizer(ByteTokenizer())
>>> turn_tokens(tokenizer, "user", "hi", reply_prompt=True).tolist()  # <|user|> h i <|assistant|>
[259, 106, 107, 260]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np

from tfzoo.cli import OneLineErrorParser, print_error
from tfzoo.data.chat_template import ChatTemplateError, ChatTokenizer, render_conversation
from tfzoo.stop_words import OptionError, banned_sequences, trim_at_stop

__all__ = ["ChatError", "ChatSession", "build_parser", "keras_runtime", "main", "turn_tokens"]

RUNTIMES = ("keras", "saved_model", "tflite", "onnx")
PREFILL_BUCKET = 16  # prefill widths are rounded up to a multiple of this: one trace per bucket, not per length


class ChatError(ValueError):
    """A message or history the chat cannot take (one line); the session is unchanged."""


def turn_tokens(tokenizer: ChatTokenizer, role: str, content: str, *, reply_prompt: bool = False) -> np.ndarray:
    """The template's ids of one message (`<|role|> content`, `<eos>` after an assistant's), int32.

    `reply_prompt=True` appends `<|assistant|>`, the prompt of the reply. The ids of a conversation
    are these pieces concatenated (`render_conversation`, the one renderer, makes each).
    """
    try:
        ids, _ = render_conversation(
            tokenizer, [{"role": role, "content": content}], add_generation_prompt=reply_prompt
        )
    except ChatTemplateError as error:
        raise ChatError(str(error).replace("message 0 ", "the message ")) from None
    return ids


class ChatSession:
    """A conversation with a model behind the runtime step API, its KV cache kept between turns.

    Args:
        runtime: a `tfzoo.runtimes.Runtime` (`KerasRuntime` or an exported model's): `init_cache`,
            `prefill`, `decode` and `max_length` are used.
        tokenizer: ChatTokenizer. The workdir's tokenizer (its chat template).
        system: str. The system message ("" for none). Defaults to "".
        history: sequence of `{"role", "content"}` messages after the system one (user and
            assistant alternating, starting with a user message). Defaults to ().
        max_new_tokens: int >= 1. Most tokens per reply. Defaults to 128.
        reuse_cache: bool. Prefill only what the cache lacks (True) or the whole history every
            turn (False). Defaults to True.
        stop: sequence of str. Stop strings: a reply ends before the first one (it is neither shown
            nor kept; text that could begin one is held back while streaming). Defaults to ().
        ban: sequence of str. Banned words: their token sequences (`tfzoo.stop_words.banned_sequences`)
            are never generated (the last token of one is masked when the context ends with the rest).
            Defaults to ().

    Example:
    >>> session = ChatSession(runtime, tokenizer, system="Maple Store.")  # doctest: +SKIP
    >>> "".join(session.send("How much is the White Mug?"))  # doctest: +SKIP
    'The White Mug costs $33.'
    """

    def __init__(
        self,
        runtime,
        tokenizer: ChatTokenizer,
        *,
        system: str = "",
        history: Sequence = (),
        max_new_tokens: int = 128,
        reuse_cache: bool = True,
        stop: Sequence[str] = (),
        ban: Sequence[str] = (),
    ):
        if not isinstance(tokenizer, ChatTokenizer):
            raise ChatError(
                f"the workdir's tokenizer is {tokenizer.type_name!r}, not a chat tokenizer with a template "
                "(train with tokenizer='chat:byte', e.g. configs/assistant_sft.py)"
            )
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ChatError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        self.runtime, self.tokenizer = runtime, tokenizer
        self.max_length = int(runtime.max_length)
        if max_new_tokens >= self.max_length:
            raise ChatError(
                f"max_new_tokens={max_new_tokens} leaves no room in the model's context of {self.max_length}"
            )
        self.max_new_tokens = max_new_tokens
        self.reuse_cache = reuse_cache
        self.banned = np.asarray(sorted({tokenizer.pad_id, *tokenizer.special_tokens.values()} - {tokenizer.eos_id}))
        for flag, values in (("--stop", stop), ("--ban", ban)):
            if any(not isinstance(v, str) or v == "" for v in values):
                raise ChatError(f"{flag} is empty: give the text to {'stop at' if flag == '--stop' else 'ban'}")
        self.stop = tuple(stop)
        try:
            self.banned_sequences = banned_sequences(tokenizer, ban)
        except OptionError as error:
            raise ChatError(str(error)) from None
        self.system = system
        self.system_ids = turn_tokens(tokenizer, "system", system) if system.strip() else np.zeros((0,), np.int32)
        if len(self.system_ids) + 2 >= self.max_length:
            raise ChatError(
                f"the system message is {len(self.system_ids)} tokens, too long for the context of {self.max_length}"
            )
        self.exchanges: list[dict] = []  # {"user", "reply", "user_ids", "reply_ids"}, oldest first
        self._start_history(history)
        self.timing: dict = {}  # of the last turn: prefill_tokens, first_token_seconds, seconds, new_tokens

    def _start_history(self, history: Sequence) -> None:
        messages = [{"role": _field(m, "role"), "content": _field(m, "content")} for m in history]
        for index, message in enumerate(messages):
            expected = ("user", "assistant")[index % 2]
            if message["role"] not in ("user", "assistant"):
                known = "; the system message is --system" if message["role"] == "system" else ""
                raise ChatError(
                    f"history message {index}: unknown role {message['role']!r}; use user or assistant{known}"
                )
            if message["role"] != expected:
                raise ChatError(f"history message {index} is {message['role']!r}; user and assistant must alternate")
            if not isinstance(message["content"], str) or not message["content"].strip():
                raise ChatError(f"history message {index} ({message['role']}) is empty")
        if len(messages) % 2:
            raise ChatError("the history ends with a user message; it must end with the assistant's reply")
        for user, reply in zip(messages[0::2], messages[1::2]):
            self.exchanges.append(
                {
                    "user": user["content"],
                    "reply": reply["content"],
                    "user_ids": turn_tokens(self.tokenizer, "user", user["content"], reply_prompt=True),
                    "reply_ids": np.concatenate(  # the reply after <|assistant|>: content and <eos>
                        [self.tokenizer.encode(reply["content"]), [self.tokenizer.eos_id]]
                    ).astype(np.int32),
                }
            )
        self.reset_cache()
        self._drop_oldest(0)

    @property
    def messages(self) -> list[dict]:
        """The conversation as the template renders it: system (if any), then user/assistant."""
        out = [{"role": "system", "content": self.system}] if len(self.system_ids) else []
        for exchange in self.exchanges:
            out += [{"role": "user", "content": exchange["user"]}, {"role": "assistant", "content": exchange["reply"]}]
        return out

    def history_ids(self) -> np.ndarray:
        """The ids of the whole conversation (what a full re-prefill reads), int32."""
        parts = [self.system_ids] + [p for e in self.exchanges for p in (e["user_ids"], e["reply_ids"])]
        return np.concatenate(parts).astype(np.int32) if parts else np.zeros((0,), np.int32)

    def reset_cache(self) -> None:
        self.cache = self.runtime.init_cache(1)
        self.cached = 0  # history tokens whose keys and values are in the cache (a prefix)

    def reset(self) -> None:
        """Starts the conversation over; the system message stays."""
        self.exchanges = []
        self.reset_cache()

    def _drop_oldest(self, incoming: int) -> int:
        """Drops the oldest exchanges until history + `incoming` + max_new_tokens fits; returns how many."""
        dropped = 0
        while self.exchanges and len(self.history_ids()) + incoming + self.max_new_tokens > self.max_length:
            self.exchanges.pop(0)
            dropped += 1
        if dropped:
            self.reset_cache()  # positions moved: the cache is rebuilt from the kept history
        return dropped

    def _feed(self, ids: np.ndarray) -> np.ndarray:
        """Prefills `ids` at the next positions; returns the logits (V,) after the last one."""
        start, count = self.cached, len(ids)
        width = min(-(-count // PREFILL_BUCKET) * PREFILL_BUCKET, self.max_length - start)  # pads sit at later slots,
        padded = np.full((1, width), self.tokenizer.pad_id, np.int32)  # overwritten before any query sees them
        padded[0, :count] = ids
        positions = np.arange(start, start + width, dtype=np.int32)[None]
        logits, self.cache = self.runtime.prefill(padded, positions, self.cache)
        self.cached += count
        return np.asarray(logits)[0, count - 1]

    def _next_token(self, logits: np.ndarray, context: Sequence[int] = ()) -> int:
        logits = np.array(logits, np.float32)
        logits[self.banned] = -np.inf  # never a role token or padding
        for sequence in self.banned_sequences:  # the last token of a banned sequence whose rest ends the context
            prefix = sequence[:-1]
            if len(prefix) <= len(context) and list(context[len(context) - len(prefix) :]) == prefix:
                logits[sequence[-1]] = -np.inf
        return int(np.argmax(logits))

    def _held_back(self, text: str) -> int:
        """How many characters at the end of `text` could be the start of a stop string (not shown yet)."""
        return max([k for stop in self.stop for k in range(1, len(stop)) if text.endswith(stop[:k])], default=0)

    def send(self, text: str) -> Iterator[str]:
        """Adds the user message `text`, then yields the reply's text as its tokens are decoded.

        The reply joins the conversation when the generator is exhausted. Raises `ChatError`
        (before anything changes) for an empty message or one that cannot fit in the context.
        """
        if not isinstance(text, str) or not text.strip():
            raise ChatError("the message is empty")
        user_ids = turn_tokens(self.tokenizer, "user", text, reply_prompt=True)
        room = self.max_length - len(self.system_ids) - len(user_ids)
        if room < 1:
            raise ChatError(
                f"the message is {len(user_ids)} tokens; with the system message ({len(self.system_ids)}) it does "
                f"not fit in the model's context of {self.max_length} tokens"
            )
        return self._reply(text, user_ids)

    def _reply(self, text: str, user_ids: np.ndarray) -> Iterator[str]:
        started = time.perf_counter()
        dropped = self._drop_oldest(len(user_ids))
        if dropped:
            print(f"(context full: dropped the oldest {dropped} exchange(s))", file=sys.stderr, flush=True)
        if not self.reuse_cache:
            self.reset_cache()
        history = self.history_ids()
        pending = np.concatenate([history[self.cached :], user_ids]).astype(np.int32)
        prefill_tokens = len(pending)
        logits = self._feed(pending)
        exchange = {"user": text, "reply": "", "user_ids": user_ids, "reply_ids": np.zeros((0,), np.int32)}
        self.exchanges.append(exchange)
        limit = min(self.max_new_tokens, self.max_length - self.cached)
        reply_start = self.cached
        context = [int(t) for t in np.concatenate([history, user_ids])[-64:]]  # what banned sequences are matched on
        new: list[int] = []
        shown, first, stopped = "", None, False
        try:
            while True:
                token = self._next_token(logits, context + new)
                first = first or time.perf_counter()
                if token == self.tokenizer.eos_id:
                    break
                new.append(token)
                text_so_far = self.tokenizer.decode(np.asarray(new, np.int32))
                text_so_far, stopped = trim_at_stop(text_so_far, self.stop)
                if stopped:
                    break
                if not text_so_far.endswith("\ufffd"):  # a multi-byte character is shown when complete
                    visible = text_so_far[: len(text_so_far) - self._held_back(text_so_far)]
                    if len(visible) > len(shown):
                        yield visible[len(shown) :]
                        shown = visible
                if len(new) >= limit:
                    break
                position = np.array([[self.cached]], np.int32)
                logits, self.cache = self.runtime.decode(np.array([[token]], np.int32), position, self.cache)
                logits = np.asarray(logits)[0, -1]
                self.cached += 1
            reply = trim_at_stop(self.tokenizer.decode(np.asarray(new, np.int32)), self.stop)[0]
            if reply != shown and reply.startswith(shown):
                yield reply[len(shown) :]
        finally:  # also when the caller stops early: the reply so far joins the conversation
            reply = trim_at_stop(self.tokenizer.decode(np.asarray(new, np.int32)), self.stop)[0]
            reply_ids = [int(t) for t in self.tokenizer.encode(reply)] if stopped else list(new)
            if stopped:  # the stop string is not kept: the cache keeps only what the kept reply shares with it
                common = next(
                    (i for i, (a, b) in enumerate(zip(new, reply_ids)) if a != b), min(len(new), len(reply_ids))
                )
                self.cached = min(self.cached, reply_start + common)
            exchange["reply"] = reply
            exchange["reply_ids"] = np.asarray([*reply_ids, self.tokenizer.eos_id], np.int32)  # the template ends it so
            now = time.perf_counter()
            self.timing = {
                "prefill_tokens": prefill_tokens,
                "history_tokens": len(history) + len(user_ids),
                "first_token_seconds": (first or now) - started,
                "seconds": now - started,
                "new_tokens": len(new),
                "dropped_exchanges": dropped,
                "stopped": stopped,
            }


def _field(message, name: str):
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)


def keras_runtime(model, tokenizer, *, jit_compile: bool = False):
    """The trained model behind the runtime interface (`KerasRuntime`), steps only (no decode loops)."""
    from tfzoo.runtimes.keras import KerasRuntime  # noqa: PLC0415 (TensorFlow only when needed)

    info = {
        "max_length": int(model.max_sequence_length),
        "strategies": {},  # the chat decodes with prefill/decode; no in-graph loop is built
        "beam_size": 1,
        "eos_ids": [int(tokenizer.eos_id)],
        "banned_ids": [],
        "pad_id": int(tokenizer.pad_id),
        "num_layers": int(model.num_layers),
        "num_heads": int(model.num_heads),
        "head_dim": int(model.hidden_dim) // int(model.num_heads),
        "vocabulary_size": int(model.vocabulary_size),
    }
    return KerasRuntime(model, info, jit_compile=jit_compile)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m tfzoo.chat", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--workdir", required=True, help="a training workdir with model.keras and a chat tokenizer (chat:byte)")
    add("--runtime", default="keras", choices=RUNTIMES, help="keras, or an artefact of `python -m export`")
    add("--max_new_tokens", type=int, default=64, help="most tokens per reply")
    add("--system", default="", help="the system message (e.g. the shop's card)")
    add("--history", default="", help="a JSON file: a list of {role, content} messages to continue from")
    add("--stop", action="append", default=[], metavar="TEXT", help="end a reply before this text (repeatable)")
    add("--ban", action="append", default=[], metavar="WORD", help="never generate this word (repeatable)")
    add("--no_cache_reuse", action="store_true", help="re-prefill the whole history every turn (for comparison)")
    add("--jit_compile", action="store_true", help="keras: compile the steps with XLA")
    return parser


def _read_history(path: str) -> list:
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as file:
            messages = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ChatError(f"--history {path}: {type(error).__name__}: {error}") from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ChatError(f'--history {path}: expected a JSON list of {{"role", "content"}} objects')
    if messages and messages[0].get("role") == "system":
        raise ChatError(f"--history {path}: pass the system message with --system, not in the history")
    return messages


def _session(args) -> ChatSession:
    from tfzoo.run_folder import RunFolder  # noqa: PLC0415

    for flag, values in (("--stop", args.stop), ("--ban", args.ban)):  # before anything is loaded
        if any(value == "" for value in values):
            raise ChatError(f"{flag} is empty: give the text to {'stop at' if flag == '--stop' else 'ban'}")
    folder = RunFolder(args.workdir)
    folder.check_exists()
    if args.runtime == "keras":
        tokenizer = folder.load_tokenizer()
    else:  # an export carries its own copy of the tokenizer, chat template included (`report.model.chat_template`)
        from tfzoo.data.tokenizers import load_tokenizer  # noqa: PLC0415

        tokenizer = load_tokenizer(folder.export_dir)
    if not isinstance(tokenizer, ChatTokenizer):
        raise ChatError(
            f"{args.workdir}'s tokenizer is {tokenizer.type_name!r}, not a chat tokenizer with a template "
            "(train with tokenizer='chat:byte', e.g. configs/assistant_sft.py)"
        )
    history = _read_history(args.history)
    if args.runtime == "keras":
        runtime = keras_runtime(folder.load_model(), tokenizer, jit_compile=args.jit_compile)
    else:
        from tfzoo.runtimes import load_runtime  # noqa: PLC0415

        runtime = load_runtime(args.workdir, args.runtime)
    return ChatSession(
        runtime,
        tokenizer,
        system=args.system,
        history=history,
        max_new_tokens=args.max_new_tokens,
        reuse_cache=not args.no_cache_reuse,
        stop=args.stop,
        ban=args.ban,
    )


def main(argv: Sequence[str] | None = None, stdin=None, stdout=None) -> int:
    """Runs the chat on `stdin`/`stdout`; returns the exit code (0, or 2 on bad arguments)."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfzoo.runtime_errors import ExportReadError, RuntimeInputError  # noqa: PLC0415

    try:
        session = _session(args)
    except (ValueError, ExportReadError, RuntimeInputError) as error:  # ChatError, RunFolderError, ...
        return print_error(str(error) or type(error).__name__)
    interactive = stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = stdin.readline()
        if not line or line.strip() == "/quit":
            return 0
        line = line.rstrip("\n")
        if line.strip() == "/reset":
            session.reset()
            continue
        try:
            for piece in session.send(line):
                stdout.write(piece)
                stdout.flush()
        except (ChatError, RuntimeInputError) as error:
            print_error(error)  # one line; the conversation goes on
            continue
        stdout.write("\n")
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
