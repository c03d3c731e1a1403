"""The training loop: AdamW, warmup + cosine decay, gradient clipping, validation every epoch.

The alternatives (Adam, tri-stage LR, batches by count, SpecAugment copies) exist to
reproduce the 2022 baseline's recipe (`--preset baseline2022`, modules/presets.py).
Also: mixed precision and torch.compile on GPU, DDP across torchrun processes, and averaging
the weights of the last epochs.
"""
import contextlib
import math
import os
import time
import warnings
from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import distributed
from .data import BatchByCountSampler, DurationBatchSampler, SpeechDataset, collate
from .decoding import DecoderConfig
from .feature_cache import FeatureCache
from .features import SpecAugmentConfig
from .memory import HeapTrimmer
from .metrics import cer


@dataclass
class TrainConfig:
    epochs: int = 100
    max_minutes: float = 0.0       # wall-clock budget for this session's training; 0 = none
    batch_seconds: float = 0.0     # padded audio seconds per batch; 0 = auto (CPU 90, GPU 900)
    batch_size: int = 0            # >0: batches of this many utterances instead (2022 baseline: 128)
    optimizer: str = "adamw"       # or "adam" (2022 baseline; weight_decay is then an L2 term)
    lr: float = 2e-3               # peak learning rate
    weight_decay: float = 1e-2
    lr_schedule: str = "cosine"    # after warmup: "cosine" decay, or "tri_stage" (KoSpeech: hold, then exp decay)
    warmup_fraction: float = 0.08  # of training progress
    final_lr_ratio: float = 0.05
    grad_clip: float = 5.0
    specaugment: bool = True
    speed_factors: tuple = ()      # each training batch is played at one of these speeds, e.g. (0.9, 1.0, 1.1)
    specaugment_copies: bool = False  # each epoch: every utterance once clean + once augmented (2022 baseline)
    sortagrad: bool = False
    num_workers: int = 0
    feature_cache: str = ""        # folder of the on-disk feature cache; "" = compute features every batch
    seed: int = 0
    amp: str = "auto"           # auto (bf16/fp16 on GPU, off on CPU) | off | bf16 | fp16
    compile: bool = False       # torch.compile the model for training (pays on GPU, rarely on CPU)
    average_last: int = 0       # keep the last N epochs' weights to average at the end; 0 = off
    ctc_weight: float = 0.3     # models with a decoder loss: ctc_weight * CTC + (1 - ctc_weight) * decoder
    heap_limit_mib: float = 1536.0  # give freed heap memory back when the process is larger; 0 = never (memory.py)


