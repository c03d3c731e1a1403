"""A corpus of bad input: training skips what it cannot use, naming each file once; inference
returns a record for every file; nothing outside the dataset is read."""
import os
import re
import warnings

import numpy as np
import pytest
import soundfile
from data_corpora import one_torch_thread, run_main, tone_audio, wav_bytes  # noqa: F401 (autouse fixture)

from modules.checkpoint import read_checkpoint
from modules.transcribe.corpus import read_training_set

GOOD = {  # file name -> transcript, all usable
    "idx_good0": "히터 켜 줘", "idx_good1": "창문 닫아 줘", "idx_good2": "음악 틀어 줘", "idx_good3": "불 꺼 줘",
    "idx_odd": "문 열어 줘",          # odd byte count PCM: last byte ignored, with a warning
    "idx_8k.wav": "에어컨 켜 줘",      # 8 kHz WAV, resampled
    "idx_stereo.wav": "라디오 꺼 줘",  # stereo WAV, mixed down
    "idx_float.wav": "뷁 소리 줘",     # float32 WAV; '뷁' appears in no other label
    "idx_long": "긴 문장 입니다",      # 60 s
}
BAD = {  # file name -> why training cannot use it
    "idx_empty": "empty audio",
    "idx_trunc.wav": "cannot read audio header",
    "idx_missing": "label row without audio file",
}
# Usable audio, but 0.05 s cannot hold its transcript under CTC: dropped by the trainer, inferred as ''.
SHORT = {"idx_short": "아주 짧은 문장 입니다"}


def write_bad_corpus(root, encoding="utf-8"):
    data = root / "train" / "train_data"
    data.mkdir(parents=True)
    for i, name in enumerate(n for n in GOOD if n.startswith("idx_good")):
        (tone_audio(i) * 32767).astype("<i2").tofile(data / name)
    (data / "idx_odd").write_bytes((tone_audio(5) * 32767).astype("<i2").tobytes() + b"\x07")
    soundfile.write(data / "idx_8k.wav", tone_audio(6, rate=8000), 8000, format="WAV")
    soundfile.write(data / "idx_stereo.wav", np.stack([tone_audio(7), tone_audio(8)], 1), 16000, format="WAV")
    soundfile.write(data / "idx_float.wav", tone_audio(9), 16000, format="WAV", subtype="FLOAT")
    (tone_audio(10, seconds=60.0) * 32767).astype("<i2").tofile(data / "idx_long")
    (data / "idx_empty").write_bytes(b"")
    (data / "idx_trunc.wav").write_bytes(wav_bytes(tone_audio(11))[:30])
    (tone_audio(12, seconds=0.05) * 32767).astype("<i2").tofile(data / "idx_short")
    (tone_audio(13) * 32767).astype("<i2").tofile(data / "idx_nolabel")  # audio without a label row
    secret = root / "train" / "x"  # outside train_data: must never be read
    (tone_audio(14) * 32767).astype("<i2").tofile(secret)
    rows = ["filename,text"] + [f"{n},{t}" for n, t in {**GOOD, **BAD, **SHORT}.items()] + ["../x,비밀 파일"]
    text = "\n".join(rows) + "\n"
    raw = text.encode("cp949") if encoding == "cp949" else text.encode("utf-8")
    (root / "train" / "train_label").write_bytes((b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b"") + raw)
    return str(root)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_training_set_skips_bad_files_once_each(tmp_path, capsys, encoding):
    root = write_bad_corpus(tmp_path, encoding)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        utts = read_training_set(root)
    messages = [str(w.message) for w in caught]
    assert sorted(os.path.basename(u.path) for u in utts) == sorted({**GOOD, **SHORT})
    assert {os.path.basename(u.path): u.text for u in utts}["idx_float.wav"] == "뷁 소리 줘"
    for name, reason in BAD.items():
        named = [m for m in messages if re.search(rf"\b{re.escape(name)}\b", m)]
        assert len(named) == 1 and reason in named[0], (name, named)
    assert sum("'../x'" in m and "outside" in m for m in messages) == 1
    assert sum("no label row" in m and "idx_nolabel" in m for m in messages) == 1
    assert ("not UTF-8" in " ".join(messages)) == (encoding == "cp949")
    assert "4 labelled utterances skipped" in capsys.readouterr().out  # 3 bad + ../x
    data_dir = os.path.realpath(os.path.join(root, "train", "train_data"))
    assert all(os.path.dirname(u.path) == data_dir for u in utts)


def test_train_then_infer_on_bad_corpus(tmp_path, monkeypatch, capsys):
    root = write_bad_corpus(tmp_path / "ds")
    nsml = run_main(monkeypatch, root, tmp_path / "ckpt",
                    ["--dataset_path", root, "--epochs", "1", "--rnn_hidden", "32", "--rnn_layers", "1",
                     "--valid_fraction", "0.3"])
    assert nsml.saved[:2] == ["1", "best"]
    # the 60 s file is over the default --max_duration: skipped in training, named with a count
    assert re.search(r"1 utterances longer than --max_duration 40 s skipped in training.*: idx_long",
                     capsys.readouterr().out)
    _, payload = read_checkpoint(str(tmp_path / "ckpt" / "1"))
    assert payload["trainer"]["valid_files"] and "../x" not in payload["trainer"]["valid_files"]
    folder = os.path.join(root, "train", "train_data")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = nsml.bound["infer"](folder)
    assert [r["filename"] for r in records] == sorted(os.listdir(folder))
    assert all(isinstance(r["text"], str) for r in records)
    by_name = {r["filename"]: r["text"] for r in records}
    assert by_name["idx_empty"] == "" and by_name["idx_trunc.wav"] == ""
    named = " ".join(str(w.message) for w in caught)
    assert "idx_empty" in named and "idx_trunc.wav" in named
    # the 2019 per-file protocol: a string, '' for an unreadable file
    assert nsml.bound["infer"](os.path.join(folder, "idx_trunc.wav")) == ""
    assert isinstance(nsml.bound["infer"](os.path.join(folder, "idx_short")), str)
