"""DeepSpeech2-style CTC acoustic model: 2-D conv front end, bidirectional GRUs, linear head."""
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class DeepSpeech2Config:
    conv_channels: int = 32
    time_stride: int = 6     # output frame = 60 ms; 4 is finer but ~2x slower on CPU
    rnn_hidden: int = 256
    rnn_layers: int = 3
    dropout: float = 0.1


class ConvFrontEnd(nn.Module):
    """Two strided 3x3 convolutions over (frequency, time); frequency /4, time /time_stride."""

    def __init__(self, n_mels: int, channels: int, time_stride: int):
        super().__init__()
        if time_stride % 2:
            raise ValueError(f"time_stride must be even, got {time_stride}")
        self.strides = (2, time_stride // 2)
        self.layers = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=(2, 2), padding=1), nn.BatchNorm2d(channels), nn.Hardtanh(0, 20),
            nn.Conv2d(channels, channels, 3, stride=(2, time_stride // 2), padding=1),
            nn.BatchNorm2d(channels), nn.Hardtanh(0, 20),
        )
        self.output_dim = channels * (((n_mels + 1) // 2 + 1) // 2)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for s in self.strides:
            lengths = (lengths + 2 - 3) // s + 1  # conv arithmetic: padding 1, kernel 3
        return lengths

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        x = self.layers(feats.unsqueeze(1).transpose(2, 3))  # (B, C, F', T')
        b, c, f, t = x.shape
        return x.permute(0, 3, 1, 2).reshape(b, t, c * f), self.output_lengths(lengths).clamp(min=1, max=t)


class DeepSpeech2(nn.Module):
    def __init__(self, config: DeepSpeech2Config, n_mels: int, vocab_size: int):
        super().__init__()
        self.config = config
        self.front_end = ConvFrontEnd(n_mels, config.conv_channels, config.time_stride)
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
        packed = pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
        x, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.size(1))
        return self.head(self.norm(x)).log_softmax(-1), out_lengths
