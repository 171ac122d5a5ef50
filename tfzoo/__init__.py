"""tfzoo: attention models in Keras 3 (TensorFlow backend), from `model.fit` to a phone."""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
