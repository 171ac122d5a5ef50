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
and the caption is printed. Video captioners: `--video=PATH` (a `.npy` of
uint8 [frames, height, width, 3], or an animated `.gif`). Speech recognizers:
`--audio=PATH` (a 16 kHz mono 16-bit PCM `.wav`, at most the model's
`max_audio_samples`) and the transcript is printed.

`--stop=TEXT` (repeatable) ends a completion at a stop string: the decode loop stops on its
tokens (in the graph, in every runtime) and the printed text is cut before it. `--ban=WORD`
(repeatable) keeps a word out of the completion: its token sequences (`word` and `" word"`) are
banned in the graph (`tfzoo.stop_words`, `tfzoo.decoding.sequences`).

Example:
    python -m tfzoo.generate --workdir=runs/gpt_char --prompt="def " --strategy=beam --beam_size=4
    python -m tfzoo.generate --workdir=runs/gpt_char --prompt="def " --stop="):" --ban=self
    python -m tfzoo.generate --workdir=runs/transformer_translate --prompt="forty-two" --runtime=tflite
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np

from tfzoo.cli import OneLineErrorParser, print_error
from tfzoo.decoding.knobs import KNOB_TABLE, STRATEGIES
from tfzoo.kinds import ModelKindError, kind_of
from tfzoo.kinds.base import start_id
from tfzoo.kinds.captioner import load_image
from tfzoo.run_folder import RunFolder
from tfzoo.runtimes.adapters import TFLITE_KERNELS
from tfzoo.stop_words import banned_sequences, stop_sequences, trim_at_stop

__all__ = ["build_parser", "load_image", "main"]

RUNTIMES = ("keras", "saved_model", "tflite", "onnx")
MAX_RESULTS = 256  # most beams or returned sequences: more would allocate without bound (a cache per row)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m tfzoo.generate", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--workdir", required=True, help="training workdir with model.keras and tokenizer/")
    add("--prompt", default=None, help="text to continue (encoder-decoder models: the source text)")
    add("--image", default=None, help="captioners: the image, a .png or .npy file")
    add("--video", default=None, help="video captioners: the clip, a .npy (uint8 [T, H, W, 3]) or animated .gif")
    add("--audio", default=None, help="speech recognizers: a 16 kHz mono 16-bit PCM .wav file")
    add("--runtime", default="keras", choices=RUNTIMES, help="keras, or an artefact of `python -m export`")
    add(
        "--quantization",
        default="none",
        choices=("none", "fp16", "int8", "int4"),
        help="which TFLite file (--runtime=tflite)",
    )
    add(
        "--kernels",
        default="xnnpack",
        choices=TFLITE_KERNELS,
        help="TFLite kernels (--runtime=tflite): xnnpack, fastest; builtin, memory near the file's size",
    )
    add("--strategy", default="greedy", choices=STRATEGIES)
    add("--beam_size", type=int, default=4)
    add(
        "--length_penalty_form",
        default="hf",
        choices=("hf", "gnmt"),
        help="hf: score / len**alpha; gnmt: score / ((5 + len) / 6)**alpha",
    )
    for knob in KNOB_TABLE:  # the one knob table: names, types and defaults
        add(f"--{knob.name}", type=int if knob.dtype == "int32" else float, default=knob.default, help=knob.help)
    add("--stop", action="append", default=[], metavar="TEXT", help="stop at this text (repeatable)")
    add("--ban", action="append", default=[], metavar="WORD", help="never generate this word (repeatable)")
    add("--num_return_sequences", type=int, default=1, help="beam: the top N beams; sample: N samples; greedy: 1")
    add("--show_beams", action="store_true", help="beam: print every beam with its score")
    add(
        "--no_jit_compile",
        action="store_true",
        help="no XLA (default: XLA under 64 MiB of weights; larger GPTs decode without it, on a growing cache)",
    )
    return parser


