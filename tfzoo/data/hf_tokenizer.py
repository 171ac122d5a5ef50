"""Every tfzoo tokenizer as a Hugging Face `tokenizer.json` (the `tokenizers` package's format).

`hf_tokenizer_json(tokenizer)` returns the JSON (a dict) that
`tokenizers.Tokenizer.from_str(json.dumps(d))` reads, giving the same ids as
`tokenizer.encode` and decoding (special tokens skipped) to `tokenizer.decode`'s
text. Runtimes that read this format (the apps, LiteRT-LM, ONNX Runtime GenAI,
transformers.js) then need no tfzoo code. The forms, per tfzoo type:

    char           WordLevel, a one-character Split pre-tokenizer, `<unk>` -> U+FFFD, Fuse decoder
    byte           byte-level BPE without merges: byte b is the symbol of id b + 2
    wordpiece      WordPiece on ASCII-whitespace words (tfzoo's split: no lower-casing, no
                   punctuation split), a decoder that writes tfzoo's spaces; a BERT vocabulary
                   (basic tokenization) gets BertNormalizer + BertPreTokenizer, as Hugging Face
                   writes BERT's, with its own special and unknown tokens
    sentencepiece  Unigram or BPE read from the `.model` proto, Metaspace, its normalizer
    bpe            GPT-2's byte-level BPE, as Hugging Face writes it
    chat           its base tokenizer's form, with the role tokens (`<|user|>`, ...) added at their ids

`byte_level=True` asks for a byte-level BPE (ONNX Runtime GenAI's tokenizer,
onnxruntime-extensions, rejects `WordLevel`): a char vocabulary becomes one
byte-level token per character, with the merges that build each multi-byte
UTF-8 character from its bytes (the bytes and partial characters get ids past the
vocabulary). byte and bpe are byte-level BPE already: the same dict. wordpiece and
sentencepiece have none (ValueError): ONNX Runtime GenAI 0.18 was seen to refuse their
WordPiece and Unigram forms and to encode the Metaspace BPE one with other ids.

Where the forms differ from tfzoo (none of them on the texts tfzoo's tokenizers were
made for):
- special-token text written literally in a prompt (`<eos>`) becomes that token's id
  (the `tokenizers` package matches added tokens in the text; tfzoo's BPE does the same
  for `<|endoftext|>`, the others encode the characters);
- wordpiece: `tokenizers` turns a word of more than 100 *characters* into `<unk>`, tfzoo a
  word of more than 100 UTF-8 *bytes*; decoding drops U+FDD0 (a Unicode noncharacter) from tokens;
- char with `byte_level=True`: a character outside the vocabulary that is not ASCII encodes
  to the ids of its bytes (past the vocabulary, or `<unk>`) instead of one `<unk>`; ONNX
  Runtime GenAI's reader (0.18) encodes a byte outside the vocabulary as -1, not `<unk>`,
  and decodes `<unk>` to U+FFFD as `tokenizers` does (`<unk>` is spelled as its bytes).

Example:
>>> import json, tokenizers
>>> from tfzoo.data.char_tokenizer import CharTokenizer
>>> tfzoo_tokenizer = CharTokenizer("abc")
>>> hf = tokenizers.Tokenizer.from_str(json.dumps(hf_tokenizer_json(tfzoo_tokenizer)))
>>> hf.encode("cab?").ids == tfzoo_tokenizer.encode("cab?").tolist()
True
>>> hf.decode([5, 3, 4, 2, 1])
'cab\ufffd'
"""

from __future__ import annotations

import re
from typing import Any

from tfzoo.data.bpe_tokenizer import bytes_to_unicode

UNK_TEXT = "\ufffd"  # what tfzoo's char, wordpiece and sentencepiece tokenizers decode `<unk>` to
_ASCII_WHITESPACE = "[ \\t\\n\\r\\f\\v]+"  # tfzoo's wordpiece split (tf.strings.split's separators)
_METASPACE = "\u2581"  # SentencePiece's whitespace symbol
_MARK = "\ufdd0"  # a Unicode noncharacter (reserved for internal use): marks a token inside a decoder chain


