"""Speech recognition with a speech recognizer's (`asr`) `.tflite` export: numpy, ai_edge_litert and the stdlib only.

    report = read_report("runs/asr_numbers/export", AppError)
    facts = speech_facts(report, "runs/asr_numbers/export/report.json")   # sample rate, max samples, ids
    audio = read_wav("clip.wav", facts)                                     # float32 in [-1, 1]
    ids = EdgeTranscriber("runs/asr_numbers/export/speech_recognizer.tflite", facts).transcribe(audio)
    text = load_tokenizer("runs/asr_numbers/export", report).decode(ids)

What `python -m tfzoo.generate --audio=clip.wav --runtime=tflite` computes, without
tfzoo: the WAV file is read with the stdlib `wave` module (16 kHz, mono, 16-bit PCM,
at most the report's `max_audio_samples`; anything else is an `AppError` naming what
was expected), scaled by 1/32768 and fed to the export's `transcribe` signature
(`audio` [1, samples], `audio_lengths` [1], `max_new_tokens` and its strategy's knobs'
defaults from the report); the ids after the start token, up to `<eos>`, are the
transcript. The checks repeat `tfzoo.data.speech_data.read_wav`'s (the apps import
nothing from tfzoo), with the same messages.
"""

from __future__ import annotations

import os
import wave

import numpy as np

from apps.edge.errors import AppError
from apps.edge.json_files import report_knobs
from apps.edge.knobs import SEQUENCE_INPUTS, knob_inputs, sequence_inputs

ASR_KIND = "asr"  # report["model"]["kind"] of a speech recognizer's export
SIGNATURE = "transcribe"


def speech_facts(report: dict, source: str) -> dict[str, int]:
    """`sample_rate`, `max_audio_samples`, `start_id`, `eos_id`, `pad_id` of an `asr` export's report.

    Example:
    >>> speech_facts({"model": {"kind": "asr", "sample_rate": 16000, "max_audio_samples": 48000, "start_id": 2,
    ...                         "eos_ids": [1], "pad_id": 0}}, "report.json")["max_audio_samples"]
    48000
    """
    model = report.get("model") if isinstance(report.get("model"), dict) else {}
    eos_ids = model.get("eos_ids")
    facts = {
        "sample_rate": model.get("sample_rate"),
        "max_audio_samples": model.get("max_audio_samples"),
        "start_id": model.get("start_id"),
        "eos_id": eos_ids[0] if isinstance(eos_ids, list) and eos_ids else None,
        "pad_id": model.get("pad_id"),
    }
    for name, value in facts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise AppError(f"{source}: model.{name} must be a non-negative integer, got {value!r} (re-export)")
    return facts


def read_wav(path: str, facts: dict[str, int]) -> np.ndarray:
    """float32 samples in [-1, 1] of a mono 16-bit PCM WAV file at the export's rate; `AppError` otherwise.

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.wav")
    >>> with wave.open(path, "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(b"\\x00\\x40" * 800)
    >>> read_wav(path, {"sample_rate": 16000, "max_audio_samples": 48000})[:2]
    array([0.5, 0.5], dtype=float32)
    """
    rate, limit = facts["sample_rate"], facts["max_audio_samples"]
    expected = f"expected {rate // 1000:g} kHz mono 16-bit PCM WAV" if rate % 1000 == 0 else f"expected {rate} Hz"
    if not os.path.isfile(path):
        raise AppError(f"no audio file at {path}; {expected}")
    try:
        with wave.open(path, "rb") as reader:
            channels, width, file_rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            count = reader.getnframes()
            if count > limit or channels != 1 or width != 2 or file_rate != rate:
                frames = b""  # refused below: not read into memory
            else:
                frames = reader.readframes(count)
    except (wave.Error, EOFError) as error:
        raise AppError(f"{path} is not a WAV file ({error}); {expected}") from None
    if file_rate != rate:
        raise AppError(f"{path} has a sample rate of {file_rate} Hz; expected {rate} Hz")
    if channels != 1:
        raise AppError(f"{path} has {channels} channels; expected mono (1 channel)")
    if width != 2:
        raise AppError(f"{path} has {8 * width}-bit samples; expected 16-bit PCM")
    if count == 0:
        raise AppError(f"{path} holds no audio; expected {rate // 1000:g} kHz mono speech")
    if count > limit:
        raise AppError(f"{path} lasts {count / rate:.2f} s; expected at most {limit / rate:g} s ({limit} samples)")
    samples = np.frombuffer(frames, "<i2")
    if samples.size == 0:
        raise AppError(f"{path} holds no audio; expected {rate // 1000:g} kHz mono speech")
    return samples.astype(np.float32) / np.float32(32768.0)


