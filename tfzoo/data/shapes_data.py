"""Embedded captioning task: small RGB images of coloured shapes, with captions that describe them.

Spec `shapes` (32x32 images) or `shapes:SIZE` (e.g. `shapes:24`). Images are
generated with numpy from a seed, identically on every machine; nothing is
downloaded. The image is split into a 3x3 grid of cells; each object (a
square, circle or triangle in red, green, blue or yellow, 60-80% of a cell
wide, at a random offset inside its cell) sits in its own cell, on black.
Three kinds of scene, equally likely:

- one object, described with its cell: "a red square at the top left",
  "a blue circle at the center", "a green triangle at the bottom";
- two different objects, the one first in (colour, shape) order described
  relative to the other: "a red circle left of a blue square" (columns differ:
  "left of"/"right of"; same column: "above"/"below");
- two or three identical objects, counted: "three yellow triangles".

Validation images are drawn from a separate random stream and any that equals
a training image is dropped, so the two splits share no image.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfzoo.data.errors import DatasetError

SPEC_PREFIX = "shapes"
DEFAULT_SPEC = "shapes"
DEFAULT_IMAGE_SIZE = 32
MIN_IMAGE_SIZE = 18  # a 6-pixel cell holds a 4-pixel shape (a 3-pixel "circle" is a square) and a gap
MAX_IMAGE_SIZE = 256
GRID = 3
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 230),
    "yellow": (230, 210, 40),
}
SHAPES = ("square", "circle", "triangle")
REGIONS = (
    ("top left", "top", "top right"),
    ("left", "center", "right"),
    ("bottom left", "bottom", "bottom right"),
)
COUNTS = {2: "two", 3: "three"}


@dataclasses.dataclass(frozen=True)
class ShapesData:
    """Train and validation images with their captions.

    Args:
        name: str. The spec the task was loaded from.
        image_size: int. Height and width of every image.
        train_images: uint8 array (N, image_size, image_size, 3).
        train_captions: tuple of str, aligned with `train_images`.
        train_objects: tuple of tuples of `(colour, shape, row, column)`: what
            each training image holds (grid cells, row 0 at the top).
        validation_images: uint8 array (M, image_size, image_size, 3).
        validation_captions: tuple of str.
        validation_objects: tuple of tuples of `(colour, shape, row, column)`.
    """

    name: str
    image_size: int
    train_images: np.ndarray
    train_captions: tuple[str, ...]
    train_objects: tuple[tuple[tuple[str, str, int, int], ...], ...]
    validation_images: np.ndarray
    validation_captions: tuple[str, ...]
    validation_objects: tuple[tuple[tuple[str, str, int, int], ...], ...]

    def tokenizer_text(self) -> str:
        """Every training caption, one per line: the text to learn a vocabulary from."""
        return "\n".join(self.train_captions)

    def __repr__(self) -> str:
        return (
            f"ShapesData(name={self.name!r}, image_size={self.image_size}, "
            f"train={len(self.train_captions)} images, validation={len(self.validation_captions)} images)"
        )


def shape_mask(shape: str, size: int) -> np.ndarray:
    """bool (size, size): the pixels of a filled square, circle or upward triangle.

    Example:
    >>> shape_mask("triangle", 4).astype(int)
    array([[0, 1, 1, 0],
           [0, 1, 1, 0],
           [1, 1, 1, 1],
           [1, 1, 1, 1]])
    """
    rows, columns = np.mgrid[0:size, 0:size]
    center = (size - 1) / 2
    if shape == "square":
        return np.ones((size, size), bool)
    if shape == "circle":
        return (rows - center) ** 2 + (columns - center) ** 2 <= (size / 2) ** 2
    if shape == "triangle":  # apex at the top: the half-width grows with the row
        return np.abs(columns - center) <= (rows + 1) / 2
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}.")


def describe(objects) -> str:
    """The caption of a scene given as `(colour, shape, row, column)` tuples (see the module doc).

    Example:
    >>> describe([("red", "circle", 1, 0), ("blue", "square", 0, 0)])
    'a red circle below a blue square'
    """
    objects = list(objects)
    if len(objects) == 1:
        colour, shape, row, column = objects[0]
        return f"a {colour} {shape} at the {REGIONS[row][column]}"
    kinds = {(colour, shape) for colour, shape, _, _ in objects}
    if len(kinds) == 1:
        colour, shape = kinds.pop()
        return f"{COUNTS[len(objects)]} {colour} {shape}s"
    if len(objects) != 2:
        raise ValueError(f"a scene holds one object, two different ones, or 2-3 identical ones; got {objects}")
    order = {name: i for i, name in enumerate(COLOURS)}
    first, second = sorted(objects, key=lambda o: (order[o[0]], SHAPES.index(o[1])))
    if first[3] != second[3]:
        relation = "left of" if first[3] < second[3] else "right of"
    else:
        relation = "above" if first[2] < second[2] else "below"
    return f"a {first[0]} {first[1]} {relation} a {second[0]} {second[1]}"


def _sample_objects(rng: np.random.Generator) -> list[tuple[str, str, int, int]]:
    colours, cells = list(COLOURS), rng.permutation(GRID * GRID)
    kind = rng.integers(3)
    if kind == 0:
        picks = [(rng.integers(len(colours)), rng.integers(len(SHAPES)))]
    elif kind == 1:
        first, second = rng.choice(len(colours) * len(SHAPES), size=2, replace=False)
        picks = [divmod(int(first), len(SHAPES)), divmod(int(second), len(SHAPES))]
    else:
        pick = (rng.integers(len(colours)), rng.integers(len(SHAPES)))
        picks = [pick] * int(rng.integers(2, 4))
    return [
        (colours[int(c)], SHAPES[int(s)], int(cell) // GRID, int(cell) % GRID) for (c, s), cell in zip(picks, cells)
    ]


def render(objects, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (image_size, image_size, 3): the objects on black, each of random size and offset in its cell."""
    cell = image_size // GRID
    margin = (image_size - cell * GRID) // 2
    smallest, largest = max(4, round(0.6 * cell)), cell - 2
    image = np.zeros((image_size, image_size, 3), np.uint8)
    for colour, shape, row, column in objects:
        size = int(rng.integers(smallest, largest + 1))
        # The shape stays inside [start, start + cell - 2]: one empty pixel before the next cell.
        top = margin + row * cell + int(rng.integers(0, cell - size))
        left = margin + column * cell + int(rng.integers(0, cell - size))
        image[top : top + size, left : left + size][shape_mask(shape, size)] = COLOURS[colour]
    return image


