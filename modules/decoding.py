"""Turning CTC output into unit ids."""
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
