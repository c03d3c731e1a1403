"""The GPU path's choices, checked on a CPU (issue 20): precision by compute capability, TF32,
fused AdamW, no heap trimming on CUDA, no per-step loss sync, DeepSpeech2's GRU in fp32 under
autocast, vectorised SpecAugment and the /dev/shm check. GPUs are mocked where torch asks one."""
import pytest
import torch
from data_corpora import tone_audio
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from modules import loading, training
from modules.loading import dataloader_options
from modules.features import FeatureConfig, SpecAugmentConfig, spec_augment
from modules.memory import HeapTrimmer
from modules.training import amp_dtype, enable_tf32, native_bf16, optimizer_options
from modules.transcribe import parse_options
from modules.transcribe.auto import Machine, choose
from modules.transcribe.corpus import Utterance
from modules.transcribe.models import build_model
from modules.transcribe.normalize import TextConfig
from modules.transcribe.recognizer import SpeechRecognizer
from modules.transcribe.tokenizers import build_tokenizer
from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig

CUDA = torch.device("cuda")
CARDS = {"V100": (7, 0), "T4": (7, 5), "A100": (8, 0), "H100": (9, 0)}


@pytest.fixture
def card(monkeypatch):
    """`card("T4")`: torch.cuda answers as that GPU would (on a CPU-only torch)."""
    def use(name, memory_gib=16.0):
        capability = CARDS[name]
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"Tesla {name}")
        # what current torch says even before Ampere (bf16 can be emulated): must not decide anything
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        monkeypatch.setattr(torch.cuda, "get_device_properties",
                            lambda device=None: type("Props", (), {"total_memory": memory_gib * 2**30})())
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    return use


@pytest.mark.parametrize("name,auto,scaled", [("V100", torch.float16, True), ("T4", torch.float16, True),
                                              ("A100", torch.bfloat16, False), ("H100", torch.bfloat16, False)])
def test_precision_is_chosen_by_compute_capability(card, name, auto, scaled):
    card(name)
    assert native_bf16(CUDA) == (not scaled)
    assert amp_dtype("auto", CUDA) == auto
    assert amp_dtype("fp16", CUDA) == torch.float16 and amp_dtype("off", CUDA) is None
    # the trainer's GradScaler is on exactly for fp16 (bf16 has fp32's range)
    assert (amp_dtype("auto", CUDA) == torch.float16) == scaled
    # --recipe auto asks the same function
    machine = Machine.of(CUDA)
    assert machine.bf16 == (not scaled)
    options, _ = choose(parse_options([]), machine, 100.0)
    assert options.amp == ("fp16" if scaled else "bf16")


def test_explicit_bf16_on_a_card_without_bf16_tensor_cores_is_fp16_with_a_message(card, capsys):
    card("V100")
    assert amp_dtype("bf16", CUDA) == torch.float16
    out = capsys.readouterr().out
    assert "Tesla V100" in out and "7.0" in out and "fp16 with loss scaling" in out
    card("A100")
    assert amp_dtype("bf16", CUDA) == torch.bfloat16 and capsys.readouterr().out == ""
    assert amp_dtype("bf16", torch.device("cpu")) == torch.bfloat16  # CPU autocast has bf16


@pytest.mark.parametrize("name", sorted(CARDS))
def test_tf32_is_enabled_from_ampere_on(card, name):
    card(name)
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        ampere = CARDS[name] >= (8, 0)
        assert enable_tf32(CUDA) == ampere
        assert torch.backends.cuda.matmul.allow_tf32 == ampere and torch.backends.cudnn.allow_tf32 == ampere
        assert not enable_tf32(torch.device("cpu"))
    finally:  # other tests see torch's defaults
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_fused_adamw_on_cuda_only():
    assert optimizer_options(CUDA) == {"fused": True}
    assert optimizer_options(torch.device("cuda:1")) == {"fused": True}
    assert optimizer_options(torch.device("cpu")) == {}
    # the options build a real optimizer (fused AdamW accepts any float parameters' device list here)
    params = [torch.nn.Parameter(torch.ones(3))]
    assert torch.optim.AdamW(params, **optimizer_options(torch.device("cpu"))).defaults["fused"] is None