def hf_tokenizer_json(tokenizer, *, byte_level: bool = False) -> dict[str, Any]:
    """Returns the Hugging Face `tokenizer.json` (a dict) of a tfzoo tokenizer, with its ids.

    Args:
        tokenizer: a tfzoo `Tokenizer` (`tfzoo.data.tokenizers`): char, byte, wordpiece,
            sentencepiece or bpe.
        byte_level: bool. A byte-level BPE form (what ONNX Runtime GenAI reads): char, byte
            and bpe only. Defaults to False (the natural form of each type).

    Raises:
        ValueError: a tokenizer type without a Hugging Face form (`ids`: no vocabulary), or
            without a byte-level BPE form when `byte_level` is set.

    Example:
    >>> from tfzoo.data.byte_tokenizer import ByteTokenizer
    >>> hf_tokenizer_json(ByteTokenizer())["model"]["type"]
    'BPE'
    """
    type_name = getattr(tokenizer, "type_name", type(tokenizer).__name__)
    builders = _BYTE_LEVEL_BUILDERS if byte_level else _BUILDERS
    if type_name not in builders:
        form = "byte-level BPE form" if byte_level else "Hugging Face tokenizer.json form"
        raise ValueError(f"tokenizer type {type_name!r} has no {form}; types with one: {', '.join(sorted(builders))}")
    return builders[type_name](tokenizer)


def _added(tokens: dict[str, int]) -> list[dict[str, Any]]:
    """The special tokens as `added_tokens` (skipped by `decode(..., skip_special_tokens=True)`)."""
    return [
        {
            "id": int(i),
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for token, i in sorted(tokens.items(), key=lambda item: item[1])
    ]


def _document(model, added, *, normalizer=None, pre_tokenizer=None, decoder=None) -> dict[str, Any]:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": None,
        "decoder": decoder,
        "model": model,
    }


def _bpe_model(vocab: dict[str, int], merges: list[str], unk_token: str | None) -> dict[str, Any]:
    return {
        "type": "BPE",
        "dropout": None,
        "unk_token": unk_token,
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": False,
        "byte_fallback": False,
        "ignore_merges": False,
        "vocab": vocab,
        "merges": merges,
    }


_BYTE_LEVEL_SPLIT = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_BYTE_LEVEL_DECODER = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


def _replace(pattern: str, content: str, regex: bool = False) -> dict[str, Any]:
    return {"type": "Replace", "pattern": {"Regex" if regex else "String": pattern}, "content": content}


def _specials_but_unk(tokenizer) -> dict[str, int]:
    return {token: i for token, i in tokenizer.special_tokens.items() if token != "<unk>"}


