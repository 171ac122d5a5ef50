"""`python -m apps.edge`: text generation (or sentence embeddings) from an exported `.tflite` file without TensorFlow.

    python -m apps.edge --model DIR/export/gpt.tflite --prompt "def " [--max_new_tokens N]
        [--loop steps|generate] [--strategy greedy|beam|sample] [--temperature 0.8 --top_k 20 --top_p 0.9
        --seed 0] [--length_penalty 0.6 --repetition_penalty 1.2 --no_repeat_ngram_size 3]
        [--num_threads N] [--kernels xnnpack|builtin] [--interactive] [--stop TEXT ...] [--ban WORD ...]
    python -m apps.edge --model DIR/export/bert_encoder.tflite --text "A cat sits." [--text "A kitten sits."]
        [--max_length N] [--cosine_only]                     # an encoder (BERT) export: embed / classify
    python -m apps.edge --model DIR/export --audio clip.wav [--max_new_tokens N]   # a speech recognizer's export
    python -m apps.edge --model DIR/export --speak "call 42" --out call.wav        # a speech synthesizer's export
    python -m apps.edge --model DIR/export --chat [--system TEXT] [--verbose]      # a chat model's export

`--model` may also be the export folder: its `report.json` names the fp32 `.tflite` file.

`--loop steps` (default) runs `prefill` then one `decode` call per token and
prints each token as it comes; `--loop generate` runs the whole decode loop
inside the model (`generate` / `generate_<strategy>`, every strategy and knob
the export carries) and prints the text at the end. The completion (prompt
included) goes to stdout; the speed line (new tokens per second, model load
and a warm-up call excluded) to stderr. `--interactive` reads prompts from stdin until an empty
input line's EOF or `/quit`. The knobs' defaults (and `--max_new_tokens`'s)
are the export's, from `report.json` next to the model (with `hf_tokenizer.json`).
`--stop TEXT` and `--ban WORD` (repeatable, `--loop generate` only) feed the export's `stop_sequences`
and `banned_sequences` inputs (the loop ends at a stop string's tokens, the text is cut before it; a
banned word's tokens, as `word` and `" word"`, never appear).
`--kernels builtin` runs LiteRT's builtin kernels instead of its XNNPACK delegate: peak memory
near the file's size instead of several times it, at some speed (docs/performance.md).
With `--text` (an encoder export, `report.json`'s `model.kind` "encoder") the app prints
`python -m tfzoo.embed`'s JSON instead: `{"dim", "embeddings"}` (each text as `[CLS] text [SEP]`,
WordPiece from `hf_tokenizer.json`, cut at the report's `max_length` or `--max_length`; the export's
`embed` signature's `sentence_embedding`) and, for exactly two texts, `"cosine"`; `--cosine_only` prints
just that number. A classifier's export (a `classify` signature) adds `"probabilities"` (softmax of
its logits) and `"labels"` (their argmax) per text. The generation flags and an encoder export, or
`--text` and a generative export, are a one-line error.
With `--audio` (a speech recognizer's export, `model.kind` "asr") the app reads the WAV file with the
stdlib `wave` module (16 kHz mono 16-bit PCM, at most the report's `max_audio_samples`; another rate,
stereo, empty, too long or not a WAV file is a one-line error naming what was expected), runs the
`transcribe` signature (the export's strategy, `report.json`'s `model.strategy`) and prints the
transcript; stderr gets the compute time and the real-time factor (compute seconds per second of
audio, after one warm-up call).
With `--speak TEXT --out x.wav` (a speech synthesizer's export, `model.kind` "tts") the app normalises
the text (lower case, single spaces, whole numbers 0-999 as words), maps it to character ids with
`report.json`'s `model.characters` (an empty text, a character the model never saw or a text over
`model.max_length` characters is refused in one line, naming the characters it knows), runs the
`synthesize` signature and writes a 16 kHz mono 16-bit WAV file (a temporary name, then renamed): the
samples `python -m tfzoo.speak --runtime=tflite` writes. stderr gets the seconds of audio, the compute
time and the real-time factor (after one warm-up call).
With `--chat` (an export whose `report.json` has `model.chat_template`) the app is a multi-turn chat on
stdin, `python -m tfzoo.chat`'s over the steps loop (`apps/edge/chat.py`): `--system`, `--max_new_tokens`,
`--stop`, `--ban`, greedy or `--strategy sample`; `--verbose` prints each turn's prefilled tokens.
Bad input prints `error: ...` and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from apps.edge.chat import ChatTemplate, EdgeChat, chat_loop
from apps.edge.edge_model import KERNELS, STEP_KNOBS, EdgeModel
from apps.edge.embedder import ENCODER_KIND, EdgeEncoder, embedding_result, encode_texts, encoder_facts, export_kind
from apps.edge.embedder import probabilities as softmax
from apps.edge.errors import AppError
from apps.edge.json_files import Knob, read_report, report_knobs
from apps.edge.knobs import add_knob_flags, given_knobs
from apps.edge.speaker import TTS_KIND, EdgeSpeaker, check_out, encode_text, synthesizer_facts, write_wav
from apps.edge.tokenizer import banned_sequences, load_tokenizer
from apps.edge.transcriber import ASR_KIND, read_wav, transcriber_for


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m apps.edge", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", required=True, help="the .tflite file (report.json, hf_tokenizer.json beside it), or its folder"
    )
    parser.add_argument("--prompt", help="text to continue (not with --interactive)")
    parser.add_argument("--text", action="append", help="encoder exports: a text to embed; repeat for more")
    parser.add_argument("--cosine_only", action="store_true", help="--text twice: print only their cosine")
    parser.add_argument("--max_length", type=int, default=None, help="--text: ids per text at most (report's)")
    parser.add_argument("--audio", help="speech-recognizer exports: a 16 kHz mono 16-bit PCM .wav file to transcribe")
    parser.add_argument("--speak", help="speech-synthesizer exports: the words to speak (with --out)")
    parser.add_argument("--out", help="--speak: the .wav file to write (16 kHz mono 16-bit)")
    parser.add_argument("--max_new_tokens", type=int, default=None, help="default: from report.json")
    parser.add_argument(
        "--loop",
        choices=("steps", "generate"),
        default=None,
        help="steps: prefill/decode, streamed (default); generate: the in-graph loop",
    )
    parser.add_argument(
        "--strategy",
        choices=("greedy", "beam", "sample"),
        default=None,
        help="default: greedy for --loop=steps, the exported strategy for --loop=generate",
    )
    add_knob_flags(parser)
    parser.add_argument("--num_threads", type=int, default=None)
    parser.add_argument(
        "--kernels",
        choices=KERNELS,
        default="xnnpack",
        help="xnnpack: fastest, memory several times the file; builtin: memory near the file's size, slower",
    )
    parser.add_argument("--interactive", action="store_true", help="a prompt loop on stdin")
    parser.add_argument("--chat", action="store_true", help="a chat model's export: a multi-turn chat on stdin")
    parser.add_argument("--system", default=None, help="--chat: the system message")
    parser.add_argument("--verbose", action="store_true", help="--chat: a line per turn on stderr (tokens prefilled)")
    parser.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="--loop=generate, --chat: stop at TEXT"
    )
    parser.add_argument(
        "--ban", action="append", default=[], metavar="WORD", help="--loop=generate, --chat: never WORD"
    )
    return parser


def _check_args(args) -> dict:
    """Validates the options that need no report; returns the knobs that were given."""
    if args.chat:
        if args.prompt is not None or args.interactive:
            raise AppError(f"--{'prompt' if args.prompt is not None else 'interactive'} does not go with --chat")
        if args.loop == "generate":
            raise AppError("--chat decodes with prefill/decode (the steps loop): --loop=generate does not go with it")
    elif args.interactive == (args.prompt is not None):
        raise AppError("pass either --prompt TEXT or --interactive (or --text TEXT with an encoder export)")
    else:
        chat_only = [f"--{name}" for name in ("system", "verbose") if getattr(args, name) not in (None, False)]
        if chat_only:
            raise AppError(f"{chat_only[0]} goes with --chat (a chat model's export)")
    embed_only = [f"--{name}" for name in ("cosine_only", "max_length") if getattr(args, name) not in (None, False)]
    if embed_only:
        raise AppError(f"{embed_only[0]} goes with --text (an encoder export's embeddings), not with --prompt")
    if args.max_new_tokens is not None and args.max_new_tokens < 0:
        raise AppError(f"--max_new_tokens must be >= 0, got {args.max_new_tokens}")
    if args.temperature is not None and args.temperature <= 0:
        raise AppError(f"--temperature must be > 0, got {args.temperature}")
    if args.top_k is not None and args.top_k < 0:
        raise AppError(f"--top_k must be >= 0, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise AppError(f"--top_p must be in (0, 1], got {args.top_p}")
    if args.seed is not None and not -(2**31) <= args.seed < 2**31:
        raise AppError(f"--seed must be an int32 (from -2147483648 to 2147483647), got {args.seed}")
    if args.num_threads is not None and args.num_threads < 1:
        raise AppError(f"--num_threads must be >= 1, got {args.num_threads}")
    if args.loop == "steps" and args.strategy == "beam":
        raise AppError("beam search runs inside the model only: use --loop=generate --strategy=beam")
    return given_knobs(args)


def _check_knobs(args, knobs: dict, table: dict[str, Knob]) -> dict:
    """Checks the given knobs against the export's knob table; returns them typed, with max_new_tokens."""
    unknown = [name for name in knobs if name not in table]
    if unknown:
        raise AppError(f"--{unknown[0]}: this export has no such knob (report.json has: {', '.join(table)})")
    knobs = {name: table[name].value(value, AppError) for name, value in knobs.items()}
    if "max_new_tokens" not in table:
        raise AppError("report.json's knob table lacks max_new_tokens: not a model written by `python -m export`")
    knobs["max_new_tokens"] = table["max_new_tokens"].value(args.max_new_tokens, AppError)
    for flag, values in (("--stop", args.stop), ("--ban", args.ban)):
        if any(value == "" for value in values):
            raise AppError(f"{flag} is empty: give the text to {'stop at' if flag == '--stop' else 'ban'}")
        if values and args.loop == "steps" and not args.chat:
            raise AppError(f"{flag} works with --loop=generate only (the in-graph loop applies it)")
    if args.loop == "steps":
        in_graph_only = [name for name in knobs if name not in (*STEP_KNOBS, "max_new_tokens")]
        if in_graph_only:
            raise AppError(f"--{in_graph_only[0]} works with --loop=generate only (the in-graph loop applies it)")
        strategy = args.strategy or "greedy"
        missing = [name for name in STEP_KNOBS if name not in table]
        if missing:
            raise AppError(f"report.json's knob table lacks {', '.join(missing)}, which the steps loop needs")
        for name in knobs:
            if name in STEP_KNOBS and strategy not in table[name].strategies:
                raise AppError(f"--{name} needs --strategy={'/'.join(table[name].strategies)}")
    return knobs


