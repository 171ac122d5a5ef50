"""Shared pytest set-up: quiet TensorFlow, the TF backend, deterministic seeds, and which tests are `slow`.

`slow` (registered in setup.cfg) marks the subprocess-heavy tests: soak, multi-worker, kill -9 resume,
the browser and the serving stand-ins, the edge app in a fresh venv, full exports, CLI trainings and
fuzzing that spawns exports. They are named here and nowhere else. `pytest` runs everything (the README's
test command, `.ci/run`); `pytest -m "not slow"` is the quick developer loop.
Shared fixtures: `chat_exported` (one chat model's export for the edge app's and the web page's chat tests).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras
import pytest
from hypothesis import settings

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# Every test of these files is slow.
SLOW_FILES = {
    "test_soak.py",  # 500 calls per runtime on exported models
    "test_multi_worker.py",  # worker processes on a loopback cluster
    "test_resume_kill.py",  # kill -9 of a training process, then resume
    "test_resume_kill_workers.py",  # kill -9 of a worker process
    "test_apps_web.py",  # an ONNX export, the web server and headless Chromium
    "test_apps_serving.py",  # a SavedModel export, gRPC/REST stand-ins for TF Serving, a fresh process
    "test_apps_embed.py",  # two BERT exports, the edge app and the serving stand-ins, fresh processes
    "test_fuzz_exported.py",  # hostile inputs to exported models, each in a child process
    "test_export.py",  # full exports in every format
    "test_export_seq2seq.py",
    "test_export_captioner.py",
    "test_export_asr.py",  # a tiny speech recognizer exported in every format
    "test_export_video.py",  # a VideoCaptioner export in every format
    "test_export_tts.py",  # a tiny speech synthesizer exported in every format
    "test_export_bert.py",  # BERT exports in every format
    "test_export_tokenizers.py",
    "test_convert_gpt2_export.py",
    "test_convert_t5_export.py",  # two T5 exports in every format
    "test_decoding_export.py",  # decode loops converted to TFLite and ONNX
    "test_train_cli.py",  # training CLI processes
    "test_bench_decode.py",  # a conversion, an export and a child process per runtime
}
# file -> fixtures that make a test slow (an export, a fresh venv, a CLI training in a subprocess).
SLOW_FIXTURES = {
    "test_apps_edge.py": {"exported", "clean_venv", "sample_exported", "asr_exported", "chat_exported"},
    "test_train.py": {"run"},
    "test_export_int4.py": {"int4_exported"},  # an fp32, int8 and int4 TFLite export
    "test_stop_ban.py": {"exported"},  # a SavedModel, TFLite and ONNX conversion
}
# file -> slow tests (function names; every parametrization).
SLOW_TESTS = {
    "test_train_tasks.py": {"test_translation_cli_writes_exact_match_and_bleu"},
    "test_generate_cli.py": {"test_module_entry_point"},
    "test_launch.py": {"test_an_unreachable_worker_ends_in_bounded_time", "test_launch_fails_when_its_workers_fail"},
    "test_train_strategy.py": {"test_mirrored_over_two_cpus_matches_one_device"},
    "test_export_inputs.py": {"test_sampling_gives_the_same_tokens_in_every_runtime"},  # an export in every format
    "test_t5_finetune.py": {"test_fine_tuning_starts_from_the_converted_t5_lowers_the_loss_and_generates"},  # training
    "test_speech_synthesizer.py": {"test_tiny_training_run_and_speak"},  # a training run, then tfzoo.speak
    "test_speech_tfds.py": {"test_a_tiny_run_trains_on_a_label_only_tfds_dataset"},  # a training run
}


def _check_names() -> None:
    """A renamed file, fixture or test must not silently leave the slow list (and the quick loop slow)."""
    for name in SLOW_FILES | set(SLOW_FIXTURES) | set(SLOW_TESTS):
        if not os.path.isfile(os.path.join(TESTS_DIR, name)):
            raise pytest.UsageError(f"tests/conftest.py marks tests/{name} slow, but there is no such file")
    with open(__file__, encoding="utf-8") as file:
        shared = file.read()  # this file's fixtures (e.g. chat_exported) count for the files that use them
    for table in (SLOW_FIXTURES, SLOW_TESTS):
        for name, functions in table.items():
            with open(os.path.join(TESTS_DIR, name), encoding="utf-8") as file:
                source = file.read()
            absent = sorted(
                f
                for f in functions
                if f"def {f}(" not in source and not (table is SLOW_FIXTURES and f"def {f}(" in shared and f in source)
            )
            if absent:
                raise pytest.UsageError(f"tests/conftest.py marks {', '.join(absent)} of tests/{name} slow: not found")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    _check_names()
    for item in items:
        name = item.path.name
        function = getattr(item, "originalname", item.name)
        if (
            name in SLOW_FILES
            or SLOW_FIXTURES.get(name, set()) & set(getattr(item, "fixturenames", ()))
            or function in SLOW_TESTS.get(name, ())
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def chat_exported(tmp_path_factory) -> dict:
    """A perturbed tiny `chat:byte` GPT exported to TFLite and ONNX (`export_helpers.make_chat_export`): the edge
    app's chat (tests/test_apps_edge.py) and the web page's (tests/test_apps_web.py) run on the same export."""
    from export_helpers import make_chat_export  # TensorFlow only for the tests that use it

    return make_chat_export(tmp_path_factory.mktemp("chat") / "run")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


# Hypothesis: the same examples on every run and no saved examples replayed (CI must not fail on a draw a
# local run never saw);
# no per-example deadline (this 2-core machine is often loaded). HYPOTHESIS_PROFILE=explore draws anew.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