def _load(workdir: str):
    """Returns (model, tokenizer) from a training workdir; ValueError names what is missing."""
    folder = RunFolder(workdir)
    folder.check_exists()
    if not os.path.isfile(folder.model_path):
        raise ValueError(f"{folder.model_path} not found; train first (python -m tfzoo.train --workdir={workdir})")
    tokenizer = folder.load_tokenizer()
    return folder.load_model(), tokenizer


def _completions(args, model, tokenizer) -> list[tuple[float, str]]:
    from tfzoo.decoding.generator import Generator, decoding_mode  # noqa: PLC0415 (TensorFlow only when needed)

    try:
        kind = kind_of(model)
    except ModelKindError as error:
        raise ValueError(f"{error} (generate needs a model with a KV cache)") from None
    if not kind.generative:
        raise ValueError(
            f"{type(model).__name__} is {kind.description}: it does not generate; use python -m tfzoo.embed"
        )
    conditions = _cli_conditions(
        kind, args, tokenizer, int(model.max_sequence_length), getattr(model, "num_frames", None)
    )
    if conditions:
        return _conditional_completions(args, model, kind, tokenizer, kind.keras_conditions(conditions, model))
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
    settings = _decoder_settings(args, tokenizer)
    settings.update(decoding_mode(model, False if args.no_jit_compile else None))  # XLA for small models only
    generator = Generator(model, max_length=max_length, **settings)
    count = _count(args)
    rows = count if args.strategy == "sample" else 1  # samples differ by row
    tiled = np.tile(prompt[None, :], [rows, 1])
    outputs = generator(tiled, np.full([rows], prompt.size, np.int32), **_knobs(args), **_sequences(args, tokenizer))
    return [(score, args.prompt + text) for score, text in _results(args, outputs, prompt.size, count, tokenizer)]


def _sequences(args, tokenizer) -> dict:
    """`stop_sequences` and `banned_sequences` (token ids) of `--stop` and `--ban`."""
    return {
        "stop_sequences": stop_sequences(tokenizer, args.stop),
        "banned_sequences": banned_sequences(tokenizer, args.ban),
    }


def _cli_conditions(kind, args, tokenizer, max_source_length: int, num_frames: int | None) -> dict:
    """The kind's conditioning inputs from `--prompt`, `--image` and, for kinds that take clips, `--video`
    (speech recognizers: `--audio`)."""
    if "audio" in kind.condition_names:
        if args.video is not None:
            raise ValueError(f"--video is for video captioners; this is {kind.description}")
        return kind.cli_conditions(args.prompt, args.image, tokenizer, max_source_length, audio_path=args.audio)
    if args.audio is not None:
        raise ValueError(f"--audio is for speech recognizers; this is {kind.description}")
    if "video" not in kind.condition_names:
        if args.video is not None:
            raise ValueError(f"--video is for video captioners; this is {kind.description}")
        return kind.cli_conditions(args.prompt, args.image, tokenizer, max_source_length)
    return kind.cli_conditions(
        args.prompt, args.image, tokenizer, max_source_length, video_path=args.video, num_frames=num_frames
    )


def _decoder_settings(args, tokenizer) -> dict:
    eos_id = tokenizer.eos_id
    special = set(getattr(tokenizer, "special_tokens", {}).values())
    return dict(
        strategy=args.strategy,
        beam_size=args.beam_size,
        eos_ids=() if eos_id is None else (eos_id,),  # None: a checkpoint without one runs to max_new_tokens
        banned_ids=tuple(sorted(special - {eos_id})),  # never emit padding, <unk> or a start token
        pad_id=tokenizer.pad_id,
        length_penalty_form=args.length_penalty_form,
        return_beams=args.strategy == "beam",
        jit_compile=not args.no_jit_compile,
    )


def _knobs(args) -> dict:
    return {knob.name: getattr(args, knob.name) for knob in KNOB_TABLE}


