"""Training a speech recognizer: CTC (plus an attention decoder's loss) on batches by padded duration.

The loop itself is modules/training.py. This file adds what is particular to speech:
batches of utterances by padded seconds (or by count, the 2022 baseline's), speed
perturbation and SpecAugment of training batches, the joint CTC + decoder loss,
validation CER, averaging the last epochs' weights, and the split a fork must keep.
The alternatives (Adam, tri-stage LR, batches by count, SpecAugment copies) exist to
reproduce the 2022 baseline's recipe (`--preset baseline2022`, options.py).
"""
import math
import os
import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed
from ..averaging import BestWeights, ExponentialMovingAverage, average_state_dicts, choose_weights
from ..features import SpecAugmentConfig
from ..loading import dataloader_options, loader_settings
from ..metrics import cer
from ..samplers import BatchByCountSampler, DurationBatchSampler
from ..training import LoopConfig, Trainer
from .augment import WaveAugment, vtlp_mel_bases
from .dataset import SpeechDataset, Targets, collate
from .decoding import DecoderConfig
from .feature_cache import FeatureCache
from .split import capped_sample


# Padded audio seconds per batch when nothing chooses them (--recipe auto sizes GPU batches by memory).
DEFAULT_BATCH_SECONDS = {"cpu": 90.0, "cuda": 900.0}

# --recipe auto turns noise, phone channel and VTLP on from this much training audio, off below: on
# the 2.2 h bench corpus they cut test CER from 0.063 to 0.041 (20 min, equal updates), on ./run.sh's
# 0.1 h sample_dataset they raised it from 0.065 to 0.084 (bench/README.md); 1 h lies between the two.
MIN_AUGMENT_HOURS = 1.0

# Every waveform augmentation off (SpecAugment is `specaugment`): the 2022 baseline's preset, and tests
# that need a model to memorise its data exactly.
NO_AUGMENTATION = dict(speed_factors=(), noise_prob=0.0, phone_prob=0.0, vtlp=0.0)

# Per-epoch validation decodes greedily: the acoustic model alone, in seconds.
GREEDY = DecoderConfig(decoder="greedy")


@dataclass
class TrainConfig(LoopConfig):
    batch_seconds: float = 0.0     # padded audio seconds per batch; 0 = DEFAULT_BATCH_SECONDS of the device
    batch_size: int = 0            # >0: batches of this many utterances instead (2022 baseline: 128)
    specaugment: bool = True
    speed_factors: tuple = (0.9, 1.0, 1.1)  # each training batch is played at one of these speeds; () = none
    # issue 23, all off by default (docs/models.md, "Averaging, augmentation, intermediate CTC")
    ema_decay: float = 0.0         # EMA of the weights, updated every step; 0 = off
    average_best: int = 0          # keep the N best epochs' weights (by val CER) to average at the end; 0 = off
    inter_ctc_weight: float = 0.0  # (1 - w) * CTC + w * CTC of the middle encoder block (Conformer, attention)
    # Noise, phone channel and VTLP: on by default since the 20-minute ablation (bench/README.md, "Ablation"):
    # test CER 0.063 -> 0.041 at equal updates on unseen voices, 0.245 -> 0.155 on the noisy phone test set.
    noise_prob: float = 0.3        # share of training utterances mixed with noise (augment.py)
    noise_snr: str = "5,20"        # their SNR range in dB
    noise_dir: str = ""            # folder of noise recordings; "" = generated noises
    phone_prob: float = 0.2        # share of training utterances played through an 8 kHz phone channel
    phone_mulaw: bool = True       # ... with 8-bit mu-law coding
    vtlp: float = 0.1              # vocal tract length perturbation: mel warp factors in [1 - vtlp, 1 + vtlp]
    specaugment_copies: bool = False  # each epoch: every utterance once clean + once augmented (2022 baseline)
    sortagrad: bool = False
    feature_cache: str = ""        # folder of the on-disk feature cache; "" = compute features every batch
    average_last: int = 0          # keep the last N epochs' weights to average at the end; 0 = off
    ctc_weight: float = 0.3        # models with a decoder loss: ctc_weight * CTC + (1 - ctc_weight) * decoder
    valid_max_utterances: int = 2000  # validate on a fixed sample of at most this many; 0 = all


