"""Greedy decoding of a held-out split and the metrics of the decoded texts (`exact_match`, `bleu`).

Shared by the tasks whose model writes a text from a condition: `seq2seq`
(a source sentence) and `caption` (an image).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfzoo.training.task_batches import EVAL_BATCH_SIZE, fixed_batches


def greedy_decoder(model, init_cache, start_id: int, tokenizer, max_length: int):
    """A `tf.function` batch (N, ...) -> greedy sequences (N, max_length) from `init_cache(batch, max_length)`."""
    from tfzoo.decoding import generate  # noqa: PLC0415 (TensorFlow only when decoding runs)

    @tf.function(autograph=False)  # plain graph code: no Python control flow on tensors
    def decode(batch):
        count = tf.shape(batch)[0]
        outputs = generate(
            model.decoding_step,
            init_cache(batch, max_length),
            tf.fill([count, 1], start_id),
            tf.ones([count], tf.int32),
            max_length=max_length,
            eos_ids=(tokenizer.eos_id,),
            pad_id=tokenizer.pad_id,
            max_new_tokens=max_length - 1,
        )
        return outputs["sequences"]

    return decode


def decode_all(decode, inputs: np.ndarray, tokenizer) -> list[str]:
    """The texts `decode` writes for every row of `inputs`, in fixed-size batches (one trace)."""
    texts = []
    for batch, real in fixed_batches(inputs, EVAL_BATCH_SIZE):
        sequences = decode(tf.constant(batch)).numpy()[:real, 1:]  # drop the start token
        texts.extend(tokenizer.decode(row) for row in sequences)
    return texts


def text_metrics(tokenizer, hypotheses: list[str], references: list[str]) -> dict:
    """`exact_match` (against what the tokenizer can express: its decode of the reference's ids) and `bleu`."""
    import sacrebleu  # noqa: PLC0415 (only when BLEU is computed)

    expressible = [tokenizer.decode(tokenizer.encode(r)) for r in references]
    exact = np.mean([h == r for h, r in zip(hypotheses, expressible)])
    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
    return {"exact_match": float(exact), "bleu": float(bleu), "decoded_examples": len(references)}
