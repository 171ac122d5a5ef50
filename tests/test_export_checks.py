"""The portability check itself must be able to fail, or the layer tests prove nothing."""

import numpy as np
import pytest
import tensorflow as tf

from export_checks import check_portable


def test_passes_a_portable_graph_with_two_outputs():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    out = check_portable(lambda x: {"double": x * 2.0, "total": tf.reduce_sum(x, -1)}, {"x": x})
    np.testing.assert_array_equal(out["double"], x * 2)


def test_rejects_an_op_tflite_builtins_lack():
    x = np.ones((2, 3), "float32")
    with pytest.raises(AssertionError, match="Igamma"):
        check_portable(lambda x: tf.math.igamma(x, x), {"x": x})


def test_rejects_an_op_onnx_lacks():
    x = np.ones((2, 3), "float32")
    with pytest.raises(AssertionError, match="Bitcast"):
        check_portable(lambda x: tf.bitcast(x, tf.int32), {"x": x})
