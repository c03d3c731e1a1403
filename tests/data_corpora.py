"""Tiny datasets in both competition layouts, written by the data tests themselves."""
import os
import struct
import sys
import types

import numpy as np
import pytest
import torch

SENTENCES = ["히터 켜 줘", "창문 닫아 줘", "음악 틀어 줘", "제 이름은 &name&입니다", "불 꺼 줘", "문 열어 줘"]


def tone_audio(index: int, seconds: float = 1.2, rate: int = 16000) -> np.ndarray:
    """A distinct chirp per index (enough for a model to tell utterances apart)."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 200 + 150 * (index % 7)
    wave = 0.3 * np.sin(2 * np.pi * (f0 * t + 40 * (index + 1) * t * t)) * np.hanning(len(t))
    return wave.astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = 16000, info: bool = True) -> bytes:
    """16-bit mono RIFF WAV, with a LIST/INFO chunk before the data as 2019 files have."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()

    def chunk(tag, body):
        return tag + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")

    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + chunk(b"fmt ", fmt)
    if info:
        body += chunk(b"LIST", b"INFO" + chunk(b"ISFT", b"test\0"))
    body += chunk(b"data", pcm)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_2022(root, sentences=SENTENCES, repeats=2, speakers=True) -> str:
    data = os.path.join(root, "train", "train_data")
    os.makedirs(data, exist_ok=True)
    rows, meta = ["filename,text"], ["filename,speaker,sentence_id"]
    for k in range(repeats):
        for j, text in enumerate(sentences):
            i = k * len(sentences) + j
            name = f"idx_{i:06d}"
            (np.clip(tone_audio(i), -1, 1) * 32767).astype("<i2").tofile(os.path.join(data, name))
            rows.append(f"{name},{text}")
            meta.append(f"{name},spk{k},{j}")
    with open(os.path.join(root, "train", "train_label"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    if speakers:
        with open(os.path.join(root, "train", "train_meta.csv"), "w", encoding="utf-8") as f:
            f.write("\n".join(meta) + "\n")
    return str(root)


def make_2019(root, sentences=SENTENCES, repeats=2, label_files=True, map_dir=None) -> str:
    """WAV + data_list.csv + `name,<ids>` train_label + hackathon.labels (in `map_dir`, default root)."""
    sentences = [s.replace("&name&", "철수") for s in sentences]  # 2019 labels are plain characters
    chars = sorted({c for s in sentences for c in s} - {" "})
    table = ["_"] + chars + [" ", "<s>", "</s>"]
    ids = {c: i for i, c in enumerate(table)}
    data = os.path.join(root, "train", "train_data")
    os.makedirs(data, exist_ok=True)
    listing, labels = [], []
    for k in range(repeats):
        for j, text in enumerate(sentences):
            i = k * len(sentences) + j
            stem = f"wav_{i + 1:03d}"
            with open(os.path.join(data, stem + ".wav"), "wb") as f:
                f.write(wav_bytes(tone_audio(i)))
            label = " ".join(str(ids[c]) for c in text)
            listing.append(f"{stem}.wav,{stem}.label")
            labels.append(f"{stem},{label}")
            if label_files:
                with open(os.path.join(data, stem + ".label"), "w") as f:
                    f.write(label + "\n")
    with open(os.path.join(data, "data_list.csv"), "w") as f:
        f.write("\n".join(listing) + "\n")
    with open(os.path.join(root, "train", "train_label"), "w") as f:
        f.write("\n".join(labels) + "\n")
    with open(os.path.join(map_dir or root, "hackathon.labels"), "w", encoding="utf-8") as f:
        f.write("#id\tchar\tfreq\n" + "".join(f"{i}\t{c}\t1\n" for i, c in enumerate(table)))
    return str(root)


def stub_nsml(dataset_path, checkpoint_dir):
    """A minimal `nsml` module (bind/save/load/report) so main.main() can run in-process."""
    nsml = types.ModuleType("nsml")
    nsml.DATASET_PATH, nsml.IS_ON_NSML, nsml.GPU_NUM, nsml.HAS_DATASET = str(dataset_path), False, 0, True
    nsml.bound, nsml.saved, nsml.reports = {}, [], []
    nsml.bind = lambda save=None, load=None, infer=None, **kw: nsml.bound.update(save=save, load=load, infer=infer)

    def save(checkpoint=None, save_fn=None):
        d = os.path.join(str(checkpoint_dir), str(checkpoint))
        os.makedirs(d, exist_ok=True)
        nsml.bound["save"](d)
        nsml.saved.append(str(checkpoint))

    nsml.save = save
    nsml.load = lambda checkpoint, load_fn=None, session=None: nsml.bound["load"](
        os.path.join(str(checkpoint_dir), str(checkpoint)))
    nsml.report = lambda **kw: nsml.reports.append(kw)
    nsml.paused = lambda scope=None: None
    return nsml


def run_main(monkeypatch, dataset_path, checkpoint_dir, args):
    """main.main(args) with the stub nsml; returns the stub (bound functions, saved checkpoints)."""
    nsml = stub_nsml(dataset_path, checkpoint_dir)
    monkeypatch.setitem(sys.modules, "nsml", nsml)
    monkeypatch.setitem(sys.modules, "nova", nsml)  # main.py binds NOVA first: the stub plays both names
    sys.modules.pop("main", None)
    import main

    main.main(args)
    return nsml


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread in these tests: on a loaded shared machine, 2 spinning threads made a tiny
    training step ~50x slower (0.2 s vs 11 s per step measured); results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