class EdgeTranscriber:
    """Runs the `transcribe` signature of an `asr` export's `.tflite` file.

    Args:
        path: str. The `.tflite` file (fp32, fp16 or int8).
        facts: dict. `speech_facts(report)`.
        knobs: dict. The export's knob table (`apps.edge.json_files.report_knobs`).
        num_threads: int or None. Interpreter threads (None: LiteRT's default).
        kernels: str. "xnnpack" or "builtin" (`apps.edge.edge_model.KERNELS`). Defaults to "xnnpack".

    Example:
    >>> transcriber = EdgeTranscriber("runs/asr_numbers/export/speech_recognizer.tflite", facts, knobs)
    ... # doctest: +SKIP
    >>> transcriber.transcribe(np.zeros(16000, np.float32))  # doctest: +SKIP
    [12, 7]
    """

    def __init__(self, path: str, facts: dict, knobs: dict, num_threads: int | None = None, kernels: str = "xnnpack"):
        from apps.edge.edge_model import load_interpreter  # noqa: PLC0415 (the one loader of .tflite files)

        self.path, self.facts, self.knobs = path, facts, knobs
        self.interpreter, signatures = load_interpreter(path, num_threads, kernels)
        if SIGNATURE not in signatures:
            have = ", ".join(sorted(signatures)) or "none"
            raise AppError(f"{path} has no {SIGNATURE} signature (it has: {have}): not a speech recognizer's export")
        self.inputs = list(signatures[SIGNATURE]["inputs"])
        self._runner = self.interpreter.get_signature_runner(SIGNATURE)

    def transcribe(self, audio: np.ndarray, max_new_tokens: int | None = None) -> list[int]:
        """Transcript ids of one waveform (samples,) float32 in [-1, 1]: after the start token, no `<eos>`.

        The ids come from the export's `transcribe` signature, decoded with the export's strategy.
        """
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 1 or audio.size == 0 or audio.size > self.facts["max_audio_samples"]:
            raise AppError(
                f"expected one waveform of 1 to {self.facts['max_audio_samples']} samples, got shape {audio.shape}"
            )
        inputs = {"audio": audio[None], "audio_lengths": np.array([audio.size], np.int32)}
        inputs.update(knob_inputs(self.knobs, self.inputs, {"max_new_tokens": max_new_tokens}, AppError))
        details = self._runner.get_input_details()
        shapes = {name: details[name]["shape"] for name in SEQUENCE_INPUTS if name in details}
        inputs.update(sequence_inputs(shapes, {}, AppError))  # no stop or banned sequences: all -1
        outputs = self._runner(**inputs)
        sequence = outputs["sequences"][0, 1 : int(outputs["sequence_lengths"][0])]
        ends = {self.facts["eos_id"], self.facts["pad_id"]}
        ids = []
        for token in sequence:
            if int(token) in ends:
                break
            ids.append(int(token))
        return ids


def transcriber_for(export_dir: str, model_path: str, report: dict, **options) -> EdgeTranscriber:
    """The checked facts and knob table of `report`, and the transcriber of `model_path`."""
    source = os.path.join(export_dir, "report.json")
    return EdgeTranscriber(model_path, speech_facts(report, source), report_knobs(report, source, AppError), **options)
