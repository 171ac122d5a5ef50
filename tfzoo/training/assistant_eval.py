"""The assistant measures (issue 20): greedy replies on held-out dialogues, refusals, preferences, few-shot.

`assistant_measures(model, tokenizer, world, ...)` is what the `sft` and `dpo` tasks add to each
`metrics.jsonl` record and what `bench/assistant_table.py` reports for any workdir (the
pre-trained one too, prompted with the chat template):

- `answer_accuracy`: held-out assistant turns that state a fact (price, stock, hours, returns,
  shipping, order status, "we do not sell" for an invented product) whose greedy reply contains
  the fact and no number the reference does not (`assistant_world.reply_is_correct`);
- `refusal_accuracy`: turns the assistant must refuse, replied with a refusal;
- `followup_accuracy`: fact turns that refer to the product of an earlier turn ("Is it in stock?");
- `over_refusal`: fact turns answered with a refusal;
- `preference_accuracy`: held-out pairs whose chosen reply has the higher summed log-probability.

Each prompt holds the conversation up to the turn, with the reference replies of earlier turns.
`probe_accuracy(model, tokenizer, shots)` is the few-shot probe of the pre-trained model.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfzoo.data import assistant_world
from tfzoo.data.chat_template import ChatTemplateError, render_conversation
from tfzoo.training.losses import sequence_log_probs
from tfzoo.training.task_batches import EVAL_BATCH_SIZE, fixed_batches, pad_rows

FACT_INTENTS = (
    *("price", "stock", "followup_price", "followup_stock"),
    *("hours", "returns", "shipping", "order", "unknown"),
)
MAX_REPLY_TOKENS = 64


_GENERATORS: dict = {}  # (id(model), special ids) -> its greedy Generator: one XLA compile per model, not per call


def _generator(model, tokenizer):
    from tfzoo.decoding.generator import Generator  # noqa: PLC0415 (TensorFlow decoding only when measuring)

    banned = tuple(sorted({tokenizer.pad_id, *tokenizer.special_tokens.values()} - {tokenizer.eos_id}))
    key = (id(model), banned, tokenizer.eos_id)
    if key not in _GENERATORS or _GENERATORS[key][0] is not model:
        generator = Generator(
            model,
            max_length=int(model.max_sequence_length),
            eos_ids=(tokenizer.eos_id,),
            banned_ids=banned,
            pad_id=tokenizer.pad_id,
        )
        _GENERATORS[key] = (model, generator)
    return _GENERATORS[key][1]


def greedy_texts(model, tokenizer, prompts: list[np.ndarray], max_new_tokens: int, stop_at: int | None) -> list[str]:
    """Greedy continuations (text up to `stop_at` or `<eos>`) of id prompts, in fixed-shape batches."""
    window = int(model.max_sequence_length)
    width = window - max_new_tokens
    generator = _generator(model, tokenizer)
    lengths = np.asarray([len(p) for p in prompts], np.int32)
    token_ids = pad_rows([p[-width:] for p in prompts], width, tokenizer.pad_id)
    lengths = np.minimum(lengths, width)
    texts = []
    for start in range(0, len(prompts), EVAL_BATCH_SIZE):
        rows = slice(start, start + EVAL_BATCH_SIZE)
        batch, batch_lengths = token_ids[rows], lengths[rows]
        real = len(batch)
        if real < EVAL_BATCH_SIZE:  # one shape for every batch: one trace
            batch = np.concatenate([batch, np.repeat(batch[:1], EVAL_BATCH_SIZE - real, axis=0)])
            batch_lengths = np.concatenate([batch_lengths, np.repeat(batch_lengths[:1], EVAL_BATCH_SIZE - real)])
        out = generator(batch, batch_lengths, max_new_tokens=max_new_tokens)
        for row in range(real):
            new = out["sequences"][row, batch_lengths[row] : out["sequence_lengths"][row]]
            if stop_at is not None and stop_at in new:
                new = new[: list(new).index(stop_at)]
            texts.append(tokenizer.decode(np.asarray(new, np.int32)))
    return texts


def reply_prompts(tokenizer, conversations, max_length: int):
    """`(prompt ids, turn, reference reply)` for every assistant turn whose prompt fits in the context."""
    out = []
    for conversation in conversations:
        for index, turn in enumerate(conversation.turns):
            position = 2 + 2 * index
            try:
                ids, _ = render_conversation(
                    tokenizer,
                    conversation.messages[:position],
                    add_generation_prompt=True,
                    max_length=max_length - MAX_REPLY_TOKENS,
                )
            except ChatTemplateError:
                continue  # too long for the context: left out (counted by `turns`)
            out.append((ids, turn, conversation.messages[position].content))
    return out


def pair_rows(tokenizer, pairs, seq_len: int, label_pad_id: int = -1):
    """Inputs and labels (2N, seq_len) of preference pairs, rows alternating chosen, rejected.

    A row is `prompt <|assistant|> reply <eos>` (the chat template); only the reply and its `<eos>`
    carry labels. Pairs longer than `seq_len + 1` tokens are left out.
    """
    inputs, labels, kept = [], [], []
    for index, pair in enumerate(pairs):
        rows = []
        for reply in (pair.chosen, pair.rejected):
            messages = [*pair.prompt, assistant_world.Message("assistant", reply)]
            ids, mask = render_conversation(tokenizer, messages)
            rows.append((ids, mask))
        if max(len(ids) for ids, _ in rows) > seq_len + 1:
            continue
        kept.append(index)
        for ids, mask in rows:
            inputs.append(ids[:-1])
            labels.append(np.where(mask[1:] == 1, ids[1:], label_pad_id))
    x = pad_rows(inputs, seq_len, tokenizer.pad_id)
    y = pad_rows(labels, seq_len, label_pad_id)
    return x, y, kept


def pair_log_probs(model, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Summed reply log-probabilities (N,) of rows under `model`, in fixed-size batches."""

    @tf.function(autograph=False)
    def score(x, y):
        return sequence_log_probs(y, model(x, training=False))

    out = []
    for (x, real), (y, _) in zip(fixed_batches(inputs, EVAL_BATCH_SIZE), fixed_batches(labels, EVAL_BATCH_SIZE)):
        out.append(score(tf.constant(x), tf.constant(y)).numpy()[:real])
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def assistant_measures(model, tokenizer, world, *, dialogues: int = 200, pairs: int = 200, seed: int = 0) -> dict:
    """The measures of the module docstring on `world`'s held-out dialogues and preference pairs."""
    window = int(model.max_sequence_length)
    conversations = assistant_world.dialogues(world, "validation", count=dialogues, seed=seed)
    prompts = reply_prompts(tokenizer, conversations, window)
    replies = greedy_texts(model, tokenizer, [p for p, _, _ in prompts], MAX_REPLY_TOKENS, tokenizer.eos_id)
    correct = [assistant_world.reply_is_correct(r, turn) for r, (_, turn, _) in zip(replies, prompts)]
    intents = [turn.intent for _, turn, _ in prompts]

    def share(select) -> float:
        chosen = [c for c, (_, turn, _), r in zip(correct, prompts, replies) if select(turn, r)]
        return float(np.mean(chosen)) if chosen else float("nan")

    held_out = assistant_world.preference_pairs(world, "validation", count=pairs, seed=seed)
    x, y, kept_pairs = pair_rows(tokenizer, held_out, window)
    log_probs = pair_log_probs(model, x, y).reshape(-1, 2)
    measures = {
        "answer_accuracy": share(lambda turn, r: turn.intent in FACT_INTENTS),
        "refusal_accuracy": share(lambda turn, r: turn.intent == "refuse"),
        "followup_accuracy": share(lambda turn, r: turn.refers_back),
        "over_refusal": float(
            np.mean([assistant_world.is_refusal(r) for r, i in zip(replies, intents) if i in FACT_INTENTS])
        ),
        "preference_accuracy": float(np.mean(log_probs[:, 0] > log_probs[:, 1])),
        "measured_turns": len(prompts),
        "measured_pairs": len(log_probs),
    }
    measures["sample_reply"] = f"{prompts[0][2]!r} -> {replies[0]!r}" if prompts else ""
    # Not logged (the tasks drop it): per intent and per flaw, for reading a table's row.
    kept = [held_out[i] for i in kept_pairs]
    wins = log_probs[:, 0] > log_probs[:, 1]
    measures["breakdown"] = {
        "answer_accuracy_by_intent": {
            i: round(share(lambda turn, r, i=i: turn.intent == i), 3) for i in FACT_INTENTS + ("refuse",)
        },
        # Multi-turn: follow-ups ("Is it in stock?") whose reply names the product the earlier turn was about
        # (the reference resolved, whatever the fact), beside `followup_accuracy` (resolved and correct).
        "followup_names_product": _share_naming(prompts, replies),
        "preference_wins": [int(w) for w in wins],  # per held-out pair, for paired comparisons of stages
        "preference_accuracy_by_flaw": {
            f: round(float(np.mean([w for w, p in zip(wins, kept) if p.flaw == f])), 3)
            for f in sorted({p.flaw for p in kept})
        },
    }
    return measures


def _share_naming(prompts, replies) -> float:
    """Share of follow-up turns whose reply names the product of the earlier turn (`Turn.product`)."""
    named = [turn.product in reply for (_, turn, _), reply in zip(prompts, replies) if turn.refers_back]
    return round(float(np.mean(named)), 3) if named else float("nan")


def probe_accuracy(model, tokenizer, shots: int, count: int = 100, seed: int = 0) -> float:
    """Share of probe prompts with `shots` examples whose greedy answer (up to the newline) is right."""
    examples = assistant_world.probe_examples(seed, shots, count)
    prompts = [tokenizer.encode(p) for p, _ in examples]
    newline = int(tokenizer.encode("\n")[0])
    answers = greedy_texts(model, tokenizer, prompts, 16, newline)
    return float(np.mean([a.strip() == expected for a, (_, expected) in zip(answers, examples)]))
