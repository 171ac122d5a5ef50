"""Web app: the exported ONNX model in the browser with onnxruntime-web; `python -m apps.web.serve` serves it."""
