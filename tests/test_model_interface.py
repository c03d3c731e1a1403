"""Adding a model is one file and one registry line: the recipe trains it, the checkpoint restores it
and the decoders run it, because everything asks the model (models/interface.py) and the registry
(models/__init__.py), not its name."""
import inspect
from dataclasses import dataclass, replace

import pytest
import torch
from torch import nn

from data_corpora import make_2022, one_torch_thread  # noqa: F401 (autouse fixture)
from modules import transcribe
from modules.checkpoint import read_checkpoint, write_checkpoint
from modules.task_interface import Callbacks
from modules.transcribe import parse_options
from modules.transcribe.inference import transcribe_files
from modules.transcribe.models import MODELS, config_fields, has_decoder
from modules.transcribe.models.interface import AcousticModel, SequenceDecoder


# -- the "one file" of a new model ---------------------------------------------------------------
@dataclass
class ToyConfig:
    hidden: int = 24


class ToyCTC(AcousticModel):
    """One hidden layer per 10 ms frame: a CTC model in ten lines."""

    def __init__(self, config: ToyConfig, n_mels: int, vocab_size: int):
        super().__init__()
        self.config = config
        self.net = nn.Sequential(nn.Linear(n_mels, config.hidden), nn.ReLU(), nn.Linear(config.hidden, vocab_size))

    def output_lengths(self, feature_lengths):
        return feature_lengths

    def forward(self, feats, lengths):
        return self.net(feats).float().log_softmax(-1), lengths


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(MODELS, "toy", (ToyCTC, ToyConfig))  # the "one registry line"


def test_a_registered_toy_model_trains_saves_loads_and_decodes_through_the_recipe(tmp_path, toy_registered):
    dataset = make_2022(tmp_path / "ds")
    options = replace(parse_options(["--epochs", "2", "--lm_order", "3", "--no_tune_lm", "--decoder", "beam",
                                     "--specaugment", "off", "--speed_perturb", "off", "--valid_fraction", "0.2"]),
                      model="toy")
    saved, reports = {}, []

    def save(name, state):
        saved[str(name)] = tmp_path / "ckpt" / str(name)
        write_checkpoint(str(saved[str(name)]), transcribe.NAME, state)

    trained = transcribe.train(options, dataset, torch.device("cpu"),
                               Callbacks(save=save, report=lambda step, **kw: reports.append(kw), log=lambda line: None))
    assert isinstance(trained.model, ToyCTC) and trained.model_name == "toy"
    assert [r["epoch"] for r in reports if "train_loss" in r] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in reports if "train_loss" in r)

    task, state = read_checkpoint(str(saved["best"]))  # a fresh process restores it by its registry name
    assert task == "transcribe" and state["recognizer"]["model_name"] == "toy"
    assert state["recognizer"]["model_options"] == {"hidden": 24}
    loaded = transcribe.load(state, torch.device("cpu"))
    assert isinstance(loaded.model, ToyCTC) and loaded.model.net[0].weight.shape == (24, 80)
    files = sorted((tmp_path / "ds" / "train" / "train_data").iterdir())[:3]
    for decoder in ("greedy", "beam"):  # CTC decoders, with the checkpoint's LM for beam
        loaded.decoder_config = replace(loaded.decoder_config, decoder=decoder)
        texts = transcribe_files(loaded, [str(f) for f in files], progress=False)
        assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_any_model_with_a_decoder_gets_the_decoders_searches_whatever_its_name(tmp_path, monkeypatch):
    """Before the interface, `--decoder joint` was allowed for the model named 'attention' only."""
    from modules.transcribe.models.attention import AttentionConfig, AttentionEncoderDecoder

    monkeypatch.setitem(MODELS, "listener", (AttentionEncoderDecoder, AttentionConfig))
    dataset = make_2022(tmp_path / "ds")
    options = replace(parse_options(["--epochs", "1", "--lm_order", "0", "--decoder", "joint", "--beam_width", "2",
                                     "--d_model", "32", "--layers", "1", "--heads", "2", "--specaugment", "off",
                                     "--speed_perturb", "off"]), model="listener")
    trained = transcribe.train(options, dataset, torch.device("cpu"), Callbacks(log=lambda line: None))
    assert trained.model_name == "listener" and trained.decoder_config.decoder == "joint"
    files = sorted((tmp_path / "ds" / "train" / "train_data").iterdir())[:2]
    texts = transcribe_files(trained, [str(f) for f in files], progress=False)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_a_model_without_a_decoder_is_refused_the_decoders_search_by_its_flag(tmp_path, toy_registered):
    dataset = make_2022(tmp_path / "ds")
    options = replace(parse_options(["--epochs", "1", "--lm_order", "0", "--decoder", "joint"]), model="toy")
    with pytest.raises(SystemExit, match="--decoder joint needs a model with a decoder"):
        transcribe.train(options, dataset, torch.device("cpu"), Callbacks(log=lambda line: None))


def test_the_registry_answers_what_each_model_can_do(toy_registered):
    assert [name for name in MODELS if has_decoder(name)] == ["attention"]
    assert [name for name in MODELS if "size" in config_fields(name)] == ["conformer", "attention"]
    assert [name for name, (cls, _) in MODELS.items() if cls.has_intermediate] == ["conformer", "attention"]
    for name, (model_cls, _) in MODELS.items():
        assert issubclass(model_cls, AcousticModel), name
        assert (model_cls.sos_eos is not None) == model_cls.has_decoder, name
        takes_intermediate = "intermediate" in inspect.signature(model_cls.forward).parameters
        assert takes_intermediate == model_cls.has_intermediate, name
        if model_cls.has_decoder:  # what the trainer and the searches call
            assert all(callable(getattr(model_cls, m, None)) for m in
                       ("decoder_loss", "memory_keys_values", "decoder_step")), name
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        has_decoder("nope")
    assert issubclass(MODELS["attention"][0], SequenceDecoder)
