"""Captioner (ViT encoder + cached decoder): caching, save/reload, config, gradients, portability, bad images."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from export_checks import check_portable
from layer_checks import check_config_round_trip, check_gradients_flow
from tfzoo.decoding.generate import generate
from tfzoo.models.captioner import Captioner, ImageShapeError

VOCAB = 23
IMAGE_SIZE = 8


def _model(**kwargs):
    args = dict(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=24,
        max_sequence_length=10,
        image_size=IMAGE_SIZE,
        patch_size=4,
    )
    args.update(kwargs)
    model = Captioner(**args)
    model.build()
    return model


IMAGES = np.random.default_rng(0).random((2, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
TARGET = np.array([[3, 4, 5, 6, 7, 8], [3, 9, 10, 11, 12, 13]], "int32")


def _logits(model, images=IMAGES, target=TARGET):
    return ops.convert_to_numpy(model({"image": images, "target_ids": target}))


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_cached_decoding_equals_teacher_forcing(position):
    model = _model(position=position)
    expected = _logits(model)
    cache = model.init_decoding_cache(IMAGES, 8)
    # Prefill three tokens, then one token per step, as `generate` does.
    logits, cache = model.decoding_step(TARGET[:, :3], np.tile(np.arange(3, dtype="int32"), (2, 1)), cache)
    steps = [ops.convert_to_numpy(logits)]
    for t in range(3, TARGET.shape[1]):
        logits, cache = model.decoding_step(TARGET[:, t : t + 1], np.full((2, 1), t, "int32"), cache)
        steps.append(ops.convert_to_numpy(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), expected, atol=1e-5)


def test_logits_depend_on_the_image_and_are_causal():
    model = _model()
    base = _logits(model)
    swapped = _logits(model, images=IMAGES[::-1].copy(), target=TARGET[::-1].copy())
    np.testing.assert_allclose(swapped[::-1], base, atol=1e-5)  # batch rows are independent
    other = _logits(model, images=IMAGES[::-1].copy())
    assert np.abs(base - other).max() > 1e-3  # and the image matters
    changed = TARGET.copy()
    changed[:, 4] = 2
    after = _logits(model, target=changed)
    np.testing.assert_allclose(after[:, :4], base[:, :4], atol=1e-6)  # earlier positions never see later tokens
    assert np.abs(after[:, 4:] - base[:, 4:]).max() > 1e-4


def test_greedy_generate_matches_argmax_of_teacher_forcing():
    model = _model()
    cache = model.init_decoding_cache(IMAGES, 8)
    out = generate(model.decoding_step, cache, TARGET[:, :1], np.ones(2, "int32"), max_length=8, max_new_tokens=7)
    sequences = out["sequences"].numpy()
    # Re-derive every greedy choice from the uncached model on the generated prefix.
    logits = _logits(model, target=sequences)
    np.testing.assert_array_equal(np.argmax(logits[:, :-1], axis=-1), sequences[:, 1:])


def test_config_round_trip_with_non_default_arguments():
    model = _model(
        image_size=12,
        patch_size=3,
        num_channels=1,
        position="sinusoidal",
        dropout=0.1,
        activation="relu",
        norm_first=False,
        tie_embeddings=False,
        layer_norm_epsilon=1e-6,
        pad_id=2,
        max_sequence_length=7,
    )
    config = model.get_config()
    clone = Captioner.from_config(config)
    assert clone.get_config() == config
    assert (clone.image_size, clone.patch_size, clone.num_channels, clone.num_patches) == (12, 3, 1, 16)
    check_config_round_trip(model)


def test_save_and_reload_give_identical_logits(tmp_path):
    model = _model(position="sinusoidal", tie_embeddings=False)
    expected = _logits(model)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(reloaded, Captioner)
    np.testing.assert_array_equal(_logits(reloaded), expected)


def test_gradients_reach_every_weight():
    model = _model(tie_embeddings=False)
    check_gradients_flow(model, lambda: model({"image": IMAGES, "target_ids": TARGET}, training=True))


@pytest.mark.parametrize(
    "shape, got",
    [((2, 8, 8, 1), "(2, 8, 8, 1)"), ((2, 16, 16, 3), "(2, 16, 16, 3)"), ((8, 8, 3), "(8, 8, 3)")],
)
def test_wrong_image_shape_is_a_clear_error(shape, got):
    model = _model()
    with pytest.raises(ImageShapeError) as error:
        model({"image": np.zeros(shape, "float32"), "target_ids": TARGET})
    message = str(error.value)
    assert "\n" not in message
    assert "(batch, 8, 8, 3)" in message and got in message
    with pytest.raises(ValueError, match=r"expected images of shape \(batch, 8, 8, 3\)"):
        model.encode(np.zeros(shape, "float32"))


def test_uint8_images_are_scaled_to_unit_range():
    model = _model()
    pixels = (IMAGES * 255).round().astype("uint8")
    np.testing.assert_allclose(_logits(model, images=pixels), _logits(model, images=pixels / 255.0), atol=1e-5)


def test_attention_scores_match_the_forward_pass_and_rows_sum_to_one():
    model = _model()
    scores = model.attention_scores(IMAGES, TARGET)
    np.testing.assert_allclose(ops.convert_to_numpy(scores["logits"]), _logits(model), atol=1e-5)
    assert len(scores["self"]) == len(scores["cross"]) == 2
    for weights in scores["self"]:
        weights = ops.convert_to_numpy(weights)
        assert weights.shape == (2, 2, 6, 6)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        assert np.all(np.triu(weights[0, 0], k=1) == 0)  # causal
    for weights in scores["cross"]:
        weights = ops.convert_to_numpy(weights)
        assert weights.shape == (2, 2, 6, model.num_patches)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)


def test_encode_and_one_decode_step_are_portable():
    model = _model(num_layers=1)  # one layer of each kind: the converters' time grows with the graph

    def encode_and_decode(image, token_ids, positions):
        cache = model.init_decoding_cache(image, 6)
        logits, cache = model.decoding_step(token_ids, positions, cache)
        return {"logits": logits, "present_k_0": cache["self"][0][0], "present_v_0": cache["self"][0][1]}

    inputs = {"image": IMAGES, "token_ids": TARGET[:, :3], "positions": np.tile(np.arange(3, dtype="int32"), (2, 1))}
    outputs = check_portable(encode_and_decode, inputs, atol=1e-4)
    np.testing.assert_allclose(outputs["logits"], _logits(model)[:, :3], atol=1e-5)
    assert np.all(outputs["present_k_0"][:, :, 3:] == 0)  # slots past the prefill stay empty
    assert np.abs(outputs["present_k_0"][:, :, :3]).min() > 0
