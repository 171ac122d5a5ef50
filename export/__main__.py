r"""Exports a trained workdir: `python -m export --workdir=DIR`.

    python -m export --workdir=DIR [--formats=saved_model,tflite,onnx[,genai,litertlm]]
        [--quantization=none,fp16,int8[,int4]] [--strategy=beam|greedy|sample] [--beam_size=4] [--max_length=N]
        [--version=1]

Writes `DIR/export/` (layout in `export/pipeline.py`; a BERT workdir gets `embed`:
`export/embed_export.py`) and prints one summary
line per artefact. Exit status: 0 when every artefact matches the Keras model,
1 when parity fails (the export goes to `DIR/export.failed/`), 2 on bad input
(`error: ...` on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import os
import sys

from export.errors import ExportError
from export.pipeline import DEFAULT_FORMATS, FORMATS, STRATEGIES, export_workdir
from export.tflite_export import DEFAULT_QUANTIZATIONS
from tfzoo.cli import OneLineErrorParser, print_error


def _fail(message: str, status: int = 2):
    print_error(message)
    sys.exit(status)


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m export", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--workdir", required=True, help="Training run folder (config.json, model.keras, tokenizer/).")
    parser.add_argument(
        "--formats",
        default=",".join(DEFAULT_FORMATS),
        help=f"Comma list of {', '.join(FORMATS)} (default: {','.join(DEFAULT_FORMATS)}).",
    )
    parser.add_argument(
        "--quantization",
        default=",".join(DEFAULT_QUANTIZATIONS),
        help="Comma list of TFLite variants: none, fp16, int8, int4 (default: none,fp16,int8).",
    )
    parser.add_argument("--strategy", default="beam", help=f"Strategy of `generate`: {', '.join(STRATEGIES)}.")
    parser.add_argument("--beam_size", type=int, default=4, help="Beams of the beam strategy.")
    parser.add_argument(
        "--max_length",
        type=int,
        default=None,
        help="Prompt + new tokens; for BERT, tokens per text of serving_default (default: the model's).",
    )
    parser.add_argument("--version", type=int, default=1, help="TF Serving version folder.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (bad input exits with 2 through `error:`)."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        report = export_workdir(
            args.workdir,
            formats=args.formats.split(","),
            quantization=args.quantization.split(","),
            strategy=args.strategy,
            beam_size=args.beam_size,
            max_length=args.max_length,
            version=args.version,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except ExportError as error:
        _fail(error)
    for key, artefact in report["artefacts"].items():
        result = artefact["parity"]
        status = "ok" if result["passed"] else "FAILED"
        line = f"{key}: {artefact['path']} {artefact['size_bytes']} bytes, parity {status}"
        if "validation_loss_change" in result:
            line += f", validation loss {result['validation_loss_change']:+.2%}"
        print(line)
    if not report["passed"]:
        _fail(f"parity failed, export kept in {report['location']}: {'; '.join(report['failures'])}", status=1)
    print(f"wrote {report['location']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
