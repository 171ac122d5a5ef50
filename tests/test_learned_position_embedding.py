"""Tests for tfzoo.layers.learned_position_embedding.LearnedPositionEmbedding."""

import keras
import numpy as np
import pytest

from export_checks import check_portable
from layer_checks import check_config_round_trip, check_gradients_flow, check_keras_save_reload
from tfzoo.layers.learned_position_embedding import LearnedPositionEmbedding


def test_config_round_trip_non_default():
    layer = LearnedPositionEmbedding(
        max_sequence_length=7,
        hidden_dim=5,
        initializer=keras.initializers.RandomNormal(stddev=0.02),
        name="wpe",
    )
    clone = check_config_round_trip(layer)
    assert (clone.max_sequence_length, clone.hidden_dim) == (7, 5)
    assert isinstance(clone.initializer, keras.initializers.RandomNormal)
    assert clone.initializer.stddev == 0.02


def test_keras_save_reload(tmp_path):
    layer = LearnedPositionEmbedding(max_sequence_length=6, hidden_dim=4, initializer="he_uniform")
    check_keras_save_reload(layer, [np.array([[0, 1, 2, 9], [5, 3, -1, 4]], np.int32)], tmp_path)


def test_gradients_flow():
    layer = LearnedPositionEmbedding(max_sequence_length=6, hidden_dim=4)
    positions = np.array([[0, 1, 2, 3, 4, 5]], np.int32)
    check_gradients_flow(layer, lambda: layer(positions))


def test_looks_up_rows_and_clamps_out_of_range_positions():
    layer = LearnedPositionEmbedding(max_sequence_length=5, hidden_dim=3)
    positions = np.array([[0, 1, 4, 5, 100], [-1, -7, 2, 3, 2**30]], np.int32)
    out = np.asarray(layer(positions))
    table = np.asarray(layer.embeddings)
    np.testing.assert_array_equal(out, table[np.clip(positions, 0, 4)])
    assert out.shape == (2, 5, 3)


def test_output_in_compute_dtype():
    layer = LearnedPositionEmbedding(max_sequence_length=4, hidden_dim=2, dtype="mixed_float16")
    out = layer(np.array([[0, 3]], np.int32))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert keras.backend.standardize_dtype(layer.embeddings.dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_sequence_length": 0, "hidden_dim": 4}, "max_sequence_length must be a positive int, got 0"),
        ({"max_sequence_length": 8, "hidden_dim": -1}, "hidden_dim must be a positive int, got -1"),
        ({"max_sequence_length": 8.5, "hidden_dim": 4}, "max_sequence_length must be a positive int"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LearnedPositionEmbedding(**kwargs)


def test_portable_with_out_of_range_positions():
    # TFLite does not bounds-check gathers: out-of-range positions prove the clamp is in the graph.
    layer = LearnedPositionEmbedding(max_sequence_length=8, hidden_dim=16)
    positions = np.array([[0, 3, 7, 8, 1000], [-1, -100, 2, 5, 6]], np.int32)
    eager = check_portable(lambda positions: layer(positions), {"positions": positions})
    np.testing.assert_array_equal(eager["output_0"], np.asarray(layer.embeddings)[np.clip(positions, 0, 7)])
