"""Audio classification (--task classify): labels, clip lengths, features, model, KL, ensembles, infer, checkpoints."""
import importlib.util
import math
import os
import sys
import types

import numpy as np
import pytest
import soundfile
import torch

from modules import classify
from modules.checkpoint import load_file, save_file
from modules.classify.classifier import AudioClassifier, ClassifierSpec, classifier_feature_config
from modules.classify.clips import (
    DISTRIBUTION,
    SINGLE,
    ClipDataset,
    collate_clips,
    fix_length,
    read_classification_set,
    split_by_group,
)
from modules.classify.resnet import ResNetClassifierConfig
from modules.classify.trainer import classification_loss, classification_scores
from modules.features import MultiResolutionLogMel
from modules.metrics import accuracy, kl_divergence, macro_f1
from modules.task_interface import Callbacks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
TONES = {"low": 300.0, "mid": 900.0, "high": 2400.0, "chirp": None}  # chirp: a word outside --classes


def tone(kind, seconds, rng):
    t = np.arange(int(seconds * SR)) / SR
    if TONES[kind] is None:
        wave = np.sin(2 * np.pi * (200 + 1500 * t / seconds) * t)
    else:
        wave = np.sin(2 * np.pi * TONES[kind] * rng.uniform(0.95, 1.05) * t + rng.uniform(0, 6))
    return (0.3 * wave + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def write(path, wave):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, wave, SR, subtype="PCM_16")


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_spec(classes, kind=SINGLE, fft_sizes=(256,), clip_seconds=0.5):
    return ClassifierSpec(classes=list(classes), kind=kind, clip_seconds=clip_seconds, fft_sizes=list(fft_sizes),
                          feature_config=classifier_feature_config(n_mels=20),
                          model_config=ResNetClassifierConfig(width=8, stages=2, blocks=1, dropout=0.0))


# -- labels ------------------------------------------------------------------------------------------------

