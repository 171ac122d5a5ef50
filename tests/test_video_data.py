"""The `video:shapes` clips: deterministic, captions that say what the frames show, in their order.

Each caption is checked against the pixels: the named object's colour is
absent before it appears (and after it disappears), is replaced by the new
colour when it turns, and its centre moves the named way when it moves, all
after the first event's frames. Validation holds out whole event combinations
and comes in time-swapped pairs.
"""

import numpy as np
import pytest

from tfzoo.data.errors import DatasetError
from tfzoo.data.shapes_data import COLOURS
from tfzoo.data.video_data import DIRECTIONS, describe, is_held_out, load_video_data


@pytest.fixture(scope="module")
def task():
    return load_video_data("video:shapes", num_train=300, num_validation=40, seed=3)


def _pixels(frame: np.ndarray, colour: str) -> np.ndarray:
    return np.all(frame == np.array(COLOURS[colour], np.uint8), axis=-1)


def _first_change(video: np.ndarray, colour: str) -> int | None:
    """The first frame whose `colour` pixels differ from the previous frame's (None: they never change)."""
    masks = [_pixels(frame, colour) for frame in video]
    return next((t for t in range(1, len(masks)) if not np.array_equal(masks[t], masks[t - 1])), None)


def _colours_apart(story) -> bool:
    """Whether every colour in the story belongs to one object at a time (so pixels of a colour are one object's)."""
    colours = [half[0] for half in story] + [half[2][1] for half in story if half[2][0] == "turns"]
    return len(set(colours)) == len(colours)


def _check_story(video: np.ndarray, story) -> list[int]:
    """Asserts that the frames show each event of `story`; returns the frame each event starts."""
    starts = []
    for colour, _shape, (verb, argument) in story:
        counts = np.array([_pixels(frame, colour).sum() for frame in video])
        if verb == "appears":
            start = int(np.argmax(counts > 0))
            assert start > 0 and counts[:start].sum() == 0 and np.all(counts[start:] > 0), (story, counts)
        elif verb == "disappears":
            start = int(np.argmax(counts == 0))
            assert start > 0 and np.all(counts[:start] > 0) and counts[start:].sum() == 0, (story, counts)
        elif verb == "turns":
            start = int(np.argmax(counts == 0))
            assert start > 0 and np.all(counts[:start] > 0) and counts[start:].sum() == 0, (story, counts)
            assert _pixels(video[start], argument).sum() > 0
        else:
            start = _first_change(video, colour)
            assert start is not None, story
            rows, columns = np.nonzero(_pixels(video[0], colour))
            end_rows, end_columns = np.nonzero(_pixels(video[-1], colour))
            dy, dx = DIRECTIONS[argument]
            moved = (end_rows.mean() - rows.mean(), end_columns.mean() - columns.mean())
            assert moved[0] * dy >= 0 and moved[1] * dx >= 0 and abs(moved[0] * dy + moved[1] * dx) >= 2, (
                story,
                moved,
            )
        starts.append(start)
    return starts


def test_same_seed_same_clips_and_another_seed_others(task):
    again = load_video_data("video:shapes", num_train=300, num_validation=40, seed=3)
    np.testing.assert_array_equal(again.train_videos, task.train_videos)
    assert again.validation_captions == task.validation_captions
    other = load_video_data("video:shapes", num_train=300, num_validation=40, seed=4)
    assert other.train_captions != task.train_captions
    assert task.train_videos.shape == (300, 8, 32, 32, 3) and task.train_videos.dtype == np.uint8
    assert load_video_data("video:shapes:24", num_train=2, num_validation=2).train_videos.shape == (2, 8, 24, 24, 3)


def test_captions_name_the_events_in_the_order_the_frames_show_them(task):
    checked = 0
    for video, story, caption in zip(task.train_videos, task.train_stories, task.train_captions):
        assert caption == describe(story)
        if not _colours_apart(story):
            continue
        checked += 1
        first, second = _check_story(video, story)
        assert first < second, (caption, first, second)  # "then": the first event starts earlier
    assert checked > 100
    assert {story[0][2][0] for story in task.train_stories} == {"moves", "turns", "appears", "disappears"}


def test_validation_holds_out_combinations_in_time_swapped_pairs(task):
    train = set(task.train_captions)
    assert all(is_held_out(s) for s in task.validation_stories)
    assert not any(is_held_out(s) for s in task.train_stories)
    assert not train & set(task.validation_captions)
    for i in range(0, len(task.validation_captions), 2):
        story, swapped = task.validation_stories[i], task.validation_stories[i + 1]
        assert swapped == story[::-1]
        first, second = task.validation_captions[i].split(" then ")
        assert task.validation_captions[i + 1] == f"{second} then {first}"
        a, b = task.validation_videos[i], task.validation_videos[i + 1]
        # The same first and last frames: only the order of the middle frames tells the captions apart.
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[-1], b[-1])
        assert not np.array_equal(a, b)
        if _colours_apart(story):
            _check_story(a, story)
            _check_story(b, swapped)  # the twin shows the swapped order


@pytest.mark.parametrize(
    "spec, options, message",
    [
        ("shapes", {}, "video spec must be"),
        ("video:shapes:8", {}, r"frame size must be an integer in \[16, 128\]"),
        ("video:shapes", {"num_train": 0}, "num_train must be a positive integer"),
        ("video:shapes", {"num_frames": 4}, "num_frames must be an integer >= 6"),
    ],
)
def test_bad_specs_and_sizes_are_one_line_errors(spec, options, message):
    with pytest.raises(DatasetError, match=message):
        load_video_data(spec, **options)
