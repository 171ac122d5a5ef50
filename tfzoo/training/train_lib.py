"""`train_and_evaluate(config, workdir)`: one training run, resumable, step based.

Order matters: the config is checked, the data loaded, the tokenizer and the
model built and any checkpoint restored before the workdir is touched, so
bad input leaves nothing behind. Training is `model.fit` with one "epoch" per
`eval_every` steps; batch `i` of the training pipeline depends only on
`(seed, i)`, so a resumed run continues from the checkpointed step with the
very batches an uninterrupted run would have seen.

Distributed runs (docs/distributed.md): `batch_size` is the global batch. Each
global batch the task's pipeline makes is split over the replicas by
tf.distribute's auto-sharding by DATA (rebatched to per-replica batches, each
worker keeping its own slice), so step `i` trains on the same examples at any
replica count and the schedule, `train_steps` and `eval_every` count global
steps. In a multi-worker job every worker restores from `workdir` (a
filesystem they share) and they check they resume at the same step; only the
chief writes `workdir`, the others write into temporary directories removed
at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from tfzoo.files import atomic_save_directory, atomic_save_model, atomic_write_text
from tfzoo.models.registry import MODELS, TASK_KINDS, build_model
from tfzoo.run_folder import RunFolder, read_metrics_file
from tfzoo.training import callbacks as callbacks_lib
from tfzoo.training.checkpoints import Checkpointer
from tfzoo.training.init_from import load_initial_weights
from tfzoo.training.keras_patches import build_from_local_batch
from tfzoo.training.optimizer import make_optimizer
from tfzoo.training.progress import TrainingProgress
from tfzoo.training.strategy import all_gather_int, make_strategy, supports_jit_compile, task_info
from tfzoo.training.tasks import make_task
from tfzoo.training.validate import ConfigError, resolve_config

_POLICIES = {"none": "float32", "": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@contextlib.contextmanager
def _dtype_policy(mixed_precision: str):
    """Layers built inside take the Keras policy `mixed_precision` names; the global one is restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(_POLICIES[mixed_precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _build_and_compile(config, task, strategy) -> keras.Model:
    jit_compile = config.jit_compile and supports_jit_compile(strategy)
    if config.jit_compile and not jit_compile:
        logging.warning("jit_compile is off: XLA cannot compile over several CPU replicas")
    with strategy.scope(), _dtype_policy(config.mixed_precision):
        model = build_model(config, task.tokenizer.vocabulary_size, **task.model_options())
        optimizer = make_optimizer(config, model)
        if config.mixed_precision == "float16":  # float16 gradients underflow without loss scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)  # its variables must exist to be restored
        model.compile(
            optimizer=optimizer,
            loss=task.loss(),
            metrics=task.metrics(),
            jit_compile=jit_compile,
            steps_per_execution=config.steps_per_execution,
        )
    return model


def _float32_policies(config):
    """`config` (nested get_config() dicts) with every mixed-precision dtype policy made float32."""
    if isinstance(config, dict):
        name = str(config.get("config", {}).get("name", ""))
        if config.get("class_name") == "DTypePolicy" and name.startswith("mixed_"):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return type(config)(_float32_policies(value) for value in config)
    return "float32" if isinstance(config, str) and config in ("mixed_bfloat16", "mixed_float16") else config


def _inference_copy(model: keras.Model) -> keras.Model:
    """The model without its compile config (loss, metrics, optimizer), same weights, float32.

    A `.keras` file of a compiled model names tfzoo's loss and metric, so
    loading it would need `tfzoo.training` imported; the exported model must
    not depend on the training code. Mixed precision is a training setting:
    the variables are float32 anyway, and exports and generation run the
    model in float32.
    """
    copy = model.__class__.from_config(_float32_policies(model.get_config()))
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
    # Before any TF op; a multi_worker strategy returns once every worker has joined.
    strategy = make_strategy(config.distribution_strategy, config.num_cpu_devices, config.tpu_address)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"batch_size ({config.batch_size}) must be divisible by the "
            f"{strategy.num_replicas_in_sync} replicas of distribution_strategy {config.distribution_strategy!r}"
        )
    task_of_worker = task_info(strategy)
    if task_of_worker.is_chief:
        return _train_and_evaluate(config, workdir, workdir, strategy)
    # A non-chief worker's files: the same code path, thrown away. The name is fixed per workdir and
    # task so that a worker killed with `kill -9` leaves nothing behind once its job runs again.
    workdir_id = hashlib.sha256(os.path.abspath(workdir).encode()).hexdigest()[:12]
    scratch = os.path.join(
        tempfile.gettempdir(), f"tfzoo-{workdir_id}-{task_of_worker.task_type}{task_of_worker.task_index}"
    )
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        return _train_and_evaluate(config, workdir, scratch, strategy)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _distribute_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Auto-shards by DATA: every worker makes each global batch and keeps its replicas' slice."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _agree_on_step(strategy, step: int, workdir: str) -> None:
    """Every worker of a multi-worker job must resume at the same step (else the collectives hang)."""
    if task_info(strategy).num_workers == 1:
        return
    steps = all_gather_int(strategy, step)
    if len(set(steps)) > 1:
        raise ValueError(
            f"the workers found different checkpoints in {workdir} (steps {steps} by replica); every "
            "worker must see the same workdir (put it on a filesystem they share)"
        )


def _train_and_evaluate(config, workdir: str, output_dir: str, strategy) -> dict:
    """Trains, reading checkpoints and metrics from `workdir` and writing them into `output_dir`."""
    is_chief = output_dir == workdir
    keras.utils.set_random_seed(config.seed)

    task = make_task(config.task or TASK_KINDS[config.model], config)  # loads the data, builds the tokenizer
    model = _build_and_compile(config, task, strategy)
    source, output = RunFolder(workdir), RunFolder(output_dir)
    checkpointer = Checkpointer(source.checkpoints_dir, model, model.optimizer)
    resumed_from = checkpointer.restore() if checkpointer.latest_step() is not None else None
    if config.init_from and resumed_from is None:  # a resumed run continues from its own checkpoint
        load_initial_weights(model, config.init_from)
    step = resumed_from or 0
    _agree_on_step(strategy, step, workdir)
    if step % config.eval_every:
        raise ConfigError(
            f"the checkpoint in {workdir} is at step {step}, not a multiple of eval_every "
            f"({config.eval_every}); was it written with another eval_every?"
        )

    train_ds = task.train_dataset(start_step=step)  # batch i depends only on (seed, i): resume at the step
    eval_ds = task.eval_dataset()
    if strategy.num_replicas_in_sync > 1:
        train_ds, eval_ds = _distribute_by_data(train_ds), _distribute_by_data(eval_ds)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        build_from_local_batch(model, strategy, eval_ds)  # works around Keras 3.15 bugs (keras_patches)

    records = [r for r in read_metrics_file(source.metrics_path) if r["step"] <= step]
    os.makedirs(output_dir, exist_ok=True)
    atomic_write_text(output.config_path, config.to_json(indent=2, sort_keys=True))
    atomic_save_directory(task.tokenizer.save, output.tokenizer_dir)
    metrics_path = output.metrics_path
    callbacks_lib.write_metrics(metrics_path, records)  # drops evaluations past the checkpoint
    val_losses = [r["val_loss"] for r in records]
    stopped_early = callbacks_lib.patience_exhausted(val_losses, config.early_stopping_patience)
    saver = Checkpointer(output.checkpoints_dir, model, model.optimizer)

    if step < config.train_steps and not stopped_early:
        if resumed_from is not None:
            logging.info("resuming from step %d", step)
        tokens_per_step = config.batch_size * config.seq_len
        logger = callbacks_lib.EvaluationLogger(
            metrics_path,
            output.tensorboard_dir,
            tokens_per_step=tokens_per_step,
            records=records,
            evaluate=task.evaluate,
        )
        early_stopping = callbacks_lib.EarlyStopping(config.early_stopping_patience, val_losses)
        progress = [TrainingProgress(tokens_per_step=tokens_per_step)] if is_chief else []
        model.fit(
            train_ds,
            epochs=config.train_steps // config.eval_every,
            steps_per_epoch=config.eval_every,
            initial_epoch=step // config.eval_every,
            validation_data=eval_ds,
            validation_steps=config.eval_steps,
            callbacks=[logger, callbacks_lib.CheckpointSaver(saver), early_stopping, *progress],
            shuffle=False,
            verbose=0,  # TrainingProgress prints
        )
        records, stopped_early = logger.records, early_stopping.stopped
    else:
        reason = "early stopping" if stopped_early else "finished"
        logging.info("nothing to train (%s): step %d of %d", reason, step, config.train_steps)

    atomic_save_model(_inference_copy(model), output.model_path)
    samples = task.samples(model) if is_chief else []
    for sample in samples:
        print(f"--- sample ---\n{sample}", flush=True)
    last = records[-1] if records else {}
    return {
        "step": last.get("step", step),
        "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"),
        "metrics": last,
        "stopped_early": stopped_early,
        "resumed_from": resumed_from,
        "samples": samples,
        **task.summary(),
    }
