"""`python -m export` on BERT workdirs (model kind `encoder`): `embed` in every format, parity, text in, bad input.

Tiny random Hugging Face checkpoints (made with `transformers` as in
tests/test_convert_bert.py: a BERT with pooler, uncased; a MiniLM-shaped
`BertModel` without pooler, cased, with sentence-transformers' 12-token
`max_seq_length`; a `BertForMaskedLM`), converted with `tfzoo.convert bert`
and exported once per module (every format, fp32/fp16/int8 TFLite). Checked
against the Keras model on texts with accents, CJK, punctuation, unknown and
over-long words: sentence embeddings cosine >= 0.99999 and hidden states
within 1e-4 in fp32 (SavedModel, TFLite, ONNX), cosine >= 0.99 for fp16 and
int8; the text-in `serving_default` of a fresh SavedModel load; `tfzoo.embed
--runtime=...`; TFLite builtins only and standard ONNX ops; a
`BertClassifier`'s `classify`; one-line errors with nothing written.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from gpt2_reference import run_cli
from test_convert_bert import MINILM, SMALL, TEXTS, _checkpoint
from tfzoo.convert_bert import convert_bert
from tfzoo.embed import embed_texts
from tfzoo.embed import main as embed_main
from tfzoo.run_folder import RunFolder

pytestmark = pytest.mark.reference

# The documented difference of the in-graph tokenizer: special tokens written in the text are split.
EMBED_TEXTS = [text for text in TEXTS if "[MASK]" not in text] + ["hello world " * 30]  # the last one is cut
RUNTIMES = [("saved_model", "none"), ("tflite", "none"), ("tflite", "fp16"), ("tflite", "int8"), ("onnx", "none")]


def _export(workdir, **options):
    from export.pipeline import export_workdir

    report = export_workdir(workdir, log=lambda line: None, **options)
    assert report["passed"], report["failures"]
    return report


def _cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """(torch BertModel with pooler, exported workdir, report, Keras model, tokenizer)."""
    from transformers import BertModel

    source = str(tmp_path_factory.mktemp("bert"))
    torch_model = _checkpoint(source, BertModel, seed=1, lower_case=True, **SMALL)
    workdir = str(tmp_path_factory.mktemp("out") / "bert")
    convert_bert(source, workdir)
    report = _export(workdir)
    folder = RunFolder(workdir)
    return torch_model, workdir, report, folder.load_model(), folder.load_tokenizer()


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """MiniLM-shaped, no pooler, cased, texts cut at 12 tokens: (workdir, report, Keras model, tokenizer)."""
    from transformers import BertModel

    source = str(tmp_path_factory.mktemp("minilm"))
    _checkpoint(source, BertModel, seed=2, pooler=False, lower_case=False, **MINILM)
    with open(os.path.join(source, "sentence_bert_config.json"), "w", encoding="utf-8") as file:
        json.dump({"max_seq_length": 12, "do_lower_case": False}, file)
    workdir = str(tmp_path_factory.mktemp("out") / "minilm")
    convert_bert(source, workdir)
    report = _export(workdir)
    folder = RunFolder(workdir)
    return workdir, report, folder.load_model(), folder.load_tokenizer()


@pytest.fixture(params=["base", "minilm"])
def exported(request, base, minilm):
    """(workdir, report, Keras model, tokenizer) of each exported checkpoint."""
    return base[1:] if request.param == "base" else minilm


def _keras(model, tokenizer, texts, max_length):
    """Keras reference: `[CLS] text [SEP]` ids (right-padded), lengths, the backbone's outputs, sentence embeddings."""
    from tfzoo.kinds import kind_named

    encoded = kind_named("encoder").encode_texts(tokenizer, texts, max_length)
    ids, lengths = encoded["token_ids"], encoded["lengths"]
    mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
    backbone = getattr(model, "backbone", model)
    outputs = {k: np.asarray(v) for k, v in backbone({"token_ids": ids, "padding_mask": mask}).items()}
    outputs["sentence_embedding"] = embed_texts(model, tokenizer, texts, max_length)
    return ids, lengths, mask, outputs


