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
import math
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
        """Best unit-id list per utterance of the latest encoding; scores are log P / length^penalty.

        Batched: every step runs the decoder once over all open utterances' hypotheses,
        beam_width rows each (empty rows score -inf), with each utterance's memory repeated per
        row. An utterance stops at its own bound, min(its encoder length, max_target_length)
        (CTC's: at most one unit per frame), or once no open hypothesis can beat its best
        finished one; it then leaves the batch. The decoder re-reads the whole prefix each
        step (no key/value cache).
        """
        memory, memory_lengths = self.last_encoding
        k, device = beam_width, memory.device
        max_lens = memory_lengths.clamp(max=self.config.max_target_length).tolist()
        finished = [[] for _ in max_lens]          # per utterance: (unit ids, normalised score)
        ids = [i for i, n in enumerate(max_lens) if n > 0]  # utterances still searching, one state row each
        tokens = torch.full((len(ids), k, 1), SOS_EOS, dtype=torch.long, device=device)
        scores = torch.full((len(ids), k), -math.inf, device=device)
        scores[:, 0] = 0.0  # one open hypothesis, <sos>, until the first step fills the beam
        mem = None
        for step in range(max(max_lens, default=0)):
            if not ids:
                break
            if mem is None:  # the open utterances' memory, one copy per hypothesis row, cut to the longest
                lengths = memory_lengths[ids]
                mem = memory[ids, :int(lengths.max())].repeat_interleave(k, dim=0)
                mem_lengths = lengths.repeat_interleave(k)
            logits = self._decode_logits(tokens.flatten(0, 1), mem, mem_lengths)
            log_probs = logits[:, -1].float().log_softmax(-1).view(len(ids), k, -1)
            vocab = log_probs.size(-1)
            top, flat = (scores[..., None] + log_probs).flatten(1).topk(k, dim=1)
            parents, units = flat // vocab, flat % vocab
            top_l, parents_l, units_l = top.tolist(), parents.tolist(), units.tolist()
            order, n_open, keep = [], [], []
            for j, i in enumerate(ids):
                opened = []  # candidates (best first) that stay open; those ending in <eos> are finished
                for c, (score, parent, unit) in enumerate(zip(top_l[j], parents_l[j], units_l[j])):
                    if score == -math.inf:  # fewer candidates than rows (first step, tiny vocabulary)
                        continue
                    if unit == SOS_EOS:
                        finished[i].append((tokens[j, parent, 1:].tolist(), score / (step + 1) ** length_penalty))
                    else:
                        opened.append(c)
                order.append(opened + [c for c in range(k) if c not in opened])
                n_open.append(len(opened))
                best_done = max((s for _, s in finished[i]), default=-math.inf)
                # Stop once no open hypothesis can still beat the best finished one (scores only fall).
                if opened and step + 1 < max_lens[i] and top_l[j][opened[0]] / max_lens[i] ** length_penalty >= best_done:
                    keep.append(j)
                elif not finished[i]:  # reached its bound with nothing finished: take the open hypotheses
                    finished[i] = [(tokens[j, parents_l[j][c], 1:].tolist() + [units_l[j][c]],
                                    top_l[j][c] / (step + 1) ** length_penalty) for c in opened]
            order = torch.tensor(order, device=device)
            parents, units, scores = parents.gather(1, order), units.gather(1, order), top.gather(1, order)
            scores[torch.arange(k, device=device)[None, :] >= torch.tensor(n_open, device=device)[:, None]] = -math.inf
            tokens = torch.cat([tokens.gather(1, parents[..., None].expand(-1, -1, tokens.size(2))), units[..., None]], 2)
            if len(keep) < len(ids):  # some utterances are done: drop their rows
                rows = torch.tensor(keep, dtype=torch.long, device=device)
                tokens, scores, ids, mem = tokens[rows], scores[rows], [ids[j] for j in keep], None
        return [max(hyps, key=lambda h: h[1])[0] if hyps else [] for hyps in finished]
