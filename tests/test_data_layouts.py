"""Both competition layouts, speakers, the split, duration batching, feature cache, silence trimming."""
import os
import warnings

import numpy as np
import pytest
import torch
from data_corpora import (
    SENTENCES,
    make_2019,
    make_2022,
    one_torch_thread,  # noqa: F401 (autouse fixture)
    run_main,
    tone_audio,
)

from modules.audio import load_audio
from modules.checkpoint import read_checkpoint
from modules.features import FeatureConfig, LogMelFilterbank
from modules.samplers import DurationBatchSampler
from modules.transcribe import parse_options, recipe
from modules.transcribe.corpus import Utterance, detect_layout, read_training_set
from modules.transcribe.dataset import collate
from modules.transcribe.feature_cache import FeatureCache
from modules.transcribe.split import split_by_names, split_by_sentence


def test_2022_layout_reads_texts_and_speakers_from_meta(tmp_path):
    root = make_2022(tmp_path)
    assert detect_layout(root) == "2022"
    utts = read_training_set(root)
    assert len(utts) == 2 * len(SENTENCES)
    assert {u.text for u in utts} == set(SENTENCES)
    assert {u.speaker for u in utts} == {"spk0", "spk1"}
    assert all(abs(u.duration - 1.2) < 1e-3 for u in utts)


def test_2019_layout_decodes_ids_through_label_map(tmp_path):
    root = make_2019(tmp_path, label_files=False)  # .label files named in data_list.csv may not exist
    assert detect_layout(root) == "2019"
    utts = read_training_set(root)
    expected = {s.replace("&name&", "철수") for s in SENTENCES}
    assert {u.text for u in utts} == expected  # spaces come back, pad/<s>/</s> never appear
    assert all(u.path.endswith(".wav") for u in utts)
    assert len(load_audio(utts[0].path)) == int(1.2 * 16000)  # LIST/INFO chunk skipped


def test_2019_label_map_found_beside_train_or_given_as_option(tmp_path):
    elsewhere = tmp_path / "maps"
    elsewhere.mkdir()
    root = make_2019(tmp_path / "ds", map_dir=str(elsewhere))
    with pytest.raises(FileNotFoundError, match="label_map"):
        read_training_set(root)
    assert len(read_training_set(root, label_map=str(elsewhere / "hackathon.labels"))) == 12
    os.replace(elsewhere / "hackathon.labels", os.path.join(root, "train", "hackathon.labels"))
    assert len(read_training_set(root)) == 12


def test_2019_without_train_label_falls_back_to_label_files(tmp_path):
    root = make_2019(tmp_path)
    os.remove(os.path.join(root, "train", "train_label"))
    assert len(read_training_set(root)) == 12


def test_speakers_from_label_column_and_from_pattern(tmp_path):
    root = make_2022(tmp_path, speakers=False)
    assert all(u.speaker is None for u in read_training_set(root))
    utts = read_training_set(root, speaker_pattern=r"idx_0000(\d)")
    assert utts[0].speaker == "0" and utts[11].speaker == "1"
    label = os.path.join(root, "train", "train_label")
    lines = open(label, encoding="utf-8").read().splitlines()
    with open(label, "w", encoding="utf-8") as f:
        f.write("\n".join([lines[0] + ",speaker"] + [f"{l},S{i % 3}" for i, l in enumerate(lines[1:])]))
    assert {u.speaker for u in read_training_set(root)} == {"S0", "S1", "S2"}


def _utts(pairs):
    return [Utterance(f"/d/u{i}", text, 1.0, spk) for i, (text, spk) in enumerate(pairs)]


def test_split_keeps_sentences_and_speakers_apart():
    # 20 speakers x 5 utterances; a pair of speakers shares its sentences
    pairs = [(f"문장{(s // 2) * 10 + k}", f"spk{s}") for s in range(20) for k in range(5)]
    train, valid = split_by_sentence(_utts(pairs), 0.2, seed=1)
    assert 15 <= len(valid) <= 30 and len(train) + len(valid) == 100
    assert not {u.speaker for u in train} & {u.speaker for u in valid}
    assert not {u.text for u in train} & {u.text for u in valid}


