"""Speech-synthesis data: the `speech:numbers` texts spoken word by word by one espeak-ng voice, with durations.

Spec `tts:numbers`: the texts of `speech:numbers` (`speech_data.split_texts`:
number phrases, digit strings, commands; split by text with the seed, so no
validation sentence is a training sentence, and every validation word occurs
in training) spoken by one espeak-ng voice (`en-us` at 200 words per minute,
pitch 50 by default) with no noise, gain or warp. Each word is synthesised on
its own (`speech_data.synthesize`, trimmed of silence), padded with zeros to
whole pairs of 10 ms frames, and a sentence is its words with `GAP_FRAMES` of silence
between them. So the frame span of every word is known exactly, and that is
where the durations come from: a word's frames are spread evenly over its
letters, and each space lasts the gap (`SynthesisData.durations`). espeak-ng
itself gives no timings with the installed voices (`--pho` prints nothing
without mbrola voices), and a learned monotonic alignment would cost training
time that the 15-minute budget does not have.

The word clips are cached under the data dir
(`<data_dir>/speech/tts-words-<key>.npz`, via `speech_data.cached_arrays`);
sentences are assembled from them, deterministically.

Example:
>>> import tempfile
>>> data = load_tts_data(data_dir=tempfile.mkdtemp())  # doctest: +SKIP
>>> text = data.validation_texts[0]  # doctest: +SKIP
>>> int(data.durations(text).sum()) == data.waveform(text).size // data.frame_step  # doctest: +SKIP
True
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from tfzoo.data import speech_data
from tfzoo.data.errors import DatasetError

SPEC = "tts:numbers"
DEFAULT_VOICE = "en-us"  # espeak-ng's American English voice, default variant (not one of speech:numbers' voices)
DEFAULT_SPEED = 200  # words per minute: the longest sentence lasts 2.5 s, under the recognizer's 3 s
PITCH = 50
FRAME_STEP = 160  # 10 ms at 16 kHz: the mel front end's hop
GAP_FRAMES = 4  # silence between words (40 ms)
CLIP_FRAMES = 2  # word clips are padded to a multiple of this many frames (so a model may predict 2 per step)
GENERATOR_VERSION = 2  # part of the cache key: bump when the generated audio changes


def normalize_text(text: str) -> str:
    """Lower case, single spaces, and whole numbers 0-999 written out as words.

    Example:
    >>> normalize_text("  Call 42  ")
    'call forty two'
    """
    words = []
    for word in str(text).lower().split():
        words.append(speech_data.number_words(int(word)) if re.fullmatch(r"\d{1,3}", word) else word)
    return " ".join(words)


def spread(total: int, parts: int) -> np.ndarray:
    """`total` frames over `parts` letters as evenly as whole frames allow (int32, sums to `total`).

    Example:
    >>> spread(7, 3).tolist()
    [2, 3, 2]
    """
    edges = np.round(np.linspace(0, total, parts + 1)).astype(np.int64)
    return np.diff(edges).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class SynthesisData:
    """The texts of both splits and the voice's word clips, from which sentences and durations are built.

    Args:
        name: str. The spec.
        voice: str. The espeak-ng voice.
        speed: int. Words per minute.
        train_texts, validation_texts: tuple of str. Disjoint sentences (lower case words).
        word_audio: dict of str -> float32 (samples,). Each word's clip, a whole number of frames long.
        frame_step: int. Samples per frame (160).
        gap_frames: int. Frames of silence between words.
    """

    name: str
    voice: str
    speed: int
    train_texts: tuple[str, ...]
    validation_texts: tuple[str, ...]
    word_audio: dict
    frame_step: int = FRAME_STEP
    gap_frames: int = GAP_FRAMES

    def check_words(self, text: str) -> None:
        """`DatasetError` naming the words of `text` that no clip was made for."""
        unknown = sorted({w for w in text.split() if w not in self.word_audio})
        if unknown:
            raise DatasetError(f"no recording of {', '.join(map(repr, unknown))} in {self.name}")

    def waveform(self, text: str) -> np.ndarray:
        """float32 16 kHz speech of `text`: its word clips with `gap_frames` of silence between them."""
        self.check_words(text)
        gap = np.zeros(self.gap_frames * self.frame_step, np.float32)
        pieces = []
        for i, word in enumerate(text.split()):
            pieces += [gap] if i else []
            pieces.append(self.word_audio[word])
        return np.concatenate(pieces)

    def durations(self, text: str, frames_per_step: int = 1) -> np.ndarray:
        """int32 (len(text),): the frames of each character of `text` (letters share their word's, spaces the gap).

        Every duration is a multiple of `frames_per_step` (1 or `CLIP_FRAMES`).
        """
        self.check_words(text)
        if frames_per_step not in (1, CLIP_FRAMES):
            raise DatasetError(f"frames_per_step must be 1 or {CLIP_FRAMES}, got {frames_per_step!r}")
        out = []
        for i, word in enumerate(text.split()):
            out += [self.gap_frames] if i else []
            steps = spread(self.word_audio[word].size // (self.frame_step * frames_per_step), len(word))
            out += (steps * frames_per_step).tolist()
        return np.array(out, np.int32)

    def __repr__(self) -> str:
        return (
            f"SynthesisData(name={self.name!r}, voice={self.voice!r}, train={len(self.train_texts)} sentences, "
            f"validation={len(self.validation_texts)}, {len(self.word_audio)} words)"
        )


def load_tts_data(
    spec: str = SPEC, *, voice: str = DEFAULT_VOICE, speed: int = DEFAULT_SPEED, seed: int = 0, data_dir: str = ""
) -> SynthesisData:
    """Loads (or synthesises and caches) the word clips of `spec` and splits its texts with `seed`.

    Args:
        spec: str. "tts:numbers". Defaults to it.
        voice: str. An espeak-ng voice ("en-us", "en+f3", ...). Defaults to "en-us".
        speed: int. Words per minute, 80-450. Defaults to 200.
        seed: int. Seeds the split of the texts. Defaults to 0.
        data_dir: str. Cache folder root ("" = ~/.cache/tfzoo). Defaults to "".

    Raises:
        DatasetError: another spec, a bad voice or speed, or a missing espeak-ng.
    """
    if spec != SPEC:
        raise DatasetError(f"speech-synthesis dataset must be {SPEC!r}, got {spec!r}")
    if not isinstance(voice, str) or not re.fullmatch(r"[A-Za-z0-9_+-]+", voice):
        raise DatasetError(f"{spec}: voice must be an espeak-ng voice name such as 'en-us' or 'en+f3', got {voice!r}")
    if isinstance(speed, bool) or not isinstance(speed, int) or not 80 <= speed <= speech_data.MAX_SPEED:
        raise DatasetError(f"{spec}: speed must be an integer in [80, {speech_data.MAX_SPEED}] wpm, got {speed!r}")
    train, validation = speech_data.split_texts(seed)
    words = sorted({w for text in train + validation for w in text.split()})
    key = repr((GENERATOR_VERSION, speech_data.espeak_version(), voice, speed, PITCH, FRAME_STEP, CLIP_FRAMES, words))

    def make() -> dict[str, np.ndarray]:
        clips = [speech_data.synthesize(word, voice, speed, PITCH) for word in words]
        unit = FRAME_STEP * CLIP_FRAMES
        lengths = np.array([-(-clip.size // unit) * unit for clip in clips], np.int32)  # whole pairs of frames
        audio = np.zeros((len(clips), int(lengths.max())), np.float32)
        for row, clip in enumerate(clips):
            audio[row, : clip.size] = clip
        return {"words": np.array(words), "audio": audio, "lengths": lengths}

    arrays = speech_data.cached_arrays(data_dir, "tts-words", key, make)
    clips = {str(w): a[:n] for w, a, n in zip(arrays["words"], arrays["audio"], arrays["lengths"])}
    return SynthesisData(spec, voice, speed, tuple(train), tuple(validation), clips)