def test_single_label_csv_maps_other_labels_to_unknown(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a.wav", "b.wav", "c.wav"):
        write(str(tmp_path / "train" / "train_data" / name), tone("low", 0.3, rng))
    (tmp_path / "train" / "train_label").write_text("filename,label\na.wav,yes\nb.wav,no\nc.wav,cat\nmissing.wav,yes\n")
    with pytest.warns(UserWarning, match="missing.wav"):
        clip_set = read_classification_set(str(tmp_path), classes=["yes", "no"])
    assert clip_set.kind == SINGLE and clip_set.classes == ["yes", "no", "silence", "unknown"]
    assert [(os.path.basename(c.path), c.target) for c in clip_set.clips] == [("a.wav", 0), ("b.wav", 1), ("c.wav", 3)]
    without_list = read_classification_set(str(tmp_path))
    assert without_list.classes == ["cat", "no", "yes"]


def test_probability_columns_are_normalised_and_bad_rows_skipped(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a.wav", "b.wav", "c.wav"):
        write(str(tmp_path / "train" / "train_data" / name), tone("mid", 0.3, rng))
    (tmp_path / "train" / "train_label").write_text("filename,x,y,z\na.wav,0.2,0.3,0.5\nb.wav,2,0,2\nc.wav,oops,1,1\n")
    with pytest.warns(UserWarning, match="malformed probability row"):
        clip_set = read_classification_set(str(tmp_path))
    assert clip_set.kind == DISTRIBUTION and clip_set.classes == ["x", "y", "z"]
    assert [c.target for c in clip_set.clips] == [pytest.approx([0.2, 0.3, 0.5]), pytest.approx([0.5, 0.0, 0.5])]


def test_folder_layout_background_noise_becomes_silence_pieces_and_others_unknown(tmp_path):
    rng = np.random.default_rng(0)
    audio = tmp_path / "train" / "audio"
    write(str(audio / "low" / "s1_nohash_0.wav"), tone("low", 0.4, rng))
    write(str(audio / "low" / "s2_nohash_0.wav"), tone("low", 0.4, rng))
    write(str(audio / "chirp" / "s1_nohash_0.wav"), tone("chirp", 0.4, rng))
    write(str(audio / "_background_noise_" / "fan.wav"), 0.01 * rng.standard_normal(int(3.7 * SR)).astype(np.float32))
    (audio / "low" / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.warns(UserWarning, match="broken.wav"):
        clip_set = read_classification_set(str(tmp_path), classes=["low", "high"], clip_seconds=1.0)
    assert clip_set.classes == ["low", "high", "silence", "unknown"]
    silence = [c for c in clip_set.clips if c.target == 2]
    assert [c.offset for c in silence] == [0.0, 1.0, 2.0] and all(c.duration == 1.0 for c in silence)
    assert sorted(c.target for c in clip_set.clips if c.target != 2) == [0, 0, 3]
    # Speakers never straddle the split: s1's two clips are on the same side.
    train, valid = split_by_group(clip_set.clips, 0.5, seed=3)
    side = {c.path: c in valid for c in clip_set.clips}
    assert side[str(audio / "low" / "s1_nohash_0.wav")] == side[str(audio / "chirp" / "s1_nohash_0.wav")]
    # A silence piece is exactly its second of the recording.
    data = ClipDataset(silence, 1.0, train=False)
    full = soundfile.read(str(audio / "_background_noise_" / "fan.wav"), dtype="float32")[0]
    assert torch.allclose(data[1][1], torch.from_numpy(full[SR:2 * SR]), atol=1e-6)


# -- fixed-length clips -------------------------------------------------------------------------------------

def test_pad_and_crop_lengths():
    short, long_ = torch.ones(300), torch.arange(1000, dtype=torch.float32)
    padded = fix_length(short, 500, random_crop=True)
    assert len(padded) == 500 and padded[:300].eq(1).all() and padded[300:].eq(0).all()
    assert fix_length(long_, 500, random_crop=False).tolist() == list(range(250, 750))  # centre crop
    starts = {int(fix_length(long_, 500, random_crop=True, generator=torch.Generator().manual_seed(s))[0])
              for s in range(20)}
    assert len(starts) > 5 and all(0 <= s <= 500 for s in starts)


def test_long_training_clips_give_several_random_crops(tmp_path):
    rng = np.random.default_rng(0)
    write(str(tmp_path / "long.wav"), tone("low", 3.2, rng))
    write(str(tmp_path / "short.wav"), tone("low", 0.2, rng))
    from modules.classify.clips import Clip
    clips = [Clip(str(tmp_path / "long.wav"), 0, 3.2), Clip(str(tmp_path / "short.wav"), 1, 0.2)]
    train = ClipDataset(clips, 1.0, train=True)
    assert len(train) == 4  # three crops of the 3.2 s clip, one of the short one
    batch = collate_clips([train[i] for i in range(len(train))])
    assert batch["waves"].shape == (4, SR) and batch["targets"].tolist() == [0, 0, 0, 1]
    assert len(ClipDataset(clips, 1.0, train=False)) == 2


# -- features and model ---------------------------------------------------------------------------------------

def test_multi_resolution_features_stack_fft_sizes_as_normalised_channels():
    featurizer = MultiResolutionLogMel(classifier_feature_config(n_mels=40), (256, 512, 1024, 2048))
    waves = torch.from_numpy(np.stack([tone("low", 1.0, np.random.default_rng(i)) for i in range(3)]))
    feats, lengths = featurizer(waves, torch.full((3,), SR))
    assert feats.shape == (3, 4, 101, 40)
    assert [ch.config.win_length for ch in featurizer.channels] == [256, 512, 1024, 2048]
    real = feats[0, :, :int(lengths.min())]
    assert real.mean(dim=(1, 2)).abs().max() < 0.1 and (real.std(dim=(1, 2)) - 1).abs().max() < 0.1
    # The resolutions differ: a long FFT resolves the 300 Hz tone into fewer mel bins.
    assert not torch.allclose(feats[0, 0], feats[0, 3])


def test_main_trains_a_separable_task_and_submits_sorted_records(tmp_path, monkeypatch):
    """End to end through main.py: folder dataset -> train -> nsml.save('best') -> load -> infer."""
    rng = np.random.default_rng(1)
    audio = tmp_path / "ds" / "train" / "audio"
    for speaker in range(8):
        for kind in TONES:
            write(str(audio / kind / f"spk{speaker}_nohash_0.wav"), tone(kind, rng.uniform(0.3, 0.8), rng))
    write(str(audio / "_background_noise_" / "noise.wav"), 0.01 * rng.standard_normal(4 * SR).astype(np.float32))
    test_dir = tmp_path / "ds" / "test" / "test_data"
    expected = {}
    for i, kind in enumerate(["high", "low", "mid", "chirp"] * 3):
        name = f"t{(7 * i) % 12:02d}.wav"
        write(str(test_dir / name), tone(kind, 0.5, rng))
        expected[name] = "unknown" if kind == "chirp" else kind
    (test_dir / "zz_broken.wav").write_bytes(b"")

    saved, bound = {}, {}
    fake = types.SimpleNamespace(DATASET_PATH=str(tmp_path / "ds"), bind=lambda **kw: bound.update(kw),
                                 report=lambda **kw: saved.setdefault("reports", []).append(kw),
                                 paused=lambda scope=None: None)

    def save(name, **kw):
        folder = tmp_path / "ckpt" / str(name)
        folder.mkdir(parents=True, exist_ok=True)
        bound["save"](str(folder))
        saved[str(name)] = folder
    fake.save = save
    monkeypatch.setitem(sys.modules, "nsml", fake)
    sys.path.insert(0, REPO)
    import main
    monkeypatch.setattr(main, "nsml", fake)
    main.main(["--task", "classify", "--classes", "low,mid,high", "--clip_seconds", "0.5", "--fft_sizes", "256,512",
               "--n_mels", "32", "--width", "8", "--stages", "2", "--blocks", "1", "--epochs", "8", "--lr", "1e-2",
               "--batch_size", "8", "--valid_fraction", "0.25", "--ensemble", "2", "--device", "cpu"])
    assert "best" in saved and "16" in saved  # two models x 8 epochs, saved every epoch
    assert any("val_accuracy" in r and "val_macro_f1" in r for r in saved["reports"])

    kit = main.Kit(None, torch.device("cpu"))  # a fresh process: the bound load restores the ensemble
    main.bind_model(kit)
    bound["load"](str(saved["best"]))  # the ensemble with the best validation score: one or both models
    assert kit.task is classify and len(kit.model.models) in (1, 2)
    bound["load"](str(saved["16"]))    # the last epoch: both models
    assert len(kit.model.models) == 2 and kit.model.spec.classes == ["low", "mid", "high", "silence", "unknown"]
    with pytest.warns(UserWarning, match="zz_broken.wav"):
        records = bound["infer"](str(test_dir))
    names = [r["filename"] for r in records]
    assert names == sorted(names) and names[-1] == "zz_broken.wav"
    assert all(set(r) == {"filename", "label"} for r in records)
    acc = accuracy([r["label"] for r in records[:-1]], [expected[n] for n in names[:-1]])
    assert acc >= 0.9, records
    single = bound["infer"](str(test_dir / "t00.wav"))
    assert single == records[0]

    # A fork continues the ensemble: the loaded members stay as they are, new ones are added.
    before = [m.state_dict()["head.2.weight"].clone() for m in kit.model.models]
    options = classify.Options(classes="low,mid,high", clip_seconds=0.5, epochs=1, batch_size=16, ensemble=3)
    forked = classify.train(options, str(tmp_path / "ds"), torch.device("cpu"), loaded_state=kit.state)
    assert len(forked.models) == 3
    assert all(torch.equal(m.state_dict()["head.2.weight"], w) for m, w in zip(forked.models, before))


def test_ensemble_members_are_seeded_from_their_seed_and_checkpoints_hold_the_kept_weights(tmp_path, monkeypatch):
    """Each member's initial weights come from its own seed (seed + k), not from whatever the global RNG
    holds, so a rerun reproduces the ensemble and members differ; the member's last checkpoint holds
    the weights it keeps (its last epoch, or with --keep best its best one)."""
    rng = np.random.default_rng(2)
    audio = tmp_path / "ds" / "train" / "audio"
    for speaker in range(6):
        for kind in ("low", "mid", "high"):
            write(str(audio / kind / f"spk{speaker}_nohash_0.wav"), tone(kind, 0.5, rng))

    def train(keep):
        saved = {}
        callbacks = Callbacks(save=lambda name, state: saved.update(
            {str(name): [{k: v.clone() for k, v in m.items()} for m in state["classifier"]["models"]]}))
        options = classify.Options(clip_seconds=0.5, fft_sizes="256", n_mels=20, width=4, stages=2, blocks=1,
                                   epochs=2, batch_size=8, ensemble=2, seed=3, keep=keep)
        torch.rand(int(rng.integers(1, 100)))  # the global RNG's state must not matter
        classifier = classify.train(options, str(tmp_path / "ds"), torch.device("cpu"), callbacks)
        return [m.state_dict() for m in classifier.models], saved

    first, saved = train("last")
    again, _ = train("last")
    assert all(torch.equal(a[k], b[k]) for a, b in zip(first, again) for k in a)
    assert not torch.equal(first[0]["stem.0.weight"], first[1]["stem.0.weight"])
    assert all(torch.equal(saved["4"][i][k], first[i][k]) for i in range(2) for k in first[i])
    assert all(torch.equal(saved["2"][0][k], first[0][k]) for k in first[0])  # member 1's last epoch
    kept, saved = train("best")
    assert all(torch.equal(saved["4"][i][k], kept[i][k]) for i in range(2) for k in kept[i])


# -- losses, scores, ensembles ------------------------------------------------------------------------------

def test_kl_loss_and_scores_on_known_distributions():
    target = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    logits = torch.log(torch.tensor([[0.25, 0.75, 1e-9], [0.2, 0.3, 0.5]]))
    expected = (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)) / 2  # second row is exact: 0
    assert float(classification_loss(logits, target, DISTRIBUTION)) == pytest.approx(expected, abs=1e-5)
    assert kl_divergence(target.numpy(), target.numpy()) == pytest.approx(0.0, abs=1e-6)
    assert kl_divergence(target.numpy(), torch.softmax(logits, -1).numpy()) == pytest.approx(expected, abs=1e-5)
    # A confident miss is clipped, not infinite.
    assert math.isfinite(kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])))
    scores = classification_scores(torch.softmax(logits, -1).numpy(), target.tolist(), DISTRIBUTION, 3)
    assert scores["kl"] == pytest.approx(expected, abs=1e-5) and scores["score"] == -scores["kl"]
    assert float(classification_loss(torch.tensor([[0.0, 10.0]]), torch.tensor([1]), SINGLE)) < 1e-3
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert macro_f1([0, 1, 2, 2], [0, 1, 1, 2], 3) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)  # class 1: one miss; class 2: one false alarm


