"""`--preset baseline2022` really trains the 2022 baseline's way, and the kit's defaults stay the kit's."""
import math

import numpy as np
import pytest
import torch

from modules.checkpoint import read_checkpoint, write_checkpoint
from modules.samplers import BatchByCountSampler, DurationBatchSampler
from modules.transcribe import recipe
from modules.transcribe.decoding import ctc_greedy_decode
from modules.transcribe.models.deepspeech2 import ConvFrontEnd, DeepSpeech2, DeepSpeech2Config
from modules.transcribe.options import PRESETS, Options, apply_preset, parse_options, use_specaugment
from modules.transcribe.recognizer import SpeechRecognizer

SENTENCES = ["안녕 하세요", "날씨가 맑아요", "불을 켜 줘", "음악 틀어 줘", "지금 몇 시야", "문 열어 줘"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny 2022-layout dataset: 12 headerless PCM files of 1.5-2.6 s tones and noise."""
    root = tmp_path_factory.mktemp("ds")
    data = root / "train" / "train_data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["filename,text"]
    for i in range(12):
        n = int(16000 * (1.5 + 0.1 * i))
        t = np.arange(n) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) + 0.05 * rng.standard_normal(n)
        (data / f"idx_{i:06d}").write_bytes((wave * 32767).astype("<i2").tobytes())
        rows.append(f"idx_{i:06d},{SENTENCES[i % len(SENTENCES)]}")
    (root / "train" / "train_label").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(root)


def build(dataset, *argv):
    options = parse_options(["--valid_fraction", "0.3", *argv])
    return recipe.build(options, dataset, torch.device("cpu"))


def test_baseline2022_builds_the_baseline_recipe(dataset):
    trainer = build(dataset, "--preset", "baseline2022")
    model, rec = trainer.recognizer.model, trainer.recognizer
    assert isinstance(model.rnn, torch.nn.GRU) and model.rnn.bidirectional
    assert (model.rnn.hidden_size, model.rnn.num_layers) == (1024, 3)
    convs = [m for m in model.front_end.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(41, 11), (21, 11)]
    assert [c.stride for c in convs] == [(2, 2), (2, 1)]
    assert all(c.out_channels == 32 for c in convs)
    assert any(isinstance(m, torch.nn.Hardtanh) for m in model.front_end.modules())
    assert model.config.time_stride == 2
    assert int(model.output_lengths(torch.tensor([1000]))[0]) == 500  # 10 ms frames -> 20 ms
    assert rec.feature_config.win_ms == 20.0 and rec.feature_config.hop_ms == 10.0
    assert rec.feature_config.n_mels == 80

    assert isinstance(trainer.train_sampler, BatchByCountSampler) and trainer.train_sampler.batch_size == 128
    # The epoch list is every utterance twice; only the second copy is SpecAugmented.
    n = len(trainer.train_utts)
    assert len(trainer.epoch_utts) == 2 * n and trainer.epoch_utts[n:] == trainer.train_utts
    rows = trainer.augment_rows({"indices": [0, n - 1, n, 2 * n - 1]})
    assert rows.tolist() == [False, False, True, True]

    assert type(trainer.optimizer) is torch.optim.Adam
    assert trainer.optimizer.defaults["weight_decay"] == 1e-5
    assert trainer.config.lr == 1e-4 and trainer.config.lr_schedule == "tri_stage"
    assert rec.decoder_config.merge_repeats is False
    assert rec.tokenizer.kind == "char" and trainer.speed_factors == ()  # characters, no speed perturbation
    assert rec.decoder_config.batch_seconds == 0.0  # inference one file at a time, recorded in the checkpoint


def test_kit_defaults_are_untouched_by_the_preset_machinery(dataset):
    trainer = build(dataset)
    model, rec = trainer.recognizer.model, trainer.recognizer
    # jamo units, so 40 ms frames; no conv_kernels/conv_strides: the kit's 3x3 front end
    assert rec.tokenizer.kind == "jamo" and model.config == DeepSpeech2Config(time_stride=4)
    assert (model.rnn.hidden_size, model.rnn.num_layers, model.config.time_stride) == (256, 2, 4)
    convs = [m for m in model.front_end.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3)] and [c.stride for c in convs] == [(2, 2), (2, 2)]
    assert trainer.speed_factors == (0.9, 1.0, 1.1) and rec.lm.order == 10
    # Same parameter names and shapes as the model built straight from its config (old checkpoints load).
    reference = DeepSpeech2(DeepSpeech2Config(time_stride=4), n_mels=80, vocab_size=len(rec.tokenizer))
    assert {k: v.shape for k, v in model.state_dict().items()} == \
           {k: v.shape for k, v in reference.state_dict().items()}
    assert rec.feature_config.win_ms == 25.0
    assert isinstance(trainer.train_sampler, DurationBatchSampler)
    assert trainer.epoch_utts == trainer.train_utts and trainer.augment_rows({"indices": [0]}) is None
    assert type(trainer.optimizer) is torch.optim.AdamW and trainer.config.lr_schedule == "cosine"
    assert rec.decoder_config.merge_repeats is True
    assert rec.decoder_config.batch_seconds > 0


def test_options_given_on_the_command_line_beat_the_preset():
    options = parse_options(["--preset", "baseline2022", "--rnn_hidden", "64", "--batch_utterances", "8"])
    assert (options.rnn_hidden, options.batch_utterances, options.rnn_layers) == (64, 8, 3)


def test_every_preset_setting_is_an_option():
    names = set(vars(Options()))
    for name, settings in PRESETS.items():
        assert set(settings) <= names, name

    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--lr")
    with pytest.raises(ValueError, match="does not have"):
        apply_preset(p, "baseline2022")


def test_preset_model_config_and_decoding_travel_with_the_checkpoint(dataset, tmp_path):
    rec = build(dataset, "--preset", "baseline2022", "--rnn_hidden", "16", "--rnn_layers", "1").recognizer
    write_checkpoint(str(tmp_path), "transcribe", {"recognizer": rec.state_dict()})
    loaded = SpeechRecognizer.from_state_dict(read_checkpoint(str(tmp_path))[1]["recognizer"], torch.device("cpu"))
    assert loaded.model.config == rec.model.config
    assert [list(k) for k in loaded.model.config.conv_kernels] == [[41, 11], [21, 11]]
    assert loaded.decoder_config.merge_repeats is False and loaded.feature_config.win_ms == 20.0
    waves = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 12000])
    rec.model.eval()
    with torch.no_grad():
        a, _ = rec.forward(waves, lengths)
        b, _ = loaded.forward(waves, lengths)
    assert torch.allclose(a, b, atol=1e-5)


def test_kospeech_front_end_output_lengths_match_the_convolutions():
    front = ConvFrontEnd(80, 4, 2, kernels=[[41, 11], [21, 11]], strides=[[2, 2], [2, 1]])
    for frames in (1, 2, 7, 100, 101):
        x, lengths = front(torch.randn(1, frames, 80), torch.tensor([frames]))
        assert x.shape == (1, int(lengths[0]), front.output_dim) == (1, (frames - 1) // 2 + 1, 4 * 20)
    with pytest.raises(ValueError, match="time_stride"):
        ConvFrontEnd(80, 4, 6, kernels=[[41, 11], [21, 11]], strides=[[2, 2], [2, 1]])


def test_greedy_decoding_without_merging_repeats_keeps_the_baseline_bug():
    path = torch.tensor([[1, 1, 0, 1, 2, 2, 0]])
    log_probs = torch.nn.functional.one_hot(path, 3).float().log()
    lengths = torch.tensor([7])
    assert ctc_greedy_decode(log_probs, lengths) == [[1, 1, 2]]
    assert ctc_greedy_decode(log_probs, lengths, merge_repeats=False) == [[1, 1, 1, 2, 2]]


def test_batch_by_count_sampler_covers_every_item_once_per_epoch():
    sampler = BatchByCountSampler(10, 4, seed=3)
    batches = list(sampler)
    assert [len(b) for b in batches] == [4, 4, 2] and len(sampler) == 3
    assert sorted(i for b in batches for i in b) == list(range(10))
    sampler.set_epoch(1)
    assert list(sampler) != batches  # reshuffled
    assert list(BatchByCountSampler(5, 2, shuffle=False)) == [[0, 1], [2, 3], [4]]


def test_tri_stage_schedule_warms_up_holds_then_decays_exponentially(dataset):
    trainer = build(dataset, "--preset", "baseline2022", "--rnn_hidden", "16", "--rnn_layers", "1")
    c = trainer.config
    lr_at = {}
    for p in (0.0, c.warmup_fraction / 2, c.warmup_fraction, 0.3, 0.5, 0.75, 1.0):
        trainer.progress = lambda p=p: p
        lr_at[p] = trainer.learning_rate()
    assert lr_at[0.0] == pytest.approx(1e-6)                          # KoSpeech init_lr
    assert lr_at[c.warmup_fraction / 2] == pytest.approx(0.5e-4)
    assert lr_at[c.warmup_fraction] == lr_at[0.3] == lr_at[0.5] == pytest.approx(1e-4)  # hold at peak
    assert lr_at[0.75] == pytest.approx(1e-4 * math.sqrt(0.05))      # exponential: half-way in log space
    assert lr_at[1.0] == pytest.approx(1e-4 * 0.05)                  # final_lr_scale


class _Recorder(torch.nn.Module):
    """Stands in for the acoustic model and keeps the features it is given."""

    def forward(self, feats, lengths):
        self.feats = feats
        return feats, lengths


def test_specaugment_copies_leave_the_clean_rows_clean(dataset):
    trainer = build(dataset, "--preset", "baseline2022", "--rnn_hidden", "16", "--rnn_layers", "1")
    rec = trainer.recognizer
    rec.model = _Recorder()
    torch.manual_seed(0)
    waves = torch.randn(2, 32000) * 0.1
    lengths = torch.tensor([32000, 32000])
    clean, _ = rec.featurizer(waves, lengths)
    rec.forward(waves, lengths, trainer.augment, torch.tensor([False, True]))
    assert torch.equal(rec.model.feats[0], clean[0])
    assert not torch.equal(rec.model.feats[1], clean[1])


@pytest.mark.parametrize("argv,expected", [
    (["--max_minutes", "4"], True),        # on by default
    (["--max_minutes", "4", "--specaugment", "auto"], False),  # auto: short budgets go without it
    (["--max_minutes", "59", "--specaugment", "auto"], False),
    (["--max_minutes", "60", "--specaugment", "auto"], True),
    (["--specaugment", "auto"], True),     # bounded by epochs only
    (["--max_minutes", "4", "--specaugment", "on"], True),
    (["--specaugment", "off"], False),
    (["--no_specaugment"], False),
    (["--preset", "baseline2022", "--max_minutes", "6"], True),  # the baseline's recipe augments always
])
def test_specaugment_default_and_auto(argv, expected):
    assert use_specaugment(parse_options(argv)) is expected


def test_a_forked_session_keeps_its_units_and_their_lm_order(dataset):
    rec = build(dataset, "--unit", "char").recognizer
    assert rec.tokenizer.kind == "char" and rec.lm.order == 5
    rec.lm = None
    # as after `nsml fork`: the loaded recognizer is kept, while the defaults now say jamo
    forked = recipe.build(parse_options(["--valid_fraction", "0.3"]), dataset, torch.device("cpu"),
                          loaded_state={"recognizer": rec.state_dict(), "trainer": None}).recognizer
    assert forked.tokenizer.kind == "char" and forked.lm.order == 5
