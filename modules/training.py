"""The one training loop: optimizer steps, the LR schedule, the time budget, validation every epoch.

Both tasks train through `Trainer.fit`. A task's trainer (transcribe/trainer.py,
classify/trainer.py) subclasses `Trainer` and supplies two things:

    loss(batch)  -> (loss tensor, amount of data in the batch: audio seconds, clips)
    evaluate()   -> validation metrics, including the one named by `metric`

Everything else is here, once: AdamW (or Adam), linear warmup then cosine (or KoSpeech's
tri-stage) decay by progress = max(steps done / steps planned, time used / --max_minutes),
gradient clipping, mixed precision and torch.compile, DDP across torchrun processes (batches
sharded, uneven shards weighted, every rank stops together), a progress bar (a plain line a
minute in a log file), heap trimming, and best-epoch tracking.
"""
import contextlib
import gc
import math
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from . import distributed
from .memory import HeapTrimmer


@dataclass
class LoopConfig:
    epochs: int = 100
    max_minutes: float = 0.0       # wall-clock budget for this session's training; 0 = none
    optimizer: str = "adamw"       # or "adam" (2022 baseline; weight_decay is then an L2 term)
    lr: float = 2e-3               # peak learning rate
    weight_decay: float = 1e-2
    lr_schedule: str = "cosine"    # after warmup: "cosine" decay, or "tri_stage" (KoSpeech: hold, then exp decay)
    warmup_fraction: float = 0.08  # of training progress
    final_lr_ratio: float = 0.05
    grad_clip: float = 5.0
    amp: str = "auto"              # auto (bf16/fp16 on GPU, off on CPU) | off | bf16 | fp16
    compile: bool = False          # torch.compile the model for training (pays on GPU, rarely on CPU)
    num_workers: int = -1          # DataLoader worker processes; -1 = auto (loading.loader_settings)
    heap_limit_mib: float = 1536.0  # give freed heap memory back when the process is larger; 0 = never (memory.py)
    seed: int = 0


# Compute capability 8.0 (Ampere: A100, A10, RTX 30xx) brought bf16 and TF32 tensor cores. Before it
# (V100 7.0, T4 7.5) `torch.cuda.is_bf16_supported()` is still True in current torch, because bf16
# can be emulated: training then runs without tensor cores and without loss scaling (issue 20
# estimates 1-3k audio-s/s on a V100 against 5-7k in fp16). So the capability decides.
BF16_MIN_CAPABILITY = (8, 0)


def native_bf16(device: torch.device) -> bool:
    """True on CUDA GPUs with bf16 and TF32 tensor cores (compute capability 8.0 and newer)."""
    device = torch.device(device)
    return device.type == "cuda" and tuple(torch.cuda.get_device_capability(device)) >= BF16_MIN_CAPABILITY


def amp_dtype(amp: str, device: torch.device):
    """The autocast dtype `amp` asks for on `device`, or None for full precision.

    auto: off on a CPU; on a GPU bf16 from compute capability 8.0, fp16 (with loss scaling, see
    Trainer) before it. An explicit bf16 on an older GPU becomes fp16 with a message: emulated
    bf16 is slower than fp32 there and gets no loss scaling."""
    if amp not in ("auto", "off", "bf16", "fp16"):
        raise ValueError(f"unknown amp mode {amp!r}; choose from: auto, off, bf16, fp16")
    device = torch.device(device)
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16":
        return torch.float16
    if device.type != "cuda" or native_bf16(device):
        return torch.bfloat16
    if amp == "bf16":
        print(f"[train] --amp bf16: {torch.cuda.get_device_name(device)} (compute capability "
              f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}) has no bf16 tensor cores, "
              "so bf16 would be emulated; training in fp16 with loss scaling instead", flush=True)
    return torch.float16


def enable_tf32(device: torch.device) -> bool:
    """Let fp32 matmuls and convolutions use TF32 tensor cores where the GPU has them (8.0+): what
    autocast leaves in fp32 (DeepSpeech2's GRUs, a run with --amp off) gets tensor cores with 10
    mantissa bits, as many as fp16 has, which mixed-precision training already lives with.
    Process-wide, like every torch.backends switch. True if enabled."""
    if not native_bf16(device):
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


