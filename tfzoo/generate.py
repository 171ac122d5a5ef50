"""Generate text from a trained workdir: `python -m tfzoo.generate --workdir=DIR --prompt=TEXT`.

Loads `DIR/model.keras` and `DIR/tokenizer/`, runs the whole decode loop in
one compiled graph (`tfzoo.decoding.Generator`) and prints the prompt with its
completion. With `--show_beams` or `--num_return_sequences=N` it prints
several completions, each under a header with its score. Errors print
`error: ...` on stderr and exit with code 2.

Encoder-decoder runs (`Transformer`): `--prompt` is the source text and the
translation is printed (the decoder starts from the start token; at most the
model's `max_sequence_length` tokens, so `--max_new_tokens` is capped there).
Captioners: `--image=PATH` (`.png` or `.npy`, shaped as the model's images)
and the caption is printed.

Example:
    python -m tfzoo.generate --workdir=runs/gpt_char --prompt="def " --strategy=beam --beam_size=4
    python -m tfzoo.generate --workdir=runs/transformer_translate --prompt="forty-two" --runtime=tflite
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import numpy as np

from tfzoo.cli import OneLineErrorParser, print_error

RUNTIMES = ("keras", "saved_model", "tflite", "onnx")
STRATEGIES = ("greedy", "beam", "sample")
MAX_RESULTS = 256  # most beams or returned sequences: more would allocate without bound (a cache per row)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m tfzoo.generate", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--workdir", required=True, help="training workdir with model.keras and tokenizer/")
    add("--prompt", default=None, help="text to continue (encoder-decoder models: the source text)")
    add("--image", default=None, help="captioners: the image, a .png or .npy file")
    add("--runtime", default="keras", choices=RUNTIMES, help="keras, or an artefact of `python -m export`")
    add("--quantization", default="none", choices=("none", "fp16", "int8"), help="which TFLite file (--runtime=tflite)")
    add("--strategy", default="greedy", choices=STRATEGIES)
    add("--beam_size", type=int, default=4)
    add("--length_penalty", type=float, default=0.6, help="beam search alpha; 0 disables")
    add("--length_penalty_form", default="hf", choices=("hf", "gnmt"),
        help="hf: score / len**alpha; gnmt: score / ((5 + len) / 6)**alpha")
    add("--repetition_penalty", type=float, default=1.0, help="CTRL penalty; 1 disables")
    add("--no_repeat_ngram_size", type=int, default=0, help="0 disables")
    add("--max_new_tokens", type=int, default=64)
    add("--min_new_tokens", type=int, default=0)
    add("--temperature", type=float, default=1.0)
    add("--top_k", type=int, default=0, help="0 disables")
    add("--top_p", type=float, default=1.0, help="1 disables")
    add("--seed", type=int, default=0)
    add("--num_return_sequences", type=int, default=1,
        help="beam: the top N beams; sample: N samples; greedy: 1")
    add("--show_beams", action="store_true", help="beam: print every beam with its score")
    add("--no_jit_compile", action="store_true", help="run the graph without XLA")
    return parser


def _load(workdir: str):
    """Returns (model, tokenizer) from a training workdir; ValueError names what is missing."""
    from tfzoo.data.tokenizer import load_tokenizer

    if not os.path.isdir(workdir):
        raise ValueError(f"workdir {workdir} does not exist")
    model_path = os.path.join(workdir, "model.keras")
    if not os.path.isfile(model_path):
        raise ValueError(f"{model_path} not found; train first (python -m tfzoo.train --workdir={workdir})")
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))

    import keras

    import tfzoo.models.registry  # noqa: F401  (registers the model classes for loading)

    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # a corrupt or foreign file: say which, in one line
        raise ValueError(f"cannot load {model_path}: {str(error).splitlines()[0]}") from None
    return model, tokenizer


def load_image(path: str) -> np.ndarray:
    """One image (H, W, C) from a `.npy` or `.png` file; ValueError names what is wrong."""
    if not os.path.isfile(path):
        raise ValueError(f"image {path} does not exist")
    if path.endswith(".npy"):
        try:
            image = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read {path}: {error}") from None
    elif path.endswith(".png"):
        try:
            from PIL import Image  # noqa: PLC0415 (pillow comes with matplotlib)

            with Image.open(path) as picture:
                image = np.asarray(picture)
        except (ImportError, OSError) as error:
            raise ValueError(f"cannot read {path}: {error}") from None
    else:
        raise ValueError(f"--image must be a .png or .npy file, got {path}")
    if image.ndim == 2:
        image = image[:, :, None]  # greyscale: one channel
    return image


def _conditions(args, kind: str, tokenizer, max_source_length: int) -> dict[str, np.ndarray]:
    """The encoder inputs of a seq2seq (`--prompt` = source) or captioner (`--image`) run; empty for GPT."""
    if kind == "captioner":
        if args.image is None:
            raise ValueError("this model is a captioner: pass --image=PATH.png|.npy")
        if args.prompt:
            raise ValueError("a captioner takes --image, not --prompt")
        return {"image": load_image(args.image)[None]}
    if args.image is not None:
        raise ValueError("--image is for captioners; this model takes --prompt")
    if args.prompt is None:
        raise ValueError("--prompt is required")
    if kind == "decoder":
        return {}
    source = np.asarray(tokenizer.encode(args.prompt), np.int32)
    if source.size == 0:
        raise ValueError("empty prompt: the source encodes to no tokens")
    if source.size > max_source_length:
        raise ValueError(
            f"the source has {source.size} tokens, more than the model's max_sequence_length={max_source_length}"
        )
    return {"source_ids": source[None], "source_lengths": np.asarray([source.size], np.int32)}


def _check_image(image: np.ndarray, model) -> np.ndarray:
    expected = (model.image_size, model.image_size, model.num_channels)
    if tuple(image.shape[1:]) != expected:
        raise ValueError(f"the image has shape {tuple(image.shape[1:])}; the model takes {expected} (height, width, "
                         "channels)")  # fmt: skip
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def _completions(args, model, tokenizer) -> list[tuple[float, str]]:
    from export.model_kinds import model_kind
    from tfzoo.decoding.generator import Generator

    kind = model_kind(model)
    conditions = _conditions(args, kind.name, tokenizer, int(model.max_sequence_length))
    if kind.name != "decoder":
        return _conditional_completions(args, model, kind, tokenizer, conditions)
    prompt = np.asarray(tokenizer.encode(args.prompt), np.int32)
    if prompt.size == 0:
        raise ValueError("empty prompt: it encodes to no tokens")
    if args.max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {args.max_new_tokens}")
    max_length = prompt.size + args.max_new_tokens
    limit = getattr(model, "max_sequence_length", None)
    if limit is not None and max_length > limit:
        raise ValueError(
            f"prompt of {prompt.size} tokens + --max_new_tokens={args.max_new_tokens} exceeds the model's "
            f"max_sequence_length={limit}"
        )
    generator = Generator(model, max_length=max_length, **_decoder_settings(args, tokenizer))
    count = _count(args)
    rows = count if args.strategy == "sample" else 1  # samples differ by row
    outputs = generator(
        np.tile(prompt[None, :], [rows, 1]), np.full([rows], prompt.size, np.int32), **_knobs(args)
    )
    return [(score, args.prompt + text) for score, text in _results(args, outputs, prompt.size, count, tokenizer)]


def _decoder_settings(args, tokenizer) -> dict:
    eos_id = tokenizer.eos_id
    special = set(getattr(tokenizer, "special_tokens", {}).values())
    return dict(
        strategy=args.strategy,
        beam_size=args.beam_size,
        eos_ids=(eos_id,),
        banned_ids=tuple(sorted(special - {eos_id})),  # never emit padding, <unk> or a start token
        pad_id=tokenizer.pad_id,
        length_penalty_form=args.length_penalty_form,
        return_beams=args.strategy == "beam",
        jit_compile=not args.no_jit_compile,
    )


def _knobs(args) -> dict:
    return dict(
        max_new_tokens=args.max_new_tokens,
        min_new_tokens=args.min_new_tokens,
        length_penalty=args.length_penalty,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    )


def _check_input(args) -> None:
    """Refuses, before anything is loaded or allocated, a prompt that is not UTF-8 and too many beams or results."""
    if args.prompt is not None:
        try:
            args.prompt.encode("utf-8")  # argv bytes that are not UTF-8 arrive as lone surrogates
        except UnicodeEncodeError:
            raise ValueError("--prompt is not valid UTF-8") from None
    if args.strategy == "beam" and args.beam_size > MAX_RESULTS:
        raise ValueError(f"--beam_size={args.beam_size} is too large (at most {MAX_RESULTS})")
    if args.num_return_sequences > MAX_RESULTS:
        raise ValueError(f"--num_return_sequences={args.num_return_sequences} is too large (at most {MAX_RESULTS})")


def _count(args) -> int:
    """How many results to print; checks the flags that choose it."""
    count = args.beam_size if args.show_beams else args.num_return_sequences
    if count < 1:
        raise ValueError(f"--num_return_sequences must be >= 1, got {count}")
    if args.show_beams and args.strategy != "beam":
        raise ValueError("--show_beams needs --strategy=beam")
    if args.strategy == "greedy" and count > 1:
        raise ValueError("greedy decoding has one result; use --strategy=beam or sample for several")
    if args.strategy == "beam" and count > args.beam_size:
        raise ValueError(f"--num_return_sequences={count} exceeds --beam_size={args.beam_size}")
    return count


def _results(args, outputs, start: int, count: int, tokenizer) -> list[tuple[float, str]]:
    """(score, generated text) of the best `count` rows or beams of a generator's outputs."""
    if args.strategy == "beam":
        sequences, lengths, scores = outputs["beam_sequences"][0], outputs["beam_lengths"][0], outputs["beam_scores"][0]
        found = scores > -1e8  # empty beam slots carry the NEG score
        if not found.any():  # no room for new tokens: the best "beam" is the prompt alone
            sequences, lengths, scores = outputs["sequences"], outputs["sequence_lengths"], outputs["scores"]
        else:
            sequences, lengths, scores = sequences[found], lengths[found], scores[found]
    else:
        sequences, lengths, scores = outputs["sequences"], outputs["sequence_lengths"], outputs["scores"]
    results = []
    for row in range(min(count, len(scores))):
        results.append((float(scores[row]), tokenizer.decode(sequences[row, start : lengths[row]])))
    return results


