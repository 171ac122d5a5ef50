"""The export pipeline: a trained workdir to SavedModel (TF Serving), TFLite and ONNX artefacts.

- `python -m export --workdir=DIR` (`export/__main__.py`) writes `DIR/export/`;
  the layout and the report are described in `export/pipeline.py`.
- `tfzoo.runtimes.load_runtime(DIR, runtime)` runs the artefacts through one
  small interface (`generate`, `prefill`, `decode`; `encode` for the
  encoder-decoder `Transformer` and the image `Captioner`); it lives in tfzoo
  (`export` depends on `tfzoo`, never the reverse) and `export.runtimes`
  re-exports it. The report's schema is `tfzoo.export_report`.

Importing this package imports nothing heavy; TensorFlow is imported by the
modules that need it.
"""
