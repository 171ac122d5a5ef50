"""GPT-2 byte-level BPE (`BpeTokenizer`) against Hugging Face's and keras-hub's, and the `ids` tokenizer."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gpt2_reference import CORPUS, bpe_files
from tfzoo.data.bpe_tokenizer import BpeTokenizer, bytes_to_unicode
from tfzoo.data.id_tokenizer import IdTokenizer
from tfzoo.data.tokenizers import build_tokenizer, load_tokenizer

pytestmark = pytest.mark.reference

TEXTS = (
    CORPUS,
    "Hello  there\n\n  x<|endoftext|>y",
    "日本語 🙂 's  'll  \t tabs",
    "   ",
    "",
    "don't STOP 123456 3.14 -- ok?!",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("bpe"))
    size = bpe_files(directory)
    return directory, size


@pytest.fixture(scope="module")
def tokenizer(files):
    directory, _ = files
    return BpeTokenizer.from_files(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt"))


def test_same_ids_as_hugging_face_gpt2_tokenizer(files, tokenizer):
    from transformers import GPT2Tokenizer

    directory, size = files
    reference = GPT2Tokenizer(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt"))
    assert tokenizer.vocabulary_size == size and tokenizer.eos_id == tokenizer.pad_id == size - 1
    for text in TEXTS:
        ids = tokenizer.encode(text)
        assert ids.dtype == np.int32
        assert ids.tolist() == reference.encode(text), text
        assert tokenizer.decode(ids) == text.replace("<|endoftext|>", "")  # eos dropped, bytes exact
    assert len(tokenizer.encode(CORPUS)) < len(CORPUS.encode("utf-8")) * 0.7  # the merges do merge


def test_hugging_face_tokenizer_json_gives_the_same_tokenizer(tmp_path, files, tokenizer):
    from transformers import GPT2Tokenizer

    directory, _ = files
    GPT2Tokenizer(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")).save_pretrained(
        str(tmp_path)
    )  # transformers 5 writes tokenizer.json only
    assert not (tmp_path / "vocab.json").exists()
    assert BpeTokenizer.from_hf_tokenizer_json(str(tmp_path / "tokenizer.json")) == tokenizer
    (tmp_path / "bad.json").write_text('{"model": {"type": "WordPiece"}}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.json: not a Hugging Face BPE tokenizer"):
        BpeTokenizer.from_hf_tokenizer_json(str(tmp_path / "bad.json"))


def test_same_ids_as_keras_hub_gpt2_tokenizer(files, tokenizer):
    import keras_hub

    directory, _ = files
    with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as file:
        vocabulary = json.load(file)
    reference = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=os.path.join(directory, "merges.txt"))
    # keras-hub splits runs of spaces before a word differently from GPT-2 ("  c", "    return"): not compared.
    texts = (
        "The quick brown fox jumps over the lazy dog.",
        "fox runs away!\nThe",
        "a\n\nb c",
        "It's we're they'll",
        "Héllo wörld, naïve café 2024 🙂",
        "print(add(2, 3)) # 5",
    )
    for text in texts:
        assert tokenizer.encode(text).tolist() == np.asarray(reference(text)).tolist(), text


def test_json_round_trip_and_file_spec(tmp_path, tokenizer):
    path = tokenizer.save(str(tmp_path / "tok"))
    loaded = load_tokenizer(str(tmp_path / "tok"))
    assert loaded == tokenizer and loaded.special_tokens == {"<|endoftext|>": tokenizer.eos_id}
    assert build_tokenizer(f"file:{tmp_path / 'tok'}", "ignored text") == tokenizer
    data = json.loads(open(path, encoding="utf-8").read())
    assert data["type"] == "bpe" and len(data["vocabulary"]) == tokenizer.vocabulary_size
    data["special_tokens"] = {"<|endoftext|>": 3}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.json: special_tokens says '<\|endoftext\|>' is 3"):
        load_tokenizer(str(bad))
    with pytest.raises(ValueError, match="not learned from text"):
        build_tokenizer("bpe", "some text")


def test_bad_vocabulary_files_name_the_file(tmp_path, files):
    directory, _ = files
    merges = os.path.join(directory, "merges.txt")
    (tmp_path / "v.json").write_text('{"a": 0, "b": 2}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"v.json: ids must be 0..1"):
        BpeTokenizer.from_files(str(tmp_path / "v.json"), merges)
    (tmp_path / "w.json").write_text('{"a": 0, "<|endoftext|>": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"w.json, .*merges.txt: BPE vocabulary lacks byte symbol"):
        BpeTokenizer.from_files(str(tmp_path / "w.json"), merges)
    with pytest.raises(ValueError, match=r"nope.json: cannot read a GPT-2 vocabulary"):
        BpeTokenizer.from_files(str(tmp_path / "nope.json"), merges)


def test_id_tokenizer(tmp_path):
    tokenizer = IdTokenizer(vocabulary_size=50, eos_id=49)
    assert tokenizer.encode(" 3, 4 5 ").tolist() == [3, 4, 5]
    assert tokenizer.decode([3, 49, 4]) == " 3 4"
    assert tokenizer.decode([3]) + tokenizer.decode([4]) == tokenizer.decode([3, 4])
    with pytest.raises(ValueError, match="must be token ids separated by spaces, got 'hello'"):
        tokenizer.encode("1 hello")
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 50\)"):
        tokenizer.encode("50")
    tokenizer.save(str(tmp_path))
    assert load_tokenizer(str(tmp_path)) == tokenizer and load_tokenizer(str(tmp_path)).pad_id == 49


def test_in_graph_ops_match_and_survive_a_saved_model(tmp_path, tokenizer):
    import tensorflow as tf

    from tfzoo.data.bpe_ops import BpeOps

    texts = ["The quick brown fox.", "Héllo wörld 🙂<|endoftext|>It's", "", "a\nb c", CORPUS.replace("    ", "")]
    ops = BpeOps(tokenizer.to_json())
    assert ops.ids(tf.constant(texts)).to_list() == [tokenizer.encode(t).tolist() for t in texts]

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.ops = ops  # tracked: the SavedModel keeps the tokenizer's tables

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def round_trip(self, texts):
            ids = self.ops.ids(texts)
            return {"ids": ids.to_tensor(-1), "texts": self.ops.decode(ids.to_tensor(self.ops.pad_id))}

    tf.saved_model.save(Serving(), str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    out = loaded.round_trip(tf.constant(texts))
    assert [t.decode("utf-8") for t in out["texts"].numpy()] == [t.replace("<|endoftext|>", "") for t in texts]
    first = out["ids"].numpy()[0]
    assert first[first >= 0].tolist() == tokenizer.encode(texts[0]).tolist()
    lead_byte = tokenizer.vocabulary.index(bytes_to_unicode()[0xC3])  # the first byte of "é" alone
    invalid = ops.decode(tf.constant([[lead_byte]]))
    assert invalid.numpy()[0].decode("utf-8") == "\ufffd"
