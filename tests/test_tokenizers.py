"""Tests for the char and byte tokenizers and their JSON files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfzoo.data import ByteTokenizer, CharTokenizer, build_tokenizer, load_tokenizer
from tfzoo.data.char_tokenizer import UNK_TEXT

# --- CharTokenizer -----------------------------------------------------------


def test_char_from_text_uses_sorted_distinct_characters():
    tokenizer = build_tokenizer("char", "hello world\n")
    assert tokenizer.characters == ["\n", " ", "d", "e", "h", "l", "o", "r", "w"]
    assert tokenizer.vocabulary_size == 3 + 9
    assert tokenizer.vocabulary[:4] == ["<pad>", "<eos>", "<unk>", "\n"]
    assert (tokenizer.pad_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2)


def test_char_encode_ids_and_dtype():
    tokenizer = CharTokenizer("ab\u00e9\U0001f600")
    ids = tokenizer.encode("\U0001f600ba\u00e9")
    assert ids.dtype == np.int32
    assert ids.tolist() == [6, 4, 3, 5]
    empty = tokenizer.encode("")
    assert empty.dtype == np.int32 and empty.shape == (0,)


def test_char_unknown_characters_encode_to_unk():
    tokenizer = CharTokenizer("ac\u00e9")
    # "b" lies inside the lookup table, "\u4e2d" and the emoji past its end.
    ids = tokenizer.encode("abc\u4e2d\U0001f600")
    assert ids.tolist() == [3, 2, 4, 2, 2]
    assert tokenizer.decode(ids) == f"a{UNK_TEXT}c{UNK_TEXT}{UNK_TEXT}"


def test_char_decode_drops_pad_and_eos():
    tokenizer = CharTokenizer("ab")
    assert tokenizer.decode(np.array([3, 0, 4, 1, 3, 0, 0])) == "aba"
    assert tokenizer.decode([]) == ""
    assert tokenizer.decode([0, 1]) == ""


@pytest.mark.parametrize("ids", [[0, 6], [-1], [[3, 4]], [3.0]])
def test_decode_rejects_ids_outside_the_vocabulary_or_bad_shape(ids):
    with pytest.raises(ValueError):
        CharTokenizer("abc").decode(ids)
    with pytest.raises(ValueError):
        ByteTokenizer().decode(np.array(ids) * 100)


@pytest.mark.parametrize("characters", [["ab"], ["a", "a"], [""], [1]])
def test_char_constructor_rejects_bad_characters(characters):
    with pytest.raises(ValueError):
        CharTokenizer(characters)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), alphabet=st.text(min_size=1, max_size=40))
def test_char_round_trip_on_text_from_its_alphabet(data, alphabet):
    tokenizer = build_tokenizer("char", alphabet)
    text = data.draw(st.text(alphabet=sorted(set(alphabet)), max_size=200))
    ids = tokenizer.encode(text)
    assert ids.shape == (len(text),)
    assert ids.min(initial=3) >= 3 and ids.max(initial=3) < tokenizer.vocabulary_size
    assert tokenizer.decode(ids) == text


# --- ByteTokenizer -----------------------------------------------------------


def test_byte_ids_are_utf8_bytes_plus_two():
    tokenizer = ByteTokenizer()
    assert tokenizer.vocabulary_size == 258
    text = "a\u00e9\U0001f600"
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int32
    assert ids.tolist() == [b + 2 for b in text.encode("utf-8")]


def test_byte_decode_replaces_invalid_utf8():
    tokenizer = ByteTokenizer()
    assert tokenizer.decode([0xFF + 2, ord("a") + 2, 1, 0]) == "\ufffda"


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300))
def test_byte_round_trip_on_arbitrary_text(text):
    tokenizer = ByteTokenizer()
    ids = tokenizer.encode(text)
    assert ids.min(initial=2) >= 2 and ids.max(initial=2) <= 257
    assert tokenizer.decode(ids) == text


def test_build_tokenizer_rejects_unknown_names_and_empty_char_text():
    with pytest.raises(ValueError, match="unknown tokenizer 'word'.*byte, char"):
        build_tokenizer("word", "text")
    with pytest.raises(ValueError, match="empty"):
        build_tokenizer("char", "")


def test_get_config_rebuilds_the_tokenizer():
    tokenizer = build_tokenizer("char", "zyx\u00e9")
    rebuilt = CharTokenizer.from_config(tokenizer.get_config())
    assert rebuilt == tokenizer
    assert rebuilt.encode("xyz\u00e9q").tolist() == tokenizer.encode("xyz\u00e9q").tolist()
    assert ByteTokenizer.from_config(ByteTokenizer().get_config()) == ByteTokenizer()
    assert CharTokenizer("ab") != CharTokenizer("ba")


# --- tokenizer.json ------------------------------------------------------------


@pytest.mark.parametrize("name", ["char", "byte"])
def test_save_load_round_trip(tmp_path, name):
    tokenizer = build_tokenizer(name, "def f(x):\n    return x  # \u00e9\n")
    path = tokenizer.save(str(tmp_path / "tokenizer"))
    assert path == str(tmp_path / "tokenizer" / "tokenizer.json")
    assert os.listdir(tmp_path / "tokenizer") == ["tokenizer.json"]  # no temporary file left
    loaded = load_tokenizer(str(tmp_path / "tokenizer"))
    assert type(loaded) is type(tokenizer) and loaded == tokenizer
    assert load_tokenizer(path) == tokenizer
    text = "def g(y): return y \u00e9"
    assert loaded.encode(text).tolist() == tokenizer.encode(text).tolist()


def test_char_json_is_plain_and_complete(tmp_path):
    tokenizer = CharTokenizer("ab\u00e9")
    data = json.loads((tmp_path / os.path.basename(tokenizer.save(str(tmp_path)))).read_text("utf-8"))
    assert data == {
        "type": "char",
        "version": 1,
        "vocabulary_size": 6,
        "special_tokens": {"<pad>": 0, "<eos>": 1, "<unk>": 2},
        "vocabulary": ["<pad>", "<eos>", "<unk>", "a", "b", "\u00e9"],
    }


def test_byte_json_is_plain_and_complete(tmp_path):
    data = json.loads(open(ByteTokenizer().save(str(tmp_path)), encoding="utf-8").read())
    assert data == {
        "type": "byte",
        "version": 1,
        "vocabulary_size": 258,
        "special_tokens": {"<pad>": 0, "<eos>": 1},
        "byte_offset": 2,
    }


def test_save_overwrites_an_existing_file(tmp_path):
    CharTokenizer("ab").save(str(tmp_path))
    CharTokenizer("xyz").save(str(tmp_path))
    assert load_tokenizer(str(tmp_path)) == CharTokenizer("xyz")


def _char_json(**changes):
    data = CharTokenizer("abc").to_json()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"version": 1, "special_tokens": {}}), "missing field 'type'"),
        (json.dumps(_char_json(type="nope")), "unknown tokenizer type 'nope'"),
        (json.dumps(_char_json(version=2)), "unsupported version 2"),
        (json.dumps(_char_json(special_tokens={"<pad>": 0, "<eos>": 1})), "special_tokens must be"),
        (json.dumps(_char_json(vocabulary="abc")), "'vocabulary' must be a list of strings"),
        (json.dumps(_char_json(vocabulary=["<pad>", "<eos>", "a", "<unk>"])), "must start with"),
        (json.dumps(_char_json(vocabulary=["<pad>", "<eos>", "<unk>", "a", "bc"])), "entry 4 .* not a single"),
        (
            json.dumps(_char_json(vocabulary=["<pad>", "<eos>", "<unk>", "a", "b", "a"])),
            "duplicate .*'a' at ids 3 and 5",
        ),
        (json.dumps(_char_json(vocabulary_size=7)), "vocabulary_size is 7 but the vocabulary has 6"),
        (json.dumps({**ByteTokenizer().to_json(), "byte_offset": 3}), "'byte_offset' must be 2"),
    ],
)
def test_load_rejects_bad_files_naming_file_and_problem(tmp_path, content, message):
    path = tmp_path / "tokenizer.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as error:
        load_tokenizer(str(tmp_path))
    assert str(error.value).startswith(str(path) + ": ")
    assert "\n" not in str(error.value)


def test_load_rejects_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(ValueError, match=r"tokenizer\.json: tokenizer file not found"):
        load_tokenizer(str(tmp_path / "nowhere"))
    (tmp_path / "tokenizer.json").write_bytes(b'{"type": "\xff"}')
    with pytest.raises(ValueError, match="cannot read tokenizer file"):
        load_tokenizer(str(tmp_path))


def test_tokenizers_import_without_tensorflow():
    code = (
        "import sys; from tfzoo.data import build_tokenizer, load_text_splits; "
        "build_tokenizer('char', 'ab').encode('ab'); assert 'tensorflow' not in sys.modules, 'tf imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
