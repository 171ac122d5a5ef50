"""Embedded video-captioning task: short clips of coloured shapes that move, change colour, appear or vanish.

Spec `video:shapes` (8 frames of 32x32 RGB) or `video:shapes:SIZE`. Clips are
generated with numpy from a seed, identically on every machine; nothing is
downloaded. The shapes and colours are those of `tfzoo.data.shapes_data`
(drawn with its `shape_mask`). Every clip holds two different objects
(colour, shape) on black; each does one thing, one after the other:

- moves left, right, up or down (two steps of `SIZE // 8` pixels, on two
  consecutive frames): "a red circle moves left";
- turns another colour from one frame on: "a red circle turns blue";
- appears (absent before that frame): "a blue square appears";
- disappears (absent from that frame on): "a blue square disappears".

The caption names the first event, then the second, by the objects' starting
colours: "a red circle moves left then a blue square appears". The first
event happens in the first half of the clip and ends before the second starts,
so the caption depends on the order of the frames.

Validation holds out combinations: a clip is in the validation split when
the unordered pair of its two (object, event) halves hashes to a held-out
bucket, so no validation caption, and neither order of its two events, is
ever a training caption. Validation clips come in pairs: clip `2i + 1` is clip
`2i` with its two events swapped in time (same objects, same places), so
`pair_exact_match` (both captions of a pair right) measures whether a model
reads the order of the frames.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from tfzoo.data.errors import DatasetError
from tfzoo.data.shapes_data import COLOURS, SHAPES, shape_mask

SPEC_PREFIX = "video:shapes"
DEFAULT_SPEC = "video:shapes"
DEFAULT_IMAGE_SIZE = 32
MIN_IMAGE_SIZE = 16  # two 4-pixel objects with room to move
MAX_IMAGE_SIZE = 128
NUM_FRAMES = 8
MOVE_STEPS = 2  # a move changes the position on this many consecutive frames
DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
HOLDOUT_BUCKETS = 10  # one bucket in ten of the (object, event) pairs is held out for validation

# An event: ("moves", direction), ("turns", colour), ("appears", "") or ("disappears", "").
Event = tuple[str, str]
# What happens in a clip: per object (colour, shape, event), in the order of the events.
Story = tuple[tuple[str, str, Event], tuple[str, str, Event]]


@dataclasses.dataclass(frozen=True)
class VideoData:
    """Train and validation clips with their captions.

    Args:
        name: str. The spec the task was loaded from.
        image_size: int. Height and width of every frame.
        num_frames: int. Frames per clip.
        train_videos: uint8 array (N, num_frames, image_size, image_size, 3).
        train_captions: tuple of str, aligned with `train_videos`.
        train_stories: tuple of `Story`: per clip the two objects with their events, in time order.
        validation_videos: uint8 array (M, num_frames, image_size, image_size, 3), M even:
            clip 2i + 1 is clip 2i with its events swapped in time.
        validation_captions: tuple of str.
        validation_stories: tuple of `Story`.
    """

    name: str
    image_size: int
    num_frames: int
    train_videos: np.ndarray
    train_captions: tuple[str, ...]
    train_stories: tuple[Story, ...]
    validation_videos: np.ndarray
    validation_captions: tuple[str, ...]
    validation_stories: tuple[Story, ...]

    def tokenizer_text(self) -> str:
        """Every training caption, one per line: the text to learn a vocabulary from."""
        return "\n".join(self.train_captions)

    def __repr__(self) -> str:
        return (
            f"VideoData(name={self.name!r}, {self.num_frames} frames of {self.image_size}x{self.image_size}, "
            f"train={len(self.train_captions)} clips, validation={len(self.validation_captions)} clips)"
        )


def event_phrase(colour: str, shape: str, event: Event) -> str:
    """The words of one event: "a red circle moves left", "a blue square turns green", ...

    Example:
    >>> event_phrase("red", "circle", ("turns", "blue"))
    'a red circle turns blue'
    """
    verb, argument = event
    if verb == "moves":
        return f"a {colour} {shape} moves {argument}"
    if verb == "turns":
        return f"a {colour} {shape} turns {argument}"
    if verb in ("appears", "disappears"):
        return f"a {colour} {shape} {verb}"
    raise ValueError(f"unknown event {event!r}")


def describe(story: Story) -> str:
    """The caption of a clip: its two events in time order.

    Example:
    >>> describe((("red", "circle", ("moves", "left")), ("blue", "square", ("appears", ""))))
    'a red circle moves left then a blue square appears'
    """
    first, second = story
    return f"{event_phrase(*first)} then {event_phrase(*second)}"


def is_held_out(story: Story) -> bool:
    """Whether a story's unordered pair of (object, event) halves is in the validation buckets.

    Example:
    >>> story = (("red", "circle", ("moves", "left")), ("blue", "square", ("appears", "")))
    >>> is_held_out(story) == is_held_out(story[::-1])
    True
    """
    key = "|".join(sorted(event_phrase(*half) for half in story))
    return zlib.crc32(key.encode("utf-8")) % HOLDOUT_BUCKETS == 0


def _events(colour: str) -> list[Event]:
    others = [("turns", c) for c in COLOURS if c != colour]
    return [("moves", d) for d in DIRECTIONS] + others + [("appears", ""), ("disappears", "")]


def _sample_story(rng: np.random.Generator) -> Story:
    kinds = [(c, s) for c in COLOURS for s in SHAPES]
    first, second = rng.choice(len(kinds), size=2, replace=False)
    halves = []
    for index in (first, second):
        colour, shape = kinds[int(index)]
        events = _events(colour)
        halves.append((colour, shape, events[int(rng.integers(len(events)))]))
    return (halves[0], halves[1])


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where and when: per object its size, top-left corner and the frame its event starts."""

    sizes: tuple[int, int]
    corners: tuple[tuple[int, int], tuple[int, int]]
    starts: tuple[int, int]


