"""resolve_config: every contract field, defaults for the extras, one clear error per bad value."""

import glob
import importlib.util
import os
import re

import ml_collections
import pytest

from tfzoo.training.validate import CONTRACT_FIELDS, DEFAULTS, ConfigError, resolve_config

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def _load(name: str) -> ml_collections.ConfigDict:
    spec = importlib.util.spec_from_file_location(name, os.path.join(CONFIGS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CONFIGS, "*.py"))))
def test_shipped_configs_resolve_and_comment_every_field(path):
    config = _load(os.path.splitext(os.path.basename(path))[0])
    resolved = resolve_config(config)
    assert set(CONTRACT_FIELDS) | set(DEFAULTS) <= set(resolved.keys())
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assignments = [line for line in text.splitlines() if re.match(r"\s*config\.\w+\s*=", line)]
    if "sibling_config(" not in text:  # a config of its own sets every field; a derived one only what differs
        assert len(assignments) == len(config.keys())
    uncommented = [line.strip() for line in assignments if "  # " not in line]
    assert not uncommented, uncommented


def test_fills_defaults_without_touching_the_input():
    config = _load("gpt_tiny")
    for name in DEFAULTS:
        if name in config:  # seq2seq/subword-only fields are not in the GPT config
            del config[name]
    resolved = resolve_config(config)
    for name, value in DEFAULTS.items():
        assert resolved[name] == value
        assert name not in config


def test_missing_contract_fields_are_named():
    config = _load("gpt_tiny")
    del config["beta2"]
    del config["position"]
    with pytest.raises(ConfigError, match="missing field.*position.*beta2|missing field.*beta2.*position"):
        resolve_config(config)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(model=""), "model must be a non-empty string"),
        (dict(dataset=""), "dataset must be a non-empty string"),
        (dict(seq_len=0), "seq_len must be an integer >= 1"),
        (dict(batch_size=-4), "batch_size must be an integer >= 1"),
        (dict(eval_steps=0), "eval_steps"),
        (dict(num_layers=0), "num_layers"),
        (dict(warmup_steps=-1), "warmup_steps must be an integer >= 0"),
        (dict(learning_rate=0.0), "learning_rate must be a number > 0"),
        (dict(min_learning_rate=1.0), "min_learning_rate must be a number in"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(beta1=1.0), "beta1 must be a number in \\[0.0, 1.0\\)"),
        (dict(beta2=-0.5), "beta2"),
        (dict(clip_norm=-1.0), "clip_norm"),
        (dict(dropout=1.0), "dropout"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(position="absolute"), "position must be one of 'learned', 'sinusoidal'"),
        (dict(activation="tanh"), "activation must be one of"),
        (dict(distribution_strategy="ring"), "distribution_strategy must be one of"),
        (dict(distribution_strategy="parameter_server"), "'parameter_server' is not supported: Keras 3's model.fit"),
        (dict(distribution_strategy="multi_worker", num_cpu_devices=2), "num_cpu_devices \\(2\\) applies to distrib"),
        (dict(tpu_address=""), "tpu_address must be a non-empty string"),
        (dict(mixed_precision="float8"), "mixed_precision must be one of 'none', '', 'bfloat16', 'float16'"),
        (dict(jit_compile=1), "jit_compile must be True or False"),
        (dict(use_bias="no"), "use_bias must be True or False"),
        (dict(decay_embeddings=1), "decay_embeddings must be True or False"),
        (dict(adam_epsilon=0.0), "adam_epsilon must be a number > 0"),
        (dict(steps_per_execution=0), "steps_per_execution"),
        (dict(sample_prompts="def "), "sample_prompts must be a list of strings"),
        (dict(num_heads=3), "hidden_dim \\(32\\) must be divisible by num_heads \\(3\\)"),
        (dict(position="rotary", num_heads=16, hidden_dim=48), "position 'rotary' needs an even head size"),
        (dict(train_steps=45), "train_steps \\(45\\) must be a multiple of eval_every \\(10\\)"),
        (dict(num_cpu_devices=0), "num_cpu_devices"),
        (dict(seq_len=True), "seq_len must be an integer"),
    ],
)
def test_bad_values_raise_one_line_errors(overrides, message):
    config = ml_collections.ConfigDict({**_load("gpt_tiny").to_dict(), **overrides})
    with pytest.raises(ConfigError, match=message) as info:
        resolve_config(config)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_warmup_longer_than_training_is_clamped_and_logged_once(caplog):
    config = ml_collections.ConfigDict({**_load("gpt_tiny").to_dict(), "train_steps": 40, "warmup_steps": 50})
    with caplog.at_level("INFO"):
        resolved = resolve_config(config)
        assert resolve_config(resolved).warmup_steps == 40  # resolving again: no second log line
    assert resolved.warmup_steps == 40 and config.warmup_steps == 50
    lines = [r.getMessage() for r in caplog.records if "warmup_steps" in r.getMessage()]
    assert lines == ["warmup_steps (50) is clamped to train_steps (40)"]


def test_the_old_strategy_field_names_its_new_name():
    config = _load("gpt_tiny")
    config.strategy = "mirrored"
    with pytest.raises(ConfigError, match="^config field 'strategy' is now 'distribution_strategy'"):
        resolve_config(config)
