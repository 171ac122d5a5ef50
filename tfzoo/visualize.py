"""Pictures of training and of attention, as PNG files in the workdir.

    python -m tfzoo.visualize curves --workdir=DIR
        -> DIR/curves.png: train and validation loss (nats per token) and the
           learning rate against the training step, from DIR/metrics.jsonl.
    python -m tfzoo.visualize attention --workdir=DIR [--prompt=TEXT] [--image_index=N] [--target=TEXT]
        -> DIR/attention_self_layer<i>.png: one heatmap per head, queries down,
           keys across, each axis labelled with its tokens. For a captioner
           also DIR/attention_cross_layer<i>.png: for each head and caption
           token, where on the image that token looked (the weights over the
           patches, overlaid on the image). For an encoder-decoder
           Transformer DIR/attention_encoder_layer<i>.png (source x source),
           attention_self_layer<i>.png (target x target) and
           attention_cross_layer<i>.png (target queries x source keys).
    python -m tfzoo.visualize fewshot --workdir=DIR [--shots=0,1,2,4,8] [--count=100]
        -> DIR/fewshot.png (and DIR/fewshot.json): accuracy on the assistant recipe's
           few-shot probe (tfzoo.data.assistant_world.probe_examples: a word rule shown
           by examples, then a new word) against the number of examples in the prompt,
           decoded greedily by the workdir's language model.
    python -m tfzoo.visualize alignment --workdir=DIR --audio=clip.wav [--text=TRANSCRIPT]
        -> DIR/alignment.png: a speech recognizer's log-mel input (frequency up,
           time across) and below it each transcript token's cross-attention
           over the encoder steps, on the same time axis (tfzoo.visualize_speech).

Every model gives its weights through one public method, `attention_scores`,
which returns a dict of per-layer lists under "encoder", "self" and "cross":
a language model (or a BERT encoder) takes `attention_scores(token_ids)`, a
`Captioner` `attention_scores(image, target_ids)` and a `Transformer`
`attention_scores(source_ids, target_ids)`. The Transformer's source is
`--prompt`, its target `--target` or, by default, the model's own greedy translation.
The captioner's image is validation image `--image_index` of the
workdir's `shapes` dataset (config.json's `dataset`, `seed` and, when present,
`num_train`/`num_validation`); its caption is `--prompt` when given, otherwise
the model's own greedy caption. Errors print `error: ...` on stderr and exit 2.
Matplotlib runs with the Agg backend (no display needed).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

import numpy as np

from tfzoo.cli import OneLineErrorParser, print_error
from tfzoo.files import temporary_path
from tfzoo.kinds.base import start_id
from tfzoo.run_folder import RunFolder, RunFolderError, read_metrics_file

CURVES_FILENAME = "curves.png"
FEWSHOT_FILENAME = "fewshot.png"
DPI = 110  # pixels per inch of every PNG


class VisualizeError(ValueError):
    """A workdir or an argument cannot be plotted; the message is one line."""


def pyplot():
    import matplotlib  # noqa: PLC0415 (matplotlib only when plotting)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 (after choosing the Agg backend)

    return plt


def save_png(figure, path: str, tight: bool = True) -> str:
    """Saves `figure` as PNG under a temporary name and renames it into place.

    With `tight` the picture is cropped to what is drawn; without, it is the figure's size at `DPI`.
    """
    temporary = temporary_path(path, suffix=".png")
    figure.savefig(temporary, dpi=DPI, bbox_inches="tight" if tight else None)
    pyplot().close(figure)
    os.replace(temporary, path)
    return path


# --- curves ------------------------------------------------------------------------------------


def read_metrics(path: str) -> list[dict]:
    """The records of a metrics.jsonl file; VisualizeError if missing, empty or malformed."""
    if not os.path.isfile(path):
        raise VisualizeError(f"{path} not found; train first (python -m tfzoo.train --workdir=...)")
    try:
        records = read_metrics_file(path)
    except RunFolderError as error:
        raise VisualizeError(str(error)) from None
    if not records:
        raise VisualizeError(f"{path} has no records yet")
    return records


def plot_curves(records: list[dict], path: str, title: str = "") -> str:
    """Plots train/validation loss (top) and learning rate (bottom) against the step; returns `path`.

    Example:
    >>> import tempfile, os
    >>> records = [{"step": 10, "train_loss": 2.0, "val_loss": 2.1, "learning_rate": 1e-3},
    ...            {"step": 20, "train_loss": 1.5, "val_loss": 1.7, "learning_rate": 5e-4}]
    >>> os.path.basename(plot_curves(records, os.path.join(tempfile.mkdtemp(), "curves.png")))
    'curves.png'
    """
    plt = pyplot()
    records = sorted(records, key=lambda r: r["step"])
    has_rate = any("learning_rate" in r for r in records)
    panels = 2 if has_rate else 1
    figure, axes = plt.subplots(panels, 1, figsize=(7, 3 * panels + 0.5), sharex=True, squeeze=False)
    loss_axis = axes[0, 0]
    for key, label, style in (("train_loss", "train", "-o"), ("val_loss", "validation", "-s")):
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
        if points:
            steps, values = zip(*points, strict=True)
            loss_axis.plot(steps, values, style, markersize=3, label=label)
    loss_axis.set_ylabel("loss (nats per token)")
    loss_axis.set_title(title or "training curves")
    loss_axis.grid(alpha=0.3)
    loss_axis.legend()
    if has_rate:
        rate_axis = axes[1, 0]
        points = [(r["step"], r["learning_rate"]) for r in records if "learning_rate" in r]
        rate_axis.plot(*zip(*points, strict=True), "-", color="tab:green")
        rate_axis.set_ylabel("learning rate")
        rate_axis.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        rate_axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("training step")
    return save_png(figure, path)


# --- few-shot probe -----------------------------------------------------------------------------


def _shots(text: str) -> list[int]:
    try:
        shots = [int(part) for part in text.split(",")]
    except ValueError:
        shots = []
    if not shots or min(shots) < 0:
        raise VisualizeError(f"--shots must be comma-separated numbers >= 0, got {text!r}")
    return shots


def plot_fewshot(accuracy: dict[int, float], path: str, title: str = "") -> str:
    """Plots probe accuracy against the number of examples in the prompt; returns `path`.

    Example:
    >>> import tempfile, os
    >>> os.path.basename(plot_fewshot({0: 0.1, 1: 0.5, 8: 0.9}, os.path.join(tempfile.mkdtemp(), "f.png")))
    'f.png'
    """
    plt = pyplot()
    shots = sorted(accuracy)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(shots, [accuracy[k] for k in shots], "-o")
    axis.set_xscale("symlog", linthresh=1)
    axis.set_xticks(shots, [str(k) for k in shots])
    axis.set_ylim(0, 1)
    axis.set_xlabel("examples in the prompt")
    axis.set_ylabel("probe accuracy (greedy, exact)")
    axis.set_title(title or "few-shot probe")
    axis.grid(alpha=0.3)
    return save_png(figure, path)


def fewshot_command(workdir: str, shots: Sequence[int], count: int) -> list[str]:
    """Measures the few-shot probe of `workdir`'s model; writes fewshot.json and fewshot.png there."""
    import json  # noqa: PLC0415

    if count < 1:
        raise VisualizeError(f"--count must be >= 1, got {count}")
    from tfzoo.models.gpt import GPT  # noqa: PLC0415 (TensorFlow only for measuring)
    from tfzoo.training.assistant_eval import probe_accuracy  # noqa: PLC0415

    folder = RunFolder(workdir)
    folder.check_exists()
    model, tokenizer = folder.load_model(), folder.load_tokenizer()
    if not isinstance(model, GPT):
        raise VisualizeError(f"{workdir}: fewshot needs a GPT language model, got {type(model).__name__}")
    accuracy = {int(k): probe_accuracy(model, tokenizer, int(k), count=count) for k in shots}
    json_path = folder.path("fewshot.json")
    temporary = temporary_path(json_path, suffix=".json")
    with open(temporary, "w") as handle:
        json.dump({"count": count, "accuracy": {str(k): v for k, v in accuracy.items()}}, handle, indent=1)
    os.replace(temporary, json_path)
    return [plot_fewshot(accuracy, folder.path(FEWSHOT_FILENAME), title=f"few-shot probe: {workdir}"), json_path]


