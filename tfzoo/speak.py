"""Speak text with a trained speech synthesizer: `python -m tfzoo.speak --workdir=DIR --text=TEXT --out=x.wav`.

With `--runtime=keras` (the default) it loads `DIR/model.keras` (a
`SpeechSynthesizer`, `configs/tts_numbers.py`) and `DIR/tokenizer/`; with
`--runtime=saved_model`, `tflite` (`--quantization=none|fp16|int8`) or `onnx`
it runs the export in `DIR/export/` (`python -m export`) through its runtime
adapter's `synthesize` (`tfzoo.runtimes`; TFLite and ONNX need no
TensorFlow). Either way the text is normalised (lower case, single spaces,
whole numbers 0-999 as words: "call 42" says "call forty two",
`tfzoo.kinds.tts.encode_text`), each character's duration, the log-mel frames
and the waveform (Griffin-Lim, in the graph) are predicted, and a 16 kHz mono
16-bit WAV file is written (a temporary name, then renamed; a waveform
peaking over 0.9 is scaled to 0.9, `wav_samples`). Prints one line: the file,
its length and the normalised text. Bad input (an empty text, a character the
model never saw: refused, naming the characters it knows; a text longer than
the model's `max_sequence_length`, an output path that is not a `.wav` in an
existing folder, a workdir without a synthesizer or without that export)
prints `error: ...` on stderr and exits with code 2.

Example:
    python -m tfzoo.speak --workdir=runs/tts_numbers --text="set the timer to twenty minutes" --out=timer.wav
    python -m tfzoo.speak --workdir=runs/tts_numbers --runtime=tflite --text="call 42" --out=call.wav
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

from tfzoo.cli import OneLineErrorParser, print_error
from tfzoo.data.speech_data import SAMPLE_RATE, write_wav
from tfzoo.data.tts_data import normalize_text
from tfzoo.kinds.tts import encode_text, tokenizer_characters
from tfzoo.run_folder import RunFolder

MODEL_CLASS = "SpeechSynthesizer"
RUNTIMES = ("keras", "saved_model", "tflite", "onnx")
PEAK = 0.9  # a waveform peaking higher is scaled to this peak before it is written


def wav_samples(waveform: np.ndarray) -> np.ndarray:
    """int16 samples of a float waveform as the WAV file holds them: scaled to peak `PEAK` if it peaks higher.

    `apps/edge` writes the same samples (`apps.edge.speaker.wav_samples`).

    Example:
    >>> wav_samples(np.array([0.5, -2.0], np.float32)).tolist()
    [7372, -29490]
    """
    waveform = np.asarray(waveform, np.float32)
    peak = float(np.abs(waveform).max(initial=0.0))
    if peak > PEAK:
        waveform = waveform / np.float32(peak) * np.float32(PEAK)
    return np.clip(np.round(waveform * 32767.0), -32768, 32767).astype(np.int16)


def encode_texts(tokenizer, texts: Sequence[str], max_length: int) -> np.ndarray:
    """int32 (len(texts), max_length) right-padded character ids of normalised `texts`.

    Raises:
        ValueError: an empty text, a character outside the vocabulary, or a text over `max_length` characters
            (`tfzoo.kinds.tts.encode_text`).
    """
    characters = tokenizer_characters(tokenizer)
    rows = [encode_text(text, characters, max_length) for text in texts]
    out = np.full((len(rows), max_length), tokenizer.pad_id, np.int32)
    for row, ids in enumerate(rows):
        out[row, : len(ids)] = ids
    return out


def speak(model, tokenizer, texts: Sequence[str], batch_size: int = 32) -> list[np.ndarray]:
    """float32 16 kHz waveforms of `texts` (each cut to its length) from a `SpeechSynthesizer`.

    Example:
    >>> waveforms = speak(model, tokenizer, ["call forty two"])  # doctest: +SKIP
    >>> waveforms[0].dtype.name  # doctest: +SKIP
    'float32'
    """
    import tensorflow as tf  # noqa: PLC0415 (TensorFlow only when speaking)

    ids = encode_texts(tokenizer, texts, int(model.max_sequence_length))
    synthesize = tf.function(model.synthesize, autograph=False)
    waveforms = []
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        real = len(batch)
        if real < batch_size and len(ids) > batch_size:  # one batch shape: one trace
            batch = np.concatenate([batch, np.repeat(batch[:1], batch_size - real, axis=0)])
        outputs = synthesize(tf.constant(batch))
        audio, lengths = outputs["waveform"].numpy(), outputs["waveform_lengths"].numpy()
        waveforms += [audio[row, : lengths[row]] for row in range(real)]
    return waveforms


def _check_out(path: str) -> None:
    if not path.lower().endswith(".wav"):
        raise ValueError(f"--out must name a .wav file, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--out folder {folder} does not exist")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0, or 2 on bad input)."""
    parser = OneLineErrorParser(prog="python -m tfzoo.speak", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a trained speech_synthesizer workdir")
    parser.add_argument("--text", required=True, help="the words to speak")
    parser.add_argument("--out", required=True, help="the .wav file to write (16 kHz mono 16-bit)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="keras", help="keras, or an exported format")
    parser.add_argument("--quantization", default="none", help="--runtime=tflite: none, fp16 or int8")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        _check_out(args.out)
        if args.quantization != "none" and args.runtime != "tflite":
            raise ValueError(f"--quantization={args.quantization} goes with --runtime=tflite")
        if args.runtime == "keras":
            waveform = _keras_waveform(args.workdir, args.text)
        else:
            waveform = _exported_waveform(args.workdir, args.runtime, args.quantization, args.text)
    except ValueError as error:  # RuntimeInputError, ExportReadError, RunFolderError: one line each
        return print_error(str(error).splitlines()[0] if str(error) else type(error).__name__)
    write_wav(args.out, wav_samples(waveform))  # a temporary name, then renamed
    seconds = waveform.size / SAMPLE_RATE
    print(f"wrote {args.out}: {seconds:.2f} s at {SAMPLE_RATE} Hz, mono, '{normalize_text(args.text)}'")
    return 0


def _keras_waveform(workdir: str, text: str) -> np.ndarray:
    folder = RunFolder(workdir)
    folder.check_exists()
    class_name, config = folder.model_config()  # one line before TensorFlow loads
    if class_name != MODEL_CLASS:
        raise ValueError(f"{folder.model_path} holds a {class_name}; tfzoo.speak needs a {MODEL_CLASS}")
    tokenizer = folder.load_tokenizer()
    encode_texts(tokenizer, [text], int(config["max_sequence_length"]))  # bad text: before TensorFlow
    return speak(folder.load_model(), tokenizer, [text])[0]


def _exported_waveform(workdir: str, runtime: str, quantization: str, text: str) -> np.ndarray:
    from tfzoo.export_report import read_report  # noqa: PLC0415 (no TensorFlow)
    from tfzoo.kinds import kind_named  # noqa: PLC0415
    from tfzoo.runtimes import load_runtime  # noqa: PLC0415

    info = read_report(workdir)["model"]
    kind = kind_named(info.get("kind", "decoder"))
    if "synthesize" not in kind.signatures:
        raise ValueError(
            f"the export in {RunFolder(workdir).export_dir} is {kind.description}; "
            "tfzoo.speak needs a speech synthesizer's"
        )
    kind.encode_texts(info, [text], info.get("max_length"))  # bad text: before the runtime loads
    return load_runtime(workdir, runtime, quantization=quantization).synthesize(text)[0]


if __name__ == "__main__":
    sys.exit(main())
