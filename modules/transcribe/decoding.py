"""Turning model output into unit ids: CTC greedy best path, CTC prefix beam search with a language
model, and the attention model's beam search over its decoder (alone, or joint with CTC prefix scores)."""
import math
from dataclasses import dataclass

import torch

from .models.frontend import length_mask
from .models.interface import BLANK


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
    decoder: str = "beam"      # beam (CTC prefix beam search) | greedy | attention (decoder beam search) | joint
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


# Decoders that run the attention model's decoder over its encoder output (attention_beam_search below):
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


# -- the attention model's decoder: its beam search, alone or joint with its CTC head -------------

@torch.no_grad()
def attention_beam_search(model, memory: torch.Tensor, memory_lengths: torch.Tensor, beam_width: int = 4,
                length_penalty: float = 1.0, ctc_log_probs: torch.Tensor = None, ctc_weight: float = 0.0) -> list:
    """The attention model's beam search: best unit-id list per utterance of its encoding `memory`
    (B, T', d) with lengths (B,) (models/attention.py, `forward(..., return_encoding=True)`).

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
    memory = memory.to(model.out.weight.dtype)  # an encoding made under autocast meets float32 weights
    k, device = beam_width, memory.device
    max_lens = memory_lengths.clamp(max=model.config.max_target_length).tolist()
    finished = [[] for _ in max_lens]          # per utterance: (unit ids, normalised score)
    ids = [i for i, n in enumerate(max_lens) if n > 0]  # utterances still searching, one state row each
    if not ids:
        return [[] for _ in max_lens]
    tokens = torch.full((len(ids), k, 1), model.sos_eos, dtype=torch.long, device=device)
    scores = torch.full((len(ids), k), -math.inf, device=device)
    scores[:, 0] = 0.0  # one open hypothesis, <sos>, until the first step fills the beam
    lengths = memory_lengths[ids]
    longest = int(lengths.max())
    mem_kv = [(mk.repeat_interleave(k, 0), mv.repeat_interleave(k, 0))
              for mk, mv in model.memory_keys_values(memory[ids, :longest])]
    mem_mask = length_mask(lengths, longest).repeat_interleave(k, 0)
    cache = [None] * len(mem_kv)
    ctc = None
    if ctc_log_probs is not None and ctc_weight > 0:
        ctc = CTCPrefixScorer(ctc_log_probs[ids, :longest], lengths, k, eos=model.sos_eos)
        pre_beam = min(int(1.5 * k), model.out.out_features)
    for step in range(max(max_lens)):
        logits = model.decoder_step(tokens[:, :, -1].flatten(), step, cache, mem_kv, mem_mask)
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
                if unit == model.sos_eos:
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
    y + c in one pass over the frames. <eos> (`eos`: the decoder's end id; the attention model's is
    the blank's) scores log P(output = y).
    """

    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor, beam: int, eos: int = BLANK):
        """log_probs: (U, T, V) CTC log-probabilities of U utterances; lengths: (U,) frames."""
        self.eos = eos
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
        psi = torch.where(candidates == self.eos, r_sum[-1, ..., None], psi)  # <eos>: the whole output is y
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
