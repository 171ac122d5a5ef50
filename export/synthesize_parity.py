"""Parity of a speech synthesizer's export (`synthesize`, `serving_default`) against the Keras model.

On the kind's parity sentences (`tfzoo/kinds/tts.py`: held-out sentences of
different lengths, character ids from the report's table):

- `durations_identical`, `frame_lengths_identical`: the predicted frames per
  character and the frame counts equal the Keras model's on every row (fp32
  files must: one frame more or less shifts everything after it);
  `duration_agreement`: the fraction of characters whose duration is equal.
- `log_mel_max_diff`: the largest absolute difference of the natural-log mel
  power over the frames real in both; fp32 within `FP32_LOG_MEL_MAX_DIFF`.
- `waveform_snr_db`: the Keras waveform's energy over that of the difference,
  in dB; fp32 at least `FP32_MIN_WAVEFORM_SNR_DB`. Griffin-Lim's rounds of
  phase estimates amplify float noise (a log-mel off by 5e-6 gives samples off
  by about 1% of the peak after 8 rounds), so the waveform is bounded by its
  error energy, not sample by sample; `waveform_max_diff` and
  `waveform_relative_diff` (that over the largest Keras sample) are recorded.
- `waveform_finite`: no NaN or infinity in the waveform and the log-mel (every file).
- `waveform_spectrum_mean_diff`: the mean absolute difference of the
  waveforms' natural-log power spectra (Hann frames of 400 samples every 160,
  `log_spectrum`) over each row's frames: what is heard, whatever the phase.
- Quantized files (fp16, int8) record these; they must reach
  `QUANTIZED_MIN_DURATION_AGREEMENT`, `QUANTIZED_LOG_MEL_MEAN_DIFF` and
  `QUANTIZED_SPECTRUM_MEAN_DIFF`. Their samples are not bounded: a duration
  one frame off moves every sample after it, and Griffin-Lim's DFT matrices
  stored in 16 or 8 bits give another phase estimate (on the tiny test model,
  8 rounds: fp16 10 dB SNR and spectrum diff 0.14, int8 -0.4 dB and 0.62;
  fp32 TFLite 56 dB and 0.0002), so fp32 is the file for the Keras audio.
- `serving_default_*` (the SavedModel): the raw texts in, against the Keras
  outputs of the Python-encoded ids; durations identical and the fp32 bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FP32_LOG_MEL_MAX_DIFF = 1e-3
FP32_MIN_WAVEFORM_SNR_DB = 30.0
QUANTIZED_MIN_DURATION_AGREEMENT = 0.8
QUANTIZED_LOG_MEL_MEAN_DIFF = 0.5
QUANTIZED_SPECTRUM_MEAN_DIFF = 1.0


def reference(keras_runtime, prompts: dict) -> dict[str, Any]:
    """The Keras model's `synthesize` outputs on the parity inputs."""
    return {"synthesize": keras_runtime.synthesize_ids(prompts["token_ids"], prompts["lengths"])}


def log_spectrum(waveforms: np.ndarray, frame_length: int = 400, frame_step: int = 160) -> np.ndarray:
    """Natural-log power (B, frames, frame_length // 2 + 1) of Hann-windowed frames of float waveforms (B, S)."""
    count = 1 + max(waveforms.shape[1] - frame_length, 0) // frame_step
    index = np.arange(count)[:, None] * frame_step + np.arange(frame_length)[None, :]
    frames = np.asarray(waveforms, np.float64)[:, index] * np.hanning(frame_length + 1)[:-1]
    return np.log(np.abs(np.fft.rfft(frames, axis=-1)) ** 2 + 1e-10)


def compare(got: dict, want: dict) -> dict[str, Any]:
    """The differences of one `synthesize` output from the reference (module docstring)."""
    frames = np.arange(want["log_mel"].shape[1])[None, :]
    both = frames < np.minimum(got["frame_lengths"], want["frame_lengths"])[:, None]  # (B, T)
    mel = np.abs(got["log_mel"] - want["log_mel"])[both] if both.any() else np.zeros(1)
    waveform = float(np.abs(got["waveform"] - want["waveform"]).max())
    peak = float(np.abs(want["waveform"]).max())
    energy = float(np.sum(np.square(want["waveform"], dtype=np.float64)))
    noise = float(np.sum(np.square(got["waveform"] - want["waveform"], dtype=np.float64)))
    spectra = np.abs(log_spectrum(np.nan_to_num(got["waveform"])) - log_spectrum(want["waveform"]))  # (B, F, K)
    spoken = np.arange(spectra.shape[1])[None, :] < (want["frame_lengths"][:, None] - 2)  # frames inside each row
    return {
        "waveform_spectrum_mean_diff": float(spectra[spoken].mean()) if spoken.any() else 0.0,
        "waveform_finite": bool(np.isfinite(got["waveform"]).all() and np.isfinite(got["log_mel"]).all()),
        "durations_identical": bool(np.array_equal(got["durations"], want["durations"])),
        "frame_lengths_identical": bool(np.array_equal(got["frame_lengths"], want["frame_lengths"])),
        "duration_agreement": float(np.mean(got["durations"] == want["durations"])),
        "log_mel_max_diff": float(mel.max()),
        "log_mel_mean_diff": float(mel.mean()),
        "waveform_max_diff": waveform,
        "waveform_relative_diff": waveform / max(peak, 1e-12),
        "waveform_snr_db": float(10 * np.log10(max(energy, 1e-30) / max(noise, 1e-30))),
    }


