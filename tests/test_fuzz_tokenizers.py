"""Fuzzing the tokenizers: round trips over each documented alphabet, unknowns, and hostile tokenizer files.

- char: any distinct code points (lone surrogates included) round-trip exactly;
  every other character encodes to `<unk>` and decodes to U+FFFD.
- byte: any text without lone surrogates round-trips exactly; any ids in the
  vocabulary decode without error.
- wordpiece / sentencepiece (one model each, learned from a fixed alphabet):
  text over the training alphabet round-trips up to whitespace normalization;
  an unseen character gives `<unk>` (U+FFFD).
- `load_tokenizer` on hostile files (random JSON, valid files with one field
  replaced or removed, deep nesting, huge numbers, broken side files): it
  returns a working tokenizer or raises `ValueError` with a one-line message
  naming the file, never another exception.
"""

from __future__ import annotations

import functools
import json
import os
import string
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.char_tokenizer import UNK_TEXT, CharTokenizer
from tfzoo.data.sentencepiece_tokenizer import MODEL_FILENAME, SentencepieceTokenizer
from tfzoo.data.tokenizer import TOKENIZER_FILENAME, Tokenizer
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.data.wordpiece_tokenizer import VOCABULARY_FILENAME, WordpieceTokenizer, split_words

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every code point, surrogates included (Hypothesis leaves out category Cs by default).
ANY_CHARACTER = st.characters(exclude_categories=())
WORD_ALPHABET = string.ascii_letters + string.digits + "_.,;:!?'\"()[]{}<>#=+-*/\\|&^%$@~`" + "éßü☃中𝄞"
SUBWORD_TEXT = (
    "def add(a, b): return a + b # héllo wörld ☃ 中文 𝄞 "
    + WORD_ALPHABET
    + " "
    + "lower lowest newer newest wider widest " * 30
)


@functools.cache
def _wordpiece() -> WordpieceTokenizer:
    return WordpieceTokenizer.from_text(SUBWORD_TEXT, vocabulary_size=300)


@functools.cache
def _sentencepiece() -> SentencepieceTokenizer:
    return SentencepieceTokenizer.from_text(SUBWORD_TEXT, vocabulary_size=300)


@pytest.fixture(scope="module")
def wordpiece() -> WordpieceTokenizer:
    return _wordpiece()


@pytest.fixture(scope="module")
def sentencepiece() -> SentencepieceTokenizer:
    return _sentencepiece()


# --- round trips --------------------------------------------------------------------------------------------------


@FUZZ
@given(st.lists(ANY_CHARACTER, min_size=1, max_size=40, unique=True), st.data())
def test_char_round_trip_and_unknowns_over_any_code_points(characters, data):
    tokenizer = CharTokenizer(characters)
    text = data.draw(st.text(alphabet=st.sampled_from(characters), max_size=60))
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int32 and np.all((ids >= 3) & (ids < tokenizer.vocabulary_size))
    assert tokenizer.decode(ids) == text
    unknown = data.draw(st.text(alphabet=ANY_CHARACTER.filter(lambda c: c not in characters), min_size=1))
    assert tokenizer.encode(unknown).tolist() == [tokenizer.unk_id] * len(unknown)
    assert tokenizer.decode(tokenizer.encode(text + unknown)) == text + UNK_TEXT * len(unknown)


@FUZZ
@given(st.text(alphabet=ANY_CHARACTER, min_size=1, max_size=80))
def test_char_tokenizer_from_any_text_round_trips_it_and_survives_save_and_load(text):
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    with tempfile.TemporaryDirectory() as directory:
        tokenizer.save(directory)
        assert load_tokenizer(directory) == tokenizer


@FUZZ
@given(st.text(max_size=200))
def test_byte_round_trip_over_any_text(text):
    tokenizer = ByteTokenizer()
    ids = tokenizer.encode(text)
    assert np.all((ids >= 2) & (ids < 258))
    assert tokenizer.decode(ids) == text


@FUZZ
@given(st.lists(st.integers(0, 257), max_size=100))
def test_byte_decode_of_any_ids_in_the_vocabulary_is_text(ids):
    text = ByteTokenizer().decode(np.array(ids, np.int64))
    assert isinstance(text, str)
    text.encode("utf-8")  # valid Unicode: invalid byte sequences became U+FFFD


SEPARATORS = st.text(alphabet=" \t\n\r\f\v", min_size=1, max_size=3)


