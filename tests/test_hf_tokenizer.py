"""`hf_tokenizer_json`: every tfzoo tokenizer read by Hugging Face `tokenizers` gives tfzoo's ids and text."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2_reference import CORPUS, bpe_files
from tfzoo.data.bpe_tokenizer import BpeTokenizer
from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.hf_tokenizer import hf_tokenizer_json
from tfzoo.data.id_tokenizer import IdTokenizer
from tfzoo.data.tokenizers import build_tokenizer

TRAIN = "\n".join(
    [
        "the lowest tower is lower than the low wall",
        "newer towers are newest, the wall is older ## ### #",
        "Héllo wörld, naïve café; 日本語のテキスト 🙂",
        "def add(a, b):  return a + b",
    ]
    * 5
)
TEXTS = (
    "the lowest tower",
    "Héllo  wörld,\tnaïve\n\ncafé",
    "日本語のテキスト 🙂🙂 x",
    "ünknown ß ç 中文 🚀 Ω \x00 \x7f",  # characters never seen in training
    "   leading, trailing and  runs  of   spaces   ",
    "\t\n\r \x0b\x0c mixed whitespace \u00a0 \u3000 nbsp",
    "a\n b c \nd\n\n  e  \n",  # spaces next to newlines (sentencepiece strips only the text's ends)
    "## ### #a a## ##a",
    "def add(a, b):  return a + b\n",
    "x" * 120 + " " + "é" * 60,  # words longer than the wordpiece limit
    "",
    " ",
)
TYPES = ("char", "byte", "wordpiece", "sentencepiece_unigram", "sentencepiece_bpe", "bpe")
BYTE_LEVEL_TYPES = ("char", "byte", "bpe")


def _build(kind: str, tmp_path_factory):
    if kind == "char":
        return build_tokenizer("char", TRAIN)
    if kind == "byte":
        return ByteTokenizer()
    if kind == "wordpiece":
        return build_tokenizer("wordpiece", TRAIN, vocabulary_size=90)
    if kind.startswith("sentencepiece_"):
        return build_tokenizer("sentencepiece", TRAIN, vocabulary_size=70, model_type=kind.split("_")[1])
    directory = str(tmp_path_factory.mktemp("gpt2_bpe"))
    bpe_files(directory)
    return BpeTokenizer.from_files(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt"))


@pytest.fixture(scope="module")
def tfzoo_tokenizers(tmp_path_factory) -> dict:
    return {kind: _build(kind, tmp_path_factory) for kind in TYPES}


def _hf(tokenizer, byte_level=False):
    import tokenizers

    return tokenizers.Tokenizer.from_str(json.dumps(hf_tokenizer_json(tokenizer, byte_level=byte_level)))


def _known(tokenizer, text: str) -> bool:
    """False when `text` writes a special token literally or (wordpiece) has a word of > 100 bytes: documented."""
    if any(token in text for token in tokenizer.special_tokens if token != "<|endoftext|>"):
        return False
    return tokenizer.type_name != "wordpiece" or all(len(w.encode()) <= 100 and len(w) <= 100 for w in text.split())


def _check(tfzoo_tokenizer, hf, text: str) -> None:
    ids = tfzoo_tokenizer.encode(text).tolist()
    assert hf.encode(text).ids == ids, text
    assert hf.decode(ids) == tfzoo_tokenizer.decode(ids), text
    with_specials = [tfzoo_tokenizer.eos_id, *ids, tfzoo_tokenizer.pad_id, tfzoo_tokenizer.eos_id]
    assert hf.decode(with_specials) == tfzoo_tokenizer.decode(with_specials), text


@pytest.mark.parametrize("kind", TYPES)
def test_same_ids_and_text_as_tfzoo(tfzoo_tokenizers, kind):
    tokenizer = tfzoo_tokenizers[kind]
    hf = _hf(tokenizer)
    assert hf.get_vocab_size() == tokenizer.vocabulary_size
    for text in TEXTS:
        if _known(tokenizer, text):
            _check(tokenizer, hf, text)
    assert hf.decode(list(range(tokenizer.vocabulary_size))) == tokenizer.decode(range(tokenizer.vocabulary_size))
    special = hf_tokenizer_json(tokenizer)["added_tokens"]
    assert {t["content"] for t in special} | {"<unk>"} >= set(tokenizer.special_tokens)
    assert all(t["special"] for t in special)


@pytest.mark.parametrize("kind", BYTE_LEVEL_TYPES)
def test_byte_level_form_gives_the_same_ids(tfzoo_tokenizers, kind):
    tokenizer = tfzoo_tokenizers[kind]
    data = hf_tokenizer_json(tokenizer, byte_level=True)
    assert data["model"]["type"] == "BPE" and data["pre_tokenizer"]["type"] == "ByteLevel"
    hf = _hf(tokenizer, byte_level=True)
    for text in TEXTS + (TRAIN,):
        if _known(tokenizer, text) and (kind != "char" or set(text) <= set(tokenizer.characters) | set("\x00\x7f")):
            _check(tokenizer, hf, text)
    if kind != "char":
        assert data == hf_tokenizer_json(tokenizer)  # already byte-level BPE: one form


def test_char_byte_level_unknown_ascii_is_unk_and_each_character_one_token(tfzoo_tokenizers):
    tokenizer = tfzoo_tokenizers["char"]
    hf = _hf(tokenizer, byte_level=True)
    assert hf.encode("Q~").ids == [tokenizer.unk_id] * 2 == tokenizer.encode("Q~").tolist()
    data = hf_tokenizer_json(tokenizer, byte_level=True)
    assert len(data["model"]["vocab"]) > tokenizer.vocabulary_size  # bytes and partial characters past the end
    assert hf.decode([tokenizer.unk_id]) == "\ufffd"


@pytest.mark.reference
def test_gpt2_bpe_matches_the_hugging_face_gpt2_tokenizer(tmp_path, tfzoo_tokenizers):
    from transformers import GPT2Tokenizer, PreTrainedTokenizerFast

    bpe_files(str(tmp_path))
    reference = GPT2Tokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    ours = PreTrainedTokenizerFast(tokenizer_object=_hf(tfzoo_tokenizers["bpe"]))
    for text in (*TEXTS, CORPUS, "a<|endoftext|>b  <|endoftext|>"):
        assert ours.encode(text) == reference.encode(text), text
        ids = reference.encode(text)
        assert ours.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)


_TEXT = st.text(
    st.one_of(st.sampled_from(sorted(set(TRAIN))), st.characters(codec="utf-8", exclude_categories=["Cs"])),
    max_size=40,
)


@pytest.mark.parametrize("kind", TYPES)
@settings(max_examples=60, deadline=None)
@given(text=_TEXT)
def test_random_text(tfzoo_tokenizers, kind, text):
    tokenizer = tfzoo_tokenizers[kind]
    if _known(tokenizer, text):
        _check(tokenizer, _cached_hf(tokenizer), text)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=24))
def test_byte_decode_of_invalid_utf8_replaces_like_tfzoo(data):
    tokenizer = ByteTokenizer()
    ids = [b + tokenizer.byte_offset for b in data]
    assert _cached_hf(tokenizer).decode(ids) == tokenizer.decode(ids)


_CACHE: dict[int, object] = {}


def _cached_hf(tokenizer):
    if id(tokenizer) not in _CACHE:
        _CACHE[id(tokenizer)] = _hf(tokenizer)
    return _CACHE[id(tokenizer)]


def test_ids_tokenizer_and_unknown_types_are_one_line_errors(tfzoo_tokenizers):
    with pytest.raises(ValueError, match=r"^tokenizer type 'ids' has no Hugging Face tokenizer.json form; types"):
        hf_tokenizer_json(IdTokenizer(vocabulary_size=10, eos_id=9))
    with pytest.raises(ValueError, match=r"^tokenizer type 'object' has no"):
        hf_tokenizer_json(object())
    with pytest.raises(ValueError, match=r"^tokenizer type 'wordpiece' has no byte-level BPE form"):
        hf_tokenizer_json(tfzoo_tokenizers["wordpiece"], byte_level=True)


def test_streamed_decode_never_splits_a_character(tfzoo_tokenizers):
    from tokenizers.decoders import DecodeStream

    for kind in ("byte", "bpe", "char"):
        tokenizer = tfzoo_tokenizers[kind]
        hf = _cached_hf(tokenizer)
        text = "Héllo 日本語 🙂 wörld"
        stream, pieces = DecodeStream(skip_special_tokens=True), []
        for i in tokenizer.encode(text).tolist():
            piece = stream.step(hf, i)
            assert piece is None or "\ufffd" not in piece
            pieces.append(piece or "")
        assert "".join(pieces) == tokenizer.decode(tokenizer.encode(text))


def test_char_unknown_characters_are_one_unk_each():
    tokenizer = CharTokenizer("ab")
    hf = _hf(tokenizer)
    assert hf.encode("aé🙂b").ids == [3, 2, 2, 4] == tokenizer.encode("aé🙂b").tolist()
    assert hf.decode([3, 2, 0, 1, 4]) == "a\ufffdb"


def test_char_byte_level_with_the_replacement_character_in_the_vocabulary():
    tokenizer = CharTokenizer("a\ufffdb")
    hf = _hf(tokenizer, byte_level=True)
    assert hf.encode("a\ufffdbc").ids == [3, 4, 5, 2] == tokenizer.encode("a\ufffdbc").tolist()
    assert hf.decode([3, 4, 2, 5]) == tokenizer.decode([3, 4, 2, 5]) == "a\ufffd\ufffdb"


@pytest.mark.parametrize("kind", BYTE_LEVEL_TYPES)
def test_onnx_runtime_genai_reads_the_byte_level_form(tmp_path, tfzoo_tokenizers, kind):
    import onnxruntime_genai as og

    from export.genai_export import genai_config

    tokenizer = tfzoo_tokenizers[kind]
    info = {"vocabulary_size": tokenizer.vocabulary_size, "max_length": 64, "eos_ids": [tokenizer.eos_id]}
    info.update(pad_id=tokenizer.pad_id, num_layers=1, num_heads=1, head_dim=4)
    files = {
        "genai_config.json": genai_config(info),  # the tokenizer loads from the folder; no model is opened
        "tokenizer.json": hf_tokenizer_json(tokenizer, byte_level=True),
        "tokenizer_config.json": {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False},
    }
    for name, data in files.items():
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
    genai = og.Tokenizer(str(tmp_path))
    texts = TRAIN.splitlines()[:4] + ["  runs  on  the wall \n\n", "Héllo 日本語のテキスト 🙂"]
    for text in texts:
        ids = tokenizer.encode(text).tolist()
        assert [int(i) for i in genai.encode(text)] == ids, text
        assert genai.decode(ids + [tokenizer.eos_id]) == tokenizer.decode(ids), text
    if kind == "char":
        assert genai.decode([tokenizer.encode("a")[0], tokenizer.unk_id]) == "a\ufffd"


def test_export_writes_hf_tokenizer_json_or_logs_one_line(tmp_path, tfzoo_tokenizers):
    import tokenizers

    from export.pipeline import _write_hf_tokenizer

    logged = []
    tokenizer = tfzoo_tokenizers["char"]
    assert _write_hf_tokenizer(tokenizer, str(tmp_path), logged.append) == {"hf_tokenizer": "hf_tokenizer.json"}
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "hf_tokenizer.json"))
    assert hf.encode("the tower").ids == tokenizer.encode("the tower").tolist()
    assert _write_hf_tokenizer(IdTokenizer(vocabulary_size=10, eos_id=9), str(tmp_path / "ids"), logged.append) == {}
    assert logged == [
        "no hf_tokenizer.json: tokenizer type 'ids' has no Hugging Face tokenizer.json form; "
        "types with one: bpe, byte, char, chat, sentencepiece, wordpiece"
    ]
    assert not (tmp_path / "ids").exists() and sorted(os.listdir(tmp_path)) == ["hf_tokenizer.json"]


def test_wordpiece_decode_of_any_short_sequence():
    """A bare "##" word, a sequence starting with a continuation, `<unk>`, astral characters: tfzoo's text."""
    import itertools

    from tfzoo.data.wordpiece_tokenizer import SPECIAL_TOKENS, WordpieceTokenizer

    tokenizer = WordpieceTokenizer([*SPECIAL_TOKENS, "##", "a", "##a", "###", "🙂", "##🙂", "b<unk>", "#"])
    hf = _hf(tokenizer)
    assert hf.encode("a## ## 🙂🙂 b<unk>").ids == tokenizer.encode("a## ## 🙂🙂 b<unk>").tolist()
    for ids in itertools.product(range(tokenizer.vocabulary_size), repeat=3):
        assert hf.decode(list(ids)) == tokenizer.decode(list(ids)), ids
