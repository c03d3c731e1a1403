"""The data path's fast forms (bench/scale.py measures them at 600,000 rows) give what the plain
per-item forms give: durations and skipped files, paths, normalised texts, label columns, units,
targets, the split's guarantees on a large set, and the loader settings by device."""
import os
import random
import re
import unicodedata
import warnings

import numpy as np
import pytest
import soundfile
import torch
from data_corpora import one_torch_thread, tone_audio, wav_bytes  # noqa: F401 (autouse fixture)

from modules import loading
from modules.audio import usable_duration, usable_durations
from modules.features import FeatureConfig
from modules.text import read_label_columns, read_label_records, safe_join
from modules.transcribe.corpus import Utterance, resolve_paths
from modules.transcribe.dataset import PackedStrings, Targets
from modules.transcribe.normalize import MASK_PATTERN, TextConfig, _DUAL, _FILLER, _NOISE, normalize_text
from modules.transcribe.recognizer import SpeechRecognizer
from modules.transcribe.split import split_by_sentence
from modules.transcribe.tokenizers import CharTokenizer, JamoTokenizer, SentencePieceTokenizer, build_tokenizer
from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig


# ---------------------------------------------------------------------------
# Durations and paths
# ---------------------------------------------------------------------------
def audio_folder(root):
    """Every kind of file a label row can point at, good and bad."""
    data = root / "train_data"
    data.mkdir()
    (tone_audio(0) * 32767).astype("<i2").tofile(data / "idx_pcm")
    (tone_audio(1) * 32767).astype("<i2").tofile(data / "idx_raw.pcm")
    (data / "idx_odd").write_bytes((tone_audio(2) * 32767).astype("<i2").tobytes() + b"\x01")
    (data / "idx_empty").write_bytes(b"")
    (data / "idx_one_byte").write_bytes(b"\x01")
    soundfile.write(data / "idx_8k.wav", tone_audio(3, rate=8000), 8000, format="WAV")
    soundfile.write(data / "idx.flac", tone_audio(4), 16000, format="FLAC")
    (data / "idx_trunc.wav").write_bytes(wav_bytes(tone_audio(5))[:30])
    (data / "a_folder").mkdir()
    outside = root / "outside"
    (tone_audio(6) * 32767).astype("<i2").tofile(outside)
    os.symlink(outside, data / "idx_link_out")
    os.symlink(data / "idx_pcm", data / "idx_link_in")
    return data


def test_usable_durations_match_usable_duration_file_by_file(tmp_path):
    data = audio_folder(tmp_path)
    names = sorted(os.listdir(data)) + ["idx_missing", "idx_missing.wav"]
    paths = [str(data / n) for n in names]
    durations, reasons = usable_durations(paths)
    for i, path in enumerate(paths):
        duration, reason = usable_duration(path)
        assert reasons.get(i) == reason, path
        assert (np.isnan(durations[i]) if duration is None else durations[i] == duration), path
    skipped = {names[i]: r for i, r in reasons.items()}
    assert skipped == {"a_folder": "label row without audio file", "idx_missing": "label row without audio file",
                       "idx_missing.wav": "label row without audio file", "idx_empty": "empty audio",
                       "idx_one_byte": "empty audio", "idx_trunc.wav": skipped["idx_trunc.wav"]}
    assert "cannot read audio header" in skipped["idx_trunc.wav"]
    assert durations[names.index("idx_8k.wav")] == pytest.approx(1.2)


def test_usable_durations_read_headers_when_pcm_named_files_are_containers(tmp_path):
    """A WAV without its extension among the first files: every file is read as usable_duration does."""
    paths = []
    for i in range(3):
        path = tmp_path / f"u{i}"
        path.write_bytes(wav_bytes(tone_audio(i, rate=8000), rate=8000))
        paths.append(str(path))
    durations, reasons = usable_durations(paths)
    assert not reasons and durations.tolist() == [usable_duration(p)[0] for p in paths] == pytest.approx([1.2] * 3)


