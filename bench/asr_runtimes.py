"""Held-out transcripts of an exported speech recognizer in every runtime: WER, agreement with Keras, TFLite RTF.

    python -m export --workdir=runs/asr_numbers
    python bench/asr_runtimes.py --workdir=runs/asr_numbers [--count=400] [--batch_size=20] [--num_threads=2]
        [--beam_size=4]

Reads the held-out utterances of the workdir's `speech:` dataset (voices and texts never heard in
training; from the data cache), transcribes them greedily with the trained Keras model (the runtime
interface over `model.keras`, with the export's `max_length` and banned ids), the SavedModel, the
TFLite fp32 file and the ONNX files (`--strategy`, default the export's `generate` strategy,
beam 4 unless exported otherwise), and prints one JSON object: per runtime `wer` (jiwer),
`exact_match`, `agree_with_keras` (the fraction of transcripts identical to Keras's) and `seconds`;
`wer_by_variant` (Keras, per held-out voice variant); with `--beam_size`, `keras_beam` (the Keras
model's WER with beam search, overall and per variant); `tflite_rtf` (the real-time factor of the
TFLite fp32 file: compute seconds per second of audio, one utterance per call as on a device, after
one warm-up call; `tflite_seconds_per_utterance`); and `machine` (`bench/timing.machine()`: the load
average says how busy the machine was).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from timing import machine  # bench/timing.py (a script's own folder is on sys.path)

RUNTIMES = ("keras", "saved_model", "tflite", "onnx")


def held_out(folder, count: int):
    """int16 audio (N, S), lengths (N,), transcripts and voices of the run's first `count` held-out utterances."""
    from tfzoo.data.speech_data import load_speech_data  # noqa: PLC0415 (after the arguments)

    config = folder.read_config()
    data = load_speech_data(
        config["dataset"],
        num_train=int(config.get("num_train", 6000)),
        num_validation=int(config.get("num_validation", 400)),
        seed=int(config.get("seed", 0)),
        data_dir=str(config.get("data_dir", "")),
        max_seconds=float(config.get("max_audio_seconds", 3.0)),
    )
    count = min(count, len(data.validation_texts))
    return (
        data.validation_audio[:count],
        data.validation_lengths[:count],
        list(data.validation_texts[:count]),
        list(data.validation_voices[:count]),
    )


def transcribe(
    runtime, tokenizer, audio, lengths, batch_size: int, trim: bool = False, strategy: str | None = None
) -> tuple[list[str], float]:
    """Greedy transcripts of every row, `batch_size` rows per call, and the seconds the calls took.

    `trim`: each call gets the batch's samples only (as an app sends a clip); else the padded rows
    (one shape: one trace for the Keras runtime).
    """
    texts, seconds = [], 0.0
    max_new_tokens = int(runtime.max_length) - 1
    for start in range(0, len(audio), batch_size):
        width = int(lengths[start : start + batch_size].max()) if trim else audio.shape[1]
        batch = audio[start : start + batch_size, :width]
        begin = time.perf_counter()
        sequences, sequence_lengths, _ = runtime.generate(
            audio=batch,
            audio_lengths=lengths[start : start + batch_size],
            max_new_tokens=max_new_tokens,
            strategy=strategy,
        )
        seconds += time.perf_counter() - begin
        texts += [tokenizer.decode(row[1:length]) for row, length in zip(sequences, sequence_lengths)]
    return texts, seconds


