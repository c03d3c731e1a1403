"""How training batches are loaded: DataLoader worker processes and pinned memory, by device.

Both tasks' trainers take their loader settings from `loader_settings`, so `--num_workers`
means the same everywhere: a number, or -1 (the default) for the choice below.

On a CPU the model's own threads use every core, and a worker only moves the reading and
padding of the next batch onto cores that are already busy. Measured on a 2-core machine
(bench/scale.py, bench/README.md "The data layer at 600,000 files"), the training process waits
for a batch about 1.4% of a step (9 ms against 610 ms at 600k rows), so workers could gain at
most that, and each one is another process; the CPU default is 0.

On CUDA the steps are short and the GPU would wait for every batch read in the training
process, so workers load the next batches while it computes: one per spare core of this
process's share of the machine (cores / processes on the node, one core kept for the training
process), at most 8. Reading a 900-s GPU batch takes about 0.1 s of one core (9 ms per 90 s
here), so a few workers keep up with any step; more only help on network storage, where they
overlap its latency. Pinned (page-locked) batches copy to the GPU faster and let the copy
overlap compute (`non_blocking=True` in recognizer.features).
"""
import os

import torch

AUTO = -1
MAX_CUDA_WORKERS = 8


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def loader_settings(device: torch.device, num_workers: int = AUTO) -> tuple:
    """(DataLoader workers, pin_memory) for training on `device`; `num_workers` >= 0 is kept as given."""
    device = torch.device(device)
    pin_memory = device.type == "cuda"
    if num_workers is not None and num_workers >= 0:
        return num_workers, pin_memory
    return auto_workers(device.type == "cuda", available_cpus(), local_processes()), pin_memory


def local_processes() -> int:
    """Training processes on this node: torchrun starts one per GPU."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def auto_workers(cuda: bool, cpus: int, processes: int = 1) -> int:
    """The -1 choice: none on a CPU; on CUDA one per spare core of this process's share, at most 8."""
    if not cuda:
        return 0
    return max(1, min(MAX_CUDA_WORKERS, cpus // max(processes, 1) - 1))
