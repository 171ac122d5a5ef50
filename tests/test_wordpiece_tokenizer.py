"""WordPiece tokenizer: learned vocabulary, greedy longest-match, Python == TensorFlow graph, files."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tfzoo.data import build_tokenizer, load_tokenizer
from tfzoo.data.wordpiece_tokenizer import SPECIAL_TOKENS, UNK_TEXT, WordpieceTokenizer, split_words

TEXT = "\n".join(
    [
        "the lowest tower is lower than the low wall",
        "newer towers are newest, the wall is older",
        "un deux trois quatre-vingt-dix mille",
    ]
    * 5
)
SPECIALS = list(SPECIAL_TOKENS)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("wordpiece", TEXT, vocabulary_size=80)


def test_learned_vocabulary_has_specials_every_character_and_subwords(tokenizer):
    assert isinstance(tokenizer, WordpieceTokenizer)
    vocabulary = tokenizer.vocabulary
    assert vocabulary[:6] == SPECIALS
    assert tokenizer.vocabulary_size == len(vocabulary) == len(set(vocabulary))
    characters = set(TEXT) - set(" \n")
    assert characters <= set(vocabulary) and {"##" + c for c in characters} <= set(vocabulary)
    assert len(vocabulary) <= 6 + 2 * len(characters) + 80  # every character is always kept
    assert "the" in vocabulary and "tower" in vocabulary[: 6 + 2 * len(characters) + 10]


def test_greedy_longest_match_first():
    tokenizer = WordpieceTokenizer(SPECIALS + ["u", "n", "un", "##a", "##aff", "##able", "##b", "##l", "##e", "a"])
    ids = tokenizer.encode("unaffable un a unx")
    assert [tokenizer.vocabulary[i] for i in ids] == ["un", "##aff", "##able", "un", "a", "<unk>"]
    assert tokenizer.decode(ids) == "unaffable un a " + UNK_TEXT


def test_round_trip_of_training_text_normalizes_whitespace(tokenizer):
    for line in TEXT.splitlines():
        ids = tokenizer.encode(line)
        assert ids.dtype == np.int32 and (ids >= len(SPECIALS)).all()
        assert tokenizer.decode(ids) == line
    assert tokenizer.decode(tokenizer.encode("  the\tlowest \n wall ")) == "the lowest wall"
    assert tokenizer.encode("").shape == (0,)


ALPHABET = sorted(set(TEXT) - set(" \n"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=12), max_size=6),
    st.lists(st.sampled_from([" ", "  ", "\t", "\n "]), min_size=6, max_size=6),
)
def test_round_trip_of_any_words_over_the_training_alphabet(tokenizer, words, separators):
    text = "".join(word + separator for word, separator in zip(words, separators))
    assert tokenizer.decode(tokenizer.encode(text)) == " ".join(words)


def test_unknown_characters_and_overlong_words_become_unk(tokenizer):
    ids = tokenizer.encode("the wörld " + "l" * 101 + " low")
    assert [tokenizer.vocabulary[i] for i in ids[1:3]] == ["<unk>", "<unk>"]
    assert tokenizer.decode(ids) == f"the {UNK_TEXT} {UNK_TEXT} low"


def test_decode_drops_special_tokens_but_unk(tokenizer):
    ids = np.concatenate([[3, 4], tokenizer.encode("the wall"), [5, 2, 1, 0, 0]])
    assert tokenizer.decode(ids) == "the wall " + UNK_TEXT
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([tokenizer.vocabulary_size])


def test_graph_encode_and_decode_match_python(tokenizer):
    texts = TEXT.splitlines()[:3] + ["", "  the\u00a0wall  lowest ", "wörld " + "e" * 120, "newest##"]
    ragged = tokenizer.encode_tf(tf.constant(texts))
    assert ragged.dtype == tf.int32
    for text, ids in zip(texts, ragged.to_list()):
        assert ids == tokenizer.encode(text).tolist(), text
    dense = ragged.to_tensor()  # padded with <pad>
    dense = tf.concat([tf.fill([len(texts), 1], 3), dense, tf.fill([len(texts), 1], 1)], axis=1)
    decoded = [t.decode("utf-8") for t in tokenizer.decode_tf(dense).numpy()]
    assert decoded == [tokenizer.decode(row) for row in dense.numpy()]
    assert decoded[0] == texts[0]


def test_graph_tokenizer_survives_a_saved_model(tokenizer, tmp_path):
    module = tf.Module()
    module.tokenizer = tokenizer.tf_tokenizer  # tracked, so the SavedModel keeps its model
    module.round_trip = tf.function(
        lambda texts: tokenizer.decode_tf(tokenizer.encode_tf(texts).to_tensor()),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    out = loaded.round_trip(tf.constant(["the lowest  wall", "wörld"])).numpy().tolist()
    assert out == [b"the lowest wall", UNK_TEXT.encode()]


def test_save_and_load(tokenizer, tmp_path):
    path = tokenizer.save(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["tokenizer.json", "vocab.txt"]
    data = json.loads(open(path, encoding="utf-8").read())
    assert data["type"] == "wordpiece" and data["vocabulary_size"] == tokenizer.vocabulary_size
    assert data["special_tokens"] == SPECIAL_TOKENS and data["vocabulary_file"] == "vocab.txt"
    lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert lines[:-1] == tokenizer.vocabulary and lines[-1] == ""
    loaded = load_tokenizer(str(tmp_path))
    assert loaded == tokenizer
    assert loaded.encode(TEXT).tolist() == tokenizer.encode(TEXT).tolist()


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda d: os.remove(d / "vocab.txt"), "vocabulary file .*vocab.txt not found"),
        (lambda d: (d / "vocab.txt").write_text("<pad>\na\n"), "vocab.txt: vocabulary must start with"),
        (
            lambda d: (d / "vocab.txt").write_text("\n".join(SPECIALS + ["a", "b", "a"])),
            "duplicate .*'a' at ids 6 and 8",
        ),
        (lambda d: (d / "vocab.txt").write_bytes(b"\xff\xfe"), "cannot read vocabulary file"),
        (lambda d: _edit_json(d, vocabulary_file="../vocab.txt"), "'vocabulary_file' must be a file name"),
        (lambda d: _edit_json(d, suffix_indicator="@@"), "'suffix_indicator' must be '##'"),
        (lambda d: _edit_json(d, vocabulary_size=3), "vocabulary_size is 3 but the vocabulary has"),
    ],
)
def test_load_rejects_broken_files_with_one_line_errors(tokenizer, tmp_path, break_it, message):
    tokenizer.save(str(tmp_path))
    break_it(tmp_path)
    with pytest.raises(ValueError, match=message) as error:
        load_tokenizer(str(tmp_path))
    assert "\n" not in str(error.value)


def _edit_json(directory, **changes):
    path = directory / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    "text, size, message",
    [
        ("", 100, "empty"),
        (" \n\t ", 100, "empty"),
        ("some text", 6, "at least 7"),
        ("some text", "100", "at least 7"),
    ],
)
def test_vocabulary_that_cannot_be_built_raises(text, size, message):
    with pytest.raises(ValueError, match=message):
        build_tokenizer("wordpiece", text, vocabulary_size=size)


def test_split_words_matches_tf_strings_split():
    text = "a b\tc\nd\re\x0bf\x0cg\u00a0h\u2003i  "
    expected = [w.decode() for w in tf.strings.split(tf.constant(text)).numpy()]
    assert split_words(text) == expected
