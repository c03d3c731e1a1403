#!/usr/bin/env python3
"""Regenerate the committed sample_dataset/ (2022 layout) with make_corpus.py.

    python tools/make_sample_dataset.py            # writes sample_dataset/
    python tools/make_sample_dataset.py --out DIR  # elsewhere (e.g. to compare)
    python tools/make_sample_dataset.py --layout 2023   # writes sample_dataset_2023/ (NOVA)

A small corpus on which a small CTC model learns something within minutes of
CPU training: short commands and questions from a reduced grammar (the first
3 alternatives of every slot, about 400 sentences and 170 syllables, words
repeated across sentences), light noise. Test sentences are held out as whole
sentences and spoken by voices that train never uses; they only use syllables
that occur in train. The seed and every setting are fixed here, so the output
is byte-identical on every run with the same espeak-ng (1.51).

sample_dataset_2023/ is the same recipe in the 2023 (NOVA) layout, kept under 2 MiB: 22 train and
6 test utterances, idx_* files without extension, half of them with a WAV header and half raw
PCM. It shows the layout and proves a run end to end; it is too small to learn much from.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# layout -> (default folder, disk budget, the settings that differ)
SAMPLES = {
    "2022": ("sample_dataset", 20 * 1024 * 1024, ["--seed", "2022", "--train-utts", "210", "--test-utts", "40"]),
    "2023": ("sample_dataset_2023", 2 * 1024 * 1024, ["--seed", "2023", "--train-utts", "22", "--test-utts", "6"]),
}

SETTINGS = [
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
    p.add_argument("--layout", choices=sorted(SAMPLES), default="2022")
    p.add_argument("--out", type=Path, default=None, help="default: sample_dataset/ (2022), sample_dataset_2023/")
    a = p.parse_args()
    folder, max_bytes, sizes = SAMPLES[a.layout]
    out = a.out or REPO / folder
    make_corpus.main(["--out", str(out), "--force", "--no-progress", "--layout", a.layout, *sizes, *SETTINGS])
    size = du(out)
    print(f"sample dataset size: {size / 2**20:.1f} MiB on disk")
    if size > max_bytes:
        raise SystemExit(f"error: {out} is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB budget")


if __name__ == "__main__":
    main()