def _complete(model: EdgeModel, tokenizer, args, knobs: dict, prompt: str, out) -> None:
    """Generates one completion of `prompt`, writes it to `out` and the speed line to stderr.

    `knobs` holds `max_new_tokens` and the knobs given; the steps loop takes the others' defaults from the report.
    """
    knobs = dict(knobs)
    max_new_tokens = knobs.pop("max_new_tokens")
    prompt_ids = tokenizer.encode(prompt)
    model.check_prompt(prompt_ids)
    start = time.perf_counter()
    if args.loop == "steps":
        text_of = tokenizer.stream_decoder(prompt_ids)
        out.write(prompt)
        out.flush()
        count = 0
        for token in model.steps(prompt_ids, max_new_tokens, **_sampling(model, args, knobs)):
            count += 1
            out.write(text_of(token))
            out.flush()
        out.write(text_of(None) + "\n")
    else:
        stops = [tokenizer.encode(text) for text in args.stop]
        new_ids = model.generate(
            prompt_ids,
            max_new_tokens,
            strategy=args.strategy,
            stop_sequences=stops,
            banned_sequences=banned_sequences(tokenizer, args.ban),
            **knobs,
        )
        count = len(new_ids)
        text = tokenizer.continuation(prompt_ids, new_ids)
        cuts = [i for i in (text.find(stop) for stop in args.stop) if i >= 0]
        out.write(prompt + (text[: min(cuts)] if cuts else text) + "\n")  # cut before the stop string
    out.flush()
    seconds = time.perf_counter() - start
    strategy = args.strategy or ("greedy" if args.loop == "steps" else next(iter(model.strategies)))
    print(
        f"[{count} new tokens in {seconds:.3f} s: {count / max(seconds, 1e-9):.1f} tokens/s; "
        f"prompt {len(prompt_ids)} tokens; loop={args.loop}, strategy={strategy}]",
        file=sys.stderr,
        flush=True,
    )


