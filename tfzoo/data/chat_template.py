"""The chat template: role tokens stored with the tokenizer, and the one renderer of conversations to ids.

A `ChatTokenizer` wraps any zoo tokenizer (`build_tokenizer("chat:byte", "")`) and adds one id per
role after the base vocabulary: `<|system|>`, `<|user|>`, `<|assistant|>`. Its `tokenizer.json`
holds the base tokenizer's JSON under `base` and the template under `chat_template`, so a workdir
(and later an export) carries it:

    {"type": "chat", "special_tokens": {"<pad>": 0, "<eos>": 1, "<|system|>": 258, ...},
     "base": {...the base tokenizer.json...},
     "chat_template": {"roles": {"system": 258, "user": 259, "assistant": 260}, "end_of_turn": "<eos>"}}

A conversation renders as, per message, `<|role|> content`, and every assistant message ends with
`<eos>`; a prompt for the next reply ends with `<|assistant|>` (`add_generation_prompt=True`), and
generation stops at `<eos>`. `render_conversation` returns the ids and the assistant mask (1 on the
tokens a supervised fine-tuning loss trains: each assistant message's content and its `<eos>`).

Bad input is a `ChatTemplateError` (one line): an unknown role, an empty message, a conversation
longer than `max_length` (no silent truncation: the caller drops turns or raises).

Example:
>>> tokenizer = ChatTokenizer(ByteTokenizer())
>>> conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
>>> ids, mask = render_conversation(tokenizer, conversation)
>>> ids.tolist(), mask.tolist()
([259, 106, 107, 260, 123, 113, 1], [0, 0, 0, 0, 1, 1, 1])
"""

from __future__ import annotations

import json
import os

import numpy as np

from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.tokenizer import TOKENIZER_FILENAME, Tokenizer
from tfzoo.files import atomic_write_text

ROLES = ("system", "user", "assistant")
END_OF_TURN = "<eos>"

__all__ = ["ROLES", "ByteTokenizer", "ChatTemplateError", "ChatTokenizer", "render_conversation"]


class ChatTemplateError(ValueError):
    """A conversation cannot be rendered (unknown role, empty message, too long); one line."""

    def __init__(self, message: str):
        super().__init__(str(message).replace("\n", "\\n"))


def role_token(role: str) -> str:
    return f"<|{role}|>"