def test_dataset_owner_scripts_score_accuracy_and_kl(tmp_path):
    evaluation = load_module(os.path.join(REPO, "tools", "classification_eval.py"), "classification_eval")
    if importlib.util.find_spec("nsml") is None:
        sys.path.insert(0, os.path.join(REPO, "nsml_local"))  # the data loader imports nsml, as on the platform
    loader = load_module(os.path.join(REPO, "tools", "classification_loader.py"), "classification_loader")
    labels = tmp_path / "kws_label"
    labels.write_text("filename,label\na.wav,yes\nb.wav,no\nc.wav,unknown\nd.wav,silence\n")
    records = [{"filename": "a.wav", "label": "yes"}, {"filename": "b.wav", "label": "yes"},
               {"filename": "c.wav", "label": "unknown"}]  # d.wav missing: counts as wrong
    assert evaluation.score(records, str(labels)) == {"accuracy": 0.5}
    mix_labels = tmp_path / "mix_label"
    mix_labels.write_text("filename,x,y\na.wav,0.5,0.5\nb.wav,1.0,0.0\n")
    mix_records = [{"filename": "a.wav", "probs": {"x": 0.25, "y": 0.75}}, {"filename": "b.wav", "probs": {"x": 1.0, "y": 0.0}}]
    expected = (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)) / 2
    assert evaluation.score(mix_records, str(mix_labels))["kl"] == pytest.approx(expected, abs=1e-6)
    # Through the files nsml submit writes (data_loader.py) and reads (evaluation.py).
    prediction = tmp_path / "prediction.csv"
    loader.write_predictions(records, str(prediction))
    assert evaluation.evaluation_metrics(str(prediction), str(labels)) == pytest.approx(0.5)
    loader.write_predictions(mix_records, str(prediction))
    assert evaluation.evaluation_metrics(str(prediction), str(mix_labels)) == pytest.approx(expected, abs=1e-5)


