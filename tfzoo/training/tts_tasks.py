"""`tts` (SpeechSynthesizer): `tts:numbers` sentences -> the espeak-ng voice's log-mel frames, judged by mel L1.

See `tfzoo.training.tasks` for what each kind trains on and reports.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging

from tfzoo.data.speech_data import SAMPLE_RATE
from tfzoo.data.tts_data import DEFAULT_SPEED, DEFAULT_VOICE, FRAME_STEP, load_tts_data
from tfzoo.layers.log_mel import LogMelSpectrogram
from tfzoo.training.losses import MEL_PAD, MaskedMelL1, MelL1
from tfzoo.training.task import Task, build_task_tokenizer
from tfzoo.training.task_batches import EVAL_BATCH_SIZE, eval_batches, fixed_batches, pad_rows, step_indexed_batches
from tfzoo.training.validate import ConfigError

DEFAULTS = {"tts_voice": DEFAULT_VOICE, "tts_speed": DEFAULT_SPEED, "max_frames": 300, "num_mel_bins": 80}
# Optional fields of the model (registry): frames_per_step (1), duration_filters (256), duration_loss_weight (1),
# griffin_lim_iterations (32).
FRAME_LENGTH = 400  # the front end's frame (25 ms); a waveform of F * FRAME_STEP + (FRAME_LENGTH - FRAME_STEP) has F


def log_mel_frames(waveforms: list[np.ndarray], max_frames: int, num_mel_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Natural-log mel power (N, max_frames, M) of waveforms F * 160 samples long (F frames each), and F (N,).

    The features are the speech recognizer's front end with `normalize=False`; frames past F are 0.
    """
    front_end = LogMelSpectrogram(num_mel_bins=num_mel_bins, normalize=False)
    width = max_frames * FRAME_STEP + FRAME_LENGTH - FRAME_STEP
    frames = np.array([w.size // FRAME_STEP for w in waveforms], np.int32)
    out = np.zeros((len(waveforms), max_frames, num_mel_bins), np.float32)
    for start in range(0, len(waveforms), 256):
        batch = np.zeros((len(waveforms[start : start + 256]), width), np.float32)
        for row, waveform in enumerate(waveforms[start : start + 256]):
            batch[row, : waveform.size] = waveform
        lengths = frames[start : start + 256] * FRAME_STEP + FRAME_LENGTH - FRAME_STEP
        out[start : start + len(batch)] = front_end(batch, lengths)[0].numpy()
    return out, frames


class SynthesisTask(Task):
    """`tts` (SpeechSynthesizer): `tts:numbers` texts, their characters' durations and the voice's log-mel frames.

    Optional config fields: `tts_voice` ("en-us"), `tts_speed` (200 words per
    minute), `max_frames` (300: the longest utterance, 10 ms frames, the model's
    output width), `num_mel_bins` (80), `frames_per_step` (1 or 2: the
    durations are multiples of it), `data_dir` (the cache). Inputs are the
    character ids (padded to `seq_len`) and the durations in frames of each
    character; targets the normalised log-mel frames (padding `MEL_PAD`). The
    loss is their L1 plus the model's duration loss; `train_loss`/`val_loss` in
    metrics.jsonl are the mel L1 in natural-log units of mel power (teacher-forced
    durations); `evaluate` adds `mel_l1` over every held-out sentence and
    `duration_error` (mean relative error of the predicted total length).
    """

    kind = "tts"

    def __init__(self, config):
        super().__init__(config)
        options = {key: config.get(key, default) for key, default in DEFAULTS.items()}
        data = load_tts_data(
            config.dataset,
            voice=options["tts_voice"],
            speed=options["tts_speed"],
            seed=config.seed,
            data_dir=config.get("data_dir", ""),
        )
        self.max_frames, self.num_mel_bins = int(options["max_frames"]), int(options["num_mel_bins"])
        self.tokenizer = tokenizer = build_task_tokenizer(config, "\n".join(data.train_texts))
        self.data = data
        train_ids, train_durations, train_mel, train_frames = self._encode(data.train_texts, "train")
        ids, durations, log_mel, self.validation_frames = self._encode(data.validation_texts, "validation")
        real = np.arange(self.max_frames)[None, :] < train_frames[:, None]  # (N, T): frames inside the utterances
        self.mel_mean, self.mel_std = float(train_mel[real].mean()), float(train_mel[real].std())
        self.train = (train_ids, train_durations, self._normalize(train_mel, train_frames))
        self.validation = (ids, durations, self._normalize(log_mel, self.validation_frames))
        self.validation_texts = data.validation_texts
        logging.info(
            "dataset %s: %d train / %d validation sentences, voice %s, vocabulary %d, mel mean %.3f std %.3f",
            data.name, len(data.train_texts), len(data.validation_texts), data.voice, tokenizer.vocabulary_size,
            self.mel_mean, self.mel_std,
        )  # fmt: skip
        self._functions = None

    def _encode(self, texts, split: str):
        """Character ids and durations (N, seq_len), log-mel (N, max_frames, M) and frame counts (N,) of `texts`."""
        rows = [list(self.tokenizer.encode(text)) for text in texts]
        if max(len(row) for row in rows) > self.config.seq_len:
            raise ConfigError(f"a {split} sentence has {max(map(len, rows))} characters; raise seq_len to it")
        waveforms = [self.data.waveform(text) for text in texts]
        longest = max(w.size // FRAME_STEP for w in waveforms)
        if longest > self.max_frames:
            raise ConfigError(f"a {split} sentence lasts {longest} frames; raise max_frames to it")
        log_mel, frames = log_mel_frames(waveforms, self.max_frames, self.num_mel_bins)
        r = int(self.config.get("frames_per_step", 1))
        durations = pad_rows([self.data.durations(text, r).tolist() for text in texts], self.config.seq_len, 0)
        return pad_rows(rows, self.config.seq_len, self.tokenizer.pad_id), durations, log_mel, frames

    def _normalize(self, log_mel: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """(log-mel - mean) / std on the real frames, `MEL_PAD` past them."""
        real = np.arange(log_mel.shape[1])[None, :] < frames[:, None]  # (N, T)
        return np.where(real[..., None], (log_mel - self.mel_mean) / self.mel_std, MEL_PAD).astype(np.float32)

    def model_options(self):
        return {"max_frames": self.max_frames, "mel_mean": self.mel_mean, "mel_std": self.mel_std}

    def loss(self):
        return MaskedMelL1()

    def metrics(self) -> list:
        return [MelL1(mel_std=self.mel_std)]

    @staticmethod
    def _example(token_ids, durations, mel):
        return {"token_ids": token_ids, "durations": durations}, mel

    def train_dataset(self, start_step):
        c = self.config
        return step_indexed_batches(self.train, c.batch_size, c.seed, start_step, self._example)

    def eval_dataset(self):
        c = self.config
        return eval_batches(self.validation, c.batch_size, c.eval_steps, self._example)

    def _compiled(self, model):
        if self._functions is None or self._functions[0] is not model:
            teacher_forced = tf.function(lambda ids, durations: model({"token_ids": ids, "durations": durations}))
            durations = tf.function(model.predict_durations)
            self._functions = (model, teacher_forced, durations)
        return self._functions[1:]

    def evaluate(self, model):
        teacher_forced, predict_durations = self._compiled(model)
        ids, durations, targets = self.validation
        total, count, relative = 0.0, 0.0, []
        for (batch, real), (batch_durations, _), (batch_targets, _) in zip(
            fixed_batches(ids, EVAL_BATCH_SIZE),
            fixed_batches(durations, EVAL_BATCH_SIZE),
            fixed_batches(targets, EVAL_BATCH_SIZE),
        ):
            mel = teacher_forced(tf.constant(batch), tf.constant(batch_durations)).numpy()[:real]
            frames = batch_targets[:real, :, 0] > MEL_PAD / 2  # (n, T)
            total += float(np.abs(mel - batch_targets[:real]).mean(axis=-1)[frames].sum()) * self.mel_std
            count += float(frames.sum())
            predicted = predict_durations(tf.constant(batch)).numpy()[:real].sum(axis=1)
            truth = batch_durations[:real].sum(axis=1)
            relative += (np.abs(predicted - truth) / np.maximum(truth, 1)).tolist()
        return {"mel_l1": total / max(count, 1.0), "duration_error": float(np.mean(relative))}

    def samples(self, model):
        _, predict_durations = self._compiled(model)
        count = min(4, len(self.validation_texts))
        batch, _ = next(fixed_batches(self.validation[0][:count], EVAL_BATCH_SIZE))
        predicted = predict_durations(tf.constant(batch)).numpy()[:count].sum(axis=1)
        return [
            f"validation sentence {i}: {text!r}: {int(p)} frames predicted, {int(f)} in the espeak-ng target"
            for i, (text, p, f) in enumerate(zip(self.validation_texts, predicted, self.validation_frames))
        ]

    def summary(self):
        return {"voice": self.data.voice, "sample_rate": SAMPLE_RATE}
