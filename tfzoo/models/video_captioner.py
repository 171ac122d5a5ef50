"""VideoCaptioner: the Captioner over clips, its encoder embedding space-time tubelets.

Everything but the input is the `Captioner`'s (one owner): the `ViTEncoder`
with `num_frames` and `tubelet_size` (ViViT's tubelet embedding, 2-D patch
positions plus a time embedding, tokens time-major), the cross-attending
decoder, the cached decoding methods. The input key is `video`: uint8 or
float clips (B, num_frames, image_size, image_size, num_channels). A class
of its own so that the model kinds (`tfzoo.kinds.video`) tell it from the
image captioner by its class name, as they tell every model.
"""

from __future__ import annotations

import keras

from tfzoo.models.captioner import Captioner


@keras.saving.register_keras_serializable(package="tfzoo")
class VideoCaptioner(Captioner):
    """Clip-to-text model: tubelet ViT encoder + Transformer decoder with cross-attention.

    `model({"video": (B, T, S, S, C), "target_ids": (B, T_caption)})` returns
    logits (B, T_caption, vocabulary_size) with teacher forcing. A clip of
    another frame count, size or channel count raises `ImageShapeError`.

    Args:
        *args, **kwargs: as for `Captioner` (`image_size` is the frames' height and width).
        num_frames: int. Frames per clip. Defaults to 8.
        tubelet_size: int. Consecutive frames per encoder token; divides `num_frames`. Defaults to 2.

    Example:
    >>> import numpy as np
    >>> model = VideoCaptioner(vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=16,
    ...                        intermediate_dim=32, max_sequence_length=12, image_size=16,
    ...                        num_frames=4, tubelet_size=2)
    >>> inputs = {"video": np.zeros((1, 4, 16, 16, 3), "float32"), "target_ids": np.array([[3, 8, 9]])}
    >>> tuple(model(inputs).shape), model.num_patches  # 2 time slots x 16 patches
    ((1, 3, 30), 32)

    References:
        Arnab et al., "ViViT: A Video Vision Transformer", 2021.
    """

    input_name = "video"

    def __init__(self, *args, num_frames: int = 8, tubelet_size: int = 2, **kwargs):
        super().__init__(*args, num_frames=num_frames, tubelet_size=tubelet_size, **kwargs)