class SpeechTrainer(Trainer):
    metric = "val_cer"
    higher_is_better = False

    def __init__(self, recognizer, config: TrainConfig, train_utts: list, valid_utts: list):
        self.recognizer = recognizer
        if not config.batch_seconds:
            config.batch_seconds = DEFAULT_BATCH_SECONDS["cuda" if recognizer.device.type == "cuda" else "cpu"]
        torch.manual_seed(config.seed)
        self.cache = FeatureCache(config.feature_cache, recognizer.feature_config) if config.feature_cache else None
        train_targets = Targets.encode(recognizer.tokenizer, [u.text for u in train_utts])
        keep = self._trainable(train_utts, train_targets.lengths)
        self.train_utts = [train_utts[i] for i in keep]
        self.valid_utts = valid_utts  # the whole split (checkpoints name it, so a fork keeps it)
        # What evaluate() scores each epoch and at the end: a fixed sample, so that validating 20% of
        # a 1,000 h corpus does not take as long as a training epoch (the same files every time).
        self.scored_valid_utts = capped_sample(valid_utts, config.valid_max_utterances, config.seed)
        # With copies, items [n, 2n) of the epoch list are the SpecAugment copies of [0, n).
        copies = 2 if config.specaugment_copies and config.specaugment else 1
        self.epoch_utts = self.train_utts * copies
        # Batch sizes are per process: with W processes the global batch is W times larger,
        # and each global batch is split between the ranks (the same batches as one process).
        world = distributed.world_size()
        if config.batch_size:
            sampler = BatchByCountSampler(len(self.epoch_utts), config.batch_size * world, seed=config.seed)
        else:
            sampler = DurationBatchSampler(np.tile(self.durations(self.train_utts), copies),
                                           config.batch_seconds * world, shuffle=True, seed=config.seed,
                                           sortagrad=config.sortagrad)
        if world > 1:
            sampler = distributed.ShardedBatchSampler(sampler, distributed.rank(), world)
        self.train_sampler = sampler
        self.num_workers, pin_memory = loader_settings(recognizer.device, config.num_workers)
        # A batch as workers hand it over: float32 waveforms, padded (cached features are smaller)
        longest = float(self.durations(self.train_utts).max())
        batch_bytes = 4 * recognizer.feature_config.sample_rate * (
            config.batch_size * longest if config.batch_size else max(config.batch_seconds, longest))
        self.valid_loader = self._loader(self._dataset(self.scored_valid_utts), DurationBatchSampler(
            self.durations(self.scored_valid_utts), 2 * config.batch_seconds, shuffle=False), pin_memory,
            2 * batch_bytes, persistent=False, name="validation")
        train_set = self._dataset(self.epoch_utts, train_targets.select(keep, copies))
        # Waveform augmentations run in the loader workers, on each collated batch (augment.py)
        self.wave_augment = WaveAugment.from_config(config, recognizer.feature_config.sample_rate)
        if self.wave_augment is not None and self.cache is not None:
            print("[train] noise and phone-channel augmentation need waveforms; the feature cache stores "
                  "features, so they are off in this run", flush=True)
            self.wave_augment = None
        super().__init__(recognizer.model, config, recognizer.device,
                         self._loader(train_set, sampler, pin_memory, batch_bytes, collate_fn=self.wave_augment))
        self.recent_weights = deque(maxlen=max(config.average_last, 0))
        self.best_weights = BestWeights(config.average_best)
        self.ema = ExponentialMovingAverage(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.final_weights = "plain"  # which weights the end of training chose for 'best' (choose_final_weights)
        # Models with a middle block to score (has_intermediate: the Conformer and attention encoders)
        self.inter_ctc = config.inter_ctc_weight > 0 and recognizer.model.has_intermediate
        if config.inter_ctc_weight > 0 and not self.inter_ctc:
            print(f"[train] --inter_ctc_weight needs a Conformer or attention encoder; {recognizer.model_name} "
                  "trains without it", flush=True)
        self.vtlp = config.vtlp if self.cache is None else 0.0
        if config.vtlp and self.cache is not None:
            print("[train] VTLP warps the filterbank of computed features; the feature cache stores "
                  "features, so it is off in this run", flush=True)
        self.augment = SpecAugmentConfig() if config.specaugment else None
        self.speed_factors = tuple(config.speed_factors)
        if self.speed_factors and self.cache is not None:
            print("[train] speed perturbation needs waveforms; the feature cache stores features, "
                  "so it is off in this run", flush=True)
            self.speed_factors = ()

    @staticmethod
    def durations(utts) -> np.ndarray:
        return np.fromiter((u.duration for u in utts), dtype=np.float64, count=len(utts))

    def _trainable(self, utts, target_lengths: np.ndarray) -> np.ndarray:
        """Indices of the utterances with at least as many model output frames as units (CTC
        cannot align the others, each named in a warning), computed for all at once."""
        rec = self.recognizer
        samples = torch.from_numpy((self.durations(utts) * rec.feature_config.sample_rate).astype(np.int64))
        frames = rec.model.output_lengths(rec.featurizer.frame_lengths(samples)).numpy()
        fits = frames >= target_lengths
        for i in np.flatnonzero(~fits):
            u = utts[i]
            warnings.warn(f"{u.path}: {u.duration:.2f} s is too short for its {len(u.text)}-character "
                          "transcript; skipped")
        if not fits.any():
            raise ValueError("no training utterance is long enough for its transcript")
        return np.flatnonzero(fits)

    def _dataset(self, utts, targets=None):
        return SpeechDataset(utts, self.recognizer.tokenizer, self.recognizer.feature_config.trim_db, self.cache,
                             targets=targets)

    def _loader(self, dataset, sampler, pin_memory: bool, batch_bytes: float = 0, persistent: bool = True,
                name: str = "training", collate_fn=None):
        """A DataLoader with the trainer's workers (as many as /dev/shm holds batches of `batch_bytes`;
        0 = unchecked), kept across epochs when `persistent`; `collate_fn` defaults to dataset.collate."""
        return torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                           collate_fn=collate if collate_fn is None else collate_fn,
                                           **dataloader_options(self.num_workers, pin_memory, batch_bytes,
                                                                persistent, name))

    def speech_loss(self, batch, augment=None, augment_rows=None, net=None, speed: float = 1.0, mel_basis=None):
        """CTC loss (plus the model's decoder loss, if it has one), log-probs, output lengths and
        the encoder output of models with a decoder (None for the others). `mel_basis`: a warped
        filterbank per utterance (VTLP), else the recognizer's own."""
        rec = self.recognizer
        if "feats" in batch:  # from the feature cache
            feats, feat_lengths = rec.augment_features(batch["feats"], batch["feat_lengths"], augment, augment_rows)
        else:
            feats, feat_lengths = rec.features(batch["waves"], batch["wave_lengths"], augment, augment_rows, speed,
                                               mel_basis=mel_basis)
        if net is None and self.config.compile:
            feats = shape_for_compiling(feats, feat_lengths)
        targets, target_lengths = batch["targets"].to(feats.device), batch["target_lengths"].to(feats.device)
        has_decoder = rec.model.has_decoder  # attention models: joint CTC + decoder cross-entropy
        encoding = None
        # Intermediate CTC in training only: validation and inference score the final head alone.
        inter = self.inter_ctc and rec.model.training
        kwargs = {}
        if has_decoder:
            kwargs["return_encoding"] = True
        if inter:
            kwargs["intermediate"] = True
        with self.autocast():
            outputs = (net or self.net)(feats, feat_lengths, **kwargs)
        log_probs, lengths = outputs[0].float(), outputs[1]  # CTC in full precision
        if has_decoder:
            encoding = outputs[2]

        def ctc(lp):
            return F.ctc_loss(lp.transpose(0, 1), targets, lengths, target_lengths, blank=0, zero_infinity=True)

        loss = ctc(log_probs)
        if inter:  # Lee & Watanabe 2021: (1 - w) * CTC + w * CTC of the middle block through the same head
            w = self.config.inter_ctc_weight
            loss = (1 - w) * loss + w * ctc(outputs[-1].float())
        if has_decoder:
            with self.autocast():
                dec = rec.model.decoder_loss(encoding, lengths, targets, target_lengths)
            loss = self.config.ctc_weight * loss + (1 - self.config.ctc_weight) * dec.float()
        return loss, log_probs, lengths, encoding

    def loss(self, batch):
        loss, _, _, _ = self.speech_loss(batch, self.augment, self.augment_rows(batch), speed=self.batch_speed(),
                                         mel_basis=self.vtlp_bases(batch))
        return loss, self.audio_seconds(batch)

    def vtlp_bases(self, batch):
        """Per-utterance warped filterbanks (B, n_mels, F) for VTLP, or None when it is off."""
        if not self.vtlp or "waves" not in batch:
            return None
        factors = 1.0 + self.vtlp * (2 * torch.rand(len(batch["indices"])) - 1)  # the seeded torch generator
        return vtlp_mel_bases(self.recognizer.featurizer.mel_basis, factors.to(self.device),
                              self.recognizer.feature_config.sample_rate)

    def train_step(self, batch) -> tuple:
        out = super().train_step(batch)
        if self.ema is not None:
            self.ema.update(self.model)
        return out

    def audio_seconds(self, batch) -> float:
        fc = self.recognizer.feature_config
        if "wave_lengths" in batch:
            return float(batch["wave_lengths"].sum()) / fc.sample_rate
        return float(batch["feat_lengths"].sum()) * fc.hop_ms / 1000  # cached features

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

    @torch.no_grad()
    def evaluate(self, decoder: DecoderConfig = GREEDY, utts: list = None) -> dict:
        """Validation loss and CER on `scored_valid_utts` (at most --valid_max_utterances of the
        split); greedy decoding unless `decoder` says otherwise.

        `utts`: score these utterances instead (bench/overfit.py scores the training utterances themselves)."""
        self.model.eval()
        loader = self.valid_loader
        if utts is None:
            utts = self.scored_valid_utts
        else:
            loader = self._loader(self._dataset(utts), DurationBatchSampler(
                self.durations(utts), 2 * self.config.batch_seconds, shuffle=False), pin_memory=False,
                persistent=False)
        total, count, hyps, refs = 0.0, 0, [], []
        for batch in loader:
            if batch is None:
                continue
            # never augment validation; the plain model, so ranks need not evaluate in step
            loss, log_probs, lengths, encoding = self.speech_loss(batch, net=self.model)
            total += loss.item() * len(lengths)
            count += len(lengths)
            hyps += self.recognizer.decode(log_probs, lengths, decoder=decoder, encoding=encoding)
            refs += [utts[i].text for i in batch["indices"]]
            self.trim_heap()
        self.last_val_cer = cer(hyps, refs) if hyps else 1.0  # after_epoch keeps the N best epochs by it
        return {"val_loss": total / max(count, 1), "val_cer": self.last_val_cer,
                "val_examples": list(zip(hyps[:3], refs[:3]))}

    def after_epoch(self, improved: bool):
        if self.recent_weights.maxlen:
            self.recent_weights.append({k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()})
        self.best_weights.offer(self.last_val_cer, self.epoch, self.model)

    def averaged_weights(self) -> dict:
        """Mean of the kept epochs' weights (integer buffers such as BatchNorm counters: the latest)."""
        return average_state_dicts(list(self.recent_weights))

    @property
    def averaging(self) -> bool:
        """True when the end of training chooses between the plain best epoch's weights and averages."""
        return self.ema is not None or self.best_weights.keep > 1

    def choose_final_weights(self, plain_best: dict, log=print) -> str:
        """Load `plain_best` (the best epoch's weights, validation CER `self.best`), then whichever of
        them, the EMA and the mean of the N best epochs validates best (greedy CER; ties keep the
        plain weights). The model is left holding the winner; its name is returned and recorded in
        the trainer state ('best' checkpoint) as `final_weights`."""
        candidates = {}
        if self.ema is not None:
            candidates["ema"] = self.ema.weights()
        if len(self.best_weights) > 1:
            candidates[f"best{len(self.best_weights)}"] = self.best_weights.averaged()
        self.model.load_state_dict(plain_best)
        name, scores = choose_weights(self.model, self.best, candidates, lambda: self.evaluate()["val_cer"])
        detail = ", ".join(f"{n} {c:.4f}" for n, c in scores.items())
        epochs = f" (best epochs {self.best_weights.epochs()})" if len(self.best_weights) > 1 else ""
        log(f"[avg] validation CER by weights: {detail}{epochs}; 'best' holds the {name} weights")
        self.final_weights, self.final_scores = name, scores
        return name

    def state_dict(self) -> dict:
        # valid_files: the split, so a forked session validates on the same files (recipe.py reuses it);
        # ema: the running average, so a fork continues it; final_weights: plain, ema or bestN
        state = dict(super().state_dict(), valid_files=[os.path.basename(u.path) for u in self.valid_utts],
                     final_weights=self.final_weights)
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict):
        super().load_state_dict(state)
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])


