"""Turning CTC output into unit ids: greedy best path, or prefix beam search with a language model."""
import math
from dataclasses import dataclass

import torch


def ctc_greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0,
                      merge_repeats: bool = True) -> list:
    """Best path per utterance: repeats merged, then blanks removed.

    merge_repeats=False reproduces the 2022 baseline's bug (blanks removed only,
    so "ㄱㄱ_ㄴ" gives two ㄱ); it exists for `--preset baseline2022` and nothing else.

    log_probs: (B, T, V); lengths: (B,) valid frames. Returns a list of id lists.
    """
    best = log_probs.argmax(-1).cpu()
    lengths = lengths.cpu()
    out = []
    for b in range(best.size(0)):
        path = best[b, : lengths[b]]
        if merge_repeats and path.numel():
            keep = torch.ones_like(path, dtype=torch.bool)
            keep[1:] = path[1:] != path[:-1]  # merge repeats (the 2022 baseline skipped this)
            path = path[keep]
        out.append([int(i) for i in path if i != blank])
    return out


@dataclass
class DecoderConfig:
    """How log-probabilities become text; saved in the checkpoint so a submit decodes as training chose."""
    decoder: str = "greedy"    # greedy | beam (CTC prefix beam search) | attention (decoder beam search) | joint
    beam_width: int = 8
    token_top_k: int = 8       # candidate units per frame (beyond that, a frame's tail never wins)
    blank_skip: float = 0.999  # frames with P(blank) above this only extend existing prefixes with blank
    lm_weight: float = 0.8     # 0 = no language model; re-chosen on validation after training (fusion.py)
    lm_bonus: float = 2.0      # per-unit insertion bonus, offsets the LM's preference for short outputs
    length_penalty: float = 1.0  # attention decoder: score = log P / length^penalty
    ctc_weight: float = 0.3    # joint: log P = (1 - w) x decoder's + w x CTC prefix score
    infer_budget_s: float = 3000.0  # projected inference time above which a submit falls back to greedy
    merge_repeats: bool = True  # greedy; False only to reproduce the 2022 baseline's bug
    batch_seconds: float = 300.0  # padded audio seconds per inference batch; 0 = one file at a time


# Decoders that run the attention model's decoder over its encoder output (modules/models/attention.py):
# its own beam search, and that search rescored by the CTC head's prefix scores.
SEQUENCE_DECODERS = ("attention", "joint")

NEG_INF = -float("inf")


def ctc_prefix_beam_search(log_probs: torch.Tensor, lengths: torch.Tensor, config: DecoderConfig,
                           lm=None, units: list = None, blank: int = 0) -> list:
    """CTC prefix beam search (Hannun et al. 2014) with optional shallow fusion of an n-gram LM.

    log_probs: (B, T, V); lengths: (B,). Each frame is pruned to its `token_top_k` units with
    torch.topk over the whole batch at once; the per-utterance loop then only touches
    beam x top-k candidates. With `lm`, extending a prefix by unit u adds
    lm_weight * log P_lm(u | prefix) + lm_bonus; the sentence end is scored at the last frame.
    The LM is asked about the prefix as it is held here, a tuple of ids into `units` (each unit,
    a mask token included, is one LM unit): lm.log_prob_vector(prefix, units) gives (V,) log-probs,
    lm.end_log_prob(prefix, units) the sentence end's.
    Returns a list of id lists, best hypothesis per utterance.
    """
    use_lm = lm is not None and config.lm_weight > 0 and units is not None
    k = min(config.token_top_k, log_probs.size(-1))
    top_lp, top_ids = log_probs.float().topk(k, dim=-1)
    top_lp, top_ids = top_lp.cpu().tolist(), top_ids.cpu().tolist()  # plain floats: fast scalar maths
    blank_lp = log_probs[..., blank].float().cpu().tolist()
    skip_threshold = math.log(config.blank_skip) if config.blank_skip < 1 else 0.0
    weight, bonus = config.lm_weight, config.lm_bonus
    results = []
    for b in range(log_probs.size(0)):
        # prefix (tuple of ids) -> [log P(ends in blank), log P(ends in non-blank), LM score]
        beams = {(): [0.0, NEG_INF, 0.0]}
        for t in range(int(lengths[b])):
            if config.blank_skip < 1 and blank_lp[b][t] > skip_threshold:
                for state in beams.values():  # a near-certain blank: every prefix just absorbs it
                    state[0], state[1] = log_add(state[0], state[1]) + blank_lp[b][t], NEG_INF
                continue
            new = {}
            for prefix, (pb, pnb, lm_score) in beams.items():
                total = log_add(pb, pnb)
                lm_vec = lm.log_prob_vector(prefix, units) if use_lm else None
                last = prefix[-1] if prefix else None
                for lp, u in zip(top_lp[b][t], top_ids[b][t]):
                    if u == blank:
                        e = new.setdefault(prefix, [NEG_INF, NEG_INF, lm_score])
                        e[0] = log_add(e[0], total + lp)
                        continue
                    extended = prefix + (u,)
                    e = new.get(extended)
                    if e is None:
                        e = new[extended] = [NEG_INF, NEG_INF,
                                             lm_score + weight * float(lm_vec[u]) + bonus if use_lm else 0.0]
                    if u == last:  # a repeat only extends through a blank; otherwise it merges
                        e[1] = log_add(e[1], pb + lp)
                        same = new.setdefault(prefix, [NEG_INF, NEG_INF, lm_score])
                        same[1] = log_add(same[1], pnb + lp)
                    else:
                        e[1] = log_add(e[1], total + lp)
            beams = dict(sorted(new.items(), key=lambda kv: -(log_add(kv[1][0], kv[1][1]) + kv[1][2]))
                         [: config.beam_width])

        def final_score(item):
            pb, pnb, lm_score = item[1]
            end = weight * lm.end_log_prob(item[0], units) if use_lm else 0.0
            return log_add(pb, pnb) + lm_score + end

        results.append(list(max(beams.items(), key=final_score)[0]))
    return results


def log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for Python floats (numpy's scalar version is ~10x slower here)."""
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def decode_batch(log_probs: torch.Tensor, lengths: torch.Tensor, config: DecoderConfig, lm=None,
                 units: list = None) -> list:
    """Id lists for a batch, by the decoder `config` names."""
    if config.decoder == "greedy":
        return ctc_greedy_decode(log_probs, lengths, merge_repeats=config.merge_repeats)
    if config.decoder == "beam":
        return ctc_prefix_beam_search(log_probs, lengths, config, lm=lm, units=units)
    raise ValueError(f"unknown decoder {config.decoder!r}; choose from: greedy, beam")
