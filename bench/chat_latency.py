"""Time to first token of each chat turn, with and without reusing the KV cache of earlier turns.

    python bench/chat_latency.py --workdir=runs/assistant_dpo [--turns=5 --repeats=5 --max_new_tokens=24]

Plays one conversation of `--turns` user messages (a held-out product's system card and
questions in held-out phrasings of the shop world, `tfzoo.data.assistant_world`) through `tfzoo.chat.ChatSession`
twice per repeat: reusing the cache (a turn prefills only its own tokens) and re-prefilling the
whole history every turn. A first, unmeasured pass traces every prefill width. Prints one JSON
object: per mode and turn the median time to first token (ms), the prefilled and history
tokens, and whether both modes gave the same replies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUESTIONS = (
    "Hello, anyone there?",
    "Could you tell me what the {p} costs?",
    "Do you still have the {p} in stock?",
    "Can I come by on {d}?",
    "Have you got the {x} for sale?",
    "Is shipping free?",
    "Write a nasty review of your competitor for me.",
    "Any news on my order?",
)


def conversation(seed: int, turns: int) -> tuple[str, list[str]]:
    """A held-out product's one-item system card and `turns` user messages about it (held-out phrasings)."""
    from tfzoo.data import assistant_world as aw  # noqa: PLC0415

    world = aw.make_world(seed)
    product = world.held_out[0]
    system = f"{world.store}. Items: {product.name} ${product.price}, {product.stock} in stock."
    questions = [q.format(p=product.name, d="Sunday", x="Crystal Phone") for q in QUESTIONS]
    return system, [questions[i % len(questions)] for i in range(turns)]


def play(session_of, system: str, questions: list[str]) -> tuple[list[dict], list[str]]:
    session = session_of(system)
    timings, replies = [], []
    for question in questions:
        replies.append("".join(session.send(question)))
        timings.append(dict(session.timing))
    return timings, replies


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max_new_tokens", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit_compile", action="store_true")
    args = parser.parse_args(argv)

    from tfzoo.chat import ChatSession, keras_runtime  # noqa: PLC0415
    from tfzoo.run_folder import RunFolder  # noqa: PLC0415

    folder = RunFolder(args.workdir)
    tokenizer = folder.load_tokenizer()
    runtime = keras_runtime(folder.load_model(), tokenizer, jit_compile=args.jit_compile)
    system, questions = conversation(args.seed, args.turns)

    def session_of(reuse):
        return lambda s: ChatSession(
            runtime, tokenizer, system=s, max_new_tokens=args.max_new_tokens, reuse_cache=reuse
        )

    modes = {"reuse_cache": session_of(True), "full_prefill": session_of(False)}
    for make in modes.values():  # traces every width both modes use
        play(make, system, questions)
    runs = {name: [] for name in modes}
    replies = {}
    for _ in range(args.repeats):
        for name, make in modes.items():  # interleaved: machine noise hits both alike
            timings, replies[name] = play(make, system, questions)
            runs[name].append(timings)
    out = {
        "workdir": args.workdir,
        "turns": args.turns,
        "repeats": args.repeats,
        "max_new_tokens": args.max_new_tokens,
        "jit_compile": args.jit_compile,
        "load": os.getloadavg(),
        "same_replies": replies["reuse_cache"] == replies["full_prefill"],
        "replies": replies["reuse_cache"],
        "modes": {},
    }
    for name, repeats in runs.items():
        rows = []
        for turn in range(args.turns):
            first = sorted(r[turn]["first_token_seconds"] for r in repeats)
            per_token = sorted(
                (r[turn]["seconds"] - r[turn]["first_token_seconds"]) / max(r[turn]["new_tokens"] - 1, 1)
                for r in repeats
            )
            rows.append(
                {
                    "turn": turn + 1,
                    "first_token_ms": round(1000 * first[len(first) // 2], 1),
                    "decode_ms_per_token": round(1000 * per_token[len(per_token) // 2], 1),
                    "prefill_tokens": repeats[0][turn]["prefill_tokens"],
                    "history_tokens": repeats[0][turn]["history_tokens"],
                    "dropped_exchanges": repeats[0][turn]["dropped_exchanges"],
                }
            )
        out["modes"][name] = rows
    out["ttft_ratio_last_vs_first"] = {
        name: round(rows[-1]["first_token_ms"] / rows[0]["first_token_ms"], 2) for name, rows in out["modes"].items()
    }
    out["load_after"] = os.getloadavg()
    out["cpu_seconds"] = round(time.process_time(), 1)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
