"""Convert a pretrained checkpoint into a tfzoo workdir: `python -m tfzoo.convert KIND --source=DIR --workdir=OUT`.

KIND is `gpt2` (this module), `bert` (`tfzoo/convert_bert.py`) or `t5`
(`tfzoo/convert_t5.py`); what they share (errors, safetensors reading, writing
the workdir) is `tfzoo/convert_files.py`.

DIR is either a Hugging Face GPT-2 folder (`config.json` + `model.safetensors`,
or sharded `model.safetensors.index.json`; read with the `safetensors` numpy
API, no PyTorch) or a keras-hub `GPT2Backbone` preset folder (as
`save_to_preset` writes it; loaded with keras-hub's own `from_preset`). OUT
becomes an ordinary workdir: `config.json`, `model.keras` (a tfzoo `GPT`) and
`tokenizer/tokenizer.json`, which `tfzoo.generate`, `python -m export` and
`tfzoo.train --config.init_from=OUT` accept.

The tokenizer is GPT-2's byte-level BPE when DIR has `vocab.json` +
`merges.txt` or a Hugging Face `tokenizer.json` (keras-hub:
`assets/tokenizer/vocabulary.json` + `merges.txt`);
otherwise the `ids` tokenizer (prompts are token ids). GPT-2 has no padding
token: the end-of-text id (`eos_token_id`, 50256 for GPT-2) pads.

Weight mapping (Hugging Face `Conv1D` kernels are (in, out), as Keras's):
`wte` -> token embedding, `wpe` -> position embedding, `h.i.ln_1` ->
`self_attention_norm`, `h.i.attn.c_attn` (C, 3C) split into query/key/value
(C, H, D), `h.i.attn.c_proj` (C, C) -> attention output (H, D, C), `h.i.ln_2`
-> `feed_forward_norm`, `h.i.mlp.c_fc`/`c_proj` -> feed-forward
intermediate/output dense, `ln_f` -> `final_norm`, `lm_head` (when untied) ->
the output kernel (C, V).

Errors print `error: ...` naming the file and the problem, exit code 2.
Warnings (a special id outside the vocabulary, which transformers keeps and
ignores too) print `warning: ...` on stderr; the conversion goes on.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from tfzoo.cli import OneLineErrorParser, print_error
from tfzoo.convert_files import (
    LOG,
    CheckpointTensors,
    ConvertError,
    check_workdir,
    contract_config,
    log_warnings,
    read_json,
    special_id,
    write_workdir,
)
from tfzoo.convert_files import assign as assign_weight

__all__ = ["ConvertError", "build_gpt", "convert_gpt2", "detect_format", "load_gpt2", "main"]
# Hugging Face activation names -> tfzoo FeedForward activations.
HF_ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu": "gelu",
    "relu": "relu",
}
HF_BUFFERS = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers of old checkpoints, not weights


def detect_format(source: str) -> str:
    """`"huggingface"` or `"keras_hub"`; ConvertError when `source` is neither kind of GPT-2 folder."""
    if not os.path.isdir(source):
        raise ConvertError(f"source {source} is not a directory")
    config_path = os.path.join(source, "config.json")
    if not os.path.isfile(config_path):
        raise ConvertError(
            f"{source} is not a GPT-2 checkpoint: no config.json (expected a Hugging Face GPT-2 folder with "
            "config.json + model.safetensors, or a keras-hub GPT2Backbone preset)"
        )
    config = read_json(config_path)
    if "model_type" in config:
        if config["model_type"] != "gpt2":
            raise ConvertError(f"{config_path}: model_type is {config['model_type']!r}, not 'gpt2'")
        return "huggingface"
    if "class_name" in config:
        if config["class_name"] != "GPT2Backbone":
            raise ConvertError(f"{config_path}: a keras-hub {config['class_name']}, not a GPT2Backbone")
        return "keras_hub"
    raise ConvertError(f"{config_path}: neither a Hugging Face config (model_type) nor a keras-hub preset (class_name)")


# ---------------------------------------------------------------- Hugging Face


def _hf_architecture(config: dict, path: str) -> dict:
    def field(*names, default=None):
        for name in names:
            if config.get(name) is not None:
                return config[name]
        if default is None:
            raise ConvertError(f"{path}: missing {names[0]!r}")
        return default

    hidden_dim = field("n_embd", "hidden_size")
    activation = field("activation_function", default="gelu_new")
    if activation not in HF_ACTIVATIONS:
        raise ConvertError(f"{path}: activation_function {activation!r} is not supported ({', '.join(HF_ACTIVATIONS)})")
    for name, supported in (
        ("scale_attn_weights", True),
        ("scale_attn_by_inverse_layer_idx", False),
        ("add_cross_attention", False),
    ):
        if config.get(name, supported) != supported:
            raise ConvertError(f"{path}: {name}={config[name]!r} is not supported (only {supported})")
    architecture = {
        "vocabulary_size": field("vocab_size"),
        "num_layers": field("n_layer", "num_hidden_layers"),
        "num_heads": field("n_head", "num_attention_heads"),
        "hidden_dim": hidden_dim,
        "intermediate_dim": config.get("n_inner") or (4 * hidden_dim if isinstance(hidden_dim, int) else None),
        "max_sequence_length": field("n_positions", "n_ctx"),
        "activation": HF_ACTIVATIONS[activation],
        "layer_norm_epsilon": float(field("layer_norm_epsilon", default=1e-5)),
        "tie_embeddings": bool(config.get("tie_word_embeddings", True)),
    }
    for name, value in architecture.items():
        if name not in ("activation", "layer_norm_epsilon", "tie_embeddings") and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConvertError(f"{path}: {name} must be a positive integer, got {value!r}")
    if hidden_dim % architecture["num_heads"]:
        raise ConvertError(f"{path}: n_embd {hidden_dim} is not divisible by n_head {architecture['num_heads']}")
    return architecture


def _hf_weights(source: str, arch: dict) -> dict[str, np.ndarray]:
    """The checkpoint's tensors in tfzoo's layout (see `_assign_weights` for the names)."""
    reader = CheckpointTensors(source, ("transformer.",), first="wte.weight")
    tensors, weights_file, take = reader.tensors, reader.weights_file, reader.take
    c, i, h = arch["hidden_dim"], arch["intermediate_dim"], arch["num_heads"]
    v, p, d = arch["vocabulary_size"], arch["max_sequence_length"], c // h

    out = {"token_embedding": take("wte.weight", (v, c)), "position_embedding": take("wpe.weight", (p, c))}
    for n in range(arch["num_layers"]):
        prefix = f"h.{n}."
        qkv_kernel = take(prefix + "attn.c_attn.weight", (c, 3 * c))
        qkv_bias = take(prefix + "attn.c_attn.bias", (3 * c,))
        for part, name in enumerate(("query", "key", "value")):
            out[f"{n}/{name}/kernel"] = qkv_kernel[:, part * c : (part + 1) * c].reshape(c, h, d)  # (C, H, D)
            out[f"{n}/{name}/bias"] = qkv_bias[part * c : (part + 1) * c].reshape(h, d)  # (H, D)
        out[f"{n}/attention_output/kernel"] = take(prefix + "attn.c_proj.weight", (c, c)).reshape(h, d, c)
        out[f"{n}/attention_output/bias"] = take(prefix + "attn.c_proj.bias", (c,))
        for ours, theirs in (("self_attention_norm", "ln_1"), ("feed_forward_norm", "ln_2")):
            out[f"{n}/{ours}/gamma"] = take(prefix + theirs + ".weight", (c,))
            out[f"{n}/{ours}/beta"] = take(prefix + theirs + ".bias", (c,))
        out[f"{n}/intermediate_dense/kernel"] = take(prefix + "mlp.c_fc.weight", (c, i))
        out[f"{n}/intermediate_dense/bias"] = take(prefix + "mlp.c_fc.bias", (i,))
        out[f"{n}/output_dense/kernel"] = take(prefix + "mlp.c_proj.weight", (i, c))
        out[f"{n}/output_dense/bias"] = take(prefix + "mlp.c_proj.bias", (c,))
    out["final_norm/gamma"] = take("ln_f.weight", (c,))
    out["final_norm/beta"] = take("ln_f.bias", (c,))
    if "lm_head.weight" in tensors:
        head = take("lm_head.weight", (v, c))
        if arch["tie_embeddings"] and not np.array_equal(head, out["token_embedding"]):
            arch["tie_embeddings"] = False  # a separate head despite the config: keep it
        if not arch["tie_embeddings"]:
            out["output_kernel"] = head.T  # (C, V)
    elif not arch["tie_embeddings"]:
        raise ConvertError(f"{weights_file}: tie_word_embeddings is false but tensor 'lm_head.weight' is missing")
    reader.check_all_used("not a plain GPT-2", HF_BUFFERS)
    return out


def _hf_tokenizer(source: str):
    from tfzoo.data.bpe_tokenizer import BpeTokenizer  # noqa: PLC0415 (bad input fails before the heavy imports)

    vocab, merges = os.path.join(source, "vocab.json"), os.path.join(source, "merges.txt")
    if os.path.isfile(vocab) and os.path.isfile(merges):
        return BpeTokenizer.from_files(vocab, merges)
    fast = os.path.join(source, "tokenizer.json")  # transformers 5 saves only this file
    if os.path.isfile(fast):
        return BpeTokenizer.from_hf_tokenizer_json(fast)
    return None


# ---------------------------------------------------------------- keras-hub


def _keras_hub_checkpoint(source: str) -> tuple[dict, dict[str, np.ndarray]]:
    import keras_hub  # noqa: PLC0415 (slow import; keras-hub sources only)

    try:
        backbone = keras_hub.models.GPT2Backbone.from_preset(source)
    except Exception as error:  # noqa: BLE001 (missing or truncated weights, bad config: one kind of bad input)
        message = " ".join(str(error).split())[:200]
        raise ConvertError(
            f"{source}: cannot load the keras-hub GPT2Backbone preset ({type(error).__name__}: {message})"
        ) from None
    arch = {
        "vocabulary_size": backbone.vocabulary_size,
        "num_layers": backbone.num_layers,
        "num_heads": backbone.num_heads,
        "hidden_dim": backbone.hidden_dim,
        "intermediate_dim": backbone.intermediate_dim,
        "max_sequence_length": backbone.max_sequence_length,
        "activation": "gelu_tanh",  # keras-hub's GPT-2 uses gelu(approximate=True)
        "layer_norm_epsilon": 1e-5,
        "tie_embeddings": True,
    }
    w = {v.path: np.asarray(v.numpy(), np.float32) for v in backbone.weights}
    out = {"token_embedding": w["token_embedding/embeddings"], "position_embedding": w["position_embedding/embeddings"]}
    for n in range(arch["num_layers"]):
        layer = f"transformer_layer_{n}/"
        for name in ("query", "key", "value", "attention_output"):
            out[f"{n}/{name}/kernel"] = w[f"{layer}self_attention/{name}/kernel"]
            out[f"{n}/{name}/bias"] = w[f"{layer}self_attention/{name}/bias"]
        for ours, theirs in (
            ("self_attention_norm", "self_attention_layer_norm"),
            ("feed_forward_norm", "feedforward_layer_norm"),
        ):
            out[f"{n}/{ours}/gamma"] = w[f"{layer}{theirs}/gamma"]
            out[f"{n}/{ours}/beta"] = w[f"{layer}{theirs}/beta"]
        for ours, theirs in (
            ("intermediate_dense", "feedforward_intermediate_dense"),
            ("output_dense", "feedforward_output_dense"),
        ):
            out[f"{n}/{ours}/kernel"] = w[f"{layer}{theirs}/kernel"]
            out[f"{n}/{ours}/bias"] = w[f"{layer}{theirs}/bias"]
    out["final_norm/gamma"], out["final_norm/beta"] = w["layer_norm/gamma"], w["layer_norm/beta"]
    return arch, out


def _keras_hub_tokenizer(source: str):
    from tfzoo.data.bpe_tokenizer import BpeTokenizer  # noqa: PLC0415 (bad input fails before the heavy imports)

    assets = os.path.join(source, "assets", "tokenizer")
    vocab, merges = os.path.join(assets, "vocabulary.json"), os.path.join(assets, "merges.txt")
    if os.path.isfile(vocab) and os.path.isfile(merges):
        return BpeTokenizer.from_files(vocab, merges)
    return None


# ---------------------------------------------------------------- tfzoo GPT


def _assign_weights(model, weights: dict[str, np.ndarray], source: str) -> None:
    """Copies `weights` (tfzoo layout) into a built GPT, checking every shape."""

    def assign(variable, key):
        assign_weight(variable, weights, key, source)

    assign(model.token_embedding.embeddings, "token_embedding")
    if model.token_embedding.output_kernel is not None:
        assign(model.token_embedding.output_kernel, "output_kernel")
    assign(model.position_embedding.embeddings, "position_embedding")
    for n, block in enumerate(model.blocks):
        attention = block.self_attention
        for name, dense in (
            ("query", attention.query_dense),
            ("key", attention.key_dense),
            ("value", attention.value_dense),
            ("attention_output", attention.output_dense),
            ("intermediate_dense", block.feed_forward.intermediate_dense),
            ("output_dense", block.feed_forward.output_dense),
        ):
            assign(dense.kernel, f"{n}/{name}/kernel")
            assign(dense.bias, f"{n}/{name}/bias")  # query/key/value biases are (H, 1, D): reshaped
        for name, norm in (
            ("self_attention_norm", block.self_attention_norm),
            ("feed_forward_norm", block.feed_forward_norm),
        ):
            assign(norm.gamma, f"{n}/{name}/gamma")
            assign(norm.beta, f"{n}/{name}/beta")
    assign(model.final_norm.gamma, "final_norm/gamma")
    assign(model.final_norm.beta, "final_norm/beta")


def build_gpt(arch: dict, pad_id: int = 0):
    """A built tfzoo `GPT` with the architecture `arch` (as `load_gpt2` returns it)."""
    from tfzoo.models.gpt import GPT  # noqa: PLC0415 (imports TensorFlow)

    model = GPT(position="learned", dropout=0.0, norm_first=True, pad_id=pad_id, **arch)
    model.build((None, None))
    return model


def load_gpt2(source: str):
    """Reads a GPT-2 checkpoint folder; returns `(model, tokenizer, info)`.

    Args:
        source: str. A Hugging Face GPT-2 folder or a keras-hub GPT2Backbone preset.

    Returns:
        `model`: a built tfzoo `GPT` holding the weights; `tokenizer`: a
        `BpeTokenizer` (vocab and merges found) or an `IdTokenizer`; `info`:
        dict with `format`, `architecture`, `tokenizer`, `eos_id`.

    Raises:
        ConvertError: not a GPT-2 folder, a missing or truncated file, a tensor
            whose shape does not match the config; the message names the file.
    """
    from tfzoo.data.id_tokenizer import IdTokenizer  # noqa: PLC0415 (bad input fails before the heavy imports)

    kind = detect_format(source)
    config_path = os.path.join(source, "config.json")
    if kind == "huggingface":
        config = read_json(config_path)
        arch = _hf_architecture(config, config_path)
        weights = _hf_weights(source, arch)
        tokenizer = _hf_tokenizer(source)
        eos_id = config.get("eos_token_id")
    else:
        arch, weights = _keras_hub_checkpoint(source)
        tokenizer = _keras_hub_tokenizer(source)
        eos_id = None
    vocabulary_size = arch["vocabulary_size"]
    warnings: list[str] = []
    if tokenizer is not None:
        if tokenizer.vocabulary_size != vocabulary_size:
            raise ConvertError(
                f"{source}: the tokenizer has {tokenizer.vocabulary_size} tokens but the model {vocabulary_size}"
            )
        eos_id = tokenizer.eos_id
    else:
        if kind == "huggingface" and config.get("eos_token_id") not in (None, []):
            eos_id = special_id(config, "eos_token_id", vocabulary_size, config_path, warnings)
            if eos_id is None:
                warnings[-1] += " (no end-of-text id: generation runs to max_new_tokens, as in transformers)"
        else:
            eos_id = vocabulary_size - 1  # GPT-2: <|endoftext|> is the last id
        tokenizer = IdTokenizer(vocabulary_size, eos_id)
    model = build_gpt(arch, pad_id=tokenizer.pad_id)
    _assign_weights(model, weights, source)
    info = {
        "format": kind,
        "architecture": arch,
        "tokenizer": tokenizer.type_name,
        "eos_id": eos_id,
        "warnings": warnings,
    }
    return model, tokenizer, info


def run_config(arch: dict, info: dict, source: str) -> dict:
    """The `config.json` of a converted workdir: the contract fields, filled from the checkpoint."""
    return contract_config(
        model="gpt",
        tokenizer=info["tokenizer"],
        seq_len=arch["max_sequence_length"],
        position="learned",
        norm_first=True,
        **arch,
        converted_from=os.path.abspath(source),
        source_format=info["format"],
        eos_id=info["eos_id"],
    )


def convert_gpt2(source: str, workdir: str, overwrite: bool = False) -> dict:
    """Converts the GPT-2 checkpoint in `source` into the tfzoo workdir `workdir`.

    Everything is written into a temporary folder beside `workdir` and renamed
    into place, so a failed conversion leaves nothing behind.

    Args:
        source: str. A Hugging Face GPT-2 folder or a keras-hub GPT2Backbone preset.
        workdir: str. The new workdir (must not hold a model unless `overwrite`).
        overwrite: bool. Replace an existing workdir. Defaults to False.

    Returns:
        dict: `workdir`, `format`, `tokenizer` ("bpe" or "ids"), `num_parameters`,
        and the architecture fields.

    Example:
    >>> convert_gpt2("gpt2-hf", "runs/gpt2")["num_parameters"]  # doctest: +SKIP
    124439808
    """
    check_workdir(workdir, overwrite)
    model, tokenizer, info = load_gpt2(source)
    log_warnings(info["warnings"])
    arch = info["architecture"]
    write_workdir(workdir, run_config(arch, info, source), tokenizer, model)
    return {
        "workdir": workdir,
        "format": info["format"],
        "tokenizer": tokenizer.type_name,
        "num_parameters": int(model.count_params()),
        "warnings": info["warnings"],
        **arch,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0, or 2 on bad input)."""
    parser = OneLineErrorParser(prog="python -m tfzoo.convert", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("gpt2", "bert", "t5"), help="checkpoint family")
    parser.add_argument(
        "--source",
        required=True,
        help="gpt2: Hugging Face or keras-hub GPT-2 folder; bert: Hugging Face BERT folder; t5: Hugging Face T5 folder",
    )
    parser.add_argument("--workdir", required=True, help="the tfzoo workdir to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing workdir")
    parser.add_argument(
        "--max_sequence_length",
        type=int,
        default=None,
        help="t5 only: longest source and target (default: the config's n_positions, else 512)",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.max_sequence_length is not None and args.kind != "t5":
        return print_error(f"--max_sequence_length is for t5 (a {args.kind} checkpoint has its own)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = {"overwrite": args.overwrite}
    if args.kind == "bert":
        from tfzoo.convert_bert import convert_bert as convert  # noqa: PLC0415 (one family per run)
    elif args.kind == "t5":
        from tfzoo.convert_t5 import convert_t5 as convert  # noqa: PLC0415 (one family per run)

        options["max_sequence_length"] = args.max_sequence_length
    else:
        convert = convert_gpt2
    propagate, LOG.propagate = LOG.propagate, False  # the CLI prints the warnings itself, once, below
    try:
        summary = convert(args.source, args.workdir, **options)
    except ValueError as error:
        return print_error(str(error).splitlines()[0] if str(error) else type(error).__name__)
    finally:
        LOG.propagate = propagate
    for warning in summary.get("warnings", ()):
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