def test_heap_trimmer_trims_on_a_cpu_only():
    assert HeapTrimmer(1, torch.device("cpu")).active == HeapTrimmer(1).active
    on_gpu = HeapTrimmer(1, CUDA)
    assert not on_gpu.active and not on_gpu() and on_gpu.trims == 0


def tiny_trainer(tmp_path, n=6, **config):
    texts = ["가나", "다라", "마바", "사아", "자차", "카타"][:n]
    utts = []
    for i, text in enumerate(texts):
        path = str(tmp_path / f"u{i}")
        (tone_audio(i, seconds=1.0) * 32767).astype("<i2").tofile(path)
        utts.append(Utterance(path, text, 1.0))
    torch.manual_seed(0)
    rec = SpeechRecognizer.create("deepspeech2", build_tokenizer("char", texts), FeatureConfig(n_mels=40),
                                  TextConfig(), torch.device("cpu"), conv_channels=4, rnn_hidden=16, rnn_layers=1)
    return SpeechTrainer(rec, TrainConfig(**dict(dict(epochs=1, batch_size=2, specaugment=False, **NO_AUGMENTATION), **config)),
                         utts, utts)


def test_cpu_trainer_is_not_fused_and_loads_a_fused_gpu_checkpoint(tmp_path):
    trainer = tiny_trainer(tmp_path, n=2)
    assert not trainer.optimizer.defaults["fused"]
    trainer.train_epoch()
    state = trainer.state_dict()
    state["optimizer"]["param_groups"] = [dict(g, fused=True) for g in state["optimizer"]["param_groups"]]
    trainer.load_state_dict(state)  # as if saved by a GPU run: this machine's choice wins
    assert all(not g["fused"] for g in trainer.optimizer.param_groups)
    trainer.train_epoch()


def test_the_epoch_loss_is_summed_on_the_device_and_read_rarely(tmp_path, monkeypatch):
    trainer = tiny_trainer(tmp_path)
    step_losses, original_step = [], trainer.train_step

    def recording_step(batch):
        loss, amount = original_step(batch)
        assert isinstance(loss, torch.Tensor) and loss.dim() == 0  # no host read in the step
        step_losses.append(float(loss))
        return loss, amount

    trainer.train_step = recording_step
    metrics = trainer.train_epoch()
    assert len(step_losses) == 3
    assert metrics["train_loss"] == sum(step_losses) / 3  # CPU: exactly the Python float sum, as before

    # With a GPU's refresh interval the running loss is read once, at the epoch's end.
    reads, original_item = [], torch.Tensor.item
    trainer.loss_refresh_seconds = 1e9
    monkeypatch.setattr(torch.Tensor, "item", lambda self: reads.append(self.dtype) or original_item(self))
    trainer.train_epoch()
    assert reads.count(torch.float64) == 1


def test_deepspeech2_gru_runs_in_fp32_under_autocast():
    torch.manual_seed(0)
    model = build_model("deepspeech2", 40, 12, conv_channels=4, rnn_hidden=16, rnn_layers=2)
    seen = []
    model.rnn.register_forward_hook(lambda module, inputs, output: seen.append(
        (inputs[0].data.dtype, output[0].data.dtype)))
    feats, lengths = torch.randn(2, 60, 40), torch.tensor([60, 41])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_probs, out_lengths = model(feats, lengths)
        log_probs.float().sum().backward()
    assert seen == [(torch.float32, torch.float32)]
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.rnn.parameters())

    # in full precision the forward pass is the plain one: front end, packed GRU, norm, head
    model.eval()  # no dropout
    with torch.no_grad():
        x, out = model.front_end(feats, lengths)
        packed = pack_padded_sequence(x, out, batch_first=True, enforce_sorted=False)
        x, _ = pad_packed_sequence(model.rnn(packed)[0], batch_first=True, total_length=x.size(1))
        expected = model.head(model.norm(x)).log_softmax(-1)
        assert torch.equal(model(feats, lengths)[0], expected)


