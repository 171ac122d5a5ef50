"""The assistant table of issue 20: each stage's workdir measured on held-out products and phrasings.

    python bench/assistant_table.py --workdir=pretrained=runs/assistant_pretrain \
        --workdir=+SFT=runs/assistant_sft --workdir=+DPO=runs/assistant_dpo [--dialogues=300 --pairs=300]
        [--probe=runs/assistant_pretrain]

Every model is prompted with the chat template (the pre-trained one too; it never saw a role token)
and replies greedily (`tfzoo.training.assistant_eval.assistant_measures`). `--probe` also measures
the few-shot probe of that workdir with 0, 1, 2, 4 and 8 examples in the prompt. Each stage after
the first gets `preference_vs_previous`: the held-out pairs it turned right and wrong against the
stage before it, with a two-sided sign test. Prints one JSON object (and a Markdown table on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBE_SHOTS = (0, 1, 2, 4, 8)


def sign_test(gained: int, lost: int) -> float:
    """Two-sided exact sign test of `gained` vs `lost` discordant pairs (1.0 when there are none).

    >>> sign_test(7, 4), sign_test(10, 0)
    (0.5488, 0.002)
    """
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(max(gained, lost), n + 1)) / 2**n
    return round(min(1.0, 2 * tail), 4)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", action="append", default=[], help="NAME=DIR, one per stage")
    parser.add_argument("--dialogues", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="world seed (the dataset spec's @SEED)")
    parser.add_argument("--probe", default="", help="a workdir whose few-shot probe accuracy is measured")
    args = parser.parse_args(argv)

    import keras  # noqa: PLC0415 (after the arguments are checked)

    import tfzoo.models.registry  # noqa: F401, PLC0415 (registers the zoo's classes)
    from tfzoo.data.assistant_world import make_world  # noqa: PLC0415
    from tfzoo.run_folder import RunFolder  # noqa: PLC0415
    from tfzoo.training.assistant_eval import assistant_measures, probe_accuracy  # noqa: PLC0415

    def load(directory):
        folder = RunFolder(directory)
        from tfzoo.data.tokenizers import load_tokenizer  # noqa: PLC0415

        return keras.saving.load_model(folder.model_path, compile=False), load_tokenizer(folder.tokenizer_dir)

    world = make_world(args.seed)
    out = {"dialogues": args.dialogues, "pairs": args.pairs, "seed": args.seed, "stages": {}, "load": os.getloadavg()}
    for item in args.workdir:
        name, _, directory = item.partition("=")
        model, tokenizer = load(directory)
        start = time.time()
        measures = assistant_measures(model, tokenizer, world, dialogues=args.dialogues, pairs=args.pairs)
        measures["seconds"] = round(time.time() - start, 1)
        out["stages"][name] = {"workdir": directory, **measures}
        print(f"{name}: {measures}", file=sys.stderr, flush=True)
    names_in_order = list(out["stages"])
    for before, after in zip(names_in_order, names_in_order[1:]):  # paired over the same held-out pairs
        a = out["stages"][before]["breakdown"].pop("preference_wins")
        b = out["stages"][after]["breakdown"]["preference_wins"]
        gained, lost = sum(y and not x for x, y in zip(a, b)), sum(x and not y for x, y in zip(a, b))
        out["stages"][after]["preference_vs_previous"] = {
            "previous": before,
            "pairs_gained": gained,
            "pairs_lost": lost,
            "sign_test_p_two_sided": sign_test(gained, lost),
        }
    if names_in_order:
        out["stages"][names_in_order[-1]]["breakdown"].pop("preference_wins")
    if args.probe:
        model, tokenizer = load(args.probe)
        out["probe"] = {"workdir": args.probe, **{str(k): probe_accuracy(model, tokenizer, k) for k in PROBE_SHOTS}}
    out["load_after"] = os.getloadavg()
    names = ("answer_accuracy", "refusal_accuracy", "followup_accuracy", "over_refusal", "preference_accuracy")
    print("| stage | " + " | ".join(names) + " | followup_names_product |", file=sys.stderr)
    for name, row in out["stages"].items():
        cells = [f"{row[n]:.3f}" for n in names] + [f"{row['breakdown']['followup_names_product']:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |", file=sys.stderr)
    if args.probe:
        probe = ", ".join(f"{k} -> {out['probe'][str(k)]:.2f}" for k in PROBE_SHOTS)
        print(f"few-shot probe: {probe}", file=sys.stderr)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
