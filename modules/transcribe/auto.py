"""`--recipe auto`: the model and training settings chosen from the machine, the corpus and the budget.

Only options the user left unset are chosen; every option given on the command line (or by a
preset) wins. The choice and its reasons are printed when training starts and saved in the
checkpoint. Where each rule comes from:

- CPU: DeepSpeech2 (2 x BiGRU 256 over jamo at 40 ms frames), 90 s batches, peak LR 2e-3 with
  cosine decay, full precision. On 2-core CPUs (bench/learning_curves.py, 2.2 h corpus) it led at
  24 minutes (test CER 0.052 with beam + LM against Conformer small's 0.062) and tied at 45
  (0.045 both; the attention model 0.072 with joint decoding): a GRU step is cheap on a CPU
  (1.2-1.7x the Conformer's updates), and it stays under 2 GiB of RAM (peak 1.9 GiB vs 2.2).
- GPU, with at least MIN_CONFORMER_HOURS of audio and at least MIN_CONFORMER_MINUTES of budget:
  Conformer-CTC. Conformers beat recurrent CTC models once data and updates are plentiful
  (our curves on 2 h: ahead of DeepSpeech2 per update, 0.106 vs 0.116 at 2403, and still falling; Gulati et al. 2020 on
  LibriSpeech 960 h; ESPnet's AISHELL-1 (170 h) and KsponSpeech (1000 h)
  recipes), and a GPU gives them the updates a CPU cannot. medium (19 M) up to LARGE_HOURS of
  audio or on GPUs with less than LARGE_GPU_GIB of memory; large (104 M) beyond. Peak LR and
  warmup: a model's own where models/__init__.py's `RECOMMENDED_TRAINING` lists one, else the
  loop's (2e-3, 8%), with which every model memorises (bench/overfit.py). Conformer large's peak
  LR is that times sqrt(d_medium / d_large) (0.71): Gulati et al. 2020 train every size with a
  peak of 0.05 / sqrt(d_model), and large's batches here are up to 2,400 s, so its 2e-3 was
  on the aggressive side.
- GPU otherwise (a small corpus, a short budget): DeepSpeech2, the model that learns fastest.
- Batches on a GPU hold GPU_BATCH_SECONDS_PER_GIB seconds of padded audio per GiB of memory
  (capped), mixed precision is bf16 where the GPU has bf16 tensor cores (compute capability 8.0,
  training.native_bf16), fp16 with loss scaling otherwise (V100, T4).
- DataLoader workers: modules/loading.py's rule (none on a CPU, where waiting for a batch is ~1.4%
  of a step; on a GPU one per spare core of the process's share, at most 8).
"""
from dataclasses import dataclass, field, replace

import torch

from ..loading import auto_workers, available_cpus, local_processes
from ..training import LoopConfig, native_bf16
from .models import config_fields
from .models.conformer import SIZES as CONFORMER_SIZES
from .trainer import DEFAULT_BATCH_SECONDS, MIN_AUGMENT_HOURS, TrainConfig

MIN_CONFORMER_HOURS = 20.0     # below: DeepSpeech2 even on a GPU
MIN_CONFORMER_MINUTES = 60.0   # a --max_minutes below this: DeepSpeech2 even on a GPU
LARGE_HOURS = 300.0            # at least this much audio (and a large GPU): Conformer large
LARGE_GPU_GIB = 38.0           # an A100 "40 GB" reports 39.4-39.6 GiB of total memory (the driver
                               # keeps some), so 40 missed it; 38 takes it and leaves out 32 GB cards
GPU_BATCH_SECONDS_PER_GIB = 40.0   # padded audio seconds per GiB of GPU memory...
GPU_MAX_BATCH_SECONDS = 2400.0     # ...up to this
CPU_BATCH_SECONDS = DEFAULT_BATCH_SECONDS["cpu"]


@dataclass
class Machine:
    """What the recipe looks at: the training device and what it has."""
    device_type: str = "cpu"   # cpu | cuda
    cpu_cores: int = 2
    gpus: int = 0
    gpu_memory_gib: float = 0.0
    bf16: bool = False
    processes: int = 1         # training processes on the node (torchrun: one per GPU)

    @classmethod
    def of(cls, device: torch.device) -> "Machine":
        cores = available_cpus()
        if device.type != "cuda":
            return cls("cpu", cores, processes=local_processes())
        index = device.index if device.index is not None else torch.cuda.current_device()
        memory = torch.cuda.get_device_properties(index).total_memory / 2**30
        return cls("cuda", cores, torch.cuda.device_count(), memory, native_bf16(device), local_processes())

    def describe(self) -> str:
        if self.device_type == "cuda":
            return f"{self.gpus} GPU(s) of {self.gpu_memory_gib:.0f} GiB, {self.cpu_cores} CPU cores"
        return f"CPU with {self.cpu_cores} cores"


@dataclass
class Choice:
    """What `--recipe auto` chose (option name -> value) and why; saved in the checkpoint."""
    settings: dict = field(default_factory=dict)
    reasons: list = field(default_factory=list)

    def summary(self) -> str:
        given = ", ".join(f"{k} {v}" for k, v in self.settings.items()) or "nothing (every option was given)"
        return f"{given}. Why: " + " ".join(self.reasons)

    def state_dict(self) -> dict:
        return {"settings": dict(self.settings), "reasons": list(self.reasons)}


