"""The model-kind registry (`tfzoo.kinds`): the one class-to-kind table and each kind's runtime-side facts.

Everything here is numpy only (the runtime side of a kind needs no model and no TensorFlow).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import tfzoo.kinds as kinds
from tfzoo.kinds.base import ModelKind
from tfzoo.runtime_errors import RuntimeInputError
from tfzoo.runtimes.base import Runtime


class _Tokenizer:
    eos_id, pad_id = 1, 0
    special_tokens = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}


def test_the_registry_is_the_only_class_to_kind_table():
    assert kinds.model_classes() == {
        "GPT": "decoder",
        "Transformer": "seq2seq",
        "Captioner": "captioner",
        "BertEncoder": "encoder",
        "BertClassifier": "encoder",
        "BertMaskedLM": "encoder",
        "SpeechRecognizer": "asr",
        "VideoCaptioner": "video",
        "SpeechSynthesizer": "tts",
    }
    names = [kind.name for kind in kinds.kind_classes().values()]
    assert names == ["decoder", "seq2seq", "captioner", "encoder", "asr", "video", "tts"]
    assert [kind.generative for kind in kinds.kind_classes().values()] == [True, True, True, False, True, True, False]
    with pytest.raises(kinds.ModelKindError, match="no model kind adapts ViTEncoder; supported: GPT, "):
        kinds.kind_of_class("ViTEncoder")
    with pytest.raises(kinds.ModelKindError, match="unknown model kind 'speech'"):
        kinds.kind_named("speech")


def test_report_fields_start_and_banned_ids():
    tokenizer = _Tokenizer()
    decoder, seq2seq, captioner = (kinds.kind_named(name) for name in ("decoder", "seq2seq", "captioner"))
    config = {"max_sequence_length": 24, "image_size": 16, "num_channels": 3}
    assert decoder.report_fields(config, tokenizer) == {}
    assert seq2seq.report_fields(config, tokenizer) == {"start_id": 2, "max_source_length": 24}
    assert captioner.report_fields(config, tokenizer) == {"start_id": 2, "image_shape": [16, 16, 3]}
    assert decoder.banned_ids(tokenizer) == [0]
    assert seq2seq.banned_ids(tokenizer) == captioner.banned_ids(tokenizer) == [0, 2, 3]
    assert decoder.max_length_problem(64, 32) is None
    assert "a seq2seq model's decoder cache holds at most" in seq2seq.max_length_problem(64, 32)


def test_runtime_side_conditions_and_context_names():
    decoder, seq2seq, captioner = (kinds.kind_named(name) for name in ("decoder", "seq2seq", "captioner"))
    assert decoder.check_conditions({}, {}) == {}
    with pytest.raises(RuntimeInputError, match="decoder-only export: it takes no conditioning input, not image"):
        decoder.check_conditions({}, {"image": np.zeros((1, 4, 4, 3))})
    checked = seq2seq.check_conditions({"max_source_length": 4}, {"source_ids": [[5, 6, 0]], "source_lengths": [2]})
    assert checked["source_ids"].dtype == np.int32 and checked["source_lengths"].tolist() == [2]
    with pytest.raises(RuntimeInputError, match="takes source_ids and source_lengths, not image"):
        seq2seq.check_conditions({"max_source_length": 4}, {"image": np.zeros((1, 4, 4, 3))})
    with pytest.raises(RuntimeInputError, match="pass source_lengths"):
        seq2seq.check_conditions({"max_source_length": 4}, {"source_ids": [[5, 6, 0]]})
    image = captioner.check_conditions({"image_shape": [4, 4, 3]}, {"image": np.full((1, 4, 4, 3), 255, np.uint8)})
    assert image["image"].dtype == np.float32 and image["image"].max() == 1.0
    assert decoder.context_names(2) == []
    assert captioner.context_names(1) == ["cross_k_0", "cross_v_0"]
    assert seq2seq.context_names(1) == ["cross_k_0", "cross_v_0", "source_lengths"]
    assert decoder.serving_feed({}, ["a"]) == ("prompts", ["a"]) and seq2seq.serving_feed({}, ["a"])[0] == "sources"


def test_a_new_kind_is_one_module_and_one_registry_line(monkeypatch):
    module = types.ModuleType("speech_kind")

    class SpeechKind(ModelKind):
        name = "speech"
        model_classes = ("SpeechModel",)
        condition_names = ("audio",)
        description = "a speech export"

    module.KIND = SpeechKind
    monkeypatch.setitem(sys.modules, "speech_kind", module)
    monkeypatch.setattr(kinds, "KIND_MODULES", (*kinds.KIND_MODULES, "speech_kind"))
    kinds.kind_classes.cache_clear()
    try:
        assert kinds.kind_of_class("SpeechModel").condition_names == ("audio",)
        assert kinds.model_classes()["SpeechModel"] == "speech"
        # The runtime adapters take the new kind's input by its name, with no edit of theirs.
        runtime = _EchoRuntime({**_INFO, "kind": "speech"})
        waveform = np.ones((2, 5), np.float32)
        runtime.generate(max_new_tokens=3, audio=waveform, repetition_penalty=1.5)
        fed = runtime.fed["generate"]
        assert fed["audio"].shape == (2, 5) and fed["token_ids"].tolist() == [[7], [7]]
        assert fed["repetition_penalty"] == np.float32(1.5)
        with pytest.raises(RuntimeInputError, match="pass audio"):
            runtime.generate(max_new_tokens=3)
        with pytest.raises(RuntimeInputError, match="takes audio, not image"):
            runtime.generate(max_new_tokens=3, audio=waveform, image=np.zeros((2, 4, 4, 3)))
        with pytest.raises(RuntimeInputError, match="unknown decoding option 'volume'"):
            runtime.generate(max_new_tokens=3, audio=waveform, volume=2)
    finally:
        kinds.kind_classes.cache_clear()


def test_the_encoder_kind_checks_embed_inputs_and_feeds_zero_segments():
    encoder = kinds.kind_named("encoder")
    assert not encoder.generative and encoder.serving_feed({}, ["a"]) == ("texts", ["a"])
    checked = encoder.check_embed_inputs({"max_sequence_length": 4}, [[2, 7, 3, 0]], [3])
    assert sorted(checked) == ["lengths", "token_ids"] and checked["token_ids"].dtype == np.int32
    with pytest.raises(RuntimeInputError, match="at most max_sequence_length=4"):
        encoder.check_embed_inputs({"max_sequence_length": 4}, [[2, 7, 7, 7, 3]], [5])
    with pytest.raises(RuntimeInputError, match="segment_ids must be integers of token_ids' shape"):
        encoder.check_embed_inputs({"max_sequence_length": 4}, [[2, 3]], [2], segment_ids=[[0]])

    class _EmbedRuntime(Runtime):
        def _input_dtypes(self, signature):
            return {"token_ids": np.int32, "lengths": np.int32, "segment_ids": np.int32}

        def _run(self, signature, inputs):
            self.fed = inputs
            return {"sentence_embedding": np.ones((len(inputs["token_ids"]), 2), np.float32)}

    info = {**_INFO, "kind": "encoder", "max_sequence_length": 8, "signatures": ["embed"]}
    for key in ("strategy", "strategies"):
        info.pop(key)
    runtime = _EmbedRuntime(info)
    runtime.embed([[2, 7, 3]], [3])
    assert runtime.fed["segment_ids"].tolist() == [[0, 0, 0]]  # one sentence
    with pytest.raises(RuntimeInputError, match="does not generate; use embed"):
        runtime.generate([[2, 7]], [2], 3)
    with pytest.raises(RuntimeInputError, match="no classify signature"):
        runtime.classify([[2, 7, 3]], [3])
    with pytest.raises(RuntimeInputError, match="decoder-only export: it has no embed signature"):
        _EmbedRuntime(_INFO).embed([[2, 7, 3]], [3])


_INFO = {
    "max_length": 8,
    "strategy": "greedy",
    "strategies": {"greedy": "generate"},
    "num_layers": 1,
    "num_heads": 1,
    "head_dim": 2,
    "vocabulary_size": 10,
    "start_id": 7,
}


class _EchoRuntime(Runtime):
    """A runtime whose `generate` signature takes a waveform; it records what it was fed."""

    def __init__(self, info):
        super().__init__(info)
        self.fed = {}

    def _input_dtypes(self, signature):
        return {
            "token_ids": np.int32,
            "lengths": np.int32,
            "max_new_tokens": np.int32,
            "audio": np.float32,
            "repetition_penalty": np.float32,
            "no_repeat_ngram_size": np.int32,
        }

    def _run(self, signature, inputs):
        self.fed[signature] = inputs
        batch = len(inputs["token_ids"])
        return {
            "sequences": np.zeros((batch, 8), np.int32),
            "sequence_lengths": np.ones(batch, np.int32),
            "scores": np.zeros(batch, np.float32),
        }