def _sampling(model: EdgeModel, args, knobs: dict) -> dict:
    """The steps loop's knobs: given, or the report's defaults; temperature 0 (greedy) unless --strategy=sample."""
    sampling = {name: model.knobs[name].value(knobs.get(name)) for name in STEP_KNOBS}
    if args.strategy != "sample":
        sampling["temperature"] = 0.0  # greedy
    return sampling


def _model_and_report(args) -> tuple[str, dict]:
    """The export folder and its checked report; a folder given as `--model` becomes the report's fp32 file."""
    if os.path.isdir(args.model):
        report = read_report(args.model, AppError)
        entry = report.get("artefacts", {}).get("tflite") if isinstance(report.get("artefacts"), dict) else None
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or os.path.basename(path) != path:
            raise AppError(f"the export in {args.model} has no TFLite model; re-export with --formats=tflite")
        args.model = os.path.join(args.model, path)
    if not os.path.isfile(args.model):
        raise AppError(f"no model file at {args.model}")
    export_dir = os.path.dirname(os.path.abspath(args.model))
    return export_dir, read_report(export_dir, AppError)


# Generation flags, by their argparse default: any other value was given on the command line.
_GENERATION_FLAGS = {
    "prompt": None,
    "interactive": False,
    "chat": False,
    "system": None,
    "verbose": False,
    "loop": None,
    "strategy": None,
    "max_new_tokens": None,
}


