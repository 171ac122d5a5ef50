"""Closed loop: the zoo's speech recognizer transcribes the held-out sentences our speech synthesizer speaks.

    python bench/tts_closed_loop.py --workdir=runs/tts_numbers --asr_workdir=runs/asr_numbers [--count=0]

Speaks every held-out sentence of the synthesizer's `tts:numbers` split (texts
never seen in training) with `tfzoo.speak.speak` (predicted durations, Griffin-
Lim in the graph), has the recognizer's Keras model (the runtime interface over
`model.keras`, with its export's `report.json`: max length and banned ids)
transcribe them greedily, and prints one JSON object: `wer` (jiwer) and
`exact_match` of those transcripts; the same for the espeak-ng target audio
itself (`reference_espeak`: the ceiling set by the voice) and for Griffin-Lim
of the target log-mel (`reference_griffin_lim`: the ceiling set by the
vocoder); `mel_l1` (teacher-forced durations, natural-log mel power) and
`duration_error` of the synthesizer on the same sentences (its task's
`evaluate`); `synthesis_rtf` (seconds of synthesis per second of speech,
batches of `--batch_size`); and `machine`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from asr_runtimes import transcribe  # bench/asr_runtimes.py (a script's own folder is on sys.path)
from timing import machine  # bench/timing.py


def pad(waveforms: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """int16 (N, width) waveforms peak-normalised to 0.9, their lengths, and how many were cut to `width`."""
    audio = np.zeros((len(waveforms), width), np.int16)
    lengths = np.zeros(len(waveforms), np.int32)
    cut = 0
    for row, waveform in enumerate(waveforms):
        waveform = waveform[:width]
        cut += int(waveform.size < len(waveforms[row]))
        peak = float(np.abs(waveform).max(initial=0.0)) or 1.0
        audio[row, : waveform.size] = np.round(waveform / peak * 0.9 * 32767).astype(np.int16)
        lengths[row] = max(waveform.size, 1)
    return audio, lengths, cut


def scores(texts: list[str], references: list[str]) -> dict:
    from tfzoo.training.speech_tasks import word_error_rate  # noqa: PLC0415 (after the arguments)

    return {
        "wer": round(word_error_rate(texts, references), 4),
        "exact_match": round(float(np.mean([t == r for t, r in zip(texts, references)])), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a trained speech_synthesizer run")
    parser.add_argument("--asr_workdir", required=True, help="a trained and exported speech_recognizer run")
    parser.add_argument("--count", type=int, default=0, help="held-out sentences (0 = all)")
    parser.add_argument("--batch_size", type=int, default=32, help="sentences per synthesis / recognition call")
    parser.add_argument("--examples", type=int, default=5, help="transcripts to print beside their references")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import ml_collections  # noqa: PLC0415 (TensorFlow after the arguments)

    from tfzoo.layers.griffin_lim import GriffinLim  # noqa: PLC0415
    from tfzoo.run_folder import RunFolder  # noqa: PLC0415
    from tfzoo.runtimes.keras import KerasRuntime  # noqa: PLC0415
    from tfzoo.speak import speak  # noqa: PLC0415
    from tfzoo.training.tts_tasks import SynthesisTask  # noqa: PLC0415

    folder, asr_folder = RunFolder(args.workdir), RunFolder(args.asr_workdir)
    if not os.path.isfile(asr_folder.report_path):  # the recognizer's facts (audio width, ids) come from its export
        sys.exit(
            f"error: {asr_folder.report_path} not found: export the recognizer first "
            f"(python -m export --workdir={args.asr_workdir} --formats=saved_model)"
        )
    task = SynthesisTask(ml_collections.ConfigDict(folder.read_config()))
    model, tokenizer = folder.load_model(), folder.load_tokenizer()
    count = args.count or len(task.validation_texts)
    references = list(task.validation_texts[:count])
    quality = task.evaluate(model)  # mel_l1, duration_error on every held-out sentence

    begin = time.perf_counter()
    spoken = speak(model, tokenizer, references, batch_size=args.batch_size)
    seconds = time.perf_counter() - begin
    espeak = [task.data.waveform(text) for text in references]
    griffin_lim = GriffinLim(num_mel_bins=int(model.num_mel_bins), iterations=int(model.griffin_lim_iterations))
    rebuilt = []
    log_mel = task.validation[2][:count] * task.mel_std + task.mel_mean  # targets, padding as MEL_PAD
    for start in range(0, count, args.batch_size):
        frames = task.validation_frames[start : start + args.batch_size]
        batch = log_mel[start : start + args.batch_size]
        silent = np.arange(batch.shape[1])[None, :] >= frames[:, None]
        batch = np.where(silent[..., None], np.log(1e-6), batch).astype(np.float32)
        out = griffin_lim(batch).numpy()
        rebuilt += [out[row, : (frames[row] - 1) * 160 + 400] for row in range(len(batch))]

    with open(asr_folder.report_path, encoding="utf-8") as file:
        report = json.load(file)
    asr_tokenizer = asr_folder.load_tokenizer()
    runtime = KerasRuntime(asr_folder.load_model(), report["model"])
    width = int(report["model"]["max_audio_samples"])
    results = {}
    for name, waveforms in (("synthesized", spoken), ("reference_espeak", espeak), ("reference_griffin_lim", rebuilt)):
        audio, lengths, cut = pad(waveforms, width)
        texts, _ = transcribe(runtime, asr_tokenizer, audio, lengths, args.batch_size, strategy="greedy")
        results[name] = {**scores(texts, references), "cut_to_max_audio": cut}
        if name == "synthesized":
            results[name]["examples"] = [
                {"reference": r, "transcript": t} for r, t in list(zip(references, texts))[: args.examples]
            ]
    speech_seconds = sum(w.size for w in spoken) / 16000.0
    print(
        json.dumps(
            {
                "workdir": args.workdir,
                "asr_workdir": args.asr_workdir,
                "sentences": count,
                "voice": task.data.voice,
                **results["synthesized"],
                "reference_espeak": results["reference_espeak"],
                "reference_griffin_lim": results["reference_griffin_lim"],
                "mel_l1": round(quality["mel_l1"], 4),
                "duration_error": round(quality["duration_error"], 4),
                "speech_seconds": round(speech_seconds, 1),
                "synthesis_seconds": round(seconds, 2),
                "synthesis_rtf": round(seconds / speech_seconds, 4),
                "machine": machine("tensorflow", "keras"),
            }
        )
    )


if __name__ == "__main__":
    main()
