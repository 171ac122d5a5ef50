"""Speech synthesizer (FastSpeech-style, Griffin-Lim in the graph) on the spoken numbers, one espeak-ng voice.

`python -m tfzoo.train --config=configs/tts_numbers.py --workdir=DIR` speaks
the `speech:numbers` texts word by word with espeak-ng's `en-us` voice (the
word clips are cached under `data_dir`; a sentence is its words with 40 ms
gaps, so each character's duration in frames is known), trains characters ->
log-mel frames, and reports the mel L1 against the espeak-ng target
(`train_loss`, `val_loss`, `mel_l1`: natural-log mel power, teacher-forced
durations) and `duration_error` (predicted durations) on held-out sentences.
`python -m tfzoo.speak --workdir=DIR --text="call forty two" --out=x.wav` speaks;
`bench/tts_closed_loop.py` has the zoo's speech recognizer transcribe the
held-out sentences it speaks.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "tts:numbers"  # The speech:numbers texts spoken word by word by one voice (tfzoo.data.tts_data).
    config.data_dir = ""  # Where the word clips are cached ("" = ~/.cache/tfzoo).
    config.tts_voice = "en-us"  # espeak-ng voice of the targets.
    config.tts_speed = 200  # Words per minute (the longest sentence lasts 2.6 s).
    config.max_frames = 280  # Longest utterance in 10 ms frames (the data's longest is 263); the output width.
    config.tokenizer = "char"  # Letters and the space.
    config.seq_len = 40  # Characters per sentence, padded (the longest has 38).
    config.batch_size = 32  # Global batch size (sentences).
    # Model.
    config.model = "speech_synthesizer"  # Name in tfzoo.models.registry.MODELS (task kind: tts).
    config.num_mel_bins = 80  # The speech recognizer's mel front end (25 ms frames every 10 ms).
    config.num_layers = 3  # Encoder blocks over characters, and as many blocks over frames.
    config.num_heads = 2  # Attention heads; must divide hidden_dim.
    config.hidden_dim = 128  # Width of the residual streams.
    config.intermediate_dim = 512  # Width of the feed-forward hidden layer.
    config.position = "learned"  # learned or sinusoidal (characters and frames).
    config.activation = "gelu"  # Feed-forward activation: gelu, relu or swiglu.
    config.norm_first = True  # Pre-norm (True) or post-norm (False) blocks.
    config.dropout = 0.1  # Dropout rate in attention, feed-forward, embeddings and the duration predictor.
    config.duration_filters = 128  # Channels of the duration predictor's convolutions.
    config.duration_loss_weight = 1.0  # Weight of the duration loss (MSE of log(1 + frames)) next to the mel L1.
    config.frames_per_step = 2  # Frames per decoder position (reduction factor): half the positions, ~2x faster.
    config.griffin_lim_iterations = 32  # Griffin-Lim rounds when synthesising (not used in training).
    # Optimization.
    config.train_steps = 2000  # Optimizer steps in total; a multiple of eval_every.
    config.learning_rate = 1e-3  # Peak learning rate, reached after the warmup.
    config.min_learning_rate = 1e-5  # Learning rate at the end of the cosine decay.
    config.warmup_steps = 200  # Steps of linear warmup from 0.
    config.weight_decay = 0.01  # Decoupled AdamW decay on kernels (not biases/norms/embeddings).
    config.beta1 = 0.9  # AdamW first-moment decay.
    config.beta2 = 0.98  # AdamW second-moment decay.
    config.clip_norm = 1.0  # Global gradient-norm clipping; 0 turns it off.
    config.label_smoothing = 0.0  # Unused (no token targets).
    # Evaluation, stopping, sampling.
    config.eval_every = 500  # Steps between evaluations (and checkpoints).
    config.eval_steps = 10  # Validation batches per evaluation (for val_loss).
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ()  # Unused: the samples are the predicted lengths of the first held-out sentences.
    # Execution.
    config.seed = 0  # Seeds initialization, the data order and the split of the texts.
    config.distribution_strategy = "auto"  # auto, one_device, mirrored, multi_worker or tpu; docs/distributed.md.
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # none, bfloat16 or float16 (with loss scaling).
    config.jit_compile = True  # Compile the train/eval steps with XLA.
    return config
