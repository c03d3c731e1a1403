"""Bad input of every kind a participant's data has held, one table row each, plus seeded random
corruption of audio and label files. For every case: nothing crashes, training names every file it
cannot use exactly once (with the reason) and keeps every file it can, and infer returns exactly one
record per test file, in sorted order, '' for a file it cannot read."""
import builtins
import errno
import io
import os
import re
import time
import warnings

import numpy as np
import pytest
import soundfile
import torch
from data_corpora import one_torch_thread, tone_audio, wav_bytes  # noqa: F401 (autouse fixture)

import modules.audio
from modules.audio import AudioError, list_audio_files, load_audio
from modules.transcribe import auto, recipe
from modules.transcribe.corpus import read_training_set
from modules.transcribe.dataset import SpeechDataset
from modules.transcribe.decoding import DecoderConfig
from modules.transcribe.inference import transcribe_folder
from modules.transcribe.options import parse_options
from modules.transcribe.plan import make_plan

MAX_SECONDS = 5.0  # the training maximum these tests use, so that an over-long file stays small


@pytest.fixture(scope="module")
def recognizer():
    """A tiny untrained recognizer, greedy: infer's record-keeping does not depend on the weights."""
    plan = make_plan(parse_options(["--recipe", "off", "--rnn_hidden", "16", "--rnn_layers", "1"]), auto.Machine(), 1.0)
    rec = recipe.new_recognizer(plan, ["히터 켜 줘", "창문 닫아 줘"], 0, torch.device("cpu"))
    rec.decoder_config = DecoderConfig(decoder="greedy", batch_seconds=30.0)
    return rec


# ---------------------------------------------------------------------------
# Writers: each writes one file at `path`
# ---------------------------------------------------------------------------
def pcm(seconds=1.0, index=0):
    return lambda path: (tone_audio(index, seconds) * 32767).astype("<i2").tofile(path)


def sf_write(fmt, subtype, rate=16000, channels=1, samples=None):
    def write(path):
        wave = tone_audio(1, rate=rate) if samples is None else samples
        if channels == 2:
            wave = np.stack([wave, tone_audio(2, rate=rate)[:len(wave)]], 1)
        buffer = io.BytesIO()
        soundfile.write(buffer, wave, rate, format=fmt, subtype=subtype)
        with open(path, "wb") as f:
            f.write(buffer.getvalue())

    # what load_audio must give back (the chirps are functions of time: the same at every rate), so
    # that a container read as raw PCM (AU, SPHERE, W64, MP3 once were) fails, not only a crash
    write.reference = (tone_audio(1) if channels == 1 else (tone_audio(1) + tone_audio(2)) / 2) \
        if samples is None else None
    return write


def raw(data: bytes):
    return lambda path: open(path, "wb").write(data)


def with_nan(path):
    wave = tone_audio(3).copy()
    wave[100] = np.nan
    sf_write("WAV", "FLOAT", samples=wave)(path)


def wav_with_rate(rate):
    """A WAV whose header claims `rate` (a damaged header)."""
    def write(path):
        data = bytearray(wav_bytes(tone_audio(4), info=False))
        data[24:28] = int(rate).to_bytes(4, "little")
        data[28:32] = int(rate * 2).to_bytes(4, "little")
        open(path, "wb").write(bytes(data))
    return write


LABEL_TEXT = ("filename,text\n" + "idx_0,히터 켜 줘\n" * 40).encode("utf-8")

