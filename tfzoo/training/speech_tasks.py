"""`asr` (SpeechRecognizer): `speech:` utterances, judged by the word error rate of greedy transcripts.

See `tfzoo.training.tasks` for what each kind trains on and reports.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging

from tfzoo.data.speech_data import SAMPLE_RATE, load_speech_data
from tfzoo.training.task import Task, build_task_tokenizer
from tfzoo.training.task_batches import (
    EVAL_BATCH_SIZE,
    eval_batches,
    step_indexed_batches,
    teacher_forced_rows,
)
from tfzoo.training.validate import ConfigError

DEFAULTS = {"num_train": 6000, "num_validation": 400, "max_audio_seconds": 3.0}


def word_error_rate(hypotheses: list[str], references: list[str]) -> float:
    """Corpus word error rate (jiwer): word substitutions + deletions + insertions over reference words.

    Example:
    >>> word_error_rate(["one two three", "go"], ["one two four", "go"])
    0.25
    """
    import jiwer  # noqa: PLC0415 (only when WER is computed)

    return float(jiwer.wer(list(references), list(hypotheses)))


class SpeechTask(Task):
    """`asr` (SpeechRecognizer): `speech:numbers`, `speech:DIR` or `tfds:` utterances with their transcripts.

    Optional config fields: `num_train` (6000) and `num_validation` (400)
    utterances of `speech:numbers`, `max_audio_seconds` (3.0: the longest
    waveform, the size of the model's audio input), `data_dir` (the cache; for
    `tfds:` where the prepared data lives), `max_examples` (`tfds:` only).
    Targets are `<bos> transcript`, labels `transcript <eos>`, padded to
    `seq_len`; `evaluate` reports `wer` (jiwer) and `exact_match` of greedy
    transcripts of the held-out utterances, whose voices and texts training
    never saw.
    """

    kind = "asr"

    def __init__(self, config):
        super().__init__(config)
        options = {key: config.get(key, default) for key, default in DEFAULTS.items()}
        data = load_speech_data(
            config.dataset,
            num_train=options["num_train"],
            num_validation=options["num_validation"],
            seed=config.seed,
            data_dir=config.get("data_dir", ""),
            max_seconds=options["max_audio_seconds"],
            max_examples=int(config.get("max_examples", 0)),
        )
        self.max_audio_samples = int(round(options["max_audio_seconds"] * SAMPLE_RATE))
        self.tokenizer = tokenizer = build_task_tokenizer(config, data.tokenizer_text())
        self.start_id = tokenizer.special_tokens.get("<bos>", tokenizer.eos_id)
        self.train = (_widen(data.train_audio, self.max_audio_samples), data.train_lengths)
        self.train += self._encode(data.train_texts, "train")
        self.validation = (_widen(data.validation_audio, self.max_audio_samples), data.validation_lengths)
        self.validation += self._encode(data.validation_texts, "validation")
        self.validation_texts = data.validation_texts
        self.voices = (sorted(set(data.train_voices)), sorted(set(data.validation_voices)))
        logging.info(
            "dataset %s: %d train / %d validation utterances, %d / %d voices, vocabulary %d",
            data.name,
            len(data.train_texts),
            len(data.validation_texts),
            len(self.voices[0]),
            len(self.voices[1]),
            tokenizer.vocabulary_size,
        )
        self._decoder = None

    def _encode(self, texts, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Padded `target_ids` (`<bos> text`) and `labels` (`text <eos>`); every transcript must fit."""
        return teacher_forced_rows(self.tokenizer, texts, self.start_id, self.config.seq_len, f"{split} transcript")

    def model_options(self):
        return {"max_audio_samples": self.max_audio_samples}

    @staticmethod
    def _example(audio, lengths, target_ids, labels):
        waveform = tf.cast(audio, tf.float32) / 32768.0
        return {"audio": waveform, "audio_lengths": lengths, "target_ids": target_ids}, labels

    def train_dataset(self, start_step):
        c = self.config
        return step_indexed_batches(self.train, c.batch_size, c.seed, start_step, self._example)

    def eval_dataset(self):
        c = self.config
        return eval_batches(self.validation, c.batch_size, c.eval_steps, self._example)

    def transcribe(self, model, audio: np.ndarray, lengths: np.ndarray) -> list[str]:
        """Greedy transcripts of int16 waveforms (N, S) with `lengths` (N,), with the model's cached decoder."""
        from tfzoo.decoding import generate  # noqa: PLC0415 (TensorFlow only when decoding runs)

        if self._decoder is None or self._decoder[0] is not model:
            tokenizer, max_length = self.tokenizer, self.config.seq_len

            @tf.function(autograph=False)
            def decode(waveform, audio_lengths):
                count = tf.shape(waveform)[0]
                outputs = generate(
                    model.decoding_step,
                    model.init_decoding_cache(tf.cast(waveform, tf.float32) / 32768.0, audio_lengths, max_length),
                    tf.fill([count, 1], self.start_id),
                    tf.ones([count], tf.int32),
                    max_length=max_length,
                    eos_ids=(tokenizer.eos_id,),
                    pad_id=tokenizer.pad_id,
                    max_new_tokens=max_length - 1,
                )
                return outputs["sequences"]

            self._decoder = (model, decode)
        texts = []
        for start in range(0, len(audio), EVAL_BATCH_SIZE):
            batch, batch_lengths = audio[start : start + EVAL_BATCH_SIZE], lengths[start : start + EVAL_BATCH_SIZE]
            real = len(batch)
            if real < EVAL_BATCH_SIZE:  # one batch shape: one trace
                batch = np.concatenate([batch, np.repeat(batch[:1], EVAL_BATCH_SIZE - real, axis=0)])
                batch_lengths = np.concatenate([batch_lengths, np.repeat(batch_lengths[:1], EVAL_BATCH_SIZE - real)])
            sequences = self._decoder[1](tf.constant(batch), tf.constant(batch_lengths)).numpy()[:real, 1:]
            texts.extend(self.tokenizer.decode(row) for row in sequences)
        return texts

    def evaluate(self, model):
        count = self.config.eval_decode_examples or len(self.validation_texts)
        hypotheses = self.transcribe(model, self.validation[0][:count], self.validation[1][:count])
        references = list(self.validation_texts[:count])
        exact = float(np.mean([h == r for h, r in zip(hypotheses, references)]))
        return {"wer": word_error_rate(hypotheses, references), "exact_match": exact, "decoded_examples": count}

    def samples(self, model):
        count = min(4, len(self.validation_texts))
        hypotheses = self.transcribe(model, self.validation[0][:count], self.validation[1][:count])
        return [
            f"validation utterance {i}: {h} (reference: {r})"
            for i, (h, r) in enumerate(zip(hypotheses, self.validation_texts))
        ]

    def summary(self):
        return {"train_voices": len(self.voices[0]), "validation_voices": len(self.voices[1])}


def _widen(audio: np.ndarray, width: int) -> np.ndarray:
    """int16 (N, width): the waveforms right-padded with zeros to the model's audio length."""
    if audio.shape[1] > width:
        raise ConfigError(f"an utterance has {audio.shape[1]} samples; max_audio_seconds allows {width}")
    return np.pad(audio, [(0, 0), (0, width - audio.shape[1])])
