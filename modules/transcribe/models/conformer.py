"""Conformer-CTC: the shared conv front end, then Conformer blocks (Gulati et al. 2020), then a linear head.

Each block is macaron-style: half-step feed-forward, self-attention with rotary
(relative) positions, depthwise convolution module, half-step feed-forward.
Padding frames are masked out of attention and zeroed before every convolution,
so a file decodes the same whatever else is in its batch.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .frontend import ConvFrontEnd, length_mask

# (d_model, heads, layers, ff_mult) per named size; explicit options override them.
SIZES = {
    "small": (144, 4, 6, 4),    # ~3 M parameters: trains on 2 CPU cores
    "medium": (256, 4, 12, 4),  # ~19 M: one GPU
    "large": (512, 8, 17, 4),   # ~104 M: a large GPU, hundreds of hours of data
}


@dataclass
class ConformerConfig:
    size: str = "small"
    d_model: int = 0          # 0 = from `size`
    heads: int = 0
    layers: int = 0
    ff_mult: int = 0
    conv_kernel: int = 15
    conv_channels: int = 32   # front end
    time_stride: int = 4      # output frame = 40 ms
    dropout: float = 0.1
    # Self-conditioned CTC (Nozaki & Komatsu 2021): the middle block's CTC distribution, projected back,
    # is added to its output, so the upper blocks refine a first guess; changes inference too.
    self_condition: bool = False

    def __post_init__(self):
        if self.size not in SIZES:
            raise ValueError(f"unknown conformer size {self.size!r}; choose from: {', '.join(SIZES)}")
        d, h, n, f = SIZES[self.size]
        self.d_model, self.heads = self.d_model or d, self.heads or h
        self.layers, self.ff_mult = self.layers or n, self.ff_mult or f


def rotary_tables(t: int, dim: int, device, dtype):
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim))
    angles = torch.arange(t, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x, cos, sin):
    """Rotate channel pairs of (B, H, T, D) by position: dot products then depend on relative offset only."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class FeedForward(nn.Module):
    def __init__(self, d, mult, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d * mult), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(d * mult, d), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class SelfAttention(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask, rotary):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :],
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.out(y.transpose(1, 2).reshape(b, t, d)))


class ConvModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv over time, norm, SiLU, pointwise conv."""

    def __init__(self, d, kernel, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pointwise_in = nn.Linear(d, 2 * d)
        self.depthwise = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.mid_norm = nn.LayerNorm(d)  # LayerNorm, not BatchNorm: padding never enters the statistics
        self.pointwise_out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        x = F.glu(self.pointwise_in(self.norm(x)), dim=-1) * mask[..., None]
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        return self.drop(self.pointwise_out(F.silu(self.mid_norm(x))))


class ConformerBlock(nn.Module):
    def __init__(self, c: ConformerConfig):
        super().__init__()
        self.ff1 = FeedForward(c.d_model, c.ff_mult, c.dropout)
        self.attn = SelfAttention(c.d_model, c.heads, c.dropout)
        self.conv = ConvModule(c.d_model, c.conv_kernel, c.dropout)
        self.ff2 = FeedForward(c.d_model, c.ff_mult, c.dropout)
        self.norm = nn.LayerNorm(c.d_model)
        # Every residual branch starts at zero, so each block starts as LayerNorm(x) and the head
        # first sees the front end's features; the branches grow from there. With random branch
        # outputs, six blocks of LayerNorm(x + f(x)) buried those features under noise and CTC sat
        # on the blank plateau for hundreds of updates (docs/models.md, "Can each model learn?").
        for out in (self.ff1.net[-2], self.attn.out, self.conv.pointwise_out, self.ff2.net[-2]):
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)

    def forward(self, x, mask, rotary):
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(x, mask, rotary)
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class ConformerEncoder(nn.Module):
    """(B, T, n_mels) features -> (B, T', d_model) encodings and (B,) lengths; shared with the attention model."""

    def __init__(self, config: ConformerConfig, n_mels: int):
        super().__init__()
        c = config
        if c.d_model % c.heads or (c.d_model // c.heads) % 2:
            raise ValueError(f"d_model {c.d_model} must split into {c.heads} heads of even size")
        self.front_end = ConvFrontEnd(n_mels, c.conv_channels, c.time_stride)
        self.proj = nn.Sequential(nn.Linear(self.front_end.output_dim, c.d_model), nn.Dropout(c.dropout))
        self.blocks = nn.ModuleList(ConformerBlock(c) for _ in range(c.layers))
        self.head_dim = c.d_model // c.heads
        self.middle_block = max(c.layers // 2 - 1, 0)  # 6 blocks: the 3rd's output

    def output_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        return self.front_end.output_lengths(feature_lengths)

    def forward(self, feats, lengths, intermediate: bool = False, condition=None):
        """With `intermediate`, also the middle block's output (intermediate CTC, Lee & Watanabe 2021);
        `condition(x)`, if given, replaces the middle block's output for the blocks above it (self-conditioning)."""
        x, out_lengths = self.front_end(feats, lengths)
        x = self.proj(x)
        mask = length_mask(out_lengths, x.size(1))
        rotary = rotary_tables(x.size(1), self.head_dim, x.device, x.dtype)
        middle = None
        for i, block in enumerate(self.blocks):
            x = block(x, mask, rotary)
            if i == self.middle_block:
                middle = x
                if condition is not None:
                    x = condition(x)
        return (x, out_lengths, middle) if intermediate else (x, out_lengths)


class Conformer(nn.Module):
    def __init__(self, config: ConformerConfig, n_mels: int, vocab_size: int):
        super().__init__()
        self.config = config
        self.encoder = ConformerEncoder(config, n_mels)
        self.head = nn.Linear(config.d_model, vocab_size)
        self.feedback = self_condition_feedback(config, vocab_size)

    def condition(self, x):
        return x + self.feedback(self.head(x).softmax(-1))

    def output_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder.output_lengths(feature_lengths)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, intermediate: bool = False):
        """(B, T, n_mels) features -> (B, T', V) log-probabilities and (B,) output lengths; with
        `intermediate`, also the log-probabilities of the middle block's output through the same head."""
        condition = self.condition if self.feedback is not None else None
        if not intermediate:
            x, out_lengths = self.encoder(feats, lengths, condition=condition)
            return self.head(x).float().log_softmax(-1), out_lengths
        x, out_lengths, middle = self.encoder(feats, lengths, intermediate=True, condition=condition)
        return self.head(x).float().log_softmax(-1), out_lengths, self.head(middle).float().log_softmax(-1)


def self_condition_feedback(config: ConformerConfig, vocab_size: int):
    """The projection of the middle block's CTC distribution back to d_model (self-conditioned CTC), or
    None. It starts at zero, like every residual branch here, so training starts from the plain model."""
    if not config.self_condition:
        return None
    feedback = nn.Linear(vocab_size, config.d_model)
    nn.init.zeros_(feedback.weight)
    nn.init.zeros_(feedback.bias)
    return feedback
