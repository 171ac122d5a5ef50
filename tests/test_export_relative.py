"""Regression: a Transformer with `position="relative"` exports its steps to TFLite builtins with Keras's logits.

TFLite's converter rejected the `tf.StridedSlice` that `RelativePositionBias`
made of `query_positions[:, :, None]` in the seq2seq `prefill` (dynamic
shapes); the layer now uses `ops.expand_dims`. This converts the `encode`,
`prefill` and `decode` signatures of a tiny relative-position Transformer
(the export module's own input signatures: any batch, any width) with
builtins only and checks their logits against the Keras model's cached step.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from export.export_module import ExportModule
from export.tflite_export import convert_tflite
from tfzoo.models.transformer import Transformer

MAX_SEQUENCE_LENGTH = 12
MAX_LENGTH = 8


def test_relative_position_steps_convert_to_tflite_builtins_with_keras_logits(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(3)
    model = Transformer(
        vocabulary_size=40,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        position="relative",
    )
    model.build()
    module = ExportModule(model, max_length=MAX_LENGTH, strategies=(), eos_ids=(1,))
    assert sorted(module.signature_names) == ["decode", "encode", "prefill"]
    saved = str(tmp_path / "saved_model")
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(module, saved, signatures=module.signatures(), options=options)
    flatbuffer = convert_tflite(saved, ["encode", "prefill", "decode"], "none")  # raises if Flex were needed
    interpreter = Interpreter(model_content=flatbuffer)

    source_ids = np.array([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]], np.int32)
    source_lengths = np.array([5, 3], np.int32)
    context = interpreter.get_signature_runner("encode")(source_ids=source_ids, source_lengths=source_lengths)
    context = {k: v for k, v in context.items() if k.startswith("cross_")}
    tokens = np.array([[1, 14, 15], [1, 16, 17]], np.int32)  # start token and two more: relative offsets 0..2
    positions = np.tile(np.arange(3, dtype=np.int32), (2, 1))
    cache_shape = (2, 2, MAX_LENGTH, 8)
    past = {"past_k_0": np.zeros(cache_shape, np.float32), "past_v_0": np.zeros(cache_shape, np.float32)}
    prefill = interpreter.get_signature_runner("prefill")(
        token_ids=tokens, positions=positions, source_lengths=source_lengths, **past, **context
    )
    step_token, step_position = np.array([[18], [19]], np.int32), np.array([[3], [3]], np.int32)
    present = {"past_k_0": prefill["present_k_0"], "past_v_0": prefill["present_v_0"]}
    decode = interpreter.get_signature_runner("decode")(
        token_ids=step_token, positions=step_position, source_lengths=source_lengths, **present, **context
    )

    # Keras: the model's own cached step on the padded sources (as `tfzoo.decoding` runs it).
    padded = np.pad(source_ids, [[0, 0], [0, MAX_SEQUENCE_LENGTH - source_ids.shape[1]]])
    memory = model.encode(padded, source_lengths)
    cross = model.cross_attention_cache(memory)
    source_mask = np.arange(MAX_SEQUENCE_LENGTH)[None, :] < source_lengths[:, None]
    cache = model.init_cache(2, MAX_LENGTH)
    want, cache = model.call_with_cache(tokens, positions, cache, cross, source_mask)
    np.testing.assert_allclose(prefill["logits"], np.asarray(want), atol=1e-4)
    want, _ = model.call_with_cache(step_token, step_position, cache, cross, source_mask)
    np.testing.assert_allclose(decode["logits"], np.asarray(want), atol=1e-4)
    assert np.ptp(np.asarray(want)) > 0.1  # logits that say something: a wrong bias would show
