"""Edge app: an exported `.tflite` model with its `hf_tokenizer.json` and `report.json`, run with numpy,
ai_edge_litert and tokenizers only. `apps/edge/json_files.py` (the report reader) is shared by all the apps.

    python -m apps.edge --model runs/gpt_char/export/gpt.tflite --prompt "def " --max_new_tokens 64

See `apps/edge/__main__.py` for the flags and docs/apps.md for measured speed.
"""
