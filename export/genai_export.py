"""ONNX Runtime GenAI bundles: `DIR/export/genai/`, a folder that `onnxruntime_genai.Model` loads.

ONNX Runtime GenAI (PyPI `onnxruntime-genai`) runs its own decode loop (greedy, beam search,
sampling, penalties) around one decoder graph that serves the prompt and every step. The folder:

    genai/model.onnx            the decoder graph (below), standard ONNX ops, opset 17
    genai/model.onnx.weights    its weights (ONNX external data: the folder is self-contained)
    genai/genai_config.json     model type `decoder`: sizes, ids, input and output names, search defaults
    genai/tokenizer.json        the tokenizer in the Hugging Face form the runtime reads (byte-level BPE)
    genai/tokenizer_config.json

The decoder graph (names are the runtime's defaults):

- inputs `input_ids` int32 (B, T), `attention_mask` int32 (B, S + T) (1: a token, 0: padding),
  per layer `past_key_values.<i>.key` / `.value` float32 (B, heads, S, head_dim), S symbolic
  (0 for the prompt);
- outputs `logits` float32 (B, T, V) (the banned ids, e.g. the pad id, at -1e9) and per layer
  `present.<i>.key` / `.value` (B, heads, S + T, head_dim): the cache grows by the tokens run, so
  a step costs what the cache holds (`tfzoo.layers.kv_cache`, growing form).

Positions come from the attention mask (a token's position is the number of tokens before it in
its row), so left- and right-padded batches both decode at the right positions; padding is never
attended to. The graph has no `position_ids` input: the runtime feeds only the inputs a model has.

Limits (docs/export.md): the runtime's length normalisation of beam scores differs from tfzoo's
(`length_penalty` 0 gives the same beams); sampling matches tfzoo's in distribution only (its own
random generator); the exported `max_length` is the context length.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf

from export.errors import ExportError

GENAI_DIRNAME = "genai"
MODEL_FILENAME = "model.onnx"
WEIGHTS_FILENAME = "model.onnx.weights"
CONFIG_FILENAME = "genai_config.json"
BANNED_LOGIT = -1e9
PAST_KEY, PAST_VALUE = "past_key_values.%d.key", "past_key_values.%d.value"
PRESENT_KEY, PRESENT_VALUE = "present.%d.key", "present.%d.value"


def decoder_signature(num_layers: int, num_heads: int, head_dim: int) -> list[tf.TensorSpec]:
    """The decoder graph's inputs: `input_ids`, `attention_mask`, then each layer's past key and value.

    Example:
    >>> [spec.name for spec in decoder_signature(1, 2, 4)]
    ['input_ids', 'attention_mask', 'past_key_values.0.key', 'past_key_values.0.value']
    """
    specs = [
        tf.TensorSpec([None, None], tf.int32, name="input_ids"),
        tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
    ]
    for i in range(num_layers):
        specs.append(tf.TensorSpec([None, num_heads, None, head_dim], tf.float32, name=PAST_KEY % i))
        specs.append(tf.TensorSpec([None, num_heads, None, head_dim], tf.float32, name=PAST_VALUE % i))
    return specs


def decoder_step(model, *, max_length: int, banned_ids=()):
    """The decoder graph's Python function: `(input_ids, attention_mask, *past) -> {logits, present.*}`.

    Args:
        model: a decoder-only model with `call_with_cache` and a growing cache (`GPT`).
        max_length: int. The context length: positions are clamped below it.
        banned_ids: sequence of int. Ids whose logits are set to `BANNED_LOGIT`.
    """
    num_layers = int(model.num_layers)
    banned = np.zeros([int(model.vocabulary_size)], np.float32)
    banned[list(banned_ids)] = BANNED_LOGIT

    def step(input_ids, attention_mask, *past):
        mask = tf.cast(attention_mask, tf.int32) > 0  # (B, S + T)
        counted = tf.cumsum(tf.cast(mask, tf.int32), axis=1) - 1
        key_positions = tf.where(mask, tf.minimum(counted, max_length - 1), -1)  # -1: padding, never attended
        past_length = tf.shape(past[0])[2]
        cache = {
            "layers": tuple((past[2 * i], past[2 * i + 1]) for i in range(num_layers)),
            "positions": key_positions[:, :past_length],
        }
        logits, cache = model.call_with_cache(input_ids, key_positions[:, past_length:], cache)
        outputs = {"logits": tf.cast(logits, tf.float32) + banned}
        for i, (keys, values) in enumerate(cache["layers"]):
            outputs[PRESENT_KEY % i] = keys
            outputs[PRESENT_VALUE % i] = values
        return outputs

    return step


def genai_config(info: dict[str, Any]) -> dict[str, Any]:
    """`genai_config.json` for the report's model facts (`info`: `report["model"]`).

    Example:
    >>> config = genai_config({"vocabulary_size": 40, "max_length": 64, "eos_ids": [1], "pad_id": 0,
    ...                        "num_layers": 2, "num_heads": 2, "head_dim": 8})
    >>> config["model"]["type"], config["model"]["context_length"], config["search"]["max_length"]
    ('decoder', 64, 64)
    """
    decoder = {
        "filename": MODEL_FILENAME,
        "session_options": {"log_id": "tfzoo", "provider_options": []},
        "head_size": int(info["head_dim"]),
        "hidden_size": int(info["head_dim"]) * int(info["num_heads"]),
        "num_attention_heads": int(info["num_heads"]),
        "num_key_value_heads": int(info["num_heads"]),
        "num_hidden_layers": int(info["num_layers"]),
        "inputs": {
            "input_ids": "input_ids",
            "attention_mask": "attention_mask",
            "past_key_names": PAST_KEY,
            "past_value_names": PAST_VALUE,
        },
        "outputs": {"logits": "logits", "present_key_names": PRESENT_KEY, "present_value_names": PRESENT_VALUE},
    }
    eos = [int(i) for i in info["eos_ids"]]
    return {
        "model": {
            "type": "decoder",
            "vocab_size": int(info["vocabulary_size"]),
            "context_length": int(info["max_length"]),
            "bos_token_id": eos[0],
            "eos_token_id": eos if len(eos) > 1 else eos[0],
            "pad_token_id": int(info["pad_id"]),
            "decoder": decoder,
        },
        "search": {
            "do_sample": False,
            "num_beams": 1,
            "num_return_sequences": 1,
            "max_length": int(info["max_length"]),
            "min_length": 0,
            "length_penalty": 1.0,
            "repetition_penalty": 1.0,
            "no_repeat_ngram_size": 0,
            "early_stopping": True,
            "past_present_share_buffer": False,  # the cache grows: present is past plus the new tokens
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
        },
    }


def write_genai(module, directory: str, info: dict[str, Any], hf_tokenizer: dict | None) -> dict[str, Any]:
    """Writes the bundle into `directory` (created; the caller renames it into place); returns its artefact.

    Args:
        module: the `ExportModule` of a decoder-only model.
        directory: str. The bundle's folder (`.../genai`), which must not exist.
        info: the report's model facts.
        hf_tokenizer: the tokenizer's Hugging Face JSON in byte-level form, or None (no tokenizer
            in the bundle: ids in and out only).

    Raises:
        ExportError: the model kind has an encoder (a GenAI `decoder` bundle is decoder-only).
    """
    from export.onnx_export import convert_onnx, op_types, write_weights  # noqa: PLC0415 (ONNX only when needed)

    if module.kind.has_encoder:
        raise ExportError(f"format genai carries decoder-only models (GPT); this export is {module.kind.description}")
    step = decoder_step(module.kind.model, max_length=info["max_length"], banned_ids=info["banned_ids"])
    specs = decoder_signature(info["num_layers"], info["num_heads"], info["head_dim"])
    os.makedirs(directory)
    weights = module.weights()
    external = (WEIGHTS_FILENAME, write_weights(os.path.join(directory, WEIGHTS_FILENAME), weights))
    proto = convert_onnx(module.stateless(step, specs), name="genai decoder", initializers=weights, external=external)
    with open(os.path.join(directory, MODEL_FILENAME), "wb") as file:
        file.write(proto.SerializeToString())
    files = [MODEL_FILENAME, WEIGHTS_FILENAME, CONFIG_FILENAME]
    _write_json(os.path.join(directory, CONFIG_FILENAME), genai_config(info))
    if hf_tokenizer is not None:
        _write_json(os.path.join(directory, "tokenizer.json"), hf_tokenizer)
        _write_json(os.path.join(directory, "tokenizer_config.json"), _tokenizer_config(info))
        files += ["tokenizer.json", "tokenizer_config.json"]
    return {
        "format": "genai",
        "path": os.path.basename(directory),
        "contents": files,  # the folder's files: the folder is the artefact
        "inputs": [i.name for i in proto.graph.input],
        "outputs": [o.name for o in proto.graph.output],
        "ops": op_types(proto),
    }


def _tokenizer_config(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": int(info["max_length"]),
        "clean_up_tokenization_spaces": False,
    }


def _write_json(path: str, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=1, ensure_ascii=False)
        file.write("\n")


class GenaiRunner:
    """Runs a bundle in ONNX Runtime GenAI's own loop, with tfzoo's `generate` inputs and outputs.

    Prompts come right-padded as everywhere in tfzoo (`token_ids` (B, P), `lengths` (B,)), which is
    what the runtime reads too: it starts each row from its last non-padding token (a left-padded
    batch starts from padding). Its n-gram blocking counts the padding of a shorter row as part of
    its history, so with `no_repeat_ngram_size` a batch of different lengths runs row by row. The
    outputs are tfzoo's: `sequences` (B, prompt + new tokens) padded with the pad id, and
    `sequence_lengths`. The runtime leaves out the end-of-text token of a row that ended the whole
    batch; a row shorter than its room ended with it, so it is put back.

    Example (a bundle written by `python -m export --formats=genai`):
        runner = GenaiRunner("runs/gpt_char/export/genai")
        sequences, lengths = runner.generate(token_ids, lengths, 32, strategy="beam", beam_size=4)
    """

    def __init__(self, folder: str):
        import onnxruntime_genai as og  # noqa: PLC0415 (the runtime only when needed)

        self._og = og
        with open(os.path.join(folder, CONFIG_FILENAME), encoding="utf-8") as file:
            config = json.load(file)["model"]
        self.pad_id = int(config["pad_token_id"])
        eos = config["eos_token_id"]
        self.eos_ids = [int(i) for i in (eos if isinstance(eos, list) else [eos])]
        self.context_length = int(config["context_length"])
        self.model = og.Model(folder)

    def generate(
        self,
        token_ids: np.ndarray,
        lengths: np.ndarray,
        max_new_tokens: int,
        strategy: str = "greedy",
        beam_size: int = 4,
        **knobs,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(sequences, sequence_lengths)` of the runtime's search; `knobs` are the runtime's search options.

        `strategy` "greedy" or "beam" (`length_penalty` defaults to 0 here: the runtime's length
        normalisation differs from tfzoo's, and 0 makes the two agree); knobs
        `repetition_penalty`, `no_repeat_ngram_size`, `length_penalty`.
        """
        token_ids, lengths = np.asarray(token_ids, np.int32), np.asarray(lengths, np.int32)
        if knobs.get("no_repeat_ngram_size") and len(set(lengths.tolist())) > 1:
            rows = [
                self.generate(
                    token_ids[r : r + 1, :n], lengths[r : r + 1], max_new_tokens, strategy, beam_size, **knobs
                )
                for r, n in enumerate(lengths)
            ]
            width = max(r[0].shape[1] for r in rows)
            sequences = np.full((len(rows), width), self.pad_id, np.int32)
            for r, (row, _) in enumerate(rows):
                sequences[r, : row.shape[1]] = row[0]
            return sequences, np.concatenate([length for _, length in rows])
        batch, width = token_ids.shape
        max_new_tokens = int(min(max_new_tokens, self.context_length - width))
        prompts = np.where(np.arange(width)[None, :] < lengths[:, None], token_ids, self.pad_id).astype(np.int32)
        options = {"max_length": width + max_new_tokens, "batch_size": batch, "do_sample": False}
        if strategy == "beam":
            options.update(num_beams=beam_size, length_penalty=0.0, early_stopping=False)
        elif strategy != "greedy":
            raise ValueError(f"GenaiRunner runs strategy 'greedy' or 'beam', not {strategy!r}")
        options.update({key: float(value) for key, value in knobs.items()})
        params = self._og.GeneratorParams(self.model)
        params.set_search_options(**options)
        generator = self._og.Generator(self.model, params)
        generator.append_tokens(prompts)
        while not generator.is_done():
            generator.generate_next_token()
        sequences = np.full((batch, width + max_new_tokens), self.pad_id, np.int32)
        sequence_lengths = np.zeros([batch], np.int32)
        for row, length in enumerate(lengths):
            new = [int(t) for t in generator.get_sequence(row)[width:]]
            ended = next((i for i, token in enumerate(new) if token in self.eos_ids), None)
            if ended is not None:  # a row that ended before the batch: cut after its end of text
                new = new[: ended + 1]
            else:
                while new and new[-1] == self.pad_id:  # padding after a row that ended (pad id is not eos)
                    new.pop()
                if len(new) < max_new_tokens:  # it ended the batch: the runtime left out its end of text
                    new.append(self.eos_ids[0])
            filled = [*token_ids[row, :length].tolist(), *new]
            sequences[row, : len(filled)] = filled
            sequence_lengths[row] = len(filled)
        return sequences, sequence_lengths
