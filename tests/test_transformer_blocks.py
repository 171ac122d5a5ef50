"""Encoder and decoder blocks: pre/post-norm, cross-attention, cache, serialization."""

import numpy as np
import pytest
from keras import ops

from layer_checks import check_config_round_trip, check_gradients_flow, check_keras_save_reload
from tfzoo.layers.kv_cache import init_cache
from tfzoo.layers.masks import causal_mask, padding_mask
from tfzoo.layers.transformer_decoder_block import TransformerDecoderBlock
from tfzoo.layers.transformer_encoder_block import TransformerEncoderBlock


def _x(b=2, t=5, c=8, seed=0):
    return np.random.default_rng(seed).normal(size=(b, t, c)).astype("float32")


def _positions(t):
    return np.arange(t, dtype="int32")[None]


NON_DEFAULT = dict(
    num_heads=4,
    intermediate_dim=12,
    dropout=0.2,
    activation="swiglu",
    norm_first=False,
    layer_norm_epsilon=1e-3,
    rotary=True,
    use_bias=False,
    norm="rms",
    scale_queries=False,
    head_dim=3,
    kernel_initializer="he_uniform",
)


def test_decoder_config_round_trip():
    clone = check_config_round_trip(TransformerDecoderBlock(cross_attention=True, **NON_DEFAULT))
    assert clone.cross_attention and clone.activation == "swiglu" and not clone.norm_first


def test_encoder_config_round_trip():
    clone = check_config_round_trip(TransformerEncoderBlock(**NON_DEFAULT))
    assert clone.rotary and clone.layer_norm_epsilon == 1e-3
    assert (clone.norm, clone.scale_queries, clone.head_dim) == ("rms", False, 3)


def test_t5_options_build_rms_norms_and_narrow_heads(tmp_path):
    """norm="rms" (no mean, no bias: x * rsqrt(mean(x**2) + eps) * scale) and heads of head_dim over any width."""
    block = TransformerEncoderBlock(
        num_heads=3, intermediate_dim=16, norm="rms", use_bias=False, scale_queries=False, head_dim=4, activation="relu"
    )
    x = _x() * 3.0
    block(x)
    assert type(block.attention_norm).__name__ == "RMSNormalization"
    assert tuple(block.self_attention.query_dense.kernel.shape) == (8, 3, 4)  # (C, H, head_dim)
    scale = np.random.default_rng(2).normal(size=8).astype("float32")
    block.attention_norm.scale.assign(scale)
    expected = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-5) * scale
    np.testing.assert_allclose(np.asarray(block.attention_norm(x)), expected, atol=1e-5)
    check_keras_save_reload(block, [x], tmp_path)


def test_unknown_norm():
    with pytest.raises(ValueError, match="unknown norm 'batch'; choose one of layer, rms"):
        TransformerEncoderBlock(num_heads=2, intermediate_dim=8, norm="batch")


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_save_reload_with_cross_attention(norm_first, tmp_path):
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=16, cross_attention=True, norm_first=norm_first)
    x, memory = _x(), _x(t=3, seed=1)
    check_keras_save_reload(
        block,
        [x, memory],
        tmp_path,
        call=lambda b, xs: b(xs[0], xs[1], self_attention_mask=causal_mask(_positions(5), _positions(5))),
    )


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_save_reload(norm_first, tmp_path):
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, norm_first=norm_first, activation="relu")
    check_keras_save_reload(block, [_x()], tmp_path)


def test_gradients_flow_through_both_blocks():
    dec = TransformerDecoderBlock(num_heads=2, intermediate_dim=16, cross_attention=True)
    enc = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    x, memory = _x(), _x(t=3, seed=1)
    mask = causal_mask(_positions(5), _positions(5))
    dec(x, memory, self_attention_mask=mask)
    enc(memory)
    check_gradients_flow(dec, lambda: dec(x, memory, self_attention_mask=mask))
    check_gradients_flow(enc, lambda: enc(memory, attention_mask=padding_mask(np.array([3, 2]), 3)))


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("rotary", [True, False])
def test_decoder_cached_equals_full_and_is_causal(norm_first, rotary):
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=16, norm_first=norm_first, rotary=rotary)
    x = _x()
    positions = _positions(5)
    full = ops.convert_to_numpy(block(x, positions=positions, self_attention_mask=causal_mask(positions, positions)))
    changed = x.copy()
    changed[:, 3:] += 1.0
    later = ops.convert_to_numpy(
        block(changed, positions=positions, self_attention_mask=causal_mask(positions, positions))
    )
    np.testing.assert_allclose(full[:, :3], later[:, :3], atol=1e-6)
    cache = (init_cache(2, 2, 7, 4), init_cache(2, 2, 7, 4))
    slots = _positions(7)
    steps = []
    for i in range(5):
        pos = np.full((2, 1), i, "int32")
        out, cache = block(x[:, i : i + 1], positions=pos, self_attention_mask=causal_mask(pos, slots), cache=cache)
        steps.append(ops.convert_to_numpy(out))
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)


def test_encoder_is_bidirectional_but_ignores_padding():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    x = _x()
    mask = padding_mask(np.array([5, 3]), 5)
    before = ops.convert_to_numpy(block(x, attention_mask=mask))
    changed = x.copy()
    changed[:, 4] = _x(seed=3)[:, 4]
    after = ops.convert_to_numpy(block(changed, attention_mask=mask))
    assert not np.allclose(before[0, 0], after[0, 0])  # row 0 sees its last token
    np.testing.assert_allclose(before[1, :3], after[1, :3], atol=1e-6)  # row 1's padding is hidden


def test_decoder_without_encoder_output_raises():
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=16, cross_attention=True)
    with pytest.raises(ValueError, match="encoder_output"):
        block(_x())


def test_hidden_not_divisible_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        TransformerEncoderBlock(num_heads=3, intermediate_dim=16)(_x())