def _char(tokenizer) -> dict[str, Any]:
    vocab = {token: i for i, token in enumerate(tokenizer.vocabulary)}
    return _document(
        {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
        _added(_specials_but_unk(tokenizer)),  # `<unk>` is not skipped: it decodes to U+FFFD
        pre_tokenizer={"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": False},
        decoder={"type": "Sequence", "decoders": [_replace("<unk>", UNK_TEXT), {"type": "Fuse"}]},
    )


def _char_byte_level(tokenizer) -> dict[str, Any]:
    symbol = bytes_to_unicode()
    vocab = {token: i for i, token in enumerate(tokenizer.vocabulary[: len(tokenizer.special_tokens)])}
    pieces = {}  # byte-level text of each character -> its id
    for i, character in enumerate(tokenizer.characters, start=len(tokenizer.special_tokens)):
        pieces["".join(symbol[b] for b in character.encode("utf-8", "surrogatepass"))] = i
    # `<unk>` spelled as the byte-level symbols of U+FFFD decodes to it with the plain ByteLevel decoder (ONNX
    # Runtime GenAI ignores a Replace decoder), unless U+FFFD is a character of the vocabulary.
    fffd = "".join(symbol[b] for b in UNK_TEXT.encode())
    unk = "<unk>" if fffd in pieces else fffd
    vocab = {unk if token == "<unk>" else token: i for token, i in vocab.items()}
    vocab.update(pieces)
    merges = []
    for piece in pieces:  # "abc" (three bytes): "a" and "ab" get ids past the vocabulary; merges "a b", "ab c"
        for end in range(1, len(piece) + 1):
            if piece[:end] not in vocab:
                vocab[piece[:end]] = len(vocab)
            if end > 1:
                if piece[end - 1] not in vocab:
                    vocab[piece[end - 1]] = len(vocab)
                merges.append(f"{piece[: end - 1]} {piece[end - 1]}")
    # A merge's second symbol is a UTF-8 continuation byte and its first a character's start, so no merge
    # crosses a character boundary: each character becomes its own token.
    decoder = _BYTE_LEVEL_DECODER
    if unk == "<unk>":
        decoder = {"type": "Sequence", "decoders": [_replace("<unk>", fffd), decoder]}
    return _document(
        _bpe_model(vocab, list(dict.fromkeys(merges)), unk),
        _added(_specials_but_unk(tokenizer)),
        pre_tokenizer=_BYTE_LEVEL_SPLIT,
        decoder=decoder,
    )


def _byte(tokenizer) -> dict[str, Any]:
    symbol = bytes_to_unicode()
    vocab = dict(tokenizer.special_tokens)
    vocab.update({symbol[b]: b + tokenizer.byte_offset for b in range(256)})
    return _document(
        _bpe_model(vocab, [], None),
        _added(tokenizer.special_tokens),
        pre_tokenizer=_BYTE_LEVEL_SPLIT,
        decoder=_BYTE_LEVEL_DECODER,
    )


def _bpe(tokenizer) -> dict[str, Any]:
    vocab = {token: i for i, token in enumerate(tokenizer.vocabulary)}
    return _document(
        _bpe_model(vocab, list(tokenizer.merges), None),
        _added(tokenizer.special_tokens),
        pre_tokenizer=_BYTE_LEVEL_SPLIT,
        decoder=_BYTE_LEVEL_DECODER,
    )


def _wordpiece(tokenizer) -> dict[str, Any]:
    from tfzoo.data.wordpiece_tokenizer import (  # noqa: PLC0415 (one owner)
        MAX_BYTES_PER_WORD,
        MAX_CHARS_PER_WORD,
        SUFFIX_INDICATOR,
    )

    vocab = {token: i for i, token in enumerate(tokenizer.vocabulary)}
    prefix = SUFFIX_INDICATOR
    unk = tokenizer.vocabulary[tokenizer.unk_id]  # `<unk>`, or a BERT vocabulary's `[UNK]`
    specials = {tokenizer.vocabulary[i]: i for i in tokenizer.special_tokens.values() if i != tokenizer.unk_id}
    basic = getattr(tokenizer, "basic_tokenization", False)
    # tfzoo writes " " before every token but a "##x" continuation (even the first one: it drops the first
    # space), and `<unk>` as U+FFFD. Continuations get the noncharacter U+FDD0 for their "##" (a bare "##" is a
    # word of its own); the WordPiece decoder on that mark spaces the others from the second token on; a first
    # continuation loses its mark at the end. No pattern matches the empty string: transformers.js (the web app)
    # splits astral characters then.
    decoder = {
        "type": "Sequence",
        "decoders": [
            _replace(f"\\A{re.escape(unk)}\\z", UNK_TEXT, regex=True),
            _replace(f"\\A{prefix}(?=[\\s\\S])", _MARK, regex=True),
            {"type": "WordPiece", "prefix": _MARK, "cleanup": False},
            {"type": "Fuse"},
            _replace(_MARK, ""),
        ],
    }
    normalizer, pre_tokenizer = (
        None,
        {
            "type": "Split",
            "pattern": {"Regex": _ASCII_WHITESPACE},
            "behavior": "Removed",
            "invert": False,
        },
    )
    if basic:  # BERT's: what transformers' BertTokenizer runs (tfzoo/data/basic_tokenization.py)
        normalizer = {
            "type": "BertNormalizer",
            "clean_text": True,
            "handle_chinese_chars": tokenizer.tokenize_chinese_chars,
            "strip_accents": tokenizer.strip_accents,
            "lowercase": tokenizer.lower_case,
        }
        pre_tokenizer = {"type": "BertPreTokenizer"}
    model = {
        "type": "WordPiece",
        "unk_token": unk,
        "continuing_subword_prefix": prefix,
        "max_input_chars_per_word": MAX_CHARS_PER_WORD if basic else MAX_BYTES_PER_WORD,
        "vocab": vocab,
    }
    return _document(model, _added(specials), normalizer=normalizer, pre_tokenizer=pre_tokenizer, decoder=decoder)


def _sentencepiece(tokenizer) -> dict[str, Any]:
    from sentencepiece import sentencepiece_model_pb2  # noqa: PLC0415 (only for sentencepiece tokenizers)

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(tokenizer.model_proto)
    kinds = sentencepiece_model_pb2.ModelProto.SentencePiece
    unk_id = next(i for i, p in enumerate(proto.pieces) if p.type == kinds.UNKNOWN)
    spec = proto.normalizer_spec
    normalizers = []
    if spec.precompiled_charsmap:
        import base64  # noqa: PLC0415

        normalizers.append(
            {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(spec.precompiled_charsmap).decode()}
        )
    if spec.remove_extra_whitespaces:  # sentencepiece: leading and trailing spaces dropped, runs made one
        normalizers += [_replace("\\A +| +\\z", "", regex=True), _replace(" {2,}", " ", regex=True)]
    scheme = "always" if spec.add_dummy_prefix else "never"
    metaspace = {"type": "Metaspace", "replacement": _METASPACE, "prepend_scheme": scheme, "split": True}
    # T5's sentinels and unused ids (after the pieces) are left out: tfzoo's encode never produces them, and
    # as Unigram pieces they would be (an unknown character scores below the lowest piece).
    if proto.trainer_spec.model_type == sentencepiece_model_pb2.TrainerSpec.UNIGRAM:
        model = {
            "type": "Unigram",
            "unk_id": unk_id,
            "vocab": [[p.piece, float(p.score)] for p in proto.pieces],
            "byte_fallback": bool(proto.trainer_spec.byte_fallback),
        }
    elif proto.trainer_spec.model_type == sentencepiece_model_pb2.TrainerSpec.BPE:
        model = _bpe_model({p.piece: i for i, p in enumerate(proto.pieces)}, _sentencepiece_merges(proto), "<unk>")
        model["fuse_unk"] = True  # sentencepiece makes a run of unknown characters one `<unk>`
        model["byte_fallback"] = bool(proto.trainer_spec.byte_fallback)
    else:
        raise ValueError(f"sentencepiece model type {proto.trainer_spec.model_type} has no Hugging Face form here")
    controls = {p.piece: i for i, p in enumerate(proto.pieces) if p.type == kinds.CONTROL}
    document = _document(
        model,
        _added(controls),
        normalizer={"type": "Sequence", "normalizers": normalizers} if normalizers else None,
        pre_tokenizer=metaspace,
        decoder={"type": "Sequence", "decoders": [_replace(proto.pieces[unk_id].piece, UNK_TEXT), metaspace]},
    )
    if getattr(tokenizer, "append_eos", False):  # T5: every text ends with </s>
        eos = proto.pieces[tokenizer.eos_id].piece
        document["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}}],
            "pair": [
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": eos, "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
                {"SpecialToken": {"id": eos, "type_id": 0}},
            ],
            "special_tokens": {eos: {"id": eos, "ids": [tokenizer.eos_id], "tokens": [eos]}},
        }
    return document


def _sentencepiece_merges(proto) -> list[str]:
    """BPE merges of a sentencepiece BPE model: every split of a piece into two pieces, best piece first.

    sentencepiece merges the adjacent pair whose joined piece scores best; ranking the merges by the
    joined piece's score (its id breaks ties, as the scores fall with the id) gives the same order.
    """
    kinds = type(proto).SentencePiece
    ids = {p.piece: i for i, p in enumerate(proto.pieces) if p.type in (kinds.NORMAL, kinds.USER_DEFINED)}
    ranked = []
    for piece, i in ids.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in ids and right in ids:
                ranked.append((-proto.pieces[i].score, i, ids[left], ids[right], f"{left} {right}"))
    return [merge for *_, merge in sorted(ranked)]


def _chat(tokenizer) -> dict[str, Any]:
    """A chat tokenizer (`tfzoo.data.chat_template`): its base's form, the role tokens added at their ids."""
    data = hf_tokenizer_json(tokenizer.base)
    have = {entry["id"] for entry in data.get("added_tokens", [])}
    roles = {token: i for token, i in tokenizer.special_tokens.items() if i not in have}
    data["added_tokens"] = list(data.get("added_tokens", [])) + _added(roles)
    return data


_BUILDERS = {
    "chat": _chat,
    "char": _char,
    "byte": _byte,
    "wordpiece": _wordpiece,
    "sentencepiece": _sentencepiece,
    "bpe": _bpe,
}
_BYTE_LEVEL_BUILDERS = {"char": _char_byte_level, "byte": _byte, "bpe": _bpe}