def test_report_signatures_and_ops(base, minilm):
    from export.onnx_export import non_standard_ops
    from export.tflite_export import non_builtin_ops

    for workdir, report, pooled in ((base[1], base[2], True), (minilm[0], minilm[1], False)):
        model = report["model"]
        assert (model["kind"], model["pooled_output"], model["segment_ids"]) == ("encoder", pooled, True)
        assert model["signatures"] == ["embed"] and "strategies" not in model
        assert sorted(report["artefacts"]) == ["onnx", "saved_model", "tflite", "tflite_fp16", "tflite_int8"]
        outputs = ["sentence_embedding", "sequence_output"] + (["pooled_output"] if pooled else [])
        for key, artefact in report["artefacts"].items():
            embed = artefact["signatures"]["embed"]
            assert sorted(embed["inputs"]) == ["lengths", "segment_ids", "token_ids"], key
            assert sorted(embed["outputs"]) == sorted(outputs), key
            assert artefact["parity"]["passed"], (key, artefact["parity"])
        serving = report["artefacts"]["saved_model"]["signatures"]["serving_default"]
        assert serving["inputs"] == ["texts"] and sorted(serving["outputs"]) == sorted(
            set(outputs) - {"sequence_output"}
        )
        export_dir = RunFolder(workdir).export_dir
        for key in ("tflite", "tflite_fp16", "tflite_int8"):
            with open(os.path.join(export_dir, report["artefacts"][key]["path"]), "rb") as file:
                assert non_builtin_ops(file.read()) == []
            assert not any(op.startswith("FLEX") or op == "CUSTOM" for op in report["artefacts"][key]["ops"])
        import onnx

        proto = onnx.load(os.path.join(export_dir, report["artefacts"]["onnx"]["path"]), load_external_data=False)
        assert non_standard_ops(proto) == set()
    weights = sum(np.asarray(v).nbytes for v in base[3].variables)
    variables = os.path.join(RunFolder(base[1]).export_dir, base[2]["artefacts"]["saved_model"]["path"], "variables")
    stored = sum(os.path.getsize(os.path.join(variables, name)) for name in os.listdir(variables))
    assert weights <= stored < 1.5 * weights  # the weights once (not also as the Keras variables)
    assert minilm[1]["model"]["max_length"] == 12  # sentence-transformers' max_seq_length
    assert base[2]["model"]["max_length"] == 40  # the position table


@pytest.mark.parametrize("runtime,quantization", RUNTIMES)
def test_embed_matches_keras_in_every_format(exported, runtime, quantization):
    from tfzoo.runtimes import load_runtime

    workdir, report, model, tokenizer = exported
    ids, lengths, mask, want = _keras(model, tokenizer, EMBED_TEXTS, report["model"]["max_length"])
    got = load_runtime(workdir, runtime, quantization=quantization).embed(ids, lengths)
    cosines = _cosines(got["sentence_embedding"], want["sentence_embedding"])
    assert sorted(got) == sorted(want)
    if quantization == "none":
        assert cosines.min() >= 0.99999
        assert np.abs(got["sequence_output"] - want["sequence_output"])[mask].max() < 1e-4
        if "pooled_output" in want:
            assert np.abs(got["pooled_output"] - want["pooled_output"]).max() < 1e-4
    else:
        assert cosines.min() >= 0.99


def test_tflite_embed_matches_transformers_mean_pooling(base):
    """The whole chain: Hugging Face BertModel -> convert -> export -> TFLite, against torch itself."""
    from tfzoo.runtimes import load_runtime

    torch_model, workdir, report, model, tokenizer = base
    ids, lengths, mask, _ = _keras(model, tokenizer, EMBED_TEXTS, 40)
    with torch.no_grad():
        hidden = torch_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(np.int64)))
    hidden = hidden.last_hidden_state.numpy()
    pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    got = load_runtime(workdir, "tflite").embed(ids, lengths)["sentence_embedding"]
    assert _cosines(got, pooled).min() >= 0.99999