def test_resolve_paths_is_safe_join_name_by_name(tmp_path):
    data = audio_folder(tmp_path)
    (data / "sub").mkdir()
    (tone_audio(7) * 32767).astype("<i2").tofile(data / "sub" / "deep")
    names = sorted(os.listdir(data)) + ["idx_missing", "../outside", "sub/deep", "sub/../idx_pcm", "", ".", "..",
                                        str(tmp_path / "outside"), str(data / "idx_pcm"), "./idx_pcm"]
    assert resolve_paths(str(data), names) == [safe_join(str(data), n) for n in names]
    resolved = dict(zip(names, resolve_paths(str(data), names)))
    assert resolved["idx_link_out"] is None and resolved["../outside"] is None
    assert resolved["idx_link_in"] == os.path.join(os.path.realpath(data), "idx_pcm")


# ---------------------------------------------------------------------------
# Texts
# ---------------------------------------------------------------------------
def normalize_reference(text: str, config: TextConfig) -> str:
    """normalize_text as it was before its shortcuts: every pass, unconditionally."""
    side = 1 if config.dual == "spelling" else 2
    text = unicodedata.normalize("NFC", text)
    text = _DUAL.sub(lambda m: m.group(side), text)
    pieces = MASK_PATTERN.split(text)
    for i in range(0, len(pieces), 2):
        p = pieces[i]
        if config.remove_noise_tags:
            p = _FILLER.sub("", _NOISE.sub(" ", p))
            p = p.replace("+", "").replace("*", "")
        if config.punctuation == "remove":
            p = "".join(" " if unicodedata.category(c).startswith("P") else c for c in p)
        pieces[i] = p
    text = re.sub(r"\s+", " ", "".join(pieces)).strip()
    return text if config.keep_spaces else text.replace(" ", "")


def random_texts(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    pieces = list("가나뷁힣 ab1ol/nub+*()?.,&\t") + ["\u3000", "\n", "&name&", "&tel-num&", "\u1100\u1161",
                                                   "e\u0301", "(3시)/(세 시)", "o/ ", "어/ ", "  ", "휴가 때 "]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 10))) for _ in range(n)]


def test_normalize_text_shortcuts_give_what_every_pass_gives():
    configs = [TextConfig(), TextConfig(keep_spaces=False), TextConfig(dual="pronunciation"),
               TextConfig(punctuation="remove"), TextConfig(remove_noise_tags=False)]
    texts = random_texts(20000) + ["휴가 때 엄마랑 놀이공원에 갈 거예요", "abc 123 가나", "가", ""]
    for config in configs:
        for t in texts:
            assert normalize_text(t, config) == normalize_reference(t, config), (t, config)


def test_label_columns_are_the_records_by_column(tmp_path):
    path = tmp_path / "train_label"
    path.write_text("FileName , Text,speaker,text\n"      # a repeated column name: its last column wins
                    " a ,가 나,s1,다\n"
                    "\n"
                    ",,,\n"                              # blank: skipped silently
                    "b,라\n"                             # short: named in a warning, skipped
                    "c,마,s2,바,extra\n"                 # long: the extra cell joins the last column, 'text'
                    ",사,s3,아\n", encoding="utf-8")     # empty file name: kept (the reader names it later)
    with pytest.warns(UserWarning) as caught:
        columns = read_label_columns(str(path))
    messages = [str(w.message) for w in caught]
    assert any("train_label:5: malformed row" in m for m in messages)
    assert any("train_label:6: 5 cells for 4 columns" in m for m in messages)
    assert columns == {"filename": ["a", "c", ""], "text": ["다", "바,extra", "아"], "speaker": ["s1", "s2", "s3"]}
    with pytest.warns(UserWarning):
        records = read_label_records(str(path))
    assert records == [{"filename": "a", "text": "다", "speaker": "s1"}, {"filename": "c", "text": "바,extra", "speaker": "s2"},
                       {"filename": "", "text": "아", "speaker": "s3"}]


# ---------------------------------------------------------------------------
# Units and targets
# ---------------------------------------------------------------------------
def units_reference(tokenizer, text):
    units = []
    for i, piece in enumerate(MASK_PATTERN.split(text)):
        if i % 2:
            units.append(piece)
        else:
            for c in piece:
                units.extend(unicodedata.normalize("NFD", c) if tokenizer is JamoTokenizer else c)
    return units


