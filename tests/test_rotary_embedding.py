"""Tests for tfzoo.layers.rotary_embedding.RotaryEmbedding."""

import keras
import numpy as np
import pytest

from export_checks import check_portable
from layer_checks import check_config_round_trip, check_keras_save_reload
from tfzoo.layers.rotary_embedding import RotaryEmbedding


def _reference(x, positions, max_wavelength=10000.0):
    """Half-split RoPE in float64: channel i pairs with i + D/2, angle pos / w^(2i/D)."""
    x = np.asarray(x, np.float64)
    half = x.shape[-1] // 2
    angle = np.asarray(positions, np.float64)[:, None, :, None] / max_wavelength ** (2.0 * np.arange(half) / (2 * half))
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * np.cos(angle) - x2 * np.sin(angle), x2 * np.cos(angle) + x1 * np.sin(angle)], -1)


def _normal(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_config_round_trip_non_default():
    layer = RotaryEmbedding(max_wavelength=500.0, name="rope")
    assert check_config_round_trip(layer).max_wavelength == 500.0


def test_keras_save_reload(tmp_path):
    layer = RotaryEmbedding(max_wavelength=50.0)
    x = _normal((2, 3, 5, 8))
    positions = np.array([[0, 1, 2, 3, 4], [7, 8, 9, 10, 11]], np.int32)
    check_keras_save_reload(layer, [x, positions], tmp_path)


@pytest.mark.parametrize("max_wavelength", [10000.0, 77.0])
def test_matches_numpy_reference(max_wavelength):
    x = _normal((2, 3, 6, 16))
    positions = np.array([[0, 1, 2, 3, 4, 5], [100, 7, 8, 9, 1000, 3]], np.int32)
    out = np.asarray(RotaryEmbedding(max_wavelength=max_wavelength)(x, positions))
    np.testing.assert_allclose(out, _reference(x, positions, max_wavelength), atol=2e-4)
    # Position 0 leaves vectors alone; rotations keep norms.
    np.testing.assert_allclose(out[0, :, 0], x[0, :, 0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)


def test_positions_broadcast_over_batch():
    x = _normal((3, 2, 4, 8))
    positions = np.array([[5, 6, 7, 8]], np.int32)
    out = np.asarray(RotaryEmbedding()(x, positions))
    np.testing.assert_allclose(out, _reference(x, np.repeat(positions, 3, axis=0)), atol=1e-5)


def test_dot_product_depends_only_on_relative_position():
    rotary = RotaryEmbedding()
    q = np.broadcast_to(_normal((1, 1, 1, 32), seed=1), (1, 1, 64, 32))
    k = np.broadcast_to(_normal((1, 1, 1, 32), seed=2), (1, 1, 64, 32))
    positions = np.arange(64, dtype=np.int32)[None, :]
    rq = np.asarray(rotary(q, positions), np.float64)[0, 0]  # (T, D): q rotated at every position m
    rk = np.asarray(rotary(k, positions), np.float64)[0, 0]  # (T, D): k rotated at every position n
    scores = rq @ rk.T  # (m, n)
    for delta in (-20, -3, 0, 1, 7, 40):
        diagonal = np.diagonal(scores, offset=-delta)  # all (m, n) with m - n = delta
        np.testing.assert_allclose(diagonal, diagonal[0], atol=1e-4)
    # ... and it does depend on m - n (the check above is not trivially true).
    assert abs(scores[10, 10] - scores[10, 3]) > 1e-2
    assert abs(scores[3, 10] - scores[10, 3]) > 1e-2


def test_output_in_compute_dtype():
    layer = RotaryEmbedding(dtype="mixed_float16")
    x = keras.ops.cast(_normal((1, 2, 3, 4)), "float16")
    out = layer(x, np.array([[0, 1, 2]], np.int32))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_wavelength must be > 1"):
        RotaryEmbedding(max_wavelength=0.5)
    with pytest.raises(ValueError, match="last axis of x must be a known even size, got 5"):
        RotaryEmbedding()(_normal((1, 1, 2, 5)), np.array([[0, 1]], np.int32))


def test_portable():
    layer = RotaryEmbedding()
    x = _normal((2, 4, 6, 16))
    positions = np.array([[0, 1, 2, 3, 4, 5], [9, 10, 11, 500, 501, 502]], np.int32)
    check_portable(lambda x, positions: layer(x, positions), {"x": x, "positions": positions})
