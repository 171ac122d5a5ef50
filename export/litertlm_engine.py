"""Running a `.litertlm` bundle in LiteRT-LM's own engine: greedy parity against Keras, its benchmark.

`EngineRunner` wraps `litert_lm.Engine` (CPU): the engine tokenizes the prompt with the bundle's
tokenizer, splits it into the bundle's prefill chunks, decodes with its own sampler (the bundle's
`LlmMetadata`: greedy) and writes text. `measure_litertlm` compares that text with the Keras
model's greedy tokens on the export's parity prompts; `engine_benchmark` runs `litert_lm.Benchmark`.
The engine's caches (XNNPACK packed weights) go to a scratch folder, never beside the bundle.

Example:
>>> with EngineRunner("runs/gpt_char/export/gpt.litertlm", max_length=128) as runner:  # doctest: +SKIP
...     runner.generate("def ", max_new_tokens=16)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np


class EngineRunner:
    """A `.litertlm` bundle in `litert_lm.Engine` (CPU): its own tokenizer, prefill/decode loop and sampler.

    Args:
        path: str. The `.litertlm` file.
        max_length: int. Most tokens of prompt plus output (the engine's `max_num_tokens`).
        cache_dir: str or None. Where the engine may write its caches (XNNPACK weights); by
            default a temporary folder, removed by `close`. Never beside the bundle.

    Example:
    >>> with EngineRunner("runs/gpt_char/export/gpt.litertlm", max_length=128) as runner:  # doctest: +SKIP
    ...     runner.generate("def ", max_new_tokens=16)
    """

    def __init__(self, path: str, *, max_length: int, cache_dir: str | None = None):
        import litert_lm  # noqa: PLC0415 (optional extra)

        litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
        self._temporary = tempfile.mkdtemp(prefix="litertlm-cache-") if cache_dir is None else None
        try:
            self.engine = litert_lm.Engine(
                path,
                backend=litert_lm.Backend.CPU(),
                max_num_tokens=int(max_length),
                cache_dir=cache_dir or self._temporary,
            )
        except RuntimeError:
            self._remove_temporary()
            raise

    def generate(self, text: str, max_new_tokens: int) -> str:
        """The engine's continuation of `text` (no prompt template), at most `max_new_tokens` tokens."""
        session = self.engine.create_session(apply_prompt_template=False, max_output_tokens=int(max_new_tokens))
        try:
            session.run_prefill([text])
            responses = session.run_decode()
        finally:
            session.close()
        return responses.texts[0] if responses.texts else ""

    def tokenize(self, text: str) -> list[int]:
        """The bundle's tokenizer: ids of `text`."""
        return [int(i) for i in self.engine.tokenize(text)]

    def detokenize(self, ids: Sequence[int]) -> str:
        """The bundle's tokenizer: text of `ids`."""
        return self.engine.detokenize([int(i) for i in ids])

    def close(self) -> None:
        self.engine.close()
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        if self._temporary:
            shutil.rmtree(self._temporary, ignore_errors=True)

    def __enter__(self) -> EngineRunner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def measure_litertlm(
    runner: EngineRunner, prompts: dict[str, Any], reference: dict[str, Any], info: dict[str, Any], quantization: str
) -> dict[str, Any]:
    """The engine's greedy continuation of each parity prompt against the Keras model's greedy tokens.

    The engine takes text: each prompt's ids are decoded with the bundle's tokenizer, which must
    give back the same ids. Its continuation must be the text of the Keras tokens (the ending eos
    excluded, which the engine does not write), for fp32; quantized bundles record their agreement.

    Returns:
        `{"generate": {"greedy": {"identical", "token_agreement", "rows": [...]}}, "passed", "failures"}`;
        `token_ids` of a row are the engine's text tokenized again by the bundle.

    Example:
    >>> with EngineRunner("export/gpt.litertlm", max_length=32) as runner:  # doctest: +SKIP
    ...     measure_litertlm(runner, parity_run.prompts, parity_run.ref, info, "none")["passed"]
    True
    """
    want = reference["generate"]["greedy"]
    eos_ids = {int(i) for i in info["eos_ids"]}
    failures, rows = [], []
    agree = total = 0
    for row, length in enumerate(np.asarray(prompts["lengths"]).tolist()):
        prompt_ids = np.asarray(prompts["token_ids"])[row, :length].tolist()
        text = runner.detokenize(prompt_ids)
        if runner.tokenize(text) != prompt_ids:
            failures.append(f"prompt {row}: the bundle's tokenizer does not give back the prompt's ids")
        end = int(np.asarray(want["sequence_lengths"])[row])
        new_ids = np.asarray(want["sequences"])[row, length:end].tolist()
        if new_ids and new_ids[-1] in eos_ids:
            new_ids = new_ids[:-1]
        got = runner.generate(text, int(prompts["max_new_tokens"]))
        got_ids = runner.tokenize(got)
        identical = got == runner.detokenize(new_ids)
        agree += sum(a == b for a, b in zip(got_ids, new_ids))
        total += max(len(new_ids), len(got_ids))
        rows.append({"prompt_length": length, "identical": identical, "text": got, "token_ids": got_ids})
        if not identical and quantization == "none":
            failures.append(f"greedy, prompt {row} ({length} tokens): the engine's tokens differ from Keras")
    agreement = agree / total if total else 1.0
    greedy = {"identical": all(r["identical"] for r in rows), "token_agreement": round(agreement, 6), "rows": rows}
    return {"generate": {"greedy": greedy}, "passed": not failures, "failures": failures}


def engine_benchmark(path: str, *, max_length: int, cache_dir: str) -> dict[str, Any]:
    """LiteRT-LM's own benchmark of a bundle (`litert_lm.Benchmark`, CPU): prefill and decode tokens per second.

    It prefills `max_length // 2` tokens, then decodes up to the rest of `max_length`; the engine's
    caches go to `cache_dir`.

    Example:
    >>> engine_benchmark("export/gpt.litertlm", max_length=32, cache_dir="/tmp")["decode_tokens"]  # doctest: +SKIP
    15
    """
    import litert_lm  # noqa: PLC0415 (optional extra)

    litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
    prefill = max(1, int(max_length) // 2)
    decode = max(1, int(max_length) - prefill - 1)
    info = litert_lm.Benchmark(
        model_path=path,
        backend=litert_lm.Backend.CPU(),
        prefill_tokens=prefill,
        decode_tokens=decode,
        max_num_tokens=int(max_length),
        cache_dir=cache_dir,
    ).run()
    return {
        "backend": "cpu",
        "prefill_tokens": int(info.last_prefill_token_count),
        "prefill_tokens_per_second": round(float(info.last_prefill_tokens_per_second), 1),
        "decode_tokens": int(info.last_decode_token_count),
        "decode_tokens_per_second": round(float(info.last_decode_tokens_per_second), 1),
        "time_to_first_token_s": round(float(info.time_to_first_token_in_second), 6),
        "init_time_s": round(float(info.init_time_in_second), 6),
    }
