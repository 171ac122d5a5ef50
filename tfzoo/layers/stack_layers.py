"""What the encoder and decoder stacks share: their position bias, their blocks and their final norm.

The layers are made as attributes of the owning model (`<prefix>position_bias`,
`<prefix>blocks` with blocks named `<prefix>block_<i>`, and `final_norm` or
`<prefix>norm`), so the weights keep the model's own names.
"""

from __future__ import annotations

from keras import ops

from tfzoo.layers.norms import make_norm
from tfzoo.layers.positions import make_position_bias


def source_positions(token_ids):
    """Positions 0..T-1 of a whole sequence (B, T) as int32 (1, T).

    Example:
    >>> import numpy as np
    >>> source_positions(np.zeros((2, 3))).numpy().tolist()
    [[0, 1, 2]]
    """
    return ops.expand_dims(ops.arange(ops.shape(token_ids)[1], dtype="int32"), 0)


def make_stack_layers(
    owner,
    block_class,
    *,
    num_layers: int,
    num_heads: int,
    intermediate_dim: int,
    position: str,
    dropout: float,
    activation: str,
    norm_first: bool,
    layer_norm_epsilon: float,
    bidirectional: bool,
    use_bias: bool = True,
    norm: str = "layer",
    scale_queries: bool = True,
    head_dim: int | None = None,
    prefix: str = "",
    block_name: str | None = None,
    kernel_initializer=None,
    **block_options,
) -> tuple:
    """Sets the position bias (or None), the blocks and the final norm (or None) on `owner`; returns them.

    Args:
        owner: keras.Layer. The model whose attributes the layers become (its dtype policy is theirs).
        block_class: the block type (`TransformerEncoderBlock` or `TransformerDecoderBlock`).
        num_layers, num_heads, intermediate_dim, position, dropout, activation,
        norm_first, layer_norm_epsilon: the owner's arguments.
        bidirectional: bool. Whether the position bias looks both ways (encoders).
        use_bias: bool. Biases in the blocks' projections and norms and in the final norm.
        norm: str. "layer" or "rms" (`tfzoo.layers.norms`), in the blocks and the final norm.
        scale_queries: bool. The blocks scale their attention logits by 1/sqrt(head_dim).
        head_dim: int, optional. Width of each attention head; None for hidden_dim / num_heads.
        prefix: str. Attribute prefix ("", "encoder_", "decoder_").
        block_name: str. Name stem of the blocks; defaults to `<prefix>block`.
        kernel_initializer: initializer of the block kernels; None for the blocks' default.
        **block_options: more block arguments (`cross_attention=True`).

    Example:
    >>> import keras
    >>> from tfzoo.layers.transformer_encoder_block import TransformerEncoderBlock
    >>> owner = keras.layers.Layer()
    >>> bias, blocks, norm = make_stack_layers(owner, TransformerEncoderBlock, num_layers=2, num_heads=2,
    ...     intermediate_dim=8, position="relative", dropout=0.0, activation="gelu", norm_first=True,
    ...     layer_norm_epsilon=1e-5, bidirectional=True)
    >>> bias.name, [block.name for block in owner.blocks], owner.final_norm.name
    ('position_bias', ['block_0', 'block_1'], 'final_norm')
    """
    policy = owner.dtype_policy
    bias_name = f"{prefix}position_bias"
    bias = make_position_bias(position, num_heads=num_heads, bidirectional=bidirectional, dtype=policy, name=bias_name)
    setattr(owner, bias_name, bias)
    if position == "rotary":
        block_options["rotary"] = True
    if kernel_initializer is not None:
        block_options["kernel_initializer"] = kernel_initializer
    name = block_name or f"{prefix}block"
    blocks = [
        block_class(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            activation=activation,
            norm_first=norm_first,
            layer_norm_epsilon=layer_norm_epsilon,
            use_bias=use_bias,
            norm=norm,
            scale_queries=scale_queries,
            head_dim=head_dim,
            **block_options,
            dtype=policy,
            name=f"{name}_{i}",
        )
        for i in range(num_layers)
    ]
    setattr(owner, f"{prefix}blocks", blocks)
    norm_name = f"{prefix}norm" if prefix else "final_norm"
    final_norm = None
    if norm_first:
        final_norm = make_norm(norm, epsilon=layer_norm_epsilon, use_bias=use_bias, dtype=policy, name=norm_name)
    setattr(owner, norm_name, final_norm)
    return bias, getattr(owner, f"{prefix}blocks"), final_norm