@FUZZ
@given(st.lists(st.text(alphabet=WORD_ALPHABET, min_size=1, max_size=12), max_size=12), st.data())
def test_wordpiece_round_trip_over_the_training_alphabet(wordpiece, words, data):
    # A special token's text ("<eos>") in the input is that special token, which decode drops (as in BERT).
    assume(not set(words) & set(wordpiece.special_tokens))
    separators = [data.draw(SEPARATORS) for _ in range(len(words) + 1)]
    text = separators[0] + "".join(w + s for w, s in zip(words, separators[1:]))
    ids = wordpiece.encode(text)
    assert wordpiece.unk_id not in ids.tolist()
    assert wordpiece.decode(ids) == " ".join(words)


@FUZZ
@given(st.text(alphabet=WORD_ALPHABET, max_size=5), ANY_CHARACTER, st.text(alphabet=WORD_ALPHABET, max_size=5))
def test_wordpiece_word_with_an_unseen_character_is_unk(wordpiece, before, unseen, after):
    if unseen in SUBWORD_TEXT or split_words(unseen) != [unseen]:
        return  # seen, or whitespace (a separator, not part of a word)
    assert wordpiece.encode(before + unseen + after).tolist() == [wordpiece.unk_id]
    assert wordpiece.decode([wordpiece.unk_id]) == UNK_TEXT


@FUZZ
@given(st.lists(st.text(alphabet=WORD_ALPHABET, min_size=1, max_size=12), max_size=12), st.data())
def test_sentencepiece_round_trip_over_the_training_alphabet(sentencepiece, words, data):
    spaces = [" " * data.draw(st.integers(1, 3)) for _ in range(len(words) + 1)]
    text = spaces[0] + "".join(w + s for w, s in zip(words, spaces[1:]))
    ids = sentencepiece.encode(text)
    assert sentencepiece.unk_id not in ids.tolist()
    assert sentencepiece.decode(ids) == " ".join(words)


@FUZZ
@given(st.text(alphabet=WORD_ALPHABET, min_size=1, max_size=5), ANY_CHARACTER)
def test_sentencepiece_unseen_character_is_unk(sentencepiece, before, unseen):
    if unseen in SUBWORD_TEXT or unseen.isspace() or "\ud800" <= unseen <= "\udfff":
        return  # seen, whitespace, or a lone surrogate (not encodable text for sentencepiece)
    ids = sentencepiece.encode(before + unseen).tolist()
    assert sentencepiece.unk_id in ids
    assert UNK_TEXT in sentencepiece.decode(ids)


@FUZZ
@given(st.data())
def test_decode_of_any_ids_is_text_or_a_value_error(wordpiece, sentencepiece, data):
    for tokenizer in (CharTokenizer("abc"), ByteTokenizer(), wordpiece, sentencepiece):
        ids = data.draw(st.lists(st.integers(-(2**40), 2**40) | st.integers(0, tokenizer.vocabulary_size - 1)))
        inside = all(0 <= i < tokenizer.vocabulary_size for i in ids)
        try:
            text = tokenizer.decode(np.array(ids, np.int64))
        except ValueError as error:
            assert not inside and "outside the vocabulary" in str(error)
        else:
            assert inside and isinstance(text, str)


# --- hostile tokenizer files ---------------------------------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@functools.cache
def _valid_files() -> dict[str, dict]:
    """Per tokenizer type, the files of a valid save: name -> bytes (a module global: Hypothesis prints fixtures)."""
    files = {}
    for tokenizer in (CharTokenizer("ab\n☃"), ByteTokenizer(), _wordpiece(), _sentencepiece()):
        with tempfile.TemporaryDirectory() as directory:
            tokenizer.save(directory)
            files[tokenizer.type_name] = {}
            for name in os.listdir(directory):
                with open(os.path.join(directory, name), "rb") as file:
                    files[tokenizer.type_name][name] = file.read()
    return files


def _check_load(files: dict[str, bytes]) -> Tokenizer | None:
    """Writes `files` to a fresh folder and loads it: a working tokenizer, or a one-line ValueError naming a file."""
    with tempfile.TemporaryDirectory() as directory:
        for name, data in files.items():
            with open(os.path.join(directory, name), "wb") as file:
                file.write(data)
        try:
            tokenizer = load_tokenizer(directory)
        except ValueError as error:
            message = str(error)
            assert message and "\n" not in message, repr(message)
            assert os.path.join(directory, "") in message, f"the message names no file: {message}"
            return None
    assert isinstance(tokenizer, Tokenizer)
    ids = tokenizer.encode("ab ☃")
    assert np.all((ids >= 0) & (ids < tokenizer.vocabulary_size))
    assert isinstance(tokenizer.decode(ids), str)
    return tokenizer


