"""Checks of the numpy inputs the runtime adapters (`tfzoo.runtimes`) take: prompts, sources, images.

Each raises `RuntimeInputError` with one line naming the problem, before any
runtime runs (TFLite and ONNX Runtime would otherwise fail with a shape
message, or read a clamped value).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfzoo.runtime_errors import RuntimeInputError


def check_prompts(token_ids, lengths) -> tuple[np.ndarray, np.ndarray]:
    """Checks right-padded prompts (B, P) and their lengths (B,) in [1, P]; returns them as int32."""
    token_ids = np.asarray(token_ids)
    lengths = np.asarray(lengths)
    if token_ids.ndim != 2 or not np.issubdtype(token_ids.dtype, np.integer):
        raise RuntimeInputError(f"token_ids must be a 2-D integer array, got {token_ids.dtype} {token_ids.shape}")
    if token_ids.shape[0] == 0 or token_ids.shape[1] == 0:
        raise RuntimeInputError(f"token_ids must have at least one row and one column, got shape {token_ids.shape}")
    if lengths.shape != (token_ids.shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
        raise RuntimeInputError(f"lengths must be {token_ids.shape[0]} integers, got {lengths.dtype} {lengths.shape}")
    if lengths.min() < 1 or lengths.max() > token_ids.shape[1]:
        raise RuntimeInputError(f"lengths must be in [1, {token_ids.shape[1]}], got {lengths.tolist()}")
    return token_ids.astype(np.int32), lengths.astype(np.int32)


def check_sources(source_ids, source_lengths, max_source_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Checks right-padded sources; returns them as int32, cut to `max_source_length` columns.

    Raises:
        RuntimeInputError: bad shapes or lengths, or a source longer than `max_source_length`.
    """
    if source_ids is None or source_lengths is None:
        raise RuntimeInputError("this is an encoder-decoder export: pass source_ids and source_lengths")
    source_ids = np.asarray(source_ids)
    source_lengths = np.asarray(source_lengths)
    if source_ids.ndim != 2 or not np.issubdtype(source_ids.dtype, np.integer) or 0 in source_ids.shape:
        raise RuntimeInputError(
            f"source_ids must be a non-empty 2-D integer array, got {source_ids.dtype} {source_ids.shape}"
        )
    batch, width = source_ids.shape
    if source_lengths.shape != (batch,) or not np.issubdtype(source_lengths.dtype, np.integer):
        raise RuntimeInputError(
            f"source_lengths must be {batch} integers, got {source_lengths.dtype} {source_lengths.shape}"
        )
    if source_lengths.min() < 1 or source_lengths.max() > width:
        raise RuntimeInputError(f"source_lengths must be in [1, {width}], got {source_lengths.tolist()}")
    if source_lengths.max() > max_source_length:
        raise RuntimeInputError(
            f"a source of {int(source_lengths.max())} tokens is longer than the model's "
            f"max_sequence_length={max_source_length}"
        )
    return source_ids[:, :max_source_length].astype(np.int32), source_lengths.astype(np.int32)


def check_image(image, image_shape: Sequence[int]) -> np.ndarray:
    """Checks a batch of images (B, H, W, C); returns float32 in [0, 1] (uint8 is scaled by 1/255).

    Raises:
        RuntimeInputError: no image, or the wrong rank, size, channels or dtype.
    """
    if image is None:
        raise RuntimeInputError("this is an image-captioning export: pass image")
    image = np.asarray(image)
    expected = tuple(int(d) for d in image_shape)
    if image.ndim == 3:
        raise RuntimeInputError(
            f"image must be a batch (batch, {expected[0]}, {expected[1]}, {expected[2]}); got one image of shape "
            f"{image.shape}: add a batch axis"
        )
    if image.ndim != 4 or tuple(image.shape[1:]) != expected or image.shape[0] == 0:
        raise RuntimeInputError(
            f"image must have shape (batch, {expected[0]}, {expected[1]}, {expected[2]}) "
            f"(height, width, channels), got {image.shape}"
        )
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(image.dtype, np.floating):
        raise RuntimeInputError(f"image must be float (values in [0, 1]) or uint8, got {image.dtype}")
    return image.astype(np.float32)


def check_video(video, video_shape: Sequence[int]) -> np.ndarray:
    """Checks a batch of clips (B, T, H, W, C); returns float32 in [0, 1] (uint8 is scaled by 1/255).

    Example:
    >>> check_video(np.zeros((1, 8, 4, 4, 3), np.uint8), (8, 4, 4, 3)).dtype
    dtype('float32')

    Raises:
        RuntimeInputError: no clip, or the wrong rank, frame count, size, channels or dtype.
    """
    if video is None:
        raise RuntimeInputError("this is a video-captioning export: pass video")
    video = np.asarray(video)
    expected = tuple(int(d) for d in video_shape)
    wanted = f"(batch, {', '.join(str(d) for d in expected)}) (frames, height, width, channels)"
    if video.ndim == 4 and tuple(video.shape) == expected:
        raise RuntimeInputError(
            f"video must be a batch {wanted}; got one clip of shape {video.shape}: add a batch axis"
        )
    if video.ndim != 5 or tuple(video.shape[1:]) != expected or video.shape[0] == 0:
        raise RuntimeInputError(f"video must have shape {wanted}, got {video.shape}")
    if video.dtype == np.uint8:
        return video.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(video.dtype, np.floating):
        raise RuntimeInputError(f"video must be float (values in [0, 1]) or uint8, got {video.dtype}")
    return video.astype(np.float32)
