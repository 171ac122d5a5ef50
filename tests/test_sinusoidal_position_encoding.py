"""Tests for tfzoo.layers.sinusoidal_position_encoding.SinusoidalPositionEncoding."""

import keras
import numpy as np
import pytest

from export_checks import check_portable
from layer_checks import check_config_round_trip, check_keras_save_reload
from tfzoo.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding


def _reference(positions, hidden_dim, max_wavelength=10000.0):
    """PE(pos, 2i) = sin(pos / w^(2i/d)), PE(pos, 2i+1) = cos(pos / w^(2i/d)), in float64."""
    pos = np.asarray(positions, np.float64)[..., None]
    i = np.arange(hidden_dim // 2)
    angle = pos / max_wavelength ** (2.0 * i / hidden_dim)
    out = np.empty((*np.shape(positions), hidden_dim))
    out[..., 0::2] = np.sin(angle)
    out[..., 1::2] = np.cos(angle)
    return out


def test_config_round_trip_non_default():
    layer = SinusoidalPositionEncoding(hidden_dim=12, max_wavelength=500.0, name="sine")
    clone = check_config_round_trip(layer)
    assert (clone.hidden_dim, clone.max_wavelength) == (12, 500.0)


def test_keras_save_reload(tmp_path):
    layer = SinusoidalPositionEncoding(hidden_dim=6, max_wavelength=100.0)
    check_keras_save_reload(layer, [np.array([[0, 1, 2, 7], [5, 3, 900, 4]], np.int32)], tmp_path)


def test_has_no_weights_and_shape():
    layer = SinusoidalPositionEncoding(hidden_dim=8)
    out = layer(np.zeros((3, 5), np.int32))
    assert out.shape == (3, 5, 8)
    assert layer.weights == []


@pytest.mark.parametrize("hidden_dim, max_wavelength", [(64, 10000.0), (6, 10000.0), (512, 10000.0), (16, 37.5)])
def test_matches_formula_exactly(hidden_dim, max_wavelength):
    rng = np.random.default_rng(0)
    positions = np.concatenate([np.arange(2048), rng.integers(2048, 65535, size=2047), [65535]])
    layer = SinusoidalPositionEncoding(hidden_dim=hidden_dim, max_wavelength=max_wavelength)
    out = np.asarray(layer(positions.reshape(2, -1).astype(np.int32)))
    expected = _reference(positions.reshape(2, -1), hidden_dim, max_wavelength)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_interleaves_sin_and_cos():
    out = np.asarray(SinusoidalPositionEncoding(hidden_dim=4)(np.array([[0, 1]], np.int32)))
    np.testing.assert_allclose(out[0, 0], [0.0, 1.0, 0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(out[0, 1], [np.sin(1.0), np.cos(1.0), np.sin(0.01), np.cos(0.01)], atol=1e-7)


def test_output_in_compute_dtype():
    layer = SinusoidalPositionEncoding(hidden_dim=8, dtype="mixed_float16")
    out = layer(np.array([[0, 1, 3000]], np.int32))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(np.asarray(out, np.float64), _reference([[0, 1, 3000]], 8), atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_dim": 7}, "hidden_dim must be a positive even int, got 7"),
        ({"hidden_dim": 0}, "hidden_dim must be a positive even int"),
        ({"hidden_dim": 8, "max_wavelength": 1.0}, "max_wavelength must be > 1"),
        ({"hidden_dim": 8, "max_wavelength": -5.0}, "max_wavelength must be > 1"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SinusoidalPositionEncoding(**kwargs)


def test_portable():
    layer = SinusoidalPositionEncoding(hidden_dim=32)
    positions = np.array([[0, 1, 2, 3, 4, 5], [17, 250, 1023, 4096, 30000, 65535]], np.int32)
    eager = check_portable(lambda positions: layer(positions), {"positions": positions}, atol=1e-6)
    np.testing.assert_allclose(eager["output_0"], _reference(positions, 32), atol=1e-6)
