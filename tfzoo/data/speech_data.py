"""Speech datasets: spoken number phrases and commands synthesised with espeak-ng, or a folder of recordings.

Specs:

- `speech:numbers`: number phrases ("four hundred twelve", "three one four"),
  short commands ("volume up", "set the timer to twenty minutes") spoken by
  espeak-ng in many voices (accents `en`, `en-us`, `en-gb-scotland`, ... times
  voice variants `m1`...`m8`, `f1`...`f5`, `klatt`, ...), at random speeds and
  pitches, with random silence around them, additive white noise (SNR 10-40 dB)
  and a random gain; 16 kHz mono int16. Generated deterministically from the
  seed (each utterance from its own `(seed, split, index)` random stream) and
  cached under the data dir (`<data_dir>/speech/numbers-<key>.npz`, written to
  a temporary name, then renamed). The split is by text *and* by voice: no
  validation text is a training text, and the validation voice variants are
  never heard in training, with any accent (`VALIDATION_VARIANTS`). Every
  validation word occurs in some training text.
- `speech:DIR`: `NAME.wav` + `NAME.txt` pairs (16 kHz, mono, 16-bit PCM). With
  `DIR/train/` and `DIR/validation/` those are the splits; otherwise a file
  validates when crc32 of its name % 10 == 0.
- `tfds:NAME[/CONFIG][:AUDIO,TEXT]`: a speech dataset prepared with TensorFlow
  Datasets (`tfds:librispeech`, `tfds:speech_commands`): see
  `tfzoo.data.speech_tfds`.

espeak-ng writes 22050 Hz; the audio is resampled to 16 kHz with an FFT
(band-limited, numpy only). Bad audio (another rate, stereo, empty, longer
than `max_seconds`, not a WAV file) raises `DatasetError` naming what was
expected.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import wave
import zlib

import numpy as np

from tfzoo.data.audio_arrays import SAMPLE_RATE, pad_int16
from tfzoo.data.errors import DatasetError

SPEC_PREFIX = "speech:"
ESPEAK_RATE = 22050
GENERATOR_VERSION = 2  # part of the cache key: bump when the generated audio changes
DEFAULT_MAX_SECONDS = 3.0
# Accents (espeak-ng language voices) and voice variants (`<accent>+<variant>`); a voice is the pair.
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan")
# 70 training variants: espeak-ng's human-sounding ones except the validation variants and their siblings
# (edward2 and klatt5, which edward is built on); the robotic ones (robosoft*, UniRobot, Demonic, ...) are left out.
TRAIN_VARIANTS = (
    "m1", "m2", "m4", "m5", "m6", "m7", "m8", "f1", "f3", "f4", "f5", "klatt", "klatt3", "klatt4", "klatt6",
    "adam", "david", "john", "linda", "max", "paul", "robert", "steph", "steph2", "steph3", "travis", "Alex",
    "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Hugo", "Jacky", "Lee",
    "Marco", "Mario", "Michael", "Mike", "Nguyen", "Storm", "anika", "announcer", "antonio", "aunty",
    "belinda", "benjamin", "boris", "caleb", "ed", "grandma", "grandpa", "gustave", "iven", "iven3",
    "kaukovalta", "marcelo", "michel", "miguel", "norbert", "pablo", "quincy", "rob", "sandro", "victor",
    "zac", "whisperf",
)  # fmt: skip
VALIDATION_VARIANTS = ("m3", "f2", "klatt2", "edward", "shelby")
SPEEDS = (130, 210)  # words per minute, uniform
MAX_SPEED = 450  # espeak-ng's fastest; an utterance too long for max_seconds is spoken faster, up to this
PITCHES = (25, 75)  # espeak-ng pitch 0-99, uniform
SNR_DB = (10.0, 40.0)
PEAKS = (0.1, 0.9)  # peak amplitude after the random gain
SILENCE_SECONDS = (0.0, 0.25)  # before and after the speech, each
# Training audio only: the espeak-ng output is read at this factor times its rate before resampling, which
# scales tempo, pitch and every formant together (a vocal-tract-length change). Validation audio is unwarped.
WARPS = (0.88, 1.12)

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
COMMANDS = (
    "stop", "go", "yes", "no", "next", "back", "pause", "play music", "volume up", "volume down",
    "turn on the lights", "turn off the lights", "open the door", "close the door", "start", "cancel",
)  # fmt: skip
NUMBER_TEMPLATES = ("set the timer to {} minutes", "go to page {}", "call {}", "set volume to {}", "channel {}")


def number_words(n: int) -> str:
    """English words of 0 <= n < 1000 without "and".

    Example:
    >>> number_words(412), number_words(90), number_words(7)
    ('four hundred twelve', 'ninety', 'seven')
    """
    if not 0 <= n < 1000:
        raise ValueError(f"n must be in [0, 1000), got {n}")
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


def all_texts() -> list[str]:
    """Every distinct `speech:numbers` text, in a fixed order (numbers, digit strings, commands)."""
    texts = [number_words(n) for n in range(1000)]
    texts += [" ".join(ONES[int(d)] for d in f"{n:03d}") for n in range(1000)]  # "three one four"
    texts += list(COMMANDS)
    texts += [template.format(number_words(n)) for template in NUMBER_TEMPLATES for n in range(1, 100)]
    return list(dict.fromkeys(texts))


def split_texts(seed: int, validation_fraction: float = 0.15) -> tuple[list[str], list[str]]:
    """`(train texts, validation texts)`: disjoint; every validation word occurs in a training text."""
    texts = all_texts()
    order = np.random.default_rng([seed, 7]).permutation(len(texts))
    cut = int(len(texts) * validation_fraction)
    validation = [texts[i] for i in order[:cut]]
    train = [texts[i] for i in order[cut:]]
    words = {w for t in train for w in t.split()}
    return train, [t for t in validation if set(t.split()) <= words]


def voices(split: str) -> list[str]:
    """The espeak-ng voices (`accent+variant`) of a split: "train" or "validation"."""
    variants = TRAIN_VARIANTS if split == "train" else VALIDATION_VARIANTS
    return [f"{accent}+{variant}" for accent in ACCENTS for variant in variants]


@dataclasses.dataclass(frozen=True)
class SpeechData:
    """Train and validation utterances: int16 waveforms right-padded with zeros, lengths and transcripts.

    Args:
        name: str. The spec.
        sample_rate: int. Always 16000.
        train_audio: int16 (N, max_samples). Waveforms, zero after their length.
        train_lengths: int32 (N,). Samples per utterance.
        train_texts: tuple of str. Transcripts (lower case words).
        train_voices: tuple of str. The espeak-ng voice of each ("" for recordings).
        validation_audio, validation_lengths, validation_texts, validation_voices: the held-out split.
    """

    name: str
    sample_rate: int
    train_audio: np.ndarray
    train_lengths: np.ndarray
    train_texts: tuple[str, ...]
    train_voices: tuple[str, ...]
    validation_audio: np.ndarray
    validation_lengths: np.ndarray
    validation_texts: tuple[str, ...]
    validation_voices: tuple[str, ...]

    def tokenizer_text(self) -> str:
        """Every training transcript, one a line: the text to learn a vocabulary from."""
        return "\n".join(self.train_texts)

    def __repr__(self) -> str:
        return (
            f"SpeechData(name={self.name!r}, train={len(self.train_texts)} utterances, "
            f"validation={len(self.validation_texts)}, max {self.train_audio.shape[1] / self.sample_rate:.2f} s)"
        )


# ---- audio files ----


def read_wav(data: bytes, what: str, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """float32 samples in [-1, 1] of a 16 kHz mono 16-bit PCM WAV file's bytes; `DatasetError` otherwise.

    Example:
    >>> buffer = io.BytesIO()
    >>> with wave.open(buffer, "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(b"\\x00\\x40" * 160)
    >>> read_wav(buffer.getvalue(), "x.wav")[:2]
    array([0.5, 0.5], dtype=float32)
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as error:
        raise DatasetError(f"{what} is not a WAV file ({error}); expected 16 kHz mono 16-bit PCM WAV") from None
    if rate != SAMPLE_RATE:
        raise DatasetError(f"{what} has a sample rate of {rate} Hz; expected {SAMPLE_RATE} Hz")
    if channels != 1:
        raise DatasetError(f"{what} has {channels} channels; expected mono (1 channel)")
    if width != 2:
        raise DatasetError(f"{what} has {8 * width}-bit samples; expected 16-bit PCM")
    samples = np.frombuffer(frames, "<i2")
    if samples.size == 0:
        raise DatasetError(f"{what} holds no audio; expected 16 kHz mono speech")
    if samples.size > max_seconds * SAMPLE_RATE:
        raise DatasetError(f"{what} lasts {samples.size / SAMPLE_RATE:.2f} s; expected at most {max_seconds:g} s")
    return samples.astype(np.float32) / np.float32(32768.0)


def load_wav(path: str, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """float32 samples of a 16 kHz mono 16-bit WAV file (see `read_wav`); `DatasetError` names the problem."""
    if not os.path.isfile(path):
        raise DatasetError(f"audio file {path} does not exist")
    with open(path, "rb") as file:
        return read_wav(file.read(), path, max_seconds)


def write_wav(path: str, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Writes float samples in [-1, 1] (or int16) as a mono 16-bit WAV file (temporary name, then renamed)."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        samples = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
    temporary = f"{path}.tmp{os.getpid()}"
    with wave.open(temporary, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(samples.astype("<i2").tobytes())
    os.replace(temporary, path)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling by FFT (truncate or zero-pad the spectrum), float32.

    Example:
    >>> tone = np.sin(2 * np.pi * 1000 * np.arange(22050) / 22050)
    >>> out = resample(tone, 22050)
    >>> out.shape, round(float(np.abs(np.fft.rfft(out)).argmax()))
    ((16000,), 1000)
    """
    count = int(round(len(samples) * target / rate))
    spectrum = np.fft.rfft(np.asarray(samples, np.float64))
    bins = count // 2 + 1
    spectrum = spectrum[:bins] if len(spectrum) >= bins else np.pad(spectrum, (0, bins - len(spectrum)))
    return (np.fft.irfft(spectrum, count) * (count / len(samples))).astype(np.float32)


# ---- synthesis ----


def espeak_available() -> bool:
    """Whether the `espeak-ng` program is on PATH (`.ci/setup_apps` installs it)."""
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, voice: str, speed: int, pitch: int, warp: float = 1.0) -> np.ndarray:
    """float32 16 kHz speech of `text` by espeak-ng with `voice` (e.g. "en-us+f3"), trimmed of its silence.

    `warp` > 1 makes it faster and higher (tempo, pitch and formants scaled by `warp`).
    """
    try:
        result = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
            capture_output=True,
            check=True,
            timeout=60,
        )
    except FileNotFoundError:
        raise DatasetError("speech:numbers needs the espeak-ng program (apt-get install espeak-ng)") from None
    except subprocess.CalledProcessError as error:
        message = error.stderr.decode(errors="replace")[:200]
        raise DatasetError(f"espeak-ng failed for voice {voice}: {message}") from None
    data = result.stdout
    start = data.find(b"data")  # espeak-ng streams: the header's sizes are placeholders
    if data[:4] != b"RIFF" or start < 0:
        raise DatasetError(f"espeak-ng wrote no WAV data for voice {voice}")
    samples = np.frombuffer(data[start + 8 :][: (len(data) - start - 8) // 2 * 2], "<i2").astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    if loud.size == 0:
        raise DatasetError(f"espeak-ng wrote silence for {text!r} in voice {voice}")
    return resample(samples[loud[0] : loud[-1] + 1], ESPEAK_RATE * warp)


def _utterance(text: str, voice: str, rng: np.random.Generator, max_samples: int, warp: bool) -> np.ndarray:
    """One augmented utterance (int16): speech at a random speed and pitch (and warp), silence, noise and gain."""
    speed, pitch = int(rng.integers(*SPEEDS, endpoint=True)), int(rng.integers(*PITCHES, endpoint=True))
    factor = float(rng.uniform(*WARPS)) if warp else 1.0
    speech = synthesize(text, voice, speed, pitch, factor)
    while speech.size > max_samples:  # never cut words off: speak faster until it fits
        if speed >= MAX_SPEED:
            raise DatasetError(
                f"{text!r} lasts over {max_samples / SAMPLE_RATE:g} s even at {speed} wpm; raise max_seconds"
            )
        speed = min(speed + 40, MAX_SPEED)
        speech = synthesize(text, voice, speed, pitch, factor)
    before, after = (int(rng.uniform(*SILENCE_SECONDS) * SAMPLE_RATE) for _ in range(2))
    room = max_samples - speech.size
    before, after = min(before, room), min(after, room - min(before, room))
    audio = np.concatenate([np.zeros(before, np.float32), speech, np.zeros(after, np.float32)])
    power = float(np.mean(speech**2)) + 1e-12
    noise_power = power / 10 ** (rng.uniform(*SNR_DB) / 10)
    audio = audio + rng.standard_normal(audio.size).astype(np.float32) * np.float32(np.sqrt(noise_power))
    audio *= np.float32(rng.uniform(*PEAKS) / (np.abs(audio).max() + 1e-9))
    return np.round(audio * 32767).astype(np.int16)


def _generate(texts, voice_list, count: int, seed: int, split: int, max_samples: int, workers: int):
    """`count` utterances cycling through `texts` (shuffled) with a random voice each, in parallel."""
    order = np.random.default_rng([seed, split, 0]).permutation(len(texts))
    jobs = []
    for i in range(count):
        rng = np.random.default_rng([seed, split, 1, i])
        jobs.append((texts[order[i % len(texts)]], voice_list[int(rng.integers(len(voice_list)))], rng))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        audio = list(pool.map(lambda job: _utterance(*job, max_samples, split == 0), jobs))
    lengths = np.array([a.size for a in audio], np.int32)
    padded = np.zeros((count, max(int(lengths.max(initial=1)), 1)), np.int16)
    for row, a in enumerate(audio):
        padded[row, : a.size] = a
    return padded, lengths, tuple(job[0] for job in jobs), tuple(job[1] for job in jobs)


def espeak_version() -> str:
    """`espeak-ng --version` (part of the cache keys); `DatasetError` if the program is missing."""
    try:
        return subprocess.run(["espeak-ng", "--version"], capture_output=True, check=True).stdout.decode().strip()
    except (FileNotFoundError, subprocess.CalledProcessError):
        raise DatasetError("speech:numbers needs the espeak-ng program (apt-get install espeak-ng)") from None


def cached_arrays(data_dir: str, name: str, key: str, make) -> dict[str, np.ndarray]:
    """The arrays cached as `<data_dir>/speech/<name>-<hash of key>.npz`, made by `make()` (and cached) if absent.

    The file is written to a temporary name, then renamed, so a killed run never leaves half a cache.
    """
    folder = os.path.join(os.path.expanduser(data_dir or os.path.join("~", ".cache", "tfzoo")), "speech")
    path = os.path.join(folder, f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz")
    if os.path.isfile(path):
        with np.load(path, allow_pickle=False) as cached:
            return {name: cached[name] for name in cached.files}
    arrays = make()
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
    with os.fdopen(descriptor, "wb") as file:
        np.savez(file, **arrays)
    os.replace(temporary, path)
    return arrays


def _numbers(num_train: int, num_validation: int, seed: int, data_dir: str, max_seconds: float, workers: int):
    key = repr((GENERATOR_VERSION, espeak_version(), num_train, num_validation, seed, max_seconds))
    key += repr((TRAIN_VARIANTS, VALIDATION_VARIANTS, WARPS))

    def make():
        train_texts, validation_texts = split_texts(seed)
        max_samples = int(max_seconds * SAMPLE_RATE)
        train = _generate(train_texts, voices("train"), num_train, seed, 0, max_samples, workers)
        validation = _generate(validation_texts, voices("validation"), num_validation, seed, 1, max_samples, workers)
        arrays = {}
        for prefix, (audio, lengths, texts, voice_names) in (("train", train), ("validation", validation)):
            arrays.update({f"{prefix}_audio": audio, f"{prefix}_lengths": lengths})
            arrays.update({f"{prefix}_texts": np.array(texts), f"{prefix}_voices": np.array(voice_names)})
        return arrays

    return cached_arrays(data_dir, "numbers", key, make)


def _folder(path: str, max_seconds: float) -> dict:
    if not os.path.isdir(path):
        raise DatasetError(f"speech:{path}: expected 'speech:numbers' or a folder of .wav + .txt pairs")
    split_dirs = [os.path.join(path, s) for s in ("train", "validation")]
    has_splits = all(os.path.isdir(d) for d in split_dirs)
    pairs = {"train": [], "validation": []}
    for directory in split_dirs if has_splits else [path]:
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".wav"):
                continue
            wav = os.path.join(directory, name)
            txt = wav[: -len(".wav")] + ".txt"
            if not os.path.isfile(txt):
                raise DatasetError(f"{wav} has no transcript; expected {txt} beside it")
            with open(txt, encoding="utf-8") as file:
                text = " ".join(file.read().lower().split())
            if not text:
                raise DatasetError(f"{txt} is empty; expected the words spoken in {wav}")
            if has_splits:
                split = os.path.basename(directory)
            else:
                split = "validation" if zlib.crc32(name.encode()) % 10 == 0 else "train"
            pairs[split].append((load_wav(wav, max_seconds), text))
    arrays = {}
    for split, rows in pairs.items():
        if not rows:
            raise DatasetError(f"speech:{path} has no {split} .wav + .txt pairs")
        audio, lengths = pad_int16([np.round(w * 32767).astype(np.int16) for w, _ in rows])
        arrays.update({f"{split}_audio": audio, f"{split}_lengths": lengths})
        arrays.update({f"{split}_texts": np.array([t for _, t in rows]), f"{split}_voices": np.array([""] * len(rows))})
    return arrays


def load_speech_data(
    spec: str = "speech:numbers",
    *,
    num_train: int = 6000,
    num_validation: int = 400,
    seed: int = 0,
    data_dir: str = "",
    max_seconds: float = DEFAULT_MAX_SECONDS,
    workers: int = 2,
    max_examples: int = 0,
) -> SpeechData:
    """Loads (or generates and caches) the utterances named by `spec`.

    Args:
        spec: str. "speech:numbers", "speech:DIR" or "tfds:NAME[/CONFIG][:AUDIO,TEXT]". Defaults to
            "speech:numbers".
        num_train: int. speech:numbers: training utterances. Defaults to 6000.
        num_validation: int. speech:numbers: held-out utterances. Defaults to 400.
        seed: int. Same seed, same audio. Defaults to 0.
        data_dir: str. Cache folder root ("" = ~/.cache/tfzoo); for tfds: where the prepared data lives
            ("" = tfds's default). Defaults to "".
        max_seconds: float. Longest utterance; longer recordings are an error (tfds: left out). Defaults to 3.
        workers: int. espeak-ng processes run at once. Defaults to 2.
        max_examples: int. tfds: examples read per split, 0 = all. Defaults to 0.

    Raises:
        DatasetError: a malformed spec, bad sizes, bad audio or a missing espeak-ng.

    Example:
    >>> import tempfile
    >>> data = load_speech_data(num_train=2, num_validation=1, data_dir=tempfile.mkdtemp())
    >>> data.train_audio.dtype.name, data.sample_rate, set(data.train_voices) & set(data.validation_voices)
    ('int16', 16000, set())
    """
    is_tfds = isinstance(spec, str) and spec.startswith("tfds:")
    if not is_tfds and (not isinstance(spec, str) or not spec.startswith(SPEC_PREFIX) or spec == SPEC_PREFIX):
        raise DatasetError(
            f"speech spec must be 'speech:numbers', 'speech:DIR' or 'tfds:NAME[/CONFIG][:AUDIO,TEXT]', got {spec!r}"
        )
    if not (isinstance(max_seconds, int | float) and 0 < max_seconds <= 60):
        raise DatasetError(f"{spec}: max_seconds must be a number in (0, 60], got {max_seconds!r}")
    rest = spec[len(SPEC_PREFIX) :]
    if is_tfds:
        from tfzoo.data.speech_tfds import load_tfds_speech  # noqa: PLC0415 (tensorflow-datasets for tfds: only)

        arrays = load_tfds_speech(spec, data_dir, float(max_seconds), int(max_examples))
    elif rest == "numbers":
        for name, value in (("num_train", num_train), ("num_validation", num_validation)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DatasetError(f"{spec}: {name} must be a positive integer, got {value!r}")
        arrays = _numbers(num_train, num_validation, seed, data_dir, float(max_seconds), workers)
    else:
        arrays = _folder(rest, float(max_seconds))
    return SpeechData(
        name=spec,
        sample_rate=SAMPLE_RATE,
        train_audio=arrays["train_audio"],
        train_lengths=arrays["train_lengths"],
        train_texts=tuple(str(t) for t in arrays["train_texts"]),
        train_voices=tuple(str(v) for v in arrays["train_voices"]),
        validation_audio=arrays["validation_audio"],
        validation_lengths=arrays["validation_lengths"],
        validation_texts=tuple(str(t) for t in arrays["validation_texts"]),
        validation_voices=tuple(str(v) for v in arrays["validation_voices"]),
    )
