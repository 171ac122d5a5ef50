"""sample_completions: greedy continuation, context window, prompts kept verbatim."""

import numpy as np

from tfzoo.data.tokenizer import build_tokenizer
from tfzoo.training.sampling import sample_completions


class _NextCharModel:
    """Logits that favour `last id + 1` (wrapping at the end of the vocabulary); records contexts."""

    def __init__(self, vocabulary_size, max_sequence_length=None):
        self.vocabulary_size = vocabulary_size
        self.max_sequence_length = max_sequence_length
        self.context_lengths = []

    def __call__(self, token_ids, training=None):
        token_ids = np.asarray(token_ids)
        assert token_ids.dtype == np.int32 and training is False
        self.context_lengths.append(token_ids.shape[1])
        following = np.where(token_ids + 1 < self.vocabulary_size, token_ids + 1, 3)  # skip specials
        return np.eye(self.vocabulary_size, dtype="float32")[following] * 5.0  # (B, T, V)


def test_greedy_continuation_of_each_prompt():
    tokenizer = build_tokenizer("char", "abcdefgh")
    model = _NextCharModel(tokenizer.vocabulary_size)
    assert sample_completions(model, tokenizer, ["ab", "f"], 5) == ["abcdefg", "fghabc"]
    assert model.context_lengths[:5] == [2, 3, 4, 5, 6]


def test_context_is_cropped_to_the_model_window():
    tokenizer = build_tokenizer("char", "abcdefgh")
    model = _NextCharModel(tokenizer.vocabulary_size, max_sequence_length=3)
    assert sample_completions(model, tokenizer, ["abcdef"], 4) == ["abcdefghab"]
    assert max(model.context_lengths) == 3


def test_empty_prompt_and_zero_length():
    tokenizer = build_tokenizer("char", "abcdefgh")
    model = _NextCharModel(tokenizer.vocabulary_size)
    assert sample_completions(model, tokenizer, ["abc"], 0) == ["abc"]
    (completion,) = sample_completions(model, tokenizer, [""], 3)  # starts from <eos> (id 1)
    assert completion == "\ufffdab"  # ids 2 (<unk>, decoded as U+FFFD), 3, 4
