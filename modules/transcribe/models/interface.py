"""What an acoustic model is to the rest of the kit: decoding, training and `--recipe auto` ask the
model (its capability flags) or the registry (models/__init__.py), never its name or attributes.

Every model subclasses `AcousticModel` and is built as `Model(config, n_mels, vocab_size)` from
its config dataclass (`config` is kept on the model: checkpoints record `asdict(model.config)`):

    forward(feats (B, T, n_mels), lengths (B,)) -> (CTC log-probabilities (B, T', V), lengths (B,))
    output_lengths(feature_lengths (B,)) -> T' of each utterance
    unit BLANK (0) is the CTC blank; the tokenizer numbers the units after it
    has_intermediate = True: forward(..., intermediate=True) also returns the CTC log-probabilities
    of a middle block (intermediate CTC, --inter_ctc_weight)

A model with its own autoregressive decoder over the encoder output sets `has_decoder = True`
and `sos_eos` (its start/end id), and provides what `SequenceDecoder` lists: the trainer adds
`decoder_loss` to CTC's (`--ctc_weight`) and `--decoder attention|joint` search with
`memory_keys_values` and `decoder_step` (decoding.py).
"""
from typing import Optional, Protocol, runtime_checkable

import torch
from torch import nn

BLANK = 0


class AcousticModel(nn.Module):
    has_decoder: bool = False     # True: a SequenceDecoder as well (joint CTC/decoder loss, attention/joint search)
    sos_eos: Optional[int] = None  # the decoder's start and end id (models with a decoder)
    has_intermediate: bool = False  # forward(..., intermediate=True) also gives a middle block's CTC

    def output_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must say how many output frames its input gives")


@runtime_checkable
class SequenceDecoder(Protocol):
    """What a model with `has_decoder` adds (models/attention.py is one)."""

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, return_encoding: bool = False):
        """With `return_encoding`: (log-probs, lengths, encoder output (B, T', d))."""

    def decoder_loss(self, memory: torch.Tensor, memory_lengths: torch.Tensor, targets: torch.Tensor,
                     target_lengths: torch.Tensor) -> torch.Tensor:
        """The decoder's loss given the encoder output; targets concatenated as for CTC."""

    def memory_keys_values(self, memory: torch.Tensor) -> list:
        """Per decoder layer, what the search reuses of the encoder output at every step."""

    def decoder_step(self, units: torch.Tensor, position: int, cache: list, memory_kv: list,
                     memory_mask: torch.Tensor) -> torch.Tensor:
        """Next-unit logits (N, V) after each row's newest unit, at `position`."""