def choose(options, machine: Machine, corpus_hours: float, recommended: dict = None):
    """(options with the unset ones filled, Choice). `recommended`: model name -> its own training
    settings (peak lr, warmup_fraction), from the model files."""
    recommended = recommended or {}
    choice = Choice()

    def pick(name, value, reason=None):
        if getattr(options, name) is None:
            choice.settings[name] = value
            if reason and reason not in choice.reasons:
                choice.reasons.append(reason)

    gpu = machine.device_type == "cuda"
    budget = options.max_minutes
    where = f"{machine.describe()}, {corpus_hours:.1f} h of training audio" + \
        (f", {budget:g} min budget" if budget else ", no time budget")
    if not gpu:
        pick("model", "deepspeech2", f"{where}: DeepSpeech2 learns fastest on a CPU (bench/README.md).")
    elif corpus_hours < MIN_CONFORMER_HOURS or (budget and budget < MIN_CONFORMER_MINUTES):
        pick("model", "deepspeech2", f"{where}: too little data or time for a Conformer to overtake "
                                     f"DeepSpeech2 (under {MIN_CONFORMER_HOURS:g} h or {MIN_CONFORMER_MINUTES:g} min).")
    else:
        pick("model", "conformer", f"{where}: a Conformer wins with data and GPU updates (Gulati et al. 2020).")
    model = options.model if options.model is not None else choice.settings["model"]
    if "size" in config_fields(model) and options.size is None and options.d_model is None:
        large = corpus_hours >= LARGE_HOURS and machine.gpu_memory_gib >= LARGE_GPU_GIB
        pick("size", "large" if large else ("medium" if gpu else "small"),
             f"size {'large' if large else 'medium' if gpu else 'small'}: large needs {LARGE_HOURS:g} h and "
             f"{LARGE_GPU_GIB:g} GiB.")

    if gpu:
        seconds = min(GPU_MAX_BATCH_SECONDS, round(GPU_BATCH_SECONDS_PER_GIB * machine.gpu_memory_gib, -1))
        pick("batch_seconds", seconds, f"{seconds:g} s of audio per batch from {machine.gpu_memory_gib:.0f} GiB.")
        pick("amp", "bf16" if machine.bf16 else "fp16", "mixed precision on the GPU.")
        pick("num_workers", auto_workers(True, machine.cpu_cores, machine.processes),
             "loader workers overlap reading with the GPU step.")
    else:
        pick("batch_seconds", CPU_BATCH_SECONDS)
        pick("amp", "off")
        pick("num_workers", auto_workers(False, machine.cpu_cores), "no loader workers on a CPU: every core computes.")
    own = recommended.get(model, {})
    lr = own.get("lr", LoopConfig.lr)
    lr_reason = f"peak LR {lr:g} ({model}'s own)." if own else None
    size = options.size or choice.settings.get("size")
    if "size" in config_fields(model) and size == "large" and options.d_model is None:
        # Gulati et al. 2020: peak LR 0.05 / sqrt(d_model) for every size, so large (d 512) peaks
        # at 1/sqrt(2) of medium's (d 256), the size the default LR is meant for on a GPU.
        lr = round(lr * (CONFORMER_SIZES["medium"][0] / CONFORMER_SIZES["large"][0]) ** 0.5, 6)
        lr_reason = f"peak LR {lr:g} for size large (medium's x sqrt(d 256 / d 512), Gulati et al. 2020)."
    augment = corpus_hours >= MIN_AUGMENT_HOURS
    for name in ("noise_prob", "phone_prob", "vtlp"):
        pick(name, getattr(TrainConfig, name) if augment else 0.0,
             f"noise, phone channel and VTLP {'on' if augment else 'off'}: they pay from {MIN_AUGMENT_HOURS:g} h "
             "of training audio and hurt a tiny corpus (bench/README.md).")
    pick("lr", lr, lr_reason)
    pick("warmup_fraction", own.get("warmup_fraction", LoopConfig.warmup_fraction))
    pick("lr_schedule", LoopConfig.lr_schedule)
    return replace(options, **choice.settings), choice


# What `--recipe off` means: the loop's own defaults (LoopConfig), DeepSpeech2, and the device's default batch.
FIXED_MODEL = "deepspeech2"


def fixed(options, machine: Machine = Machine()):
    """The unset options filled with the kit's plain defaults (`--recipe off`), whatever the corpus."""
    defaults = {"model": FIXED_MODEL, "lr": LoopConfig.lr, "warmup_fraction": LoopConfig.warmup_fraction,
                "lr_schedule": LoopConfig.lr_schedule, "amp": LoopConfig.amp, "num_workers": LoopConfig.num_workers,
                "batch_seconds": DEFAULT_BATCH_SECONDS["cuda" if machine.device_type == "cuda" else "cpu"],
                "noise_prob": TrainConfig.noise_prob, "phone_prob": TrainConfig.phone_prob, "vtlp": TrainConfig.vtlp}
    return replace(options, **{k: v for k, v in defaults.items() if getattr(options, k) is None})
