"""The `video` kind: clip-to-text models (`VideoCaptioner`).

The captioner kind with another input: everything it owns (signatures,
`encode`, the cached step over `cross_k_<i>`/`cross_v_<i>`, the serving
signature, parity and the quantized loss check) is inherited; this module
says what differs. Conditioning input: `video` float32 [B, T, H, W, C] in
[0, 1] (runtimes also take uint8 and scale it by 1/255); its shape is fixed by
the signature and reported as `video_shape` [T, H, W, C]. The N encoder
tokens are the clip's space-time tubelets. `serving_default` takes `video`.
Parity and the quantized loss check run on held-out clips of the run's
`video:shapes` task. The generate CLI reads `--video=PATH`: a `.npy` of
uint8 [T, H, W, 3] or an animated `.gif` (via Pillow).
"""

from __future__ import annotations

import os

import numpy as np

from tfzoo.kinds.base import ModelKindError
from tfzoo.kinds.captioner import CaptionerKind
from tfzoo.runtime_inputs import check_video

VIDEO_FILES = ".npy (uint8 [frames, height, width, 3]) or an animated .gif"


def load_video(path: str, num_frames: int | None = None) -> np.ndarray:
    """One clip (T, H, W, C) from a `.npy` or animated `.gif` file; ValueError names what is wrong.

    A `.gif` shows each frame for its duration, and writers (Pillow among them)
    merge repeated frames into one shown longer; with `num_frames` it is
    sampled at that many evenly spaced instants of its running time (the
    middle of each 1/num_frames slice), which restores a clip written at one
    frame rate. A `.npy` is returned as stored.

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "clip.npy")
    >>> np.save(path, np.zeros((8, 4, 4, 3), np.uint8))
    >>> load_video(path).shape
    (8, 4, 4, 3)
    """
    if not os.path.isfile(path):
        raise ValueError(f"video {path} does not exist")
    if path.endswith(".npy"):
        try:
            video = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read {path} as a {VIDEO_FILES}: {error}") from None
        if not isinstance(video, np.ndarray) or not (
            video.dtype == np.uint8 or np.issubdtype(video.dtype, np.floating)
        ):
            raise ValueError(f"{path} holds {getattr(video, 'dtype', type(video))} values; expected uint8 frames")
    elif path.endswith(".gif"):
        try:
            from PIL import Image, ImageSequence  # noqa: PLC0415 (pillow comes with matplotlib)

            with Image.open(path) as picture:
                frames = [
                    (np.asarray(frame.convert("RGB")), int(frame.info.get("duration", 0) or 0))
                    for frame in ImageSequence.Iterator(picture)
                ]
        except (ImportError, OSError, ValueError) as error:
            raise ValueError(f"cannot read {path} as an animated .gif: {error}") from None
        durations = np.array([max(duration, 1) for _, duration in frames], np.float64)  # no duration: equal
        video = np.stack([frame for frame, _ in frames])
        if num_frames is not None:
            ends = np.cumsum(durations)
            instants = (np.arange(num_frames) + 0.5) * ends[-1] / num_frames
            video = video[np.searchsorted(ends, instants, side="right").clip(max=len(frames) - 1)]
    else:
        raise ValueError(f"--video must be a {VIDEO_FILES} file, got {path}")
    if video.ndim != 4:
        raise ValueError(f"{path} has shape {video.shape}; expected frames [frames, height, width, channels]")
    return video


class VideoKind(CaptionerKind):
    """Clip-to-text models (`VideoCaptioner`): `video` float32 (B, T, H, W, C) in [0, 1]."""

    name = "video"
    model_classes = ("VideoCaptioner",)
    condition_names = ("video",)
    description = "a video-captioning export"
    input_axes = "frames, height, width, channels"

    def video_shape(self, model_config) -> tuple[int, int, int, int]:
        """(frames, height, width, channels) of the model's clips."""
        return (int(model_config.get("num_frames", 8)), *self.image_shape(model_config))

    def report_fields(self, model_config, tokenizer):
        return {**super().report_fields(model_config, tokenizer), "video_shape": list(self.video_shape(model_config))}

    # ---- runtime side ----

    def check_input(self, info, value):
        return check_video(value, info["video_shape"])

    def cli_conditions(self, prompt, image_path, tokenizer, max_source_length, video_path=None, num_frames=None):
        """`{"video": (1, T, H, W, C)}` from `--video` (a `.gif` sampled at the model's `num_frames`)."""
        if video_path is None:
            raise ValueError(f"this model is a video captioner: pass --video=PATH, a {VIDEO_FILES}")
        if prompt or image_path:
            raise ValueError("a video captioner takes --video, not --prompt or --image")
        return {"video": load_video(video_path, num_frames)[None]}

    # ---- parity ----

    def held_out(self, run, count):
        """`count` held-out clips of the run's `video:shapes` task (time-swapped pairs) and their captions."""
        from tfzoo.data.video_data import load_video_data  # noqa: PLC0415 (imported only when needed)

        dataset = str(run.config.get("dataset", "video:shapes"))
        try:
            task = load_video_data(
                dataset,
                num_train=1,  # the validation clips do not depend on the training ones
                num_validation=count,
                num_frames=int(run.config.get("num_frames", 8)),
                seed=int(run.config.get("seed", 0)),
            )
        except ValueError as error:
            raise ModelKindError(f"cannot load the task {dataset!r} for parity inputs: {error}") from None
        expected = self.video_shape(run.model_config)
        if task.validation_videos.shape[1:] != expected:
            raise ModelKindError(
                f"{dataset} makes clips of shape {task.validation_videos.shape[1:]} but the model takes {expected}"
            )
        return task.validation_videos[:count], list(task.validation_captions[:count])


KIND = VideoKind
