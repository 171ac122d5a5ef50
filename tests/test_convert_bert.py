"""`python -m tfzoo.convert bert` and `python -m tfzoo.embed`: parity with Hugging Face transformers, bad input.

Tiny random checkpoints are made here with `transformers` (every weight random,
biases and norms too) and saved with `save_pretrained(safe_serialization=True)`
beside a `vocab.txt` this file writes: a BERT with pooler, a MiniLM-shaped
`BertModel` without pooler (3 layers, hidden 48, 4 heads, intermediate 96) and
a `BertForMaskedLM`. The converted tfzoo models must give the same hidden
states and pooled output (within 1e-4), the same sentence embeddings (cosine
>= 0.99999 to a masked mean pooling of the torch hidden states) and the same
masked-LM logits; the WordPiece tokenizer the same ids as `BertTokenizer`.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from gpt2_reference import run_cli
from tfzoo.convert import main as convert_main
from tfzoo.convert_bert import convert_bert
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.embed import main as embed_main
from tfzoo.run_folder import RunFolder

pytestmark = pytest.mark.reference

SPECIALS = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a is was of and to in it hello world run running un ##aff ##able ##ing ##s ##ed play "
    "café naïve résumé The Hello Paris ¿ ¡ — … « » über straße"
).split()
CJK = list("中国人日本语文字")
VOCABULARY = list(  # no duplicates: a vocab.txt with one is refused
    dict.fromkeys(
        SPECIALS
        + list("abcdefghijklmnopqrstuvwxyz0123456789")
        + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
        + list(".,!?;:'\"()-$%&*/@[]_{}~+=<>#^`|\\")
        + ["é", "##é", "ü", "##ü", "ß", "##ß", "ï", "##ï", "σ", "##σ", "ς", "##ς", "α", "##α", "i̇"]
        + CJK
        + WORDS
    )
)
TEXTS = (
    "Hello, world!",
    "The café's résumé was naïve.",
    "ÜBER Straße — «quoted» … ok",
    "中国人 说 日本语文字。",
    "unaffable running played",
    "zzzqqqxxx unknownword",
    "x" * 101,  # longer than max_input_chars_per_word: [UNK]
    "a" * 100,
    "  tabs\tand\nnew\r\nlines   ",
    "[MASK] hello[MASK]world [mask] [CLS]",
    "control\x00\x07chars\u200b zero-width\ufeff",
    "weird\u3000spaces\u00a0and\u2028separators",
    "don't stop-believing $5 (ok) 3.14 e-mail@host.com",
    "",
    "   ",
    "İstanbul ǅ Ǆ ΣΑΣ",
    "emoji 😀 and symbols © ™",
    "Ĥéllö Wörld ÀÉÎÕÜ",
    "a\ufffdb",
)
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
MINILM = dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96)


def _randomize(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(
                torch.randn(parameter.shape, generator=generator) * 0.5
            )  # large enough that tanh-GELU fails 1e-4
    return model.eval()


def _checkpoint(folder, model_class, seed, lower_case=True, **arch):
    """A random `model_class` saved in `folder` with this file's vocabulary; returns the torch model."""
    from transformers import BertConfig, BertTokenizer

    os.makedirs(folder, exist_ok=True)
    config = BertConfig(
        vocab_size=len(VOCABULARY), max_position_embeddings=40, type_vocab_size=2, layer_norm_eps=1e-12, **arch
    )
    kwargs = {"add_pooling_layer": arch.pop("pooler", True)} if model_class.__name__ == "BertModel" else {}
    model = _randomize(model_class(config, **kwargs), seed)
    model.save_pretrained(folder, safe_serialization=True)
    vocab = os.path.join(folder, "vocab.txt")
    with open(vocab, "w", encoding="utf-8") as file:
        file.write("\n".join(VOCABULARY) + "\n")
    BertTokenizer(vocab, do_lower_case=lower_case).save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """(source, torch BertModel with pooler, workdir converted with the CLI)."""
    from transformers import BertModel

    source = str(tmp_path_factory.mktemp("bert"))
    model = _checkpoint(source, BertModel, seed=1, lower_case=False, **SMALL)
    workdir = str(tmp_path_factory.mktemp("out") / "bert")
    code, out, err = run_cli(convert_main, ["bert", f"--source={source}", f"--workdir={workdir}"])
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["model"], summary["use_pooler"], summary["warnings"]) == ("BertEncoder", True, [])
    assert summary["num_parameters"] == sum(p.numel() for p in model.parameters())
    return source, model, workdir


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """(source, torch MiniLM-shaped BertModel without pooler, converted workdir)."""
    from transformers import BertModel

    source = str(tmp_path_factory.mktemp("minilm"))
    model = _checkpoint(source, BertModel, seed=2, pooler=False, **MINILM)
    # sentence-transformers' files beside the weights: texts cut at 12 tokens, mean pooling
    json.dump(
        {"max_seq_length": 12, "do_lower_case": False}, open(os.path.join(source, "sentence_bert_config.json"), "w")
    )
    os.makedirs(os.path.join(source, "1_Pooling"))
    pooling = {"word_embedding_dimension": 48, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
    json.dump(pooling, open(os.path.join(source, "1_Pooling", "config.json"), "w"))
    workdir = str(tmp_path_factory.mktemp("out") / "minilm")
    summary = convert_bert(source, workdir)
    assert (summary["model"], summary["use_pooler"], summary["num_layers"]) == ("BertEncoder", False, 3)
    assert summary["warnings"] == []
    return source, model, workdir


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    """(source, torch BertForMaskedLM, converted workdir)."""
    from transformers import BertForMaskedLM

    source = str(tmp_path_factory.mktemp("mlm"))
    model = _checkpoint(source, BertForMaskedLM, seed=3, **SMALL)
    model.tie_weights()
    workdir = str(tmp_path_factory.mktemp("out") / "mlm")
    summary = convert_bert(source, workdir)
    assert (summary["model"], summary["use_pooler"]) == ("BertMaskedLM", False)
    return source, model, workdir


def _batch(tokenizer, texts=("Hello, world!", "The café's résumé was naïve. 中国人", "run")):
    rows = [tokenizer.encode_input(text, 40) for text in texts]
    width = max(map(len, rows))
    ids = np.full((len(rows), width), tokenizer.pad_id, np.int64)
    mask = np.zeros((len(rows), width), np.int64)
    segments = np.zeros((len(rows), width), np.int64)
    for row, values in enumerate(rows):
        ids[row, : len(values)], mask[row, : len(values)] = values, 1
        segments[row, len(values) // 2 : len(values)] = 1  # a second segment, so token types matter
    return ids, mask, segments


def _tfzoo_outputs(workdir, ids, mask, segments):
    folder = RunFolder(workdir)
    model = folder.load_model()
    encoder = getattr(model, "backbone", model)
    inputs = {"token_ids": ids, "padding_mask": mask.astype(bool), "segment_ids": segments}
    return model, {name: np.asarray(value) for name, value in encoder(inputs).items()}


def test_workdir_layout_and_config(base):
    _, _, workdir = base
    assert sorted(os.listdir(workdir)) == ["config.json", "model.keras", "tokenizer"]
    config = json.load(open(os.path.join(workdir, "config.json"), encoding="utf-8"))
    assert (config["num_layers"], config["hidden_dim"], config["norm_first"], config["activation"]) == (
        2,
        32,
        False,
        "gelu",
    )
    assert config["layer_norm_epsilon"] == 1e-12 and config["num_segments"] == 2 and config["max_sequence_length"] == 40
    assert sorted(os.listdir(os.path.join(workdir, "tokenizer"))) == ["tokenizer.json", "vocab.txt"]


def test_hidden_states_and_pooled_output_match_bert_model(base):
    _, reference, workdir = base
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    ids, mask, segments = _batch(tokenizer)
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(segments)
        )
    _, ours = _tfzoo_outputs(workdir, ids, mask, segments)
    real = mask.astype(bool)
    sequence = expected.last_hidden_state.numpy()
    assert np.abs(ours["sequence_output"][real] - sequence[real]).max() < 1e-4
    assert np.abs(ours["pooled_output"] - expected.pooler_output.numpy()).max() < 1e-4


def test_minilm_hidden_states_and_sentence_embeddings(minilm):
    _, reference, workdir = minilm
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    ids, mask, segments = _batch(tokenizer)
    with torch.no_grad():
        hidden = reference(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    model, ours = _tfzoo_outputs(workdir, ids, mask, np.zeros_like(segments))
    assert "pooled_output" not in ours  # saved without a pooler: none made up
    real = mask.astype(bool)
    assert np.abs(ours["sequence_output"][real] - hidden[real]).max() < 1e-4
    weights = mask[:, :, None].astype(np.float64)
    mean = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)  # sentence-transformers' mean pooling
    mean /= np.linalg.norm(mean, axis=-1, keepdims=True)
    vectors = np.asarray(model.sentence_embedding({"token_ids": ids, "padding_mask": real}))
    cosine = (vectors * mean).sum(-1) / np.linalg.norm(vectors, axis=-1)
    assert cosine.min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), 1.0, atol=1e-6)


