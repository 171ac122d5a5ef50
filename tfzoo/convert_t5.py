"""Convert a Hugging Face T5 folder into a tfzoo workdir: `python -m tfzoo.convert t5 --source=DIR --workdir=OUT`.

DIR: `config.json` (`model_type` "t5", a `T5ForConditionalGeneration`: the
original T5 with ReLU feed-forwards and the tied-embedding rescale, or T5 v1.1
/ flan-T5 with gated GELU, `feed_forward_proj` "gated-gelu", and usually an
untied `lm_head`), `model.safetensors` (or a sharded
`model.safetensors.index.json`; the `safetensors` numpy API, no PyTorch),
`spiece.model` (its SentencePiece model) and optionally
`tokenizer_config.json` (`extra_ids`, 100 when absent).

OUT gets `model.keras`, a tfzoo `Transformer` with T5's options
(`position="relative"`: buckets shared by the blocks of a stack,
bidirectional in the encoder and causal in the decoder; `norm="rms"`,
`use_bias=False`, `scale_queries=False`, `scale_embeddings=False`, the
config's `layer_norm_epsilon`, `decoder_start_id` = the config's
`decoder_start_token_id`, and `scale_decoder_output` as transformers decides
it: the config's `scale_decoder_outputs`, else unless `tie_word_embeddings`
is false); `tokenizer/`, the SentencePiece tokenizer of `spiece.model` with
T5Tokenizer's ids (`</s>` appended, the `<extra_id_N>` sentinels last, the
embedding's unused rows as `padded_size`); and `config.json`.

Weight mapping (PyTorch `Linear` weights are (out, in): transposed):
`shared` -> token embedding; `{encoder,decoder}.block.0.layer.0.SelfAttention.
relative_attention_bias` -> `{encoder,decoder}_position_bias`; per block the
self-attention `q`/`k`/`v` (H*D, C) -> (C, H, D) and `o` -> (H, D, C), its
`layer_norm`; the decoder's `EncDecAttention` -> cross-attention and its norm;
`DenseReluDense.wi` (or `wi_0`, gated, and `wi_1`) / `wo` -> the
feed-forward's intermediate (gate) / output; `final_layer_norm` ->
`{encoder,decoder}_norm`; `lm_head` (when it differs from `shared`) -> the
output kernel (C, V).

Heads may be narrower than d_model / num_heads (`d_kv`: flan-T5-small has 6
heads of 64 over 512). Not supported (one-line errors): different encoder and
decoder depths, bucket settings other than 32 / 128, other
feed-forward activations.
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

SPIECE = "spiece.model"
TOKENIZER_CONFIG = "tokenizer_config.json"
DEFAULT_EXTRA_IDS = 100  # T5Tokenizer's default
DEFAULT_MAX_SEQUENCE_LENGTH = 512  # T5's training length (`n_positions` of the original configs)
# Hugging Face `feed_forward_proj` -> tfzoo FeedForward activations.
T5_ACTIVATIONS = {"relu": "relu", "gated-gelu": "geglu_tanh"}
BUCKETS = {"relative_attention_num_buckets": 32, "relative_attention_max_distance": 128}  # the zoo's buckets
# The export's parity sources (`config.sample_prompts`): T5's task prefixes, short and long.
SAMPLE_PROMPTS = (
    "translate English to German: The house is wonderful.",
    "summarize: studies have shown that owning a dog is good for you",
    "cola sentence: The course is jumping well.",
    "question: What is the capital of France? context: Paris is the capital and largest city of France.",
)
IGNORED = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)  # old checkpoints; unused


def _architecture(config: dict, path: str, max_sequence_length: int | None) -> dict:
    model_type = config.get("model_type")
    if model_type != "t5":
        raise ConvertError(f"{path}: model_type is {model_type!r}, not 't5'")
    architectures = config.get("architectures") or ["T5ForConditionalGeneration"]
    if "T5ForConditionalGeneration" not in architectures:
        raise ConvertError(f"{path}: architectures {architectures!r}: only T5ForConditionalGeneration is supported")
    arch = {}
    for ours, theirs in (
        ("vocabulary_size", "vocab_size"),
        ("num_layers", "num_layers"),
        ("num_heads", "num_heads"),
        ("hidden_dim", "d_model"),
        ("intermediate_dim", "d_ff"),
        ("head_dim", "d_kv"),
    ):
        value = config.get(theirs)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConvertError(f"{path}: {theirs} must be a positive integer, got {value!r}")
        arch[ours] = value
    decoder_layers = config.get("num_decoder_layers") or arch["num_layers"]
    if decoder_layers != arch["num_layers"]:
        raise ConvertError(
            f"{path}: num_decoder_layers {decoder_layers} != num_layers {arch['num_layers']} is not supported"
        )
    for name, supported in BUCKETS.items():
        if config.get(name, supported) != supported:
            raise ConvertError(f"{path}: {name} {config[name]!r} is not supported (only {supported})")
    projection = config.get("feed_forward_proj", "relu")
    if projection not in T5_ACTIVATIONS:
        raise ConvertError(f"{path}: feed_forward_proj {projection!r} is not supported ({', '.join(T5_ACTIVATIONS)})")
    epsilon = config.get("layer_norm_epsilon", 1e-6)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
        raise ConvertError(f"{path}: layer_norm_epsilon must be a positive number, got {epsilon!r}")
    length = max_sequence_length or config.get("n_positions") or DEFAULT_MAX_SEQUENCE_LENGTH
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ConvertError(f"{path}: max_sequence_length must be an integer >= 2, got {length!r}")
    scale = config.get("scale_decoder_outputs")
    if scale is None:  # transformers: the original T5 (tied) rescales, v1.1 (tie_word_embeddings false) does not
        scale = config.get("tie_word_embeddings", True) is not False
    return {
        **arch,
        "max_sequence_length": length,
        "activation": T5_ACTIVATIONS[projection],
        "layer_norm_epsilon": float(epsilon),
        "scale_decoder_output": bool(scale),
    }


def _weights(source: str, arch: dict) -> dict[str, np.ndarray]:
    """The checkpoint's tensors in tfzoo's layout (the names `_assign` reads); sets `arch["tie_embeddings"]`."""
    reader = CheckpointTensors(source, first="shared.weight")
    reader.used.update(IGNORED)
    tensors, origin, take = reader.tensors, reader.origin, reader.take
    c, i, h = arch["hidden_dim"], arch["intermediate_dim"], arch["num_heads"]
    v, d = arch["vocabulary_size"], arch["head_dim"]
    gated = arch["activation"] == "geglu_tanh"

    def linear(key: str, n_in: int, n_out: int) -> np.ndarray:
        return take(key + ".weight", (n_out, n_in)).T  # kernel (in, out)

    def attention(prefix: str, ours: str) -> None:
        for name, theirs in (("query", "q"), ("key", "k"), ("value", "v")):
            out[f"{ours}/{name}"] = linear(f"{prefix}.{theirs}", c, h * d).reshape(c, h, d)  # (C, H, D)
        out[f"{ours}/attention_output"] = linear(f"{prefix}.o", h * d, c).reshape(h, d, c)  # (H, D, C)

    def feed_forward(prefix: str, ours: str) -> None:
        if gated:
            out[f"{ours}/gate_dense"] = linear(prefix + ".wi_0", c, i)  # through the activation
            out[f"{ours}/intermediate_dense"] = linear(prefix + ".wi_1", c, i)
        else:
            out[f"{ours}/intermediate_dense"] = linear(prefix + ".wi", c, i)
        out[f"{ours}/output_dense"] = linear(prefix + ".wo", i, c)

    out = {"token_embedding": take("shared.weight", (v, c))}
    for stack in ("encoder", "decoder"):
        copy = f"{stack}.embed_tokens.weight"  # the tied copy some checkpoints store
        if copy in tensors and not np.array_equal(take(copy, (v, c)), out["token_embedding"]):
            raise ConvertError(f"{origin[copy]}: {copy} differs from shared.weight (T5 shares one embedding)")
        out[f"{stack}_position_bias"] = take(
            f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            (BUCKETS["relative_attention_num_buckets"], h),
        )
        for n in range(arch["num_layers"]):
            prefix, ours = f"{stack}.block.{n}.layer.", f"{stack}/{n}"
            attention(prefix + "0.SelfAttention", ours + "/self_attention")
            out[ours + "/self_attention_norm"] = take(prefix + "0.layer_norm.weight", (c,))
            last = 1
            if stack == "decoder":
                attention(prefix + "1.EncDecAttention", ours + "/cross_attention")
                out[ours + "/cross_attention_norm"] = take(prefix + "1.layer_norm.weight", (c,))
                last = 2
            feed_forward(f"{prefix}{last}.DenseReluDense", ours + "/feed_forward")
            out[ours + "/feed_forward_norm"] = take(f"{prefix}{last}.layer_norm.weight", (c,))
        out[f"{stack}_norm"] = take(f"{stack}.final_layer_norm.weight", (c,))
    arch["tie_embeddings"] = True
    if "lm_head.weight" in tensors:
        head = take("lm_head.weight", (v, c))
        if not np.array_equal(head, out["token_embedding"]):
            arch["tie_embeddings"] = False
            out["output_kernel"] = head.T  # (C, V)
    reader.check_all_used("not a plain T5ForConditionalGeneration")
    return out


def _extra_ids(source: str) -> int:
    """The sentinel count: `tokenizer_config.json`'s `extra_ids`, else T5Tokenizer's default (100)."""
    path = os.path.join(source, TOKENIZER_CONFIG)
    if not os.path.isfile(path):
        return DEFAULT_EXTRA_IDS
    value = read_json(path).get("extra_ids", DEFAULT_EXTRA_IDS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConvertError(f"{path}: extra_ids must be an integer >= 0, got {value!r}")
    return value


def _tokenizer(source: str, vocabulary_size: int):
    """The SentencePiece tokenizer of `spiece.model` with T5Tokenizer's ids, padded to the embedding's rows."""
    from tfzoo.data.sentencepiece_tokenizer import SentencepieceTokenizer  # noqa: PLC0415 (keep the CLI start fast)

    path = os.path.join(source, SPIECE)
    try:
        with open(path, "rb") as file:
            proto = file.read()
    except FileNotFoundError:
        raise ConvertError(f"{path} not found (T5's SentencePiece model)") from None
    except OSError as error:
        raise ConvertError(f"{path}: cannot read ({error})") from None
    extra_ids = _extra_ids(source)
    try:
        tokenizer = SentencepieceTokenizer(proto, extra_ids=extra_ids, append_eos=True)
    except ValueError as error:
        raise ConvertError(f"{path}: {error}") from None
    if tokenizer.special_tokens.get("<eos>") != 1 or list(tokenizer.vocabulary[:3]) != ["<pad>", "</s>", "<unk>"]:
        raise ConvertError(f"{path}: not a T5 SentencePiece model (its first pieces must be <pad>, </s>, <unk>)")
    if tokenizer.vocabulary_size > vocabulary_size:
        raise ConvertError(
            f"{path}: {tokenizer.vocabulary_size} tokens ({tokenizer.num_pieces} pieces + {extra_ids} extra ids), "
            f"more than config.json's vocab_size (the embedding) {vocabulary_size}"
        )
    if tokenizer.vocabulary_size < vocabulary_size:  # T5: 32100 tokens, 32128 rows
        tokenizer = SentencepieceTokenizer(proto, extra_ids=extra_ids, append_eos=True, padded_size=vocabulary_size)
    return tokenizer


def _assign(model, weights: dict[str, np.ndarray], source: str) -> None:
    """Copies `weights` (tfzoo layout) into a built T5-style `Transformer`, checking every shape."""

    def put(variable, key):
        assign(variable, weights, key, source)

    put(model.token_embedding.embeddings, "token_embedding")
    if model.token_embedding.output_kernel is not None:
        put(model.token_embedding.output_kernel, "output_kernel")
    for stack, blocks in (("encoder", model.encoder_blocks), ("decoder", model.decoder_blocks)):
        put(getattr(model, f"{stack}_position_bias").relative_attention_bias, f"{stack}_position_bias")
        put(getattr(model, f"{stack}_norm").scale, f"{stack}_norm")
        for n, block in enumerate(blocks):
            ours = f"{stack}/{n}"
            attentions = [("self_attention", block.self_attention)]
            self_norm = block.attention_norm if stack == "encoder" else block.self_attention_norm
            norms = [("self_attention_norm", self_norm)]
            if stack == "decoder":
                attentions.append(("cross_attention", block.cross_attention_layer))
                norms.append(("cross_attention_norm", block.cross_attention_norm))
            for name, layer in attentions:
                for part, dense in (
                    ("query", layer.query_dense),
                    ("key", layer.key_dense),
                    ("value", layer.value_dense),
                    ("attention_output", layer.output_dense),
                ):
                    put(dense.kernel, f"{ours}/{name}/{part}")
            for name, norm in (*norms, ("feed_forward_norm", block.feed_forward_norm)):
                put(norm.scale, f"{ours}/{name}")
            feed_forward = block.feed_forward
            denses = [
                ("intermediate_dense", feed_forward.intermediate_dense),
                ("output_dense", feed_forward.output_dense),
            ]
            if feed_forward.activation == "geglu_tanh":
                denses.append(("gate_dense", feed_forward.gate_dense))
            for name, dense in denses:
                put(dense.kernel, f"{ours}/feed_forward/{name}")


def load_t5(source: str, max_sequence_length: int | None = None) -> tuple:
    """Reads a Hugging Face T5 folder; returns `(model, tokenizer, info)`.

    Args:
        source: str. The folder (module docstring).
        max_sequence_length: int, optional. Longest source and target the model
            takes (T5 has no position table; this sizes the exported cache and
            source width). None: the config's `n_positions`, else 512.

    Returns:
        `model`: a built tfzoo `Transformer` holding the weights; `tokenizer`: its
        `SentencepieceTokenizer`; `info`: dict with `architecture` (the
        `Transformer` arguments) and `warnings`.

    Raises:
        ConvertError: not a T5 folder, a missing or truncated file, a tensor whose
            shape does not match the config, a vocabulary larger than the
            embedding; the message names the file.

    Example:
    >>> model, tokenizer, info = load_t5("t5-small")  # doctest: +SKIP
    >>> info["architecture"]["activation"], tokenizer.vocabulary_size  # doctest: +SKIP
    ('relu', 32128)
    """
    if not os.path.isdir(source):
        raise ConvertError(f"source {source} is not a directory")
    config_path = os.path.join(source, "config.json")
    if not os.path.isfile(config_path):
        raise ConvertError(f"{source} is not a T5 checkpoint: no config.json")
    config = read_json(config_path)
    arch = _architecture(config, config_path, max_sequence_length)
    vocabulary_size = arch["vocabulary_size"]
    tokenizer = _tokenizer(source, vocabulary_size)
    warnings: list[str] = []
    for field, ours in (("pad_token_id", tokenizer.pad_id), ("eos_token_id", tokenizer.eos_id)):
        value = special_id(config, field, vocabulary_size, config_path, warnings)
        if value is not None and value != ours:
            warnings.append(f"{config_path}: {field} {value} is not {SPIECE}'s ({ours}): the tokenizer's is used")
    start = special_id(config, "decoder_start_token_id", vocabulary_size, config_path, warnings)
    weights = _weights(source, arch)

    from tfzoo.models.transformer import Transformer  # noqa: PLC0415 (imports TensorFlow)

    arch.update(
        position="relative",
        norm="rms",
        use_bias=False,
        scale_queries=False,
        scale_embeddings=False,
        norm_first=True,
        decoder_start_id=tokenizer.pad_id if start is None else start,
    )
    model = Transformer(dropout=0.0, pad_id=tokenizer.pad_id, **arch)
    model.build()
    _assign(model, weights, source)
    return model, tokenizer, {"architecture": arch, "warnings": warnings}


def run_config(arch: dict, source: str) -> dict:
    """The `config.json` of a converted T5 workdir: the contract fields, filled from the checkpoint.

    Example:
    >>> run_config(info["architecture"], "t5-small")["model"]  # doctest: +SKIP
    'transformer'
    """
    return contract_config(
        model="transformer",
        tokenizer="sentencepiece",
        seq_len=arch["max_sequence_length"],
        **arch,
        sample_prompts=list(SAMPLE_PROMPTS),  # `python -m export`'s parity sources
        converted_from=os.path.abspath(source),
        source_format="huggingface",
    )


def convert_t5(source: str, workdir: str, overwrite: bool = False, max_sequence_length: int | None = None) -> dict:
    """Converts the Hugging Face T5 folder `source` into the tfzoo workdir `workdir`.

    Everything is written into a temporary folder beside `workdir` and renamed
    into place, so a failed conversion leaves nothing behind.

    Args:
        source: str. A Hugging Face T5 / T5 v1.1 / flan-T5 folder.
        workdir: str. The new workdir (must not hold a model unless `overwrite`).
        overwrite: bool. Replace an existing workdir. Defaults to False.
        max_sequence_length: int, optional. See `load_t5`.

    Returns:
        dict: `workdir`, `format`, `model`, `tokenizer`, `num_parameters`,
        `warnings`, and the architecture fields.

    Example:
    >>> convert_t5("flan-t5-base", "runs/flan", max_sequence_length=256)["activation"]  # doctest: +SKIP
    'geglu_tanh'
    """
    check_workdir(workdir, overwrite)
    model, tokenizer, info = load_t5(source, max_sequence_length)
    log_warnings(info["warnings"])
    arch = info["architecture"]
    write_workdir(workdir, run_config(arch, source), tokenizer, model)
    return {
        "workdir": workdir,
        "format": "huggingface",
        "model": type(model).__name__,
        "tokenizer": tokenizer.type_name,
        "num_parameters": int(model.count_params()),
        "warnings": info["warnings"],
        **arch,
    }