def _fp32_failures(result: dict, prefix: str = "") -> list[str]:
    failures = []
    if not result["durations_identical"] or not result["frame_lengths_identical"]:
        failures.append(f"{prefix}durations differ from Keras (agreement {result['duration_agreement']:.3f})")
    if not result["log_mel_max_diff"] <= FP32_LOG_MEL_MAX_DIFF:
        failures.append(f"{prefix}log_mel differs by {result['log_mel_max_diff']:.3g} > {FP32_LOG_MEL_MAX_DIFF}")
    if not result["waveform_snr_db"] >= FP32_MIN_WAVEFORM_SNR_DB:
        failures.append(
            f"{prefix}waveform differs from Keras at {result['waveform_snr_db']:.1f} dB SNR "
            f"< {FP32_MIN_WAVEFORM_SNR_DB} dB"
        )
    return failures


def measure(runtime, ref: dict, prompts: dict, quantization: str = "none", texts: bool = False) -> dict[str, Any]:
    """The `parity` section of one artefact (module docstring); `texts`: also check `serving_default`."""
    want = ref["synthesize"]
    result: dict[str, Any] = compare(runtime.synthesize_ids(prompts["token_ids"], prompts["lengths"]), want)
    failures = [] if result["waveform_finite"] else ["the waveform or the log-mel holds NaN or infinity"]
    if quantization == "none":
        failures += _fp32_failures(result)
    else:
        if result["duration_agreement"] < QUANTIZED_MIN_DURATION_AGREEMENT:
            failures.append(
                f"durations agree on {result['duration_agreement']:.3f} of the characters "
                f"< {QUANTIZED_MIN_DURATION_AGREEMENT}"
            )
        if not result["log_mel_mean_diff"] <= QUANTIZED_LOG_MEL_MEAN_DIFF:
            failures.append(
                f"log_mel differs by {result['log_mel_mean_diff']:.3g} on average > {QUANTIZED_LOG_MEL_MEAN_DIFF}"
            )
        if not result["waveform_spectrum_mean_diff"] <= QUANTIZED_SPECTRUM_MEAN_DIFF:
            failures.append(
                f"the waveform's log spectrum differs by {result['waveform_spectrum_mean_diff']:.3g} on average "
                f"> {QUANTIZED_SPECTRUM_MEAN_DIFF}"
            )
    if texts:
        served = compare(runtime.synthesize_texts(prompts["texts"]), want)
        result.update({f"serving_default_{key}": value for key, value in served.items()})
        failures += _fp32_failures(served, "serving_default (text in): ")
    result.update({"passed": not failures, "failures": failures})
    return result


def report_reference(prompts: dict, ref: dict) -> dict[str, Any]:
    """`report["reference"]` of a synthesizer's export: the parity texts, their ids and the Keras durations."""
    want = ref["synthesize"]
    return {
        "texts": list(prompts["texts"]),
        "token_ids": prompts["token_ids"].tolist(),
        "lengths": prompts["lengths"].tolist(),
        "keras": {
            "durations": np.asarray(want["durations"]).tolist(),
            "frame_lengths": np.asarray(want["frame_lengths"]).tolist(),
            "waveform_lengths": np.asarray(want["waveform_lengths"]).tolist(),
            "waveform_peak": float(np.abs(want["waveform"]).max()),
        },
        "bounds": {
            "fp32_log_mel_max_diff": FP32_LOG_MEL_MAX_DIFF,
            "fp32_min_waveform_snr_db": FP32_MIN_WAVEFORM_SNR_DB,
            "quantized_min_duration_agreement": QUANTIZED_MIN_DURATION_AGREEMENT,
            "quantized_log_mel_mean_diff": QUANTIZED_LOG_MEL_MEAN_DIFF,
            "quantized_spectrum_mean_diff": QUANTIZED_SPECTRUM_MEAN_DIFF,
        },
    }