def test_masked_lm_logits_match(mlm):
    _, reference, workdir = mlm
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    ids, mask, segments = _batch(tokenizer)
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(segments)
        ).logits.numpy()
    model = RunFolder(workdir).load_model()
    positions = np.tile(np.arange(ids.shape[1]), (ids.shape[0], 1))
    logits = np.asarray(
        model(
            {"token_ids": ids, "padding_mask": mask.astype(bool), "segment_ids": segments, "mask_positions": positions}
        )
    )
    real = mask.astype(bool)
    assert np.abs(logits[real] - expected[real]).max() < 1e-4


@pytest.mark.parametrize("lower_case", [True, False])
def test_wordpiece_ids_equal_bert_tokenizer(tmp_path, lower_case):
    from transformers import BertTokenizer

    from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    reference = BertTokenizer(str(vocab), do_lower_case=lower_case)
    ours = WordpieceTokenizer.from_bert_vocabulary(VOCABULARY, lower_case=lower_case)
    ours.save(str(tmp_path / "saved"))
    reloaded = load_tokenizer(str(tmp_path / "saved"))
    for text in TEXTS:
        expected = reference(text, add_special_tokens=False)["input_ids"]
        assert ours.encode(text).tolist() == expected, text
        assert reloaded.encode(text).tolist() == expected, text
        for max_length in (3, 6, 512):
            truncated = reference(text, truncation=True, max_length=max_length)["input_ids"]
            assert reloaded.encode_input(text, max_length).tolist() == truncated, (text, max_length)
    unknown = [text for text in TEXTS if reference.unk_token_id in ours.encode(text).tolist()]
    assert "emoji 😀 and symbols © ™" in unknown and "x" * 101 in unknown  # the set does reach [UNK]


