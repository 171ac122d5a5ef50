"""Tiny random Hugging Face T5 folders, made with `sentencepiece` and transformers, for the T5 conversion tests.

`t5_checkpoint(directory, v1_1=...)` trains a tiny T5-style SentencePiece
model (`<pad>`, `</s>`, `<unk>` first, as T5's `spiece.model`), saves it with
`T5Tokenizer`'s own files (`tokenizer_config.json` with `extra_ids`), and a
random `T5ForConditionalGeneration` beside it: the original T5 (ReLU, tied
embeddings and the output rescale, saved by `save_pretrained`) or T5 v1.1
(gated GELU and an untied `lm_head`, written as the hub's v1.1 folders are:
`tie_word_embeddings` false and a separate `lm_head.weight`). Every weight is
random and perturbed well away from the initialization, so greedy output
depends on the source.
"""

from __future__ import annotations

import io
import json
import os

import torch

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "translate English to German: the house is wonderful.",
    "summarize: studies have shown that owning a dog is good for you",
    "Héllo wörld, naïve café. It's 2024!",
    "cola sentence: the course is jumping well.",
]
EXTRA_IDS = 8
ARCH = {"d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_heads": 4}
SOURCES = (
    "translate English to German: the quick brown fox",
    "summarize: the dog is good",
    "Héllo wörld",
    "cola sentence: owning a house is wonderful. It's 2024!",
)


def spiece_model(directory: str) -> int:
    """Writes a tiny unigram `spiece.model` with T5's first pieces (nmt_nfkc, as T5's); returns its piece count."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 5),
        model_writer=model,
        vocab_size=120,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "spiece.model"), "wb") as file:
        file.write(model.getvalue())
    return sentencepiece.SentencePieceProcessor(model_proto=model.getvalue()).get_piece_size()


def hf_tokenizer(directory: str):
    """transformers' `T5Tokenizer` of the folder's `spiece.model` (converted by transformers itself)."""
    from transformers import T5Tokenizer

    return T5Tokenizer.from_pretrained(directory, extra_ids=EXTRA_IDS)


def t5_checkpoint(directory: str, v1_1: bool = False, seed: int = 0, vocab_size: int | None = None, **overrides):
    """Saves a random Hugging Face T5 folder (weights, config, tokenizer); returns the torch model (eval mode)."""
    from safetensors.torch import save_file
    from transformers import T5Config, T5ForConditionalGeneration

    pieces = spiece_model(directory)
    hf_tokenizer(directory).save_pretrained(directory)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=vocab_size or pieces + EXTRA_IDS,
        feed_forward_proj="gated-gelu" if v1_1 else "relu",
        tie_word_embeddings=not v1_1,
        decoder_start_token_id=0,
        dropout_rate=0.0,
        **{**ARCH, **overrides},
    )
    model = T5ForConditionalGeneration(config).eval()
    if v1_1:  # transformers 5 ties the head whatever the config says; v1.1 checkpoints have their own
        model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                parameter.copy_(1.0 + 0.2 * torch.randn_like(parameter))
            elif "relative_attention_bias" in name:
                parameter.copy_(torch.randn_like(parameter))
            elif name == "shared.weight":  # tied: a smaller table, or each token predicts itself
                parameter.copy_(torch.randn_like(parameter) * (1.0 if v1_1 else 0.3))
            elif name == "lm_head.weight":
                parameter.copy_(0.25 * torch.randn_like(parameter))
            elif name.endswith(".q.weight"):  # T5 does not scale its logits: keep the softmax from saturating
                parameter.copy_(0.15 * torch.randn_like(parameter))
            else:
                parameter.copy_(0.4 * torch.randn_like(parameter))
    model.save_pretrained(directory)
    if v1_1:
        tensors = {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}
        save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
        path = os.path.join(directory, "config.json")
        with open(path, encoding="utf-8") as file:
            saved = json.load(file)
        saved.pop("scale_decoder_outputs", None)
        saved["tie_word_embeddings"] = False
        with open(path, "w", encoding="utf-8") as file:
            json.dump(saved, file, indent=2)
    return model
