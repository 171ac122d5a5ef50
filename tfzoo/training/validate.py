"""Checks a run config before anything is loaded, built or written.

`resolve_config` fills in the optional fields, then rejects every value that
would fail later (or silently train something else) with a one-line
`ConfigError` naming the field. It imports no TensorFlow, so a bad command
line fails fast; the model name is checked against the registry by
`train_and_evaluate`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import socket

import ml_collections
from absl import logging

# Fields every run config must have (docs/contract.md).
CONTRACT_FIELDS = (
    "model",
    "dataset",
    "tokenizer",
    "seq_len",
    "batch_size",
    "train_steps",
    "eval_every",
    "eval_steps",
    "learning_rate",
    "min_learning_rate",
    "warmup_steps",
    "weight_decay",
    "beta1",
    "beta2",
    "clip_norm",
    "dropout",
    "label_smoothing",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "position",
    "seed",
    "distribution_strategy",
    "mixed_precision",
)

# Optional fields and the value a config without them gets.
DEFAULTS = {
    "early_stopping_patience": 0,
    "activation": "gelu",
    "norm_first": True,
    "tie_embeddings": True,
    "use_bias": True,  # biases in the blocks' projections and layer norms (nanoGPT: False)
    "adam_epsilon": 1e-7,  # AdamW epsilon, Keras's form (added to the uncorrected sqrt(v)); PyTorch's default is 1e-8
    "decay_embeddings": False,  # weight decay also on the token and position tables (nanoGPT: True)
    "steps_per_execution": 1,  # training steps per call into the compiled step (fewer Python round trips)
    "num_cpu_devices": 1,
    "jit_compile": True,
    "sample_prompts": (),
    "sample_length": 64,
    "data_dir": "",  # tfds specs: where prepared data lives ("" = tfds's default); never downloaded
    "max_examples": 0,  # tfds specs: examples read per split; 0 = all
    "train_examples": 0,  # classification: only the first N training examples are used (validation: all); 0 = all
    "vocabulary_size": 1000,  # wordpiece/sentencepiece: vocabulary learned from the train split
    "eval_decode_examples": 0,  # seq2seq: held-out pairs decoded per evaluation; 0 = all
    "sft_dialogues": 4000,  # task sft: generated training dialogues
    "preference_pairs": 4000,  # task dpo: generated training preference pairs
    "dpo_beta": 0.1,  # task dpo: DPO's beta (strength of the pull towards the reference)
    "dpo_nll_weight": 0.0,  # task dpo: weight of the chosen reply's NLL added to DPO (RPO's alpha); 0 = DPO alone
    "eval_dialogues": 200,  # tasks sft, dpo: held-out dialogues measured per evaluation
    "eval_pairs": 200,  # tasks sft, dpo: held-out preference pairs per evaluation
    "task": "",  # the task kind (`sft`, `dpo`, ...; tfzoo.training.tasks); "" = the model's (registry TASK_KINDS)
    "init_from": "",  # a workdir (e.g. a converted GPT-2) whose model.keras weights start training; "" = none
    "pooling": "cls",  # bert_classifier: "cls" (the pooler on [CLS]) or "mean" (masked mean over tokens)
    "tpu_address": "local",  # distribution_strategy tpu: TPUClusterResolver's `tpu` (TPU name, grpc:// or "local")
}

POSITIONS = ("learned", "sinusoidal", "relative", "rotary", "alibi")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
# Strategies tf.distribute has but `model.fit` cannot run here, and why (docs/distributed.md).
UNSUPPORTED_STRATEGIES = {
    "parameter_server": "Keras 3's model.fit does not support ParameterServerStrategy "
    "(it needs a ClusterCoordinator and a custom training loop)",
}
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "swiglu", "geglu_tanh")  # geglu_tanh: T5 v1.1 / flan-T5
POOLINGS = ("cls", "mean")  # tfzoo.models.bert.POOLINGS (this module imports no TensorFlow)
MIXED_PRECISION = ("none", "", "bfloat16", "float16")
# Renamed fields, old -> new: a config (or `--config.OLD=...`) with the old name fails with one line.
RENAMED_FIELDS = {"strategy": "distribution_strategy"}


class ConfigError(ValueError):
    """A run config field is missing or has a value that cannot work."""

    def __init__(self, message: str):
        # One line, whatever the spec or value quoted in it holds (a path with a newline, a ConfigDict's repr).
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_int(config, name: str, minimum: int) -> None:
    value = config[name]
    _check(_is_int(value) and value >= minimum, f"{name} must be an integer >= {minimum}, got {value!r}")
    _check(value <= 2**31 - 1, f"{name}={value} is too large (at most {2**31 - 1})")


def _check_range(config, name: str, low: float, high: float | None, high_open: bool = True) -> None:
    value = config[name]
    if high is None:
        ok, bounds = _is_number(value) and value >= low, f">= {low}"
    elif high_open:
        ok, bounds = _is_number(value) and low <= value < high, f"in [{low}, {high})"
    else:
        ok, bounds = _is_number(value) and low <= value <= high, f"in [{low}, {high}]"
    _check(ok, f"{name} must be a number {bounds}, got {value!r}")


def _check_choice(config, name: str, choices) -> None:
    value = config[name]
    _check(value in choices, f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def resolve_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Returns a checked copy of `config` with every optional field filled in.

    Args:
        config: ml_collections.ConfigDict. A run config (see configs/gpt_char.py).

    Returns:
        ml_collections.ConfigDict. The resolved config (what `config.json` holds).

    Raises:
        ConfigError: a missing field, a bad value, or values that do not fit together.

    Example:
    >>> import configs.gpt_tiny
    >>> resolve_config(configs.gpt_tiny.get_config()).sample_length
    16
    """
    for old in RENAMED_FIELDS:
        _check(old not in config, renamed_field_message(old))
    missing = [name for name in CONTRACT_FIELDS if name not in config]
    _check(not missing, f"config is missing field(s): {', '.join(missing)}")
    resolved = ml_collections.ConfigDict(config.to_dict())
    for name, default in DEFAULTS.items():
        if name not in resolved:
            resolved[name] = default

    for name in ("model", "dataset", "tokenizer"):
        value = resolved[name]
        _check(isinstance(value, str) and value, f"{name} must be a non-empty string, got {value!r}")
    for name in (
        "seq_len",
        "batch_size",
        "train_steps",
        "eval_every",
        "eval_steps",
        "num_layers",
        "num_heads",
        "hidden_dim",
        "intermediate_dim",
        "num_cpu_devices",
        "vocabulary_size",
        "steps_per_execution",
        "sft_dialogues",
        "preference_pairs",
        "eval_dialogues",
        "eval_pairs",
    ):
        _check_int(resolved, name, 1)
    _check(
        isinstance(resolved.task, str),
        f"task must be a string (a task kind, or '' for the model's), got {resolved.task!r}",
    )
    beta = resolved.dpo_beta
    _check(_is_number(beta) and 0 < beta < math.inf, f"dpo_beta must be a number > 0, got {beta!r}")
    alpha = resolved.dpo_nll_weight
    _check(_is_number(alpha) and 0 <= alpha < math.inf, f"dpo_nll_weight must be a number >= 0, got {alpha!r}")
    for name in (
        "warmup_steps",
        "seed",
        "early_stopping_patience",
        "sample_length",
        "max_examples",
        "train_examples",
        "eval_decode_examples",
    ):
        _check_int(resolved, name, 0)
    _check(
        _is_number(resolved.learning_rate) and resolved.learning_rate > 0,
        f"learning_rate must be a number > 0, got {resolved.learning_rate!r}",
    )
    _check_range(resolved, "min_learning_rate", 0.0, resolved.learning_rate, high_open=False)
    _check_range(resolved, "weight_decay", 0.0, None)
    _check_range(resolved, "clip_norm", 0.0, None)
    _check(
        _is_number(resolved.adam_epsilon) and resolved.adam_epsilon > 0,
        f"adam_epsilon must be a number > 0, got {resolved.adam_epsilon!r}",
    )
    for name in ("beta1", "beta2", "dropout", "label_smoothing"):
        _check_range(resolved, name, 0.0, 1.0)
    _check_choice(resolved, "position", POSITIONS)
    _check_choice(resolved, "activation", ACTIVATIONS)
    _check_choice(resolved, "pooling", POOLINGS)
    if isinstance(resolved.distribution_strategy, str) and resolved.distribution_strategy in UNSUPPORTED_STRATEGIES:
        reason = UNSUPPORTED_STRATEGIES[resolved.distribution_strategy]
        raise ConfigError(f"distribution_strategy {resolved.distribution_strategy!r} is not supported: {reason}")
    _check_choice(resolved, "distribution_strategy", STRATEGIES)
    _check_choice(resolved, "mixed_precision", MIXED_PRECISION)
    _check(
        resolved.distribution_strategy != "multi_worker" or resolved.num_cpu_devices == 1,
        f"num_cpu_devices ({resolved.num_cpu_devices}) applies to distribution_strategy 'mirrored'; a "
        "multi_worker job has one replica per CPU worker (use more workers)",
    )
    _check(
        isinstance(resolved.tpu_address, str) and resolved.tpu_address,
        f"tpu_address must be a non-empty string, got {resolved.tpu_address!r}",
    )
    for name in ("norm_first", "tie_embeddings", "jit_compile", "use_bias", "decay_embeddings"):
        _check(isinstance(resolved[name], bool), f"{name} must be True or False, got {resolved[name]!r}")
    _check(isinstance(resolved.data_dir, str), f"data_dir must be a string, got {resolved.data_dir!r}")
    prompts = resolved.sample_prompts
    _check(
        isinstance(prompts, (list, tuple)) and all(isinstance(p, str) for p in prompts),
        f"sample_prompts must be a list of strings, got {prompts!r}",
    )

    _check(
        resolved.hidden_dim % resolved.num_heads == 0,
        f"hidden_dim ({resolved.hidden_dim}) must be divisible by num_heads ({resolved.num_heads})",
    )
    head_dim = resolved.hidden_dim // resolved.num_heads
    _check(
        resolved.position != "rotary" or head_dim % 2 == 0,
        f"position 'rotary' needs an even head size, got hidden_dim / num_heads = {head_dim}",
    )
    _check(
        resolved.position != "sinusoidal" or resolved.hidden_dim % 2 == 0,
        f"position 'sinusoidal' needs an even hidden_dim, got {resolved.hidden_dim}",
    )
    _check(
        resolved.train_steps % resolved.eval_every == 0,
        f"train_steps ({resolved.train_steps}) must be a multiple of eval_every ({resolved.eval_every})",
    )
    if resolved.warmup_steps > resolved.train_steps:  # a short trial run keeps a long config's warmup
        logging.warning("warmup_steps (%d) is clamped to train_steps (%d)", resolved.warmup_steps, resolved.train_steps)
        resolved.warmup_steps = resolved.train_steps
    return resolved


