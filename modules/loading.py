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

Training loaders keep their workers across epochs (`persistent_workers`): forking 8 workers
takes ~0.4 s, once per epoch otherwise, and on a small corpus an epoch can be one batch.
Workers hand batches over in shared memory (/dev/shm): with Docker's default 64 MB, 8 workers
each holding 2 prefetched 1,580-s batches (~100 MB each in float32) die with a bus error, so
`dataloader_options` keeps as many workers as /dev/shm holds and says so.
"""
import os
import shutil

import torch

AUTO = -1
MAX_CUDA_WORKERS = 8
PREFETCH_FACTOR = 2  # batches each worker loads ahead (DataLoader's default)
SHARED_MEMORY = "/dev/shm"


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


def shared_memory_free_bytes(path: str = SHARED_MEMORY):
    """Free bytes of the shared-memory filesystem workers pass batches through; None where there is
    none (not Linux: workers share memory another way there)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def workers_for_shared_memory(num_workers: int, batch_bytes: float, name: str = "training") -> int:
    """As many of `num_workers` as /dev/shm has room for: each holds PREFETCH_FACTOR batches of
    `batch_bytes` there, and the training step one more. Fewer workers (0: loading in the training
    process, which needs no shared memory) rather than the bus error a full /dev/shm gives.
    torch's 'file_system' sharing strategy would not help: its segments live in /dev/shm too."""
    free = shared_memory_free_bytes()
    need = (num_workers * PREFETCH_FACTOR + 1) * batch_bytes
    if num_workers <= 0 or not batch_bytes or free is None or need <= free:
        return num_workers
    fitting = max(0, int(free // batch_bytes - 1) // PREFETCH_FACTOR)
    print(f"[loader] {SHARED_MEMORY} has {free / 2**20:.0f} MiB free, but {num_workers} {name} loader workers "
          f"x {PREFETCH_FACTOR} prefetched batches of ~{batch_bytes / 2**20:.0f} MiB need {need / 2**20:.0f} MiB: "
          f"using {fitting} workers{' (loading in the training process)' if not fitting else ''}. "
          f"Give the container more shared memory (docker run --shm-size=8g) to use them all.", flush=True)
    return fitting


def dataloader_options(num_workers: int, pin_memory: bool, batch_bytes: float, persistent: bool = True,
                       name: str = "training") -> dict:
    """DataLoader keyword arguments: the workers that fit /dev/shm (batches of about `batch_bytes`),
    kept alive across epochs when `persistent` (validation loaders, used once an epoch, let theirs go)."""
    workers = workers_for_shared_memory(num_workers, batch_bytes, name)
    return dict(num_workers=workers, pin_memory=pin_memory, persistent_workers=persistent and workers > 0)