def optimizer_options(device: torch.device) -> dict:
    """Keyword arguments for the optimizer on `device`: on CUDA the fused AdamW/Adam kernel (one
    launch per step instead of several per parameter tensor); elsewhere torch's default, so CPU
    training keeps its numbers."""
    return {"fused": True} if torch.device(device).type == "cuda" else {}


def training_progress(step: int, total_steps: int, elapsed_s: float, max_minutes: float) -> float:
    """Fraction of training done: by optimizer steps, or by the time budget if that runs out first.
    `elapsed_s` counts the training seconds of the sessions this one was forked from too."""
    by_steps = step / max(total_steps, 1)
    if max_minutes:
        return max(by_steps, elapsed_s / (60 * max_minutes))
    return by_steps


def budget_spent(elapsed_s: float, max_minutes: float) -> bool:
    """True once `elapsed_s` seconds of training have used up a budget of `max_minutes` (0 = none)."""
    return bool(max_minutes) and elapsed_s >= 60 * max_minutes


def warmup_cosine_lr(progress: float, config) -> float:
    """Learning rate at `progress` (0..1) of training: linear warmup, then cosine decay to
    `final_lr_ratio`. `config` has lr, warmup_fraction, final_lr_ratio and optionally
    lr_schedule = "tri_stage" (the 2022 baseline's, see below)."""
    p, c = min(progress, 1.0), config
    if p < c.warmup_fraction:  # linear from lr / 100 (KoSpeech's init_lr_scale) to lr
        return c.lr * max(p / c.warmup_fraction, 0.01)
    if getattr(c, "lr_schedule", "cosine") == "tri_stage":  # KoSpeech TriStageLRScheduler: hold to
        # half-way, then exponential decay to final_lr_ratio x peak at the end (its final_lr_scale 0.05).
        return c.lr * c.final_lr_ratio ** max(0.0, (p - 0.5) / 0.5)
    decay = (p - c.warmup_fraction) / max(1 - c.warmup_fraction, 1e-9)
    return c.lr * (c.final_lr_ratio + (1 - c.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * decay)))


OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


