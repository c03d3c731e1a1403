"""Data-parallel training across processes launched by `torchrun` (one per GPU), or a single process.

`torchrun --nproc_per_node N main.py ...` sets RANK / WORLD_SIZE / LOCAL_RANK; without them
everything here is a no-op and the kit runs as one plain process, on CPU or one GPU.
"""
import os
from datetime import timedelta

import torch
import torch.distributed as dist


# How long a collective may wait for a slow rank before the run is declared dead. NCCL's default
# (10 min) is shorter than what rank 0 alone may do between steps (write a large checkpoint on a slow
# NSML disk); the end-of-run work (LM tuning, the beam decode) happens after the group is left
# (recipe.py), so it needs no timeout at all.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=30)


def init_from_env():
    """Join the process group torchrun describes; returns the device this rank should use (or None)."""
    # torchrun sets RANK even for one process: a 1-process group still runs the DDP path (nccl on a GPU),
    # which is how bench/gpu_check.sh exercises it on a machine with one GPU.
    if "RANK" not in os.environ or dist.is_initialized():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl", timeout=PROCESS_GROUP_TIMEOUT)
        return torch.device("cuda", local_rank)
    dist.init_process_group("gloo", timeout=PROCESS_GROUP_TIMEOUT)
    return torch.device("cpu")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def launched_rank() -> int:
    """This process's rank as torchrun set it, still known after the process group is left."""
    return int(os.environ.get("RANK", "0"))


def all_reduce_sum(values: list) -> list:
    """Sum a list of floats over all ranks (identity in a single process)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def shutdown():
    """Leave the process group once every rank is done, so no rank exits mid-collective
    (a gloo group left alive at exit can abort the process)."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def barrier():
    if is_distributed():
        dist.barrier()


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Rank r's share of each global batch: items r, r + W, r + 2W, ... (W = world size).

    Every rank walks the same global batches in the same order, so W processes take the
    same optimizer steps on the same data as one process would; a global batch with fewer
    than W items is skipped, so no rank is ever left without a batch (and all stay in step).
    """

    def __init__(self, batch_sampler, rank: int, world_size: int):
        self.batch_sampler, self.rank, self.world_size = batch_sampler, rank, world_size

    def set_epoch(self, epoch: int):
        self.batch_sampler.set_epoch(epoch)

    def __len__(self):
        return sum(len(b) >= self.world_size for b in self.batch_sampler.batches)

    def __iter__(self):
        return iter([b[self.rank::self.world_size] for b in self.batch_sampler if len(b) >= self.world_size])
