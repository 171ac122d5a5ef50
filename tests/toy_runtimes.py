"""Runtimes behind the `tfzoo.runtimes` interface without a model, numpy only: for parity tests.

Importable by name, so that a child process (`export.parity_process`) can make them too.
"""

from __future__ import annotations

import numpy as np


class BigramRuntime:
    """A bigram "model" behind the runtime interface: logits = table[token]; `generate` is greedy on the table."""

    max_length = 16

    def __init__(self, table: np.ndarray, flip_token: bool = False, logit_noise: float = 0.0):
        self.table, self.flip_token, self.logit_noise = table, flip_token, logit_noise

    def init_cache(self, batch_size):
        return ((np.zeros((batch_size, 1, self.max_length, 1), np.float32),) * 2,)

    def prefill(self, token_ids, positions, cache):
        return self.table[np.asarray(token_ids)] + self.logit_noise, cache

    decode = prefill

    def generate(self, token_ids, lengths, max_new_tokens, strategy=None, **knobs):
        sequences = np.zeros((len(lengths), self.max_length), np.int32)
        for row, length in enumerate(lengths):
            sequences[row, :length] = token_ids[row, :length]
            for position in range(length, length + max_new_tokens):
                sequences[row, position] = np.argmax(self.table[sequences[row, position - 1]])
        if self.flip_token:
            sequences[0, lengths[0]] += 1
        return sequences, np.asarray(lengths) + max_new_tokens, np.zeros(len(lengths), np.float32)


class FailingRuntime:
    """A runtime that cannot be made (like a file that does not load)."""

    def __init__(self):
        raise RuntimeError("no model")
