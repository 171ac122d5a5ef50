"""Trains a model: `python -m tfzoo.train --config=configs/NAME.py --workdir=DIR`.

Any config field can be overridden, e.g. `--config.train_steps=1000`.
`--workdir` defaults to `runs/<config name>`; re-running the same command
resumes from the last checkpoint. Bad input prints `error: <message>` and
exits with status 2.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter; set it to 0 to see it

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from tfzoo.cli import print_error
from tfzoo.training.validate import (
    RENAMED_FIELDS,
    check_tf_config,
    renamed_field_message,
    resolve_config,
)

_REPO_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
_DEFAULT_CONFIG = os.path.join(_REPO_CONFIGS, "gpt_char.py")
if not os.path.exists(_DEFAULT_CONFIG):  # not an editable install: look beside the caller
    _DEFAULT_CONFIG = os.path.join("configs", "gpt_char.py")

try:  # ml_collections already reads --flagfile=... from sys.argv here
    _CONFIG = config_flags.DEFINE_config_file(
        "config", default=_DEFAULT_CONFIG, help_string="Run config file (configs/*.py)."
    )
except flags.Error as error:
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
    sys.exit(2)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder. Defaults to runs/<config name>.")


def _fail(message: str) -> None:
    sys.exit(print_error(message))


def _config_file(argv: list[str]) -> str:
    """The `--config` file named on the command line (absl's last-one-wins), else the default."""
    files = []
    for i, arg in enumerate(argv):
        if arg.startswith(("--config=", "-config=")):
            files.append(arg.split("=", 1)[1])
        elif arg in ("--config", "-config") and i + 1 < len(argv):
            files.append(argv[i + 1])
    return files[-1] if files else _DEFAULT_CONFIG


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every failure turned into a one-line `error:` and exit 2."""
    if not os.path.isfile(_config_file(argv)):
        _fail(f"config file not found: {_config_file(argv)}")
    for arg in argv[1:]:
        field = arg.lstrip("-").split("=", 1)[0]
        if field.startswith("config.") and field[len("config.") :] in RENAMED_FIELDS:
            _fail(renamed_field_message(field[len("config.") :]))
    try:
        remaining = flags.FLAGS(argv)
        config = flags.FLAGS.config
    except flags.Error as e:
        _fail(e)
    except (AttributeError, KeyError) as e:  # ml_collections: an override names no field
        while e.args and isinstance(e.args[0], BaseException):
            e = e.args[0]
        _fail(f"unknown config field in the --config.FIELD overrides: {e.args[0] if e.args else e}")
    except Exception as e:  # noqa: BLE001 (the config file itself fails (syntax error, get_config raises))
        _fail(f"cannot load the config file: {type(e).__name__}: {e}")
    if not isinstance(config, ml_collections.ConfigDict):  # ml_collections defers load errors
        _fail(f"cannot load the config file {_config_file(argv)}")
    return remaining


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    config_file = config_flags.get_config_filename(flags.FLAGS["config"])
    workdir = _WORKDIR.value or os.path.join("runs", os.path.splitext(os.path.basename(config_file))[0])
    try:
        config = resolve_config(_CONFIG.value)  # fails fast, before TensorFlow is imported; logs a clamped warmup
        if config.distribution_strategy == "multi_worker":
            check_tf_config(os.environ.get("TF_CONFIG"))
        from tfzoo.training.train_lib import train_and_evaluate  # noqa: PLC0415 (TensorFlow after the config checks)

        logging.getLogger("tensorflow").setLevel(logging.WARNING)  # tf.distribute's INFO chatter
        summary = train_and_evaluate(config, workdir)  # resolving again changes nothing (and logs nothing)
    except ValueError as e:
        _fail(e)
    decoded = {k: summary["metrics"][k] for k in ("exact_match", "bleu", "accuracy") if k in summary["metrics"]}
    details = [f"{name} {value:.4g}" for name, value in decoded.items()]
    if summary.get("unigram_entropy") is not None:
        details.append(f"unigram entropy {summary['unigram_entropy']:.3f} nats")
    print(
        f"done: step {summary['step']}, val_loss {summary['val_loss']}, {', '.join(details + [f'workdir {workdir}'])}"
    )


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
