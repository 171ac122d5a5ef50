"""Attention building blocks (Keras 3, TensorFlow backend).

Every layer here converts unchanged with XLA, the TFLite builtins and tf2onnx.
"""

from tfzoo.layers.alibi_bias import AlibiBias
from tfzoo.layers.feed_forward import FeedForward
from tfzoo.layers.kv_cache import init_cache, update_cache
from tfzoo.layers.learned_position_embedding import LearnedPositionEmbedding
from tfzoo.layers.masks import causal_mask, padding_mask
from tfzoo.layers.multi_head_attention import MultiHeadAttention
from tfzoo.layers.relative_position_bias import RelativePositionBias
from tfzoo.layers.rotary_embedding import RotaryEmbedding
from tfzoo.layers.scaled_dot_product_attention import scaled_dot_product_attention
from tfzoo.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from tfzoo.layers.token_embedding import TokenEmbedding
from tfzoo.layers.transformer_decoder_block import TransformerDecoderBlock
from tfzoo.layers.transformer_encoder_block import TransformerEncoderBlock

__all__ = [
    "AlibiBias",
    "FeedForward",
    "LearnedPositionEmbedding",
    "MultiHeadAttention",
    "RelativePositionBias",
    "RotaryEmbedding",
    "SinusoidalPositionEncoding",
    "TokenEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "causal_mask",
    "init_cache",
    "padding_mask",
    "scaled_dot_product_attention",
    "update_cache",
]