@pytest.mark.parametrize("kind", [CharTokenizer, JamoTokenizer])
def test_units_and_batch_encoding_match_text_by_text(kind):
    texts = random_texts(5000, seed=1)
    assert all(kind.split(t) == units_reference(kind, t) for t in texts)
    assert kind.units_of(texts) == {u for t in texts for u in units_reference(kind, t)}
    tokenizer = kind.build(texts[:2500])  # the rest holds units it never saw: <unk>
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [[tokenizer.index.get(u, 1) for u in units_reference(kind, t)] for t in texts]
        assert [tokenizer.encode(t) for t in texts] == expected
        ids, lengths = tokenizer.encode_batch(texts, chunk=777)
    targets = Targets(ids, lengths)
    assert [targets[i].tolist() for i in range(len(texts))] == expected
    assert ids.dtype == (np.uint8 if len(tokenizer) <= 256 else np.uint16) and targets[0].dtype == torch.long


def test_wide_vocabularies_and_subwords_encode_in_batches_too():
    wide = CharTokenizer(["<blank>", "<unk>"] + [chr(0x4E00 + i) for i in range(300)])
    ids, lengths = wide.encode_batch(["一丁", "", "丁丁一"])
    assert ids.dtype == np.uint16 and ids.tolist() == [2, 3, 3, 3, 2] and lengths.tolist() == [2, 0, 3]
    texts = ["휴가 때 엄마랑 놀이공원에 갈 거예요", "토요일 새벽 여섯 시 반에 깨워 줘", "&name& 에게 전화해 줘"] * 20
    spm = SentencePieceTokenizer.build(texts, vocab_size=60)
    ids, lengths = spm.encode_batch(texts)
    targets = Targets(ids, lengths)
    assert [targets[i].tolist() for i in range(len(texts))] == [spm.encode(t) for t in texts]


def test_targets_select_and_packed_strings():
    rng = np.random.default_rng(0)
    rows = [rng.integers(2, 60, size=rng.integers(0, 9)).tolist() for _ in range(300)]
    targets = Targets(np.array([i for r in rows for i in r], dtype=np.uint8), [len(r) for r in rows])
    for indices in ([], [7], sorted(rng.choice(300, 120, replace=False)), [5, 3, 3, 299, 0]):
        for copies in (1, 2):
            chosen = targets.select(indices, copies)
            assert [chosen[k].tolist() for k in range(len(chosen))] == [rows[i] for i in list(indices) * copies]
    strings = ["/data/idx_0000001", "", "한국어 경로/파일.wav", "x" * 300]
    packed = PackedStrings(strings)
    assert len(packed) == 4 and [packed[i] for i in range(4)] == strings


def test_trainer_keeps_what_fits_and_loads_each_item_with_its_own_targets(tmp_path):
    texts = ["가나다", "라마바사", "아자", "차카타파하 가나다라마바사 아자차카타파하 가나다라"]  # the last is too long
    utts = []
    for i, text in enumerate(texts):
        path = str(tmp_path / f"u{i}")
        (tone_audio(i, seconds=1.0) * 32767).astype("<i2").tofile(path)
        utts.append(Utterance(path, text, 1.0))
    rec = SpeechRecognizer.create("deepspeech2", build_tokenizer("jamo", texts), FeatureConfig(n_mels=40),
                                  TextConfig(), torch.device("cpu"), rnn_hidden=16, rnn_layers=1, time_stride=4)
    with pytest.warns(UserWarning, match=rf"u3: 1.00 s is too short for its {len(texts[3])}-character transcript"):
        trainer = SpeechTrainer(rec, TrainConfig(**NO_AUGMENTATION, specaugment=True, specaugment_copies=True), utts, utts[:2])
    assert trainer.train_utts == utts[:3] and trainer.epoch_utts == utts[:3] * 2
    for loader, expected in ((trainer.train_loader, trainer.epoch_utts), (trainer.valid_loader, utts[:2])):
        dataset = loader.dataset
        assert len(dataset) == len(expected)
        for i, u in enumerate(expected):
            index, wave, target = dataset[i]
            assert index == i and dataset.paths[i] == u.path and len(wave) == 16000
            assert target.tolist() == rec.tokenizer.encode(u.text)
    assert trainer.num_workers == 0 and not trainer.train_loader.pin_memory  # CPU: auto = no workers


