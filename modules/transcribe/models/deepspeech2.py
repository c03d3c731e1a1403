"""DeepSpeech2-style CTC acoustic model: 2-D conv front end, bidirectional GRUs, linear head."""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .frontend import ConvFrontEnd


@dataclass
class DeepSpeech2Config:
    conv_channels: int = 32
    time_stride: int = 6     # output frame = 60 ms for characters; main.py makes it 4 (40 ms) for jamo
    rnn_hidden: int = 256
    rnn_layers: int = 2      # 2 beat 3 at CPU budgets: test CER 0.236 vs 0.271 in 6 min (docs/models.md)
    dropout: float = 0.1
    # (frequency, time) kernel and stride of the two convolutions; None = the kit's
    # 3x3 kernels with strides (2, 2), (2, time_stride / 2). KoSpeech (2022 baseline):
    # kernels ((41, 11), (21, 11)), strides ((2, 2), (2, 1)).
    conv_kernels: Optional[list] = None
    conv_strides: Optional[list] = None


class DeepSpeech2(nn.Module):
    def __init__(self, config: DeepSpeech2Config, n_mels: int, vocab_size: int):
        super().__init__()
        self.config = config
        self.front_end = ConvFrontEnd(n_mels, config.conv_channels, config.time_stride,
                                      config.conv_kernels, config.conv_strides)
        self.rnn = nn.GRU(self.front_end.output_dim, config.rnn_hidden, num_layers=config.rnn_layers,
                          bidirectional=True, batch_first=True,
                          dropout=config.dropout if config.rnn_layers > 1 else 0.0)
        self.norm = nn.LayerNorm(2 * config.rnn_hidden)
        self.head = nn.Linear(2 * config.rnn_hidden, vocab_size)

    def output_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        return self.front_end.output_lengths(feature_lengths)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        """(B, T, n_mels) features -> (B, T', V) log-probabilities and (B,) output lengths."""
        x, out_lengths = self.front_end(feats, lengths)
        # Packing keeps the backward direction from reading padding, so a file
        # decodes the same whatever else is in its batch.
        # The GRUs run in fp32 whatever the autocast: CUDA autocast casts cuDNN RNNs to fp16 even
        # under bf16, where no loss scaling is applied, and the gradients entering them are mostly
        # below fp16's smallest normal (median 2e-6 on a 1,580-s batch; issue 20). The convolutions
        # before and the head after still run in the autocast dtype.
        with torch.autocast(x.device.type, enabled=False):
            packed = pack_padded_sequence(x.float(), out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.size(1))
        return self.head(self.norm(x)).log_softmax(-1), out_lengths
