"""`python -m tfzoo.visualize`: training curves and attention heatmaps are written as PNGs from a workdir."""

import json
import os

import matplotlib.image
import numpy as np
import pytest

from tfzoo import visualize
from tfzoo.data.shapes_data import load_shapes_data
from tfzoo.data.tokenizers import build_tokenizer
from tfzoo.models.captioner import Captioner
from tfzoo.models.gpt import GPT
from tfzoo.models.transformer import Transformer


def _png(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
    height, width = matplotlib.image.imread(path).shape[:2]
    assert height > 100 and width > 100


def _write_metrics(workdir, records):
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def test_curves_writes_a_png(tmp_path, capsys):
    records = [
        {"step": s, "train_loss": 3.0 / s, "val_loss": 3.2 / s, "learning_rate": 1e-3 * s / 4, "wall_time": 0}
        for s in (1, 2, 3, 4)
    ]
    _write_metrics(tmp_path, records)
    assert visualize.main(["curves", "--workdir", str(tmp_path)]) == 0
    path = os.path.join(tmp_path, "curves.png")
    _png(path)
    assert capsys.readouterr().out.strip() == path
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary file left


@pytest.mark.parametrize(
    "content, message",
    [(None, "metrics.jsonl not found"), ("", "has no records"), ("{oops\n", "not JSON"), ("[1]\n", "JSON object")],
)
def test_curves_bad_workdir_is_a_one_line_error(tmp_path, capsys, content, message):
    if content is not None:
        (tmp_path / "metrics.jsonl").write_text(content)
    assert visualize.main(["curves", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_unknown_command_and_missing_workdir_exit_2(tmp_path, capsys):
    assert visualize.main(["pictures", "--workdir", str(tmp_path)]) == 2
    assert visualize.main(["curves", "--workdir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _save_workdir(workdir, model, tokenizer, config=None):
    model.save(os.path.join(workdir, "model.keras"))
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    if config is not None:
        (workdir / "config.json").write_text(json.dumps(config))


def test_language_model_attention_heatmaps(tmp_path):
    tokenizer = build_tokenizer("char", "hello world")
    model = GPT(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=2,
        num_heads=3,
        hidden_dim=12,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    model.build()
    _save_workdir(tmp_path, model, tokenizer)
    written = visualize.attention_command(str(tmp_path), prompt="hello wo")
    assert sorted(os.path.basename(p) for p in written) == ["attention_self_layer0.png", "attention_self_layer1.png"]
    for path, drawn in written.items():
        _png(path)
        assert len(drawn) == 3  # one heatmap per head
        for weights in drawn:
            assert weights.shape == (8, 8)
            np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
            assert np.all(np.triu(weights, k=1) == 0)  # causal
    assert visualize.main(["attention", "--workdir", str(tmp_path)]) == 2  # an LM needs a prompt
    assert visualize.main(["attention", "--workdir", str(tmp_path), "--prompt", "x" * 17]) == 2


def test_captioner_attention_over_image(tmp_path, capsys):
    task = load_shapes_data("shapes:18", num_train=20, num_validation=5)
    tokenizer = build_tokenizer("char", task.tokenizer_text())
    model = Captioner(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=16,
        max_sequence_length=8,
        image_size=18,
        patch_size=6,
    )
    model.build()
    _save_workdir(tmp_path, model, tokenizer, {"dataset": "shapes:18", "num_train": 20, "num_validation": 5})
    written = visualize.attention_command(str(tmp_path), prompt="a red", image_index=2)
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["attention_cross_layer0.png", "attention_self_layer0.png"]
    cross = written[os.path.join(tmp_path, "attention_cross_layer0.png")]
    assert len(cross) == 2 * 6  # heads x tokens (start token + "a red")
    for grid in cross:
        assert grid.shape == (3, 3)  # 18 / 6 patches a side
        assert abs(grid.sum() - 1.0) < 1e-5
    for weights in written[os.path.join(tmp_path, "attention_self_layer0.png")]:
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    for path in written:
        _png(path)
    # Without --prompt the captioner's own greedy caption is plotted.
    assert visualize.main(["attention", "--workdir", str(tmp_path)]) == 0
    assert visualize.main(["attention", "--workdir", str(tmp_path), "--image_index", "99"]) == 2
    assert "--image_index must be in [0, 5)" in capsys.readouterr().err


@pytest.mark.parametrize("position, norm_first", [("sinusoidal", True), ("relative", False)])
def test_seq2seq_scores_follow_the_model_and_rows_sum_to_one(position, norm_first):
    model = Transformer(
        vocabulary_size=20,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=16,
        max_sequence_length=12,
        position=position,
        norm_first=norm_first,
    )
    model.build()
    source = np.array([[5, 6, 7, 8, 0, 0], [9, 10, 11, 12, 13, 14]], np.int32)  # row 0 padded
    target = np.array([[3, 9, 4], [3, 5, 5]], np.int32)
    scores = model.attention_scores(source, target)
    # The scores come from the very pass the model computes.
    expected = model({"source_ids": source, "target_ids": target})
    np.testing.assert_allclose(np.asarray(scores["logits"]), np.asarray(expected), atol=1e-5)
    shapes = {"encoder": (2, 2, 6, 6), "self": (2, 2, 3, 3), "cross": (2, 2, 3, 6)}
    for kind, shape in shapes.items():
        assert len(scores[kind]) == 2
        for weights in map(np.asarray, scores[kind]):
            assert weights.shape == shape
            np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    for weights in map(np.asarray, scores["encoder"] + scores["cross"]):
        assert np.all(weights[0, :, :, 4:] == 0)  # padded source tokens are never attended
    for weights in map(np.asarray, scores["self"]):
        assert np.all(np.triu(weights, k=1) == 0)  # causal


def test_seq2seq_attention_pictures_label_source_and_target(tmp_path, capsys):
    tokenizer = build_tokenizer("char", "one two three un deux trois")
    model = Transformer(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=16,
        max_sequence_length=10,
    )
    model.build()
    _save_workdir(tmp_path, model, tokenizer)
    written = visualize.attention_command(str(tmp_path), prompt="one two", target="un de")
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["attention_cross_layer0.png", "attention_encoder_layer0.png", "attention_self_layer0.png"]
    drawn = {name.split("_")[1]: written[os.path.join(tmp_path, name)] for name in names}
    # Source "one two" is 7 characters; target is the start token + "un de" (6).
    expected = {"encoder": (7, 7), "self": (6, 6), "cross": (6, 7)}
    for kind, shape in expected.items():
        assert len(drawn[kind]) == 2  # one heatmap per head
        for weights in drawn[kind]:
            assert weights.shape == shape
            np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    for path in written:
        _png(path)
    # The cross-attention picture's axes carry the target (queries) and source (keys) tokens.
    figure_labels = visualize.token_labels(tokenizer, tokenizer.encode("one two"))
    assert figure_labels == ["o", "n", "e", "␣", "t", "w", "o"]
    # Without --target the model's own greedy translation is plotted; a missing or too long source is an error.
    assert visualize.main(["attention", "--workdir", str(tmp_path), "--prompt", "two"]) == 0
    assert visualize.main(["attention", "--workdir", str(tmp_path)]) == 2
    assert visualize.main(["attention", "--workdir", str(tmp_path), "--prompt", "one two three"]) == 2
    err = capsys.readouterr().err
    assert "--prompt (the source text) is required" in err and "--prompt has 13 tokens; the model takes 1 to 10" in err


def test_fewshot_plots_the_probe_accuracy_against_the_examples(tmp_path, capsys):
    from tfzoo.training.assistant_eval import probe_accuracy

    tokenizer = build_tokenizer("chat:byte", "")
    model = GPT(vocabulary_size=tokenizer.vocabulary_size, num_layers=1, num_heads=2, hidden_dim=16,
                intermediate_dim=32, max_sequence_length=96)  # fmt: skip
    model.build()
    _save_workdir(tmp_path, model, tokenizer)
    assert visualize.main(["fewshot", "--workdir", str(tmp_path), "--shots", "0,1,2", "--count", "3"]) == 0
    png, written = capsys.readouterr().out.split()
    _png(png)
    assert os.path.basename(png) == "fewshot.png" and os.path.basename(written) == "fewshot.json"
    accuracy = json.loads(open(written).read())["accuracy"]
    assert list(accuracy) == ["0", "1", "2"]
    assert accuracy["2"] == probe_accuracy(model, tokenizer, 2, count=3)  # what the greedy model answers
    assert visualize.main(["fewshot", "--workdir", str(tmp_path), "--shots", "one"]) == 2
    assert "--shots must be" in capsys.readouterr().err
