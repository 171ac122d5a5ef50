"""Toy language models with the GPT cache interface, used as exact fixtures by the decoding tests.

- `ToyLM`: a small non-Markov model (each position sees a bag of all earlier
  tokens) with a real static-shape cache, `init_cache` / `call_with_cache` /
  `call` exactly like `tfzoo.models.gpt.GPT`.
- `TableLM`: a bigram model whose logits are a table you set, for tests that
  need control (a model built to repeat, n-gram blocking, sampling frequencies).

`tests/test_decoding_toys.py` checks the toys themselves (cached == uncached).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfzoo.decoding.graph_ops import clamp


class ToyLM(tf.Module):
    """h_q = E[x_q] + mean_{s<q} E[x_s] + P[q]; logits = scale * h_q @ W. Cache: per-slot embeddings."""

    def __init__(
        self,
        vocabulary_size: int = 5,
        hidden_dim: int = 8,
        max_sequence_length: int = 16,
        scale: float = 2.0,
        seed: int = 0,
    ):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.vocabulary_size = vocabulary_size
        self.max_sequence_length = max_sequence_length
        self.embedding = tf.Variable(rng.normal(size=(vocabulary_size, hidden_dim)).astype("float32"))
        self.position = tf.Variable(rng.normal(size=(max_sequence_length, hidden_dim)).astype("float32"))
        self.output = tf.Variable(
            (scale * rng.normal(size=(hidden_dim, vocabulary_size)) / np.sqrt(hidden_dim)).astype("float32")
        )

    def _logits(self, current, context_sum, context_count, positions):
        positions = clamp(positions, 0, self.max_sequence_length - 1)
        context = context_sum / tf.maximum(context_count, 1.0)[..., None]
        hidden = current + context + tf.gather(tf.convert_to_tensor(self.position), positions)  # (B, T, D)
        return tf.einsum("btd,dv->btv", hidden, self.output)

    def __call__(self, token_ids):
        """Logits (B, T, V) for token ids (B, T) at positions 0..T-1, no cache."""
        token_ids = clamp(tf.cast(token_ids, tf.int32), 0, self.vocabulary_size - 1)
        length = token_ids.shape[1]
        embedded = tf.gather(tf.convert_to_tensor(self.embedding), token_ids)  # (B, T, D)
        earlier = tf.cast(tf.range(length)[None, :] < tf.range(length)[:, None], tf.float32)  # (T, T): s < q
        context_sum = tf.einsum("qs,bsd->bqd", earlier, embedded)
        positions = tf.tile(tf.range(length)[None, :], [tf.shape(token_ids)[0], 1])
        return self._logits(embedded, context_sum, tf.reduce_sum(earlier, -1)[None, :], positions)

    def init_cache(self, batch_size, max_length: int):
        zeros = tf.zeros(tf.stack([batch_size, 1, max_length, self.embedding.shape[1]]), tf.float32)
        return ((zeros, zeros),)

    def call_with_cache(self, token_ids, positions, cache):
        token_ids = clamp(tf.cast(token_ids, tf.int32), 0, self.vocabulary_size - 1)
        positions = tf.cast(positions, tf.int32)
        ((keys, _),) = cache
        max_length = keys.shape[2]
        embedded = tf.gather(tf.convert_to_tensor(self.embedding), token_ids)  # (B, T, D)
        slots = tf.range(max_length)
        select = tf.cast(tf.equal(positions[:, :, None], slots), tf.float32)  # (B, T, M)
        written = tf.reduce_max(select, axis=1)  # (B, M)
        keys = keys * (1.0 - written)[:, None, :, None] + tf.einsum("btm,btd->bmd", select, embedded)[:, None]
        earlier = tf.cast(slots[None, None, :] < positions[:, :, None], tf.float32)  # (B, T, M)
        context_sum = tf.einsum("btm,bmd->btd", earlier, keys[:, 0])
        logits = self._logits(embedded, context_sum, tf.reduce_sum(earlier, -1), positions)
        return logits, ((keys, keys),)


class TableLM(tf.Module):
    """A bigram model: logits for the next token = `table[last token]` (a variable you can assign)."""

    def __init__(self, table):
        super().__init__()
        self.table = tf.Variable(np.asarray(table, "float32"))
        self.vocabulary_size = self.table.shape[0]

    def __call__(self, token_ids):
        return tf.gather(tf.convert_to_tensor(self.table), clamp(token_ids, 0, self.vocabulary_size - 1))

    def init_cache(self, batch_size, max_length: int):
        return (tf.zeros(tf.stack([batch_size, 1]), tf.float32),)  # unused; exercises cache plumbing

    def call_with_cache(self, token_ids, positions, cache):
        return self(token_ids), cache
