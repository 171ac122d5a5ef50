"""Atomic writes: whole files or nothing, no temporaries left behind, ordinary permissions."""

import os
import stat

import pytest

from tfzoo.files import atomic_save_directory, atomic_save_model, atomic_write_bytes, atomic_write_text


def test_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_text(str(path), "old")
    atomic_write_text(str(path), "new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.bin"
    atomic_write_bytes(str(path), b"good")
    with pytest.raises(TypeError):
        atomic_write_bytes(str(path), "not bytes")  # fails while writing the temporary
    assert path.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_files_are_readable_by_others(tmp_path):
    """Apps and web servers read tokenizer.json: it must not be private to its writer (mkstemp's 0600)."""
    path = tmp_path / "tokenizer.json"
    old = os.umask(0o022)
    try:
        atomic_write_text(str(path), "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o044 == 0o044


def test_save_directory_swaps_in_a_complete_folder(tmp_path):
    target = tmp_path / "tokenizer"

    def save(directory, text):
        atomic_write_text(os.path.join(directory, "tokenizer.json"), text)

    atomic_save_directory(lambda d: save(d, "one"), str(target))
    atomic_save_directory(lambda d: save(d, "two"), str(target))
    assert (target / "tokenizer.json").read_text() == "two"
    assert sorted(os.listdir(tmp_path)) == ["tokenizer"]


def test_failed_model_and_directory_saves_leave_nothing_behind(tmp_path):
    class HalfWrittenModel:
        def save(self, path):
            with open(path, "wb") as file:
                file.write(b"half a zip")
            raise KeyboardInterrupt  # Ctrl-C in the middle of model.save

    def half_written_folder(directory):
        with open(os.path.join(directory, "vocab.txt"), "w") as file:
            file.write("half")
        raise OSError("disk full")

    with pytest.raises(KeyboardInterrupt):
        atomic_save_model(HalfWrittenModel(), str(tmp_path / "model.keras"))
    with pytest.raises(OSError, match="disk full"):
        atomic_save_directory(half_written_folder, str(tmp_path / "tokenizer"))
    assert os.listdir(tmp_path) == []
