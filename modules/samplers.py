"""Batch samplers: which items go together in a training or inference batch.

By padded duration (`DurationBatchSampler`, the kit's default: little padding, bounded
memory), or by count in a random order (`BatchByCountSampler`, the 2022 baseline's).
Both reshuffle per epoch through `set_epoch`; `distributed.ShardedBatchSampler` splits
their global batches between DDP ranks.
"""
import random

import numpy as np
import torch


class DurationBatchSampler(torch.utils.data.Sampler):
    """Batches of similar duration whose padded length stays within `batch_seconds`.

    Sorting by duration keeps padding small; the budget bounds peak memory whatever
    the length mix. When shuffling, every epoch (`set_epoch`) sorts by duration times
    a random factor within +-`jitter` (3%: ~3% padding vs ~1.5% unjittered), so
    neighbours of similar length land in different batches from epoch to epoch, then
    shuffles the batch order. With `sortagrad` the first epoch goes from shortest to
    longest, unjittered.
    """

    def __init__(self, durations, batch_seconds: float, shuffle: bool = True, seed: int = 0,
                 sortagrad: bool = False, max_batch_size: int = 256, jitter: float = 0.03):
        self.durations = np.asarray(durations, dtype=np.float64)
        self.batch_seconds, self.max_batch_size, self.jitter = batch_seconds, max_batch_size, jitter
        self.shuffle, self.seed, self.sortagrad = shuffle, seed, sortagrad
        self.set_epoch(0)

    def _make_batches(self, rng):
        keys = self.durations
        if rng is not None and self.jitter:
            keys = keys * rng.uniform(1 - self.jitter, 1 + self.jitter, size=len(keys))
        batches, batch, longest = [], [], 0.0
        for i in np.argsort(keys, kind="stable"):
            d = float(self.durations[i])
            if batch and (max(longest, d) * (len(batch) + 1) > self.batch_seconds
                          or len(batch) >= self.max_batch_size):
                batches.append(batch)
                batch, longest = [], 0.0
            batch.append(int(i))
            longest = max(longest, d)
        if batch:
            batches.append(batch)
        return batches

    def set_epoch(self, epoch: int):
        self.epoch = epoch
        if not self.shuffle or (self.sortagrad and epoch == 0):
            self.batches = self._make_batches(None)  # shortest first
            return
        rng = np.random.default_rng([self.seed, epoch])
        self.batches = self._make_batches(rng)
        rng.shuffle(self.batches)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)

    def padding_fraction(self, durations=None) -> float:
        """Share of the padded batch audio that is padding, for this epoch's batches."""
        d = self.durations if durations is None else np.asarray(durations)
        padded = sum(max(d[i] for i in b) * len(b) for b in self.batches)
        return 1.0 - float(np.sum(d)) / padded if padded else 0.0


class BatchByCountSampler(torch.utils.data.Sampler):
    """Batches of `batch_size` utterances in a random order, whatever their durations.

    The 2022 baseline's batching (`--preset baseline2022`): padding grows with the
    length spread of each batch, which DurationBatchSampler avoids. Reshuffled every
    epoch (`set_epoch`); the last batch may be smaller.
    """

    def __init__(self, n_items: int, batch_size: int, shuffle: bool = True, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n_items, self.batch_size, self.shuffle, self.seed, self.epoch = n_items, batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return (self.n_items + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = list(range(self.n_items))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        return iter([order[i:i + self.batch_size] for i in range(0, self.n_items, self.batch_size)])