def test_ensemble_averages_member_probabilities_and_survives_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(0)
    classifier = AudioClassifier(tiny_spec(["a", "b", "c"], DISTRIBUTION, fft_sizes=(256, 512)), torch.device("cpu"))
    members = [classifier.new_model(), classifier.new_model()]
    waves = torch.from_numpy(np.stack([tone(k, 0.5, np.random.default_rng(i)) for i, k in enumerate(["low", "high"])]))
    feats = classifier.features(waves)
    for m in members:
        m.eval()
    with torch.no_grad():
        each = [torch.softmax(m(feats), -1) for m in members]
    averaged = classifier.predict_proba(waves)
    assert torch.allclose(averaged, (each[0] + each[1]) / 2, atol=1e-6)
    assert not torch.allclose(each[0], each[1])

    path = str(tmp_path / "model.pt")
    save_file({"task": "classify", "classifier": classifier.state_dict()}, path)
    restored = AudioClassifier.from_state_dict(load_file(path)["classifier"], torch.device("cpu"))
    assert len(restored.models) == 2 and restored.spec == classifier.spec
    assert torch.allclose(restored.predict_proba(waves), averaged, atol=1e-6)
    folder = tmp_path / "clips"
    for name, kind in (("b.wav", "low"), ("a.wav", "high")):
        write(str(folder / name), tone(kind, 0.7, np.random.default_rng(0)))
    records = restored.classify_folder(str(folder), progress=False)
    assert [r["filename"] for r in records] == ["a.wav", "b.wav"]
    assert all(set(r) == {"filename", "probs"} and set(r["probs"]) == {"a", "b", "c"} for r in records)
    assert all(sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-5) for r in records)


