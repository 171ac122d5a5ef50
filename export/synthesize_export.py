"""The export of a speech synthesizer (model kind `tts`): text -> waveform in SavedModel, TFLite and ONNX, with parity.

`python -m export --workdir=DIR` on a workdir whose `model.keras` is a
`SpeechSynthesizer` (`configs/tts_numbers.py`) writes the layout of the
other kinds (`export/pipeline.py`) with these signatures
(`tfzoo/kinds/tts.py`, docs/contract.md "Speech synthesis"):

- `synthesize` (every format): `token_ids` int32 [B, T] (character ids,
  right-padded, T <= `max_sequence_length`) and `lengths` int32 [B] in;
  `waveform` float32 [B, max_samples], `waveform_lengths` int32 [B], `log_mel`
  float32 [B, max_frames, num_mel_bins], `frame_lengths` int32 [B] and
  `durations` int32 [B, max_sequence_length] out. The whole model is in the
  graph: encoder, duration predictor, length regulator, frame decoder and
  Griffin-Lim (its DFTs as real cos/sin matmuls: TFLite builtins, standard ONNX).
- `serving_default` (SavedModel only): `texts` string [B] in (normalised and
  mapped to characters in the graph; characters outside the alphabet
  dropped, counted in `dropped_characters`); the `synthesize` outputs and
  `characters` int32 [B] out.

`--max_length` is the most characters per text (default and at most
`max_sequence_length`); `--strategy` and `--beam_size` do not apply; int4 is
not built for it. Parity (`export/synthesize_parity.py`): each artefact's
`synthesize` against the Keras model's `synthesize` on held-out sentences of
different lengths; the SavedModel's `serving_default` on the raw texts.

Example:
    python -m export --workdir=runs/tts_numbers
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from export import synthesize_parity
from export.embed_export import SignatureModule, write_artefacts
from export.export_module import _Untracked
from export.tokenizer_ops import TokenizerOps
from tfzoo.data.speech_data import number_words


class SynthesizeModule(SignatureModule):
    """The `synthesize` and `serving_default` signatures of a `SpeechSynthesizer` as `tf.function`s.

    Args:
        kind: the `tts` kind bound to the model (`tfzoo.kinds.kind_of(model)`).
        tokenizer: its char tokenizer, or None (no `serving_default`).
        max_length: int. Most characters per text of `serving_default`.

    Example:
    >>> from tfzoo.kinds import kind_of
    >>> from tfzoo.models.speech_synthesizer import SpeechSynthesizer
    >>> model = SpeechSynthesizer(vocabulary_size=12, num_layers=1, num_heads=2, hidden_dim=16,
    ...     intermediate_dim=32, max_sequence_length=6, max_frames=20, num_mel_bins=8, duration_filters=8)
    >>> SynthesizeModule(kind_of(model), None, max_length=6).signature_names
    ['synthesize']
    """

    def __init__(self, kind, tokenizer, *, max_length: int):
        super().__init__(kind.model, name="tfzoo_synthesize")
        self._kind = _Untracked(kind)
        self.max_length = int(max_length)
        specs = kind.signature_specs()["synthesize"]
        names = list(specs)

        def synthesize(*args):
            return kind.synthesize(dict(zip(names, args)))

        self._functions = {"synthesize": tf.function(synthesize, input_signature=list(specs.values()), autograph=False)}
        if tokenizer is not None:
            self._functions["serving_default"] = self._serving(tokenizer)
        self._track()

    def _serving(self, tokenizer):
        ops = TokenizerOps(tokenizer)
        numbers = [str(n) for n in range(1000)] + [f"{n:02d}" for n in range(100)] + [f"{n:03d}" for n in range(1000)]
        numbers = list(dict.fromkeys(numbers))  # every string of 1 to 3 ASCII digits
        initializer = tf.lookup.KeyValueTensorInitializer(
            tf.constant(numbers), tf.constant([number_words(int(n)) for n in numbers])
        )
        self.number_words = tf.lookup.StaticHashTable(initializer, default_value="")  # tracked: saved with the module
        table, kind, max_length = self.number_words, self._kind.value, self.max_length
        width, pad_id, unk_id = int(kind.model.max_sequence_length), int(tokenizer.pad_id), int(ops.unk_id)

        def serving_default(texts):
            # `tfzoo.data.tts_data.normalize_text`: lower case, words split on whitespace, 0-999 spelled out
            words = tf.strings.split(tf.strings.lower(texts, encoding="utf-8"))  # (B, None)
            flat = words.flat_values
            flat = tf.where(tf.strings.regex_full_match(flat, "[0-9]{1,3}"), table.lookup(flat), flat)
            normal = tf.strings.reduce_join(words.with_flat_values(flat), axis=1, separator=" ")  # (B,)
            ids = ops.ragged_ids(normal)  # (B, None): unknown characters -> <unk>
            known = tf.ragged.boolean_mask(ids, tf.not_equal(ids, unk_id))
            dropped = tf.cast(ids.row_lengths() - known.row_lengths(), tf.int32)
            kept = known[:, :max_length]
            lengths = tf.cast(kept.row_lengths(), tf.int32)
            token_ids = kept.to_tensor(default_value=pad_id, shape=[None, width])
            outputs = kind.synthesize({"token_ids": token_ids, "lengths": lengths})
            return {**outputs, "characters": lengths, "dropped_characters": dropped}

        spec = tf.TensorSpec([None], tf.string, name="texts")
        return tf.function(serving_default, input_signature=[spec], autograph=False)


def export_kind(trained, staging: str, formats, quantizations, max_length: int, version: int, log) -> dict[str, Any]:
    """Writes every artefact of a speech synthesizer's workdir into `staging`, measures parity, writes `report.json`."""
    model, kind = trained.model, trained.model_kind
    info = model_info(trained, kind, max_length, version)

    def reference(info):
        from tfzoo.runtimes.keras import KerasRuntime  # noqa: PLC0415 (TensorFlow only when needed)

        prompts = kind.parity_inputs(trained, max_length)
        return prompts, synthesize_parity.reference(KerasRuntime(model, info), prompts)

    return write_artefacts(
        trained,
        staging,
        formats,
        quantizations,
        info,
        module=lambda: SynthesizeModule(kind, trained.tokenizer, max_length=max_length),
        reference=reference,
        measure=synthesize_parity.measure,
        report_reference=synthesize_parity.report_reference,
        load_imports=["tensorflow"],
        log=log,
    )


def model_info(trained, kind, max_length: int, version: int) -> dict[str, Any]:
    """`report["model"]` of a synthesizer's export (docs/contract.md)."""
    model, tokenizer = trained.model, trained.tokenizer
    return {
        "name": trained.name,
        "version": version,
        "kind": kind.name,
        "model_class": type(model).__name__,
        "max_length": max_length,  # characters per text
        "max_sequence_length": trained.max_sequence_length,
        "position": trained.position,
        "pad_id": int(tokenizer.pad_id),
        "eos_ids": [int(tokenizer.eos_id)],
        "num_layers": int(model.num_layers),
        "num_heads": int(model.num_heads),
        "head_dim": int(model.head_dim),
        "hidden_dim": int(model.hidden_dim),
        "vocabulary_size": int(model.vocabulary_size),
        "tokenizer": "tokenizer.json",
        **kind.report_fields(trained.model_config, tokenizer),
    }
