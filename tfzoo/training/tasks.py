"""Task kinds of `train_and_evaluate`: what data a model trains on, how it is batched and judged.

A `Task` holds the loaded data and tokenizer of one run and knows its
pipelines (`train_dataset`, `eval_dataset`), the label id its loss and
cross-entropy metric ignore (`label_pad_id`), the decoded metrics of an
evaluation (`evaluate`) and the samples printed at the end (`samples`):

- `lm` (GPT): windows of one token stream; no decoded metrics; greedy completions.
- `seq2seq` (Transformer): sentence pairs padded to `seq_len`, target
  `<bos> y` in, `y <eos>` out, pad labels ignored; `exact_match` and `bleu`
  (sacrebleu) of greedy translations of the held-out sources.
- `classification` (BERT): `<cls> text` padded to `seq_len`, one label per
  example (no label is ignored); `accuracy` of the argmax on the held-out split.
- `masked_lm` (BertMaskedLM): `<cls> text` rows masked BERT's way (80/10/10),
  labels the original ids at the masked positions; `masked_accuracy` on the
  held-out rows (masked once, with a fixed seed).
- `sft`, `dpo` (GPT with `task = "sft"` / `"dpo"`, issue 20): dialogues with the loss on the
  assistant's tokens; preference pairs against a frozen reference (`assistant_tasks`).
- `caption` (Captioner): `shapes` images, target `<bos> caption` in,
  `caption <eos>` out; `exact_match` and `bleu` of greedy captions of the
  held-out images.
- `asr` (SpeechRecognizer): `speech:` waveforms, target `<bos> transcript` in,
  `transcript <eos>` out; `wer` (jiwer) and `exact_match` of greedy transcripts
  of the held-out utterances (voices and texts never heard in training).
- `tts` (SpeechSynthesizer): `tts:numbers` character ids and their durations in,
  normalised log-mel frames of one espeak-ng voice out; `train_loss`/`val_loss`
  are the mel L1, `evaluate` adds `mel_l1` and `duration_error` (`tts_tasks`).

Training batches are step indexed everywhere: batch `i` depends only on
`(seed, i)`, so a resumed run sees the batches an uninterrupted one would.

This module is the registry of the kinds (`TASKS`, `make_task`). The base
class is in `task`; the kinds in `text_tasks` (`lm`, `classification`,
`masked_lm`), `seq2seq_tasks` (`seq2seq`), `vision_tasks` (`caption`), `speech_tasks`
(`asr`) and `assistant_tasks` (`sft`, `dpo`);
their shared padding and batching in `task_batches`, the greedy decoding and
its text metrics in `decoded_metrics`.
"""

from __future__ import annotations

from tfzoo.training.assistant_tasks import DpoTask, SftTask
from tfzoo.training.seq2seq_tasks import Seq2SeqTask
from tfzoo.training.speech_tasks import SpeechTask
from tfzoo.training.task import SUBWORD_TOKENIZERS, Task
from tfzoo.training.task_batches import EVAL_BATCH_SIZE
from tfzoo.training.text_tasks import ClassificationTask, LanguageModelTask, MaskedLMTask
from tfzoo.training.tts_tasks import SynthesisTask
from tfzoo.training.validate import ConfigError
from tfzoo.training.vision_tasks import CaptionTask

__all__ = [
    "EVAL_BATCH_SIZE",
    "SUBWORD_TOKENIZERS",
    "TASKS",
    "CaptionTask",
    "ClassificationTask",
    "LanguageModelTask",
    "MaskedLMTask",
    "Seq2SeqTask",
    "SftTask",
    "DpoTask",
    "SpeechTask",
    "SynthesisTask",
    "Task",
    "make_task",
]


TASKS = {
    task.kind: task
    for task in (
        LanguageModelTask,
        Seq2SeqTask,
        ClassificationTask,
        CaptionTask,
        MaskedLMTask,
        SpeechTask,
        SftTask,
        DpoTask,
        SynthesisTask,
    )
}


def make_task(kind: str, config) -> Task:
    """Loads the data and builds the tokenizer of a task of `kind` (a key of `TASKS`)."""
    if kind not in TASKS:
        raise ConfigError(f"unknown task kind {kind!r}; valid: {', '.join(TASKS)}")
    return TASKS[kind](config)
