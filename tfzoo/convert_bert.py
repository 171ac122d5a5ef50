"""Convert a Hugging Face BERT folder into a tfzoo workdir: `python -m tfzoo.convert bert --source=DIR --workdir=OUT`.

DIR: `config.json` (`model_type` "bert": BERT of any size, and the
BERT-shaped MiniLM / sentence-transformers checkpoints), `model.safetensors`
(or a sharded `model.safetensors.index.json`; read with the `safetensors`
numpy API, no PyTorch), `vocab.txt` (or, as transformers 5 saves it, only a
WordPiece `tokenizer.json`) and optionally `tokenizer_config.json`
(`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`, the special
tokens' names). The weights may be a `BertModel`'s (with or without the
pooler) or carry the `bert.` prefix of the task models: `BertForMaskedLM`'s
masked-LM head is kept, `BertForSequenceClassification`'s classifier and
`BertForPreTraining`'s next-sentence head are dropped, with a warning.

OUT gets `model.keras`, a tfzoo `BertEncoder` (learned absolute positions,
token types as segments, exact GELU, post-norm, the config's layer-norm
epsilon; the pooler when the checkpoint has one), or a `BertMaskedLM` around
it when the checkpoint has the masked-LM head; `tokenizer/` (the WordPiece
tokenizer of `vocab.txt` with `BertTokenizer`'s ids) and `config.json`.

Weight mapping (PyTorch `Linear` weights are (out, in): transposed):
`embeddings.word_embeddings` -> token embedding, `position_embeddings` ->
position table, `token_type_embeddings` -> segment embedding,
`embeddings.LayerNorm` -> `embedding_norm`; per layer `attention.self.query`
/ `key` / `value` (C, C) -> (C, H, D), `attention.output.dense` -> (H, D, C),
`attention.output.LayerNorm` -> the attention norm, `intermediate.dense` /
`output.dense` -> the feed-forward, `output.LayerNorm` -> its norm;
`pooler.dense` -> `pooler`; `cls.predictions.transform.dense` / `.LayerNorm`
/ `cls.predictions.bias` -> `BertMaskedLM`'s `transform`, `transform_norm`,
`output_bias` (its decoder is the tied token embedding).
"""

from __future__ import annotations

import os

import numpy as np

from tfzoo.convert_files import (
    CheckpointTensors,
    ConvertError,
    assign,
    check_workdir,
    contract_config,
    log_warnings,
    read_json,
    special_id,
    write_workdir,
)

VOCABULARY = "vocab.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
FAST_TOKENIZER = "tokenizer.json"  # what transformers 5's save_pretrained writes instead of vocab.txt
SENTENCE_CONFIG = "sentence_bert_config.json"  # sentence-transformers: {"max_seq_length": 256, ...}
POOLING_CONFIG = os.path.join("1_Pooling", "config.json")  # sentence-transformers: the pooling modes
# Hugging Face `hidden_act` -> tfzoo FeedForward activations.
BERT_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}
# Heads of BERT task models that have no tfzoo counterpart: dropped with a warning.
DROPPED_HEADS = {"classifier.": "the sequence-classification head", "cls.seq_relationship.": "the next-sentence head"}
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")  # index buffers of some checkpoints, not weights


def _architecture(config: dict, path: str) -> dict:
    model_type = config.get("model_type")
    if model_type != "bert":
        raise ConvertError(f"{path}: model_type is {model_type!r}, not 'bert'")
    for name, supported in (("is_decoder", False), ("add_cross_attention", False)):
        if config.get(name, supported) != supported:
            raise ConvertError(f"{path}: {name}={config[name]!r} is not supported (only {supported})")
    position = config.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise ConvertError(f"{path}: position_embedding_type {position!r} is not supported (only 'absolute')")
    activation = config.get("hidden_act", "gelu")
    if activation not in BERT_ACTIVATIONS:
        raise ConvertError(f"{path}: hidden_act {activation!r} is not supported ({', '.join(BERT_ACTIVATIONS)})")
    fields = {
        "vocabulary_size": "vocab_size",
        "num_layers": "num_hidden_layers",
        "num_heads": "num_attention_heads",
        "hidden_dim": "hidden_size",
        "intermediate_dim": "intermediate_size",
        "max_sequence_length": "max_position_embeddings",
    }
    arch = {}
    for ours, theirs in fields.items():
        value = config.get(theirs)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConvertError(f"{path}: {theirs} must be a positive integer, got {value!r}")
        arch[ours] = value
    segments = config.get("type_vocab_size", 2)
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 0:
        raise ConvertError(f"{path}: type_vocab_size must be an integer >= 0, got {segments!r}")
    epsilon = config.get("layer_norm_eps", 1e-12)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
        raise ConvertError(f"{path}: layer_norm_eps must be a positive number, got {epsilon!r}")
    if arch["hidden_dim"] % arch["num_heads"]:
        raise ConvertError(
            f"{path}: hidden_size {arch['hidden_dim']} is not divisible by num_attention_heads {arch['num_heads']}"
        )
    return {
        **arch,
        "num_segments": segments,
        "activation": BERT_ACTIVATIONS[activation],
        "layer_norm_epsilon": float(epsilon),
    }


