"""Embedded shapes captioning task: determinism, captions re-derived from pixels, disjoint splits, bad specs."""

import numpy as np
import pytest

from tfzoo.data.errors import DatasetError
from tfzoo.data.shapes_data import load_shapes_data

PALETTE = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 230), "yellow": (230, 210, 40)}
COLOUR_ORDER = ["red", "green", "blue", "yellow"]
SHAPE_ORDER = ["square", "circle", "triangle"]
ROWS, COLUMNS = ["top", "middle", "bottom"], ["left", "center", "right"]


def _components(mask):
    """4-connected components of a bool image, as lists of (row, column)."""
    seen = np.zeros_like(mask)
    found = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        stack, pixels = [start], []
        seen[start] = True
        while stack:
            r, c = stack.pop()
            pixels.append((r, c))
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= nr < mask.shape[0] and 0 <= nc < mask.shape[1] and mask[nr, nc] and not seen[nr, nc]:
                    seen[nr, nc] = True
                    stack.append((nr, nc))
        found.append(pixels)
    return found


def _objects_from_pixels(image):
    """(colour, shape, row, column) of every object, read from the pixels alone."""
    size = image.shape[0]
    cell = size // 3
    margin = (size - 3 * cell) // 2
    painted = image.any(-1)
    objects, covered = [], 0
    for colour, rgb in PALETTE.items():
        for pixels in _components(np.all(image == rgb, axis=-1)):
            covered += len(pixels)
            rows, cols = np.array(pixels).T
            box = np.zeros((rows.max() - rows.min() + 1, cols.max() - cols.min() + 1), bool)
            box[rows - rows.min(), cols - cols.min()] = True
            if box.all():
                shape = "square"
            elif box[0].sum() < box[-1].sum():
                shape = "triangle"  # narrow top, wide bottom
            else:
                assert box[0].sum() == box[-1].sum(), "a circle is symmetric"
                shape = "circle"
            row = (rows.mean() - margin) // cell
            column = (cols.mean() - margin) // cell
            objects.append((colour, shape, int(row), int(column)))
    assert covered == painted.sum(), "every painted pixel has a palette colour"
    return objects


def _caption_from_objects(objects):
    if len(objects) == 1:
        colour, shape, row, column = objects[0]
        if (row, column) == (1, 1):
            where = "center"
        elif row == 1:
            where = COLUMNS[column]
        elif column == 1:
            where = ROWS[row]
        else:
            where = f"{ROWS[row]} {COLUMNS[column]}"
        return f"a {colour} {shape} at the {where}"
    if len({o[:2] for o in objects}) == 1:
        number = {2: "two", 3: "three"}[len(objects)]
        return f"{number} {objects[0][0]} {objects[0][1]}s"
    assert len(objects) == 2
    a, b = sorted(objects, key=lambda o: (COLOUR_ORDER.index(o[0]), SHAPE_ORDER.index(o[1])))
    if a[3] < b[3]:
        relation = "left of"
    elif a[3] > b[3]:
        relation = "right of"
    else:
        relation = "above" if a[2] < b[2] else "below"
    return f"a {a[0]} {a[1]} {relation} a {b[0]} {b[1]}"


@pytest.fixture(scope="module")
def task():
    return load_shapes_data("shapes", num_train=600, num_validation=200, seed=3)


def test_same_seed_same_data_and_another_seed_differs(task):
    again = load_shapes_data("shapes", num_train=600, num_validation=200, seed=3)
    np.testing.assert_array_equal(again.train_images, task.train_images)
    np.testing.assert_array_equal(again.validation_images, task.validation_images)
    assert again.train_captions == task.train_captions and again.validation_captions == task.validation_captions
    other = load_shapes_data("shapes", num_train=600, num_validation=200, seed=4)
    assert other.train_captions != task.train_captions


def test_shapes_and_dtype(task):
    assert task.train_images.shape == (600, 32, 32, 3) and task.train_images.dtype == np.uint8
    assert task.validation_images.shape == (200, 32, 32, 3)
    assert len(task.train_captions) == len(task.train_objects) == 600
    small = load_shapes_data("shapes:20", num_train=5, num_validation=5)
    assert small.train_images.shape == (5, 20, 20, 3) and small.image_size == 20


@pytest.mark.parametrize("spec", ["shapes", "shapes:18", "shapes:47"])
def test_every_caption_matches_what_the_pixels_show(spec):
    task = load_shapes_data(spec, num_train=300, num_validation=50, seed=1)
    for images, captions, scenes in (
        (task.train_images, task.train_captions, task.train_objects),
        (task.validation_images, task.validation_captions, task.validation_objects),
    ):
        for image, caption, scene in zip(images, captions, scenes):
            objects = _objects_from_pixels(image)
            assert sorted(objects) == sorted(scene), caption
            assert _caption_from_objects(objects) == caption


def test_captions_cover_every_kind_of_scene(task):
    captions = task.train_captions
    assert any(" at the " in c for c in captions)
    assert any(c.startswith(("two ", "three ")) for c in captions)
    for relation in ("left of", "right of", "above", "below"):
        assert any(f" {relation} " in c for c in captions), relation
    for word in ("red", "green", "blue", "yellow", "square", "circle", "triangle"):
        assert any(word in c for c in captions), word
    assert len(set(captions)) > 200


def test_validation_images_never_occur_in_training(task):
    train = {image.tobytes() for image in task.train_images}
    assert not any(image.tobytes() in train for image in task.validation_images)
    assert len({image.tobytes() for image in task.validation_images}) > 190


@pytest.mark.parametrize(
    "spec, kwargs, match",
    [
        ("circles", {}, "shapes spec"),
        ("shapes:17", {}, r"image size must be an integer in \[18, 256\]"),
        ("shapes:abc", {}, "image size"),
        ("shapes", {"num_train": 0}, "num_train must be a positive integer"),
        ("shapes", {"num_validation": -1}, "num_validation"),
    ],
)
def test_bad_specs_are_clear_errors(spec, kwargs, match):
    with pytest.raises(DatasetError, match=match):
        load_shapes_data(spec, **kwargs)
