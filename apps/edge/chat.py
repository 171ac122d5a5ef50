"""`python -m apps.edge --model EXPORT --chat`: a multi-turn chat over an exported chat model, without TensorFlow.

    template = ChatTemplate.from_report(report, tokenizer, "export/report.json")   # model.chat_template
    session = EdgeChat(model, tokenizer, template, system="Maple Store.", max_new_tokens=48)
    for piece in session.send("How much is the White Mug?"): print(piece, end="")
    session.timing["prefill_tokens"]   # what the turn fed to `prefill`: only what the KV cache lacked

The conversation is rendered with the template the export carries as data (`report.json`'s
`model.chat_template`: `{"roles": {role: id}, "end_of_turn": "<eos>"}`, docs/contract.md): a message
is its role's id then its content, an assistant's message ends with the end-of-turn token, and the
prompt of a reply ends with the assistant's role id. The role ids come from the report and the
end-of-turn id from `hf_tokenizer.json`, so nothing of the template is written here.

The session is `python -m tfzoo.chat`'s (`tfzoo.chat.ChatSession`) over the file's `prefill` and
`decode` signatures (`EdgeModel.step`): it keeps the ids of the conversation and how many of them the
KV cache holds, and a turn prefills only what the cache lacks (the previous reply's `<eos>`, then
`<|user|> message <|assistant|>`). When the history, the message and `max_new_tokens` would overflow
the context, the oldest exchanges are dropped (the system message stays) and the cache is rebuilt.
Replies end at `<eos>` or `max_new_tokens`; the role tokens and padding are never generated; a stop
string ends a reply before it (neither shown nor kept), a banned word's tokens never appear. Greedy,
so the replies are `tfzoo.chat --runtime=tflite`'s; `--strategy=sample` draws with the in-graph
sampler's seeded hash (`apps.edge.sampler`). An empty message, or one that cannot fit in the context
even alone, is an `AppError` (one line) and changes nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from apps.edge.edge_model import EdgeModel
from apps.edge.errors import AppError
from apps.edge.sampler import NEG, sample_token
from apps.edge.tokenizer import HfTokenizer, banned_sequences


class ChatTemplate:
    """The export's chat template: the id of each role's token and of the end-of-turn token.

    Args:
        roles: dict. Role -> id (`system`, `user`, `assistant`), as `report.json`'s `model.chat_template.roles`.
        end_of_turn_id: int. The id after each assistant message.

    Example:
    >>> template = ChatTemplate({"system": 258, "user": 259, "assistant": 260}, 1)
    >>> template.message([106, 107], "user", reply_prompt=True)
    [259, 106, 107, 260]
    >>> template.message([123, 113], "assistant")
    [260, 123, 113, 1]
    """

    ROLES = ("system", "user", "assistant")  # the roles a conversation has (the template's keys)

    def __init__(self, roles: Mapping[str, int], end_of_turn_id: int):
        self.roles = {role: int(roles[role]) for role in self.ROLES}
        self.end_of_turn_id = int(end_of_turn_id)

    @classmethod
    def from_report(cls, report: dict, tokenizer: HfTokenizer, source: str) -> ChatTemplate:
        """The template of `report` (an export's `report.json`, read from `source`); `AppError` when it has none."""
        template = report.get("model", {}).get("chat_template")
        if template is None:
            raise AppError(
                f"{source} has no model.chat_template: not a chat model (export one trained with a chat "
                "tokenizer, tokenizer='chat:byte'); use --prompt or --interactive"
            )
        roles = template.get("roles") if isinstance(template, dict) else None
        end = template.get("end_of_turn") if isinstance(template, dict) else None
        if not isinstance(roles, dict) or not all(_is_id(roles.get(role)) for role in cls.ROLES):
            raise AppError(f"{source}: model.chat_template.roles must give an id to each of {', '.join(cls.ROLES)}")
        end_id = tokenizer.token_id(end) if isinstance(end, str) else None
        if end_id is None:
            raise AppError(f"{source}: model.chat_template.end_of_turn {end!r} is no token of the export's tokenizer")
        return cls(roles, end_id)

    def message(self, content_ids: Sequence[int], role: str, *, reply_prompt: bool = False) -> list[int]:
        """The ids of one message: the role's id, the content, the end of turn after an assistant's;
        `reply_prompt=True` appends the assistant's id (the prompt of a reply)."""
        ids = [self.roles[role], *(int(i) for i in content_ids)]
        ids += [self.end_of_turn_id] if role == "assistant" else []
        return ids + ([self.roles["assistant"]] if reply_prompt else [])


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class EdgeChat:
    """A conversation with an exported chat model's `.tflite` file, its KV cache kept between turns.

    Args:
        model: EdgeModel. The export's file (`prefill` and `decode` signatures).
        tokenizer: HfTokenizer. The export's `hf_tokenizer.json`.
        template: ChatTemplate. The export's template (`ChatTemplate.from_report`).
        system: str. The system message ("" for none). Defaults to "".
        max_new_tokens: int >= 1. Most tokens per reply. Defaults to 64.
        stop: sequence of str. A reply ends before the first of these (not shown, not kept). Defaults to ().
        ban: sequence of str. Words whose tokens (`word`, `" word"`) are never generated. Defaults to ().
        sampling: dict or None. `temperature` (0: greedy), `top_k`, `top_p`, `seed` of the steps loop
            (`EdgeModel.steps`); the k-th token of a reply draws with step k. None: greedy.

    Example:
    >>> session = EdgeChat(model, tokenizer, template, system="Maple Store.")  # doctest: +SKIP
    >>> "".join(session.send("How much is the White Mug?"))  # doctest: +SKIP
    'The White Mug costs $33.'
    """

    def __init__(
        self,
        model: EdgeModel,
        tokenizer: HfTokenizer,
        template: ChatTemplate,
        *,
        system: str = "",
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        ban: Sequence[str] = (),
        sampling: Mapping | None = None,
    ):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.max_length = int(model.max_length)
        if max_new_tokens < 1 or max_new_tokens >= self.max_length:
            raise AppError(
                f"--max_new_tokens must be from 1 to {self.max_length - 1} (the model's context is "
                f"{self.max_length} tokens), got {max_new_tokens}"
            )
        self.max_new_tokens = int(max_new_tokens)
        for flag, values in (("--stop", stop), ("--ban", ban)):
            if any(value == "" for value in values):
                raise AppError(f"{flag} is empty: give the text to {'stop at' if flag == '--stop' else 'ban'}")
        self.stop = tuple(stop)
        self.banned_sequences = banned_sequences(tokenizer, ban, specials_as_text=True)
        self.banned_ids = sorted({*model.banned_ids, *template.roles.values()} - {model.eos_id})  # never a role
        self.sampling = {"temperature": 0.0, **(sampling or {})}
        self.system_ids = self._message("system", system) if system.strip() else []
        if len(self.system_ids) + 2 >= self.max_length:
            raise AppError(
                f"the system message is {len(self.system_ids)} tokens, too long for the context of {self.max_length}"
            )
        self.exchanges: list[dict] = []  # {"user", "reply", "user_ids", "reply_ids"}, oldest first
        self.reset_cache()
        self.timing: dict = {}  # of the last turn: prefill_tokens, history_tokens, new_tokens, seconds, ...

    def _message(self, role: str, content: str, reply_prompt: bool = False) -> list[int]:
        return self.template.message(
            self.tokenizer.encode(content, specials_as_text=True), role, reply_prompt=reply_prompt
        )

    def history_ids(self) -> list[int]:
        """The ids of the whole conversation (what a full re-prefill would read)."""
        return [*self.system_ids, *(i for e in self.exchanges for part in ("user_ids", "reply_ids") for i in e[part])]

    def reset_cache(self) -> None:
        self.cache = self.model.empty_cache()
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

    def _next_token(self, logits: np.ndarray, context: Sequence[int], step: int) -> int:
        logits[self.banned_ids] = NEG
        for sequence in self.banned_sequences:  # the last token of a banned sequence whose rest ends the context
            prefix = sequence[:-1]
            if len(prefix) <= len(context) and list(context[len(context) - len(prefix) :]) == prefix:
                logits[sequence[-1]] = NEG
        if self.sampling["temperature"] <= 0:
            return int(np.argmax(logits))
        return sample_token(logits, step=step, **self.sampling)

    def _held_back(self, text: str) -> int:
        """How many characters at the end of `text` could be the start of a stop string (not shown yet)."""
        return max([k for stop in self.stop for k in range(1, len(stop)) if text.endswith(stop[:k])], default=0)

    def _trim(self, text: str) -> tuple[str, bool]:
        """`(text before the first stop string, whether one was found)`."""
        cut = min((i for i in (text.find(stop) for stop in self.stop) if i >= 0), default=-1)
        return (text[:cut], True) if cut >= 0 else (text, False)

    def send(self, text: str) -> Iterator[str]:
        """Adds the user message `text`, then yields the reply's text as its tokens are decoded.

        The reply joins the conversation when the generator is exhausted. Raises `AppError` (before
        anything changes) for an empty message or one that cannot fit in the context.
        """
        if not text.strip():
            raise AppError("the message is empty")
        user_ids = self._message("user", text, reply_prompt=True)
        if self.max_length - len(self.system_ids) - len(user_ids) < 1:
            raise AppError(
                f"the message is {len(user_ids)} tokens; with the system message ({len(self.system_ids)}) it does "
                f"not fit in the model's context of {self.max_length} tokens"
            )
        return self._reply(text, user_ids)

    def _reply(self, text: str, user_ids: list[int]) -> Iterator[str]:
        started = time.perf_counter()
        dropped = self._drop_oldest(len(user_ids))
        if dropped:
            print(f"(context full: dropped the oldest {dropped} exchange(s))", file=sys.stderr, flush=True)
        history = self.history_ids()
        pending = [*history[self.cached :], *user_ids]
        logits, self.cache = self.model.step(pending, self.cached, self.cache)
        self.cached += len(pending)
        exchange = {"user": text, "reply": "", "user_ids": user_ids, "reply_ids": []}
        self.exchanges.append(exchange)
        limit = min(self.max_new_tokens, self.max_length - self.cached)
        reply_start = self.cached
        context = [*history, *user_ids][-64:]  # what banned sequences are matched on
        new: list[int] = []
        shown, first, stopped = "", None, False
        try:
            while True:
                token = self._next_token(logits, context + new, len(new))
                first = first or time.perf_counter()
                if token == self.model.eos_id:
                    break
                new.append(token)
                so_far, stopped = self._trim(self.tokenizer.decode(new))
                if stopped:
                    break
                if not so_far.endswith("\ufffd"):  # a multi-byte character is shown when complete
                    visible = so_far[: len(so_far) - self._held_back(so_far)]
                    if len(visible) > len(shown):
                        yield visible[len(shown) :]
                        shown = visible
                if len(new) >= limit:
                    break
                logits, self.cache = self.model.step([token], self.cached, self.cache, "decode")
                self.cached += 1
            reply = self._trim(self.tokenizer.decode(new))[0]
            if reply != shown and reply.startswith(shown):
                yield reply[len(shown) :]
        finally:  # also when the caller stops early: the reply so far joins the conversation
            reply = self._trim(self.tokenizer.decode(new))[0]
            reply_ids = self.tokenizer.encode(reply, specials_as_text=True) if stopped else list(new)
            if stopped:  # the stop string is not kept: the cache keeps only what the kept reply shares with it
                common = next(
                    (i for i, (a, b) in enumerate(zip(new, reply_ids)) if a != b), min(len(new), len(reply_ids))
                )
                self.cached = min(self.cached, reply_start + common)
            exchange["reply"] = reply
            exchange["reply_ids"] = [*reply_ids, self.template.end_of_turn_id]  # the template ends it so
            now = time.perf_counter()
            self.timing = {
                "prefill_tokens": len(pending),
                "history_tokens": len(history) + len(user_ids),
                "first_token_seconds": (first or now) - started,
                "seconds": now - started,
                "new_tokens": len(new),
                "dropped_exchanges": dropped,
                "stopped": stopped,
            }


def chat_loop(session: EdgeChat, stdin, out, *, verbose: bool = False) -> int:
    """Reads one message per line of `stdin` and streams each reply to `out` (then a newline); returns 0 at EOF.

    A `> ` prompt goes to stderr when `stdin` is a terminal. `/reset` starts over, `/quit` ends. A bad
    message is one `error: ...` line on stderr and the chat goes on. `verbose`: one line per turn on
    stderr, `[turn N: prefilled P of H tokens, R new tokens in S s, first token after F s]`.
    """
    interactive = stdin.isatty()
    turn = 0
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
                out.write(piece)
                out.flush()
        except AppError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            continue
        out.write("\n")
        out.flush()
        turn += 1
        if verbose:
            t = session.timing
            print(
                f"[turn {turn}: prefilled {t['prefill_tokens']} of {t['history_tokens']} tokens, "
                f"{t['new_tokens']} new tokens in {t['seconds']:.3f} s, first token after "
                f"{t['first_token_seconds']:.3f} s]",
                file=sys.stderr,
                flush=True,
            )