def renamed_field_message(old: str) -> str:
    """The one-line error for a config field that was renamed (`RENAMED_FIELDS`).

    >>> renamed_field_message("strategy")
    "config field 'strategy' is now 'distribution_strategy' (e.g. --config.distribution_strategy=mirrored)"
    """
    new = RENAMED_FIELDS[old]
    example = "mirrored" if new == "distribution_strategy" else "..."
    return f"config field {old!r} is now {new!r} (e.g. --config.{new}={example})"


_JOBS = ("chief", "worker")  # MultiWorkerMirroredStrategy's jobs; the chief (or worker 0) leads


class ClusterError(ValueError):
    """`TF_CONFIG` does not describe a cluster this worker can join."""


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """Where this process sits in a multi-worker job.

    Attributes:
        task_type: str. `chief` or `worker`.
        task_index: int. Index within its job.
        num_workers: int. Tasks in the cluster (chief + workers).
        address: str. This task's `host:port`.
        is_chief: bool. Whether this task writes the run's files.
    """

    task_type: str
    task_index: int
    num_workers: int
    address: str
    is_chief: bool  # the `chief` task, else worker 0


SINGLE_PROCESS = TaskInfo("chief", 0, 1, "", True)


def parse_tf_config(text: str | None) -> TaskInfo:
    """Checks a `TF_CONFIG` value and returns this task's place in the cluster.

    Args:
        text: str or None. The JSON of `TF_CONFIG`, e.g.
            `{"cluster": {"worker": ["host0:2222", "host1:2222"]}, "task": {"type": "worker", "index": 0}}`.

    Returns:
        TaskInfo.

    Raises:
        ClusterError: unset, malformed, or inconsistent.

    Example:
    >>> parse_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}')
    TaskInfo(task_type='worker', task_index=1, num_workers=2, address='b:2', is_chief=False)
    """
    if not text or not text.strip():
        raise ClusterError(
            "distribution_strategy 'multi_worker' needs the TF_CONFIG environment variable (one per worker); "
            "run `python -m tfzoo.launch --num_workers=N -- ...` to start local workers"
        )
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ClusterError(f"TF_CONFIG is not valid JSON ({e}): {text[:200]!r}") from None
    if not isinstance(tf_config, dict):
        raise ClusterError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task', got {text[:200]!r}")
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ClusterError("TF_CONFIG has no 'cluster' (a map from job name to a list of 'host:port' addresses)")
    if not isinstance(task, dict):
        raise ClusterError("TF_CONFIG has no 'task' (this process's {'type': 'worker', 'index': i})")
    unsupported = sorted(set(cluster) - set(_JOBS))
    if unsupported:
        raise ClusterError(
            f"TF_CONFIG cluster has job(s) {', '.join(unsupported)}; distribution_strategy 'multi_worker' runs only "
            "'chief' and 'worker' jobs"
        )
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise ClusterError(
                f"TF_CONFIG cluster job {job!r} must be a non-empty list of 'host:port', got {addresses!r}"
            )
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ClusterError(f"TF_CONFIG cluster job {job!r} has a bad address {address!r} (want 'host:port')")
    if len(cluster.get("chief", [])) > 1:
        raise ClusterError(f"TF_CONFIG cluster has {len(cluster['chief'])} chiefs; at most one")
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise ClusterError(f"TF_CONFIG task type {task_type!r} is not a job of the cluster ({', '.join(cluster)})")
    if isinstance(task_index, bool) or not isinstance(task_index, int) or not 0 <= task_index < len(cluster[task_type]):
        raise ClusterError(
            f"TF_CONFIG task index {task_index!r} is out of range: job {task_type!r} has "
            f"{len(cluster[task_type])} task(s)"
        )
    is_chief = task_type == "chief" or ("chief" not in cluster and task_index == 0)
    num_workers = sum(len(cluster[job]) for job in cluster)
    return TaskInfo(task_type, task_index, num_workers, cluster[task_type][task_index], is_chief)


def port_in_use(port: int) -> bool:
    """Whether some process listens on `port` (a listening socket, not one in TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return True
    return False


def check_tf_config(text: str | None) -> TaskInfo:
    """`parse_tf_config(text)`, then checks nothing already listens on this task's port.

    Raises:
        ClusterError: a bad `TF_CONFIG`, or this worker's port is in use.
    """
    task = parse_tf_config(text)
    port = int(task.address.rpartition(":")[2])
    if port_in_use(port):
        raise ClusterError(
            f"port {port} of this worker ({task.task_type} {task.task_index}, {task.address} in TF_CONFIG) "
            "is already in use"
        )
    return task