class ChatTokenizer(Tokenizer):
    """A base tokenizer plus one token per chat role, placed after the base vocabulary.

    Args:
        base: Tokenizer. The tokenizer of the text (`encode` and `decode` are its own).

    Example:
    >>> tokenizer = ChatTokenizer(ByteTokenizer())
    >>> tokenizer.vocabulary_size, tokenizer.role_id("user")
    (261, 259)
    >>> tokenizer.decode([259, 106, 107])  # role ids are dropped like other special ids
    'hi'
    """

    type_name = "chat"
    special_tokens = None  # per instance (the base's plus the roles); checked per file

    def __init__(self, base: Tokenizer):
        if isinstance(base, ChatTokenizer):
            raise ValueError("a ChatTokenizer cannot wrap another ChatTokenizer")
        self.base = base
        self.pad_id, self.eos_id = base.pad_id, base.eos_id
        self.roles = {role: base.vocabulary_size + i for i, role in enumerate(ROLES)}
        self.special_tokens = {**base.special_tokens, **{role_token(r): i for r, i in self.roles.items()}}

    @classmethod
    def from_text(cls, text: str, **options) -> ChatTokenizer:
        raise ValueError("name the base tokenizer of a chat tokenizer, as in 'chat:byte' or 'chat:char'")

    @property
    def vocabulary_size(self) -> int:
        return self.base.vocabulary_size + len(ROLES)

    def role_id(self, role: str) -> int:
        """The id of `role`'s token; `ChatTemplateError` for an unknown role."""
        if role not in self.roles:
            raise ChatTemplateError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
        return self.roles[role]

    def encode(self, text: str) -> np.ndarray:
        return self.base.encode(text)

    def decode(self, ids) -> str:
        ids = self._check_ids(ids)
        return self.base.decode(ids[ids < self.base.vocabulary_size])

    def decode_with_roles(self, ids) -> str:
        """The text of `ids` with each role id shown as its token (`<|user|>hi`), for reading rows.

        Example:
        >>> ChatTokenizer(ByteTokenizer()).decode_with_roles([259, 106, 107, 260])
        '<|user|>hi<|assistant|>'
        """
        ids = self._check_ids(ids)
        names = {i: role_token(r) for r, i in self.roles.items()}
        parts, run = [], []
        for i in ids.tolist():
            if i in names:
                parts += [self.base.decode(run), names[i]]
                run = []
            else:
                run.append(i)
        return "".join([*parts, self.base.decode(run)])

    def get_config(self) -> dict:
        return {"base": self.base.to_json()}

    def _json_fields(self) -> dict:
        return {"base": self.base.to_json(), "chat_template": {"roles": dict(self.roles), "end_of_turn": END_OF_TURN}}

    def save(self, directory: str) -> str:
        """Writes the base tokenizer's files (a vocabulary file it names), then `tokenizer.json`."""
        self.base.save(directory)
        path = os.path.join(directory, TOKENIZER_FILENAME)
        atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def wrap_json(cls, data: dict, base: Tokenizer, source: str) -> ChatTokenizer:
        """The tokenizer of a `chat` `tokenizer.json` whose `base` has been loaded as `base`."""
        tokenizer = cls(base)
        template = data.get("chat_template")
        if not isinstance(template, dict) or template.get("roles") != tokenizer.roles:
            raise ValueError(f"{source}: 'chat_template.roles' must be {tokenizer.roles}, got {template!r}")
        if data["special_tokens"] != tokenizer.special_tokens:
            raise ValueError(f"{source}: special_tokens must be {tokenizer.special_tokens}")
        return tokenizer


def _field(message, name: str):
    if isinstance(message, dict):
        return message.get(name)
    return getattr(message, name, None)


def render_conversation(
    tokenizer: ChatTokenizer, messages, *, add_generation_prompt: bool = False, max_length: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Renders `messages` to `(ids, assistant_mask)`, int32 arrays of one length.

    Args:
        tokenizer: ChatTokenizer. Supplies the role ids and encodes the contents.
        messages: sequence of `{"role", "content"}` dicts (or objects with those attributes).
        add_generation_prompt: bool. Append `<|assistant|>` (a prompt for the next reply).
            Defaults to False.
        max_length: int. When > 0, a rendering longer than this is a `ChatTemplateError`.

    Raises:
        ChatTemplateError: not a chat tokenizer, no messages, an unknown role, an empty or
            non-text message, or too long.
    """
    if not isinstance(tokenizer, ChatTokenizer):
        raise ChatTemplateError(
            f"the tokenizer is {tokenizer.type_name!r}, not a chat tokenizer (train with tokenizer='chat:byte')"
        )
    if not messages:
        raise ChatTemplateError("the conversation has no messages")
    ids, mask = [], []
    for index, message in enumerate(messages):
        role, content = _field(message, "role"), _field(message, "content")
        role_id = tokenizer.role_id(role)
        if not isinstance(content, str):
            raise ChatTemplateError(f"message {index} ({role}) has no text content, got {type(content).__name__}")
        if not content.strip():
            raise ChatTemplateError(f"message {index} ({role}) is empty")
        text = tokenizer.encode(content).tolist()
        trained = int(role == "assistant")
        ids += [role_id] + text + ([tokenizer.eos_id] if trained else [])
        mask += [0] + [trained] * (len(text) + trained)
    if add_generation_prompt:
        ids.append(tokenizer.role_id("assistant"))
        mask.append(0)
    if max_length and len(ids) > max_length:
        raise ChatTemplateError(
            f"the conversation is {len(ids)} tokens, longer than the model's context of {max_length}; "
            "drop earlier turns"
        )
    return np.asarray(ids, np.int32), np.asarray(mask, np.int32)
