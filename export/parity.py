"""Parity of exported artefacts against the Keras model: token ids, logits, validation loss.

The reference is the trained Keras model run through `tfzoo.decoding` on the
parity inputs its model kind gives (`tfzoo.kinds`, `kind.parity_inputs`):
fixed prompts of different lengths for decoders (`parity_prompts`), one
batch, right-padded; held-out inputs of their task for encoder-decoder and
image models (translation sources, shapes images) with the start token as
the decoder prompt, their steps run on the `encode` output. For every
artefact (through `tfzoo.runtimes`):

- `generate` token ids for each strategy the export carries (greedy and beam
  at least), plus greedy with a repetition penalty and n-gram blocking, and greedy and beam
  with a stop sequence and banned sequences taken from the reference's own greedy
  continuations (`stop_ban_options`, so that they change the output):
  sequences and lengths must be identical for fp32 artefacts;
- `prefill` and three `decode` steps fed the reference's greedy tokens:
  the max |logit difference| must be <= `LOGIT_TOLERANCE` for fp32;
- for quantized TFLite: the mean cross-entropy on validation windows
  (through `prefill`), its relative change against the Keras model, which
  must be within `QUANTIZED_LOSS_TOLERANCE`, and the share of generated
  tokens that agree with the (fp32) reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfzoo.kinds.decoder import MAX_NEW_TOKENS, PARITY_TEXTS, parity_prompts

__all__ = ["MAX_NEW_TOKENS", "PARITY_TEXTS", "cross_entropy", "measure", "parity_prompts", "reference"]

LOGIT_TOLERANCE = 1e-4
QUANTIZED_LOSS_TOLERANCE = {"fp16": 0.01, "int8": 0.02, "int4": 0.03}  # relative change of the validation loss
DECODE_STEPS = 3
PENALTY_KNOBS = {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2}


def _cases(strategies, stop_ban: dict | None = None) -> dict[str, tuple[str, dict]]:
    cases = {strategy: (strategy, {}) for strategy in strategies}
    cases["greedy_penalties"] = ("greedy", dict(PENALTY_KNOBS))
    if stop_ban:
        for strategy in ("greedy", "beam"):
            if strategy in strategies:
                cases[f"{strategy}_stop_ban"] = (strategy, dict(stop_ban))
    return cases


def stop_ban_options(greedy: dict, prompt_lengths) -> dict[str, list]:
    """`stop_sequences` and `banned_sequences` that change the reference's greedy output.

    The stop sequence is tokens 2-3 of the first row that generated at least 4 tokens (so that row
    ends two tokens early); the banned sequences are the first two generated tokens of another row
    (a two-token ban) and that row's third token when it differs from the stop's tokens (a one-token
    ban). Empty when no row generated 4 tokens.

    Example:
    >>> out = {"sequences": [[9, 2, 3, 4, 5], [9, 6, 7, 8, 0]], "sequence_lengths": [5, 4]}
    >>> stop_ban_options(out, [1, 1])
    {'stop_sequences': [[4, 5]], 'banned_sequences': [[6, 7], [8]]}
    """
    rows = []
    for row, (sequence, end) in enumerate(zip(greedy["sequences"], greedy["sequence_lengths"])):
        new = [int(t) for t in np.asarray(sequence)[int(prompt_lengths[row]) : int(end)]]
        rows.append(new)
    long = [i for i, new in enumerate(rows) if len(new) >= 4]
    if not long:
        return {}
    stop = rows[long[0]][2:4]
    other = next((i for i in range(len(rows)) if i != long[0] and len(rows[i]) >= 2), None)
    if other is None:
        return {"stop_sequences": [stop]}
    banned = [rows[other][0:2]]
    if len(rows[other]) >= 3 and rows[other][2] not in stop:
        banned.append(rows[other][2:3])
    return {"stop_sequences": [stop], "banned_sequences": banned}


def _steps(runtime, conditions: dict | None):
    """`(prefill, decode)` of a runtime, bound to the encoder context when the model has conditions."""
    if not conditions:
        return runtime.prefill, runtime.decode
    context = runtime.encode(**conditions)
    return (lambda *args: runtime.prefill(*args, context)), (lambda *args: runtime.decode(*args, context))


def _step_logits(runtime, prompts: dict, greedy_sequences: np.ndarray) -> list[np.ndarray]:
    """Logits of `prefill` on the prompts, then of `DECODE_STEPS` decode steps fed the given tokens."""
    token_ids, lengths = prompts["token_ids"], prompts["lengths"]
    batch, width = token_ids.shape
    positions = np.tile(np.arange(width, dtype=np.int32), (batch, 1))
    prefill, decode = _steps(runtime, prompts.get("conditions"))
    logits, cache = prefill(token_ids, positions, runtime.init_cache(batch))
    outputs = [logits]
    rows = np.arange(batch)
    for step in range(DECODE_STEPS):
        position = np.minimum(lengths + step, runtime.max_length - 1)
        token = greedy_sequences[rows, position][:, None]
        logits, cache = decode(token, position[:, None].astype(np.int32), cache)
        outputs.append(logits)
    return outputs


def reference(keras_runtime, prompts: dict, strategies) -> dict[str, Any]:
    """Runs the Keras reference: every case's `generate` outputs and the step logits."""
    outputs = {}
    conditions = prompts.get("conditions") or {}
    greedy = keras_runtime.generate(
        prompts["token_ids"], prompts["lengths"], prompts["max_new_tokens"], strategy="greedy", **conditions
    )
    stop_ban = stop_ban_options({"sequences": greedy[0], "sequence_lengths": greedy[1]}, prompts["lengths"])
    for case, (strategy, knobs) in _cases(strategies, stop_ban).items():
        sequences, lengths, scores = keras_runtime.generate(
            prompts["token_ids"],
            prompts["lengths"],
            prompts["max_new_tokens"],
            strategy=strategy,
            **knobs,
            **conditions,
        )
        outputs[case] = {"sequences": sequences, "sequence_lengths": lengths, "scores": scores}
    steps = _step_logits(keras_runtime, prompts, outputs["greedy"]["sequences"])
    return {"generate": outputs, "steps": steps, "stop_ban": stop_ban}