def keras_beam(model, tokenizer, audio, lengths, beam_size: int, max_length: int, batch_size: int) -> list[str]:
    """Beam-search transcripts of the Keras model (`beam_size` beams, length penalty 1), `batch_size` rows a call."""
    from tfzoo.decoding.knobs import KNOB_TABLE  # noqa: PLC0415 (TensorFlow after the arguments)
    from tfzoo.kinds import kind_of  # noqa: PLC0415

    special = set(tokenizer.special_tokens.values())
    start = tokenizer.special_tokens.get("<bos>", tokenizer.eos_id)
    generator = kind_of(model).generator(
        max_length=max_length,
        strategy="beam",
        beam_size=beam_size,
        eos_ids=(tokenizer.eos_id,),
        banned_ids=tuple(sorted(special - {tokenizer.eos_id})),
        pad_id=tokenizer.pad_id,
        jit_compile=True,
    )
    knobs = {knob.name: knob.default for knob in KNOB_TABLE}
    knobs["max_new_tokens"] = max_length - 1
    texts = []
    for first in range(0, len(audio), batch_size):
        rows = len(audio[first : first + batch_size])
        outputs = generator(
            np.full([rows, 1], start, np.int32),
            np.ones([rows], np.int32),
            audio=audio[first : first + batch_size].astype(np.float32) / np.float32(32768.0),
            audio_lengths=lengths[first : first + batch_size].astype(np.int32),
            **knobs,
        )
        sequences, sequence_lengths = np.asarray(outputs["sequences"]), np.asarray(outputs["sequence_lengths"])
        texts += [tokenizer.decode(row[1:length]) for row, length in zip(sequences, sequence_lengths)]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a trained and exported speech_recognizer run")
    parser.add_argument("--count", type=int, default=400, help="held-out utterances (at most the run's)")
    parser.add_argument("--batch_size", type=int, default=20, help="utterances per call (the RTF uses 1)")
    parser.add_argument("--num_threads", type=int, default=2, help="TFLite and ONNX Runtime threads")
    parser.add_argument("--strategy", default=None, help="greedy or beam (default: the export's `generate`)")
    parser.add_argument("--beam_size", type=int, default=0, help="> 0: also the Keras model's beam-search WER")
    args = parser.parse_args()

    from tfzoo.run_folder import RunFolder  # noqa: PLC0415 (TensorFlow after the arguments)
    from tfzoo.runtimes import load_runtime  # noqa: PLC0415
    from tfzoo.runtimes.keras import KerasRuntime  # noqa: PLC0415
    from tfzoo.training.speech_tasks import word_error_rate  # noqa: PLC0415

    folder = RunFolder(args.workdir)
    with open(folder.report_path, encoding="utf-8") as file:
        report = json.load(file)
    tokenizer = folder.load_tokenizer()
    audio, lengths, references, voices = held_out(folder, args.count)
    results, transcripts = {}, {}
    for name in RUNTIMES:
        if name != "keras" and name not in report["artefacts"]:
            continue  # not exported
        if name == "keras":
            runtime = KerasRuntime(folder.load_model(), report["model"])
        else:
            runtime = load_runtime(args.workdir, name, num_threads=args.num_threads)
        texts, seconds = transcribe(runtime, tokenizer, audio, lengths, args.batch_size, strategy=args.strategy)
        transcripts[name] = texts
        results[name] = {
            "wer": round(word_error_rate(texts, references), 4),
            "exact_match": round(float(np.mean([t == r for t, r in zip(texts, references)])), 4),
            "agree_with_keras": round(float(np.mean([t == k for t, k in zip(texts, transcripts["keras"])])), 4),
            "seconds": round(seconds, 2),
        }
        del runtime
    by_variant = {}
    for variant in sorted({v.split("+")[-1] for v in voices}):
        rows = [i for i, v in enumerate(voices) if v.split("+")[-1] == variant]
        hypotheses = [transcripts["keras"][i] for i in rows]
        by_variant[variant] = {
            "utterances": len(rows),
            "wer": round(word_error_rate(hypotheses, [references[i] for i in rows]), 4),
        }
    beam = {}
    if args.beam_size > 0:
        model = folder.load_model()
        texts = keras_beam(model, tokenizer, audio, lengths, args.beam_size, int(report["model"]["max_length"]), 40)
        beam = {"beam_size": args.beam_size, "wer": round(word_error_rate(texts, references), 4)}
        beam["exact_match"] = round(float(np.mean([t == r for t, r in zip(texts, references)])), 4)
        for variant in by_variant:
            rows = [i for i, v in enumerate(voices) if v.split("+")[-1] == variant]
            beam[variant] = round(word_error_rate([texts[i] for i in rows], [references[i] for i in rows]), 4)
    tflite = load_runtime(args.workdir, "tflite", num_threads=args.num_threads)
    transcribe(tflite, tokenizer, audio[:1], lengths[:1], 1, True, args.strategy)  # warm-up: not timed
    _, seconds = transcribe(tflite, tokenizer, audio, lengths, 1, True, args.strategy)
    audio_seconds = float(lengths.sum()) / 16000.0
    print(
        json.dumps(
            {
                "workdir": args.workdir,
                "utterances": len(references),
                "strategy": args.strategy or report["model"]["strategy"],
                "audio_seconds": round(audio_seconds, 1),
                "runtimes": results,
                "wer_by_variant": by_variant,
                "keras_beam": beam,
                "tflite_rtf": round(seconds / audio_seconds, 4),
                "tflite_seconds_per_utterance": round(seconds / len(references), 4),
                "tflite_num_threads": args.num_threads,
                "machine": machine("tensorflow", "ai-edge-litert", "onnxruntime", "keras"),
            }
        )
    )


if __name__ == "__main__":
    main()
