"""Training: `train_and_evaluate(config, workdir)` and the pieces it is made of.

- `validate`: `resolve_config` (checks a run config; no TensorFlow import).
- `schedule`: `WarmupCosineDecay`. `optimizer`: `make_optimizer` (AdamW).
- `losses`: `MaskedSparseCrossEntropy` (trained), `MaskedTokenCrossEntropy` (reported).
- `checkpoints`: `Checkpointer`. `callbacks`: metrics.jsonl/TensorBoard, checkpoints,
  early stopping. `strategy`: `make_strategy` (one device, mirrored, multi-worker, TPU).
  `sampling`: `sample_completions`. `init_from`: `load_initial_weights` (fine-tuning).
- `tasks`: `make_task` (lm / seq2seq / classification / masked_lm / caption). The task
  classes live in `task` (base), `text_tasks`, `seq2seq_tasks`, `vision_tasks`; their
  batching in `task_batches`, the decoded metrics (exact match, BLEU) in `decoded_metrics`.
- `train_lib`: `train_and_evaluate`; `tfzoo/train.py` is its command line.
- `keras_patches`: the work-arounds for Keras 3.15 bugs (the one module that patches Keras internals).

Import the modules directly (this package imports nothing, so the command
line can reject a bad config before TensorFlow loads).
"""
