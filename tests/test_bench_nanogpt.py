"""bench/nanogpt_recipe.py's own logic: nanoGPT's data files, the full-split evaluation, the recipe config.

No nanoGPT, no PyTorch and no training: the bench's helpers run on small files and fake models.
"""

import importlib.util
import os
import pickle

import numpy as np
import pytest

from tfzoo.config_files import load_config_file
from tfzoo.data.text_datasets import load_text_splits
from tfzoo.training.validate import resolve_config

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


def _load_bench():
    spec = importlib.util.spec_from_file_location("nanogpt_recipe", os.path.join(ROOT, "bench", "nanogpt_recipe.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def _decode(path, itos):
    return "".join(itos[int(i)] for i in np.fromfile(path, dtype=np.uint16))


def test_nanogpt_data_has_tfzoos_split_and_the_whole_texts_vocabulary(tmp_path):
    # A BOM (tfzoo drops it), non-ASCII characters, and "Ω" only in the last 10% (validation).
    text = "\ufeff" + "def f(x):\n    return x * 2  # é\n" * 7 + "Ω end"
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode("utf-8"))
    info = bench.prepare_nanogpt_data(str(path), str(tmp_path / "data"))

    body = text[1:]
    split = len(body) * 9 // 10
    splits = load_text_splits(f"text:{path}")
    assert (splits.train, splits.validation) == (body[:split], body[split:])
    with open(tmp_path / "data" / "meta.pkl", "rb") as file:
        meta = pickle.load(file)  # the bench's own file, written for nanoGPT's train.py
    assert meta["vocab_size"] == len(set(body)) == info["vocab_size"]
    assert [meta["itos"][i] for i in range(meta["vocab_size"])] == sorted(set(body))
    assert all(meta["stoi"][ch] == i for i, ch in meta["itos"].items())
    assert _decode(tmp_path / "data" / "train.bin", meta["itos"]) == body[:split]
    assert _decode(tmp_path / "data" / "val.bin", meta["itos"]) == body[split:]
    assert os.path.getsize(tmp_path / "data" / "val.bin") == 2 * len(body[split:])  # uint16 ids
    assert info["val_chars_unseen_in_train"] == 1  # "Ω"
    assert (info["chars"], info["train_chars"], info["val_chars"]) == (len(body), split, len(body) - split)


def test_full_split_windows_predict_every_validation_id_after_the_first_once():
    ids = np.arange(3 * 64 + 10)
    inputs, targets = bench.full_split_windows(ids)
    assert inputs.shape == targets.shape == (3, 64)
    np.testing.assert_array_equal(inputs.reshape(-1), ids[: 3 * 64])
    np.testing.assert_array_equal(targets.reshape(-1), ids[1 : 3 * 64 + 1])
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    inputs, _ = bench.full_split_windows(np.arange(65))  # exactly one window
    assert inputs.shape == (1, 64)
    with pytest.raises(bench.BenchError, match="fewer than one window"):
        bench.full_split_windows(np.arange(64))


def test_mean_cross_entropy_matches_a_direct_sum_on_a_fake_bigram_model():
    rng = np.random.default_rng(0)
    vocab = 5
    table = rng.normal(size=(vocab, vocab)) * 3  # logits of the next id given the current one
    ids = rng.integers(0, vocab, size=64 * 7 + 1)
    inputs, targets = bench.full_split_windows(ids)

    def logits_fn(x):
        return table[x]  # (B, T, V)

    log_probs = table - np.log(np.exp(table).sum(axis=1, keepdims=True))
    expected = -np.mean([log_probs[a, b] for a, b in zip(ids[:-1][: 64 * 7], ids[1:][: 64 * 7])])
    assert bench.mean_cross_entropy(logits_fn, inputs, targets) == pytest.approx(expected, rel=1e-12)
    assert bench.mean_cross_entropy(logits_fn, inputs, targets, batch=3) == pytest.approx(expected, rel=1e-12)
    uniform = bench.mean_cross_entropy(lambda x: np.zeros(x.shape + (vocab,)), inputs, targets)
    assert uniform == pytest.approx(np.log(vocab))
    assert expected != pytest.approx(uniform)  # the fake model's loss is its own, not a constant


def test_default_corpus_is_the_sorted_stdlib_files_cut_to_length(tmp_path):
    for name, body in {"b.py": "bbb", "a.py": "aaa", "pkg/c.py": "ccc", "test/t.py": "ttt", "x.txt": "xxx"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    assert bench.default_corpus(str(tmp_path), num_chars=10) == "aaa\nbbb\ncc"
    with pytest.raises(bench.BenchError, match="pass --text"):
        bench.default_corpus(str(tmp_path), num_chars=100)


def test_nanogpt_folder_must_hold_its_scripts(tmp_path):
    with pytest.raises(bench.BenchError, match="does not hold nanoGPT's train.py"):
        bench.check_nanogpt_dir(str(tmp_path))
    (tmp_path / "config").mkdir()
    for name in ("train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py"):
        (tmp_path / name).write_text("")
    assert bench.check_nanogpt_dir(str(tmp_path)) == str(tmp_path)
    assert bench.main(["--nanogpt", str(tmp_path / "nope")]) == 2


def test_recipe_config_holds_nanogpts_cpu_baby_gpt():
    config = resolve_config(load_config_file(os.path.join(ROOT, "configs", "nanogpt_baby.py")))
    recipe = dict(seq_len=64, batch_size=12, num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512)
    recipe.update(train_steps=2000, eval_every=250, eval_steps=20, learning_rate=1e-3, min_learning_rate=1e-4)
    recipe.update(warmup_steps=100, weight_decay=0.1, beta1=0.9, beta2=0.99, clip_norm=1.0, dropout=0.0)
    assert {key: config[key] for key in recipe} == recipe
    assert config.tokenizer == "char" and config.sample_length == 0


def test_nanogpt_log_gives_the_last_evaluation_and_the_iteration_times():
    lines = ["Overriding: max_iters = 2000", "step 0: train loss 4.2, val loss 4.3"]
    lines += [f"iter {i}: loss 3.0, time {t}ms, mfu 0.04%" for i, t in enumerate([30.0, 31.0, 32.0, 900.0, 33.0])]
    lines += ["step 250: train loss 2.1761, val loss 2.0867", "saving checkpoint to out-shakespeare-char"]
    parsed = bench.parse_nanogpt_log(lines)
    assert (parsed["step"], parsed["val_loss_reported"], parsed["iter_ms_median"]) == (250, 2.0867, 32.0)
    assert parsed["iter_ms_p90"] > 300  # the stalled iteration shows
    assert bench.parse_nanogpt_log(["iter 0: loss 4.2, time 30.5ms, mfu -100.00%"]) is None