def _check_input(args) -> None:
    """Refuses, before anything is loaded or allocated, a prompt that is not UTF-8 and too many beams or results."""
    if args.prompt is not None:
        try:
            args.prompt.encode("utf-8")  # argv bytes that are not UTF-8 arrive as lone surrogates
        except UnicodeEncodeError:
            raise ValueError("--prompt is not valid UTF-8") from None
    for flag, values in (("--stop", args.stop), ("--ban", args.ban)):
        if any(value == "" for value in values):
            raise ValueError(f"{flag} is empty: give the text to {'stop at' if flag == '--stop' else 'ban'}")
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
        text = tokenizer.decode(sequences[row, start : lengths[row]])
        results.append((float(scores[row]), trim_at_stop(text, args.stop)[0]))
    return results


def _conditional_completions(args, model, kind, tokenizer, conditions) -> list[tuple[float, str]]:
    """Translations or captions: the decoder starts from the start token and attends to the encoder."""
    if args.max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {args.max_new_tokens}")
    max_length = min(1 + args.max_new_tokens, int(model.max_sequence_length))
    if max_length < 2:
        raise ValueError("--max_new_tokens must be >= 1 for a translation or caption")
    generator = kind.generator(max_length=max_length, **_decoder_settings(args, tokenizer))
    count = _count(args)
    rows = count if args.strategy == "sample" else 1
    tiled = {key: np.repeat(value, rows, axis=0) for key, value in conditions.items()}
    knobs = dict(_knobs(args), max_new_tokens=max_length - 1)  # capped by the model's max_sequence_length
    start = start_id(tokenizer, getattr(model, "decoder_start_id", None))
    knobs.update(_sequences(args, tokenizer))
    outputs = generator(np.full([rows, 1], start, np.int32), np.ones([rows], np.int32), **knobs, **tiled)
    return _results(args, outputs, 1, count, tokenizer)


def _exported_completions(args) -> list[tuple[float, str]]:
    """The completion from an exported artefact (`python -m export`) run in its own runtime."""
    from tfzoo.runtimes import load_runtime  # noqa: PLC0415 (a runtime's library only when needed)

    if args.show_beams or args.num_return_sequences > 1:
        raise ValueError("--show_beams and --num_return_sequences need --runtime=keras (exports return the best beam)")
    if args.length_penalty_form != "hf":
        raise ValueError("exported beam search uses --length_penalty_form=hf; use --runtime=keras for gnmt")
    runtime = load_runtime(args.workdir, args.runtime, quantization=args.quantization, kernels=args.kernels)
    if args.strategy == "beam" and args.beam_size != int(runtime.info["beam_size"]):
        raise ValueError(
            f"this export was made with --beam_size={runtime.info['beam_size']}, not {args.beam_size}; "
            "pass that or re-export"
        )
    tokenizer = RunFolder(args.workdir).load_tokenizer()
    knobs = {name: value for name, value in _knobs(args).items() if name != "max_new_tokens"}  # passed apart
    knobs["strategy"] = args.strategy
    knobs.update(_sequences(args, tokenizer))
    frames = runtime.info.get("video_shape", [None])[0]
    conditions = _cli_conditions(runtime.model_kind, args, tokenizer, runtime.max_source_length, frames)
    if conditions:  # translation or caption: start token in, up to the exported max_length
        if args.max_new_tokens < 1:
            raise ValueError("--max_new_tokens must be >= 1 for a translation or caption")
        max_new_tokens = min(args.max_new_tokens, runtime.max_length - 1)
        sequences, lengths, scores = runtime.generate(None, None, max_new_tokens, **conditions, **knobs)
        return [(float(scores[0]), trim_at_stop(tokenizer.decode(sequences[0, 1 : lengths[0]]), args.stop)[0])]
    prompt = np.asarray(tokenizer.encode(args.prompt), np.int32)
    if prompt.size == 0:
        raise ValueError("the prompt is empty")
    sequences, lengths, scores = runtime.generate(prompt[None], [prompt.size], args.max_new_tokens, **knobs)
    new_tokens = sequences[0, prompt.size : lengths[0]]
    return [(float(scores[0]), args.prompt + trim_at_stop(tokenizer.decode(new_tokens), args.stop)[0])]


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
