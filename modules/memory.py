"""Keeping the training process's resident memory bounded on CPU.

Every batch has a different shape (utterances of different lengths), so PyTorch's CPU
tensors are a stream of differently sized malloc/free calls. glibc serves them from its
heaps and keeps the freed holes resident: measured on the kit's default training
(bench/train_memory.py), the live peak is about 0.9 GiB but the process grows to 2.2 GiB
in a minute (one thread) and 3.4 GiB after six (two threads). `malloc_trim(0)` hands the
free pages back to the kernel. Trimming after every step would cost about 25% of the
throughput (the pages fault back in on the next step), so the trainer trims only when the
resident size passes a mark, a few times per epoch.

On a C library without malloc_trim (macOS, musl) this does nothing.
"""
import ctypes
import ctypes.util
import os


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
    size is above `limit_mib` (0 = never)."""

    def __init__(self, limit_mib: float):
        self.limit_mib = limit_mib
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