def _tokenizer(source: str, vocabulary_size: int):
    """The WordPiece tokenizer of `vocab.txt` (else `tokenizer.json`) and `tokenizer_config.json`.

    Raises:
        ConvertError: naming the file: missing, unreadable, of another size than the embedding,
            without `[PAD]`, `[UNK]` or `[SEP]`, or (tokenizer.json) not BERT's WordPiece.
    """
    from tfzoo.data.wordpiece_tokenizer import BERT_TOKENS, WordpieceTokenizer  # noqa: PLC0415 (light, but keep the CLI start fast)

    path = os.path.join(source, VOCABULARY)
    fast = os.path.join(source, FAST_TOKENIZER)
    normalizer = {}
    if os.path.isfile(path) or not os.path.isfile(fast):
        vocabulary = _read_vocabulary(path)
    else:
        path = fast
        vocabulary, normalizer = _read_fast_tokenizer(fast)
    if len(vocabulary) != vocabulary_size:
        raise ConvertError(
            f"{path}: {len(vocabulary)} tokens, but config.json's vocab_size (the embedding) is {vocabulary_size}"
        )
    options_path = os.path.join(source, TOKENIZER_CONFIG)
    options = read_json(options_path) if os.path.isfile(options_path) else {}
    options = {**options, **normalizer}  # tokenizer.json's normalizer is what BertTokenizer runs
    tokens = {}
    for field in BERT_TOKENS:
        value = options.get(field)
        if isinstance(value, dict):  # older files: {"content": "[PAD]", ...}
            value = value.get("content")
        if isinstance(value, str):
            tokens[field] = value
    for field, default in (("do_lower_case", True), ("tokenize_chinese_chars", True)):
        if not isinstance(options.get(field, default), bool):
            raise ConvertError(f"{options_path}: {field} must be true or false, got {options[field]!r}")
    if not isinstance(options.get("strip_accents"), (bool, type(None))):
        raise ConvertError(
            f"{options_path}: strip_accents must be true, false or null, got {options['strip_accents']!r}"
        )
    try:
        return WordpieceTokenizer.from_bert_vocabulary(
            vocabulary,
            lower_case=options.get("do_lower_case", True),
            strip_accents=options.get("strip_accents"),
            tokenize_chinese_chars=options.get("tokenize_chinese_chars", True),
            tokens=tokens,
        )
    except ValueError as error:
        raise ConvertError(f"{path}: {error}") from None