def _sample_layout(story: Story, image_size: int, num_frames: int, rng: np.random.Generator) -> _Layout:
    """Sizes, places and event frames with the objects apart in every frame and every move inside the frame."""
    step = max(1, image_size // 8)
    first_start = int(rng.integers(1, num_frames // 2 - MOVE_STEPS + 2))
    second_start = int(rng.integers(first_start + MOVE_STEPS, num_frames - MOVE_STEPS + 1))
    starts = (first_start, second_start)
    smallest, largest = max(4, image_size // 4), max(4, image_size // 3)  # 8-10 pixels in 32x32 frames
    for _ in range(1000):
        sizes = tuple(int(rng.integers(smallest, largest + 1)) for _ in story)
        corners = []
        for (_, _, (verb, argument)), size in zip(story, sizes):
            dy, dx = DIRECTIONS[argument] if verb == "moves" else (0, 0)
            travel = step * MOVE_STEPS
            low_y, high_y = max(0, -dy * travel), image_size - size - max(0, dy * travel)
            low_x, high_x = max(0, -dx * travel), image_size - size - max(0, dx * travel)
            corners.append((int(rng.integers(low_y, high_y + 1)), int(rng.integers(low_x, high_x + 1))))
        layout = _Layout(sizes, (corners[0], corners[1]), starts)
        boxes = [_boxes(half, layout, i, image_size, num_frames) for i, half in enumerate(story)]
        gap = 1
        if all(
            a[0] + a[2] + gap <= b[0]
            or b[0] + b[2] + gap <= a[0]
            or a[1] + a[2] + gap <= b[1]
            or b[1] + b[2] + gap <= a[1]
            for a, b in zip(boxes[0], boxes[1])
        ):
            return layout
    raise ValueError(f"cannot place two objects apart in {image_size}x{image_size} frames")


def _boxes(half, layout: _Layout, index: int, image_size: int, num_frames: int) -> list[tuple[int, int, int]]:
    """(top, left, size) of one object in every frame."""
    (_, _, (verb, argument)), size = half, layout.sizes[index]
    (top, left), start = layout.corners[index], layout.starts[index]
    dy, dx = DIRECTIONS[argument] if verb == "moves" else (0, 0)
    step = max(1, image_size // 8)
    boxes = []
    for frame in range(num_frames):
        moved = step * min(max(frame - start + 1, 0), MOVE_STEPS)
        boxes.append((top + dy * moved, left + dx * moved, size))
    return boxes


def render(story: Story, layout: _Layout, image_size: int, num_frames: int) -> np.ndarray:
    """uint8 (num_frames, image_size, image_size, 3): the story's two objects on black, frame by frame."""
    video = np.zeros((num_frames, image_size, image_size, 3), np.uint8)
    for index, half in enumerate(story):
        colour, shape, (verb, argument) = half
        start = layout.starts[index]
        mask = shape_mask(shape, layout.sizes[index])
        for frame, (top, left, size) in enumerate(_boxes(half, layout, index, image_size, num_frames)):
            if (verb == "appears" and frame < start) or (verb == "disappears" and frame >= start):
                continue
            now = argument if verb == "turns" and frame >= start else colour
            video[frame, top : top + size, left : left + size][mask] = COLOURS[now]
    return video


def _generate(count: int, image_size: int, num_frames: int, rng: np.random.Generator, held_out: bool, pairs: bool):
    videos, captions, stories = [], [], []
    while len(videos) < count:
        story = _sample_story(rng)
        if is_held_out(story) != held_out:
            continue
        layout = _sample_layout(story, image_size, num_frames, rng)
        versions = [(story, layout)]
        if pairs:  # the same objects in the same places, the events swapped in time
            swapped = _Layout(layout.sizes[::-1], layout.corners[::-1], layout.starts)
            versions.append((story[::-1], swapped))
        for one_story, one_layout in versions:
            videos.append(render(one_story, one_layout, image_size, num_frames))
            captions.append(describe(one_story))
            stories.append(one_story)
    shape = (0, num_frames, image_size, image_size, 3)
    return (np.stack(videos) if videos else np.zeros(shape, np.uint8)), captions, stories


def parse_spec(spec: str) -> int:
    """The frame size named by `video:shapes` (32) or `video:shapes:SIZE`; DatasetError otherwise.

    Example:
    >>> parse_spec("video:shapes:24")
    24
    """
    if not isinstance(spec, str) or not (spec == SPEC_PREFIX or spec.startswith(SPEC_PREFIX + ":")):
        raise DatasetError(
            f"video spec must be 'video:shapes' or 'video:shapes:SIZE' (e.g. 'video:shapes:32'), got {spec!r}"
        )
    if spec == SPEC_PREFIX:
        return DEFAULT_IMAGE_SIZE
    size = spec[len(SPEC_PREFIX) + 1 :]
    if not size.isdigit() or not MIN_IMAGE_SIZE <= int(size) <= MAX_IMAGE_SIZE:
        raise DatasetError(f"{spec}: frame size must be an integer in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}]")
    return int(size)


def load_video_data(
    spec: str = DEFAULT_SPEC,
    *,
    num_train: int = 20000,
    num_validation: int = 1000,
    num_frames: int = NUM_FRAMES,
    seed: int = 0,
) -> VideoData:
    """Generates the captioned shape clips named by `spec`.

    Args:
        spec: str. "video:shapes" (32x32 frames) or "video:shapes:SIZE". Defaults to "video:shapes".
        num_train: int. Training clips. Defaults to 20000.
        num_validation: int. Held-out clips (rounded up to an even number: swapped pairs), of held-out
            combinations only. Defaults to 1000.
        num_frames: int. Frames per clip, at least 6. Defaults to 8.
        seed: int. Same seed, same clips and captions. Defaults to 0.

    Raises:
        DatasetError: a malformed spec, a non-positive split size or too few frames.

    Example:
    >>> task = load_video_data("video:shapes", num_train=4, num_validation=2)
    >>> task.train_videos.shape, task.train_videos.dtype.name
    ((4, 8, 32, 32, 3), 'uint8')
    >>> task.validation_captions[0].split(" then ")[::-1] == task.validation_captions[1].split(" then ")
    True
    """
    image_size = parse_spec(spec)
    for name, value in (("num_train", num_train), ("num_validation", num_validation)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DatasetError(f"{spec}: {name} must be a positive integer, got {value!r}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 6:
        raise DatasetError(f"{spec}: num_frames must be an integer >= 6, got {num_frames!r}")
    train = _generate(num_train, image_size, num_frames, np.random.default_rng([seed, 0]), False, False)
    even = num_validation + num_validation % 2
    validation = _generate(even, image_size, num_frames, np.random.default_rng([seed, 1]), True, True)
    return VideoData(
        name=spec,
        image_size=image_size,
        num_frames=num_frames,
        train_videos=train[0],
        train_captions=tuple(train[1]),
        train_stories=tuple(train[2]),
        validation_videos=validation[0],
        validation_captions=tuple(validation[1]),
        validation_stories=tuple(validation[2]),
    )
