"""Transformer (encoder-decoder): caching, padding, causality, save/reload, decoding, portability."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from layer_checks import check_config_round_trip, check_gradients_flow
from tfzoo.decoding.generate import generate
from tfzoo.models.transformer import POSITIONS, Transformer

VOCAB = 29


def _model(position="sinusoidal", **kwargs):
    args = dict(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=24,
        max_sequence_length=12,
        position=position,
    )
    args.update(kwargs)
    model = Transformer(**args)
    model.build()
    return model


def _tokens(shape, seed=0):
    return np.random.default_rng(seed).integers(1, VOCAB, size=shape).astype("int32")


def _logits(model, source, target, lengths=None):
    inputs = {"source_ids": source, "target_ids": target}
    if lengths is not None:
        inputs["source_lengths"] = lengths
    return ops.convert_to_numpy(model(inputs))


SOURCE = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]], "int32")
LENGTHS = np.array([3, 5], "int32")
TARGET = np.array([[3, 4, 5, 6, 7, 8], [3, 9, 10, 11, 12, 13]], "int32")


def test_config_round_trip_with_non_default_arguments():
    model = _model(
        position="relative",
        dropout=0.1,
        activation="swiglu",
        norm_first=False,
        tie_embeddings=False,
        layer_norm_epsilon=1e-6,
        pad_id=3,
    )
    config = model.get_config()
    assert Transformer.from_config(config).get_config() == config
    check_config_round_trip(model)


@pytest.mark.parametrize("position", POSITIONS)
def test_keras_save_reload_gives_identical_logits(position, tmp_path):
    model = _model(position, tie_embeddings=position == "sinusoidal", norm_first=position == "relative")
    expected = _logits(model, SOURCE, TARGET)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(_logits(reloaded, SOURCE, TARGET), expected)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("norm_first", [True, False])
def test_one_token_at_a_time_equals_teacher_forcing(position, norm_first):
    model = _model(position, norm_first=norm_first)
    full = _logits(model, SOURCE, TARGET, LENGTHS)
    memory = model.encode(SOURCE, LENGTHS)
    source_mask = model.compute_source_mask(SOURCE, LENGTHS)
    cross = model.cross_attention_cache(memory)
    cache = model.init_cache(2, 8)
    steps = []
    for i in range(TARGET.shape[1]):
        position = np.full((2, 1), i, "int32")
        logits, cache = model.call_with_cache(TARGET[:, i : i + 1], position, cache, cross, source_mask)
        steps.append(ops.convert_to_numpy(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)
    # A two-token prefill then single steps, with the memory itself instead of its k/v: same logits.
    cache = model.init_cache(2, 8)
    prefill, cache = model.call_with_cache(
        TARGET[:, :2], np.tile(np.arange(2, dtype="int32"), (2, 1)), cache, memory, source_mask
    )
    step, _ = model.call_with_cache(TARGET[:, 2:3], np.full((2, 1), 2, "int32"), cache, memory, source_mask)
    np.testing.assert_allclose(ops.convert_to_numpy(prefill), full[:, :2], atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(step), full[:, 2:3], atol=1e-5)


def test_rows_at_different_positions_match_rows_alone():
    model = _model("relative")
    source_mask = model.compute_source_mask(SOURCE, LENGTHS)
    cross = model.cross_attention_cache(model.encode(SOURCE, LENGTHS))
    cache = model.init_cache(2, 8)
    positions = np.tile(np.arange(4, dtype="int32"), (2, 1))
    _, cache = model.call_with_cache(TARGET[:, :4], positions, cache, cross, source_mask)
    # Row 0 continues at position 2 (overwriting its slots 2, 3), row 1 at position 4.
    step_positions = np.array([[2], [4]], "int32")
    tokens = np.array([[20], [21]], "int32")
    logits, _ = model.call_with_cache(tokens, step_positions, cache, cross, source_mask)
    for row, position in enumerate((2, 4)):
        alone = np.concatenate([TARGET[row, :position], tokens[row]])[None]
        ref = _logits(model, SOURCE[row : row + 1], alone, LENGTHS[row : row + 1])
        np.testing.assert_allclose(ops.convert_to_numpy(logits)[row, 0], ref[0, -1], atol=1e-5)


@pytest.mark.parametrize("position", POSITIONS)
def test_source_padding_never_changes_outputs(position):
    model = _model(position)
    reference = _logits(model, SOURCE, TARGET, LENGTHS)
    # Wider padding filled with arbitrary tokens: with explicit lengths they are never attended.
    wide = np.concatenate([SOURCE, _tokens((2, 4), seed=3)], axis=1)
    wide[0, 3:5] = _tokens((1, 2), seed=4)
    np.testing.assert_allclose(_logits(model, wide, TARGET, LENGTHS), reference, atol=1e-5)
    # Without lengths, pad ids mark the padding; more of them changes nothing.
    padded = np.pad(SOURCE, ((0, 0), (0, 3)))
    np.testing.assert_allclose(_logits(model, padded, TARGET), reference, atol=1e-5)
    # Each row alone (no padding at all) gives the same logits as in the batch.
    alone = _logits(model, SOURCE[:1, :3], TARGET[:1])
    np.testing.assert_allclose(alone, reference[:1], atol=1e-5)
    # And the real source tokens do matter.
    changed = SOURCE.copy()
    changed[0, 1] = 20
    assert not np.allclose(_logits(model, changed, TARGET, LENGTHS)[0], reference[0], atol=1e-4)


@pytest.mark.parametrize("position", POSITIONS)
def test_future_target_tokens_never_change_past_logits(position):
    model = _model(position)
    before = _logits(model, SOURCE, TARGET)
    changed = TARGET.copy()
    changed[:, 4:] = _tokens((2, 2), seed=1)
    after = _logits(model, SOURCE, changed)
    np.testing.assert_allclose(before[:, :4], after[:, :4], atol=1e-6)
    assert not np.allclose(before[:, 4:], after[:, 4:])


@pytest.mark.parametrize("tie", [True, False])
def test_gradients_flow_to_every_weight(tie):
    model = _model("relative", tie_embeddings=tie, dropout=0.1)
    check_gradients_flow(
        model, lambda: model({"source_ids": SOURCE, "target_ids": TARGET, "source_lengths": LENGTHS}, training=True)
    )


def test_tied_embeddings_share_one_table():
    tied, untied = _model(tie_embeddings=True), _model(tie_embeddings=False)
    assert len(untied.trainable_weights) == len(tied.trainable_weights) + 1
    embeddings = [w for w in tied.trainable_weights if "embeddings" in w.path]
    assert len(embeddings) == 1  # one table for source, target and output


def test_out_of_range_token_ids_are_clamped():
    model = _model()
    source = np.array([[-4, 7, VOCAB + 3]], "int32")
    target = np.array([[VOCAB + 9, -1]], "int32")
    reference = _logits(
        model, np.array([[0, 7, VOCAB - 1]], "int32"), np.array([[VOCAB - 1, 0]], "int32"), np.array([3])
    )
    np.testing.assert_array_equal(_logits(model, source, target, np.array([3])), reference)


def test_greedy_generate_matches_uncached_argmax_loop():
    model = _model("relative")
    max_length = 7
    start = np.full((2, 1), 3, "int32")
    cache = model.init_decoding_cache(SOURCE, LENGTHS, max_length)
    out = generate(model.decoding_step, cache, start, np.ones(2, "int32"), max_length=max_length, max_new_tokens=6)
    tokens = start
    for _ in range(6):
        logits = _logits(model, SOURCE, tokens, LENGTHS)
        tokens = np.concatenate([tokens, logits[:, -1].argmax(-1)[:, None].astype("int32")], axis=1)
    np.testing.assert_array_equal(out["sequences"].numpy(), tokens)


def test_beam_search_scores_match_teacher_forcing():
    """Beams reorder the self- and cross-attention caches; the best beam's score must be its true log-prob."""
    model = _model()
    max_length = 6
    cache = model.init_decoding_cache(SOURCE, LENGTHS, max_length)
    start = np.full((2, 1), 3, "int32")
    out = generate(
        model.decoding_step,
        cache,
        start,
        np.ones(2, "int32"),
        max_length=max_length,
        strategy="beam",
        beam_size=3,
        length_penalty=0.0,
        max_new_tokens=5,
    )
    sequences = out["sequences"].numpy()
    assert sequences.shape == (2, max_length) and (sequences[:, 0] == 3).all()
    log_probs = tf.nn.log_softmax(_logits(model, SOURCE, sequences[:, :-1], LENGTHS)).numpy()
    expected = np.take_along_axis(log_probs, sequences[:, 1:, None], axis=-1)[..., 0].sum(-1)
    np.testing.assert_allclose(out["scores"].numpy(), expected, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_dim=15), "divisible"),
        (dict(position="rotary"), "unknown position"),
        (dict(num_layers=0), "num_layers"),
        (dict(pad_id=VOCAB), "pad_id"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model(**kwargs)


def test_bad_inputs_raise_clear_errors():
    model = _model(max_sequence_length=5)
    with pytest.raises(ValueError, match="source length 6 exceeds the model's max_sequence_length 5"):
        model.encode(_tokens((1, 6)))
    with pytest.raises(ValueError, match="target length 6 exceeds"):
        model({"source_ids": _tokens((1, 2)), "target_ids": _tokens((1, 6))})
    with pytest.raises(ValueError, match="cache length 9 exceeds"):
        model.init_cache(1, 9)
    with pytest.raises(ValueError, match="inputs must be a dict with 'source_ids' and 'target_ids'"):
        model({"source_ids": _tokens((1, 2))})


def test_encode_and_decode_step_are_portable():
    """One graph (to convert once): encode, project the memory for cross-attention, one cached step."""
    from export_checks import check_portable

    model = _model("relative", num_layers=1)
    max_length = 6
    rng = np.random.default_rng(0)

    def encode_and_step(source_ids, source_lengths, token_ids, positions, past_k_0, past_v_0):
        memory = model.encode(source_ids, source_lengths)
        cross = model.cross_attention_cache(memory)
        source_mask = model.compute_source_mask(source_ids, source_lengths)
        logits, ((k, v),) = model.call_with_cache(token_ids, positions, ((past_k_0, past_v_0),), cross, source_mask)
        return {"memory": memory, "cross_k_0": cross[0][0], "logits": logits, "present_k_0": k, "present_v_0": v}

    check_portable(
        encode_and_step,
        {
            "source_ids": SOURCE,
            "source_lengths": LENGTHS,
            "token_ids": np.array([[3], [4]], "int32"),
            "positions": np.array([[2], [5]], "int32"),
            "past_k_0": rng.normal(size=(2, 2, max_length, 8)).astype("float32"),
            "past_v_0": rng.normal(size=(2, 2, max_length, 8)).astype("float32"),
        },
        atol=1e-4,
    )
