"""TokenEmbedding: lookup with clamped ids, tied and untied output projection."""

import numpy as np
import pytest
from keras import ops

from layer_checks import check_config_round_trip, check_gradients_flow, check_keras_save_reload
from tfzoo.layers.token_embedding import TokenEmbedding


def test_config_round_trip_with_non_default_arguments():
    layer = TokenEmbedding(
        vocabulary_size=11, hidden_dim=6, tie_weights=False, embeddings_initializer="zeros", output_initializer="ones"
    )
    clone = check_config_round_trip(layer)
    assert not clone.tie_weights and clone.vocabulary_size == 11


@pytest.mark.parametrize("tie", [True, False])
def test_lookup_clamps_and_reverse_projects(tie):
    layer = TokenEmbedding(vocabulary_size=7, hidden_dim=4, tie_weights=tie)
    x = layer(np.array([[-3, 2, 50]], "int32"))
    table = ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_array_equal(ops.convert_to_numpy(x)[0], table[[0, 2, 6]])
    logits = ops.convert_to_numpy(layer(x, reverse=True))
    kernel = table.T if tie else ops.convert_to_numpy(layer.output_kernel)
    assert logits.dtype == np.float32 and logits.shape == (1, 3, 7)
    np.testing.assert_allclose(logits, ops.convert_to_numpy(x) @ kernel, atol=1e-6)
    assert len(layer.trainable_weights) == (1 if tie else 2)


@pytest.mark.parametrize("tie", [True, False])
def test_keras_save_reload_and_gradients(tie, tmp_path):
    layer = TokenEmbedding(vocabulary_size=9, hidden_dim=4, tie_weights=tie)
    ids = np.array([[1, 2, 3]], "int32")
    check_keras_save_reload(layer, [ids], tmp_path, call=lambda lyr, xs: lyr(lyr(xs[0]), reverse=True))
    check_gradients_flow(layer, lambda: layer(layer(ids), reverse=True))