def _conditional_completions(args, model, kind, tokenizer, conditions) -> list[tuple[float, str]]:
    """Translations or captions: the decoder starts from the start token and attends to the encoder."""
    if args.max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {args.max_new_tokens}")
    if "image" in conditions:
        conditions["image"] = _check_image(conditions["image"], model)
    max_length = min(1 + args.max_new_tokens, int(model.max_sequence_length))
    if max_length < 2:
        raise ValueError("--max_new_tokens must be >= 1 for a translation or caption")
    generator = kind.generator(max_length=max_length, **_decoder_settings(args, tokenizer))
    count = _count(args)
    rows = count if args.strategy == "sample" else 1
    start_id = int(getattr(tokenizer, "special_tokens", {}).get("<bos>", tokenizer.eos_id))
    tiled = {key: np.repeat(value, rows, axis=0) for key, value in conditions.items()}
    knobs = dict(_knobs(args), max_new_tokens=max_length - 1)  # capped by the model's max_sequence_length
    outputs = generator(np.full([rows, 1], start_id, np.int32), np.ones([rows], np.int32), **knobs, **tiled)
    return _results(args, outputs, 1, count, tokenizer)


def _exported_completions(args) -> list[tuple[float, str]]:
    """The completion from an exported artefact (`python -m export`) run in its own runtime."""
    from export.runtimes import load_runtime
    from tfzoo.data.tokenizer import load_tokenizer

    if args.show_beams or args.num_return_sequences > 1:
        raise ValueError("--show_beams and --num_return_sequences need --runtime=keras (exports return the best beam)")
    if args.length_penalty_form != "hf":
        raise ValueError("exported beam search uses --length_penalty_form=hf; use --runtime=keras for gnmt")
    runtime = load_runtime(args.workdir, args.runtime, quantization=args.quantization)
    if args.strategy == "beam" and args.beam_size != int(runtime.info["beam_size"]):
        raise ValueError(
            f"this export was made with --beam_size={runtime.info['beam_size']}, not {args.beam_size}; "
            "pass that or re-export"
        )
    tokenizer = load_tokenizer(os.path.join(args.workdir, "tokenizer"))
    knobs = {name: value for name, value in _knobs(args).items() if name != "max_new_tokens"}  # passed apart
    knobs["strategy"] = args.strategy
    conditions = _conditions(args, runtime.kind, tokenizer, runtime.max_source_length)
    if conditions:  # translation or caption: start token in, up to the exported max_length
        if args.max_new_tokens < 1:
            raise ValueError("--max_new_tokens must be >= 1 for a translation or caption")
        max_new_tokens = min(args.max_new_tokens, runtime.max_length - 1)
        sequences, lengths, scores = runtime.generate(None, None, max_new_tokens, **conditions, **knobs)
        return [(float(scores[0]), tokenizer.decode(sequences[0, 1 : lengths[0]]))]
    prompt = np.asarray(tokenizer.encode(args.prompt), np.int32)
    if prompt.size == 0:
        raise ValueError("the prompt is empty")
    sequences, lengths, scores = runtime.generate(prompt[None], [prompt.size], args.max_new_tokens, **knobs)
    new_tokens = sequences[0, prompt.size : lengths[0]]
    return [(float(scores[0]), args.prompt + tokenizer.decode(new_tokens))]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0, or 2 on a bad argument or input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        _check_input(args)
        if args.runtime == "keras":
            model, tokenizer = _load(args.workdir)
            results = _completions(args, model, tokenizer)
        else:
            results = _exported_completions(args)
    except ValueError as error:  # includes DecodingError
        return print_error(str(error).splitlines()[0] if str(error) else type(error).__name__)
    if len(results) == 1 and not args.show_beams:
        print(results[0][1])
        return 0
    label = "beam" if args.strategy == "beam" else "sample"
    for index, (score, text) in enumerate(results, start=1):
        print(f"--- {label} {index} score={score:.4f}")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
