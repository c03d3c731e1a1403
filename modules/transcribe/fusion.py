"""Choosing the language model's fusion weights on validation data, after training.

How much the LM should count (`lm_weight`) and how much each character is rewarded
(`lm_bonus`) depend on the acoustic model and the data: on one dev set the defaults gave
CER 0.098 and weight 0.5 / bonus 1.0 gave 0.087 (bench/decode_speed.txt). The LM is trained
on the training split only, so the validation split is fair ground to choose them on. The
acoustic model runs once over (at most `max_utterances` of) the validation set; each grid
point then only re-runs the beam search.

A small validation set makes the grid's best point partly luck: on sample_dataset (25
validation utterances) one run chose weight 0.4 / bonus 0 over the given 0.8 / 2.0 by one
character, and scored test CER 0.086 against the given weights' 0.059. So the best point
replaces the given weights only when it is better by more than `min_gain_se` standard errors
of the per-utterance difference in errors (a paired comparison on the same utterances).
"""
import math
from dataclasses import dataclass, replace

import torch

from ..metrics import cer_counts
from ..samplers import DurationBatchSampler
from .dataset import SpeechDataset, collate
from .split import capped_sample


@dataclass
class FusionGrid:
    weights: tuple = (0.0, 0.4, 0.8, 1.2, 1.6)  # 0.0: beam search without the LM is a candidate too
    bonuses: tuple = (0.0, 1.0, 2.0, 3.0, 4.0)
    max_utterances: int = 300                # keeps the search about a minute on a CPU
    extensions: int = 3                      # times the grid may grow past an upper edge the best point is on
    min_gain_se: float = 1.0                 # the best point must beat the given weights by this many SEs
    seed: int = 0


@torch.no_grad()
def tune_lm_fusion(recognizer, utterances: list, grid: FusionGrid = FusionGrid()) -> list:
    """[(cer, lm_weight, lm_bonus)] for the recognizer's own weights and every grid point, the chosen
    one first, then by CER. Chosen: the lowest CER, unless it beats the given weights by no more than
    `grid.min_gain_se` standard errors (or ties them): then the given weights. The recognizer's
    decoder config is left as it was."""
    utts = capped_sample(utterances, grid.max_utterances, grid.seed)
    recognizer.model.eval()
    loader = torch.utils.data.DataLoader(
        SpeechDataset(utts, recognizer.tokenizer, recognizer.feature_config.trim_db), collate_fn=collate,
        batch_sampler=DurationBatchSampler([u.duration for u in utts], 300.0, shuffle=False))
    outputs, refs = [], []
    for batch in loader:
        if batch is None:
            continue
        outputs.append(recognizer.forward(batch["waves"], batch["wave_lengths"]))
        refs += [utts[i].text for i in batch["indices"]]
    ref_chars = max(sum(cer_counts("", r)[1] for r in refs), 1)
    given = (recognizer.decoder_config.lm_weight, recognizer.decoder_config.lm_bonus)
    errors = {}  # (weight, bonus) -> edit distance of each utterance

    def evaluate(weight, bonus):
        if (weight, bonus) not in errors:
            config = replace(recognizer.decoder_config, decoder="beam", lm_weight=weight, lm_bonus=bonus)
            hyps = [t for log_probs, lengths in outputs for t in recognizer.decode(log_probs, lengths, decoder=config)]
            errors[(weight, bonus)] = [cer_counts(h, r)[0] for h, r in zip(hyps, refs)]

    def total(point):
        return sum(errors[point])

    evaluate(*given)  # first, so that on a tie the given weights win
    weights, bonuses = list(grid.weights), list(grid.bonuses)
    for _ in range(grid.extensions + 1):
        for w in weights:
            for b in bonuses:
                evaluate(w, b)
        best_w, best_b = min(errors, key=total)  # dicts keep insertion order: ties go to the earlier
        # A best point on the grid's upper edge means the optimum may lie beyond it: grow the grid there.
        grow_w, grow_b = best_w == max(weights) and best_w > 0, best_b == max(bonuses) and best_b > 0
        if not (grow_w or grow_b):
            break
        if grow_w:
            weights.append(round(best_w * 1.5, 3))
        if grow_b:
            bonuses.append(round(best_b * 1.5, 3))
    ranked = sorted(errors, key=total)  # stable: on a tie the given weights stay first
    if ranked[0] != given and not clearly_better(errors[ranked[0]], errors[given], grid.min_gain_se):
        ranked.remove(given)
        ranked.insert(0, given)
    return [(total(p) / ref_chars, p[0], p[1]) for p in ranked]


def clearly_better(errors: list, reference: list, min_gain_se: float) -> bool:
    """Fewer errors than `reference` on the same utterances by more than `min_gain_se` standard
    errors of the mean per-utterance difference."""
    diffs = [a - b for a, b in zip(errors, reference)]
    n = len(diffs)
    mean = sum(diffs) / max(n, 1)
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else 0.0
    return mean < 0 and -mean > min_gain_se * se