class Trainer:
    """Trains `model` on the batches of `train_loader` (whose batch sampler has `set_epoch`).

    metric / higher_is_better: the validation metric that decides `improved` and `best`.
    `net` is what a training step runs: the model itself, maybe compiled, maybe DDP-wrapped;
    checkpoints always save the model, so their keys never change.
    """

    metric = "val_loss"
    higher_is_better = False
    compile_backend = "inductor"  # tests substitute a cheaper (or a failing) torch.compile backend

    def __init__(self, model: torch.nn.Module, config: LoopConfig, device: torch.device, train_loader):
        if config.optimizer not in OPTIMIZERS or config.lr_schedule not in ("cosine", "tri_stage"):
            raise ValueError(f"unknown optimizer {config.optimizer!r} or lr_schedule {config.lr_schedule!r}")
        self.model, self.config, self.device, self.train_loader = model, config, device, train_loader
        self.optimizer = OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr,
                                                      weight_decay=config.weight_decay, **optimizer_options(device))
        self.amp_dtype = amp_dtype(config.amp, device)
        # fp16's range is too small for small gradients: scale the loss (bf16 has fp32's range)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        enable_tf32(device)
        self.net = model
        if distributed.is_distributed():  # under torchrun, even with one process
            self.net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        self.eager_net = self.net
        if config.compile:
            # DDP first, then compile the DDP module: PyTorch's documented order, which lets
            # Dynamo split the graph at DDP's gradient buckets so all-reduce overlaps backward.
            self.net = torch.compile(self.net, backend=self.compile_backend)
            # A graph per input-length bucket (speech: about 30 for 2-30 s utterances, trainer.py);
            # past Dynamo's default limit of 8 the longer batches would silently run uncompiled.
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        self.total_steps = config.epochs * len(train_loader)
        self.epoch = self.step = self.best_epoch = 0
        self.best = -math.inf if self.higher_is_better else math.inf
        self.trim_heap = HeapTrimmer(config.heap_limit_mib, device)
        # How often the progress bar reads the running loss: every step on a CPU, where reading is
        # free; at most once a second on a GPU, where each read waits for the queued steps.
        self.loss_refresh_seconds = 0.0 if device.type == "cpu" else 1.0
        self.start = time.time()
        # Training seconds of the sessions this one was forked from: a fork continues the budget
        # and the LR schedule where the checkpoint left them instead of starting both again.
        self.elapsed_before = 0.0
        self.epoch_at_start = 0  # epochs done before this session (the ETA counts this session's pace)

    # -- what a task supplies -------------------------------------------------------------------
    def loss(self, batch):
        """(loss tensor, amount of data in `batch`) for one training batch."""
        raise NotImplementedError

    def evaluate(self) -> dict:
        """Validation metrics, including `self.metric`."""
        raise NotImplementedError

    def after_epoch(self, improved: bool):
        """Called after each epoch's validation (weight averaging, keeping the best weights)."""

    # -- the loop ---------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Training seconds so far, earlier sessions' included."""
        return self.elapsed_before + time.time() - self.start

    def progress(self) -> float:
        return training_progress(self.step, self.total_steps, self.elapsed(), self.config.max_minutes)

    def learning_rate(self) -> float:
        return warmup_cosine_lr(self.progress(), self.config)

    def out_of_time(self) -> bool:
        return budget_spent(self.elapsed(), self.config.max_minutes)

    def eta_minutes(self) -> float:
        """Minutes left at this session's pace per epoch, or less if the budget ends first."""
        done = self.epoch - self.epoch_at_start
        if done <= 0:
            return math.nan
        left = (time.time() - self.start) / done * (self.config.epochs - self.epoch)
        if self.config.max_minutes:
            left = min(left, max(0.0, 60 * self.config.max_minutes - self.elapsed()))
        return left / 60

    def nothing_left(self) -> str:
        """Why a resumed run has nothing to train ("" if it has), and how to give it more."""
        if self.epoch >= self.config.epochs:
            return (f"all {self.config.epochs} epochs were trained; to train more, fork with a larger "
                    f'--epochs, e.g. -a "--epochs {self.config.epochs * 2} ..." (-a replaces all arguments)')
        if self.out_of_time():
            return (f"the --max_minutes {self.config.max_minutes:g} budget was used ({self.elapsed() / 60:.1f} min "
                    f'trained); to train more, fork with a larger budget, e.g. -a "--max_minutes '
                    f'{self.config.max_minutes * 2:g} ..." (-a replaces all arguments)')
        return ""

    def out_of_time_all_ranks(self) -> bool:
        """Stop together: one rank leaving the loop alone would hang the others' all-reduce."""
        if distributed.world_size() == 1:
            return self.out_of_time()
        return distributed.all_reduce_sum([float(self.out_of_time())])[0] > 0

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, batch) -> tuple:
        """One optimizer step on `batch`; returns (its loss as a 0-d tensor on the device, its
        amount of data). The loss stays on the device: reading it (.item()) would make the host
        wait for the GPU to finish the step before it can queue the next one."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        loss, amount = self.loss(batch)
        weighted = loss
        if distributed.world_size() > 1:
            # DDP averages gradients over ranks with equal weight; a global batch split unevenly
            # (3 items over 2 ranks) must count each item once, as a single process would.
            share = len(batch["indices"])
            weighted = loss * distributed.world_size() * share / distributed.all_reduce_sum([float(share)])[0]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(weighted).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return loss.detach(), amount

    def batch_missing_on_any_rank(self, batch) -> bool:
        """True when this rank's batch (every item of it failed to load, each named in a warning) or
        another rank's is None: all ranks skip the step together, since a rank skipping alone would
        leave the others waiting in the step's collectives until the process group times out."""
        if distributed.world_size() == 1:
            return batch is None
        return distributed.all_reduce_sum([float(batch is None)])[0] > 0

    def compiled_or_eager_step(self, batch) -> tuple:
        """train_step; when the compiled model fails (compiling happens lazily, at the first step and
        at each new shape), say why and go on with the eager model for the rest of the run."""
        if self.net is self.eager_net:
            return self.train_step(batch)
        try:
            return self.train_step(batch)
        except Exception as e:  # noqa: BLE001 - any failure; a real error fails again in eager below
            first_line = (str(e).strip().splitlines() or [""])[0][:300]
            print(f"[compile] torch.compile failed at step {self.step + 1} ({type(e).__name__}: {first_line}); "
                  "training continues without compiling", flush=True)
            self.net = self.eager_net
            self.optimizer.zero_grad(set_to_none=True)  # drop any gradients of the failed step
            return self.train_step(batch)

    def train_epoch(self) -> dict:
        """One pass over the training batches (or until the budget ends): mean loss and data per second."""
        self.model.train()
        self.train_loader.batch_sampler.set_epoch(self.epoch)
        amount, count, start = 0.0, 0, time.time()
        # The losses are summed on the device in float64, which adds their float32 values exactly as
        # Python floats would; the host reads the sum only to show it (loss_refresh_seconds).
        total_on_device = torch.zeros((), dtype=torch.float64, device=self.device)
        # A live bar on a terminal; in a log file (NSML, `nsml logs`) a plain line a minute instead.
        main_process = distributed.is_main_process()
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False,
                   disable=None if main_process else True)
        last_line = last_shown = start
        for batch in bar:
            if self.batch_missing_on_any_rank(batch):
                continue
            loss, batch_amount = self.compiled_or_eager_step(batch)
            total_on_device += loss.double()
            amount, count = amount + batch_amount, count + 1
            self.trim_heap()
            if time.time() - last_shown >= self.loss_refresh_seconds:
                last_shown, total = time.time(), total_on_device.item()
                bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{self.learning_rate():.2e}")
            if main_process and bar.disable and time.time() - last_line > 60:
                total = total_on_device.item()
                last_line = time.time()
                print(f"  epoch {self.epoch + 1} step {count}/{len(self.train_loader)} "
                      f"loss {total / count:.3f} lr {self.learning_rate():.2e}", flush=True)
            if self.out_of_time_all_ranks():
                break
        bar.close()
        elapsed = time.time() - start
        total, count, amount = distributed.all_reduce_sum([total_on_device.item(), count, amount])
        return {"train_loss": total / max(count, 1), "throughput": amount / max(elapsed, 1e-9)}

    def fit(self, on_epoch_end=None):
        """Train until `epochs` or the time budget; `on_epoch_end(metrics)` runs after each
        validation and stops training early by returning True."""
        while self.epoch < self.config.epochs and not self.out_of_time_all_ranks():
            metrics = self.train_epoch()
            metrics.update(self.evaluate())
            self.epoch += 1
            score = metrics[self.metric]
            improved = score > self.best if self.higher_is_better else score < self.best
            if improved:
                self.best, self.best_epoch = score, self.epoch
            self.after_epoch(improved)
            metrics.update(epoch=self.epoch, epochs=self.config.epochs, step=self.step, improved=improved,
                           lr=self.learning_rate(), minutes=self.elapsed() / 60, eta_minutes=self.eta_minutes())
            stop = bool(on_epoch_end(metrics)) if on_epoch_end else False
            if distributed.all_reduce_sum([float(stop)])[0] > 0:  # under DDP every rank stops together
                break

    def leave_process_group(self):
        """Drop the DDP wrapper, whose reducer holds the process group, then leave the group (every
        rank together): it is destroyed now, with the interpreter alive, instead of whenever the trainer
        is collected at exit, where a gloo thread still running can abort the process."""
        self.net = self.eager_net = self.model
        gc.collect()
        distributed.shutdown()

    def state_dict(self) -> dict:
        # elapsed_s and max_minutes: where the time budget and the LR schedule stood, for a fork
        return {"optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "step": self.step, "best": self.best,
                "best_epoch": self.best_epoch, "elapsed_s": self.elapsed(), "max_minutes": self.config.max_minutes}

    def load_state_dict(self, state: dict):
        """Continue a forked session: epoch, step, training time (so the schedule and the budget),
        best score and optimizer moments."""
        # The kernel is this machine's choice, not the checkpoint's: a session forked from a CPU
        # run trains fused on a GPU (and its step counters then move to the GPU) and vice versa.
        fused = optimizer_options(self.device).get("fused")
        saved = state["optimizer"]
        self.optimizer.load_state_dict(dict(saved, param_groups=[dict(g, fused=fused) for g in saved["param_groups"]]))
        self.epoch, self.step = state["epoch"], state["step"]
        self.epoch_at_start = self.epoch
        self.best = state.get("best", state.get("best_cer", self.best))  # best_cer: checkpoints before 0.2
        self.best_epoch = state.get("best_epoch", 0)
        # Checkpoints before elapsed_s was saved continue by steps alone, as they always did.
        self.elapsed_before = state.get("elapsed_s", 0.0)
        self.start = time.time()