def bucketed_frames(frames: int, min_step: int = 32, per_octave: int = 8) -> int:
    """`frames` rounded up to the next of a few fixed lengths: multiples of `min_step`, coarser by
    octave (per_octave lengths in each), so at most 1/per_octave of a batch is added padding."""
    step = max(min_step, 2 ** max(int(frames).bit_length() - 1 - int(math.log2(per_octave)), 0))
    return -(-int(frames) // step) * step


def shape_for_compiling(feats: torch.Tensor, feat_lengths: torch.Tensor) -> torch.Tensor:
    """Features padded in time to a bucketed length, the batch dimension marked dynamic.

    Inductor specialises the time length anyway (convolution backward guards on its strides in
    torch 2.13), so a compiled model is built once per time bucket rather than once per batch
    length; the batch size varies freely. Padding frames are masked by every model (their
    lengths are unchanged), so the loss is the same up to the front end's BatchNorm statistics."""
    frames = bucketed_frames(feats.size(1))
    if frames > feats.size(1):
        feats = F.pad(feats, (0, 0, 0, frames - feats.size(1)))
    torch._dynamo.mark_static(feats, 1)
    torch._dynamo.maybe_mark_dynamic(feats, 0)
    torch._dynamo.maybe_mark_dynamic(feat_lengths, 0)
    return feats
