"""`python -m tfzoo.visualize alignment`: a speech recognizer's log-mel input with its cross-attention alignment.

The workdir holds a tiny `SpeechRecognizer` with perturbed weights (an
untrained one attends almost uniformly and repeats one token), saved the way
training saves it. The matrix drawn must have one row per written token and
one column per encoder step of the clip, each row a distribution; the PNG must
have the size the figure asks for; bad input is one line and exit 2.
"""

import os
import struct

import keras
import numpy as np
import pytest

from tfzoo import visualize
from tfzoo.data.speech_data import load_wav, write_wav
from tfzoo.data.tokenizers import build_tokenizer
from tfzoo.models.gpt import GPT
from tfzoo.models.speech_recognizer import SpeechRecognizer
from tfzoo.visualize_speech import alignment_command, alignment_figure_size, compute_alignment

MAX_SAMPLES = 16000


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as file:
        header = file.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="module")
def asr_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("asr_run")
    tokenizer = build_tokenizer("char", "one two three four five")
    model = SpeechRecognizer(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=12,
        max_audio_samples=MAX_SAMPLES,
        num_mel_bins=16,
    )
    model.build()
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(weight.numpy() + rng.normal(0.0, 0.5, weight.shape).astype("float32"))
    model.save(os.path.join(workdir, "model.keras"))
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    clip = workdir / "clip.wav"
    t = np.arange(11200) / 16000  # 0.7 s: a chirp in noise, so the mel has structure
    write_wav(str(clip), 0.3 * np.sin(2 * np.pi * (300 + 1500 * t) * t) + 0.02 * rng.standard_normal(t.size))
    return workdir, clip, keras.saving.load_model(os.path.join(workdir, "model.keras")), tokenizer


def test_alignment_matrix_rows_are_distributions_over_the_clips_encoder_steps(asr_workdir):
    workdir, clip, model, tokenizer = asr_workdir
    path, alignment = alignment_command(str(workdir), str(clip), text="two one")
    steps = int(model.memory_lengths(11200))  # 68 frames -> 34 -> 17 encoder steps
    assert alignment.matrix.shape == (len("two one") + 1, steps) == (8, 17)  # the characters, then <eos>
    np.testing.assert_allclose(alignment.matrix.sum(axis=1), 1.0, atol=1e-5)
    assert alignment.matrix.min() >= 0 and alignment.matrix.std(axis=1).min() > 1e-4  # not uniform
    assert alignment.tokens[-1] == "<eos>" and alignment.tokens[:3] == ["t", "w", "o"]
    assert alignment.log_mel.shape == (68, 16) and alignment.frame_times.shape == (68,)
    assert 0 < alignment.step_times[0] < alignment.step_times[-1] < 0.7  # mapped back into the clip
    assert path == os.path.join(str(workdir), "alignment.png")
    width, height = alignment_figure_size(8)
    assert _png_size(path) == (int(width * visualize.DPI), int(height * visualize.DPI))  # Agg truncates
    assert not [name for name in os.listdir(workdir) if ".tmp" in name]  # written atomically


def test_default_transcript_is_the_greedy_one_and_the_cli_writes_the_png(asr_workdir, capsys):
    workdir, clip, model, tokenizer = asr_workdir
    (workdir / "alignment.png").unlink(missing_ok=True)
    assert visualize.main(["alignment", "--workdir", str(workdir), "--audio", str(clip)]) == 0
    assert capsys.readouterr().out.strip() == os.path.join(str(workdir), "alignment.png")
    greedy = compute_alignment(model, tokenizer, load_wav(str(clip)))
    assert 1 <= greedy.matrix.shape[0] <= model.max_sequence_length
    np.testing.assert_allclose(greedy.matrix.sum(axis=1), 1.0, atol=1e-5)
    rows = greedy.matrix.shape[0]
    width, height = alignment_figure_size(rows)
    assert _png_size(workdir / "alignment.png") == (
        int(width * visualize.DPI),
        int(height * visualize.DPI),
    )  # Agg truncates


def test_bad_input_is_one_line_and_exit_2(asr_workdir, tmp_path, capsys):
    workdir, clip, _, _ = asr_workdir
    lm = tmp_path / "lm"
    lm.mkdir()
    gpt = GPT(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=8, max_sequence_length=8)
    gpt.build()
    gpt.save(os.path.join(lm, "model.keras"))
    (tmp_path / "noise.wav").write_bytes(b"not a wav file")
    long = tmp_path / "long.wav"
    write_wav(str(long), np.zeros(MAX_SAMPLES + 1600))
    cases = [
        (
            ["--workdir", str(lm), "--audio", str(clip)],
            "alignment needs a speech recognizer (task kind asr), not a GPT",
        ),
        (["--workdir", str(tmp_path / "none"), "--audio", str(clip)], "does not exist"),
        (["--workdir", str(workdir), "--audio", str(tmp_path / "noise.wav")], "is not a WAV file"),
        (["--workdir", str(workdir), "--audio", str(tmp_path / "missing.wav")], "does not exist"),
        (["--workdir", str(workdir), "--audio", str(long)], "lasts 1.10 s; expected at most 1 s"),
        (["--workdir", str(workdir), "--audio", str(clip), "--text", "one " * 5], "the model reads 1 to 12"),
    ]
    for args, expected in cases:
        assert visualize.main(["alignment", *args]) == 2
        error = capsys.readouterr().err
        assert expected in error and error.count("\n") == 1, error