# ---------------------------------------------------------------------------
# The split
# ---------------------------------------------------------------------------
def test_split_guarantees_on_a_large_set_with_speakers():
    rng = random.Random(0)
    utts = []
    for i in range(60000):  # 300 speakers reading from 20,000 sentences, a few shared between speakers
        speaker = f"s{i // 200}"
        sentence = rng.randrange(20000) if rng.random() < 0.0005 else (i // 200) * 1000 + rng.randrange(60)
        utts.append(Utterance(f"/d/{i}", f"문장 {sentence}", 1.0, speaker))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, valid = split_by_sentence(utts, 0.2, seed=5)
        again = split_by_sentence(utts, 0.2, seed=5)
    assert [u.path for u in again[1]] == [u.path for u in valid]
    assert {u.text for u in train}.isdisjoint({u.text for u in valid})
    assert {u.speaker for u in train}.isdisjoint({u.speaker for u in valid})
    assert len({u.path for u in train + valid}) == len(train) + len(valid) <= len(utts)
    assert 0.15 * len(utts) <= len(valid) <= 0.3 * len(utts) and len(train) >= 0.6 * len(utts)
    kept = {u.path for u in train}
    assert [u.path for u in train] == [u.path for u in utts if u.path in kept]  # in input order


def split_reference(utterances, valid_fraction, seed):
    """The split as first written: union-find over utterances, components sorted by first index."""
    parent = list(range(len(utterances)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    first = {}
    for i, u in enumerate(utterances):
        for key in (("sentence", u.text.replace(" ", "")), ("speaker", u.speaker)):
            if key[1] is not None:
                parent[find(i)] = find(first.setdefault(key, i))
    groups = {}
    for i in range(len(utterances)):
        groups.setdefault(find(i), []).append(i)
    components = sorted(groups.values(), key=lambda g: g[0])
    random.Random(seed).shuffle(components)
    target, valid = valid_fraction * len(utterances), set()
    for group in components:
        if len(valid) >= target:
            break
        if len(valid) + len(group) <= 1.5 * target + 1:
            valid.update(group)
    return [i for i in range(len(utterances)) if i not in valid], sorted(valid)


def test_split_is_the_union_find_split_when_components_fill_validation():
    rng = random.Random(1)
    for trial in range(200):
        n_speakers = rng.choice([0, 2, 8, 40])
        utts = [Utterance(f"/d/{i}", f"문장 {rng.randrange(rng.randint(1, 60))}", 1.0,
                          f"s{rng.randrange(n_speakers)}" if n_speakers and rng.random() < 0.9 else None)
                for i in range(rng.randint(1, 200))]
        train_idx, valid_idx = split_reference(utts, 0.2, trial)
        if any(u.speaker is not None for u in utts) and len(valid_idx) < 0.5 * 0.2 * len(utts):
            continue  # the speaker fallback takes over (tested in test_data_layouts.py)
        index = {id(u): i for i, u in enumerate(utts)}
        train, valid = split_by_sentence(utts, 0.2, seed=trial)
        assert ([index[id(u)] for u in train], [index[id(u)] for u in valid]) == (train_idx, valid_idx), trial


# ---------------------------------------------------------------------------
# Loader settings
# ---------------------------------------------------------------------------
def test_loader_settings_by_device(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(loading, "available_cpus", lambda: 16)
    assert loading.loader_settings(torch.device("cpu")) == (0, False)
    assert loading.loader_settings(torch.device("cpu"), 3) == (3, False)  # given: kept
    assert loading.loader_settings(torch.device("cuda")) == (8, True)     # capped
    assert loading.loader_settings(torch.device("cuda:1"), 0) == (0, True)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")                            # 4 GPUs: 4 cores each
    assert loading.loader_settings("cuda") == (3, True)
    monkeypatch.setattr(loading, "available_cpus", lambda: 2)
    assert loading.loader_settings("cuda") == (1, True)                    # always one at least
