"""Checkpoint averaging, mixed-precision selection, decoder options in checkpoints, and the
inference-time fallback to greedy decoding."""

import numpy as np
import pytest
import torch

from modules.checkpoint import load_file, save_file
from modules.features import FeatureConfig
from modules.transcribe.normalize import TextConfig
from modules.training import amp_dtype
from modules.transcribe.decoding import DecoderConfig
from modules.transcribe.inference import transcribe_files
from modules.transcribe.lm import CharNgramLM
from modules.transcribe.models import build_model
from modules.transcribe.recognizer import SpeechRecognizer
from modules.transcribe.tokenizers import CharTokenizer
from modules.transcribe.trainer import NO_AUGMENTATION, average_state_dicts


def test_averaging_identical_weights_is_the_identity():
    model = build_model("conformer", 40, 9, d_model=32, heads=2, layers=1, conv_channels=4)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    averaged = average_state_dicts([state, {k: v.clone() for k, v in state.items()}, state])
    assert averaged.keys() == state.keys()
    for k in state:
        assert torch.equal(averaged[k], state[k]), k
    model.load_state_dict(averaged)  # loads back without complaint


def test_averaging_takes_the_mean_of_floats_and_the_last_counter():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(7)}
    out = average_state_dicts([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and int(out["n"]) == 7


def test_amp_is_off_on_cpu_unless_asked():
    cpu = torch.device("cpu")
    assert amp_dtype("auto", cpu) is None and amp_dtype("off", cpu) is None
    assert amp_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError):
        amp_dtype("fp8", cpu)


def tiny_recognizer():
    torch.manual_seed(0)
    tokenizer = CharTokenizer.build(["가나다 라마"])
    return SpeechRecognizer.create("deepspeech2", tokenizer, FeatureConfig(n_mels=40), TextConfig(),
                                   torch.device("cpu"), conv_channels=4, rnn_hidden=16, rnn_layers=1)


def test_decoder_options_and_lm_travel_in_the_checkpoint(tmp_path):
    rec = tiny_recognizer()
    rec.decoder_config = DecoderConfig(decoder="beam", beam_width=5, lm_weight=0.7, infer_budget_s=100.0)
    rec.lm = CharNgramLM.train(["가나다", "라마"], order=3)
    path = str(tmp_path / "model.pt")
    save_file({"recognizer": rec.state_dict()}, path)
    loaded = SpeechRecognizer.from_state_dict(load_file(path)["recognizer"], torch.device("cpu"))
    assert loaded.decoder_config == rec.decoder_config
    assert loaded.lm.score("가나") == rec.lm.score("가나")


def test_inference_falls_back_to_greedy_when_the_projection_exceeds_the_budget(tmp_path, capsys):
    rec = tiny_recognizer()
    rec.decoder_config = DecoderConfig(decoder="beam", beam_width=4, blank_skip=1.0)
    paths = []
    rng = np.random.default_rng(0)
    for i in range(6):
        paths.append(str(tmp_path / f"f{i}"))
        (rng.standard_normal(8000 + 800 * i) * 1000).astype("<i2").tofile(paths[-1])
    calls = []
    original = rec.decode

    def recording_decode(log_probs, lengths, decoder=None):
        calls.append(decoder.decoder)
        return original(log_probs, lengths, decoder=decoder)

    rec.decode = recording_decode
    # A budget no decoder can meet: after two batches the rest is decoded greedily.
    texts = transcribe_files(rec, paths, batch_seconds=1.0, progress=False, budget_s=1e-9)
    assert len(texts) == 6
    assert calls[:2] == ["beam", "beam"] and set(calls[2:]) == {"greedy"} and len(calls) > 2
    assert "decoding the rest greedily" in capsys.readouterr().out
    # A generous budget keeps beam search throughout, and the texts do not depend on the budget here.
    calls.clear()
    transcribe_files(rec, paths, batch_seconds=1.0, progress=False, budget_s=1e9)
    assert set(calls) == {"beam"}


@pytest.mark.parametrize("model,options", [("deepspeech2", dict(rnn_hidden=32, rnn_layers=1)),
                                           ("conformer", dict(d_model=32, heads=2, layers=1)),
                                           ("attention", dict(d_model=32, heads=2, layers=1))])
def test_every_model_trains_under_bf16_autocast(tmp_path, model, options):
    """The mixed-precision path GPUs take (autocast, float32 CTC, float32 master weights), run on CPU."""
    from data_corpora import tone_audio

    from modules.transcribe.corpus import Utterance
    from modules.transcribe.tokenizers import build_tokenizer
    from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig
    torch.manual_seed(0)
    texts, utts = ["가나다", "라마바"], []
    for i, text in enumerate(texts):
        path = str(tmp_path / f"u{i}")
        (tone_audio(i, seconds=1.0) * 32767).astype("<i2").tofile(path)
        utts.append(Utterance(path, text, 1.0))
    rec = SpeechRecognizer.create(model, build_tokenizer("char", texts), FeatureConfig(n_mels=40), TextConfig(),
                                  torch.device("cpu"), **options)
    trainer = SpeechTrainer(rec, TrainConfig(**NO_AUGMENTATION, amp="bf16", specaugment=False, lr=3e-3), utts, utts)
    with trainer.autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    batch = next(iter(trainer.train_loader))
    losses = [trainer.train_step(batch)[0] for _ in range(30)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0], losses
    assert {p.dtype for p in rec.model.parameters()} == {torch.float32}


def test_speed_perturbation_scales_pitch_and_length_together():
    from modules.features import speed_perturb
    rate, tone = 16000, 440.0
    t = torch.arange(rate) / rate
    waves = torch.sin(2 * torch.pi * tone * t).repeat(2, 1)
    lengths = torch.tensor([rate, rate // 2])
    for factor in (0.9, 1.1):
        out, out_lengths = speed_perturb(waves, lengths, factor)
        assert out.size(1) == int(rate / factor)
        assert out_lengths.tolist() == [int(rate / factor), int(rate / 2 / factor)]
        peak_hz = torch.fft.rfft(out[0]).abs().argmax().item() * rate / out.size(1)
        assert abs(peak_hz - tone * factor) < 3, (factor, peak_hz)
    same, same_lengths = speed_perturb(waves, lengths, 1.0)
    assert same is waves and same_lengths is lengths


def test_trainer_draws_each_batch_speed_from_the_factors(tmp_path):
    from data_corpora import tone_audio

    from modules.transcribe.corpus import Utterance
    from modules.transcribe.tokenizers import build_tokenizer
    from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig
    path = str(tmp_path / "u0")
    (tone_audio(0, seconds=1.0) * 32767).astype("<i2").tofile(path)
    utts = [Utterance(path, "가나", 1.0)]
    rec = SpeechRecognizer.create("deepspeech2", build_tokenizer("char", ["가나"]), FeatureConfig(n_mels=40),
                                  TextConfig(), torch.device("cpu"), rnn_hidden=16, rnn_layers=1)
    plain = SpeechTrainer(rec, TrainConfig(**NO_AUGMENTATION, specaugment=False), utts, utts)
    assert {plain.batch_speed() for _ in range(20)} == {1.0}
    perturbed = SpeechTrainer(rec, TrainConfig(**{**NO_AUGMENTATION, "specaugment": False, "speed_factors": (0.9, 1.0, 1.1)}), utts, utts)
    assert {perturbed.batch_speed() for _ in range(60)} == {0.9, 1.0, 1.1}
    # the features the model sees are shorter at 1.1 and longer at 0.9
    batch = next(iter(perturbed.train_loader))
    frames = {s: int(rec.features(batch["waves"], batch["wave_lengths"], speed=s)[1][0]) for s in (0.9, 1.0, 1.1)}
    assert frames[1.1] < frames[1.0] < frames[0.9], frames


# -- resume: a fork continues the budget, the LR schedule and the best epoch -----------------------

class _Batches:
    """Stands in for a DataLoader: the loop only needs its length and its sampler's set_epoch."""
    batch_sampler = type("Sampler", (), {"set_epoch": lambda self, epoch: None})()

    def __len__(self):
        return 10


def _trainer(**config):
    from modules.training import LoopConfig, Trainer
    return Trainer(torch.nn.Linear(2, 2), LoopConfig(**config), torch.device("cpu"), _Batches())


@pytest.fixture
def clock(monkeypatch):
    """time.time() of modules/training.py, moved by hand."""
    import modules.training as training
    now = [1000.0]
    monkeypatch.setattr(training.time, "time", lambda: now[0])
    return now


def test_a_fork_of_a_budgeted_run_continues_the_same_lr_curve(clock):
    original = _trainer(epochs=100, max_minutes=10)
    original.epoch, original.step = 4, 40  # 40 of 1000 planned steps, but 5 of 10 minutes: time leads
    clock[0] += 300
    state = original.state_dict()
    forked = _trainer(epochs=100, max_minutes=10)
    forked.load_state_dict(state)
    assert forked.learning_rate() == pytest.approx(original.learning_rate())
    assert forked.learning_rate() < 0.9 * forked.config.lr  # half-way down the cosine, not back in warmup
    clock[0] += 120  # both go on for 2 more minutes
    assert forked.learning_rate() == pytest.approx(original.learning_rate())
    assert forked.elapsed() == pytest.approx(420) and not forked.out_of_time()
    clock[0] += 180
    assert forked.out_of_time()  # the 10-minute budget counts the original's 5 minutes


def test_a_fork_with_nothing_left_says_how_to_extend_it(clock):
    done = _trainer(epochs=3)
    done.epoch = 3
    forked = _trainer(epochs=3)
    forked.load_state_dict(done.state_dict())
    assert '-a "--epochs 6' in forked.nothing_left()
    forked.fit(lambda m: pytest.fail("a finished run trained another epoch"))

    budget = _trainer(epochs=100, max_minutes=2)
    clock[0] += 150
    forked = _trainer(epochs=100, max_minutes=2)
    forked.load_state_dict(budget.state_dict())
    assert '-a "--max_minutes 4' in forked.nothing_left() and "2.5 min" in forked.nothing_left()
    assert _trainer(epochs=100, max_minutes=2).nothing_left() == ""


def test_eta_counts_the_epochs_left_at_this_sessions_pace_within_the_budget(clock):
    trainer = _trainer(epochs=40, max_minutes=0)
    trainer.epoch = 12
    clock[0] += 12 * 30  # 30 s per epoch
    assert trainer.eta_minutes() == pytest.approx(28 * 0.5)
    budgeted = _trainer(epochs=40, max_minutes=10)
    budgeted.epoch = 12
    clock[0] += 12 * 30
    assert budgeted.eta_minutes() == pytest.approx(4.0)  # 6 of 10 minutes used: the budget ends first


def test_the_best_summary_after_lm_tuning_keeps_epoch_and_val_cer(monkeypatch):
    """The tuned report is the summary the re-saved 'best' checkpoint keeps (`nsml ps`, `model ls`)."""
    from types import SimpleNamespace

    from modules.task_interface import Callbacks
    from modules.transcribe import recipe
    monkeypatch.setattr(recipe, "tune_lm_fusion", lambda rec, utts: [(0.067, 1.6, 1.0), (0.07, 1.0, 0.0)])
    rec = tiny_recognizer()
    rec.decoder_config = DecoderConfig(decoder="beam", lm_weight=1.0, lm_bonus=0.0)
    reports, saved = [], []
    callbacks = Callbacks(report=lambda step, **values: reports.append((step, values)),
                          save=lambda name, state: saved.append(name), log=lambda line: None)
    trainer = SimpleNamespace(epoch=40, best_epoch=12, best=0.081, valid_utts=[])
    recipe.tune_fusion_of_best(rec, trainer, rec.model.state_dict(), callbacks, state=lambda: {})
    step, values = reports[-1]
    assert step == 12 and values["epoch"] == 12 and values["val_cer"] == 0.081
    assert values["tuned_lm_weight"] == 1.6 and values["tuned_beam_val_cer"] == 0.067
    assert saved == ["best"]


def test_inference_prints_a_progress_line_per_tenth_of_the_files_without_a_terminal(tmp_path, capsys):
    rec = tiny_recognizer()
    rec.decoder_config = DecoderConfig(decoder="greedy")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(20):
        paths.append(str(tmp_path / f"f{i:02d}"))
        (rng.standard_normal(4000) * 1000).astype("<i2").tofile(paths[-1])
    transcribe_files(rec, paths, batch_seconds=0.0, progress=True)  # one file per batch; pytest is no terminal
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("[infer] ")]
    assert [l.split()[1] for l in lines] == [f"{n}/20" for n in range(2, 21, 2)]
    assert lines[-1].startswith("[infer] 20/20 files (100%)")
    transcribe_files(rec, paths, batch_seconds=0.0, progress=False)
    assert "[infer]" not in capsys.readouterr().out
