"""The sample rate of the zoo's speech data and its padding of int16 waveforms.

Shared by the speech specs (`tfzoo.data.speech_data`: `speech:numbers`, `speech:DIR`;
`tfzoo.data.speech_tfds`: `tfds:`), so that neither imports the other.

Example:
>>> import numpy as np
>>> audio, lengths = pad_int16([np.ones(3, np.int16), np.ones(1, np.int16)])
>>> audio.tolist(), lengths.tolist()
([[1, 1, 1], [1, 0, 0]], [3, 1])
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000  # Hz: every waveform the zoo's speech models read or write


def pad_int16(waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """`(audio, lengths)`: int16 waveforms right-padded with zeros to the longest (N, max_samples), and (N,)."""
    lengths = np.array([w.size for w in waves], np.int32)
    padded = np.zeros((len(waves), int(lengths.max(initial=1))), np.int16)
    for row, w in enumerate(waves):
        padded[row, : w.size] = w
    return padded, lengths
