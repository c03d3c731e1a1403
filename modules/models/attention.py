"""Attention encoder-decoder with a joint CTC head (hybrid CTC/attention, Watanabe et al. 2017).

The Conformer encoder (shared with conformer.py) feeds both a linear CTC head, which is this
model's `forward` (so greedy/beam CTC decoding, validation and checkpoints work as for every
model), and a Transformer decoder trained with label-smoothed cross-entropy. The trainer adds
`decoder_loss` to the CTC loss (`--ctc_weight`); `--decoder attention` decodes with the decoder's
beam search, length-normalised. The 2019 official baseline was a GRU seq2seq with attention;
this is its modern form.

`decoder_loss` and `beam_search` read the encoder output of the latest `forward` call, so the
encoder runs once per batch whichever loss or decoder uses it.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .conformer import ConformerConfig, ConformerEncoder
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
        self.embed = nn.Embedding(vocab_size, d)
        self.positions = nn.Embedding(config.max_target_length + 1, d)
        layer = nn.TransformerDecoderLayer(d, config.heads, d * config.ff_mult, config.dropout,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.decoder_layers, norm=nn.LayerNorm(d))
        self.out = nn.Linear(d, vocab_size)
        self.last_encoding = None

    def output_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder.output_lengths(feature_lengths)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        """CTC log-probabilities (B, T', V) and output lengths; keeps the encoding for the decoder."""
        memory, out_lengths = self.encoder(feats, lengths)
        self.last_encoding = (memory, out_lengths)
        return self.ctc_head(memory).float().log_softmax(-1), out_lengths

    def _decode_logits(self, tokens, memory, memory_lengths):
        t = tokens.size(1)
        x = self.embed(tokens) + self.positions(torch.arange(t, device=tokens.device).clamp(max=self.config.max_target_length))
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tokens.device), 1)
        x = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=~length_mask(memory_lengths, memory.size(1)))
        return self.out(x)

    def decoder_loss(self, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        """Label-smoothed cross-entropy of the decoder given the latest encoding.

        targets: concatenated unit ids (as for CTC); target_lengths: (B,).
        """
        memory, memory_lengths = self.last_encoding
        rows = torch.split(targets, target_lengths.tolist())
        b, n = len(rows), int(target_lengths.max()) + 1
        inputs = torch.full((b, n), SOS_EOS, dtype=torch.long, device=targets.device)
        labels = torch.full((b, n), -100, dtype=torch.long, device=targets.device)
        for i, row in enumerate(rows):
            inputs[i, 1:len(row) + 1] = row
            labels[i, :len(row)] = row
            labels[i, len(row)] = SOS_EOS
        logits = self._decode_logits(inputs, memory, memory_lengths)
        return F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100,
                               label_smoothing=self.config.label_smoothing)

    @torch.no_grad()
    def beam_search(self, beam_width: int = 4, length_penalty: float = 1.0) -> list:
        """Best unit-id list per utterance of the latest encoding; scores are log P / length^penalty."""
        memory, memory_lengths = self.last_encoding
        results = []
        for b in range(memory.size(0)):
            n = int(memory_lengths[b])
            mem = memory[b:b + 1, :n]
            max_len = min(n, self.config.max_target_length)  # CTC's bound: at most one unit per frame
            beams = [([SOS_EOS], 0.0)]
            finished = []
            for _ in range(max_len):
                tokens = torch.tensor([seq for seq, _ in beams], device=memory.device)
                logits = self._decode_logits(tokens, mem.expand(len(beams), -1, -1),
                                             memory_lengths[b:b + 1].expand(len(beams)).clamp(max=n))
                log_probs = logits[:, -1].float().log_softmax(-1)
                scores = torch.tensor([s for _, s in beams], device=memory.device)[:, None] + log_probs
                top, idx = scores.flatten().topk(min(beam_width, scores.numel()))
                candidates = []
                for score, flat in zip(top.tolist(), idx.tolist()):
                    row, unit = divmod(flat, log_probs.size(1))
                    seq = beams[row][0] + [unit]
                    if unit == SOS_EOS:
                        finished.append((seq[1:-1], score / max(len(seq) - 1, 1) ** length_penalty))
                    else:
                        candidates.append((seq, score))
                beams = candidates
                best_done = max((s for _, s in finished), default=-float("inf"))
                # Stop once no open hypothesis can still beat the best finished one (scores only fall).
                if not beams or max(s for _, s in beams) / max_len ** length_penalty < best_done:
                    break
            if not finished:
                finished = [(seq[1:], s / max(len(seq) - 1, 1) ** length_penalty) for seq, s in beams]
            results.append(max(finished, key=lambda f: f[1])[0])
        return results