# name, writer (None: no file), transcript, what training does ('use' or the reason it names),
# what infer gives ('' for a file it cannot read, 'text' for a transcript, None: not a test file)
CASES = [
    ("idx_pcm", pcm(), "히터 켜 줘", "use", "text"),
    ("idx_pcm_odd", lambda p: open(p, "wb").write((tone_audio(5) * 32767).astype("<i2").tobytes() + b"\1"),
     "창문 닫아 줘", "use", "text"),
    ("idx_silence", raw(bytes(32000)), "불 꺼 줘", "use", "text"),
    ("idx_empty", raw(b""), "불 꺼 줘", "empty audio", ""),
    ("idx_one_byte", raw(b"\1"), "불 꺼 줘", "empty audio", ""),
    ("a.wav", sf_write("WAV", "PCM_16"), "문 열어 줘", "use", "text"),
    ("a_u8.wav", sf_write("WAV", "PCM_U8"), "문 열어 줘", "use", "text"),
    ("a_24.wav", sf_write("WAV", "PCM_24"), "문 열어 줘", "use", "text"),
    ("a_32.wav", sf_write("WAV", "PCM_32"), "문 열어 줘", "use", "text"),
    ("a_float.wav", sf_write("WAV", "FLOAT"), "문 열어 줘", "use", "text"),
    ("a_double.wav", sf_write("WAV", "DOUBLE"), "문 열어 줘", "use", "text"),
    ("a_stereo.wav", sf_write("WAV", "PCM_16", channels=2), "문 열어 줘", "use", "text"),
    ("a_8k.wav", sf_write("WAV", "PCM_16", rate=8000), "문 열어 줘", "use", "text"),
    ("a_48k.wav", sf_write("WAV", "PCM_16", rate=48000), "문 열어 줘", "use", "text"),
    ("a_info.wav", lambda p: open(p, "wb").write(wav_bytes(tone_audio(6))), "문 열어 줘", "use", "text"),
    ("a_wavex.wav", sf_write("WAVEX", "PCM_16"), "문 열어 줘", "use", "text"),
    ("a.rf64", sf_write("RF64", "PCM_16"), "문 열어 줘", "use", "text"),
    ("a.w64", sf_write("W64", "PCM_16"), "문 열어 줘", "use", "text"),
    ("a.flac", sf_write("FLAC", "PCM_16"), "문 열어 줘", "use", "text"),
    ("a.ogg", sf_write("OGG", "VORBIS"), "문 열어 줘", "use", "text"),
    ("a.aiff", sf_write("AIFF", "PCM_16"), "문 열어 줘", "use", "text"),
    ("a.au", sf_write("AU", "PCM_16"), "문 열어 줘", "use", "text"),   # big-endian
    ("a.sph", sf_write("NIST", "PCM_16"), "문 열어 줘", "use", "text"),
    ("a.caf", sf_write("CAF", "PCM_16"), "문 열어 줘", "use", "text"),
    ("a.mp3", sf_write("MP3", "MPEG_LAYER_III"), "문 열어 줘", "use", "text"),
    ("flac_named.wav", sf_write("FLAC", "PCM_16"), "문 열어 줘", "use", "text"),   # content, not extension
    ("idx_flac", sf_write("FLAC", "PCM_16"), "문 열어 줘", "use", "text"),          # a container without a name
    ("wav_named.pcm", sf_write("WAV", "PCM_16", rate=8000), "문 열어 줘", "use", "text"),
    ("pcm_named.wav", pcm(), "문 열어 줘", "use", "text"),     # raw PCM under a .wav name: still PCM
    ("한글 이름, 쉼표.wav", sf_write("WAV", "PCM_16"), "문 열어 줘", "use", "text"),
    ("trunc.wav", lambda p: open(p, "wb").write(wav_bytes(tone_audio(7))[:30]), "불 꺼 줘", "cannot read audio", ""),
    ("text.wav", raw(LABEL_TEXT), "불 꺼 줘", "looks like text", ""),
    ("idx_text", raw(LABEL_TEXT), "불 꺼 줘", "looks like text", ""),
    ("html.mp3", raw(b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n" * 50), "불 꺼 줘",
     "looks like text", ""),
    ("noise.mp3", raw(np.random.default_rng(0).integers(0, 256, 9000, dtype=np.uint8).tobytes()), "불 꺼 줘",
     "soundfile cannot read it", ""),   # a compressed format's name: never read as PCM
    ("cp949.wav", raw("이것은 오디오가 아닙니다\r\n".encode("cp949") * 50), "불 꺼 줘", "looks like text", ""),
    ("nan.wav", with_nan, "불 꺼 줘", "NaN", ""),
    ("rate1.wav", wav_with_rate(1), "불 꺼 줘", "sample rate", ""),
    ("idx_long", pcm(seconds=MAX_SECONDS + 1), "긴 문장", "longer than the maximum duration", "text"),
    ("idx_missing", None, "불 꺼 줘", "label row without audio file", None),
    ("idx_no_text", pcm(), "", "empty transcript", "text"),
    ("idx_vocab", pcm(), "ÆØÅ ☃ 𝄞", "use", "text"),   # characters no other label has
    ("idx_denied", pcm(), "불 꺼 줘", "Permission denied", ""),
    ("io_error.wav", sf_write("WAV", "PCM_16"), "불 꺼 줘", "Input/output error", ""),
]
FAILING_OPEN = {"idx_denied": errno.EACCES, "io_error.wav": errno.EIO}  # root ignores chmod: simulated


@pytest.fixture
def failing_open(monkeypatch):
    """Opening the FAILING_OPEN files in modules.audio raises their error, as a file without read
    permission or on a failing network disk does (the stat still succeeds)."""
    def open_(path, *args, **kwargs):
        code = FAILING_OPEN.get(os.path.basename(str(path)))
        if code:
            raise OSError(code, os.strerror(code), str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(modules.audio, "open", open_, raising=False)


def write_dataset(root, cases):
    data = root / "train" / "train_data"
    data.mkdir(parents=True)
    rows = ["filename,text"]
    for name, writer, text, _, _ in cases:
        if writer is not None:
            writer(str(data / name))
        rows.append(f'"{name}",{text}')
    (root / "train" / "train_label").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(root), str(data)


def named_in(messages, name):
    """The messages that name file `name` (as a path or quoted), not a file whose name contains it."""
    pattern = re.compile(rf"(^|[/'\"]){re.escape(name)}($|[:'\",; ])")
    return [m for m in messages if pattern.search(m)]


def train_side(root, recognizer):
    """What training does with the dataset: the utterances it keeps, after read_training_set and
    loading each one as the training loader does; the warnings of both."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            utterances = read_training_set(root, max_seconds=MAX_SECONDS)
        except ValueError as e:  # no usable utterance at all: a clear error naming the dataset
            assert root in str(e)
            utterances = []
        dataset = SpeechDataset(utterances, recognizer.tokenizer)
        loaded = {os.path.basename(utterances[item[0]].path) for item in map(dataset.__getitem__, range(len(dataset)))
                  if item is not None}
    return loaded, [str(w.message) for w in caught]


def infer_side(folder, recognizer):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = transcribe_folder(recognizer, folder, progress=False)
    return records, [str(w.message) for w in caught]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_bad_input(case, tmp_path, recognizer, failing_open):
    name, _, _, training, inferred = case
    good = ("idx_good", pcm(index=9), "음악 틀어 줘", "use", "text")  # so a dataset is never empty
    root, folder = write_dataset(tmp_path, [good, case])

    loaded, messages = train_side(root, recognizer)
    assert "idx_good" in loaded
    if training == "use":
        assert name in loaded, messages
        assert not [m for m in named_in(messages, name) if "skipped" in m], messages
        reference = getattr(case[1], "reference", None)
        if reference is not None:
            wave = load_audio(os.path.join(folder, name))
            assert abs(len(wave) - len(reference)) < 0.01 * 16000, (len(wave), len(reference))
            n = min(len(wave), len(reference))
            assert np.corrcoef(wave[:n], reference[:n])[0, 1] > 0.95
    else:
        assert name not in loaded
        named = named_in(messages, name)
        assert len(named) == 1 and training in named[0], (name, messages)

    records, messages = infer_side(folder, recognizer)
    assert [r["filename"] for r in records] == list_audio_files(folder) == sorted(list_audio_files(folder))
    assert all(isinstance(r["text"], str) for r in records)
    by_name = {r["filename"]: r["text"] for r in records}
    if inferred is None:
        assert name not in by_name
    elif inferred == "":
        assert by_name[name] == "" and len(named_in(messages, name)) == 1, messages
    else:
        assert all(re.search("odd byte count|read as raw", m) for m in named_in(messages, name)), messages


def test_label_file_kinds(tmp_path):
    """Label files: encodings, BOM, line ends, quoting, commas, duplicates, sizes; each read or named."""
    data = tmp_path / "train" / "train_data"
    data.mkdir(parents=True)
    for i in range(4):
        pcm(index=i)(str(data / f"idx_{i}"))
    label = tmp_path / "train" / "train_label"

    def read(raw_bytes):
        label.write_bytes(raw_bytes)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            utts = read_training_set(str(tmp_path))
        return {os.path.basename(u.path): u.text for u in utts}, [str(w.message) for w in caught]

    rows = "filename,text\nidx_0,히터 켜 줘\nidx_1,창문 닫아 줘\n"
    assert read(rows.encode("cp949"))[0] == {"idx_0": "히터 켜 줘", "idx_1": "창문 닫아 줘"}
    assert read(b"\xef\xbb\xbf" + rows.encode())[0] == {"idx_0": "히터 켜 줘", "idx_1": "창문 닫아 줘"}
    assert read(rows.replace("\n", "\r\n").encode())[0] == {"idx_0": "히터 켜 줘", "idx_1": "창문 닫아 줘"}
    assert read(rows.replace("\n", "\r").encode())[0] == {"idx_0": "히터 켜 줘", "idx_1": "창문 닫아 줘"}
    assert read(b"filename,text\nidx_0,\"a, b\"\n")[0] == {"idx_0": "a, b"}

    texts, messages = read(b"filename,text\nidx_0,a, b\nidx_1,c\n")  # an unquoted comma
    assert texts == {"idx_0": "a, b", "idx_1": "c"}
    assert any("train_label:2" in m and "unquoted comma" in m for m in messages)

    texts, messages = read("filename,text\nidx_0,하나\nidx_1,둘\nidx_0,셋\nidx_1,둘\n".encode())
    assert texts == {"idx_0": "하나", "idx_1": "둘"}  # the first row of each file is kept
    dup = [m for m in messages if "labelled twice" in m]
    assert len(dup) == 1 and "train_label:2" in dup[0] and "train_label:4" in dup[0] and "'셋'" in dup[0]

    texts, messages = read(b"filename,text\nidx_0,a\nidx_1,\"unclosed\nidx_2,c\nidx_3,d\n")
    assert texts == {"idx_0": "a"} and any("train_label:3-5" in m and "unclosed quote" in m for m in messages)

    texts, messages = read(("filename,text\nidx_0,a\nidx_1," + "가" * 140_000 + "\n").encode())
    assert texts == {"idx_0": "a"} and any("train_label:3" in m and "140000 characters" in m for m in messages)

    with pytest.raises(ValueError, match=rf"{re.escape(str(label))}: empty label file"):
        read(b"")
    with pytest.raises(ValueError, match=r"expected a header"):
        read(b"name,transcript\nidx_0,a\n")
    with pytest.raises(ValueError, match=r"no usable training utterance"):
        read(b"filename,text\n")


# ---------------------------------------------------------------------------
# Seeded random corruption
# ---------------------------------------------------------------------------
def corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    """One random damage: flipped bytes, a cut, inserted junk, a zeroed or garbled header."""
    data = bytearray(data)
    kind = rng.integers(5)
    if kind == 0:  # flip a few bytes anywhere, header included
        for i in rng.integers(0, len(data), size=rng.integers(1, 16)):
            data[i] ^= int(rng.integers(1, 256))
    elif kind == 1:  # cut short
        del data[int(rng.integers(0, len(data))):]
    elif kind == 2:  # junk inserted
        at = int(rng.integers(0, len(data)))
        data[at:at] = rng.integers(0, 256, size=int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
    elif kind == 3:  # header garbled
        n = min(len(data), int(rng.integers(4, 64)))
        data[:n] = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
    else:  # header kept, the rest garbage
        n = min(len(data), int(rng.integers(12, 64)))
        data[n:] = rng.integers(0, 256, size=len(data) - n, dtype=np.uint8).tobytes()
    return bytes(data)


def base_files():
    wave = tone_audio(8, seconds=0.3)
    files = {"pcm": (wave * 32767).astype("<i2").tobytes()}
    for ext, fmt, subtype in [("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"),
                              ("mp3", "MPEG", "MPEG_LAYER_III"), ("au", "AU", "PCM_16"), ("aiff", "AIFF", "PCM_16"),
                              ("sph", "NIST", "PCM_16"), ("w64", "W64", "PCM_16")]:
        buffer = io.BytesIO()
        soundfile.write(buffer, wave, 16000, format="MP3" if fmt == "MPEG" else fmt, subtype=subtype)
        files[ext] = buffer.getvalue()
    return files


def test_random_audio_corruption(tmp_path, recognizer):
    rng = np.random.default_rng(21)
    start = time.time()
    data = tmp_path / "train" / "train_data"
    data.mkdir(parents=True)
    names, bases = [], base_files()
    for i in range(300):
        ext = list(bases)[i % len(bases)]
        name = f"idx_{i:03d}" if ext == "pcm" else f"f_{i:03d}.{ext}"
        (data / name).write_bytes(corrupt(bases[ext], rng))
        names.append(name)
    (tmp_path / "train" / "train_label").write_text(
        "filename,text\n" + "".join(f"{n},히터 켜 줘\n" for n in names), encoding="utf-8")

    loaded, messages = train_side(str(tmp_path), recognizer)
    for name in names:
        named = [m for m in named_in(messages, name) if "skipped" in m]
        assert len(named) == (0 if name in loaded else 1), (name, named)
    for name in loaded:  # what training keeps is finite audio
        assert np.isfinite(load_audio(str(data / name))).all()

    records, messages = infer_side(str(data), recognizer)
    assert [r["filename"] for r in records] == sorted(names)
    for r in records:
        named = named_in(messages, r["filename"])
        unreadable = [m for m in named if "transcript will be empty" in m]
        assert len(unreadable) <= 1 and (r["text"] == "" or not unreadable)
        assert all(re.search("odd byte|read as raw", m) for m in named if m not in unreadable)
    assert time.time() - start < 60


def test_random_label_corruption(tmp_path):
    """Damaged label files are read (rows that do not parse named with file and line) or refused with
    an error naming the file or the dataset; never another exception."""
    rng = np.random.default_rng(2021)
    data = tmp_path / "train" / "train_data"
    data.mkdir(parents=True)
    for i in range(10):
        pcm(seconds=0.3, index=i)(str(data / f"idx_{i}"))
    clean = ("filename,text,speaker\n" + "".join(f"idx_{i},히터 켜 줘 {i},s{i % 3}\n" for i in range(10)))
    label = tmp_path / "train" / "train_label"
    for encoding in ["utf-8", "cp949", "utf-8-sig"]:
        for _ in range(50):
            label.write_bytes(corrupt(clean.encode(encoding), rng))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    utts = read_training_set(str(tmp_path))
                except ValueError as e:
                    assert str(label) in str(e) or str(tmp_path) in str(e), e
                    continue
            assert all(os.path.dirname(u.path) == os.path.realpath(data) for u in utts)
            for w in caught:
                assert str(label) in str(w.message) or str(data) in str(w.message) or "idx_" in str(w.message)


def test_audio_errors_are_audio_errors(tmp_path, failing_open):
    """load_audio turns a permission or I/O error into an AudioError naming the file and cause."""
    path = tmp_path / "idx_denied"
    pcm()(str(path))
    with pytest.raises(AudioError, match=rf"{re.escape(str(path))}: cannot read \(Permission denied\)"):
        load_audio(str(path))