def _embed(args, out) -> int:
    """`--text`: the embeddings (and a classifier's probabilities) of an encoder export, as JSON on `out`."""
    given = [name for name, default in _GENERATION_FLAGS.items() if getattr(args, name) != default]
    given += list(given_knobs(args))
    if given:
        raise AppError(f"--{given[0]} is a generation flag; --text embeds with an encoder export (no generation)")
    if args.cosine_only and len(args.text) != 2:
        raise AppError(f"--cosine_only needs exactly two --text, got {len(args.text)}")
    if args.num_threads is not None and args.num_threads < 1:
        raise AppError(f"--num_threads must be >= 1, got {args.num_threads}")
    export_dir, report = _model_and_report(args)
    kind = export_kind(report)
    if kind != ENCODER_KIND:
        raise AppError(f"--text needs an encoder (BERT) export; {args.model} is a {kind} export: use --prompt")
    facts = encoder_facts(report, os.path.join(export_dir, "report.json"))
    tokenizer = load_tokenizer(export_dir, report)
    inputs = encode_texts(tokenizer, args.text, facts, args.max_length)
    encoder = EdgeEncoder(args.model, num_threads=args.num_threads, kernels=args.kernels)
    start = time.perf_counter()
    result = embedding_result(encoder.embed(**inputs)["sentence_embedding"])
    if encoder.classifies:
        probabilities = softmax(encoder.classify(**inputs))
        result["probabilities"] = probabilities.tolist()
        result["labels"] = [int(i) for i in probabilities.argmax(axis=-1)]
    seconds = time.perf_counter() - start
    out.write(json.dumps(result["cosine"] if args.cosine_only else result) + "\n")
    out.flush()
    tokens = int(inputs["lengths"].sum())
    print(f"[{len(args.text)} texts, {tokens} tokens in {seconds:.3f} s; embed]", file=sys.stderr, flush=True)
    return 0


def _transcribe(args, out) -> int:
    """`--audio`: the transcript of a WAV file by a speech recognizer's export, on `out`."""
    flags = {**_GENERATION_FLAGS, "text": None, "cosine_only": False, "max_length": None}
    given = [name for name, default in flags.items() if name != "max_new_tokens" and getattr(args, name) != default]
    given += list(given_knobs(args))
    if given:
        raise AppError(f"--{given[0]} does not go with --audio (transcribe decodes with the export's strategy)")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise AppError(f"--max_new_tokens must be >= 1, got {args.max_new_tokens}")
    if args.num_threads is not None and args.num_threads < 1:
        raise AppError(f"--num_threads must be >= 1, got {args.num_threads}")
    export_dir, report = _model_and_report(args)
    kind = export_kind(report)
    if kind != ASR_KIND:
        raise AppError(f"--audio needs a speech recognizer's export; {args.model} is a {kind} export")
    transcriber = transcriber_for(export_dir, args.model, report, num_threads=args.num_threads, kernels=args.kernels)
    audio = read_wav(args.audio, transcriber.facts)
    tokenizer = load_tokenizer(export_dir, report)
    transcriber.transcribe(audio, 1)  # warm-up (LiteRT sets up its kernels on the first call): not timed
    start = time.perf_counter()
    ids = transcriber.transcribe(audio, args.max_new_tokens)
    seconds = time.perf_counter() - start
    out.write(tokenizer.decode(ids) + "\n")
    out.flush()
    duration = audio.size / transcriber.facts["sample_rate"]
    print(
        f"[{duration:.2f} s of audio in {seconds:.3f} s: real-time factor {seconds / duration:.3f}; {len(ids)} tokens]",
        file=sys.stderr,
        flush=True,
    )
    return 0


