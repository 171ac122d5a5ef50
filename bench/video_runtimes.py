"""Held-out captions of an exported video captioner in every runtime: exact match, pairs, agreement with Keras.

    python -m export --workdir=runs/video_captioner_shapes
    python bench/video_runtimes.py --workdir=runs/video_captioner_shapes [--count=1000] [--batch_size=50]
        [--num_threads=2] [--strategy=greedy]

Regenerates the workdir's held-out `video:shapes` clips (held-out event combinations, in
time-swapped pairs; same seed, same clips), captions them with the trained Keras model (the runtime
interface over `model.keras`), the SavedModel, the TFLite files (fp32, fp16, int8) and the ONNX
files, greedy by default (as the training metric), and prints one JSON object: per runtime
`exact_match`, `pair_exact_match` (both clips of a pair right), `agree_with_keras` (the fraction of
captions identical to Keras's) and `seconds`; and `machine` (`bench/timing.machine()`: the load
average says how busy the machine was).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from timing import machine  # bench/timing.py (a script's own folder is on sys.path)

RUNTIMES = ("keras", "saved_model", "tflite", "tflite_fp16", "tflite_int8", "onnx")


def held_out(folder, count: int) -> tuple[np.ndarray, list[str]]:
    """uint8 clips (N, T, S, S, 3) and captions of the run's first `count` held-out clips (count made even)."""
    from tfzoo.data.video_data import load_video_data  # noqa: PLC0415 (after the arguments)

    config = folder.read_config()
    data = load_video_data(
        config["dataset"],
        num_train=1,  # the held-out clips come from their own seed stream: the training count does not matter
        num_validation=int(config.get("num_validation", 1000)),
        num_frames=int(config.get("num_frames", 8)),
        seed=int(config.get("seed", 0)),
    )
    count = min(count + count % 2, len(data.validation_captions))
    return data.validation_videos[:count], list(data.validation_captions[:count])


def caption(runtime, tokenizer, videos: np.ndarray, batch_size: int, strategy: str) -> tuple[list[str], float]:
    """Captions of every clip, `batch_size` clips per call, and the seconds the calls took."""
    texts, seconds = [], 0.0
    max_new_tokens = int(runtime.max_length) - 1
    for start in range(0, len(videos), batch_size):
        batch = videos[start : start + batch_size].astype(np.float32) / np.float32(255.0)
        begin = time.perf_counter()
        sequences, sequence_lengths, _ = runtime.generate(video=batch, max_new_tokens=max_new_tokens, strategy=strategy)
        seconds += time.perf_counter() - begin
        texts += [tokenizer.decode(row[1:length]) for row, length in zip(sequences, sequence_lengths)]
    return texts, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a trained and exported video_captioner run")
    parser.add_argument("--count", type=int, default=1000, help="held-out clips (at most the run's)")
    parser.add_argument("--batch_size", type=int, default=50, help="clips per call")
    parser.add_argument("--num_threads", type=int, default=2, help="TFLite and ONNX Runtime threads")
    parser.add_argument("--strategy", default="greedy", help="greedy (the training metric's) or beam")
    args = parser.parse_args()

    from tfzoo.run_folder import RunFolder  # noqa: PLC0415 (TensorFlow after the arguments)
    from tfzoo.runtimes import load_runtime  # noqa: PLC0415
    from tfzoo.runtimes.keras import KerasRuntime  # noqa: PLC0415

    folder = RunFolder(args.workdir)
    with open(folder.report_path, encoding="utf-8") as file:
        report = json.load(file)
    tokenizer = folder.load_tokenizer()
    videos, references = held_out(folder, args.count)
    results, captions = {}, {}
    for name in RUNTIMES:
        if name != "keras" and name not in report["artefacts"]:
            continue  # not exported
        if name == "keras":
            runtime = KerasRuntime(folder.load_model(), report["model"])
        elif name.startswith("tflite_"):
            quantization = name.split("_", 1)[1]
            runtime = load_runtime(args.workdir, "tflite", quantization=quantization, num_threads=args.num_threads)
        else:
            runtime = load_runtime(args.workdir, name, num_threads=args.num_threads)
        texts, seconds = caption(runtime, tokenizer, videos, args.batch_size, args.strategy)
        captions[name] = texts
        right = np.array([t == r for t, r in zip(texts, references)])
        results[name] = {
            "exact_match": round(float(right.mean()), 4),
            "pair_exact_match": round(float(right.reshape(-1, 2).all(axis=1).mean()), 4),
            "agree_with_keras": round(float(np.mean([t == k for t, k in zip(texts, captions["keras"])])), 4),
            "seconds": round(seconds, 2),
        }
        del runtime
    print(
        json.dumps(
            {
                "workdir": args.workdir,
                "clips": len(references),
                "strategy": args.strategy,
                "runtimes": results,
                "machine": machine("tensorflow", "ai-edge-litert", "onnxruntime", "keras"),
            }
        )
    )


if __name__ == "__main__":
    main()
