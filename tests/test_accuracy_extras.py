"""Issue 23's accuracy extras: EMA of the weights, the N best epochs averaged, the final choice by
validation CER (and a fork keeping the EMA), noise at a random SNR, the phone channel, VTLP, and
intermediate CTC."""
import numpy as np
import pytest
import torch
from data_corpora import tone_audio

from modules.averaging import BestWeights, ExponentialMovingAverage, choose_weights
from modules.checkpoint import load_file, save_file
from modules.features import FeatureConfig, LogMelFilterbank
from modules.transcribe.augment import (
    WaveAugment,
    babble,
    colored_noise,
    mix_at_snr,
    mu_law,
    parse_snr_range,
    phone_channel,
    vtlp_mel_bases,
)
from modules.transcribe.corpus import Utterance
from modules.transcribe.models import build_model
from modules.transcribe.normalize import TextConfig
from modules.transcribe.recognizer import SpeechRecognizer
from modules.transcribe.tokenizers import build_tokenizer
from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig

RATE = 16000


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- averaging ---------------------------------------------------------------------------------------

class Scalar(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.register_buffer("count", torch.tensor(0))


def test_ema_follows_the_warmed_up_decay_and_copies_integer_buffers():
    model = Scalar()
    ema = ExponentialMovingAverage(model, decay=0.9)
    expected = 0.0
    for step in range(1, 100):
        with torch.no_grad():
            model.w.fill_(float(step))
            model.count.fill_(step)
        decay = min(0.9, (1 + step - 1) / (10 + step - 1))
        expected = decay * expected + (1 - decay) * step
        ema.update(model)
        assert float(ema.shadow["w"]) == pytest.approx(expected, rel=1e-5), step
    assert int(ema.weights()["count"]) == 99
    # after the warmup the decay is the one asked for
    assert ema.current_decay() == 0.9
    with pytest.raises(ValueError):
        ExponentialMovingAverage(model, decay=1.0)


def test_ema_state_survives_a_checkpoint(tmp_path):
    model = build_model("conformer", 40, 9, d_model=32, heads=2, layers=2, conv_channels=4)
    ema = ExponentialMovingAverage(model, 0.99)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    path = str(tmp_path / "model.pt")
    save_file({"ema": ema.state_dict()}, path)
    restored = ExponentialMovingAverage(build_model("conformer", 40, 9, d_model=32, heads=2, layers=2,
                                                    conv_channels=4), 0.99)
    restored.load_state_dict(load_file(path)["ema"])
    assert restored.updates == 1
    for k, v in ema.weights().items():
        assert torch.equal(restored.weights()[k], v), k


def test_best_weights_keeps_the_n_lowest_scores_and_averages_them():
    model, best = Scalar(), BestWeights(keep=2)
    for epoch, (score, value) in enumerate([(0.5, 1.0), (0.3, 2.0), (0.4, 4.0), (0.6, 8.0)], 1):
        with torch.no_grad():
            model.w.fill_(value)
        best.offer(score, epoch, model)
    assert best.epochs() == [2, 3]
    assert float(best.averaged()["w"]) == pytest.approx(3.0)


def test_choose_weights_takes_the_lowest_score_and_keeps_plain_on_ties():
    model = Scalar()
    candidates = {"ema": {"w": torch.tensor(1.0), "count": torch.tensor(0)},
                  "best3": {"w": torch.tensor(2.0), "count": torch.tensor(0)}}
    score_of = {0.0: 0.30, 1.0: 0.20, 2.0: 0.25}  # plain weights hold w = 0

    def score():
        return score_of[float(model.w.detach())]

    name, scores = choose_weights(model, 0.30, candidates, score)
    assert name == "ema" and float(model.w.detach()) == 1.0 and scores == {"plain": 0.30, "ema": 0.20, "best3": 0.25}
    with torch.no_grad():
        model.w.fill_(0.0)
    name, _ = choose_weights(model, 0.20, candidates, score)  # the EMA only ties: plain is kept
    assert name == "plain" and float(model.w.detach()) == 0.0


def tone_corpus(tmp_path, texts=("가나다", "라마바", "사아자")):
    utts = []
    for i, text in enumerate(texts):
        path = str(tmp_path / f"u{i}")
        (tone_audio(i, seconds=1.0) * 32767).astype("<i2").tofile(path)
        utts.append(Utterance(path, text, 1.0))
    return list(texts), utts


def conformer_trainer(tmp_path, **config):
    texts, utts = tone_corpus(tmp_path)
    torch.manual_seed(0)
    rec = SpeechRecognizer.create("conformer", build_tokenizer("char", texts), FeatureConfig(n_mels=40),
                                  TextConfig(), torch.device("cpu"), d_model=32, heads=2, layers=2, conv_channels=4)
    return SpeechTrainer(rec, TrainConfig(**{**NO_AUGMENTATION, "specaugment": False, "lr": 3e-3, **config}), utts, utts)


def test_trainer_updates_the_ema_each_step_and_a_fork_restores_it(tmp_path):
    trainer = conformer_trainer(tmp_path, ema_decay=0.9, epochs=1)
    batch = next(iter(trainer.train_loader))
    for _ in range(3):
        trainer.train_step(batch)
    assert trainer.ema.updates == 3
    ema_weights = trainer.ema.weights()
    model_weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert any(not torch.equal(ema_weights[k], model_weights[k]) for k in model_weights)
    path = str(tmp_path / "model.pt")
    save_file({"trainer": trainer.state_dict()}, path)
    state = load_file(path)["trainer"]
    assert state["final_weights"] == "plain" and state["ema"]["updates"] == 3

    forked = conformer_trainer(tmp_path, ema_decay=0.9, epochs=1)  # a new session, fresh weights
    forked.load_state_dict(state)
    assert forked.ema.updates == 3
    for k, v in ema_weights.items():
        assert torch.equal(forked.ema.weights()[k], v), k


def test_end_of_training_chooses_by_validation_cer_and_records_it(tmp_path):
    trainer = conformer_trainer(tmp_path, ema_decay=0.5, average_best=2, epochs=3, batch_seconds=10)
    trainer.fit()
    assert trainer.averaging and len(trainer.best_weights) == 2
    best_cer, _, best_epoch_weights = trainer.best_weights.entries[0]
    assert best_cer == trainer.best
    lines = []
    name = trainer.choose_final_weights(best_epoch_weights, log=lines.append)
    scores = trainer.final_scores
    assert set(scores) == {"plain", "ema", "best2"} and scores["plain"] == trainer.best
    assert scores[name] == min(scores.values()) and (name == "plain" or scores[name] < scores["plain"])
    assert trainer.state_dict()["final_weights"] == name and f"'best' holds the {name} weights" in lines[0]
    assert trainer.evaluate()["val_cer"] == pytest.approx(scores[name])  # the model holds the chosen weights


# -- augmentation ------------------------------------------------------------------------------------

def speech_like(rows=3, seconds=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(RATE * seconds)) / RATE
    tones = sum(torch.sin(2 * torch.pi * f * t) for f in (220.0, 660.0, 1500.0))
    return 0.1 * tones * (1 + 0.1 * torch.randn(rows, len(t), generator=generator))


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_noise_is_mixed_at_the_asked_snr_over_the_real_samples(exponent):
    waves = speech_like()
    lengths = torch.tensor([RATE, RATE // 2, RATE // 4])
    waves = waves * (torch.arange(RATE)[None, :] < lengths[:, None])
    snr = torch.tensor([0.0, 10.0, 20.0])
    noisy = mix_at_snr(waves, lengths, colored_noise(waves.shape, exponent), snr)
    for r, n in enumerate(lengths.tolist()):
        signal, noise = waves[r, :n], (noisy - waves)[r, :n]
        measured = 10 * torch.log10(signal.square().mean() / noise.square().mean())
        assert float(measured) == pytest.approx(float(snr[r]), abs=0.01)
        assert torch.all(noisy[r, n:] == 0)  # padding stays silent


def test_colored_noise_power_falls_with_frequency():
    def low_high_ratio(exponent):
        power = torch.fft.rfft(colored_noise((4, RATE), exponent, torch.Generator().manual_seed(1))).abs().square()
        return float(power[:, 20:500].mean() / power[:, 4000:8000].mean())

    white, pink, brown = low_high_ratio(0.0), low_high_ratio(1.0), low_high_ratio(2.0)
    assert 0.7 < white < 1.4 and pink > 5 * white and brown > 5 * pink


def test_babble_is_other_utterances_of_the_batch():
    waves = torch.zeros(4, 100)
    waves[1, :] = 1.0
    out = babble(waves, talkers=1)  # row r gets row r - 1, shifted in time
    assert torch.all(out[2] == 1.0) and torch.all(out[1] == 0.0)


def test_wave_augment_noises_about_the_asked_share_and_reads_a_noise_dir(tmp_path):
    torch.manual_seed(0)
    waves, lengths = speech_like(rows=200, seconds=0.1), torch.full((200,), RATE // 10)
    augment = WaveAugment(RATE, noise_prob=0.5, noise_snr="10,10")
    changed = (augment.augment(waves, lengths) != waves).any(1).float().mean()
    assert 0.35 < float(changed) < 0.65
    (tone_audio(5, seconds=0.5) * 32767).astype("<i2").tofile(tmp_path / "hum.pcm")
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.warns(UserWarning, match="broken.wav"):
        from_dir = WaveAugment(RATE, noise_prob=1.0, noise_snr="0", noise_dir=str(tmp_path))
    assert len(from_dir.noises) == 1
    noisy = from_dir.augment(waves[:2], lengths[:2])
    assert not torch.equal(noisy, waves[:2])
    with pytest.raises(ValueError, match="missing: not a folder"):
        WaveAugment(RATE, noise_prob=1.0, noise_dir=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no readable audio"):
        WaveAugment(RATE, noise_prob=1.0, noise_dir=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="noise_snr"):
        parse_snr_range("20,5")


@pytest.mark.parametrize("mulaw", [False, True])
def test_phone_channel_removes_the_band_above_4_khz(mulaw):
    noise = 0.1 * colored_noise((2, RATE), 0.0, torch.Generator().manual_seed(0)).numpy().astype(np.float32)
    out = phone_channel(noise, RATE, mulaw=mulaw)
    assert out.shape == noise.shape

    def band_energy(x, low_hz, high_hz):
        power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
        return power[:, low_hz:high_hz].sum()  # 1 Hz per bin for 1-s signals

    assert band_energy(out, 4200, 8000) < 0.01 * band_energy(noise, 4200, 8000)
    assert band_energy(out, 300, 3400) > 0.8 * band_energy(noise, 300, 3400)


def test_mu_law_keeps_256_levels_and_small_error():
    x = np.linspace(-1, 1, 10001).astype(np.float32)
    coded = mu_law(x)
    assert len(np.unique(coded)) <= 256
    assert np.abs(coded - x).max() < 0.05 and np.abs(coded[np.abs(x) < 0.01] - x[np.abs(x) < 0.01]).max() < 0.001


def test_vtlp_moves_a_tone_by_the_warp_factor():
    config = FeatureConfig(n_mels=80)
    featurizer = LogMelFilterbank(replace_normalize(config))
    t = torch.arange(RATE) / RATE
    tone = torch.sin(2 * torch.pi * 1000.0 * t)[None]
    factors = torch.tensor([0.9, 1.0, 1.1])
    bases = vtlp_mel_bases(featurizer.mel_basis, factors, RATE)
    assert torch.allclose(bases[1], featurizer.mel_basis, atol=1e-6)  # factor 1 leaves the filterbank alone
    peaks = []
    for basis in bases:
        feats, _ = featurizer(tone, torch.tensor([RATE]), mel_basis=basis[None])
        peaks.append(int(feats[0].mean(0).argmax()))
    # the 1 kHz tone shows where 900 Hz and 1,100 Hz tones would
    reference = []
    for hz in (900.0, 1000.0, 1100.0):
        feats, _ = featurizer(torch.sin(2 * torch.pi * hz * t)[None], torch.tensor([RATE]))
        reference.append(int(feats[0].mean(0).argmax()))
    assert peaks[0] < peaks[1] < peaks[2]
    assert all(abs(p - r) <= 1 for p, r in zip(peaks, reference)), (peaks, reference)


def replace_normalize(config):
    from dataclasses import replace
    return replace(config, normalize="none")


def test_trainer_turns_the_augmentations_on_from_its_config(tmp_path):
    trainer = conformer_trainer(tmp_path, noise_prob=1.0, phone_prob=1.0, vtlp=0.1)
    assert isinstance(trainer.train_loader.collate_fn, WaveAugment)
    batch = next(iter(trainer.train_loader))
    assert trainer.vtlp_bases(batch).shape[0] == len(batch["indices"])
    loss, _ = trainer.loss(batch)
    assert torch.isfinite(loss)
    plain = conformer_trainer(tmp_path)
    assert not isinstance(plain.train_loader.collate_fn, WaveAugment) and plain.vtlp_bases(batch) is None


# -- intermediate CTC --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["conformer", "attention"])
def test_intermediate_ctc_adds_a_loss_term_that_trains_the_lower_blocks(tmp_path, name):
    texts, utts = tone_corpus(tmp_path)
    losses, grads = {}, {}
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        rec = SpeechRecognizer.create(name, build_tokenizer("char", texts), FeatureConfig(n_mels=40), TextConfig(),
                                      torch.device("cpu"), d_model=32, heads=2, layers=4, conv_channels=4)
        # The residual branches start at zero, so at initialisation the middle block's output equals the
        # last one's and both CTC terms coincide: move every weight a little, the same in both runs.
        generator = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for p in rec.model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=generator))
        trainer = SpeechTrainer(rec, TrainConfig(specaugment=False, inter_ctc_weight=weight, **NO_AUGMENTATION),
                                utts, utts)
        assert trainer.inter_ctc == (weight > 0)
        batch = next(iter(trainer.train_loader))
        rec.model.train()
        torch.manual_seed(1)
        loss, _ = trainer.loss(batch)
        loss.backward()
        losses[weight] = float(loss.detach())
        encoder = rec.model.encoder
        grads[weight] = encoder.blocks[0].ff1.net[1].weight.grad.norm().item()
        # inference is unchanged: the same log-probabilities with or without the option
        rec.model.eval()
        with torch.no_grad():
            feats, lengths = rec.features(batch["waves"], batch["wave_lengths"])
            plain = rec.model(feats, lengths)[0]
            with_middle = rec.model(feats, lengths, intermediate=True)
        assert torch.equal(plain, with_middle[0]) and with_middle[-1].shape == plain.shape
        assert not torch.equal(with_middle[-1], plain)  # the middle block's own CTC distribution
    assert losses[0.5] != pytest.approx(losses[0.0])
    assert grads[0.5] > 0 and grads[0.5] != pytest.approx(grads[0.0])


def test_intermediate_ctc_is_ignored_with_a_message_for_deepspeech2(tmp_path, capsys):
    texts, utts = tone_corpus(tmp_path)
    rec = SpeechRecognizer.create("deepspeech2", build_tokenizer("char", texts), FeatureConfig(n_mels=40),
                                  TextConfig(), torch.device("cpu"), rnn_hidden=16, rnn_layers=1)
    trainer = SpeechTrainer(rec, TrainConfig(**NO_AUGMENTATION, specaugment=False, inter_ctc_weight=0.3), utts, utts)
    assert not trainer.inter_ctc and "--inter_ctc_weight needs" in capsys.readouterr().out
    loss, _ = trainer.loss(next(iter(trainer.train_loader)))
    assert torch.isfinite(loss)


def test_a_run_with_ema_and_best_n_records_its_choice_in_best_and_a_fork_continues_the_ema(tmp_path, monkeypatch):
    from data_corpora import make_2022, run_main

    from modules.checkpoint import read_checkpoint
    from modules.transcribe import parse_options, recipe
    root = make_2022(tmp_path / "ds", repeats=2)
    ckpt = tmp_path / "ckpt"
    common = ["--dataset_path", root, "--model", "conformer", "--d_model", "32", "--heads", "2", "--layers", "2",
              "--decoder", "greedy", "--ema_decay", "0.9", "--average_best", "2", "--noise_prob", "0.5",
              "--phone_prob", "0.5", "--vtlp", "0.1", "--inter_ctc_weight", "0.3"]
    nsml = run_main(monkeypatch, root, ckpt, common + ["--epochs", "3"])
    assert nsml.saved.count("best") >= 1 and "3" in nsml.saved
    _, best = read_checkpoint(str(ckpt / "best"))
    assert best["trainer"]["final_weights"] in ("plain", "ema", "best2")
    _, last = read_checkpoint(str(ckpt / "3"))
    assert last["trainer"]["ema"]["updates"] == last["trainer"]["step"] > 0
    # a fork (of the last epoch) continues the EMA where the checkpoint left it
    options = parse_options(common[2:] + ["--epochs", "4"])
    trainer = recipe.build(options, root, torch.device("cpu"), loaded_state=last)
    assert trainer.ema.updates == last["trainer"]["ema"]["updates"]
    for k, v in last["trainer"]["ema"]["weights"].items():
        assert torch.equal(trainer.ema.shadow[k], v), k


# -- the harder held-out -----------------------------------------------------------------------------

def load_bench(name):
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hard_corpus_degrades_the_test_split_in_its_own_formats_and_repeats_itself(tmp_path):
    import os

    from data_corpora import wav_bytes

    from modules.audio import load_audio
    source = tmp_path / "corpus"
    (source / "train" / "train_data").mkdir(parents=True)
    (source / "train" / "train_label").write_text("filename,text\n")
    test_data = source / "test" / "test_data"
    test_data.mkdir(parents=True)
    # white noise up to 8 kHz, so the phone channel's cut shows; one raw PCM file, one WAV (2023 layout)
    rng = np.random.default_rng(0)
    clean = [np.clip(0.2 * rng.standard_normal(RATE), -1, 1) for _ in range(4)]
    for i, samples in enumerate(clean):
        if i % 2:
            (test_data / f"test_{i:06d}").write_bytes(wav_bytes(samples))
        else:
            (samples * 32767).astype("<i2").tofile(test_data / f"test_{i:06d}")
    (source / "test" / "test_label").write_text("filename,text\n" + "".join(f"test_{i:06d},가나\n" for i in range(4)))
    hard_corpus = load_bench("hard_corpus")
    for out in ("hard1", "hard2"):
        hard_corpus.main([str(source), str(tmp_path / out), "--snr", "5,5", "--seed", "3"])
    out = tmp_path / "hard1"
    assert os.path.islink(out / "train") and (out / "test" / "test_label").read_text() == \
        (source / "test" / "test_label").read_text()
    for i in range(4):
        name = f"test_{i:06d}"
        data = (out / "test" / "test_data" / name).read_bytes()
        assert data == (tmp_path / "hard2" / "test" / "test_data" / name).read_bytes()  # same seed, same files
        assert (data[:4] == b"RIFF") == bool(i % 2)  # the format it had
        degraded = load_audio(str(out / "test" / "test_data" / name))
        power = np.abs(np.fft.rfft(degraded)) ** 2
        before = np.abs(np.fft.rfft(clean[i])) ** 2
        assert power[4200:].sum() < 0.01 * before[4200:].sum()
    with pytest.raises(SystemExit, match="exists"):
        hard_corpus.main([str(source), str(out)])


def test_augment_speed_bench_quick_mode_reports_every_augmentation(tmp_path):
    results = load_bench("augment_speed").main(["--quick", "--out", str(tmp_path / "speed.json")])
    assert {"noise babble", "noise from --noise_dir", "phone 8 kHz + mu-law", "features with VTLP (1 CPU thread)"} \
        <= set(results)
    assert all(v > 0 for v in results.values())


@pytest.mark.parametrize("name", ["conformer", "attention"])
def test_self_conditioning_feeds_the_middle_prediction_back_and_travels_in_the_checkpoint(tmp_path, name):
    from modules.transcribe.options import parse_options
    from modules.transcribe.plan import model_config
    options = model_config(parse_options(["--model", name, "--self_condition", "--d_model", "32", "--heads", "2",
                                          "--layers", "4"]))
    assert options["self_condition"] is True and options["d_model"] == 32
    options["conv_channels"] = 4
    torch.manual_seed(0)
    rec = SpeechRecognizer.create(name, build_tokenizer("char", ["가나다"]), FeatureConfig(n_mels=40), TextConfig(),
                                  torch.device("cpu"), **options)
    model = rec.model.eval()
    feats, lengths = torch.randn(2, 120, 40), torch.tensor([120, 90])
    with torch.no_grad():
        before = model(feats, lengths)[0]
        torch.nn.init.normal_(model.feedback.weight, std=1.0)  # starts at zero: the plain model
        after = model(feats, lengths)[0]
    assert not torch.allclose(before, after)  # the upper blocks now see the middle prediction
    path = str(tmp_path / "model.pt")
    save_file({"recognizer": rec.state_dict()}, path)
    loaded = SpeechRecognizer.from_state_dict(load_file(path)["recognizer"], torch.device("cpu"))
    with torch.no_grad():
        assert torch.equal(loaded.model(feats, lengths)[0], after)
    plain = build_model(name, 40, len(rec.tokenizer), d_model=32, heads=2, layers=4, conv_channels=4)
    assert plain.feedback is None and "feedback.weight" not in plain.state_dict()  # old checkpoints load as before