def amp_dtype(amp: str, device: torch.device):
    """The autocast dtype `amp` asks for on `device`, or None for full precision."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp in ("bf16", "fp16"):
        return torch.bfloat16 if amp == "bf16" else torch.float16
    raise ValueError(f"unknown amp mode {amp!r}; choose from: auto, off, bf16, fp16")


def training_progress(step: int, total_steps: int, start: float, max_minutes: float) -> float:
    """Fraction of training done: by optimizer steps, or by the time budget if that runs out first."""
    by_steps = step / max(total_steps, 1)
    if max_minutes:
        return max(by_steps, (time.time() - start) / (60 * max_minutes))
    return by_steps


def budget_spent(start: float, max_minutes: float) -> bool:
    """True once a wall-clock budget of `max_minutes` (0 = none) since `start` is used up."""
    return bool(max_minutes) and time.time() - start >= 60 * max_minutes


def warmup_cosine_lr(progress: float, config) -> float:
    """Learning rate at `progress` (0..1) of training: linear warmup, then cosine decay to
    `final_lr_ratio`. `config` has lr, warmup_fraction, final_lr_ratio (any of the trainers' configs),
    and optionally lr_schedule = "tri_stage" (the 2022 baseline's, see below)."""
    p, c = min(progress, 1.0), config
    if p < c.warmup_fraction:  # linear from lr / 100 (KoSpeech's init_lr_scale) to lr
        return c.lr * max(p / c.warmup_fraction, 0.01)
    if getattr(c, "lr_schedule", "cosine") == "tri_stage":  # KoSpeech TriStageLRScheduler: hold to
        # half-way, then exponential decay to final_lr_ratio x peak at the end (its final_lr_scale 0.05).
        return c.lr * c.final_lr_ratio ** max(0.0, (p - 0.5) / 0.5)
    decay = (p - c.warmup_fraction) / max(1 - c.warmup_fraction, 1e-9)
    return c.lr * (c.final_lr_ratio + (1 - c.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * decay)))


class Trainer:
    def __init__(self, recognizer, config: TrainConfig, train_utts: list, valid_utts: list):
        self.recognizer, self.config = recognizer, config
        if not config.batch_seconds:
            config.batch_seconds = 900.0 if recognizer.device.type == "cuda" else 90.0
        torch.manual_seed(config.seed)
        self.cache = FeatureCache(config.feature_cache, recognizer.feature_config) if config.feature_cache else None
        self.train_utts = self._trainable(train_utts)
        self.valid_utts = valid_utts
        # With copies, items [n, 2n) of the epoch list are the SpecAugment copies of [0, n).
        self.epoch_utts = self.train_utts * (2 if config.specaugment_copies and config.specaugment else 1)
        # Batch sizes are per process: with W processes the global batch is W times larger,
        # and each global batch is split between the ranks (the same batches as one process).
        world = distributed.world_size()
        if config.batch_size:
            self.train_sampler = BatchByCountSampler(len(self.epoch_utts), config.batch_size * world, seed=config.seed)
        else:
            self.train_sampler = DurationBatchSampler([u.duration for u in self.epoch_utts],
                                                      config.batch_seconds * world, shuffle=True, seed=config.seed,
                                                      sortagrad=config.sortagrad)
        if world > 1:
            self.train_sampler = distributed.ShardedBatchSampler(self.train_sampler, distributed.rank(), world)
        self.train_loader = self._loader(self.epoch_utts, self.train_sampler)
        self.valid_loader = self._loader(valid_utts, DurationBatchSampler(
            [u.duration for u in valid_utts], 2 * config.batch_seconds, shuffle=False))
        optimizers = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
        if config.optimizer not in optimizers or config.lr_schedule not in ("cosine", "tri_stage"):
            raise ValueError(f"unknown optimizer {config.optimizer!r} or lr_schedule {config.lr_schedule!r}")
        self.optimizer = optimizers[config.optimizer](recognizer.model.parameters(), lr=config.lr,
                                                      weight_decay=config.weight_decay)
        device = recognizer.device
        self.amp_dtype = amp_dtype(config.amp, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        # The network the training step runs: the model itself, maybe compiled, maybe DDP-wrapped.
        # Checkpoints always save recognizer.model, so their keys never change.
        self.net = recognizer.model
        if config.compile:
            self.net = torch.compile(self.net, dynamic=True)
        if world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        self.recent_weights = deque(maxlen=max(config.average_last, 0))
        self.total_steps = config.epochs * len(self.train_sampler)
        self.augment = SpecAugmentConfig() if config.specaugment else None
        self.speed_factors = tuple(config.speed_factors)
        if self.speed_factors and self.cache is not None:
            print("[train] speed perturbation needs waveforms; the feature cache stores features, "
                  "so it is off in this run", flush=True)
            self.speed_factors = ()
        self.epoch = self.step = 0
        self.best_cer = math.inf
        self.trim_heap = HeapTrimmer(config.heap_limit_mib)
        self.session_start = time.time()

    def _trainable(self, utts):
        """Drop utterances with more units than the model has output frames (CTC cannot align them)."""
        rec, keep = self.recognizer, []
        for u in utts:
            frames = rec.featurizer.frame_lengths(torch.tensor([int(u.duration * rec.feature_config.sample_rate)]))
            if int(rec.model.output_lengths(frames)[0]) >= len(rec.tokenizer.encode(u.text)):
                keep.append(u)
            else:
                warnings.warn(f"{u.path}: {u.duration:.2f} s is too short for its {len(u.text)}-character "
                              "transcript; skipped")
        if not keep:
            raise ValueError("no training utterance is long enough for its transcript")
        return keep

    def _loader(self, utts, sampler):
        dataset = SpeechDataset(utts, self.recognizer.tokenizer, self.recognizer.feature_config.trim_db, self.cache)
        return torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                           collate_fn=collate, num_workers=self.config.num_workers)

    def progress(self) -> float:
        return training_progress(self.step, self.total_steps, self.session_start, self.config.max_minutes)

    def learning_rate(self) -> float:
        return warmup_cosine_lr(self.progress(), self.config)

    def out_of_time(self) -> bool:
        return budget_spent(self.session_start, self.config.max_minutes)

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.recognizer.device.type, dtype=self.amp_dtype)

    def loss(self, batch, augment, augment_rows=None, net=None, speed: float = 1.0):
        """CTC loss (plus the model's decoder loss, if it has one), log-probs, output lengths and
        the encoder output of models with a decoder (None for the others)."""
        if "feats" in batch:  # from the feature cache
            feats, feat_lengths = self.recognizer.augment_features(batch["feats"], batch["feat_lengths"], augment,
                                                                   augment_rows)
        else:
            feats, feat_lengths = self.recognizer.features(batch["waves"], batch["wave_lengths"], augment,
                                                           augment_rows, speed)
        targets, target_lengths = batch["targets"].to(feats.device), batch["target_lengths"].to(feats.device)
        model = self.recognizer.model
        has_decoder = hasattr(model, "decoder_loss")  # attention models: joint CTC + decoder cross-entropy
        encoding = None
        with self.autocast():
            if has_decoder:
                log_probs, lengths, encoding = (net or self.net)(feats, feat_lengths, return_encoding=True)
            else:
                log_probs, lengths = (net or self.net)(feats, feat_lengths)
        log_probs = log_probs.float()  # CTC in full precision
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=0, zero_infinity=True)
        if has_decoder:
            with self.autocast():
                dec = model.decoder_loss(encoding, lengths, targets, target_lengths)
            loss = self.config.ctc_weight * loss + (1 - self.config.ctc_weight) * dec.float()
        return loss, log_probs, lengths, encoding

    def train_step(self, batch) -> float:
        """One optimizer step on `batch`; returns its loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        loss, _, _, _ = self.loss(batch, self.augment, self.augment_rows(batch), speed=self.batch_speed())
        weighted = loss
        if distributed.world_size() > 1:
            # DDP averages gradients over ranks with equal weight; a global batch split unevenly
            # (3 items over 2 ranks) must count each item once, as a single process would.
            share = len(batch["indices"])
            weighted = loss * distributed.world_size() * share / distributed.all_reduce_sum([float(share)])[0]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(weighted).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.recognizer.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return loss.item()

    def train_epoch(self) -> dict:
        self.recognizer.model.train()
        self.train_sampler.set_epoch(self.epoch)
        total, audio_seconds, count, start = 0.0, 0.0, 0, time.time()
        # A live bar on a terminal; in a log file (NSML, `nsml logs`) a plain line a minute instead.
        # Under DDP only rank 0 shows progress.
        main_process = distributed.is_main_process()
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False,
                   disable=None if main_process else True)
        last_line = start
        for batch in bar:
            if batch is None:
                continue
            total += self.train_step(batch)
            count += 1
            self.trim_heap()
            fc = self.recognizer.feature_config
            audio_seconds += (float(batch["wave_lengths"].sum()) / fc.sample_rate if "wave_lengths" in batch
                              else float(batch["feat_lengths"].sum()) * fc.hop_ms / 1000)  # cached features
            bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{self.learning_rate():.2e}")
            if main_process and bar.disable and time.time() - last_line > 60:
                last_line = time.time()
                print(f"  epoch {self.epoch + 1} step {count}/{len(self.train_sampler)} "
                      f"loss {total / count:.3f} lr {self.learning_rate():.2e}", flush=True)
            if self.out_of_time_all_ranks():
                break
        bar.close()
        elapsed = time.time() - start
        total, count, audio_seconds = distributed.all_reduce_sum([total, count, audio_seconds])
        return {"train_loss": total / max(count, 1), "audio_per_second": audio_seconds / max(elapsed, 1e-9)}

    def batch_speed(self) -> float:
        """A random one of the speed factors (1.0 without them), from the seeded torch generator."""
        if not self.speed_factors:
            return 1.0
        return float(self.speed_factors[int(torch.randint(len(self.speed_factors), ()))])

    def augment_rows(self, batch):
        """Which rows of a training batch get SpecAugment: all (None), or only the copies."""
        if len(self.epoch_utts) == len(self.train_utts):
            return None
        return torch.tensor(batch["indices"]) >= len(self.train_utts)

    def out_of_time_all_ranks(self) -> bool:
        """Stop together: one rank leaving the loop alone would hang the others' all-reduce."""
        if distributed.world_size() == 1:
            return self.out_of_time()
        return distributed.all_reduce_sum([float(self.out_of_time())])[0] > 0

    @torch.no_grad()
    def evaluate(self, decoder: DecoderConfig = DecoderConfig(), utts: list = None) -> dict:
        """Validation loss and CER; greedy decoding unless `decoder` says otherwise.

        `utts`: score these utterances instead of the validation split (bench/overfit.py
        scores the training utterances themselves)."""
        self.recognizer.model.eval()
        loader = self.valid_loader
        if utts is None:
            utts = self.valid_utts
        else:
            loader = self._loader(utts, DurationBatchSampler([u.duration for u in utts], 2 * self.config.batch_seconds,
                                                             shuffle=False))
        total, count, hyps, refs = 0.0, 0, [], []
        for batch in loader:
            if batch is None:
                continue
            # never augment validation; the plain model, so ranks need not evaluate in step
            loss, log_probs, lengths, encoding = self.loss(batch, augment=None, net=self.recognizer.model)
            total += loss.item() * len(lengths)
            count += len(lengths)
            hyps += self.recognizer.decode(log_probs, lengths, decoder=decoder, encoding=encoding)
            refs += [utts[i].text for i in batch["indices"]]
            self.trim_heap()
        return {"val_loss": total / max(count, 1), "val_cer": cer(hyps, refs) if hyps else 1.0,
                "val_examples": list(zip(hyps[:3], refs[:3]))}

    def fit(self, on_epoch_end=None):
        """Train until `epochs` or the time budget; `on_epoch_end(metrics)` runs after each
        validation and stops training early by returning True."""
        while self.epoch < self.config.epochs and not self.out_of_time_all_ranks():
            metrics = self.train_epoch()
            metrics.update(self.evaluate())
            self.epoch += 1
            if self.recent_weights.maxlen:
                self.recent_weights.append({k: v.detach().to("cpu", copy=True)
                                            for k, v in self.recognizer.model.state_dict().items()})
            improved = metrics["val_cer"] < self.best_cer
            self.best_cer = min(self.best_cer, metrics["val_cer"])
            metrics.update(epoch=self.epoch, improved=improved, lr=self.learning_rate(),
                           minutes=(time.time() - self.session_start) / 60)
            stop = bool(on_epoch_end(metrics)) if on_epoch_end else False
            if distributed.all_reduce_sum([float(stop)])[0] > 0:  # under DDP every rank stops together
                break

    def averaged_weights(self) -> dict:
        """Mean of the kept epochs' weights (integer buffers such as BatchNorm counters: the latest)."""
        return average_state_dicts(list(self.recent_weights))

    def state_dict(self) -> dict:
        # valid_files: the split, so a forked session validates on the same files (main.py reuses it)
        return {"optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "step": self.step,
                "best_cer": self.best_cer, "valid_files": [os.path.basename(u.path) for u in self.valid_utts]}

    def load_state_dict(self, state: dict):
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.best_cer = state["epoch"], state["step"], state["best_cer"]


def average_state_dicts(states: list) -> dict:
    """Element-wise mean of model state dicts with the same keys; non-float entries from the last one."""
    if not states:
        raise ValueError("no weights to average")
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            # float64 sums: averaging identical weights gives them back bit for bit
            averaged[key] = torch.stack([s[key].double() for s in states]).mean(0).to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged
