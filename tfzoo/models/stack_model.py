"""What every token model shares: the architecture arguments, their checks and defaults.

GPT, the Transformer, the Captioner and the BERT encoder all are stacks of
Transformer blocks over a vocabulary. `StackModel` takes the arguments they
share, checks them once (sizes, heads, position type, pad id) and keeps them
as attributes; each model's own `__init__` adds only what is particular to it
(its extra arguments, its defaults in `DEFAULTS`, its position types in
`POSITIONS`, and its layers).
"""

from __future__ import annotations

import keras

from tfzoo.layers.decoder_stack import DecoderStack
from tfzoo.layers.norms import check_norm
from tfzoo.layers.positions import POSITION_TYPES
from tfzoo.models.arguments import (
    ArgumentsConfig,
    check_heads,
    check_pad_id,
    check_position,
    check_positive_arguments,
    stack_arguments,
)

SIZE_ARGUMENTS = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_sequence_length")


class StackModel(ArgumentsConfig, keras.Model):
    """Base of the zoo's token models (not used on its own).

    Args:
        vocabulary_size: int. Number of token ids.
        num_layers: int. Number of blocks (per stack).
        num_heads: int. Attention heads per block.
        hidden_dim: int. Width of the residual stream; divisible by `num_heads`.
        intermediate_dim: int. Hidden size of each feed-forward.
        max_sequence_length: int. Longest input the model accepts (and the
            size of a learned position table); longer inputs raise ValueError.
        position: str. One of the model's `POSITIONS` ("learned", "sinusoidal",
            "relative", "rotary", "alibi"). None for the model's default.
        dropout: float. Dropout rate. Defaults to 0.
        activation: str. Feed-forward activation: "gelu" (exact), "gelu_tanh",
            "relu", "swiglu". None for the model's default.
        norm_first: bool. Pre-norm blocks plus a final norm when True, post-norm
            when False. None for the model's default.
        layer_norm_epsilon: float. Defaults to 1e-5.
        use_bias: bool. Biases in the blocks' projections and layer norms (and
            the final norm). False is nanoGPT's and PaLM's choice. Defaults to True.
        norm: str. "layer" (layer norm) or "rms" (RMS norm without bias, T5's). Defaults to "layer".
        scale_queries: bool. Attention logits scaled by 1/sqrt(head_dim); T5 does not
            scale them. Defaults to True.
        head_dim: int, optional. Width of each attention head; None for
            hidden_dim / num_heads (flan-T5-small: 6 heads of 64 over 512).
        pad_id: int. The padding token id, in [0, vocabulary_size). Defaults to 0.

    Example:
    >>> from tfzoo.models.gpt import GPT
    >>> GPT(vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
    ...     max_sequence_length=8).position
    'learned'
    """

    POSITIONS: tuple[str, ...] = POSITION_TYPES
    DEFAULTS = {"position": "learned", "activation": "gelu", "norm_first": True}

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        max_sequence_length: int,
        position: str | None = None,
        dropout: float = 0.0,
        activation: str | None = None,
        norm_first: bool | None = None,
        layer_norm_epsilon: float = 1e-5,
        use_bias: bool = True,
        norm: str = "layer",
        scale_queries: bool = True,
        head_dim: int | None = None,
        pad_id: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        position = self.DEFAULTS["position"] if position is None else position
        activation = self.DEFAULTS["activation"] if activation is None else activation
        norm_first = self.DEFAULTS["norm_first"] if norm_first is None else norm_first
        arguments = locals()
        check_positive_arguments(arguments, SIZE_ARGUMENTS)
        check_heads(hidden_dim, num_heads, head_dim)
        check_position(position, self.POSITIONS)
        check_pad_id(pad_id, vocabulary_size)
        check_norm(norm)
        self.keep_arguments(arguments)
        self.head_dim = head_dim or hidden_dim // num_heads

    def stack_arguments(self, *extra: str) -> dict:
        """The block-stack arguments of this model (`arguments.STACK_ARGUMENTS`) plus the attributes `extra`."""
        return stack_arguments(self, *extra)

    def decoder_arguments(self) -> dict:
        """What a `DecoderStack` of this model takes from its arguments."""
        return self.stack_arguments("vocabulary_size", "max_sequence_length", "tie_embeddings")

    def make_cross_attending_decoder(
        self, what: str, scale_embeddings: bool = True, scale_decoder_output: bool = False
    ) -> DecoderStack:
        """The decoder of an encoder-decoder: `decoder_*` layers that cross-attend to a memory.

        Vaswani et al.: token embeddings ~ hidden_dim**-0.5, multiplied by
        sqrt(hidden_dim) on lookup, so tokens and sinusoids have the same scale
        and the tied logits start small (`scale_embeddings`). T5 instead scales
        the decoder's output by hidden_dim**-0.5 before the tied projection
        (`scale_decoder_output`). `what` names the tokens in length errors.
        """
        return DecoderStack(
            self,
            **self.decoder_arguments(),
            what=what,
            prefix="decoder_",
            cross_attention=True,
            scale_embeddings=scale_embeddings,
            scale_output=scale_decoder_output,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=self.hidden_dim**-0.5),
        )
