"""The encoder the Transformer, BERT and the ViT share: bidirectional blocks (+ a position bias) -> final norm.

Each model embeds its own inputs (tokens, tokens + segments, image patches)
and hands the stack the embedded sequence (B, T, C). Like `DecoderStack`, the
stack is not a Keras layer: its layers are attributes of the owning model
(`<prefix>blocks`, `<prefix>position_bias`, and `final_norm` or
`<prefix>norm`), so the weights keep the model's names.
"""

from __future__ import annotations

from tfzoo.layers.positions import build_position_layers
from tfzoo.layers.stack_layers import make_stack_layers
from tfzoo.layers.transformer_encoder_block import TransformerEncoderBlock


class EncoderStack:
    """Bidirectional encoder blocks sharing one position bias, then a final norm with pre-norm blocks.

    Args:
        owner: keras.Layer. The model or layer whose attributes the layers become.
        hidden_dim: int. Width of the encoded sequence.
        **stack_arguments: the arguments of `stack_layers.make_stack_layers`
            (`num_layers`, `num_heads`, `intermediate_dim`, `position`, `dropout`,
            `activation`, `norm_first`, `layer_norm_epsilon`, and optionally
            `prefix` ("" -> `blocks`, `position_bias`, `final_norm`; "encoder_" ->
            `encoder_blocks`, ...), `block_name`, `kernel_initializer`).

    Example:
    >>> import keras, numpy as np
    >>> owner = keras.layers.Layer()
    >>> stack = EncoderStack(owner, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
    ...     position="relative", dropout=0.0, activation="gelu", norm_first=True, layer_norm_epsilon=1e-5)
    >>> tuple(stack(np.zeros((1, 5, 8), "float32"), np.arange(5)[None]).shape)
    (1, 5, 8)
    """

    def __init__(self, owner, *, hidden_dim: int, **stack_arguments):
        self.hidden_dim = hidden_dim
        self.position_bias, self.blocks, self.final_norm = make_stack_layers(
            owner, TransformerEncoderBlock, bidirectional=True, **stack_arguments
        )

    def build(self, hidden_shape=None) -> None:
        """Builds the bias, the blocks and the norm for inputs of `hidden_shape` (default (None, None, C))."""
        hidden_shape = hidden_shape or (None, None, self.hidden_dim)
        build_position_layers(self.position_bias)
        for block in self.blocks:
            block.build(hidden_shape)
        if self.final_norm is not None:
            self.final_norm.build(hidden_shape)

    def __call__(self, x, positions=None, attention_mask=None, training=None, scores=None):
        """Encodes x (B, T, C) at `positions` (1, T) with keys masked by `attention_mask` (B, 1, 1, T).

        With `scores` (a list), each block's self-attention weights (B, H, T, T) are appended to it.
        """
        bias = None if self.position_bias is None else self.position_bias(positions, positions)
        for block in self.blocks:
            out = block(
                x,
                positions=positions,
                attention_mask=attention_mask,
                attention_bias=bias,
                training=training,
                return_attention_scores=scores is not None,
            )
            if scores is not None:
                out, weights = out
                scores.append(weights)
            x = out
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x
