"""Probe: does a trained synthesizer's text -> waveform graph convert to SavedModel, TFLite builtins and ONNX?

    python bench/tts_export_probe.py --workdir=runs/tts_numbers [--out=/tmp/tts_export_probe]

Traces `SpeechSynthesizer.synthesize` (character ids [batch, max_sequence_length] in; waveform,
lengths, log-mel, durations out) as one `tf.function`, saves it as a SavedModel with a `synthesize`
signature (the model's variables tracked, not the Keras model, whose own serving trace expects the
training inputs), converts the function with TFLite builtins only and with tf2onnx (opset 17), runs whatever
converted on two sentences and prints one JSON object: per format `ok`, the largest waveform
difference from TensorFlow, or the first line of the error. A probe for the export that is not built
yet (docs/tasks.md), not an export.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np


def first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())[:400]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a trained speech_synthesizer run")
    parser.add_argument("--out", default="/tmp/tts_export_probe", help="scratch folder (replaced)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import tensorflow as tf  # noqa: PLC0415 (TensorFlow after the arguments)

    from tfzoo.run_folder import RunFolder  # noqa: PLC0415
    from tfzoo.speak import encode_texts  # noqa: PLC0415

    folder = RunFolder(args.workdir)
    model, tokenizer = folder.load_model(), folder.load_tokenizer()
    ids = encode_texts(tokenizer, ["call forty two", "set volume to nine"], int(model.max_sequence_length))
    spec = tf.TensorSpec([None, ids.shape[1]], tf.int32, name="token_ids")
    synthesize = tf.function(lambda token_ids: model.synthesize(token_ids), input_signature=[spec])
    reference = synthesize(tf.constant(ids))["waveform"].numpy()
    shutil.rmtree(args.out, ignore_errors=True)
    module = tf.Module()
    module.weights = list(model.variables)
    module.synthesize = synthesize
    saved = os.path.join(args.out, "saved_model")
    tf.saved_model.save(module, saved, signatures={"synthesize": synthesize.get_concrete_function()})
    results = {}
    loaded = tf.saved_model.load(saved).signatures["synthesize"]
    waveform = loaded(token_ids=tf.constant(ids))["waveform"].numpy()
    results["saved_model"] = {"ok": True, "max_waveform_difference": float(np.abs(waveform - reference).max())}
    try:
        # From the concrete function (outputs `Identity*`, no signature): converted from the SavedModel's
        # signature instead, the file ran but predicted zero durations (not yet understood).
        converter = tf.lite.TFLiteConverter.from_concrete_functions([synthesize.get_concrete_function()], model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        interpreter = Interpreter(model_content=converter.convert())
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], ids.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], ids)
        interpreter.invoke()
        outputs = [interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()]
        waveform = next(v for v in outputs if v.shape == reference.shape)
        results["tflite"] = {"ok": True, "max_waveform_difference": float(np.abs(waveform - reference).max())}
    except Exception as error:  # noqa: BLE001 (a probe reports any failure)
        results["tflite"] = {"ok": False, "error": first_line(error)}
    try:
        import onnxruntime  # noqa: PLC0415
        import tf2onnx  # noqa: PLC0415

        proto, _ = tf2onnx.convert.from_function(synthesize, input_signature=[spec], opset=17)
        session = onnxruntime.InferenceSession(proto.SerializeToString())
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"token_ids": ids})))
        waveform = next(v for k, v in outputs.items() if "waveform" in k and v.ndim == 2)
        results["onnx"] = {"ok": True, "max_waveform_difference": float(np.abs(waveform - reference).max())}
    except Exception as error:  # noqa: BLE001 (a probe reports any failure)
        results["onnx"] = {"ok": False, "error": first_line(error)}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
