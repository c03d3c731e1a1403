"""Keeping the training process's resident memory bounded on CPU.

Every batch has a different shape (utterances of different lengths), so PyTorch's CPU
tensors are a stream of differently sized malloc/free calls. glibc serves them from its
heaps and keeps the freed holes resident: on the kit's default training the live peak is
about 0.9 GiB, but the process grew to 3.0 GiB in 3 minutes and 3.4 GiB in 6 (2 threads).
`malloc_trim(0)` hands the free pages back to the kernel. They fault back in on the next
step, so trimming costs throughput: after every step about 25%; only when the resident
size passes the mark, 1280 MiB: peak 1.5 GiB at 0.79x; 1536 MiB (the default): peak
1.7 GiB at 0.90x (bench/train_memory.py; bench/README.md). Fixed mmap thresholds
(mallopt) bounded memory too but cost 35-60% of the throughput.

On a C library without malloc_trim (macOS, musl) this does nothing.
"""
import ctypes
import ctypes.util
import os

import torch


def _libc_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_malloc_trim()
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_mib() -> float:
    """This process's resident set size now, in MiB (0.0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE_BYTES / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


class HeapTrimmer:
    """Call after each step: returns freed heap memory to the system when the resident
    size is above `limit_mib` (0 = never).

    Only when training on a CPU (`device`; None = CPU): there the batches' tensors are the heap
    churn above. A CUDA process is above the limit from its start (the CUDA context, kernels
    and pinned buffers are resident), so it would trim after every step, faulting pages back
    in while the GPU waits, for host tensors that are only the loader's small batches."""

    def __init__(self, limit_mib: float, device=None):
        on_cpu = device is None or torch.device(device).type == "cpu"
        self.limit_mib = limit_mib if on_cpu else 0
        self.trims = 0

    @property
    def active(self) -> bool:
        return bool(self.limit_mib) and _MALLOC_TRIM is not None

    def __call__(self) -> bool:
        if not self.active or resident_mib() <= self.limit_mib:
            return False
        _MALLOC_TRIM(0)
        self.trims += 1
        return True
