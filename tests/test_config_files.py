"""Config files load by path, and the tiny configs build on their full-size siblings."""

import os

import pytest

from tfzoo.config_files import load_config_file, sibling_config

CONFIGS = os.path.join(os.path.dirname(__file__), os.pardir, "configs")


@pytest.mark.parametrize(
    "tiny, full",
    [("gpt_tiny", "gpt_char"), ("bert_tiny", "bert_classify"), ("transformer_tiny", "transformer_translate")],
)
def test_tiny_configs_keep_every_field_of_their_full_size_sibling(tiny, full):
    small = load_config_file(os.path.join(CONFIGS, f"{tiny}.py"))
    big = sibling_config(os.path.join(CONFIGS, f"{tiny}.py"), full)
    assert set(small.keys()) == set(big.keys())
    assert small.model == big.model and small.dataset == big.dataset
    assert small.hidden_dim < big.hidden_dim and small.train_steps < big.train_steps


def test_missing_file_and_missing_get_config_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_config_file(str(tmp_path / "nope.py"))
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(ValueError, match="no get_config"):
        load_config_file(str(path))
