"""`train_and_evaluate(config, workdir)`: one training run, resumable, step based.

Order matters: the config is checked, the data loaded, the tokenizer and the
model built and any checkpoint restored before the workdir is touched, so
bad input leaves nothing behind. Training is `model.fit` with one "epoch" per
`eval_every` steps; batch `i` of the training pipeline depends only on
`(seed, i)`, so a resumed run continues from the checkpointed step with the
very batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import os
import sys

import keras
import ml_collections
from absl import logging

from tfzoo.models.registry import MODELS, TASK_KINDS, build_model
from tfzoo.training import callbacks as callbacks_lib
from tfzoo.training.checkpoints import Checkpointer
from tfzoo.files import atomic_save_directory, atomic_save_model, atomic_write_text
from tfzoo.training.losses import MaskedSparseCrossEntropy, MaskedTokenCrossEntropy
from tfzoo.training.optimizer import make_optimizer
from tfzoo.training.strategy import make_strategy, supports_jit_compile
from tfzoo.training.tasks import make_task
from tfzoo.training.validate import ConfigError, resolve_config


def _build_and_compile(config, task, strategy) -> keras.Model:
    jit_compile = config.jit_compile and supports_jit_compile(strategy)
    if config.jit_compile and not jit_compile:
        logging.warning("jit_compile is off: XLA cannot compile over several CPU replicas")
    with strategy.scope():
        model = build_model(config, task.tokenizer.vocabulary_size, **task.model_options())
        optimizer = make_optimizer(config, model)
        optimizer.build(model.trainable_variables)  # its variables must exist to be restored
        model.compile(
            optimizer=optimizer,
            loss=MaskedSparseCrossEntropy(pad_id=task.label_pad_id, label_smoothing=config.label_smoothing),
            metrics=[MaskedTokenCrossEntropy(pad_id=task.label_pad_id)],
            jit_compile=jit_compile,
        )
    return model


def _inference_copy(model: keras.Model) -> keras.Model:
    """The model without its compile config (loss, metrics, optimizer), same weights.

    A `.keras` file of a compiled model names tfzoo's loss and metric, so
    loading it would need `tfzoo.training` imported; the exported model must
    not depend on the training code.
    """
    copy = model.__class__.from_config(model.get_config())
    copy.build_from_config(model.get_build_config())
    copy.set_weights(model.get_weights())
    return copy


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains the model a config describes, evaluating and checkpointing every `eval_every` steps.

    Writes into `workdir`: `config.json` (resolved config) and `tokenizer/` at
    the start; `metrics.jsonl`, `tb/` and `checkpoints/` at every evaluation;
    `model.keras` at the end. Re-running with the same workdir resumes from
    the newest checkpoint; a finished run does no more training.

    Args:
        config: ml_collections.ConfigDict. The run config (see configs/gpt_char.py).
        workdir: str. Folder of the run; created once the inputs have been checked.

    Returns:
        dict with `step` (final step), `train_loss`, `val_loss` (last
        evaluation, nats per token; None if no evaluation ran), `metrics`
        (the last metrics.jsonl record, {} if none), language models'
        `unigram_entropy` (nats per validation token under the train unigram
        model), `stopped_early`, `resumed_from` (step restored, or None),
        `samples` (the printed completions).

    Raises:
        ValueError: bad config, dataset, tokenizer or checkpoint (nothing is
            written to `workdir` then, except a checkpoint mismatch is found
            only after reading the workdir).
    """
    config = resolve_config(config)
    if config.model not in MODELS:
        raise ConfigError(f"model must be one of {', '.join(map(repr, MODELS))}, got {config.model!r}")
    strategy = make_strategy(config.strategy, config.num_cpu_devices)  # before any TF op
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"batch_size ({config.batch_size}) must be divisible by the "
            f"{strategy.num_replicas_in_sync} replicas of strategy {config.strategy!r}"
        )
    keras.utils.set_random_seed(config.seed)

    task = make_task(TASK_KINDS[config.model], config)  # loads the data, builds the tokenizer
    model = _build_and_compile(config, task, strategy)
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), model, model.optimizer)
    resumed_from = checkpointer.restore() if checkpointer.latest_step() is not None else None
    step = resumed_from or 0
    if step % config.eval_every:
        raise ConfigError(
            f"the checkpoint in {workdir} is at step {step}, not a multiple of eval_every "
            f"({config.eval_every}); was it written with another eval_every?"
        )

    train_ds = task.train_dataset(start_step=step)  # batch i depends only on (seed, i): resume at the step
    eval_ds = task.eval_dataset()

    os.makedirs(workdir, exist_ok=True)
    atomic_write_text(os.path.join(workdir, "config.json"), config.to_json(indent=2, sort_keys=True))
    atomic_save_directory(task.tokenizer.save, os.path.join(workdir, "tokenizer"))
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    records = [r for r in callbacks_lib.read_metrics(metrics_path) if r["step"] <= step]
    callbacks_lib.write_metrics(metrics_path, records)  # drops evaluations past the checkpoint
    val_losses = [r["val_loss"] for r in records]
    stopped_early = callbacks_lib.patience_exhausted(val_losses, config.early_stopping_patience)

    if step < config.train_steps and not stopped_early:
        if resumed_from is not None:
            logging.info("resuming from step %d", step)
        logger = callbacks_lib.EvaluationLogger(
            metrics_path,
            os.path.join(workdir, "tb"),
            tokens_per_step=config.batch_size * config.seq_len,
            records=records,
            evaluate=task.evaluate,
        )
        early_stopping = callbacks_lib.EarlyStopping(config.early_stopping_patience, val_losses)
        model.fit(
            train_ds,
            epochs=config.train_steps // config.eval_every,
            steps_per_epoch=config.eval_every,
            initial_epoch=step // config.eval_every,
            validation_data=eval_ds,
            validation_steps=config.eval_steps,
            callbacks=[logger, callbacks_lib.CheckpointSaver(checkpointer), early_stopping],
            shuffle=False,
            verbose=1 if sys.stdout.isatty() else 2,
        )
        records, stopped_early = logger.records, early_stopping.stopped
    else:
        reason = "early stopping" if stopped_early else "finished"
        logging.info("nothing to train (%s): step %d of %d", reason, step, config.train_steps)

    atomic_save_model(_inference_copy(model), os.path.join(workdir, "model.keras"))
    samples = task.samples(model)
    for sample in samples:
        print(f"--- sample ---\n{sample}", flush=True)
    last = records[-1] if records else {}
    return {
        "step": callbacks_lib.current_step(model),
        "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"),
        "metrics": last,
        "stopped_early": stopped_early,
        "resumed_from": resumed_from,
        "samples": samples,
        **task.summary(),
    }
