"""VideoCaptioner (tubelet ViT encoder + Transformer decoder) describing the embedded shape clips.

`python -m tfzoo.train --config=configs/video_captioner_shapes.py` trains on
20000 generated clips of 8 frames of 32x32 (two shapes, each moving, changing
colour, appearing or disappearing, one after the other; captions name both
events in time order) and reports `exact_match`, `bleu` and `pair_exact_match`
(both captions of a clip and its time-swapped twin right) of the model's greedy
captions of 1000 held-out clips, of held-out event combinations, in metrics.jsonl.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "video:shapes"  # `video:shapes` (32x32 frames) or `video:shapes:SIZE`.
    config.num_frames = 8  # Frames per clip (at least 6).
    config.num_train = 20000  # Generated training clips.
    config.num_validation = 1000  # Held-out clips: time-swapped pairs of held-out event combinations.
    config.tokenizer = "wordpiece"  # `wordpiece` (whole caption words), `sentencepiece`, `char` or `byte`.
    config.vocabulary_size = 100  # Upper bound of the learned vocabulary: enough for every caption word whole.
    config.seq_len = 12  # Caption tokens incl. the start token (the longest caption has 11 words).
    config.batch_size = 64  # Global batch size (clips), split over the strategy's replicas.
    # Model.
    config.model = "video_captioner"  # Name in tfzoo.models.registry.MODELS (task kind: caption).
    config.patch_size = 4  # Patch height and width in pixels; divides the frame size.
    config.tubelet_size = 8  # Consecutive frames per encoder token; divides num_frames (8: each token spans the clip).
    config.num_layers = 2  # Encoder blocks, and as many decoder blocks.
    config.num_heads = 4  # Attention heads; must divide hidden_dim.
    config.hidden_dim = 128  # Width of the residual streams.
    config.intermediate_dim = 256  # Width of the feed-forward hidden layer.
    config.position = "learned"  # learned or sinusoidal (2-D for patches plus 1-D for time, 1-D for the caption).
    config.activation = "gelu"  # Feed-forward activation: gelu, relu or swiglu.
    config.norm_first = True  # Pre-norm (True) or post-norm (False) blocks.
    config.tie_embeddings = True  # Output projection shares the caption token embedding.
    config.dropout = 0.0  # Dropout rate in attention, feed-forward and embeddings.
    # Optimization.
    config.train_steps = 3000  # Optimizer steps in total; a multiple of eval_every.
    config.learning_rate = 1e-3  # Peak learning rate, reached after the warmup.
    config.min_learning_rate = 1e-5  # Learning rate at the end of the cosine decay.
    config.warmup_steps = 200  # Steps of linear warmup from 0.
    config.weight_decay = 0.01  # Decoupled AdamW decay on kernels (not biases/norms/embeddings).
    config.beta1 = 0.9  # AdamW first-moment decay.
    config.beta2 = 0.98  # AdamW second-moment decay.
    config.clip_norm = 1.0  # Global gradient-norm clipping; 0 turns it off.
    config.label_smoothing = 0.0  # Smoothing of the training loss (metrics never smooth).
    # Evaluation, stopping, sampling.
    config.eval_every = 500  # Steps between evaluations (and checkpoints).
    config.eval_steps = 10  # Validation batches per evaluation (for val_loss).
    config.eval_decode_examples = 0  # Held-out clips captioned for exact_match/bleu per evaluation; 0 = all.
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ()  # Unused: the samples are captions of the first held-out clips.
    config.sample_length = 12  # Unused by the captioner (captions stop at <eos> or seq_len).
    # Execution.
    config.seed = 0  # Seeds initialization, the data order and the generated clips.
    config.distribution_strategy = "auto"  # auto, one_device, mirrored, multi_worker or tpu; docs/distributed.md.
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # none, bfloat16 or float16 (with loss scaling).
    config.jit_compile = True  # Compile the train/eval steps with XLA.
    return config