def row_loop_reference():
    """The row-loop SpecAugment the kit had before, kept in bench/specaugment_speed.py."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "specaugment_speed.py")
    spec = importlib.util.spec_from_file_location("specaugment_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.spec_augment_row_loop


AUGMENT_CONFIGS = [SpecAugmentConfig(), SpecAugmentConfig(time_masks=2, time_width=0.2, freq_masks=2, freq_width=10),
                   SpecAugmentConfig(freq_masks=0, time_masks=3), SpecAugmentConfig(freq_masks=1, time_masks=0)]


@pytest.mark.parametrize("config", AUGMENT_CONFIGS)
def test_vectorised_spec_augment_gives_the_row_loops_masks(config):
    loop = row_loop_reference()
    feats, lengths = torch.randn(7, 120, 40), torch.tensor([120, 119, 60, 33, 7, 1, 90])
    for seed in range(5):
        new = spec_augment(feats, lengths, config, torch.Generator().manual_seed(seed))
        assert torch.equal(new, loop(feats, lengths, config, torch.Generator().manual_seed(seed)))
    # without a generator both draw from torch's global one, as the trainer calls it
    torch.manual_seed(3)
    new = spec_augment(feats, lengths, config)
    torch.manual_seed(3)
    assert torch.equal(new, loop(feats, lengths, config))


def test_spec_augment_masks_bands_and_spans_within_each_utterance():
    config = SpecAugmentConfig(freq_masks=2, freq_width=15, time_masks=2, time_width=0.1)
    feats, lengths = torch.rand(32, 200, 80) + 1, torch.randint(20, 201, (32,))  # no zero before masking
    for seed in range(10):
        out = spec_augment(feats, lengths, config, torch.Generator().manual_seed(seed))
        assert out.shape == feats.shape and (feats > 0).all()  # a new tensor, the input untouched
        zero = out == 0
        assert torch.equal(out[~zero], feats[~zero])  # only zeroing
        bins = zero.all(dim=1)                               # (B, M): whole mel bins zeroed
        frames = zero.all(dim=2)                             # (B, T): whole frames zeroed
        assert torch.equal(zero, bins[:, None, :] | frames[:, :, None])  # masks are whole bands / spans
        for b in range(32):
            assert bins[b].sum() <= 2 * 15
            assert not frames[b, lengths[b]:].any()          # time masks stay inside the utterance
            assert frames[b].sum() <= 2 * int(lengths[b] * 0.1)


def test_spec_augment_mask_statistics_match_the_row_loop():
    """Different seeds for the two, so this compares distributions, not draws."""
    loop, config = row_loop_reference(), SpecAugmentConfig()
    feats, lengths = torch.ones(64, 300, 80), torch.randint(100, 301, (64,))

    def fractions(augment, seeds):
        outs = [augment(feats, lengths, config, torch.Generator().manual_seed(s)) == 0 for s in seeds]
        bins = torch.stack([o.all(1).float().mean(1) for o in outs])         # (runs, B) masked bin share
        frames = torch.stack([o.all(2).sum(1) / lengths for o in outs])     # (runs, B) masked frame share
        return bins.flatten(), frames.flatten()

    new_bins, new_frames = fractions(spec_augment, range(100, 130))
    old_bins, old_frames = fractions(loop, range(30))
    for new, old in ((new_bins, old_bins), (new_frames, old_frames)):
        assert abs(new.mean() - old.mean()) < 0.1 * old.mean(), (new.mean(), old.mean())
        assert abs(new.std() - old.std()) < 0.15 * old.std(), (new.std(), old.std())
    assert 0.1 < new_bins.mean() < 0.25 and 0.02 < new_frames.mean() < 0.06  # ~2 x 7.5 / 80, ~2 x 2.5%


def test_spec_augment_launches_the_same_operations_whatever_the_batch_size():
    """No Python loop over rows: on a GPU each operation is a kernel launch."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class CountOps(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.count += 1
            return func(*args, **(kwargs or {}))

    counts = []
    for rows in (4, 64):
        with CountOps() as ops:
            spec_augment(torch.randn(rows, 100, 80), torch.full((rows,), 100), SpecAugmentConfig(),
                         torch.Generator().manual_seed(0))
        counts.append(ops.count)
    assert counts[0] == counts[1], counts


