"""sample_completions: in-graph sampling, prompts kept verbatim, specials never emitted, seeded."""

import numpy as np

from tfzoo.data.tokenizers import build_tokenizer
from tfzoo.models.gpt import GPT
from tfzoo.training.sampling import sample_completions


def _model(tokenizer, max_sequence_length=16):
    model = GPT(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=max_sequence_length,
    )
    model.build((None, None))
    return model


def test_each_prompt_gets_exactly_length_ordinary_characters():
    tokenizer = build_tokenizer("char", "abcdefgh")
    completions = sample_completions(_model(tokenizer), tokenizer, ["ab", "fgh", ""], 5, seed=1)
    assert [c[: len(p)] for c, p in zip(completions, ["ab", "fgh", ""])] == ["ab", "fgh", ""]
    assert [len(c) for c in completions] == [7, 8, 5]
    assert all(set(c) <= set("abcdefgh") for c in completions)  # no pad/eos/unk


def test_same_seed_same_samples_and_another_seed_differs():
    tokenizer = build_tokenizer("char", "abcdefgh")
    model = _model(tokenizer)
    first = sample_completions(model, tokenizer, ["abc"] * 3, 10, seed=4, temperature=2.0, top_k=0)
    assert first == sample_completions(model, tokenizer, ["abc"] * 3, 10, seed=4, temperature=2.0, top_k=0)
    assert first != sample_completions(model, tokenizer, ["abc"] * 3, 10, seed=5, temperature=2.0, top_k=0)


def test_long_prompts_are_cut_to_leave_room_and_length_to_the_window():
    tokenizer = build_tokenizer("char", "abcdefgh")
    model = _model(tokenizer, max_sequence_length=8)
    (completion,) = sample_completions(model, tokenizer, ["abcdefgh" * 3], 5)
    assert completion.startswith("abcdefgh" * 3) and len(completion) == 24 + 5
    (capped,) = sample_completions(model, tokenizer, ["a"], 50)
    assert len(capped) == 1 + 7  # at most max_sequence_length - 1 new tokens
    assert sample_completions(model, tokenizer, [], 5) == []
    assert np.all([c in "abcdefgh" for c in capped])