def _read_vocabulary(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as file:
            vocabulary = file.read().split("\n")
    except FileNotFoundError:
        raise ConvertError(
            f"{path} not found (the BERT tokenizer's vocabulary; nor is there a {FAST_TOKENIZER})"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConvertError(f"{path}: cannot read ({error})") from None
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return [token.rstrip("\r") for token in vocabulary]


def _read_fast_tokenizer(path: str) -> tuple[list[str], dict]:
    """The vocabulary (in id order) and the normalizer options of a WordPiece `tokenizer.json`."""
    data = read_json(path)
    model, normalizer = data.get("model") or {}, data.get("normalizer") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ConvertError(f"{path}: not a WordPiece tokenizer (model type {model.get('type')!r})")
    for field, expected in (("continuing_subword_prefix", "##"), ("max_input_chars_per_word", 100)):
        if model.get(field, expected) != expected:
            raise ConvertError(f"{path}: {field} {model[field]!r} is not supported (only {expected!r})")
    if (
        normalizer.get("type") != "BertNormalizer"
        or (data.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer"
    ):
        raise ConvertError(f"{path}: not BERT's normalizer and pre-tokenizer (BertNormalizer, BertPreTokenizer)")
    ids = model["vocab"]
    if sorted(ids.values()) != list(range(len(ids))):
        raise ConvertError(f"{path}: the WordPiece ids are not 0..{len(ids) - 1}")
    options = {
        "do_lower_case": normalizer.get("lowercase", True),
        "strip_accents": normalizer.get("strip_accents"),
        "tokenize_chinese_chars": normalizer.get("handle_chinese_chars", True),
    }
    return sorted(ids, key=ids.get), options


def _weights(source: str, arch: dict, warnings: list[str]) -> dict[str, np.ndarray]:
    """The checkpoint's tensors in tfzoo's layout (the names `_assign` reads)."""
    reader = CheckpointTensors(source, ("bert.",), first="embeddings.word_embeddings.weight")
    tensors, origin, weights_file = reader.tensors, reader.origin, reader.weights_file
    c, i, h = arch["hidden_dim"], arch["intermediate_dim"], arch["num_heads"]
    v, p, s, d = arch["vocabulary_size"], arch["max_sequence_length"], arch["num_segments"], c // h

    def take(key: str, shape: tuple) -> np.ndarray:
        if key not in tensors and key.endswith((".weight", ".bias")) and ".LayerNorm." in key:  # TF-era names
            old = key.replace(".weight", ".gamma").replace(".bias", ".beta")
            key = old if old in tensors else key
        return reader.take(key, shape)

    def linear(prefix: str, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        return take(prefix + ".weight", (n_out, n_in)).T, take(prefix + ".bias", (n_out,))  # kernel (in, out)

    def norm(prefix: str, ours: str) -> None:
        out[ours + "/gamma"], out[ours + "/beta"] = take(prefix + ".weight", (c,)), take(prefix + ".bias", (c,))

    out = {
        "token_embedding": take("embeddings.word_embeddings.weight", (v, c)),
        "position_embedding": take("embeddings.position_embeddings.weight", (p, c)),
    }
    if s:
        out["segment_embedding"] = take("embeddings.token_type_embeddings.weight", (s, c))
    norm("embeddings.LayerNorm", "embedding_norm")
    for n in range(arch["num_layers"]):
        prefix = f"encoder.layer.{n}."
        for name in ("query", "key", "value"):
            kernel, bias = linear(prefix + "attention.self." + name, c, c)
            out[f"{n}/{name}/kernel"], out[f"{n}/{name}/bias"] = kernel.reshape(c, h, d), bias.reshape(h, d)
        kernel, out[f"{n}/attention_output/bias"] = linear(prefix + "attention.output.dense", c, c)
        out[f"{n}/attention_output/kernel"] = kernel.reshape(h, d, c)  # (H, D, C)
        norm(prefix + "attention.output.LayerNorm", f"{n}/attention_norm")
        out[f"{n}/intermediate_dense/kernel"], out[f"{n}/intermediate_dense/bias"] = linear(
            prefix + "intermediate.dense", c, i
        )
        out[f"{n}/output_dense/kernel"], out[f"{n}/output_dense/bias"] = linear(prefix + "output.dense", i, c)
        norm(prefix + "output.LayerNorm", f"{n}/feed_forward_norm")
    if "pooler.dense.weight" in tensors or "pooler.dense.bias" in tensors:
        out["pooler/kernel"], out["pooler/bias"] = linear("pooler.dense", c, c)
    if any(key.startswith("cls.predictions.") for key in tensors):
        if arch["activation"] != "gelu":
            warnings.append(
                f"{weights_file}: masked-LM head dropped (BertMaskedLM's transform is exact GELU, "
                f"the checkpoint's hidden_act is {arch['activation']})"
            )
            reader.used.update(key for key in tensors if key.startswith("cls.predictions."))
        else:
            out["transform/kernel"], out["transform/bias"] = linear("cls.predictions.transform.dense", c, c)
            norm("cls.predictions.transform.LayerNorm", "transform_norm")
            out["output_bias"] = take("cls.predictions.bias", (v,))
            decoder = tensors.get("cls.predictions.decoder.weight")
            if decoder is not None:
                if not np.array_equal(take("cls.predictions.decoder.weight", (v, c)), out["token_embedding"]):
                    raise ConvertError(
                        f"{origin['cls.predictions.decoder.weight']}: cls.predictions.decoder.weight differs from "
                        "the word embeddings (an untied masked-LM decoder is not supported)"
                    )
            if "cls.predictions.decoder.bias" in tensors:
                take("cls.predictions.decoder.bias", (v,))  # the same parameter as cls.predictions.bias
    for prefix, what in DROPPED_HEADS.items():
        dropped = [key for key in tensors if key.startswith(prefix)]
        if dropped:
            warnings.append(f"{origin[dropped[0]]}: {what} ({', '.join(sorted(dropped))}) is dropped")
            reader.used.update(dropped)
    reader.check_all_used("not a plain BERT", BUFFERS)
    return out


def _sentence_transformers(source: str, max_positions: int, warnings: list[str]) -> int:
    """Tokens per text `tfzoo.embed` keeps: sentence-transformers' `max_seq_length`, else the position table.

    A sentence-transformers folder (`sentence_bert_config.json`, `1_Pooling/config.json`) also says how
    it pools; `tfzoo.embed` pools by the mean, so another pooling is a warning.
    """
    path = os.path.join(source, SENTENCE_CONFIG)
    length = read_json(path).get("max_seq_length") if os.path.isfile(path) else None
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 2):
        raise ConvertError(f"{path}: max_seq_length must be an integer >= 2, got {length!r}")
    pooling_path = os.path.join(source, POOLING_CONFIG)
    if os.path.isfile(pooling_path):
        modes = sorted(k for k, v in read_json(pooling_path).items() if k.startswith("pooling_mode_") and v is True)
        if modes != ["pooling_mode_mean_tokens"]:
            warnings.append(f"{pooling_path}: pools by {', '.join(modes) or 'nothing'}; tfzoo.embed pools by the mean")
    return min(length or max_positions, max_positions)


def _assign(model, weights: dict[str, np.ndarray], source: str) -> None:
    """Copies `weights` (tfzoo layout) into a built BertEncoder or BertMaskedLM, checking every shape."""
    encoder = getattr(model, "backbone", model)
    assign(encoder.token_embedding.embeddings, weights, "token_embedding", source)
    assign(encoder.position_embedding.embeddings, weights, "position_embedding", source)
    if encoder.segment_embedding is not None:
        assign(encoder.segment_embedding.embeddings, weights, "segment_embedding", source)
    for name in ("gamma", "beta"):
        assign(getattr(encoder.embedding_norm, name), weights, f"embedding_norm/{name}", source)
    for n, block in enumerate(encoder.blocks):
        attention = block.self_attention
        for name, dense in (
            ("query", attention.query_dense),
            ("key", attention.key_dense),
            ("value", attention.value_dense),
            ("attention_output", attention.output_dense),
            ("intermediate_dense", block.feed_forward.intermediate_dense),
            ("output_dense", block.feed_forward.output_dense),
        ):
            assign(dense.kernel, weights, f"{n}/{name}/kernel", source)
            assign(dense.bias, weights, f"{n}/{name}/bias", source)
        for name, layer in (("attention_norm", block.attention_norm), ("feed_forward_norm", block.feed_forward_norm)):
            assign(layer.gamma, weights, f"{n}/{name}/gamma", source)
            assign(layer.beta, weights, f"{n}/{name}/beta", source)
    if encoder.pooler is not None:
        assign(encoder.pooler.kernel, weights, "pooler/kernel", source)
        assign(encoder.pooler.bias, weights, "pooler/bias", source)
    if model is not encoder:
        assign(model.transform.kernel, weights, "transform/kernel", source)
        assign(model.transform.bias, weights, "transform/bias", source)
        assign(model.transform_norm.gamma, weights, "transform_norm/gamma", source)
        assign(model.transform_norm.beta, weights, "transform_norm/beta", source)
        assign(model.output_bias, weights, "output_bias", source)


def load_bert(source: str) -> tuple:
    """Reads a Hugging Face BERT folder; returns `(model, tokenizer, info)`.

    Args:
        source: str. The folder (module docstring).

    Returns:
        `model`: a built `BertEncoder` (or `BertMaskedLM` around one) holding the weights;
        `tokenizer`: its `WordpieceTokenizer`; `info`: dict with `architecture` (the
        `BertEncoder` arguments), `head` ("none" or "masked_lm"), `warnings`.

    Raises:
        ConvertError: not a BERT folder, a missing or truncated file, a tensor whose
            shape does not match the config, a vocabulary of another size; the message
            names the file.

    Example:
    >>> model, tokenizer, info = load_bert("all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> type(model).__name__, info["architecture"]["use_pooler"], tokenizer.lower_case  # doctest: +SKIP
    ('BertEncoder', True, True)
    """
    if not os.path.isdir(source):
        raise ConvertError(f"source {source} is not a directory")
    config_path = os.path.join(source, "config.json")
    if not os.path.isfile(config_path):
        raise ConvertError(f"{source} is not a BERT checkpoint: no config.json")
    config = read_json(config_path)
    arch = _architecture(config, config_path)
    warnings: list[str] = []
    tokenizer = _tokenizer(source, arch["vocabulary_size"])
    special_id(config, "pad_token_id", arch["vocabulary_size"], config_path, warnings)  # warns; [PAD] pads
    weights = _weights(source, arch, warnings)
    arch["use_pooler"] = "pooler/kernel" in weights
    head = "masked_lm" if "output_bias" in weights else "none"

    from tfzoo.models.bert import BertEncoder, BertMaskedLM  # noqa: PLC0415 (imports TensorFlow)

    model = BertEncoder(position="learned", norm_first=False, dropout=0.0, pad_id=tokenizer.pad_id, **arch)
    if head == "masked_lm":
        model = BertMaskedLM(model)
    model.build((None, None))
    _assign(model, weights, source)
    embed_length = _sentence_transformers(source, arch["max_sequence_length"], warnings)
    info = {"architecture": arch, "head": head, "embed_max_length": embed_length, "warnings": warnings}
    return model, tokenizer, info


def run_config(arch: dict, info: dict, source: str) -> dict:
    """The `config.json` of a converted BERT workdir: the contract fields, filled from the checkpoint.

    Example:
    >>> run_config(info["architecture"], info, "minilm")["model"]  # doctest: +SKIP
    'bert_encoder'
    """
    return contract_config(
        model="bert_mlm" if info["head"] == "masked_lm" else "bert_encoder",
        tokenizer="wordpiece",
        seq_len=arch["max_sequence_length"],
        position="learned",
        norm_first=False,
        tie_embeddings=True,
        **arch,
        converted_from=os.path.abspath(source),
        source_format="huggingface",
        embed_max_length=info["embed_max_length"],
    )


def convert_bert(source: str, workdir: str, overwrite: bool = False) -> dict:
    """Converts the Hugging Face BERT folder `source` into the tfzoo workdir `workdir`.

    Everything is written into a temporary folder beside `workdir` and renamed
    into place, so a failed conversion leaves nothing behind.

    Args:
        source: str. A Hugging Face BERT (or MiniLM / sentence-transformers) folder.
        workdir: str. The new workdir (must not hold a model unless `overwrite`).
        overwrite: bool. Replace an existing workdir. Defaults to False.

    Returns:
        dict: `workdir`, `format`, `model` (the class), `tokenizer`, `num_parameters`,
        `warnings`, and the architecture fields.

    Example:
    >>> convert_bert("all-MiniLM-L6-v2", "runs/minilm")["num_layers"]  # doctest: +SKIP
    6
    """
    check_workdir(workdir, overwrite)
    model, tokenizer, info = load_bert(source)
    log_warnings(info["warnings"])
    arch = info["architecture"]
    write_workdir(workdir, run_config(arch, info, source), tokenizer, model)
    return {
        "workdir": workdir,
        "format": "huggingface",
        "model": type(model).__name__,
        "tokenizer": tokenizer.type_name,
        "num_parameters": int(model.count_params()),
        "warnings": info["warnings"],
        **arch,
    }
