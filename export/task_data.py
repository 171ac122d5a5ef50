"""Held-out inputs of a run's own task, for the parity checks of encoder-decoder and image exports.

- `parity_inputs(trained, max_length)`: a few held-out sources of the
  translation task (of different lengths) or held-out `shapes` images, as the
  `conditions` of `generate`, with the start token as the decoder prompt.
- `validation_examples(trained, max_length)`: teacher-forced held-out pairs
  (`<bos> y` in, `y <eos>` out, padding masked, cut to the exported
  `max_length`) to measure how much a quantized artefact changes the loss.

The data comes from the embedded generators named by `config.dataset`
(`numbers:SRC-TGT`, `shapes[:SIZE]`); nothing is downloaded. For other
datasets (e.g. `tfds:`), the translation prompts fall back to
`config.sample_prompts` and the loss check is skipped (reported).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from export.errors import ExportError

NUM_PARITY_SOURCES = 4
NUM_PARITY_IMAGES = 3
VALIDATION_EXAMPLES = 32


def _start_id(tokenizer) -> int:
    return int(getattr(tokenizer, "special_tokens", {}).get("<bos>", tokenizer.eos_id))


def _pad(rows: list, width: int, pad_id: int) -> np.ndarray:
    array = np.full((len(rows), width), pad_id, np.int32)
    for row, ids in enumerate(rows):
        array[row, : len(ids)] = ids
    return array


def _translation_pairs(trained) -> tuple[list[str], list[str]] | None:
    """Held-out (sources, targets) of an embedded `numbers:` task, or None for other datasets."""
    dataset = str(trained.config.get("dataset", ""))
    if not dataset.startswith("numbers:"):
        return None
    from tfzoo.data.translation_data import load_translation_data  # noqa: PLC0415

    try:
        task = load_translation_data(dataset, seed=int(trained.config.get("seed", 0)))
    except ValueError as error:
        raise ExportError(f"cannot load the task {dataset!r} for parity inputs: {error}") from None
    return list(task.validation_sources), list(task.validation_targets)


def _shapes(trained, count: int):
    dataset = str(trained.config.get("dataset", "shapes"))
    from tfzoo.data.shapes_data import load_shapes_data  # noqa: PLC0415

    try:
        task = load_shapes_data(
            dataset if dataset.startswith("shapes") else "shapes",
            num_train=int(trained.config.get("num_train", 20000)),
            num_validation=count,
            seed=int(trained.config.get("seed", 0)),
        )
    except ValueError as error:
        raise ExportError(f"cannot load the task {dataset!r} for parity inputs: {error}") from None
    if task.image_size != trained.image_shape[0]:
        raise ExportError(
            f"{dataset} makes {task.image_size}x{task.image_size} images but the model takes "
            f"{trained.image_shape[0]}x{trained.image_shape[1]}"
        )
    return task


def parity_inputs(trained, max_length: int) -> dict[str, Any]:
    """Parity prompts of a seq2seq or captioner run: held-out task inputs, the start token as decoder prompt.

    Returns:
        dict as `export.parity.parity_prompts`, plus `conditions` (the
        `generate` inputs `source_ids`/`source_lengths` or `image`) and
        `sources` (what the rows are: source texts or reference captions).
    """
    tokenizer = trained.tokenizer
    limit = trained.max_sequence_length
    if trained.kind == "seq2seq":
        pairs = _translation_pairs(trained)
        candidates = pairs[0] if pairs else list(trained.config.get("sample_prompts") or ())
        encoded = [(text, list(tokenizer.encode(text))) for text in candidates]
        encoded = sorted((len(ids), text, ids) for text, ids in encoded if 0 < len(ids) <= limit)
        if not encoded:
            raise ExportError("no held-out source of the task fits the model's max_sequence_length for parity")
        picks = sorted({round(q * (len(encoded) - 1)) for q in np.linspace(0, 1, NUM_PARITY_SOURCES)})
        chosen = [encoded[i] for i in picks]
        texts = [text for _, text, _ in chosen]
        rows = [ids for _, _, ids in chosen]
        lengths = np.asarray([len(ids) for ids in rows], np.int32)
        conditions = {"source_ids": _pad(rows, int(lengths.max()), tokenizer.pad_id), "source_lengths": lengths}
    else:
        task = _shapes(trained, NUM_PARITY_IMAGES)
        texts = list(task.validation_captions)
        conditions = {"image": task.validation_images.astype(np.float32) / np.float32(255.0)}
    batch = len(texts)
    return {
        "texts": texts,
        "token_ids": np.full((batch, 1), _start_id(tokenizer), np.int32),
        "lengths": np.ones((batch,), np.int32),
        "max_new_tokens": int(max_length - 1),
        "conditions": conditions,
    }


def validation_examples(trained, max_length: int) -> dict[str, Any]:
    """Teacher-forced held-out examples: `inputs`, `labels`, `mask`, `conditions`; or `{"error": ...}`."""
    tokenizer = trained.tokenizer
    start, limit = _start_id(tokenizer), trained.max_sequence_length
    if trained.kind == "seq2seq":
        pairs = _translation_pairs(trained)
        if pairs is None:
            return {"error": f"no embedded held-out pairs for dataset {trained.config.get('dataset')!r}"}
        examples = [(list(tokenizer.encode(s)), list(tokenizer.encode(t))) for s, t in zip(*pairs)]
        examples = [(s, t) for s, t in examples if 0 < len(s) <= limit]
        examples = examples[:VALIDATION_EXAMPLES]
        if not examples:
            return {"error": "no held-out source fits the model's max_sequence_length"}
        sources, targets = [s for s, _ in examples], [t for _, t in examples]
        source_lengths = np.asarray([len(s) for s in sources], np.int32)
        conditions = {"source_ids": _pad(sources, int(source_lengths.max()), tokenizer.pad_id),
                      "source_lengths": source_lengths}  # fmt: skip
    else:
        task = _shapes(trained, VALIDATION_EXAMPLES)
        targets = [list(tokenizer.encode(c)) for c in task.validation_captions]
        conditions = {"image": task.validation_images.astype(np.float32) / np.float32(255.0)}
    # Teacher forcing on the first `max_length` target positions (the exported cache holds no more).
    inputs = [([start] + t)[:max_length] for t in targets]
    labels = [(t + [tokenizer.eos_id])[:max_length] for t in targets]
    width = max(len(row) for row in inputs)
    mask = np.arange(width)[None, :] < np.asarray([len(row) for row in inputs])[:, None]
    inputs, labels = _pad(inputs, width, tokenizer.pad_id), _pad(labels, width, tokenizer.pad_id)
    return {"inputs": inputs, "labels": labels, "mask": mask, "conditions": conditions}


def keras_logits(model, kind: str, inputs: np.ndarray, conditions: dict) -> np.ndarray:
    """Teacher-forced logits of the Keras model on `inputs` (B, T) given its conditions."""
    features = {"target_ids": inputs, **conditions}
    return np.asarray(model(features, training=False))
