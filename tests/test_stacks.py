"""The shared pieces of the models: position factory, length/pad checks, decoder/encoder stacks, attention_scores."""

import numpy as np
import pytest
from keras import ops

from tfzoo.layers.alibi_bias import AlibiBias
from tfzoo.layers.learned_position_embedding import LearnedPositionEmbedding
from tfzoo.layers.positions import POSITION_TYPES, check_length, make_position_bias, make_position_embedding
from tfzoo.layers.relative_position_bias import RelativePositionBias
from tfzoo.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from tfzoo.models.bert import BertClassifier, BertEncoder
from tfzoo.models.captioner import Captioner
from tfzoo.models.gpt import GPT
from tfzoo.models.transformer import Transformer

SIZES = dict(vocabulary_size=20, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=16, max_sequence_length=8)


@pytest.mark.parametrize(
    "position, embedding, bias",
    [
        ("learned", LearnedPositionEmbedding, type(None)),
        ("sinusoidal", SinusoidalPositionEncoding, type(None)),
        ("relative", type(None), RelativePositionBias),
        ("alibi", type(None), AlibiBias),
        ("rotary", type(None), type(None)),
    ],
)
def test_position_factory_makes_one_layer_per_type(position, embedding, bias):
    made_embedding = make_position_embedding(position, max_length=8, dim=4)
    made_bias = make_position_bias(position, num_heads=2, bidirectional=False)
    assert isinstance(made_embedding, embedding) and isinstance(made_bias, bias)
    assert set(POSITION_TYPES) == {"learned", "sinusoidal", "relative", "rotary", "alibi"}


def test_position_factory_and_length_check_reject_bad_input():
    with pytest.raises(ValueError, match="unknown position 'absolute'"):
        make_position_embedding("absolute", max_length=8, dim=4)
    check_length("input", 8, 8)
    check_length("input", None, 8)  # unknown (symbolic) lengths pass
    with pytest.raises(ValueError, match="target length 9 exceeds the model's max_sequence_length 8"):
        check_length("target", 9, 8)


@pytest.mark.parametrize(
    "make",
    [
        lambda **k: GPT(**SIZES, **k),
        lambda **k: Transformer(**SIZES, **k),
        lambda **k: BertEncoder(**SIZES, **k),
        lambda **k: Captioner(**SIZES, image_size=8, **k),
    ],
    ids=["gpt", "transformer", "bert", "captioner"],
)
def test_every_model_checks_pad_id_the_same_way(make):
    with pytest.raises(ValueError, match=r"pad_id must be in \[0, 20\), got 20"):
        make(pad_id=20)
    assert make(pad_id=19).pad_id == 19


def test_every_model_checks_lengths_the_same_way():
    too_long = np.ones((1, 9), np.int32)
    with pytest.raises(ValueError, match="input length 9 exceeds"):
        GPT(**SIZES)(too_long)
    with pytest.raises(ValueError, match="cache length 9 exceeds"):
        GPT(**SIZES).init_cache(1, 9)
    with pytest.raises(ValueError, match="input length 9 exceeds"):
        BertEncoder(**SIZES)(too_long)
    with pytest.raises(ValueError, match="target length 9 exceeds"):
        Transformer(**SIZES)({"source_ids": too_long[:, :4], "target_ids": too_long})
    with pytest.raises(ValueError, match="caption length 9 exceeds"):
        Captioner(**SIZES, image_size=8)({"image": np.zeros((1, 8, 8, 3), np.float32), "target_ids": too_long})


def test_stacks_keep_the_models_layer_names():
    gpt = GPT(**SIZES, position="relative")
    gpt.build()
    names = {w.path.split("/")[1] for w in gpt.weights}
    assert names == {"token_embedding", "position_bias", "block_0", "block_1", "final_norm"}
    seq2seq = Transformer(**SIZES, position="relative")
    seq2seq.build()
    names = {w.path.split("/")[1] for w in seq2seq.weights}
    assert names == {
        "token_embedding",
        "encoder_position_bias",
        "decoder_position_bias",
        "encoder_block_0",
        "encoder_block_1",
        "decoder_block_0",
        "decoder_block_1",
        "encoder_norm",
        "decoder_norm",
    }
    assert len(seq2seq.encoder_blocks) == len(seq2seq.decoder_blocks) == 2
    assert seq2seq.decoder_blocks[0].cross_attention and gpt.final_norm is not None


def _check_distributions(scores: dict, kinds: tuple) -> None:
    assert set(kinds) <= set(scores)
    for kind in kinds:
        assert len(scores[kind]) == 2
        for weights in scores[kind]:
            np.testing.assert_allclose(ops.convert_to_numpy(weights).sum(-1), 1.0, atol=1e-5)


def test_attention_scores_is_one_method_on_every_model():
    tokens = np.array([[3, 4, 5, 0], [6, 7, 8, 9]], np.int32)
    gpt = GPT(**SIZES)
    scores = gpt.attention_scores(tokens)
    _check_distributions(scores, ("self",))
    np.testing.assert_allclose(ops.convert_to_numpy(scores["logits"]), ops.convert_to_numpy(gpt(tokens)), atol=1e-5)

    seq2seq = Transformer(**SIZES)
    seq2seq.build()
    scores = seq2seq.attention_scores(tokens, tokens[:, :3])
    _check_distributions(scores, ("encoder", "self", "cross"))
    expected = seq2seq({"source_ids": tokens, "target_ids": tokens[:, :3]})
    np.testing.assert_allclose(ops.convert_to_numpy(scores["logits"]), ops.convert_to_numpy(expected), atol=1e-5)

    encoder = BertEncoder(**SIZES)
    scores = encoder.attention_scores(tokens)
    _check_distributions(scores, ("encoder",))
    assert np.all(ops.convert_to_numpy(scores["encoder"][0])[0, :, :, 3] == 0)  # the padded key
    expected = encoder(tokens)["sequence_output"]
    np.testing.assert_allclose(
        ops.convert_to_numpy(scores["sequence_output"]), ops.convert_to_numpy(expected), atol=1e-5
    )
    classifier = BertClassifier(encoder, num_classes=2)
    _check_distributions(classifier.attention_scores(tokens), ("encoder",))

    captioner = Captioner(**SIZES, image_size=8)
    captioner.build()
    scores = captioner.attention_scores(np.zeros((2, 8, 8, 3), np.float32), tokens)
    _check_distributions(scores, ("self", "cross"))


@pytest.mark.parametrize(
    "model_class, extra",
    [(GPT, {}), (Transformer, {}), (BertEncoder, {"num_segments": 3}), (Captioner, {"image_size": 8, "patch_size": 2})],
)
def test_config_round_trip_keeps_shared_and_particular_arguments(model_class, extra):
    model = model_class(**SIZES, dropout=0.1, **extra)
    config = model.get_config()
    assert {**SIZES, **extra, "dropout": 0.1}.items() <= config.items()
    assert config["position"] == model.DEFAULTS["position"] and config["norm_first"] == model.DEFAULTS["norm_first"]
    assert model_class.from_config(config).get_config() == config