def _generate(count: int, image_size: int, rng: np.random.Generator, exclude: set[bytes]):
    images, captions, scenes = [], [], []
    while len(images) < count:
        objects = _sample_objects(rng)
        image = render(objects, image_size, rng)
        if image.tobytes() in exclude:
            continue
        images.append(image)
        captions.append(describe(objects))
        scenes.append(tuple(objects))
    return np.stack(images) if images else np.zeros((0, image_size, image_size, 3), np.uint8), captions, scenes


def _parse_spec(spec: str) -> int:
    if not isinstance(spec, str) or not (spec == SPEC_PREFIX or spec.startswith(SPEC_PREFIX + ":")):
        raise DatasetError(f"shapes spec must be 'shapes' or 'shapes:SIZE' (e.g. 'shapes:32'), got {spec!r}")
    if spec == SPEC_PREFIX:
        return DEFAULT_IMAGE_SIZE
    size = spec[len(SPEC_PREFIX) + 1 :]
    if not size.isdigit() or not MIN_IMAGE_SIZE <= int(size) <= MAX_IMAGE_SIZE:
        raise DatasetError(f"{spec}: image size must be an integer in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}]")
    return int(size)


def load_shapes_data(
    spec: str = DEFAULT_SPEC,
    *,
    num_train: int = 20000,
    num_validation: int = 1000,
    seed: int = 0,
) -> ShapesData:
    """Generates the captioned shape images named by `spec`.

    Args:
        spec: str. "shapes" (32x32) or "shapes:SIZE". Defaults to "shapes".
        num_train: int. Training images. Defaults to 20000.
        num_validation: int. Held-out images, none equal to a training image.
            Defaults to 1000.
        seed: int. Same seed, same images and captions. Defaults to 0.

    Raises:
        DatasetError: a malformed spec or a non-positive split size.

    Example:
    >>> task = load_shapes_data("shapes", num_train=4, num_validation=2)
    >>> task.train_images.shape, task.train_images.dtype.name
    ((4, 32, 32, 3), 'uint8')
    >>> task.train_captions[0]
    'a blue square left of a yellow triangle'
    """
    image_size = _parse_spec(spec)
    for name, value in (("num_train", num_train), ("num_validation", num_validation)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DatasetError(f"{spec}: {name} must be a positive integer, got {value!r}")
    train = _generate(num_train, image_size, np.random.default_rng([seed, 0]), set())
    seen = {image.tobytes() for image in train[0]}
    validation = _generate(num_validation, image_size, np.random.default_rng([seed, 1]), seen)
    return ShapesData(
        name=spec,
        image_size=image_size,
        train_images=train[0],
        train_captions=tuple(train[1]),
        train_objects=tuple(train[2]),
        validation_images=validation[0],
        validation_captions=tuple(validation[1]),
        validation_objects=tuple(validation[2]),
    )