@pytest.fixture
def shm(monkeypatch):
    """`shm(mib)`: /dev/shm answers with that much free space (None: no /dev/shm)."""
    def use(mib):
        monkeypatch.setattr(loading, "shared_memory_free_bytes",
                            lambda path=loading.SHARED_MEMORY: None if mib is None else mib * 2**20)
    return use


def test_workers_are_cut_to_what_dev_shm_holds_with_one_message(shm, capsys):
    batch = 100 * 2**20  # a 1,580-s batch of float32 waveforms is ~96 MiB
    shm(64)  # Docker's default
    assert dataloader_options(8, True, batch) == dict(num_workers=0, pin_memory=True, persistent_workers=False)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "/dev/shm has 64 MiB free" in out and "8 training loader workers" in out
    assert "using 0 workers (loading in the training process)" in out and "--shm-size" in out
    shm(1024)  # (workers x 2 + 1) x 100 MiB must fit: 4 workers
    assert dataloader_options(8, True, batch)["num_workers"] == 4 and "using 4 workers" in capsys.readouterr().out
    shm(16 * 1024)  # enough: all, silently, kept across epochs
    assert dataloader_options(8, True, batch) == dict(num_workers=8, pin_memory=True, persistent_workers=True)
    assert dataloader_options(8, True, batch, persistent=False)["persistent_workers"] is False
    shm(None)  # no /dev/shm (not Linux): as asked
    assert dataloader_options(3, False, batch)["num_workers"] == 3
    assert dataloader_options(0, False, batch) == dict(num_workers=0, pin_memory=False, persistent_workers=False)
    assert capsys.readouterr().out == ""


def test_training_loader_keeps_its_workers_and_fits_dev_shm(tmp_path, shm, capsys):
    shm(16 * 1024)
    trainer = tiny_trainer(tmp_path, n=4, num_workers=1)
    loader = trainer.train_loader
    assert loader.num_workers == 1 and loader.persistent_workers and not trainer.valid_loader.persistent_workers
    first = [b["indices"] for b in loader]
    workers = loader._iterator
    loader.batch_sampler.set_epoch(1)  # the sampler lives in this process: a new order reaches the workers
    second = [b["indices"] for b in loader]
    assert loader._iterator is workers  # the same worker processes, not forked again
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == [0, 1, 2, 3]
    # 4 utterances of 1 s in batches of 2: 2 x 1 s x 16 kHz x 4 bytes = 125 KiB a batch, so 0.2 MiB
    # cannot hold one worker's two batches and the step's
    shm(0.2)
    trainer = tiny_trainer(tmp_path, n=4, num_workers=1)
    assert trainer.train_loader.num_workers == 0 and not trainer.train_loader.persistent_workers
    assert "1 training loader workers" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["V100", "A100"])
def test_a_trainer_on_a_mocked_gpu_takes_the_gpu_settings(card, monkeypatch, name):
    """Built (not run) for a cuda device on a CPU-only torch: what the trainer decides there."""
    card(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # or GradScaler turns itself off
    model = torch.nn.Linear(3, 2)
    loader = torch.utils.data.DataLoader(range(4), batch_size=2)
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        trainer = training.Trainer(model, training.LoopConfig(heap_limit_mib=1.0), CUDA, loader)
        tf32 = torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    pre_ampere = name == "V100"
    assert trainer.amp_dtype == (torch.float16 if pre_ampere else torch.bfloat16)
    assert trainer.scaler.is_enabled() == pre_ampere and tf32 == (not pre_ampere)
    assert trainer.optimizer.defaults["fused"] is True
    assert not trainer.trim_heap.active and trainer.loss_refresh_seconds == 1.0
