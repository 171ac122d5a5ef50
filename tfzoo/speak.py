"""Speak text with a trained speech synthesizer: `python -m tfzoo.speak --workdir=DIR --text=TEXT --out=x.wav`.

Loads `DIR/model.keras` (a `SpeechSynthesizer`, `configs/tts_numbers.py`) and
`DIR/tokenizer/`, normalises the text (lower case, single spaces, whole
numbers 0-999 as words: "call 42" says "call forty two"), predicts each
character's duration, the log-mel frames and the waveform (Griffin-Lim, in
the graph) and writes a 16 kHz mono 16-bit WAV file (a temporary name, then
renamed). Prints one line: the file, its length and the frames per character.
Bad input (an empty text, a character the model never saw, a text longer
than the model's `max_sequence_length`, an output path that is not a `.wav`
in an existing folder, a workdir without a synthesizer) prints `error: ...`
on stderr and exits with code 2.

Example:
    python -m tfzoo.speak --workdir=runs/tts_numbers --text="set the timer to twenty minutes" --out=timer.wav
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

from tfzoo.cli import OneLineErrorParser, print_error
from tfzoo.data.speech_data import SAMPLE_RATE, write_wav
from tfzoo.data.tts_data import normalize_text
from tfzoo.run_folder import RunFolder

MODEL_CLASS = "SpeechSynthesizer"


def encode_texts(tokenizer, texts: Sequence[str], max_length: int) -> np.ndarray:
    """int32 (len(texts), max_length) right-padded character ids of normalised `texts`.

    Raises:
        ValueError: an empty text, a character outside the vocabulary, or a text over `max_length` characters.
    """
    rows = []
    for text in texts:
        normal = normalize_text(text)
        if not normal:
            raise ValueError("--text is empty; expected words to speak, e.g. --text='call forty two'")
        ids = [int(i) for i in tokenizer.encode(normal)]
        unknown = sorted({c for c, i in zip(normal, ids) if i == getattr(tokenizer, "unk_id", -1)})
        if unknown:
            known = "".join(sorted(c for c in getattr(tokenizer, "characters", []) if c.strip())) or "none"
            raise ValueError(f"--text has character(s) {''.join(unknown)!r} the model never saw; it knows {known!r}")
        if len(ids) > max_length:
            raise ValueError(f"--text has {len(ids)} characters; the model takes at most {max_length}")
        rows.append(ids)
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        _check_out(args.out)
        folder = RunFolder(args.workdir)
        folder.check_exists()
        class_name, config = folder.model_config()  # one line before TensorFlow loads
        if class_name != MODEL_CLASS:
            raise ValueError(f"{folder.model_path} holds a {class_name}; tfzoo.speak needs a {MODEL_CLASS}")
        tokenizer = folder.load_tokenizer()
        encode_texts(tokenizer, [args.text], int(config["max_sequence_length"]))  # bad text: before TensorFlow
        waveform = speak(folder.load_model(), tokenizer, [args.text])[0]
    except ValueError as error:
        return print_error(str(error).splitlines()[0] if str(error) else type(error).__name__)
    peak = float(np.abs(waveform).max(initial=0.0))
    write_wav(args.out, waveform / peak * 0.9 if peak > 0.9 else waveform)  # a temporary name, then renamed
    seconds = waveform.size / SAMPLE_RATE
    print(f"wrote {args.out}: {seconds:.2f} s at {SAMPLE_RATE} Hz, mono, '{normalize_text(args.text)}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