# --- attention ---------------------------------------------------------------------------------


def token_labels(tokenizer, ids) -> list[str]:
    """A readable label per token id: its text (spaces as '␣', newlines as '↵') or `<id>`."""
    names = {i: name for name, i in getattr(tokenizer, "special_tokens", {}).items()}
    labels = []
    for i in np.asarray(ids).tolist():
        text = names.get(i) or tokenizer.decode(np.array([i], np.int32))
        labels.append(text.replace(" ", "␣").replace("\n", "↵") if text else f"<{i}>")
    return labels


def _grid(count: int) -> tuple[int, int]:
    columns = min(count, 4)
    return math.ceil(count / columns), columns


def plot_attention(weights: np.ndarray, query_labels, key_labels, title: str, path: str) -> list[np.ndarray]:
    """Plots one heatmap per head of `weights` (H, Tq, Tk); returns the arrays drawn, one per head.

    Example:
    >>> import tempfile, os
    >>> weights = np.full((2, 3, 3), 1 / 3)
    >>> drawn = plot_attention(weights, "abc", "abc", "demo", os.path.join(tempfile.mkdtemp(), "a.png"))
    >>> [d.shape for d in drawn]
    [(3, 3), (3, 3)]
    """
    plt = pyplot()
    heads, queries, keys = weights.shape
    rows, columns = _grid(heads)
    cell = max(2.5, 0.28 * max(queries, keys))
    figure, axes = plt.subplots(rows, columns, figsize=(cell * columns + 1, cell * rows + 0.6), squeeze=False)
    drawn = []
    for head in range(rows * columns):
        axis = axes[head // columns, head % columns]
        if head >= heads:
            axis.axis("off")
            continue
        image = axis.imshow(weights[head], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        drawn.append(np.asarray(image.get_array()))
        axis.set_title(f"head {head}", fontsize=9)
        axis.set_xticks(range(keys), list(key_labels), fontsize=7, rotation=90)
        axis.set_yticks(range(queries), list(query_labels), fontsize=7)
        if head // columns == rows - 1 or head + columns >= heads:
            axis.set_xlabel("key (attended) token", fontsize=8)
        if head % columns == 0:
            axis.set_ylabel("query token", fontsize=8)
    figure.subplots_adjust(wspace=0.35, hspace=0.5)
    figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="attention weight")
    figure.suptitle(title, y=1.0 + 0.25 / (cell * rows))
    save_png(figure, path)
    return drawn


def plot_image_attention(image: np.ndarray, weights: np.ndarray, labels, title: str, path: str) -> list[np.ndarray]:
    """Overlays each head's weights over the patches (H, T, N) on `image`, one panel per (head, token).

    N is a square number of patches in row-major order. Returns the (G, G)
    patch-weight grids drawn, in (head, token) order.
    """
    plt = pyplot()
    heads, tokens, patches = weights.shape
    grid = int(round(math.sqrt(patches)))
    if grid * grid != patches:
        raise VisualizeError(f"cross-attention over {patches} patches is not a square grid")
    size = image.shape[0]
    figure, axes = plt.subplots(heads, tokens, figsize=(1.3 * tokens + 1, 1.4 * heads + 0.6), squeeze=False)
    drawn = []
    shown = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    for head in range(heads):
        for token in range(tokens):
            axis = axes[head, token]
            patch_weights = weights[head, token].reshape(grid, grid)
            axis.imshow(shown, extent=(0, size, size, 0))
            overlay = axis.imshow(
                patch_weights, cmap="inferno", alpha=0.55, vmin=0.0, vmax=1.0, extent=(0, size, size, 0)
            )
            drawn.append(np.asarray(overlay.get_array()))
            axis.set_xticks([])
            axis.set_yticks([])
            if head == 0:
                axis.set_title(labels[token], fontsize=8)
            if token == 0:
                axis.set_ylabel(f"head {head}", fontsize=8)
    figure.colorbar(overlay, ax=axes.ravel().tolist(), shrink=0.8, label="attention weight (over patches)")
    figure.suptitle(title)
    save_png(figure, path)
    return drawn


def _as_layers(scores: dict) -> dict[str, list[np.ndarray]]:
    return {kind: [np.asarray(w) for w in scores[kind]] for kind in ("encoder", "self", "cross") if kind in scores}


def greedy_continuation(model, cache, start: int, tokenizer) -> np.ndarray:
    """The model's greedy output ids (T,) from `start`, for one conditioning input held in `cache`."""
    from tfzoo.decoding.generate import generate  # noqa: PLC0415 (TensorFlow only when decoding)

    limit = model.max_sequence_length
    out = generate(
        model.decoding_step,
        cache,
        np.array([[start]], np.int32),
        np.array([1], np.int32),
        max_length=limit,
        eos_ids=(tokenizer.eos_id,),
        pad_id=tokenizer.pad_id,
        max_new_tokens=limit - 1,
    )
    return np.asarray(out["sequences"][0, : int(out["sequence_lengths"][0])], np.int32)


def _captioner_inputs(workdir: str, model, tokenizer, prompt: str | None, image_index: int):
    from tfzoo.data.shapes_data import load_shapes_data  # noqa: PLC0415 (TensorFlow only for a captioner)

    folder = RunFolder(workdir)
    config = folder.read_config() if os.path.isfile(folder.config_path) else {}
    spec = config.get("dataset", "shapes")
    if not str(spec).startswith("shapes"):
        raise VisualizeError(f"captioner workdir with dataset {spec!r}; only the 'shapes' task has images to show")
    sizes = {key: config[key] for key in ("num_train", "num_validation") if key in config}
    task = load_shapes_data(spec, seed=config.get("seed", 0), **sizes)
    if not 0 <= image_index < len(task.validation_images):
        raise VisualizeError(f"--image_index must be in [0, {len(task.validation_images)}), got {image_index}")
    image = task.validation_images[image_index]
    start = start_id(tokenizer, getattr(model, "decoder_start_id", None))  # T5: <pad>
    if prompt is not None:
        ids = np.concatenate([[start], tokenizer.encode(prompt)]).astype(np.int32)
    else:
        ids = greedy_continuation(
            model, model.init_decoding_cache(image[None], model.max_sequence_length), start, tokenizer
        )
    if len(ids) > model.max_sequence_length:
        raise VisualizeError(f"caption of {len(ids)} tokens exceeds max_sequence_length {model.max_sequence_length}")
    return image, ids


def _seq2seq_inputs(model, tokenizer, prompt: str | None, target: str | None):
    """Source ids (S,) of `--prompt` and target ids (T,): `--target` or the model's greedy translation."""
    if not prompt:
        raise VisualizeError("--prompt (the source text) is required for an encoder-decoder model")
    source = np.asarray(tokenizer.encode(prompt), np.int32)
    limit = model.max_sequence_length
    if not 0 < len(source) <= limit:
        raise VisualizeError(f"--prompt has {len(source)} tokens; the model takes 1 to {limit}")
    start = start_id(tokenizer, getattr(model, "decoder_start_id", None))  # T5: <pad>
    if target is not None:
        ids = np.concatenate([[start], tokenizer.encode(target)]).astype(np.int32)
    else:
        ids = greedy_continuation(model, model.init_decoding_cache(source[None], None, limit), start, tokenizer)
    if len(ids) > limit:
        raise VisualizeError(f"target of {len(ids)} tokens exceeds max_sequence_length {limit}")
    return source, ids


def attention_command(
    workdir: str, prompt: str | None = None, image_index: int = 0, target: str | None = None
) -> dict[str, list[np.ndarray]]:
    """Writes the attention PNGs of a workdir's model; returns {path: the weight arrays drawn in it}."""
    from tfzoo.models.transformer import Transformer  # noqa: PLC0415 (TensorFlow only for attention)

    folder = RunFolder(workdir)
    folder.check_exists()
    model, tokenizer = folder.load_model(), folder.load_tokenizer()
    image = None
    if isinstance(model, Transformer):
        source, ids = _seq2seq_inputs(model, tokenizer, prompt, target)
        scores = model.attention_scores(source[None], ids[None])
        key_labels = {"encoder": token_labels(tokenizer, source), "cross": token_labels(tokenizer, source)}
        query_labels = {"encoder": token_labels(tokenizer, source)}
    elif not callable(getattr(model, "attention_scores", None)):
        raise VisualizeError(f"{type(model).__name__} has no attention_scores(); it cannot be plotted yet")
    elif hasattr(model, "encoder") and hasattr(model, "image_size"):  # a Captioner
        image, ids = _captioner_inputs(workdir, model, tokenizer, prompt, image_index)
        scores = model.attention_scores(image[None], ids[None])
        key_labels = query_labels = {}
    else:
        if not prompt:
            raise VisualizeError("--prompt is required for a language model")
        ids = np.asarray(tokenizer.encode(prompt), np.int32)
        if len(ids) == 0:
            raise VisualizeError("--prompt encodes to no tokens")
        limit = getattr(model, "max_sequence_length", len(ids))
        if len(ids) > limit:
            raise VisualizeError(f"--prompt has {len(ids)} tokens; the model takes at most {limit}")
        scores = model.attention_scores(ids[None])
        key_labels = query_labels = {}
    labels = token_labels(tokenizer, ids)
    titles = {"encoder": "encoder self-attention", "self": "self-attention", "cross": "cross-attention"}
    if isinstance(model, Transformer):
        titles = {
            "encoder": "encoder self-attention (source)",
            "self": "decoder self-attention (target)",
            "cross": "cross-attention (target queries over source keys)",
        }
    written = {}
    for kind, layers in _as_layers(scores).items():
        for layer, weights in enumerate(layers):
            path = folder.path(f"attention_{kind}_layer{layer}.png")
            title = f"{type(model).__name__} layer {layer} {titles[kind]}"
            if kind == "cross" and image is not None:  # column titles: the token read -> the token written
                steps = [f"{a}\n→ {b}" for a, b in zip(labels, labels[1:] + ["(end)"], strict=True)]
                written[path] = plot_image_attention(image, weights[0], steps, title + " over image patches", path)
            else:
                written[path] = plot_attention(
                    weights[0], query_labels.get(kind, labels), key_labels.get(kind, labels), title, path
                )
    return written


# --- CLI ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m tfzoo.visualize", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)
    curves = commands.add_parser("curves", help="loss and learning rate vs step -> DIR/curves.png")
    curves.add_argument("--workdir", required=True)
    attention = commands.add_parser("attention", help="attention heatmaps per layer and head -> DIR/attention_*.png")
    attention.add_argument("--workdir", required=True)
    attention.add_argument("--prompt", default=None, help="text (LM) or caption (captioner) to run")
    attention.add_argument("--image_index", type=int, default=0, help="captioner: which validation image")
    attention.add_argument("--target", default=None, help="encoder-decoder: target text (default: its translation)")
    fewshot = commands.add_parser("fewshot", help="few-shot probe accuracy vs examples -> DIR/fewshot.png")
    fewshot.add_argument("--workdir", required=True)
    fewshot.add_argument("--shots", default="0,1,2,4,8", help="comma-separated numbers of examples")
    fewshot.add_argument("--count", type=int, default=100, help="probe prompts per number of examples")
    alignment = commands.add_parser("alignment", help="speech recognizer: log-mel + alignment -> DIR/alignment.png")
    alignment.add_argument("--workdir", required=True)
    alignment.add_argument("--audio", required=True, help="a 16 kHz mono 16-bit WAV file")
    alignment.add_argument("--text", default=None, help="transcript to align (default: the model's own)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0, or 2 on a bad argument or input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if not os.path.isdir(args.workdir):
            raise VisualizeError(f"workdir {args.workdir} does not exist")
        if args.command == "curves":
            records = read_metrics(RunFolder(args.workdir).metrics_path)
            paths = [plot_curves(records, RunFolder(args.workdir).path(CURVES_FILENAME), title=args.workdir)]
        elif args.command == "fewshot":
            paths = fewshot_command(args.workdir, _shots(args.shots), args.count)
        elif args.command == "alignment":
            from tfzoo.visualize_speech import alignment_command  # noqa: PLC0415 (it imports this module)

            paths = [alignment_command(args.workdir, args.audio, args.text)[0]]
        else:
            paths = list(attention_command(args.workdir, args.prompt, args.image_index, args.target))
    except ValueError as error:
        return print_error(str(error).splitlines()[0] if str(error) else type(error).__name__)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