def test_serving_default_takes_text_in_a_fresh_saved_model_load(exported):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (registers the in-graph tokenizer's ops)

    workdir, report, model, tokenizer = exported
    path = os.path.join(RunFolder(workdir).export_dir, report["artefacts"]["saved_model"]["path"])
    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["serving_default"](texts=tf.constant(EMBED_TEXTS))
    _, _, _, want = _keras(model, tokenizer, EMBED_TEXTS, report["model"]["max_length"])
    assert _cosines(outputs["sentence_embedding"].numpy(), want["sentence_embedding"]).min() >= 0.99999
    assert report["artefacts"]["saved_model"]["load_imports"] == ["tensorflow", "tensorflow_text"]


@pytest.mark.parametrize("runtime,quantization", RUNTIMES)
def test_tfzoo_embed_runtime_gives_the_keras_cosine(base, runtime, quantization):
    workdir = base[1]
    texts = ["--text=A cat sits on the mat.", "--text=Un café, s'il vous plaît — 中国人!"]
    code, out, err = run_cli(embed_main, [f"--workdir={workdir}", "--cosine_only", *texts])
    assert code == 0, err
    keras_cosine = json.loads(out)
    flags = [f"--runtime={runtime}"] + ([f"--quantization={quantization}"] if quantization != "none" else [])
    code, out, err = run_cli(embed_main, [f"--workdir={workdir}", *flags, *texts])
    assert code == 0, err
    result = json.loads(out)
    assert result["dim"] == 32 and len(result["embeddings"]) == 2
    assert abs(result["cosine"] - keras_cosine) < (1e-5 if quantization == "none" else 1e-2)


def test_embed_cli_and_runtime_errors_are_one_line(base, tmp_path):
    from tfzoo.runtime_errors import RuntimeInputError
    from tfzoo.runtimes import load_runtime

    workdir = base[1]
    code, _, err = run_cli(embed_main, [f"--workdir={workdir}", "--runtime=onnx", "--quantization=int8", "--text=a"])
    assert code == 2 and err == "error: --quantization=int8 is a TFLite variant: use it with --runtime=tflite\n"
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(embed_main, [f"--workdir={tmp_path / 'empty'}", "--runtime=tflite", "--text=a"])
    assert code == 2 and err.startswith("error: no export in ") and err.count("\n") == 1
    runtime = load_runtime(workdir, "onnx")
    with pytest.raises(RuntimeInputError, match="does not generate; use embed"):
        runtime.generate([[2, 5]], [2], 4)
    with pytest.raises(RuntimeInputError, match="at most max_sequence_length=40"):
        runtime.embed(np.ones((1, 41), np.int32), [41])
    with pytest.raises(RuntimeInputError, match="lengths must be in"):
        runtime.embed([[4, 9, 5]], [4])
    with pytest.raises(RuntimeInputError, match="no classify signature"):
        runtime.classify([[4, 9, 5]], [3])


def test_bad_input_is_one_line_and_writes_nothing(base, capsys):
    from export.__main__ import main as export_main
    from tfzoo.generate import main as generate_main

    workdir = base[1]
    before = sorted(os.listdir(workdir))
    for flags, message in (
        (["--formats=litertlm"], "--formats=litertlm carries decoder-only models"),
        (["--max_length=41"], "--max_length=41 exceeds the model's max_sequence_length=40"),
        (["--max_length=1"], "--max_length must be an integer >= 2"),
        (["--quantization=none,int4"], "--quantization=int4 is built for generative models"),
    ):
        with pytest.raises(SystemExit) as exit_:
            export_main([f"--workdir={workdir}", *flags])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("\n") == 1, err
        assert sorted(os.listdir(workdir)) == before  # no staging folder left, export/ untouched
    code, _, err = run_cli(generate_main, [f"--workdir={workdir}", "--prompt=hi"])
    assert code == 2 and "it does not generate; use python -m tfzoo.embed" in err and err.count("\n") == 1


def test_classifier_exports_classify_and_masked_lm_its_backbone(base, tmp_path_factory):
    from transformers import BertForMaskedLM

    from tfzoo.convert_files import write_workdir
    from tfzoo.models.bert import BertClassifier
    from tfzoo.runtimes import load_runtime

    _, workdir, _, encoder, tokenizer = base
    classifier = BertClassifier(encoder, num_classes=3)
    classifier.build()
    config = json.load(open(RunFolder(workdir).config_path, encoding="utf-8"))
    classify_dir = str(tmp_path_factory.mktemp("out") / "classify")
    write_workdir(classify_dir, {**config, "model": "bert_classify"}, tokenizer, classifier)
    report = _export(classify_dir, formats=["tflite", "onnx"], quantization=["none"])
    assert report["model"]["signatures"] == ["embed", "classify"] and report["model"]["num_classes"] == 3
    ids, lengths, mask, _ = _keras(classifier, tokenizer, EMBED_TEXTS[:5], 40)
    want = np.asarray(classifier({"token_ids": ids, "padding_mask": mask}))
    for runtime in ("tflite", "onnx"):
        assert np.abs(load_runtime(classify_dir, runtime).classify(ids, lengths) - want).max() < 1e-4
        assert report["artefacts"][runtime]["parity"]["logits_max_diff"] < 1e-4

    source = str(tmp_path_factory.mktemp("mlm"))
    _checkpoint(source, BertForMaskedLM, seed=3, **SMALL).tie_weights()
    mlm_dir = str(tmp_path_factory.mktemp("out") / "mlm")
    convert_bert(source, mlm_dir)
    report = _export(mlm_dir, formats=["onnx"])
    assert report["model"]["head"] == "masked_lm (not exported)" and report["model"]["signatures"] == ["embed"]
    assert report["model"]["pooled_output"] is False
    assert sorted(report["artefacts"]["onnx"]["signatures"]["embed"]["outputs"]) == [
        "sentence_embedding",
        "sequence_output",
    ]


def test_a_failed_conversion_leaves_the_previous_export_and_no_staging(base, monkeypatch):
    import export.tflite_export
    from export.errors import ExportError
    from export.pipeline import export_workdir

    workdir = base[1]
    report_path = RunFolder(workdir).report_path
    before = (sorted(os.listdir(workdir)), open(report_path, encoding="utf-8").read())

    def fail(*args, **kwargs):
        raise ExportError("TFLite conversion with builtin ops only failed (none): ops that need Flex: tf.Made")

    monkeypatch.setattr(export.tflite_export, "convert_tflite", fail)
    with pytest.raises(ExportError, match="tf.Made"):
        export_workdir(workdir, formats=["saved_model", "tflite"], log=lambda line: None)
    assert (sorted(os.listdir(workdir)), open(report_path, encoding="utf-8").read()) == before


@pytest.mark.parametrize("runtime", ["saved_model", "tflite", "onnx"])
def test_segment_ids_reach_the_exported_graph(base, runtime):
    from tfzoo.runtimes import load_runtime

    _, workdir, _, model, tokenizer = base
    ids, lengths, mask, _ = _keras(model, tokenizer, EMBED_TEXTS[:4], 40)
    segments = (np.arange(ids.shape[1])[None, :] >= lengths[:, None] // 2).astype(np.int32) * mask  # a second half
    want = np.asarray(model({"token_ids": ids, "padding_mask": mask, "segment_ids": segments})["sequence_output"])
    exported = load_runtime(workdir, runtime)
    got = exported.embed(ids, lengths, segments)["sequence_output"]
    assert np.abs(got - want)[mask].max() < 1e-4
    zeros = exported.embed(ids, lengths)["sequence_output"]  # no segment_ids: zeros, one sentence
    assert np.abs(zeros - want)[mask].max() > 1e-3


def test_embed_cli_runs_tflite_and_onnx_without_tensorflow(base):
    """`tfzoo.embed --runtime=tflite|onnx` in a fresh process: ai_edge_litert / onnxruntime and numpy only."""
    import subprocess
    import sys

    workdir = base[1]
    code = (
        "import json, sys\n"
        "from tfzoo.embed import main\n"
        "for runtime in ('tflite', 'onnx'):\n"
        f"    main(['--workdir={workdir}', '--runtime=' + runtime, '--cosine_only', '--text=a cat', '--text=café'])\n"
        "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    *cosines, imported = result.stdout.split()
    assert json.loads(imported) == [] and len(cosines) == 2
    assert abs(float(cosines[0]) - float(cosines[1])) < 1e-5
