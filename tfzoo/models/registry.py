"""The one place that maps model names in configs to model builders and task kinds.

`MODELS[name]` builds the model from the run config, the tokenizer's
vocabulary size and the task's options (`num_classes` for classifiers);
`TASK_KINDS[name]` says how `train_and_evaluate` feeds and judges it
(`lm`, `seq2seq`, `classification`, `masked_lm`, `caption`, `asr`, `tts`, see `tfzoo.training.tasks`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from tfzoo.models.bert import BertClassifier, BertEncoder, BertMaskedLM
from tfzoo.models.captioner import Captioner
from tfzoo.models.gpt import GPT
from tfzoo.models.speech_recognizer import SpeechRecognizer
from tfzoo.models.speech_synthesizer import SpeechSynthesizer
from tfzoo.models.transformer import Transformer
from tfzoo.models.video_captioner import VideoCaptioner


def _shared_arguments(config: Any, vocabulary_size: int, *, activation: str, norm_first: bool) -> dict:
    """The constructor arguments every model takes, read from the run config.

    `activation` and `norm_first` are the model family's defaults, used when the
    config has no such field (a resolved config always has them).
    """
    return {
        "vocabulary_size": vocabulary_size,
        "num_layers": config.num_layers,
        "num_heads": config.num_heads,
        "hidden_dim": config.hidden_dim,
        "intermediate_dim": config.intermediate_dim,
        "max_sequence_length": config.get("max_sequence_length", None) or config.seq_len,
        "position": config.position,
        "dropout": config.dropout,
        "activation": config.get("activation", activation),
        "norm_first": config.get("norm_first", norm_first),
        "layer_norm_epsilon": config.get("layer_norm_epsilon", 1e-5),
        "use_bias": config.get("use_bias", True),
    }


def _build_gpt(config: Any, vocabulary_size: int) -> keras.Model:
    return GPT(
        **_shared_arguments(config, vocabulary_size, activation="gelu", norm_first=True),
        tie_embeddings=config.get("tie_embeddings", True),
    )


def _build_transformer(config: Any, vocabulary_size: int) -> keras.Model:
    # T5's options (configs/t5_finetune.py); a config without them builds the 2017 Transformer.
    head_dim, start_id = config.get("head_dim", 0), config.get("decoder_start_id", -1)
    return Transformer(
        **_shared_arguments(config, vocabulary_size, activation="relu", norm_first=True),
        tie_embeddings=config.get("tie_embeddings", True),
        norm=config.get("norm", "layer"),
        scale_queries=config.get("scale_queries", True),
        head_dim=head_dim or None,  # 0: hidden_dim // num_heads
        scale_embeddings=config.get("scale_embeddings", True),
        scale_decoder_output=config.get("scale_decoder_output", False),
        decoder_start_id=None if start_id is None or start_id < 0 else start_id,  # -1: the tokenizer's
    )


def _build_bert_encoder(config: Any, vocabulary_size: int) -> BertEncoder:
    return BertEncoder(
        **_shared_arguments(config, vocabulary_size, activation="gelu", norm_first=False),
        num_segments=config.get("num_segments", 2),
    )


def _build_bert_classifier(config: Any, vocabulary_size: int, num_classes: int = 2) -> keras.Model:
    backbone = _build_bert_encoder(config, vocabulary_size)
    return BertClassifier(
        backbone, num_classes=num_classes, dropout=config.dropout, pooling=config.get("pooling", "cls")
    )


def _build_bert_masked_lm(config: Any, vocabulary_size: int) -> keras.Model:
    return BertMaskedLM(_build_bert_encoder(config, vocabulary_size))


def _build_captioner(config: Any, vocabulary_size: int, image_size: int = 32, num_channels: int = 3) -> keras.Model:
    return Captioner(
        **_shared_arguments(config, vocabulary_size, activation="gelu", norm_first=True),
        tie_embeddings=config.get("tie_embeddings", True),
        image_size=image_size,
        patch_size=config.get("patch_size", 4),
        num_channels=num_channels,
    )


def _build_speech_recognizer(config: Any, vocabulary_size: int, max_audio_samples: int = 48000) -> keras.Model:
    return SpeechRecognizer(
        **_shared_arguments(config, vocabulary_size, activation="gelu", norm_first=True),
        tie_embeddings=config.get("tie_embeddings", True),
        max_audio_samples=max_audio_samples,
        num_mel_bins=config.get("num_mel_bins", 80),
        freq_masks=config.get("freq_masks", 0),
        freq_mask_bins=config.get("freq_mask_bins", 12),
        time_masks=config.get("time_masks", 0),
        time_mask_frames=config.get("time_mask_frames", 10),
    )


def _build_speech_synthesizer(
    config: Any, vocabulary_size: int, max_frames: int = 300, mel_mean: float = 0.0, mel_std: float = 1.0
) -> keras.Model:
    return SpeechSynthesizer(
        **_shared_arguments(config, vocabulary_size, activation="gelu", norm_first=True),
        max_frames=max_frames,
        num_mel_bins=config.get("num_mel_bins", 80),
        mel_mean=mel_mean,
        mel_std=mel_std,
        duration_filters=config.get("duration_filters", 256),
        duration_loss_weight=config.get("duration_loss_weight", 1.0),
        griffin_lim_iterations=config.get("griffin_lim_iterations", 32),
        frames_per_step=config.get("frames_per_step", 1),
    )


def _build_video_captioner(
    config: Any, vocabulary_size: int, image_size: int, num_channels: int, num_frames: int
) -> keras.Model:
    return VideoCaptioner(
        **_shared_arguments(config, vocabulary_size, activation="gelu", norm_first=True),
        tie_embeddings=config.get("tie_embeddings", True),
        image_size=image_size,
        patch_size=config.get("patch_size", 4),
        num_channels=num_channels,
        num_frames=num_frames,
        tubelet_size=config.get("tubelet_size", 2),
    )


MODELS: dict[str, Callable[..., keras.Model]] = {
    "gpt": _build_gpt,
    "transformer": _build_transformer,
    "bert_classifier": _build_bert_classifier,
    "bert_mlm": _build_bert_masked_lm,
    "captioner": _build_captioner,
    "speech_recognizer": _build_speech_recognizer,
    "video_captioner": _build_video_captioner,
    "speech_synthesizer": _build_speech_synthesizer,
}
TASK_KINDS: dict[str, str] = {
    "gpt": "lm",
    "transformer": "seq2seq",
    "bert_classifier": "classification",
    "bert_mlm": "masked_lm",
    "captioner": "caption",
    "speech_recognizer": "asr",
    "video_captioner": "caption",
    "speech_synthesizer": "tts",
}


def build_model(config: Any, vocabulary_size: int, **options) -> keras.Model:
    """Builds the model named by `config.model` for a tokenizer of `vocabulary_size` ids.

    `options` are the task's extra builder arguments (`num_classes=` for "bert_classifier",
    `image_size=` and `num_channels=` for "captioner").

    Example:
    >>> import ml_collections
    >>> config = ml_collections.ConfigDict(dict(model="gpt", num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, seq_len=16, position="learned", dropout=0.0))
    >>> build_model(config, vocabulary_size=10).vocabulary_size
    10
    """
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; choose one of {', '.join(sorted(MODELS))}.")
    model = MODELS[config.model](config, vocabulary_size, **options)
    model.build((None, None))
    return model
