"""Speech recognizer (log-mel front end, conv subsampler, Transformer encoder-decoder) on spoken numbers.

`python -m tfzoo.train --config=configs/asr_numbers.py --workdir=DIR` synthesises
8000 training and 400 held-out utterances with espeak-ng (number phrases, digit
strings and short commands; 16 kHz; cached under `data_dir`), and reports the
word error rate (`wer`, jiwer) and `exact_match` of greedy transcripts of the
held-out utterances, spoken in voices and with texts that training never saw.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Data.
    config.dataset = "speech:numbers"  # `speech:numbers` (espeak-ng, generated, cached) or `speech:DIR` (.wav + .txt).
    config.data_dir = ""  # Where the generated audio is cached ("" = ~/.cache/tfzoo).
    config.num_train = 8000  # Generated training utterances (training voices and texts).
    config.num_validation = 400  # Held-out utterances (other voices, other texts).
    config.max_audio_seconds = 3.0  # Longest waveform; the model's audio input is this long.
    config.tokenizer = "wordpiece"  # Whole transcript words (the vocabulary is ~60 words).
    config.vocabulary_size = 100  # Upper bound of the learned vocabulary.
    config.seq_len = 10  # Transcript tokens incl. the start token (the longest transcript has 7 words).
    config.batch_size = 32  # Global batch size (utterances).
    # Model.
    config.model = "speech_recognizer"  # Name in tfzoo.models.registry.MODELS (task kind: asr).
    config.num_mel_bins = 80  # Mel filters of the in-graph front end (25 ms frames every 10 ms).
    config.num_layers = 3  # Encoder blocks, and as many decoder blocks.
    config.num_heads = 4  # Attention heads; must divide hidden_dim.
    config.hidden_dim = 128  # Width of the residual streams (and of the subsampler's convolutions).
    config.intermediate_dim = 512  # Width of the feed-forward hidden layer.
    config.position = "learned"  # learned or sinusoidal (encoder steps and transcript tokens).
    config.activation = "gelu"  # Feed-forward activation: gelu, relu or swiglu.
    config.norm_first = True  # Pre-norm (True) or post-norm (False) blocks.
    config.tie_embeddings = True  # Output projection shares the token embedding.
    config.dropout = 0.1  # Dropout rate in attention, feed-forward and embeddings.
    # SpecAugment (training only; never in the validation pass or an export).
    config.freq_masks = 2  # Mel bands zeroed per utterance.
    config.freq_mask_bins = 12  # Widest band (of num_mel_bins).
    config.time_masks = 2  # Time spans zeroed per utterance.
    config.time_mask_frames = 10  # Longest span (10 ms frames; a word lasts ~30).
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
    config.eval_every = 600  # Steps between evaluations (and checkpoints).
    config.eval_steps = 10  # Validation batches per evaluation (for val_loss).
    config.eval_decode_examples = 0  # Held-out utterances transcribed for wer/exact_match per evaluation; 0 = all.
    config.early_stopping_patience = 0  # Evaluations without val improvement before stopping; 0 = off.
    config.sample_prompts = ()  # Unused: the samples are transcripts of the first held-out utterances.
    config.sample_length = 10  # Unused (transcripts stop at <eos> or seq_len).
    # Execution.
    config.seed = 0  # Seeds initialization, the data order and the generated audio.
    config.distribution_strategy = "auto"  # auto, one_device, mirrored, multi_worker or tpu; docs/distributed.md.
    config.num_cpu_devices = 1  # Logical CPU devices to create (for `mirrored` without GPUs).
    config.mixed_precision = "none"  # none, bfloat16 or float16 (with loss scaling).
    config.jit_compile = True  # Compile the train/eval steps with XLA.
    return config