@pytest.mark.parametrize("options", [dict(lower_case=True), dict(lower_case=False), dict(strip_accents=True)])
def test_in_graph_ids_equal_the_python_ids(options):
    import tensorflow as tf

    from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer

    tokenizer = WordpieceTokenizer.from_bert_vocabulary(VOCABULARY, **options)
    texts = [text for text in TEXTS if "[MASK]" not in text]  # the documented difference: special tokens in text
    in_graph = tokenizer.encode_tf(tf.constant(texts)).to_list()
    assert in_graph == [tokenizer.encode(text).tolist() for text in texts]


def test_in_graph_tokenizer_survives_a_saved_model_round_trip(tmp_path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (the loaded graph's ops)

    from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer

    tokenizer = WordpieceTokenizer.from_bert_vocabulary(VOCABULARY, lower_case=True)
    module = tf.Module()
    module.tokenizer = tokenizer.tf_tokenizer
    module.encode = tf.function(
        lambda texts: tokenizer.encode_tf(texts).to_tensor(default_value=-1),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    texts = ["The café's résumé was naïve.", "中国人 ΣΑΣ", "x" * 101]
    rows = loaded.encode(tf.constant(texts)).numpy().tolist()
    assert [[i for i in row if i >= 0] for row in rows] == [tokenizer.encode(text).tolist() for text in texts]


def test_strip_accents_and_chinese_chars_follow_tokenizer_config(tmp_path):
    from transformers import BertTokenizer

    from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    for options in (dict(strip_accents=True), dict(strip_accents=False), dict(tokenize_chinese_chars=False)):
        for lower_case in (True, False):
            reference = BertTokenizer(str(vocab), do_lower_case=lower_case, **options)
            ours = WordpieceTokenizer.from_bert_vocabulary(VOCABULARY, lower_case=lower_case, **options)
            for text in TEXTS:
                assert ours.encode(text).tolist() == reference(text, add_special_tokens=False)["input_ids"], text


def test_embed_cli_prints_embeddings_and_cosine(minilm):
    _, reference, workdir = minilm
    code, out, err = run_cli(embed_main, [f"--workdir={workdir}", "--text=Hello, world!"])
    assert code == 0, err
    result = json.loads(out)
    assert result["dim"] == 48 and len(result["embeddings"]) == 1
    texts = ["Hello, world!", "The café's résumé was naïve, and the world was running (unaffable)."]
    code, out, err = run_cli(embed_main, [f"--workdir={workdir}", f"--text={texts[0]}", f"--text={texts[1]}"])
    assert code == 0, err
    cosine = json.loads(out)["cosine"]
    from transformers import BertTokenizer

    hf_tokenizer = BertTokenizer.from_pretrained(minilm[0])
    # sentence-transformers cuts at its max_seq_length (12 here; the second text is longer)
    batch = hf_tokenizer(texts, padding=True, truncation=True, max_length=12, return_tensors="pt")
    assert batch["attention_mask"].sum(1).tolist()[1] == 12
    with torch.no_grad():
        hidden = reference(**batch).last_hidden_state
    weights = batch["attention_mask"][:, :, None].float()
    mean = torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)
    assert abs(cosine - float(mean[0] @ mean[1])) < 1e-5


def test_other_sentence_transformers_pooling_is_a_warning(minilm, tmp_path):
    source = _copy(minilm[0], tmp_path)
    path = os.path.join(source, "1_Pooling", "config.json")
    json.dump({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, open(path, "w"))
    summary = convert_bert(source, str(tmp_path / "out"))
    assert summary["warnings"] == [f"{path}: pools by pooling_mode_cls_token; tfzoo.embed pools by the mean"]


def test_embed_cli_needs_an_export_for_other_runtimes_and_a_workdir(minilm, tmp_path):
    code, _, err = run_cli(embed_main, [f"--workdir={minilm[2]}", "--text=hi", "--runtime=tflite"])
    assert code == 2 and err.count("\n") == 1 and "run `python -m export --workdir=" in err  # tests/test_export_bert.py
    code, _, err = run_cli(embed_main, [f"--workdir={tmp_path / 'nowhere'}", "--text=hi"])
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err


# ---------------------------------------------------------------- bad input


def _convert_error(source, workdir):
    code, _, err = run_cli(convert_main, ["bert", f"--source={source}", f"--workdir={workdir}"])
    assert not os.path.exists(workdir)
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return code, err


def _copy(source, tmp_path, name="copy"):
    target = str(tmp_path / name)
    shutil.copytree(source, target)
    return target


def _edit_config(folder, **changes):
    path = os.path.join(folder, "config.json")
    config = json.load(open(path, encoding="utf-8"))
    config.update(changes)
    json.dump(config, open(path, "w", encoding="utf-8"))


def test_not_a_bert_folder(tmp_path, base):
    from transformers import GPT2Config

    other = tmp_path / "gpt2"
    GPT2Config(n_layer=1).save_pretrained(str(other))
    code, err = _convert_error(other, tmp_path / "out")
    assert code == 2 and f"{other}/config.json: model_type is 'gpt2', not 'bert'" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _convert_error(empty, tmp_path / "out")
    assert code == 2 and "no config.json" in err


@pytest.mark.parametrize(
    "remove, message",
    [
        (["model.safetensors"], "has no model.safetensors"),
        (["vocab.txt", "tokenizer.json"], "vocab.txt not found"),
    ],
)
def test_missing_files(tmp_path, base, remove, message):
    source = _copy(base[0], tmp_path)
    for name in remove:
        os.remove(os.path.join(source, name))
    code, err = _convert_error(source, tmp_path / "out")
    assert code == 2 and message in err and source in err


def test_tokenizer_json_alone_gives_the_same_ids(tmp_path, base):
    from transformers import BertTokenizer

    source = _copy(base[0], tmp_path)
    reference = BertTokenizer.from_pretrained(source)  # lower_case False, read from tokenizer.json
    os.remove(os.path.join(source, "vocab.txt"))  # transformers 5's save_pretrained writes only tokenizer.json
    convert_bert(source, str(tmp_path / "out"))
    ours = load_tokenizer(str(tmp_path / "out" / "tokenizer"))
    assert not ours.lower_case
    for text in TEXTS:
        assert ours.encode_input(text, 40).tolist() == reference(text, truncation=True, max_length=40)["input_ids"]


def test_truncated_weights_and_bad_json(tmp_path, base):
    source = _copy(base[0], tmp_path)
    weights = os.path.join(source, "model.safetensors")
    data = open(weights, "rb").read()
    open(weights, "wb").write(data[: len(data) // 2])
    code, err = _convert_error(source, tmp_path / "out")
    assert code == 2 and f"{weights}: not a readable safetensors file" in err
    source = _copy(base[0], tmp_path, "json")
    open(os.path.join(source, "config.json"), "w").write('{"model_type": "bert", ')
    code, err = _convert_error(source, tmp_path / "out")
    assert code == 2 and "config.json: cannot read JSON" in err


def test_shape_mismatch_and_missing_tensor(tmp_path, base):
    from safetensors.numpy import load_file, save_file

    source = _copy(base[0], tmp_path)
    _edit_config(source, intermediate_size=80)
    code, err = _convert_error(source, tmp_path / "out")
    assert code == 2 and "model.safetensors: encoder.layer.0.intermediate.dense.weight has shape (64, 32)" in err
    assert "config.json implies (80, 32)" in err
    source = _copy(base[0], tmp_path, "missing")
    weights = os.path.join(source, "model.safetensors")
    tensors = load_file(weights)
    del tensors["encoder.layer.1.output.LayerNorm.weight"]
    save_file(tensors, weights)
    code, err = _convert_error(source, tmp_path / "out")
    assert code == 2 and "tensor 'encoder.layer.1.output.LayerNorm.weight' is missing" in err


def test_vocabulary_that_does_not_match_the_embedding(tmp_path, base):
    source = _copy(base[0], tmp_path)
    vocab = os.path.join(source, "vocab.txt")
    lines = open(vocab, encoding="utf-8").read().splitlines()
    open(vocab, "w", encoding="utf-8").write("\n".join(lines[:-3]) + "\n")
    code, err = _convert_error(source, tmp_path / "out")
    assert code == 2 and f"{vocab}: {len(lines) - 3} tokens, but config.json's vocab_size" in err
    assert f"is {len(lines)}" in err


def test_special_ids_outside_the_vocabulary_are_a_warning(tmp_path, base):
    source = _copy(base[0], tmp_path)
    _edit_config(source, pad_token_id=50000)
    workdir = str(tmp_path / "out")
    code, out, err = run_cli(convert_main, ["bert", f"--source={source}", f"--workdir={workdir}"])
    assert code == 0, err
    assert "warning: " in err and err.count("pad_token_id 50000 is outside the vocabulary") == 1  # printed once
    assert load_tokenizer(os.path.join(workdir, "tokenizer")).pad_id == VOCABULARY.index("[PAD]")


def test_sharded_checkpoint_with_prefix_and_dropped_heads(tmp_path):
    from transformers import BertForSequenceClassification

    source = str(tmp_path / "classifier")
    reference = _checkpoint(source, BertForSequenceClassification, seed=4, **SMALL)
    os.remove(os.path.join(source, "model.safetensors"))
    reference.save_pretrained(source, safe_serialization=True, max_shard_size="20KB")
    assert os.path.isfile(os.path.join(source, "model.safetensors.index.json"))
    summary = convert_bert(source, str(tmp_path / "out"))
    assert summary["model"] == "BertEncoder" and summary["use_pooler"]
    assert any("sequence-classification head" in warning for warning in summary["warnings"])
    tokenizer = load_tokenizer(str(tmp_path / "out" / "tokenizer"))
    ids, mask, segments = _batch(tokenizer)
    with torch.no_grad():
        expected = reference.bert(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).pooler_output
    _, ours = _tfzoo_outputs(str(tmp_path / "out"), ids, mask, np.zeros_like(segments))
    assert np.abs(ours["pooled_output"] - expected.numpy()).max() < 1e-4


# ---------------------------------------------------------------- fine-tuning from a converted BERT


def _finetune_config(name, workdir, **changes):
    """configs/NAME.py starting from the converted `workdir`: its architecture, one step, a tiny learning rate."""
    from tfzoo.config_files import load_config_file

    config = load_config_file(os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", f"{name}.py"))
    converted = json.load(open(os.path.join(workdir, "config.json"), encoding="utf-8"))
    fields = ("num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_sequence_length")
    config.update({field: converted[field] for field in fields})
    config.update(
        tokenizer=f"file:{workdir}/tokenizer",
        norm_first=False,
        layer_norm_epsilon=converted["layer_norm_epsilon"],
        num_segments=converted["num_segments"],
        dropout=0.0,
        seq_len=16,
        batch_size=8,
        train_steps=1,
        eval_every=1,
        eval_steps=1,
        learning_rate=1e-9,  # the one step barely moves the weights (step 0's loss is taken before it anyway)
        min_learning_rate=1e-9,
        warmup_steps=0,
        jit_compile=False,
        sample_prompts=(),
    )
    config.update({"init_from": workdir, **changes})
    return config


def _first_batch_loss(config, model) -> float:
    """The training loss of `model` on batch 0 of the run `config` describes."""
    from tfzoo.models.registry import TASK_KINDS
    from tfzoo.training.losses import MaskedSparseCrossEntropy
    from tfzoo.training.tasks import make_task
    from tfzoo.training.validate import resolve_config

    config = resolve_config(config)
    task = make_task(TASK_KINDS[config.model], config)
    inputs, labels = next(iter(task.train_dataset(start_step=0)))
    return float(MaskedSparseCrossEntropy(pad_id=task.label_pad_id)(labels, model(inputs, training=False)))


def _train_loss(config, run):
    from tfzoo.training.train_lib import train_and_evaluate

    train_and_evaluate(config, str(run))
    records = [json.loads(line) for line in open(run / "metrics.jsonl", encoding="utf-8")]
    return records[0]["train_loss"]


def test_masked_lm_fine_tuning_starts_from_the_converted_weights(mlm, tmp_path):
    _, _, workdir = mlm
    config = _finetune_config("bert_mlm", workdir)
    converted = RunFolder(workdir).load_model()
    expected = _first_batch_loss(config, converted)
    assert _train_loss(config, tmp_path / "run") == pytest.approx(expected, abs=1e-4)
    scratch = _train_loss(_finetune_config("bert_mlm", workdir, init_from=""), tmp_path / "scratch")
    assert abs(scratch - expected) > 0.5  # a fresh model's loss is another number: the weights were loaded


def test_classifier_fine_tuning_starts_from_the_converted_backbone(base, tmp_path):
    _, _, workdir = base
    config = _finetune_config("bert_classify", workdir)
    loss = _train_loss(config, tmp_path / "run")
    run_model = RunFolder(str(tmp_path / "run")).load_model()  # learning rate 1e-9: the weights it started from
    converted = RunFolder(workdir).load_model()
    for mine, theirs in zip(run_model.backbone.weights, converted.weights, strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-6)
    assert loss == pytest.approx(_first_batch_loss(config, run_model), abs=1e-4)


def test_classifier_fine_tuning_from_a_converted_masked_lm(mlm, tmp_path):
    # What pre-training gives (bench/bert_finetune.py): a BertForMaskedLM folder -> a BertMaskedLM workdir. Its
    # encoder fills the classifier's backbone; the masked-LM head is left behind, the pooler and classifier are fresh.
    _, reference, workdir = mlm
    config = _finetune_config("bert_classify", workdir)
    loss = _train_loss(config, tmp_path / "run")
    scratch_config = _finetune_config("bert_classify", workdir, init_from="")
    _train_loss(scratch_config, tmp_path / "scratch")
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    ids, mask, segments = _batch(tokenizer)
    with torch.no_grad():
        expected = reference.bert(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(segments)
        ).last_hidden_state.numpy()
    real = mask.astype(bool)
    differences = {}
    for name in ("run", "scratch"):
        model = RunFolder(str(tmp_path / name)).load_model()  # learning rate 1e-9: the weights it started from
        assert type(model).__name__ == "BertClassifier"
        inputs = {"token_ids": ids, "padding_mask": real, "segment_ids": segments}
        hidden = np.asarray(model.backbone(inputs)["sequence_output"])
        differences[name] = np.abs(hidden[real] - expected[real]).max()
        if name == "run":
            assert loss == pytest.approx(_first_batch_loss(config, model), abs=1e-4)
            embedding = reference.bert.embeddings.word_embeddings.weight.detach().numpy()
            np.testing.assert_allclose(model.backbone.token_embedding.embeddings.numpy(), embedding, atol=1e-6)
    assert differences["run"] < 1e-4  # the Hugging Face encoder's hidden states, before any real update
    assert differences["scratch"] > 0.1  # the same run without init_from starts elsewhere


def test_mean_pooling_classifier_starts_from_a_converted_masked_lm(mlm):
    # bench/bert_finetune.py's `--pooling mean`: the converted encoder fills the backbone, the frozen pooler
    # (a BertForMaskedLM has none) and the classifier are fresh, and the head reads the masked mean.
    from tfzoo.models.registry import build_model
    from tfzoo.training.init_from import load_initial_weights
    from tfzoo.training.validate import resolve_config

    _, _, workdir = mlm
    config = resolve_config(_finetune_config("bert_classify", workdir, pooling="mean"))
    tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
    model = build_model(config, tokenizer.vocabulary_size, num_classes=2)
    load_initial_weights(model, workdir)
    assert model.pooling == "mean" and not [w for w in model.trainable_weights if "pooler" in w.path]
    converted = RunFolder(workdir).load_model()
    assert converted.backbone.pooler is None
    loaded = [w for w in model.backbone.weights if "pooler" not in w.path]
    for mine, theirs in zip(loaded, converted.backbone.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    ids, mask, segments = _batch(tokenizer)
    inputs = {"token_ids": ids, "padding_mask": mask.astype(bool), "segment_ids": segments}
    hidden = np.asarray(converted.backbone(inputs)["sequence_output"])
    real = mask[:, :, None].astype("float32")
    mean = (hidden * real).sum(axis=1) / real.sum(axis=1)
    np.testing.assert_allclose(np.asarray(model(inputs)), np.asarray(model.classifier(mean)), atol=1e-5)


def test_pooling_field_is_checked():
    from tfzoo.config_files import load_config_file
    from tfzoo.training.validate import ConfigError, resolve_config

    config = load_config_file(os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "bert_classify.py"))
    assert resolve_config(config).pooling == "cls"
    config.pooling = "max"
    with pytest.raises(ConfigError, match="pooling must be one of 'cls', 'mean', got 'max'"):
        resolve_config(config)


def test_conversion_needs_neither_torch_nor_transformers(base, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"  # importing either fails
        "from tfzoo.convert import main\n"
        f"sys.exit(main(['bert', '--source={base[0]}', '--workdir={tmp_path / 'out'}']))\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["model"] == "BertEncoder"


@pytest.mark.parametrize("lower_case", [True, False])
def test_hugging_face_tokenizer_json_of_a_bert_vocabulary(lower_case):
    # What the apps read (tfzoo.data.hf_tokenizer): BERT's normalizer and pre-tokenizer, its own special tokens.
    import tokenizers

    from tfzoo.data.hf_tokenizer import hf_tokenizer_json
    from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer

    ours = WordpieceTokenizer.from_bert_vocabulary(VOCABULARY, lower_case=lower_case)
    hf = tokenizers.Tokenizer.from_str(json.dumps(hf_tokenizer_json(ours)))
    for text in TEXTS:
        ids = ours.encode(text).tolist()
        assert hf.encode(text, add_special_tokens=False).ids == ids, text
        assert hf.decode(ids) == ours.decode(ids), text