def test_split_by_speaker_when_a_shared_sentence_connects_everyone():
    # each speaker reads 10 own sentences plus one common sentence: one component
    pairs = [(f"문장{s * 10 + k}", f"spk{s}") for s in range(10) for k in range(10)]
    pairs += [("공통 문장", f"spk{s}") for s in range(10)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, valid = split_by_sentence(_utts(pairs), 0.2, seed=0)
    assert 20 <= len(valid) <= 33 and len(train) >= 70
    assert not {u.speaker for u in train} & {u.speaker for u in valid}
    assert not {u.text for u in train} & {u.text for u in valid}
    assert any("left out" in str(w.message) for w in caught)


def test_fully_crossed_speakers_and_sentences_split_by_sentence_with_warning():
    pairs = [(f"문장{k}", f"spk{s}") for s in range(3) for k in range(10)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, valid = split_by_sentence(_utts(pairs), 0.2, seed=0)
    assert len(train) + len(valid) == 30 and len(valid) == 6
    assert not {u.text for u in train} & {u.text for u in valid}
    assert all(u.speaker for u in train + valid)
    assert any("sentence only" in str(w.message) for w in caught)


def test_split_is_reused_from_names():
    utts = _utts([(f"문장{k}", None) for k in range(30)])
    train, valid = split_by_sentence(utts, 0.2, seed=3)
    train2, valid2 = split_by_names(utts, [os.path.basename(u.path) for u in valid])
    assert valid2 == valid and train2 == train


def test_fork_reuses_the_saved_validation_files(tmp_path, monkeypatch):
    root = make_2022(tmp_path / "ds", repeats=3)
    ckpt = tmp_path / "ckpt"
    common = ["--dataset_path", root, "--epochs", "1", "--rnn_hidden", "32", "--rnn_layers", "1"]
    run_main(monkeypatch, root, ckpt, common + ["--seed", "1"])
    saved = read_checkpoint(str(ckpt / "1"))[1]["trainer"]["valid_files"]
    assert saved
    # a fork with another seed would split differently; the checkpoint's split wins
    other = split_by_sentence(read_training_set(root), 0.2, seed=7)[1]
    assert sorted(os.path.basename(u.path) for u in other) != sorted(saved)
    _, state = read_checkpoint(str(ckpt / "1"))  # what a fork's load gives the recipe
    options = parse_options(common[2:] + ["--seed", "7", "--epochs", "2"])
    trainer = recipe.build(options, root, torch.device("cpu"), loaded_state=state)
    assert sorted(os.path.basename(u.path) for u in trainer.valid_utts) == sorted(saved)


def test_batches_change_between_epochs_and_sortagrad_goes_short_to_long():
    rng = np.random.default_rng(0)
    durations = rng.uniform(1, 10, size=300)
    sampler = DurationBatchSampler(durations, 60.0, shuffle=True, seed=0, sortagrad=True)
    first = list(sampler)
    longest = [max(durations[i] for i in b) for b in first]
    assert longest == sorted(longest)
    sampler.set_epoch(1)
    second = list(sampler)
    sampler.set_epoch(2)
    third = list(sampler)
    as_sets = lambda bs: {frozenset(b) for b in bs}
    assert as_sets(second) != as_sets(third) and as_sets(first) != as_sets(second)
    for batches in (first, second, third):
        assert sorted(i for b in batches for i in b) == list(range(300))
        assert all(max(durations[i] for i in b) * len(b) <= 60.0 for b in batches if len(b) > 1)
    assert sampler.padding_fraction() < 0.1
    plain = DurationBatchSampler(durations, 60.0, shuffle=False)
    plain.set_epoch(5)
    assert list(plain) == first  # validation/inference batches never change


def test_feature_cache_matches_on_the_fly_features_and_tracks_file_changes(tmp_path):
    path = str(tmp_path / "a")
    (tone_audio(3) * 32767).astype("<i2").tofile(path)
    config = FeatureConfig()
    cache = FeatureCache(str(tmp_path / "cache"), config)
    wave = torch.from_numpy(load_audio(path))
    direct, lengths = LogMelFilterbank(config)(wave[None], torch.tensor([len(wave)]))
    first = cache.features(path)
    assert first.shape == (int(lengths[0]), config.n_mels)
    assert torch.allclose(first, direct[0, : len(first)], atol=2e-2)  # float16 storage
    stored = [f for _, _, fs in os.walk(tmp_path / "cache") for f in fs]
    assert len(stored) == 1
    assert torch.equal(cache.features(path), first)  # second read from disk
    (tone_audio(5, seconds=0.8) * 32767).astype("<i2").tofile(path)  # changed file: new entry
    assert cache.features(path).shape[0] == int(cache.featurizer.frame_lengths(torch.tensor([12800]))[0])
    batch = collate([(0, first, torch.tensor([2, 3])), (1, first[:50], torch.tensor([4]))])
    assert batch["feats"].shape == (2, len(first), config.n_mels) and batch["feat_lengths"].tolist() == [len(first), 50]


def test_training_with_feature_cache_and_trim_silence(tmp_path, monkeypatch):
    root = make_2022(tmp_path / "ds")
    cache = tmp_path / "cache"
    nsml = run_main(monkeypatch, root, tmp_path / "ckpt",
                    ["--dataset_path", root, "--epochs", "2", "--rnn_hidden", "32", "--rnn_layers", "1",
                     "--feature_cache", str(cache), "--trim_silence", "30"])
    assert nsml.saved.count("1") == 1 and "2" in nsml.saved
    entries = [f for _, _, fs in os.walk(cache) for f in fs]
    assert len(entries) == 12  # one per utterance, reused in epoch 2
    _, state = read_checkpoint(str(tmp_path / "ckpt" / "2"))
    assert state["recognizer"]["feature_config"]["trim_db"] == 30


def test_trim_silence_cuts_both_ends(tmp_path):
    path = str(tmp_path / "a")
    tone = tone_audio(1, seconds=1.0)
    silence = np.zeros(8000, dtype=np.float32)
    (np.concatenate([silence, tone, silence]) * 32767).astype("<i2").tofile(path)
    assert len(load_audio(path)) == 32000
    trimmed = load_audio(path, trim_db=30)
    assert 10000 < len(trimmed) < 17000
