"""Where a speech recognizer listened: its log-mel input with each transcript token's cross-attention below it.

    python -m tfzoo.visualize alignment --workdir=DIR --audio=clip.wav [--text=TRANSCRIPT]
        -> DIR/alignment.png

Top panel: the model's own log-mel features of the clip (frequency up, time
across). Bottom panel: the alignment, one row per transcript token (labelled),
its decoder cross-attention over the encoder steps averaged over every layer
and head, on the same time axis; the top panel marks each token at the time it
attended to most. The transcript is `--text` (followed by `<eos>`) or, by
default, the model's greedy transcript. Row i is the query that reads token i
and writes token i + 1, so the labels are the tokens written.

Encoder step j (two stride-2 causal convolutions over 10 ms frames) sees
front-end frames 4j-6..4j; it is drawn at the centre of those frames' audio.
`compute_alignment` returns the matrix drawn (tokens, encoder steps of the
clip; every row sums to 1).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tfzoo.kinds.base import start_id
from tfzoo.run_folder import RunFolder
from tfzoo.visualize import VisualizeError, greedy_continuation, pyplot, save_png, token_labels

ALIGNMENT_FILENAME = "alignment.png"
FIGURE_WIDTH = 10.0  # inches
MEL_HEIGHT = 2.6  # inches of the log-mel panel; the alignment panel grows with the tokens


@dataclasses.dataclass(frozen=True)
class Alignment:
    """What `plot_alignment` draws.

    Args:
        log_mel: float32 (frames, num_mel_bins). The model's normalised log-mel features of the clip.
        frame_times: float (frames,). Centre of each front-end frame, seconds.
        matrix: float32 (tokens, steps). Cross-attention of each written token over the encoder steps.
        step_times: float (steps,). Centre of each encoder step's audio, seconds.
        tokens: list of str. The token each row writes.
    """

    log_mel: np.ndarray
    frame_times: np.ndarray
    matrix: np.ndarray
    step_times: np.ndarray
    tokens: list[str]


def step_times(steps: int, frame_length: int, frame_step: int, sample_rate: int) -> np.ndarray:
    """Centre (s) of the audio each encoder step sees: frames max(0, 4j-6)..4j.

    Example:
    >>> step_times(3, 400, 160, 16000).round(4).tolist()
    [0.0125, 0.0325, 0.0625]
    """
    j = np.arange(steps)
    first = np.maximum(0, 4 * j - 6) * frame_step
    end = 4 * j * frame_step + frame_length
    return (first + end) / 2 / sample_rate


def compute_alignment(model, tokenizer, audio: np.ndarray, text: str | None = None) -> Alignment:
    """The log-mel features and the cross-attention alignment of one clip (float32 (S,) in [-1, 1]).

    Raises:
        VisualizeError: a clip too short or too long for the model, or a transcript too long.
    """
    import tensorflow as tf  # noqa: PLC0415 (TensorFlow only when a model runs)

    samples = int(audio.size)
    if samples > model.max_audio_samples:
        raise VisualizeError(
            f"the audio has {samples} samples; the model takes at most {model.max_audio_samples} "
            f"({model.max_audio_samples / model.sample_rate:g} s)"
        )
    steps = int(model.memory_lengths(samples))
    if samples < model.frame_length or steps < 1:
        raise VisualizeError(
            f"the audio has {samples} samples; expected at least one {model.frame_length}-sample frame"
        )
    batch, lengths = tf.constant(audio[None], tf.float32), tf.constant([samples], tf.int32)
    limit = model.max_sequence_length
    start = start_id(tokenizer, getattr(model, "decoder_start_id", None))
    if text is not None:
        ids = np.array([start, *tokenizer.encode(text), tokenizer.eos_id], np.int32)
    else:
        ids = greedy_continuation(model, model.init_decoding_cache(batch, lengths, limit), start, tokenizer)
    if not 1 < len(ids) <= limit + 1:
        raise VisualizeError(f"the transcript has {len(ids) - 1} tokens; the model reads 1 to {limit}")
    scores = model.attention_scores(batch, ids[None, :-1], lengths)  # query i reads ids[i], writes ids[i + 1]
    cross = np.stack([np.asarray(w)[0] for w in scores["cross"]])  # (layers, H, T, N)
    matrix = cross.mean(axis=(0, 1))[:, :steps].astype(np.float32)  # (T, steps); masked steps hold 0
    features, mask = model.front_end(batch, lengths)
    frames = int(np.asarray(mask).sum())
    frame_times = (np.arange(frames) * model.frame_step + model.frame_length / 2) / model.sample_rate
    return Alignment(
        log_mel=np.asarray(features)[0, :frames],
        frame_times=frame_times,
        matrix=matrix,
        step_times=step_times(steps, model.frame_length, model.frame_step, model.sample_rate),
        tokens=token_labels(tokenizer, ids[1:]),
    )


def alignment_figure_size(tokens: int) -> tuple[float, float]:
    """(width, height) in inches of the alignment figure for `tokens` rows (the PNG is this times `DPI`)."""
    return FIGURE_WIDTH, MEL_HEIGHT + max(1.6, 0.22 * tokens) + 0.9


def _edges(centres: np.ndarray, half_first: float) -> np.ndarray:
    """Cell edges around sorted centres: midpoints, and a half cell before the first / after the last."""
    if centres.size == 1:
        return np.array([centres[0] - half_first, centres[0] + half_first])
    middles = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[centres[0] - half_first], middles, [centres[-1] + (centres[-1] - middles[-1])]])


def plot_alignment(alignment: Alignment, path: str, title: str = "") -> str:
    """Draws the log-mel panel and the token-by-step alignment below it on one time axis; returns `path`.

    Example:
    >>> import tempfile
    >>> a = Alignment(np.zeros((9, 4)), np.arange(9) * 0.01 + 0.0125, np.full((2, 3), 1 / 3),
    ...               np.array([0.0125, 0.0325, 0.0625]), ["a", "<eos>"])
    >>> os.path.basename(plot_alignment(a, os.path.join(tempfile.mkdtemp(), "alignment.png")))
    'alignment.png'
    """
    plt = pyplot()
    tokens, _ = alignment.matrix.shape
    width, height = alignment_figure_size(tokens)
    bottom = height - MEL_HEIGHT - 0.9
    figure, (mel_axis, align_axis) = plt.subplots(
        2, 1, figsize=(width, height), sharex=True, height_ratios=(MEL_HEIGHT, bottom), layout="constrained"
    )
    hop = alignment.frame_times[1] - alignment.frame_times[0] if alignment.frame_times.size > 1 else 0.01
    frame_edges = _edges(alignment.frame_times, hop / 2)
    bins = alignment.log_mel.shape[1]
    mel = mel_axis.pcolormesh(frame_edges, np.arange(bins + 1), alignment.log_mel.T, cmap="magma", shading="flat")
    mel_axis.set_ylabel("mel bin (frequency up)")
    mel_axis.set_title(title or "log-mel input and cross-attention alignment")
    figure.colorbar(mel, ax=mel_axis, label="log-mel (normalised)", pad=0.01)
    peaks = alignment.step_times[alignment.matrix.argmax(axis=1)]
    for row, (label, time) in enumerate(zip(alignment.tokens, peaks, strict=True)):
        mel_axis.axvline(time, color="white", alpha=0.5, linewidth=0.8, linestyle="--")
        mel_axis.text(time, bins * (0.92 - 0.12 * (row % 3)), label, color="white", fontsize=8, ha="center")
    step_edges = _edges(alignment.step_times, alignment.step_times[0])
    image = align_axis.pcolormesh(
        step_edges, np.arange(tokens + 1), alignment.matrix, cmap="viridis", vmin=0.0, shading="flat"
    )
    align_axis.set_ylim(tokens, 0)  # the first token on top
    align_axis.set_yticks(np.arange(tokens) + 0.5, alignment.tokens, fontsize=8)
    align_axis.set_ylabel("token written")
    align_axis.set_xlabel("time (s)")
    figure.colorbar(image, ax=align_axis, label="cross-attention (mean of layers, heads)", pad=0.01)
    return save_png(figure, path, tight=False)


def alignment_command(workdir: str, audio_path: str, text: str | None = None) -> tuple[str, Alignment]:
    """Writes `workdir`/alignment.png for the clip at `audio_path`; returns (its path, the alignment drawn)."""
    from tfzoo.data.speech_data import load_wav  # noqa: PLC0415 (numpy only; kept with the command)

    folder = RunFolder(workdir)
    folder.check_exists()
    class_name, config = folder.model_config()  # no TensorFlow yet: refuse another model first
    if class_name != "SpeechRecognizer":
        raise VisualizeError(f"{workdir}: alignment needs a speech recognizer (task kind asr), not a {class_name}")
    rate = int(config.get("sample_rate", 16000))
    audio = load_wav(audio_path, max_seconds=int(config.get("max_audio_samples", 48000)) / rate)
    model, tokenizer = folder.load_model(), folder.load_tokenizer()
    alignment = compute_alignment(model, tokenizer, audio, text)
    title = f"{os.path.basename(audio_path)}: {' '.join(alignment.tokens)}"
    return plot_alignment(alignment, folder.path(ALIGNMENT_FILENAME), title=title), alignment
