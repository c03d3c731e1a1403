"""Attention encoder-decoder with a joint CTC head (hybrid CTC/attention, Watanabe et al. 2017).

The Conformer encoder (shared with conformer.py) feeds both a linear CTC head, which is this
model's `forward` (so greedy/beam CTC decoding, validation and checkpoints work as for every
model), and a Transformer decoder trained with label-smoothed cross-entropy. The trainer adds
`decoder_loss` to the CTC loss (`--ctc_weight`). The searches over the decoder (`--decoder
attention`, and `--decoder joint` with the CTC head's prefix scores) are in ../decoding.py; they
call the decoder one position at a time through `memory_keys_values` and `decoder_step`. The 2019 official baseline was a GRU
seq2seq with attention; this is its modern form.

`forward(..., return_encoding=True)` also returns the encoder output, which the caller passes
to `decoder_loss` and the searches: the encoder runs once per batch whichever uses it.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .conformer import ConformerConfig, ConformerEncoder, self_condition_feedback
from .frontend import length_mask

SOS_EOS = 0  # the CTC blank id never occurs in a transcript, so the decoder uses it for start and end


@dataclass
class AttentionConfig(ConformerConfig):
    decoder_layers: int = 2
    label_smoothing: float = 0.1
    max_target_length: int = 512


class AttentionEncoderDecoder(nn.Module):
    def __init__(self, config: AttentionConfig, n_mels: int, vocab_size: int):
        super().__init__()
        self.config = config
        d = config.d_model
        self.encoder = ConformerEncoder(config, n_mels)
        self.ctc_head = nn.Linear(d, vocab_size)
        self.feedback = self_condition_feedback(config, vocab_size)
        self.embed = nn.Embedding(vocab_size, d)
        self.positions = nn.Embedding(config.max_target_length + 1, d)
        layer = nn.TransformerDecoderLayer(d, config.heads, d * config.ff_mult, config.dropout,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.decoder_layers, norm=nn.LayerNorm(d))
        self.out = nn.Linear(d, vocab_size)
        # The decoder's residual branches start at zero, as the encoder's do (conformer.py): a random
        # cross-attention sent the encoder large, meaningless gradients that drowned CTC's, and in
        # bench/overfit.py greedy CTC was still at CER 0.96 after 174 updates on 64 utterances; with
        # zero-started branches it memorised them in 138 (docs/models.md, "Can each model learn?").
        for layer in self.decoder.layers:
            for out in (layer.self_attn.out_proj, layer.multihead_attn.out_proj, layer.linear2):
                nn.init.zeros_(out.weight)
                nn.init.zeros_(out.bias)

    def output_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder.output_lengths(feature_lengths)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, return_encoding: bool = False,
                intermediate: bool = False):
        """CTC log-probabilities (B, T', V) and output lengths (B,); with `return_encoding`, also
        the encoder output (B, T', d_model) that `decoder_loss` and the searches take; with
        `intermediate`, last the CTC log-probabilities of the middle encoder block (same head)."""
        condition = self.condition if self.feedback is not None else None
        memory, out_lengths, *middle = self.encoder(feats, lengths, intermediate=intermediate, condition=condition)
        log_probs = self.ctc_head(memory).float().log_softmax(-1)
        outputs = (log_probs, out_lengths, memory) if return_encoding else (log_probs, out_lengths)
        if intermediate:
            outputs += (self.ctc_head(middle[0]).float().log_softmax(-1),)
        return outputs

    def condition(self, x):  # self-conditioned CTC: the middle block's CTC distribution, fed back
        return x + self.feedback(self.ctc_head(x).softmax(-1))

    def decoder_logits(self, tokens, memory, memory_lengths):
        t = tokens.size(1)
        x = self.embed(tokens) + self.positions(torch.arange(t, device=tokens.device).clamp(max=self.config.max_target_length))
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tokens.device), 1)
        x = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=~length_mask(memory_lengths, memory.size(1)))
        return self.out(x)

    # Incremental decoding for search: the same layers as `self.decoder` (pre-norm, eval mode), fed one
    # position per step; keys and values of earlier positions and of the memory are computed once.
    def memory_keys_values(self, memory):
        """Per decoder layer, the cross-attention keys and values of `memory`, each (N, heads, T, d / heads)."""
        d = memory.size(-1)
        out = []
        for layer in self.decoder.layers:
            attn = layer.multihead_attn
            k, v = F.linear(memory, attn.in_proj_weight[d:], attn.in_proj_bias[d:]).chunk(2, dim=-1)
            out.append((_split_heads(k, attn.num_heads), _split_heads(v, attn.num_heads)))
        return out

    def decoder_step(self, units, position, cache, memory_kv, memory_mask):
        """Next-unit logits (N, V) after each row's newest unit (N,) at `position`.

        cache: per layer, self-attention keys and values of the earlier positions (None at the
        first step); the new position's are appended in place. memory_mask: (N, T) True on frames.
        Equals `decoder_logits(...)[:, -1]` on the whole prefix, at the cost of one position.
        """
        x = self.embed(units)[:, None] + self.positions.weight[min(position, self.config.max_target_length)]
        d = x.size(-1)
        for i, (layer, (mem_k, mem_v)) in enumerate(zip(self.decoder.layers, memory_kv)):
            attn = layer.self_attn
            q, k, v = (_split_heads(y, attn.num_heads) for y in
                       F.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1))
            if cache[i] is not None:
                k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            x = x + attn.out_proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))
            attn = layer.multihead_attn
            q = _split_heads(F.linear(layer.norm2(x), attn.in_proj_weight[:d], attn.in_proj_bias[:d]), attn.num_heads)
            y = F.scaled_dot_product_attention(q, mem_k, mem_v, attn_mask=memory_mask[:, None, None, :])
            x = x + attn.out_proj(_merge_heads(y))
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        return self.out(self.decoder.norm(x[:, 0]))

    def decoder_loss(self, memory: torch.Tensor, memory_lengths: torch.Tensor, targets: torch.Tensor,
                     target_lengths: torch.Tensor) -> torch.Tensor:
        """Label-smoothed cross-entropy of the decoder given the encoding (B, T', d) and its lengths (B,).

        targets: concatenated unit ids (as for CTC); target_lengths: (B,).
        """
        rows = torch.split(targets, target_lengths.tolist())
        b, n = len(rows), int(target_lengths.max()) + 1
        inputs = torch.full((b, n), SOS_EOS, dtype=torch.long, device=targets.device)
        labels = torch.full((b, n), -100, dtype=torch.long, device=targets.device)
        for i, row in enumerate(rows):
            inputs[i, 1:len(row) + 1] = row
            labels[i, :len(row)] = row
            labels[i, len(row)] = SOS_EOS
        logits = self.decoder_logits(inputs, memory, memory_lengths)
        return F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100,
                               label_smoothing=self.config.label_smoothing)


def _split_heads(x, heads):
    """(N, T, d) -> (N, heads, T, d / heads)"""
    return x.view(x.size(0), x.size(1), heads, -1).transpose(1, 2)


def _merge_heads(x):
    """(N, heads, T, d / heads) -> (N, T, d)"""
    return x.transpose(1, 2).flatten(2)
