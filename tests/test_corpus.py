"""Tests of tools/make_corpus.py: a tiny corpus in both NSML layouts."""
import csv
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("scipy")

TOOLS = Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))

import korean_text  # noqa: E402
import make_corpus  # noqa: E402
import synthesis  # noqa: E402

if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng)",
                allow_module_level=True)

TINY = ["--train-utts", "8", "--test-utts", "4", "--seed", "7", "--no-progress", "--jobs", "2"]


def make(out: Path, *extra: str) -> Path:
    make_corpus.main(["--out", str(out), *TINY, *extra])
    return out


@pytest.fixture(scope="module")
def corpus2022(tmp_path_factory):
    return make(tmp_path_factory.mktemp("c2022") / "ds")


@pytest.fixture(scope="module")
def corpus2019(tmp_path_factory):
    return make(tmp_path_factory.mktemp("c2019") / "ds", "--layout", "2019")


def read_csv(path: Path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def wav_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    ids, pos = [], 12
    while pos < len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        ids.append(cid)
        pos += 8 + size + (size & 1)
    return ids


# ---- 2022 layout -----------------------------------------------------------
def test_2022_layout(corpus2022):
    root = corpus2022
    train = read_csv(root / "train" / "train_label")
    test = read_csv(root / "test" / "test_label")
    assert train[0] == ["filename", "text"] and test[0] == ["filename", "text"]
    assert [r[0] for r in train[1:]] == [f"idx_{i:06d}" for i in range(8)]
    assert [r[0] for r in test[1:]] == [f"test_{i:06d}" for i in range(4)]
    assert sorted(p.name for p in (root / "train" / "train_data").iterdir()) == [r[0] for r in train[1:]]
    assert sorted(p.name for p in (root / "test" / "test_data").iterdir()) == [r[0] for r in test[1:]]
    meta = read_csv(root / "train" / "train_meta.csv")
    assert meta[0] == ["filename", "speaker", "sentence_id"] and len(meta) == 9
    for name, text in train[1:] + test[1:]:
        assert text and text == text.strip() and "&" not in text


def test_2022_pcm_plausible(corpus2022):
    for split in ("train", "test"):
        for f in (corpus2022 / split / f"{split}_data").iterdir():
            n = f.stat().st_size
            assert n % 2 == 0
            secs = n / 2 / 16000
            assert 0.5 < secs < 15, (f, secs)
            x = np.fromfile(f, dtype="<i2").astype(np.float64)
            assert 0.02 < np.abs(x).max() / 32768 <= 1.0          # not silent, not garbage
            # speech is louder than the padded start (silence + noise only)
            frames = x[: len(x) // 400 * 400].reshape(-1, 400)
            energy = (frames ** 2).mean(axis=1)
            assert energy.max() > 10 * energy[0]


def test_train_test_disjoint(corpus2022):
    train = {r[1] for r in read_csv(corpus2022 / "train" / "train_label")[1:]}
    test = {r[1] for r in read_csv(corpus2022 / "test" / "test_label")[1:]}
    assert not train & test
    share = make_corpus.Options(out=Path(".")).test_sentence_share
    assert all(korean_text.is_test_sentence(t, share) for t in test)
    assert not any(korean_text.is_test_sentence(t, share) for t in train)
    train_voices = {r[1] for r in read_csv(corpus2022 / "train" / "train_meta.csv")[1:]}
    test_voices = {r[1] for r in read_csv(corpus2022 / "test" / "test_meta.csv")[1:]}
    assert train_voices and test_voices and not train_voices & test_voices
    all_train, all_test = make_corpus.split_voices(synthesis.VOICE_VARIANTS, 0.2)
    assert not set(all_train) & set(all_test)
    assert train_voices <= set(all_train) and test_voices <= set(all_test)


def test_same_seed_same_files(corpus2022, tmp_path):
    again = make(tmp_path / "again", "--jobs", "1")  # another worker count, too
    files = sorted(p.relative_to(corpus2022) for p in corpus2022.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (corpus2022 / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_other_seed_other_plan():
    gen = korean_text.SentenceGenerator()
    voices, _ = make_corpus.split_voices(synthesis.VOICE_VARIANTS, 0.2)

    def plan(seed):
        opt = make_corpus.Options(out=Path("."), seed=seed)
        return [(u.label, u.voice, u.speed, u.pitch)
                for _, u in zip(range(20), make_corpus.plan_utterances("train", voices, gen, opt))]
    assert plan(1) == plan(1) and plan(1) != plan(2)


def test_test_known_chars_plan():
    gen = korean_text.SentenceGenerator("commands", slot_limit=2)
    train_voices, test_voices = make_corpus.split_voices(synthesis.VOICE_VARIANTS, 0.2)
    opt = make_corpus.Options(out=Path("."), test_known_chars=True)
    train = [u for _, u in zip(range(40), make_corpus.plan_utterances("train", train_voices, gen, opt))]
    charset = {c for u in train for c in u.label}
    test = [u for _, u in zip(range(10), make_corpus.plan_utterances("test", test_voices, gen, opt,
                                                                     charset))]
    assert all(set(u.label) <= charset for u in test)
    assert not {u.label for u in train} & {u.label for u in test}


# ---- 2019 layout -----------------------------------------------------------
def test_2019_layout_and_wav(corpus2019):
    sf = pytest.importorskip("soundfile")
    data = corpus2019 / "train" / "train_data"
    listing = (data / "data_list.csv").read_text(encoding="utf-8").splitlines()
    assert listing == [f"wav_{i:06d}.wav,wav_{i:06d}.label" for i in range(1, 9)]
    for line in listing:
        wav, label = line.split(",")
        assert (data / label).exists()
        raw = (data / wav).read_bytes()
        chunks = wav_chunks(raw)
        assert chunks.index(b"LIST") < chunks.index(b"data") and chunks[0] == b"fmt "
        x, sr = sf.read(data / wav, dtype="int16")
        assert sr == 16000 and x.ndim == 1 and 0.5 < len(x) / sr < 15
        assert sf.info(data / wav).subtype == "PCM_16"
    test_list = (corpus2019 / "test" / "test_data" / "test_list.csv").read_text().splitlines()
    assert test_list == [f"test_{i:06d}.wav" for i in range(1, 5)]
    test_label = read_csv(corpus2019 / "test" / "test_label")
    assert test_label[0] == ["filename", "text"] and [r[0] for r in test_label[1:]] == test_list
    for name in test_list:
        assert wav_chunks((corpus2019 / "test" / "test_data" / name).read_bytes())[-1] == b"data"


def test_2019_labels_decode(corpus2019, corpus2022):
    lines = (corpus2019 / "hackathon.labels").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#id\tchar\tfreq"
    entries = [ln.split("\t") for ln in lines[1:]]
    assert [int(e[0]) for e in entries] == list(range(len(entries)))
    assert entries[0][1] == "_" and [e[1] for e in entries[-2:]] == ["<s>", "</s>"]
    assert any(e[1] == " " for e in entries)
    index2char = make_corpus.read_label_map(corpus2019 / "hackathon.labels")
    decoded = []
    for line in (corpus2019 / "train" / "train_label").read_text(encoding="utf-8").splitlines():
        key, ids = line.split(",")
        assert key.startswith("wav_") and not key.endswith(".wav")
        assert (corpus2019 / "train" / "train_data" / f"{key}.label").read_text().split() == ids.split()
        decoded.append("".join(index2char[int(i)] for i in ids.split()))
    # the same seed gives the same sentences in both layouts
    originals = [r[1] for r in read_csv(corpus2022 / "train" / "train_label")[1:]]
    assert decoded == originals
    test_texts = [r[1] for r in read_csv(corpus2019 / "test" / "test_label")[1:]]
    assert test_texts == [r[1] for r in read_csv(corpus2022 / "test" / "test_label")[1:]]
    for text in test_texts:  # the label map covers the test side too
        assert set(text) <= set(index2char.values())


# ---- text and errors -------------------------------------------------------
def test_particles_and_numbers():
    rp = korean_text.resolve_particles
    assert rp("서울역(으)로") == "서울역으로" and rp("서울(으)로") == "서울로"
    assert rp("이십삼 도(으)로") == "이십삼 도로"
    assert rp("문(을)를") == "문을" and rp("트렁크(을)를") == "트렁크를"
    assert korean_text.sino(23) == "이십삼" and korean_text.sino(110) == "백십"
    assert korean_text.native(3) == "세" and korean_text.native(20) == "스무"


def test_grammar_is_large_and_masks_only_on_request():
    gen = korean_text.SentenceGenerator("all")
    assert gen.count() > 20000
    rng = np.random.default_rng(0)
    assert not any("&" in gen.draw(rng).label for _ in range(300))
    masked = korean_text.SentenceGenerator("all", masked=True)
    drawn = [masked.draw(rng) for _ in range(2000)]
    with_mask = [s for s in drawn if "&name&" in s.label]
    assert with_mask and all("&" not in s.spoken for s in with_mask)


def test_missing_espeak_message(tmp_path):
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no espeak-ng on this PATH
    r = subprocess.run([sys.executable, str(TOOLS / "make_corpus.py"), "--out",
                        str(tmp_path / "x"), "--train-utts", "1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("error: espeak-ng is not installed")
    assert "apt-get install" in r.stderr
