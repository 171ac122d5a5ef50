"""Text to speech with a speech synthesizer's (`tts`) `.tflite` export: numpy, ai_edge_litert and the stdlib only.

    report = read_report("runs/tts_numbers/export", AppError)
    facts = synthesizer_facts(report, "runs/tts_numbers/export/report.json")  # characters, limits, rate
    speaker = EdgeSpeaker("runs/tts_numbers/export/speech_synthesizer.tflite", facts)
    waveform = speaker.speak("call 42")                                       # float32, cut to its length
    write_wav("call.wav", waveform, facts["sample_rate"])                     # a temporary name, then renamed

What `python -m tfzoo.speak --runtime=tflite` computes, without tfzoo: the
text normalised as `tfzoo.data.tts_data.normalize_text` does it (lower case,
single spaces, whole numbers 0-999 as words), mapped to ids with the report's
`model.characters` table (an empty text, a character the model never saw or
a text over `model.max_length` characters is an `AppError` with the same
words as the Python runtime's), fed to the export's `synthesize` signature
(`token_ids` [1, max_sequence_length], `lengths` [1]); the waveform is cut
to `waveform_lengths`. The WAV file holds the samples `tfzoo.speak` writes
(`wav_samples`: scaled to a 0.9 peak if it peaks higher, 16-bit PCM).
"""

from __future__ import annotations

import os
import re
import wave

import numpy as np

from apps.edge.errors import AppError

TTS_KIND = "tts"  # report["model"]["kind"] of a speech synthesizer's export
SIGNATURE = "synthesize"
PEAK = 0.9  # as `tfzoo.speak.PEAK`
ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words of 0 <= n < 1000 without "and" (`tfzoo.data.speech_data.number_words`).

    Example:
    >>> number_words(412), number_words(90)
    ('four hundred twelve', 'ninety')
    """
    words = []
    if n >= 100:
        words += [ONES[n // 100], "hundred"]
        n %= 100
        if n == 0:
            return " ".join(words)
    if n >= 20:
        words.append(TENS[n // 10])
        if n % 10:
            words.append(ONES[n % 10])
    else:
        words.append(ONES[n])
    return " ".join(words)


def normalize_text(text: str) -> str:
    """Lower case, single spaces, whole numbers 0-999 as words (`tfzoo.data.tts_data.normalize_text`).

    Example:
    >>> normalize_text("  Call 42  ")
    'call forty two'
    """
    words = []
    for word in str(text).lower().split():
        words.append(number_words(int(word)) if re.fullmatch(r"\d{1,3}", word) else word)
    return " ".join(words)


def synthesizer_facts(report: dict, source: str) -> dict:
    """`characters`, `max_length`, `max_sequence_length`, `pad_id`, `sample_rate` of a `tts` export's report."""
    model = report.get("model") if isinstance(report.get("model"), dict) else {}
    facts = {name: model.get(name) for name in ("max_length", "max_sequence_length", "pad_id", "sample_rate")}
    for name, value in facts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise AppError(f"{source}: model.{name} must be a non-negative integer, got {value!r} (re-export)")
    characters = model.get("characters")
    if not isinstance(characters, dict) or not all(
        isinstance(c, str) and len(c) == 1 and isinstance(i, int) and not isinstance(i, bool) and i >= 0
        for c, i in characters.items()
    ):
        raise AppError(f"{source}: model.characters must map single characters to ids (re-export)")
    facts["characters"] = characters
    return facts


def encode_text(text: str, facts: dict) -> list[int]:
    """Character ids of the normalised text; `AppError` as `tfzoo.kinds.tts.encode_text` raises it."""
    normal = normalize_text(text)
    if not normal:
        raise AppError("the text is empty; expected words to speak, e.g. 'call forty two'")
    characters = facts["characters"]
    unknown = sorted({c for c in normal if c not in characters})
    if unknown:
        known = "".join(sorted(c for c in characters if c.strip())) or "none"
        raise AppError(
            f"the text has character(s) {''.join(unknown)!r} the model never saw; it knows {known!r} and the space"
        )
    limit = facts["max_length"]
    if len(normal) > limit:
        raise AppError(f"the text has {len(normal)} characters (after normalisation); the model takes at most {limit}")
    return [int(characters[c]) for c in normal]


def wav_samples(waveform: np.ndarray) -> np.ndarray:
    """int16 samples of a float waveform: scaled to peak `PEAK` if it peaks higher (`tfzoo.speak.wav_samples`)."""
    waveform = np.asarray(waveform, np.float32)
    peak = float(np.abs(waveform).max(initial=0.0))
    if peak > PEAK:
        waveform = waveform / np.float32(peak) * np.float32(PEAK)
    return np.clip(np.round(waveform * 32767.0), -32768, 32767).astype(np.int16)


def check_out(path: str) -> None:
    """`AppError` unless `path` names a `.wav` file in an existing folder."""
    if not path.lower().endswith(".wav"):
        raise AppError(f"--out must name a .wav file, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise AppError(f"--out folder {folder} does not exist")


def write_wav(path: str, waveform: np.ndarray, sample_rate: int) -> None:
    """Writes a float waveform as a mono 16-bit WAV file (`wav_samples`): a temporary name, then renamed."""
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with wave.open(temporary, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(sample_rate)
            writer.writeframes(wav_samples(waveform).astype("<i2").tobytes())
        os.replace(temporary, path)
    except OSError as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise AppError(f"cannot write {path}: {error.strerror or error}") from None


class EdgeSpeaker:
    """Runs the `synthesize` signature of a `tts` export's `.tflite` file.

    Args:
        path: str. The `.tflite` file (fp32, fp16 or int8).
        facts: dict. `synthesizer_facts(report)`.
        num_threads: int or None. Interpreter threads (None: LiteRT's default).
        kernels: str. "xnnpack" or "builtin" (`apps.edge.edge_model.KERNELS`). Defaults to "xnnpack".

    Example:
    >>> speaker = EdgeSpeaker("runs/tts_numbers/export/speech_synthesizer.tflite", facts)  # doctest: +SKIP
    >>> speaker.speak("call forty two").dtype.name  # doctest: +SKIP
    'float32'
    """

    def __init__(self, path: str, facts: dict, num_threads: int | None = None, kernels: str = "xnnpack"):
        from apps.edge.edge_model import load_interpreter  # noqa: PLC0415 (the one loader of .tflite files)

        self.path, self.facts = path, facts
        self.interpreter, signatures = load_interpreter(path, num_threads, kernels)
        if SIGNATURE not in signatures:
            have = ", ".join(sorted(signatures)) or "none"
            raise AppError(f"{path} has no {SIGNATURE} signature (it has: {have}): not a speech synthesizer's export")
        self._runner = self.interpreter.get_signature_runner(SIGNATURE)

    def synthesize(self, ids: list[int]) -> dict[str, np.ndarray]:
        """The `synthesize` outputs of one row of character ids (padded to `max_sequence_length` here)."""
        width = self.facts["max_sequence_length"]
        token_ids = np.full((1, width), self.facts["pad_id"], np.int32)
        token_ids[0, : len(ids)] = ids
        return self._runner(token_ids=token_ids, lengths=np.array([len(ids)], np.int32))

    def speak(self, text: str) -> np.ndarray:
        """float32 waveform of `text` at `facts["sample_rate"]`, cut to its length."""
        outputs = self.synthesize(encode_text(text, self.facts))
        return outputs["waveform"][0, : int(outputs["waveform_lengths"][0])]
