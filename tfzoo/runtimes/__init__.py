"""Runtime adapters: the exported artefacts (and the Keras model) behind one small interface.

    runtime = load_runtime(workdir, "tflite", quantization="int8")
    sequences, sequence_lengths, scores = runtime.generate(token_ids, lengths, max_new_tokens=32)
    logits, cache = runtime.prefill(token_ids, positions, runtime.init_cache(batch_size))
    logits, cache = runtime.decode(next_ids, next_positions, cache)

Every runtime takes and returns numpy arrays: `token_ids` int (B, P)
right-padded, `lengths` int (B,); `generate` returns `sequences` int32
(B, max_length), `sequence_lengths` int32 (B,) and `scores` float32 (B,).
Knobs are keyword arguments named as in the `generate` signature
(`length_penalty`, `repetition_penalty`, `no_repeat_ngram_size`,
`temperature`, `top_k`, `top_p`, `seed`); as in `tfzoo.decoding.Generator`,
a knob that the strategy does not use is ignored. `stop_sequences` and `banned_sequences`
(lists of token-id lists; `tfzoo.decoding.sequences`) are padded to the export's shape
(`report.model.sequence_shapes`) and fed to every `generate*`; not given, all -1 (none). `strategy` picks
`generate` (the exported strategy, default) or `generate_<strategy>`.

Encoder-decoder exports (model kind `seq2seq`) take `source_ids`
(B, S) right-padded and `source_lengths` (B,) as keyword arguments of
`generate` and `encode`; captioner exports take `image` (B, H, W, C), float
in [0, 1] or uint8 (scaled by 1/255 here). For these, `token_ids`/`lengths`
(the decoder prompt) default to the start token. `encode(...)` returns the
encoder state (`encoder_output`, `cross_k_<i>`, `cross_v_<i>`, and
`source_lengths` for seq2seq), which `prefill`/`decode` take as `context`:

    context = runtime.encode(source_ids=source_ids, source_lengths=source_lengths)
    logits, cache = runtime.prefill(start_ids, positions, runtime.init_cache(batch), context)

BERT exports (model kind `encoder`) have no decode loop: `embed` runs the
`embed` signature and `classify` a classifier's (`generate` is refused):

    outputs = runtime.embed(token_ids, lengths)  # sequence_output, sentence_embedding[, pooled_output]
    logits = runtime.classify(token_ids, lengths)

`saved_model` needs TensorFlow; `tflite` needs only `ai_edge_litert` and
numpy; `onnx` only `onnxruntime` and numpy. `KerasRuntime` runs the trained
model itself through `tfzoo.decoding` (the reference of the parity checks).
"""

from tfzoo.runtime_errors import ExportReadError, RuntimeInputError
from tfzoo.runtimes.adapters import RUNTIMES, OnnxRuntime, SavedModelRuntime, TFLiteRuntime, load_runtime
from tfzoo.runtimes.base import Runtime
from tfzoo.runtimes.keras import KerasRuntime

__all__ = [
    "RUNTIMES",
    "ExportReadError",
    "KerasRuntime",
    "OnnxRuntime",
    "Runtime",
    "RuntimeInputError",
    "SavedModelRuntime",
    "TFLiteRuntime",
    "load_runtime",
]
