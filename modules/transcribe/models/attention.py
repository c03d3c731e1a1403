"""Attention encoder-decoder with a joint CTC head (hybrid CTC/attention, Watanabe et al. 2017).

The Conformer encoder (shared with conformer.py) feeds both a linear CTC head, which is this
model's `forward` (so greedy/beam CTC decoding, validation and checkpoints work as for every
model), and a Transformer decoder trained with label-smoothed cross-entropy. The trainer adds
`decoder_loss` to the CTC loss (`--ctc_weight`); `--decoder attention` decodes with the decoder's
beam search, length-normalised; `--decoder joint` rescores its hypotheses with the CTC head's
prefix scores (joint CTC/attention decoding, as ESPnet does). The 2019 official baseline was a GRU
seq2seq with attention; this is its modern form.

`forward(..., return_encoding=True)` also returns the encoder output, which the caller passes
to `decoder_loss` and `beam_search`: the encoder runs once per batch whichever uses it.
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

    def output_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder.output_lengths(feature_lengths)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, return_encoding: bool = False):
        """CTC log-probabilities (B, T', V) and output lengths (B,); with `return_encoding`, also
        the encoder output (B, T', d_model) that `decoder_loss` and `beam_search` take."""
        memory, out_lengths = self.encoder(feats, lengths)
        log_probs = self.ctc_head(memory).float().log_softmax(-1)
        return (log_probs, out_lengths, memory) if return_encoding else (log_probs, out_lengths)

    def _decode_logits(self, tokens, memory, memory_lengths):
        t = tokens.size(1)
        x = self.embed(tokens) + self.positions(torch.arange(t, device=tokens.device).clamp(max=self.config.max_target_length))
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tokens.device), 1)
        x = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=~length_mask(memory_lengths, memory.size(1)))
        return self.out(x)

    # Incremental decoding for search: the same layers as `self.decoder` (pre-norm, eval mode), fed one
    # position per step; keys and values of earlier positions and of the memory are computed once.
    def _memory_keys_values(self, memory):
        """Per decoder layer, the cross-attention keys and values of `memory`, each (N, heads, T, d / heads)."""
        d = memory.size(-1)
        out = []
        for layer in self.decoder.layers:
            attn = layer.multihead_attn
            k, v = F.linear(memory, attn.in_proj_weight[d:], attn.in_proj_bias[d:]).chunk(2, dim=-1)
            out.append((_split_heads(k, attn.num_heads), _split_heads(v, attn.num_heads)))
        return out

    def _decode_step(self, units, position, cache, memory_kv, memory_mask):
        """Next-unit logits (N, V) after each row's newest unit (N,) at `position`.

        cache: per layer, self-attention keys and values of the earlier positions (None at the
        first step); the new position's are appended in place. memory_mask: (N, T) True on frames.
        Equals `_decode_logits(...)[:, -1]` on the whole prefix, at the cost of one position.
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
        logits = self._decode_logits(inputs, memory, memory_lengths)
        return F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100,
                               label_smoothing=self.config.label_smoothing)

    @torch.no_grad()
    def beam_search(self, memory: torch.Tensor, memory_lengths: torch.Tensor, beam_width: int = 4,
                    length_penalty: float = 1.0, ctc_log_probs: torch.Tensor = None, ctc_weight: float = 0.0) -> list:
        """Best unit-id list per utterance of the encoding `memory` (B, T', d) with lengths (B,).

        Scores are log P / length^penalty. log P is the decoder's; with `ctc_log_probs` (B, T', V,
        this model's CTC output) and ctc_weight > 0 it is (1 - ctc_weight) x the decoder's +
        ctc_weight x the CTC prefix score (joint decoding, Watanabe et al. 2017): each step the
        decoder's best 1.5 x beam_width next units of each hypothesis are scored by CTC too, and
        <eos> by the CTC probability of the whole hypothesis, so CTC vetoes hypotheses that end
        too early, skip or repeat words.

        Batched: every step runs the decoder once, one position, over all open utterances'
        hypotheses, beam_width rows each (empty rows score -inf), each utterance's memory
        repeated per row. An utterance stops at its own bound, min(its encoder length,
        max_target_length) (CTC's: at most one unit per frame), or once no open hypothesis can
        beat its best finished one (both scores only fall as a hypothesis grows); it then leaves the batch.
        """
        memory = memory.to(self.out.weight.dtype)  # an encoding made under autocast meets float32 weights
        k, device = beam_width, memory.device
        max_lens = memory_lengths.clamp(max=self.config.max_target_length).tolist()
        finished = [[] for _ in max_lens]          # per utterance: (unit ids, normalised score)
        ids = [i for i, n in enumerate(max_lens) if n > 0]  # utterances still searching, one state row each
        if not ids:
            return [[] for _ in max_lens]
        tokens = torch.full((len(ids), k, 1), SOS_EOS, dtype=torch.long, device=device)
        scores = torch.full((len(ids), k), -math.inf, device=device)
        scores[:, 0] = 0.0  # one open hypothesis, <sos>, until the first step fills the beam
        lengths = memory_lengths[ids]
        longest = int(lengths.max())
        mem_kv = [(mk.repeat_interleave(k, 0), mv.repeat_interleave(k, 0))
                  for mk, mv in self._memory_keys_values(memory[ids, :longest])]
        mem_mask = length_mask(lengths, longest).repeat_interleave(k, 0)
        cache = [None] * len(mem_kv)
        ctc = None
        if ctc_log_probs is not None and ctc_weight > 0:
            ctc = CTCPrefixScorer(ctc_log_probs[ids, :longest], lengths, k)
            pre_beam = min(int(1.5 * k), self.out.out_features)
        for step in range(max(max_lens)):
            logits = self._decode_step(tokens[:, :, -1].flatten(), step, cache, mem_kv, mem_mask)
            log_probs = logits.float().log_softmax(-1).view(len(ids), k, -1)
            if ctc is None:  # candidates: every unit
                candidates, candidate_units = log_probs, None
            else:  # candidates: the decoder's best units of each hypothesis, rescored with CTC
                att, candidate_units = log_probs.topk(pre_beam, dim=-1)
                candidates = (1 - ctc_weight) * att + ctc_weight * ctc.score(tokens[:, :, -1], candidate_units, step)
            n_candidates = candidates.size(-1)
            top, flat = (scores[..., None] + candidates).flatten(1).topk(k, dim=1)
            parents = flat // n_candidates
            units = flat % n_candidates if candidate_units is None else candidate_units.flatten(1).gather(1, flat)
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
                bound = max_lens[i]
                if opened and step + 1 < bound and top_l[j][opened[0]] / bound ** length_penalty >= best_done:
                    keep.append(j)
                elif not finished[i]:  # reached its bound with nothing finished: take the open hypotheses
                    finished[i] = [(tokens[j, parents_l[j][c], 1:].tolist() + [units_l[j][c]],
                                    top_l[j][c] / (step + 1) ** length_penalty) for c in opened]
            if not keep:
                break
            # The open hypotheses first, best first, in the rows of the utterances still searching.
            order = torch.tensor(order, device=device)
            parents, units, scores, flat = parents.gather(1, order), units.gather(1, order), top.gather(1, order), \
                flat.gather(1, order)
            scores[torch.arange(k, device=device)[None, :] >= torch.tensor(n_open, device=device)[:, None]] = -math.inf
            prefixes = tokens.gather(1, parents[..., None].expand(-1, -1, tokens.size(2)))
            tokens = torch.cat([prefixes, units[..., None]], 2)
            rows = torch.tensor(keep, dtype=torch.long, device=device)
            tokens, scores, parents = tokens[rows], scores[rows], parents[rows]
            if ctc is not None:
                ctc.select(rows, flat[rows])
            parent_rows = (rows[:, None] * k + parents).flatten()  # in the flat (utterance x beam) layout
            cache = [(ck[parent_rows], cv[parent_rows]) for ck, cv in cache]
            if len(keep) < len(ids):  # some utterances are done: drop their memory rows
                ids = [ids[j] for j in keep]
                longest = int(memory_lengths[ids].max())
                beam_rows = (rows[:, None] * k + torch.arange(k, device=device)).flatten()
                mem_kv = [(mk[beam_rows, :, :longest], mv[beam_rows, :, :longest]) for mk, mv in mem_kv]
                mem_mask = mem_mask[beam_rows, :longest]
        return [max(hyps, key=lambda h: h[1])[0] if hyps else [] for hyps in finished]


class CTCPrefixScorer:
    """CTC prefix scores of a beam's growing hypotheses, batched over utterances, beams and candidates.

    The prefix score of a unit sequence y is log P(CTC output starts with y), summed over every
    alignment (Watanabe et al. 2017, Algorithm 2; ESPnet's CTCPrefixScore). Per hypothesis it keeps
    r[t] = (log P(y ends by frame t in a non-blank), log P(... in a blank)), which extends to
    y + c in one pass over the frames. <eos> (id 0, the blank's) scores log P(output = y).
    """

    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor, beam: int):
        """log_probs: (U, T, V) CTC log-probabilities of U utterances; lengths: (U,) frames."""
        x = log_probs.float().clone()
        # Frames past an utterance's end: blank with probability 1, so its scores carry through unchanged.
        pad = ~length_mask(lengths, x.size(1))
        x[pad] = -math.inf
        x[..., 0][pad] = 0.0
        self.x = x.transpose(0, 1)                    # (T, U, V)
        blank = self.x[..., 0].cumsum(0)              # the empty prefix: blanks only, up to frame t
        self.r = torch.stack([torch.full_like(blank, -math.inf), blank], 1)[..., None].expand(-1, -1, -1, beam)
        self.psi = torch.zeros(x.size(0), beam, device=x.device)  # log prefix score of each hypothesis
        self.new = None

    def score(self, last_units: torch.Tensor, candidates: torch.Tensor, step: int) -> torch.Tensor:
        """log P(prefix + c) - log P(prefix) for candidates c (U, k, C) after the hypotheses whose
        last units are `last_units` (U, k); `step` = units in each prefix."""
        t_max, (u, k, c) = self.x.size(0), candidates.shape
        xs = self.x[:, :, None, :].expand(-1, -1, k, -1).gather(3, candidates[None].expand(t_max, -1, -1, -1))
        r_prev = self.r                                                   # (T, 2, U, k)
        r_sum = torch.logaddexp(r_prev[:, 0], r_prev[:, 1])               # (T, U, k)
        # Paths into c at frame t come from the prefix at t - 1; a repeated unit only through a blank.
        phi = r_sum[..., None].expand(-1, -1, -1, c)
        if step > 0:
            phi = torch.where((candidates == last_units[..., None])[None], r_prev[:, 1, ..., None], phi)
        r = torch.full((t_max, 2, u, k, c), -math.inf, device=xs.device)
        if step == 0:
            r[0, 0] = xs[0]
        start = max(step, 1)
        psi = r[start - 1, 0]
        blank = self.x[..., 0, None, None]                                 # (T, U, 1, 1)
        for t in range(start, t_max):
            r[t, 0] = torch.logaddexp(r[t - 1, 0], phi[t - 1]) + xs[t]
            r[t, 1] = torch.logaddexp(r[t - 1, 0], r[t - 1, 1]) + blank[t]
            psi = torch.logaddexp(psi, phi[t - 1] + xs[t])
        psi = torch.where(candidates == SOS_EOS, r_sum[-1, ..., None], psi)  # <eos>: the whole output is y
        self.new = (r, psi)
        prev = self.psi[..., None]
        return torch.where(psi == -math.inf, -math.inf, psi - prev)  # -inf, never nan, for empty rows

    def select(self, rows: torch.Tensor, flat: torch.Tensor):
        """Keep utterances `rows` and, per utterance, the candidates at flat (beam x candidate) indices (R, k)."""
        r, psi = self.new
        t_max = r.size(0)
        r = r.flatten(3)[:, :, rows]
        self.r = r.gather(3, flat[None, None].expand(t_max, 2, -1, -1))
        self.psi = psi.flatten(1)[rows].gather(1, flat)
        self.x = self.x[:, rows]
        self.new = None


def _split_heads(x, heads):
    """(N, T, d) -> (N, heads, T, d / heads)"""
    return x.view(x.size(0), x.size(1), heads, -1).transpose(1, 2)


def _merge_heads(x):
    """(N, heads, T, d / heads) -> (N, T, d)"""
    return x.transpose(1, 2).flatten(2)
