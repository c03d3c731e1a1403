#!/usr/bin/env python3
"""Regenerate the committed sample_dataset/ (2022 layout) with make_corpus.py.

    python tools/make_sample_dataset.py            # writes sample_dataset/
    python tools/make_sample_dataset.py --out DIR  # elsewhere (e.g. to compare)

A small corpus on which a small CTC model learns something within minutes of
CPU training: short commands and questions from a reduced grammar (the first
3 alternatives of every slot, about 400 sentences and 170 syllables, words
repeated across sentences), light noise. Test sentences are held out as whole
sentences and spoken by voices that train never uses; they only use syllables
that occur in train. The seed and every setting are fixed here, so the output
is byte-identical on every run with the same espeak-ng (1.51).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MAX_BYTES = 20 * 1024 * 1024

SETTINGS = [
    "--layout", "2022",
    "--seed", "2022",
    "--train-utts", "210",
    "--test-utts", "40",
    "--domain", "commands",
    "--slot-limit", "3",
    "--spread", "0.5",
    "--test-known-chars",
    "--noise-prob", "0.5",
    "--snr", "15", "35",
    "--reverb", "0.1",
    "--silence-max", "0.25",
    "--speed", "130", "200",
]


def du(path: Path) -> int:
    """Bytes on disk, as `du` counts them (whole 4 KiB blocks)."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in path.rglob("*") if p.is_file())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "sample_dataset")
    a = p.parse_args()
    make_corpus.main(["--out", str(a.out), "--force", "--no-progress", *SETTINGS])
    size = du(a.out)
    print(f"sample dataset size: {size / 2**20:.1f} MiB on disk")
    if size > MAX_BYTES:
        raise SystemExit(f"error: {a.out} is {size / 2**20:.1f} MiB, over the 20 MiB budget")


if __name__ == "__main__":
    main()