def _agreement(reference_out: dict, sequences: np.ndarray, prompt_lengths: np.ndarray) -> float:
    """Share of the reference's generated tokens that the other run has at the same place."""
    agree = total = 0
    for row, length in enumerate(reference_out["sequence_lengths"]):
        start = int(prompt_lengths[row])
        want = reference_out["sequences"][row, start:length]
        agree += int(np.sum(sequences[row, start:length] == want))
        total += int(want.size)
    return agree / total if total else 1.0


def cross_entropy(logits: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean next-token cross-entropy in nats (over the True places of `mask`, if given)."""
    logits = logits.astype(np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(logits).sum(axis=-1))
    picked = np.take_along_axis(logits, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    if mask is None:
        return float(np.mean(log_z - picked))
    return float(np.sum((log_z - picked) * mask) / max(int(np.sum(mask)), 1))


def runtime_validation_loss(
    runtime,
    inputs: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 8,
    conditions: dict | None = None,
    mask: np.ndarray | None = None,
) -> float:
    """Mean cross-entropy of `runtime.prefill` (zero cache, positions 0..T-1) on validation windows.

    For conditional models `inputs` are the teacher-forced targets (`<bos> y`),
    `conditions` their sources or images (run through `encode` first) and
    `mask` the labels that count (not padding).
    """
    total = weight = 0.0
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start : start + batch_size]
        part = {k: v[start : start + batch_size] for k, v in (conditions or {}).items()}
        chunk_mask = None if mask is None else mask[start : start + batch_size]
        positions = np.tile(np.arange(chunk.shape[1], dtype=np.int32), (len(chunk), 1))
        prefill, _ = _steps(runtime, part)
        logits, _ = prefill(chunk, positions, runtime.init_cache(len(chunk)))
        count = float(len(chunk) if chunk_mask is None else np.sum(chunk_mask))
        total += cross_entropy(logits, labels[start : start + batch_size], chunk_mask) * count
        weight += count
    return float(total / max(weight, 1.0))


def measure(
    runtime,
    ref: dict,
    prompts: dict,
    strategies,
    quantization: str = "none",
    validation: dict | None = None,
) -> dict[str, Any]:
    """Parity of one runtime against the reference; `passed` and `failures` say whether it holds.

    Args:
        runtime: a `tfzoo.runtimes.Runtime`.
        ref: the output of `reference`.
        prompts: the kind's parity inputs (`parity_prompts` for decoders).
        strategies: strategies the export carries.
        quantization: "none" (exact parity required), "fp16", "int8" or "int4" (loss change bounded).
        validation: dict with `inputs`, `labels` and the Keras `loss`, or None.
    """
    failures = []
    generate = {}
    agreements = []
    conditions = prompts.get("conditions") or {}
    for case, (strategy, knobs) in _cases(strategies, ref.get("stop_ban")).items():
        want = ref["generate"][case]
        sequences, lengths, scores = runtime.generate(
            prompts["token_ids"],
            prompts["lengths"],
            prompts["max_new_tokens"],
            strategy=strategy,
            **knobs,
            **conditions,
        )
        identical = bool(
            np.array_equal(sequences, want["sequences"]) and np.array_equal(lengths, want["sequence_lengths"])
        )
        agreement = _agreement(want, sequences, prompts["lengths"])
        agreements.append(agreement)
        generate[case] = {
            "identical": identical,
            "token_agreement": round(agreement, 6),
            "max_score_diff": float(np.max(np.abs(scores - want["scores"]))),
            "sequences": sequences.tolist(),
            "sequence_lengths": lengths.tolist(),
        }
        if quantization == "none" and not identical:
            failures.append(f"generate {case}: token ids differ from Keras")
    steps = _step_logits(runtime, prompts, ref["generate"]["greedy"]["sequences"])
    diffs = [float(np.max(np.abs(got - want))) for got, want in zip(steps, ref["steps"])]
    result: dict[str, Any] = {
        "generate": generate,
        "prefill_max_logit_diff": diffs[0],
        "decode_max_logit_diff": max(diffs[1:]),
    }
    if quantization == "none":
        result["logit_tolerance"] = LOGIT_TOLERANCE
        if max(diffs) > LOGIT_TOLERANCE:
            failures.append(f"prefill/decode logits differ from Keras by {max(diffs):.3g} > {LOGIT_TOLERANCE}")
    else:
        result["token_agreement"] = round(float(np.mean(agreements)), 6)
        if validation is not None and "inputs" in validation:
            loss = runtime_validation_loss(
                runtime,
                validation["inputs"],
                validation["labels"],
                conditions=validation.get("conditions"),
                mask=validation.get("mask"),
            )
            change = (loss - validation["loss"]) / validation["loss"]
            tolerance = QUANTIZED_LOSS_TOLERANCE[quantization]
            result["validation_loss"] = loss
            result["validation_loss_change"] = change
            result["validation_loss_tolerance"] = tolerance
            if abs(change) > tolerance:
                failures.append(f"validation loss changes by {change:+.2%} (> {tolerance:.0%}) against fp32")
        else:
            result["validation_loss"] = None
    result["passed"] = not failures
    result["failures"] = failures
    return result
