"""Turning CTC output into unit ids: greedy best path, or prefix beam search with a language model."""
import math
from dataclasses import dataclass

import numpy as np
import torch

from .lm import EOS


def ctc_greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list:
    """Best path per utterance: repeats merged, then blanks removed.

    log_probs: (B, T, V); lengths: (B,) valid frames. Returns a list of id lists.
    """
    best = log_probs.argmax(-1).cpu()
    lengths = lengths.cpu()
    out = []
    for b in range(best.size(0)):
        path = best[b, : lengths[b]]
        if path.numel():
            keep = torch.ones_like(path, dtype=torch.bool)
            keep[1:] = path[1:] != path[:-1]  # merge repeats (the 2022 baseline skipped this)
            path = path[keep]
        out.append([int(i) for i in path if i != blank])
    return out


@dataclass
class DecoderConfig:
    """How log-probabilities become text; saved in the checkpoint so a submit decodes as training chose."""
    decoder: str = "greedy"    # greedy | beam (CTC prefix beam search) | attention (decoder beam search)
    beam_width: int = 8
    token_top_k: int = 8       # candidate units per frame (beyond that, a frame's tail never wins)
    blank_skip: float = 0.999  # frames with P(blank) above this only extend existing prefixes with blank
    lm_weight: float = 0.3     # 0 = no language model
    lm_bonus: float = 0.5      # per-character insertion bonus, offsets the LM's preference for short outputs
    length_penalty: float = 1.0  # attention decoder: score = log P / length^penalty
    infer_budget_s: float = 3000.0  # projected inference time above which a submit falls back to greedy


NEG_INF = -float("inf")


def ctc_prefix_beam_search(log_probs: torch.Tensor, lengths: torch.Tensor, config: DecoderConfig,
                           lm=None, units: list = None, blank: int = 0) -> list:
    """CTC prefix beam search (Hannun et al. 2014) with optional shallow fusion of a character LM.

    log_probs: (B, T, V); lengths: (B,). Each frame is pruned to its `token_top_k` units with
    torch.topk over the whole batch at once; the per-utterance loop then only touches
    beam x top-k candidates. With `lm`, extending a prefix by unit u adds
    lm_weight * log P_lm(u | prefix) + lm_bonus; the sentence end is scored at the last frame.
    Returns a list of id lists, best hypothesis per utterance.
    """
    use_lm = lm is not None and config.lm_weight > 0 and units is not None
    k = min(config.token_top_k, log_probs.size(-1))
    top_lp, top_ids = log_probs.float().topk(k, dim=-1)
    top_lp, top_ids = top_lp.cpu().numpy(), top_ids.cpu().numpy()
    blank_lp = log_probs[..., blank].float().cpu().numpy()
    skip_threshold = math.log(config.blank_skip) if config.blank_skip < 1 else 0.0
    results = []
    for b in range(log_probs.size(0)):
        # prefix (tuple of ids) -> [log P(ends in blank), log P(ends in non-blank), LM score, text]
        beams = {(): [0.0, NEG_INF, 0.0, ""]}
        for t in range(int(lengths[b])):
            if config.blank_skip < 1 and blank_lp[b, t] > skip_threshold:
                for state in beams.values():  # a near-certain blank: every prefix just absorbs it
                    total = np.logaddexp(state[0], state[1])
                    state[0], state[1] = total + blank_lp[b, t], NEG_INF
                continue
            new = {}

            def entry(prefix, lm_score, text):
                if prefix not in new:
                    new[prefix] = [NEG_INF, NEG_INF, lm_score, text]
                return new[prefix]

            for prefix, (pb, pnb, lm_score, text) in beams.items():
                total = np.logaddexp(pb, pnb)
                lm_vec = lm.log_prob_vector(text, units) if use_lm else None
                for lp, u in zip(top_lp[b, t], top_ids[b, t]):
                    u = int(u)
                    if u == blank:
                        e = entry(prefix, lm_score, text)
                        e[0] = np.logaddexp(e[0], total + lp)
                        continue
                    last = prefix[-1] if prefix else None
                    extended = prefix + (u,)
                    fusion = config.lm_weight * lm_vec[u] + config.lm_bonus if use_lm else 0.0
                    e = entry(extended, lm_score + fusion, text + units[u] if use_lm else "")
                    if u == last:  # a repeat only extends through a blank; otherwise it merges
                        e[1] = np.logaddexp(e[1], pb + lp)
                        same = entry(prefix, lm_score, text)
                        same[1] = np.logaddexp(same[1], pnb + lp)
                    else:
                        e[1] = np.logaddexp(e[1], total + lp)
            beams = dict(sorted(new.items(), key=lambda kv: -(np.logaddexp(kv[1][0], kv[1][1]) + kv[1][2]))
                         [: config.beam_width])

        def final_score(item):
            (pb, pnb, lm_score, text) = item[1]
            end = config.lm_weight * lm.log_prob(EOS, text) if use_lm else 0.0
            return np.logaddexp(pb, pnb) + lm_score + end

        best = max(beams.items(), key=final_score)[0]
        results.append(list(best))
    return results


def decode_batch(log_probs: torch.Tensor, lengths: torch.Tensor, config: DecoderConfig, lm=None,
                 units: list = None) -> list:
    """Id lists for a batch, by the decoder `config` names."""
    if config.decoder == "greedy":
        return ctc_greedy_decode(log_probs, lengths)
    if config.decoder == "beam":
        return ctc_prefix_beam_search(log_probs, lengths, config, lm=lm, units=units)
    raise ValueError(f"unknown decoder {config.decoder!r}; choose from: greedy, beam")