@FILES
@given(JSON_VALUES)
def test_any_json_document_loads_or_fails_with_a_value_error(document):
    _check_load({TOKENIZER_FILENAME: json.dumps(document).encode()})


@FILES
@given(st.sampled_from(["char", "byte", "wordpiece", "sentencepiece"]), st.data())
def test_valid_files_with_one_field_changed_load_or_fail_with_a_value_error(kind, data):
    files = dict(_valid_files()[kind])
    document = json.loads(files[TOKENIZER_FILENAME])
    field = data.draw(st.sampled_from(sorted(document) + ["extra"]))
    action = data.draw(st.sampled_from(["replace", "delete"]))
    if action == "delete":
        document.pop(field, None)
    else:
        document[field] = data.draw(JSON_VALUES | st.sampled_from(["..", ".", "/etc/passwd", "a\x00b", "\udc80"]))
    files[TOKENIZER_FILENAME] = json.dumps(document).encode()
    _check_load(files)


@FILES
@given(st.sampled_from(["char", "byte", "wordpiece", "sentencepiece"]), st.data())
def test_corrupted_bytes_load_or_fail_with_a_value_error(kind, data):
    files = dict(_valid_files()[kind])
    name = data.draw(st.sampled_from(sorted(files)))
    content = files[name]
    how = data.draw(st.sampled_from(["truncate", "flip", "random", "empty"]))
    if how == "truncate":
        content = content[: data.draw(st.integers(0, max(len(content) - 1, 0)))]
    elif how == "flip":
        position = data.draw(st.integers(0, len(content) - 1))
        flipped = content[position] ^ data.draw(st.integers(1, 255))
        content = content[:position] + bytes([flipped]) + content[position + 1 :]
    elif how == "random":
        content = data.draw(st.binary(max_size=300))
    else:
        content = b""
    files[name] = content
    _check_load(files)


@FILES
@given(st.lists(st.text(max_size=10), max_size=12))
def test_any_wordpiece_vocabulary_file_loads_or_fails_with_a_value_error(lines):
    files = dict(_valid_files()["wordpiece"])
    files[VOCABULARY_FILENAME] = "\n".join(["<pad>", "<eos>", "<unk>", "<bos>", "<cls>", "<mask>", *lines]).encode(
        "utf-8", "surrogatepass"
    )
    _check_load(files)


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 100_000,  # deeper than the JSON parser's recursion limit
        b'{"type": "char", "version": 1' + b"0" * 5000 + b"}",  # an integer beyond int("...")'s digit limit
        b'{"type": ["char"], "version": 1, "special_tokens": {}}',  # an unhashable type
        b'{"type": {"a": 1}, "version": 1, "special_tokens": {}}',
        b'{"type": "char", "version": NaN, "special_tokens": {}}',
        b"\xef\xbb\xbf{}",  # a byte order mark
    ],
    ids=["deep nesting", "huge integer", "type is a list", "type is an object", "NaN", "BOM"],
)
def test_pathological_json_fails_with_a_value_error(content):
    assert _check_load({TOKENIZER_FILENAME: content}) is None


@pytest.mark.parametrize("field", ["vocabulary_file", "model_file"])
@pytest.mark.parametrize("name", ["a\x00b", "..", ".", "../tokenizer.json", "/etc/passwd", ""])
def test_side_file_names_must_be_plain_names_beside_the_json(field, name):
    kind = "wordpiece" if field == "vocabulary_file" else "sentencepiece"
    files = dict(_valid_files()[kind])
    document = json.loads(files[TOKENIZER_FILENAME])
    document[field] = name
    files[TOKENIZER_FILENAME] = json.dumps(document).encode()
    assert _check_load(files) is None


def test_sentencepiece_model_type_must_match_the_model():
    files = dict(_valid_files()["sentencepiece"])
    document = json.loads(files[TOKENIZER_FILENAME])
    assert document["model_type"] == "unigram"
    files[TOKENIZER_FILENAME] = json.dumps(dict(document, model_type="bpe")).encode()
    assert _check_load(files) is None
    files[TOKENIZER_FILENAME] = json.dumps(dict(document, model_type="unigram")).encode()
    assert isinstance(_check_load(files), SentencepieceTokenizer)
    assert MODEL_FILENAME in files
