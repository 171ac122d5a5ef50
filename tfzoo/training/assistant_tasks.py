"""The assistant task kinds (issue 20): `sft` (dialogues, loss on assistant tokens) and `dpo` (preferences).

Both run a GPT (`model = "gpt"`, `task = "sft"` or `"dpo"`) with a chat tokenizer (`chat:byte`),
usually `init_from` the pre-trained run (configs/assistant_pretrain.py), on the shop world of
`tfzoo.data.assistant_world`, and add `tfzoo.training.assistant_eval.assistant_measures` to every
`metrics.jsonl` record.

- `sft` (`dataset = "assistant:sft[@SEED]"`): `sft_dialogues` training conversations rendered by
  the chat template and packed whole, several to a row of `seq_len + 1` tokens (a conversation
  never spans two rows; the rest of a row is padding). The labels are the next tokens where the
  next token is an assistant token (reply and its `<eos>`) and `label_pad_id` (-1) elsewhere, so the
  zoo's masked cross-entropy (`tfzoo.training.losses`) trains and reports assistant tokens only.
  `val_loss` is the same on packed held-out dialogues (held-out products and phrasings).
- `dpo` (`dataset = "assistant:prefs[@SEED]"`): direct preference optimisation (Rafailov et al.,
  2023) on `preference_pairs` pairs, `dpo_beta` its beta. The reference is the `init_from` model,
  frozen: its reply log-probabilities of every pair are computed once when the task loads and travel
  in the batch targets (`losses.pack_dpo_targets`). `train_loss`/`val_loss` are the DPO loss
  (log 2 where the policy equals the reference); each record adds `reward_accuracy` (the share of
  held-out pairs whose implicit reward `beta * (log pi - log ref)` prefers the chosen reply) beside
  the likelihood `preference_accuracy` of the measures, and `chosen_log_prob_shift` /
  `rejected_log_prob_shift` (mean per-token `log pi - log ref` of each side). `dpo_nll_weight` > 0
  adds the chosen reply's mean per-token NLL to the loss (DPO + NLL, the RPO form of Pang et al.,
  2024); `train_loss`/`val_loss` stay the DPO term alone.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging

from tfzoo.data import assistant_world
from tfzoo.data.chat_template import ChatTokenizer, render_conversation
from tfzoo.data.errors import DatasetError
from tfzoo.training import assistant_eval
from tfzoo.training.losses import DpoLoss, DpoLossMetric, pack_dpo_targets
from tfzoo.training.task import Task, build_task_tokenizer
from tfzoo.training.task_batches import eval_batches, pad_rows, step_indexed_batches
from tfzoo.training.validate import ConfigError


def _world_of(config, part: str):
    try:
        found, seed = assistant_world.parse_spec(config.dataset)
    except DatasetError as error:
        raise ConfigError(f"task {config.task!r}: {error}") from None
    if found != part:
        raise ConfigError(f"task {config.task!r} reads dataset assistant:{part}[@SEED], got {config.dataset!r}")
    return assistant_world.make_world(seed)


def _chat_tokenizer(config, world):
    # Built on the pre-training text, so `chat:char` gets the pre-trained run's vocabulary.
    tokenizer = build_task_tokenizer(config, assistant_world.documents(world)[0])
    if not isinstance(tokenizer, ChatTokenizer):
        raise ConfigError(f"task {config.task!r} needs a chat tokenizer (e.g. 'chat:byte'), got {config.tokenizer!r}")
    return tokenizer


def sft_labels(ids: np.ndarray, mask: np.ndarray, label_pad_id: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """`(inputs, labels)` of one rendered row: `labels[t] = ids[t + 1]` where that token is an assistant's.

    Example:
    >>> x, y = sft_labels(np.array([5, 6, 7, 1]), np.array([0, 0, 1, 1]))
    >>> x.tolist(), y.tolist()
    ([5, 6, 7], [-1, 7, 1])
    """
    return ids[:-1], np.where(mask[1:] == 1, ids[1:], label_pad_id).astype(np.int32)


def pack_conversations(tokenizer, conversations, seq_len: int, label_pad_id: int = -1):
    """Packs whole rendered conversations into rows of `seq_len + 1` tokens; `(inputs, labels, dropped)`.

    First fit: each conversation goes into the first row with room for it (rows keep their
    conversations in order); a conversation longer than a row is dropped (counted).
    """
    rows, room, dropped = [], [], 0
    for conversation in conversations:
        ids, mask = render_conversation(tokenizer, conversation.messages)
        if len(ids) > seq_len + 1:
            dropped += 1
            continue
        index = next((i for i, free in enumerate(room) if free >= len(ids)), len(rows))
        if index == len(rows):
            rows.append(([], []))
            room.append(seq_len + 1)
        rows[index][0].extend(ids.tolist())
        rows[index][1].extend(mask.tolist())
        room[index] -= len(ids)
    pairs = [sft_labels(np.asarray(ids), np.asarray(mask), label_pad_id) for ids, mask in rows]
    inputs = pad_rows([x for x, _ in pairs], seq_len, tokenizer.pad_id)
    labels = pad_rows([y for _, y in pairs], seq_len, label_pad_id)
    return inputs, labels, dropped


class _AssistantTask(Task):
    label_pad_id = -1

    def evaluate(self, model):
        c = self.config
        measures = assistant_eval.assistant_measures(
            model, self.tokenizer, self.world, dialogues=c.eval_dialogues, pairs=c.eval_pairs, seed=c.seed
        )
        logging.info("assistant measures: %s", measures)
        return {k: v for k, v in measures.items() if k not in ("sample_reply", "breakdown")}

    def samples(self, model):
        conversations = assistant_world.dialogues(self.world, "validation", count=3, seed=self.config.seed + 7)
        prompts = assistant_eval.reply_prompts(self.tokenizer, conversations, int(model.max_sequence_length))
        replies = assistant_eval.greedy_texts(
            model, self.tokenizer, [p for p, _, _ in prompts], assistant_eval.MAX_REPLY_TOKENS, self.tokenizer.eos_id
        )
        return [
            f"{self.tokenizer.decode_with_roles(p)}{r} (reference {ref!r})" for (p, _, ref), r in zip(prompts, replies)
        ]


class SftTask(_AssistantTask):
    """`sft`: packed multi-turn dialogues, cross-entropy on assistant tokens only (module docstring)."""

    kind = "sft"

    def __init__(self, config):
        super().__init__(config)
        self.world = _world_of(config, "sft")
        self.tokenizer = _chat_tokenizer(config, self.world)
        train = assistant_world.dialogues(self.world, "train", count=config.sft_dialogues, seed=config.seed)
        validation = assistant_world.dialogues(self.world, "validation", count=config.eval_dialogues, seed=config.seed)
        *self.train, dropped = pack_conversations(self.tokenizer, train, config.seq_len)
        *self.validation, dropped_val = pack_conversations(self.tokenizer, validation, config.seq_len)
        logging.info(
            "sft: %d dialogues in %d rows (%d too long), %d held-out in %d rows; %.1f%% of labels are assistant tokens",
            len(train) - dropped,
            len(self.train[0]),
            dropped,
            len(validation) - dropped_val,
            len(self.validation[0]),
            100 * float(np.mean(self.train[1] >= 0)),
        )

    def train_dataset(self, start_step):
        c = self.config
        return step_indexed_batches(tuple(self.train), c.batch_size, c.seed, start_step, lambda x, y: (x, y))

    def eval_dataset(self):
        c = self.config
        return eval_batches(tuple(self.validation), c.batch_size, c.eval_steps, lambda x, y: (x, y))


class DpoTask(_AssistantTask):
    """`dpo`: direct preference optimisation against the frozen `init_from` model (module docstring)."""

    kind = "dpo"

    def __init__(self, config):
        super().__init__(config)
        if not config.init_from:
            raise ConfigError("task 'dpo' needs init_from: the workdir of the reference model (the SFT run)")
        if config.batch_size % 2:
            raise ConfigError(f"task 'dpo': batch_size counts rows, two per pair; got an odd {config.batch_size}")
        self.world = _world_of(config, "prefs")
        self.tokenizer = _chat_tokenizer(config, self.world)
        reference = _load_reference(config.init_from)
        self.train = self._rows(reference, "train", config.preference_pairs)
        self.validation = self._rows(reference, "validation", config.eval_pairs)
        logging.info(
            "dpo: %d train / %d held-out pairs, beta %g, nll weight %g",
            len(self.train[0]),
            len(self.validation[0]),
            config.dpo_beta,
            config.dpo_nll_weight,
        )

    def _rows(self, reference, split: str, count: int):
        """Per pair: `(inputs (N, 2, T), labels (N, 2, T), reference log-probs (N, 2))`."""
        pairs = assistant_world.preference_pairs(self.world, split, count=count, seed=self.config.seed)
        x, y, _ = assistant_eval.pair_rows(self.tokenizer, pairs, self.config.seq_len, self.label_pad_id)
        log_probs = assistant_eval.pair_log_probs(reference, x, y)
        length = self.config.seq_len
        return x.reshape(-1, 2, length), y.reshape(-1, 2, length), log_probs.reshape(-1, 2).astype(np.float32)

    def loss(self):
        return DpoLoss(beta=self.config.dpo_beta, nll_weight=self.config.dpo_nll_weight)

    def metrics(self):
        return [DpoLossMetric(beta=self.config.dpo_beta)]

    @staticmethod
    def _example(x, y, reference):
        length = tf.shape(x)[-1]
        return tf.reshape(x, [-1, length]), pack_dpo_targets(tf.reshape(y, [-1, length]), reference)

    def train_dataset(self, start_step):
        c = self.config
        return step_indexed_batches(tuple(self.train), c.batch_size // 2, c.seed, start_step, self._example)

    def eval_dataset(self):
        c = self.config
        return eval_batches(tuple(self.validation), c.batch_size // 2, c.eval_steps, self._example)

    def evaluate(self, model):
        x, y, reference = self.validation
        length = self.config.seq_len
        policy = assistant_eval.pair_log_probs(model, x.reshape(-1, length), y.reshape(-1, length)).reshape(-1, 2)
        rewards = policy - reference  # (N, 2), beta > 0 leaves the order unchanged
        tokens = np.sum(y.reshape(-1, 2, length) >= 0, axis=-1)  # (N, 2) reply tokens
        return {
            **super().evaluate(model),
            "reward_accuracy": float(np.mean(rewards[:, 0] > rewards[:, 1])),
            # Per-token log-probability change from the reference: DPO alone tends to lower both.
            "chosen_log_prob_shift": float(np.mean(rewards[:, 0] / tokens[:, 0])),
            "rejected_log_prob_shift": float(np.mean(rewards[:, 1] / tokens[:, 1])),
        }


def _load_reference(workdir: str):
    """The frozen reference model: `workdir/model.keras`, with the checks of `init_from`."""
    import keras  # noqa: PLC0415 (loaded once, when the dpo task is built)

    import tfzoo.models.registry  # noqa: F401, PLC0415 (registers the zoo's classes for deserialization)
    from tfzoo.run_folder import RunFolder  # noqa: PLC0415

    path = RunFolder(workdir).model_path
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 (any failure to load is one kind of bad input)
        raise ConfigError(f"init_from: cannot load the reference model {path}: {type(error).__name__}") from None
    model.trainable = False
    return model
