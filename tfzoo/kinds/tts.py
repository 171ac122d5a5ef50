"""The `tts` kind: speech synthesizers (`SpeechSynthesizer`): text in, 16 kHz waveform out; no decode loop.

A synthesizer predicts every frame at once (durations, length regulator,
frame decoder, Griffin-Lim: `tfzoo.models.speech_synthesizer`), so it has no
KV cache, no `generate`, `prefill` or `decode`: `generative = False`.
`python -m tfzoo.speak` runs the Keras model. Its export (text -> waveform
in SavedModel, TFLite, ONNX) is not built yet: `python -m export` refuses a
synthesizer in one line (`check_model`), and `tfzoo.generate` refuses it as
it refuses every kind that does not generate.
"""

from __future__ import annotations

from tfzoo.kinds.base import ModelKind


class SynthesizerKind(ModelKind):
    """Speech synthesizers (`SpeechSynthesizer`): characters -> waveform with `synthesize`."""

    name = "tts"
    model_classes = ("SpeechSynthesizer",)
    required_methods = ("synthesize",)
    generative = False
    exportable = False
    description = "a speech synthesizer (text to speech: run it with python -m tfzoo.speak)"

    def check_model(self, model, path: str) -> str | None:
        problem = super().check_model(model, path)
        return problem or f"{type(model).__name__} in {path} is {self.description}; its export is not built yet"


KIND = SynthesizerKind
