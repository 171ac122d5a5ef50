"""SentencePiece tokenizer: training, special ids, sentencepiece == tensorflow-text, files."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tfzoo.data import build_tokenizer, load_tokenizer
from tfzoo.data.sentencepiece_tokenizer import SPECIAL_TOKENS, UNK_TEXT, SentencepieceTokenizer

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
    return build_tokenizer("sentencepiece", TEXT, vocabulary_size=60)


def test_trained_model_has_the_special_ids_first(tokenizer):
    assert isinstance(tokenizer, SentencepieceTokenizer)
    assert tokenizer.vocabulary[:6] == SPECIALS
    assert tokenizer.vocabulary_size == len(tokenizer.vocabulary) <= 60
    assert tokenizer.model_type == "unigram"
    ids = np.concatenate([tokenizer.encode(line) for line in TEXT.splitlines()])
    assert (ids >= len(SPECIALS)).all()  # control symbols never come out of text
    assert tokenizer.encode("<mask> <cls>").tolist().count(SPECIAL_TOKENS["<mask>"]) == 0


def test_round_trip_normalizes_spaces(tokenizer):
    for line in TEXT.splitlines():
        ids = tokenizer.encode(line)
        assert ids.dtype == np.int32
        assert tokenizer.decode(ids) == line
    assert tokenizer.decode(tokenizer.encode("  the   lowest wall ")) == "the lowest wall"
    assert tokenizer.encode("").shape == (0,)


ALPHABET = sorted(set(TEXT) - set(" \n"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=12), max_size=6),
    st.lists(st.sampled_from([" ", "  ", "   "]), min_size=6, max_size=6),
)
def test_round_trip_of_any_words_over_the_training_alphabet(tokenizer, words, separators):
    text = "".join(word + separator for word, separator in zip(words, separators))
    assert tokenizer.decode(tokenizer.encode(text)) == " ".join(words)


def test_unknown_characters_and_special_ids_on_decode(tokenizer):
    ids = tokenizer.encode("the wörld")
    assert SPECIAL_TOKENS["<unk>"] in ids.tolist()
    assert tokenizer.decode(ids) == f"the w{UNK_TEXT}rld"
    wall = tokenizer.encode("the wall")
    assert tokenizer.decode(np.concatenate([[3, 4], wall, [5, 1, 0, 0]])) == "the wall"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([-1])


def test_bpe_model_type():
    bpe = build_tokenizer("sentencepiece", TEXT, vocabulary_size=50, model_type="bpe")
    assert bpe.model_type == "bpe" and bpe.vocabulary[:6] == SPECIALS
    line = TEXT.splitlines()[1]
    assert bpe.decode(bpe.encode(line)) == line


def test_graph_encode_and_decode_match_the_sentencepiece_package(tokenizer):
    texts = TEXT.splitlines()[:3] + ["", "  the   wall  ", "wörld\tlow"]
    ragged = tokenizer.encode_tf(tf.constant(texts))
    assert ragged.dtype == tf.int32
    for text, ids in zip(texts, ragged.to_list()):
        assert ids == tokenizer.encode(text).tolist(), text
    dense = ragged.to_tensor()
    dense = tf.concat([tf.fill([len(texts), 1], 3), dense, tf.fill([len(texts), 1], 1)], axis=1)
    decoded = [t.decode("utf-8") for t in tokenizer.decode_tf(dense).numpy()]
    assert decoded == [tokenizer.decode(row) for row in dense.numpy()]
    assert decoded[0] == texts[0]


def test_graph_tokenizer_survives_a_saved_model(tokenizer, tmp_path):
    module = tf.Module()
    module.tokenizer = tokenizer.tf_tokenizer
    module.round_trip = tf.function(
        lambda texts: tokenizer.decode_tf(tokenizer.encode_tf(texts).to_tensor()),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    out = loaded.round_trip(tf.constant(["the lowest  wall", "wörld"])).numpy().tolist()
    assert out == [b"the lowest wall", f"w{UNK_TEXT}rld".encode()]


def test_save_and_load(tokenizer, tmp_path):
    path = tokenizer.save(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["sentencepiece.model", "tokenizer.json"]
    data = json.loads(open(path, encoding="utf-8").read())
    assert data["type"] == "sentencepiece" and data["model_file"] == "sentencepiece.model"
    assert data["special_tokens"] == SPECIAL_TOKENS and data["model_type"] == "unigram"
    assert data["vocabulary"] == tokenizer.vocabulary and data["vocabulary_size"] == tokenizer.vocabulary_size
    assert (tmp_path / "sentencepiece.model").read_bytes() == tokenizer.model_proto
    loaded = load_tokenizer(str(tmp_path))
    assert loaded == tokenizer
    assert loaded.encode(TEXT).tolist() == tokenizer.encode(TEXT).tolist()


def _edit_json(directory, **changes):
    path = directory / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda d: os.remove(d / "sentencepiece.model"), "model file .*sentencepiece.model not found"),
        (lambda d: (d / "sentencepiece.model").write_bytes(b"not a model"), "not a valid sentencepiece model"),
        (lambda d: _edit_json(d, model_file="/etc/passwd"), "'model_file' must be a file name"),
        (lambda d: _edit_json(d, vocabulary=["<pad>"]), "'vocabulary' does not match"),
    ],
)
def test_load_rejects_broken_files_with_one_line_errors(tokenizer, tmp_path, break_it, message):
    tokenizer.save(str(tmp_path))
    break_it(tmp_path)
    with pytest.raises(ValueError, match=message) as error:
        load_tokenizer(str(tmp_path))
    assert "\n" not in str(error.value)


def test_a_model_without_the_special_tokens_is_rejected():
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXT.splitlines()), model_writer=model, vocab_size=30, minloglevel=2
    )
    with pytest.raises(ValueError, match="must start with"):
        SentencepieceTokenizer(model.getvalue())


@pytest.mark.parametrize(
    "text, options, message",
    [
        ("", {}, "empty"),
        ("  \n \n", {}, "empty"),
        (TEXT, dict(vocabulary_size=10), "cannot build a sentencepiece vocabulary of 10 pieces.*smaller than"),
        (TEXT, dict(vocabulary_size=0), "vocabulary_size must be a positive integer"),
        (TEXT, dict(model_type="word"), "unknown sentencepiece model_type 'word'"),
    ],
)
def test_vocabulary_that_cannot_be_built_raises(text, options, message):
    with pytest.raises(ValueError, match=message) as error:
        build_tokenizer("sentencepiece", text, **options)
    assert "\n" not in str(error.value)
