"""keras-hub GPT2Backbone presets through `python -m tfzoo.convert gpt2`: logits, greedy tokens, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from gpt2_reference import ARCH, NEW_TOKENS, bpe_files, convert_error, greedy, keras_hub_preset, load
from tfzoo.convert import convert_gpt2
from tfzoo.data.tokenizers import load_tokenizer

pytestmark = pytest.mark.reference

PROMPT = "The quick brown"


@pytest.fixture(scope="module")
def vocabulary_size(tmp_path_factory):
    return bpe_files(str(tmp_path_factory.mktemp("vocab")))


def test_keras_hub_preset_parity(tmp_path, vocabulary_size):
    source = str(tmp_path / "preset")
    backbone = keras_hub_preset(source, vocabulary_size)
    summary = convert_gpt2(source, str(tmp_path / "out"))
    assert summary["format"] == "keras_hub" and summary["tokenizer"] == "bpe"
    model = load(str(tmp_path / "out"))
    ids = np.random.default_rng(1).integers(0, vocabulary_size, (2, ARCH["n_positions"]))

    def reference_logits(token_ids):
        hidden = backbone({"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)})
        return np.asarray(backbone.token_embedding(hidden, reverse=True))

    expected = reference_logits(ids)
    assert np.abs(expected).max() > 1.0
    np.testing.assert_allclose(np.asarray(model(ids)), expected, atol=1e-4, rtol=0)
    tokenizer = load_tokenizer(str(tmp_path / "out" / "tokenizer"))
    eos = tokenizer.eos_id
    tokens = tokenizer.encode(PROMPT).tolist()
    expected_tokens = []
    for _ in range(NEW_TOKENS):  # greedy with keras-hub's backbone, one full forward pass per token
        token = int(np.argmax(reference_logits(np.asarray([tokens + expected_tokens]))[0, -1]))
        expected_tokens.append(token)
        if token == eos:
            break
    assert greedy(model, [tokens], eos) == [expected_tokens]


def test_truncated_keras_hub_preset(tmp_path, vocabulary_size):
    source = tmp_path / "preset"
    keras_hub_preset(str(source), vocabulary_size, tokenizer=False)
    weights = source / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    code, err = convert_error(source, tmp_path / "out")
    assert code == 2 and f"{source}: cannot load the keras-hub GPT2Backbone preset" in err
