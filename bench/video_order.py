"""How a trained video captioner's held-out errors split: order swapped, wrong object or event.

    python bench/video_order.py --workdir=runs/video_captioner_shapes

Captions every held-out clip of the workdir's `video:shapes` task (greedy, the task's own decoder)
and counts: exact; the two events right but in the wrong order (the hypothesis is the caption of
the clip's time-swapped twin); other errors. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

from tfzoo.run_folder import RunFolder
from tfzoo.training.validate import resolve_config
from tfzoo.training.vision_tasks import CaptionTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    folder = RunFolder(args.workdir)
    import ml_collections  # noqa: PLC0415 (after the arguments)

    with open(folder.config_path, encoding="utf-8") as file:
        config = resolve_config(ml_collections.ConfigDict(json.load(file)))
    task = CaptionTask(config)
    hypotheses = task.caption(folder.load_model(), task.validation[0])
    references = task.validation_captions
    counts = {"exact": 0, "order_swapped": 0, "other": 0}
    for hypothesis, reference in zip(hypotheses, references):
        first, second = reference.split(" then ")
        if hypothesis == reference:
            counts["exact"] += 1
        elif hypothesis == f"{second} then {first}":
            counts["order_swapped"] += 1
        else:
            counts["other"] += 1
    print(json.dumps({"clips": len(references), **counts}))


if __name__ == "__main__":
    main()