def _speak(args) -> int:
    """`--speak TEXT --out x.wav`: the speech of a speech synthesizer's export, as a WAV file."""
    flags = {**_GENERATION_FLAGS, "text": None, "cosine_only": False, "max_length": None, "audio": None}
    given = [name for name, default in flags.items() if getattr(args, name) != default] + list(given_knobs(args))
    if given:
        raise AppError(f"--{given[0]} does not go with --speak (it takes --out, --num_threads, --kernels)")
    if args.out is None:
        raise AppError("--speak needs --out x.wav, the file to write")
    check_out(args.out)
    if args.num_threads is not None and args.num_threads < 1:
        raise AppError(f"--num_threads must be >= 1, got {args.num_threads}")
    export_dir, report = _model_and_report(args)
    kind = export_kind(report)
    if kind != TTS_KIND:
        raise AppError(f"--speak needs a speech synthesizer's export; {args.model} is a {kind} export")
    facts = synthesizer_facts(report, os.path.join(export_dir, "report.json"))
    ids = encode_text(args.speak, facts)  # bad text: before the model loads
    speaker = EdgeSpeaker(args.model, facts, num_threads=args.num_threads, kernels=args.kernels)
    speaker.synthesize(ids)  # warm-up (LiteRT sets up its kernels on the first call): not timed
    start = time.perf_counter()
    waveform = speaker.speak(args.speak)
    seconds = time.perf_counter() - start
    write_wav(args.out, waveform, facts["sample_rate"])
    duration = waveform.size / facts["sample_rate"]
    print(
        f"[wrote {args.out}: {duration:.2f} s of audio in {seconds:.3f} s: "
        f"real-time factor {seconds / max(duration, 1e-9):.3f}; {len(ids)} characters]",
        file=sys.stderr,
        flush=True,
    )
    return 0


def run(argv: Sequence[str] | None = None, stdin=None, out=None) -> int:
    """The CLI; returns the exit code (2 on bad input)."""
    args = _parser().parse_args(argv)
    stdin, out = stdin or sys.stdin, out or sys.stdout
    try:
        if args.speak is not None:
            return _speak(args)
        if args.out is not None:
            raise AppError("--out goes with --speak TEXT (a speech synthesizer's export)")
        if args.audio is not None:
            return _transcribe(args, out)
        if args.text is not None:
            return _embed(args, out)
        args.loop = args.loop or "steps"
        knobs = _check_args(args)
        export_dir, report = _model_and_report(args)
        if export_kind(report) == ASR_KIND:
            raise AppError(f"{args.model} is a speech recognizer's export: pass --audio clip.wav, not --prompt")
        if export_kind(report) == TTS_KIND:
            raise AppError(f"{args.model} is a speech synthesizer's export: pass --speak TEXT --out x.wav")
        if export_kind(report) == ENCODER_KIND:
            raise AppError(
                f"{args.model} is an encoder (BERT) export: it embeds, it does not generate; "
                "pass --text TEXT instead of --prompt/--interactive"
            )
        tokenizer = load_tokenizer(export_dir, report)
        if args.chat:  # not a chat model: before the model loads
            template = ChatTemplate.from_report(report, tokenizer, os.path.join(export_dir, "report.json"))
        table = report_knobs(report, error=AppError)
        knobs = _check_knobs(args, knobs, table)
        banned_ids = report.get("model", {}).get("banned_ids")  # the ids the export never emits
        model = EdgeModel(
            args.model,
            tokenizer.eos_id,
            tokenizer.pad_id,
            table,
            num_threads=args.num_threads,
            banned_ids=banned_ids,
            kernels=args.kernels,
        )
        model.require_signatures(*(("prefill", "decode") if args.loop == "steps" else ("generate",)))
        # One call before timing: the speed line measures steady generation, not LiteRT's set-up.
        model.warm_up(args.loop, args.strategy if args.loop == "generate" else None)
        if args.chat:
            max_new_tokens = knobs.pop("max_new_tokens")
            session = EdgeChat(
                model,
                tokenizer,
                template,
                system=args.system or "",
                max_new_tokens=max_new_tokens,
                stop=args.stop,
                ban=args.ban,
                sampling=_sampling(model, args, knobs),
            )
            return chat_loop(session, stdin, out, verbose=args.verbose)
        if not args.interactive:
            _complete(model, tokenizer, args, knobs, args.prompt, out)
            return 0
    except AppError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"[{os.path.basename(args.model)}: up to {model.max_length} tokens; empty line or /quit ends]", file=sys.stderr
    )
    while True:
        out.write("> ")
        out.flush()
        line = stdin.readline()
        prompt = line.rstrip("\n")
        if not line or prompt in ("", "/quit"):
            out.write("\n" if not line else "")
            return 0
        try:
            _complete(model, tokenizer, args, knobs, prompt, out)
        except AppError as error:  # one bad prompt does not end the session
            print(f"error: {error}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(run())