# -- the synthetic corpora ------------------------------------------------------------------------------------

@pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="espeak-ng is not installed")
@pytest.mark.parametrize("task", ["kws", "mixture"])
def test_corpus_generator_layouts_speaker_disjoint_and_scorable(tmp_path, task):
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import json

    import make_corpus
    import make_kws_corpus
    out = tmp_path / task
    make_corpus.main(["--task", task, "--out", str(out), "--max-voices", "4", "--background-files", "1",
                          "--train-mixtures", "12", "--test-mixtures", "4", "--jobs", "1"])
    info = json.loads((out / "corpus_info.json").read_text())
    assert not set(info["train_voices"]) & set(info["test_voices"])
    clip_set = read_classification_set(str(out), classes=list(make_kws_corpus.KEYWORDS) if task == "kws" else None)
    evaluation = load_module(str(out / "evaluation.py"), f"evaluation_{task}")
    columns, labels = evaluation.read_table(str(out / "test" / "test_label"))
    assert sorted(labels) == sorted(os.listdir(out / "test" / "test_data"))
    if task == "kws":
        assert clip_set.classes == list(make_kws_corpus.KEYWORDS) + ["silence", "unknown"]
        assert {clip_set.classes[c.target] for c in clip_set.clips} == set(clip_set.classes)
        assert {row["label"] for row in labels.values()} == set(clip_set.classes)
        assert evaluation.METRIC == "ACCURACY" and evaluation.HIGHER_IS_BETTER
        assert all(v.split("_nohash_")[0] in info["train_voices"]
                   for v in os.listdir(out / "train" / "audio" / "yes"))
    else:
        assert clip_set.kind == DISTRIBUTION and len(clip_set.clips) == 12 and evaluation.METRIC == "KL"
        assert not evaluation.HIGHER_IS_BETTER
        shares = [sorted(p for p in c.target if p > 0) for c in clip_set.clips]
        assert all(len(s) in (2, 3) and sum(s) == pytest.approx(1.0, abs=1e-4) for s in shares)
        assert all(soundfile.info(c.path).duration == pytest.approx(1.0) for c in clip_set.clips)
