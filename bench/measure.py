"""Measurements the benchmarks share: training throughput, inference speed, feature extraction.

Each is a plain function returning a dict of figures, so bench/run_suite.py and
other bench scripts (e.g. bench/bench_features.py) can reuse them. Training
throughput runs in a process of its own, so its peak RSS (and GPU memory) is the
training process's alone. bench/gpu_check.py runs these subcommands, one process each:

    python bench/measure.py throughput --steps 20 --warmup 2 [--ddp] -- [main.py options]
    python bench/measure.py precision --steps 3 -- [main.py options]     # fp32 vs bf16, same batches
    python bench/measure.py evaluate --sample 200 -- [main.py options]   # a validation pass, 10k inference
    torchrun --nproc_per_node 2 bench/measure.py slow-rank0 --delay 20 [--pg-timeout 8] -- [main.py options]

Each prints one JSON line (the last line of stdout), also written to --out. Under
`torchrun --nproc_per_node 1`, --ddp makes the throughput a 1-process DDP run (nccl on CUDA,
gloo on CPU).

Hooks that only bench/ uses, set through the environment:
  BENCH_COMPILE_BACKEND   the backend torch.compile gets (CPU smoke runs: aot_eager, which traces
                          and counts recompiles as inductor would, without minutes of C++ codegen)
"""
import argparse
import copy
import json
import math
import os
import resource
import shutil
import sys
import threading
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from modules.audio import audio_duration, load_audio  # noqa: E402
from modules.features import FeatureConfig, LogMelFilterbank  # noqa: E402
from modules.samplers import DurationBatchSampler  # noqa: E402

TEST_SET_2021 = 10_000   # utterances in the 2021 competition's test set
TIME_LIMIT = 3600.0      # seconds NSML gives a submit's inference


def machine() -> dict:
    """What a figure was measured on: the CPU model and the vector instructions that decide its speed
    (the same 2-core class ran the kit 2.5x slower with AVX2 than with AVX-512), cores, torch, GPU."""
    import datetime
    import platform
    cpu, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": cpu, "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags],
            "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "torch": torch.__version__, "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- a generated corpus of real-size utterances ----------------------------------------------

# Hangul syllables spread over the whole block: transcripts with a realistic number of units
SYLLABLES = [chr(0xAC00 + i) for i in range(0, 11172, 37)]


def synthetic_corpus(root: str, train_seconds: float, test_utterances: int = 200, min_seconds: float = 2.0,
                     max_seconds: float = 30.0, unique_waves: int = 256, syllables_per_second: float = 4.0,
                     seed: int = 0, sample_rate: int = 16000) -> dict:
    """A 2022-layout dataset (train/train_data, train/train_label, test/...) of tones in noise
    with random Korean transcripts, utterance lengths uniform in [min_seconds, max_seconds] and
    about `train_seconds` of training audio. Nothing to learn; for timing and memory only.

    `unique_waves` waveforms (lengths spread over the range) are written once and every utterance
    is a hard link to the one of its length, so 25 h of audio costs seconds and ~150 MB of disk,
    and loader workers still open, read and decode one file per utterance."""
    rng = np.random.default_rng(seed)
    waves_dir = os.path.join(root, "_waves")
    os.makedirs(waves_dir, exist_ok=True)
    lengths = np.linspace(min_seconds, max_seconds, unique_waves)
    sources = []
    for k, seconds in enumerate(lengths):
        n = int(seconds * sample_rate)
        t = np.arange(n) / sample_rate
        tremolo = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 4) * t)
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(120, 400) * t) * tremolo
        wave += 0.05 * rng.standard_normal(n)
        path = os.path.join(waves_dir, f"wave_{k:04d}")
        (wave * 8000).astype("<i2").tofile(path)
        sources.append(path)

    def transcript(seconds):
        count = max(1, int(round(seconds * syllables_per_second)))
        syllables = rng.choice(SYLLABLES, count)
        words, i = [], 0
        while i < count:  # words of 1-4 syllables
            step = int(rng.integers(1, 5))
            words.append("".join(syllables[i:i + step]))
            i += step
        return " ".join(words)

    summary = {}
    for split, prefix in (("train", "idx"), ("test", "test")):
        data = os.path.join(root, split, f"{split}_data")
        os.makedirs(data, exist_ok=True)
        rows, total, i = ["filename,text"], 0.0, 0
        while (total < train_seconds) if split == "train" else (i < test_utterances):
            k = int(rng.integers(unique_waves))
            name = f"{prefix}_{i:06d}"
            target = os.path.join(data, name)
            if not os.path.exists(target):
                try:
                    os.link(sources[k], target)
                except OSError:  # a file system without hard links
                    shutil.copyfile(sources[k], target)
            rows.append(f"{name},{transcript(lengths[k])}")
            total, i = total + lengths[k], i + 1
        with open(os.path.join(root, split, f"{split}_label"), "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
        summary[split] = {"utterances": i, "audio_seconds": round(float(total), 1)}
    summary.update(path=root, min_seconds=min_seconds, max_seconds=max_seconds)
    return summary


# -- building a trainer as main.py does ------------------------------------------------------

def build_trainer(main_argv: list, ddp: bool = False):
    """(trainer, options) built by the transcription recipe exactly as `python main.py <main_argv>`
    builds them (`--dataset_path D` and `--device` as in main.py; every other option the task's).
    With `ddp` (under torchrun, even with one process) the process joins the group as main.py does."""
    from modules import distributed
    from modules.tasks import default_device
    from modules.transcribe import parse_options, recipe
    kit_argv = argparse.ArgumentParser(add_help=False)
    kit_argv.add_argument("--dataset_path", required=True)
    kit_argv.add_argument("--device", default=None)
    args, task_argv = kit_argv.parse_known_args(main_argv)
    ddp_device = None
    if ddp:
        if "RANK" not in os.environ:
            raise SystemExit("--ddp needs the environment torchrun sets: "
                             "torchrun --nproc_per_node 1 bench/measure.py ...")
        ddp_device = distributed.init_from_env()
    device = torch.device(args.device) if args.device else (ddp_device or default_device())
    compile_backend = os.environ.get("BENCH_COMPILE_BACKEND")
    if compile_backend:  # a bench-only hook (see the module docstring); the kit's own call is unchanged
        real_compile = torch.compile
        torch.compile = lambda model=None, **kw: real_compile(model, **dict(kw, backend=compile_backend))
    options = parse_options(task_argv)
    return recipe.build(options, args.dataset_path, device, log=lambda line: print(line, file=sys.stderr)), options


def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def amp_name(dtype) -> str:
    return str(dtype).replace("torch.", "") if dtype is not None else "float32"


def precision_on(device: torch.device) -> dict:
    """What `--amp auto` gives on `device` (asked of the kit's own function, so a newer rule is
    measured as it is), the card's compute capability and whether fp32 matmuls may use TF32."""
    from modules.training import amp_dtype
    info = {"amp_auto": amp_name(amp_dtype("auto", device))}
    if device.type == "cuda":
        info.update(compute_capability=".".join(map(str, torch.cuda.get_device_capability(device))),
                    bf16_supported=torch.cuda.is_bf16_supported(),
                    tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return info


# -- instruments: where a step's time goes, what dtype the recurrent layers run in -----------

class _ClockedScaler:
    """Stands in for the trainer's GradScaler and notes when backward starts (scale() returned)
    and ends (unscale_() is called); `after_unscale(optimizer)` sees the unscaled gradients."""

    def __init__(self, scaler, clock):
        self._scaler, self._clock = scaler, clock

    def scale(self, loss):
        scaled = self._scaler.scale(loss)
        self._clock.mark("backward_start")
        return scaled

    def unscale_(self, optimizer):
        self._clock.mark("backward_end")
        self._scaler.unscale_(optimizer)
        if self._clock.after_unscale:
            self._clock.after_unscale(optimizer)

    def __getattr__(self, name):
        return getattr(self._scaler, name)


class StepClock:
    """Phases of `trainer.train_step`, timed from outside the kit (hooks on the model, a wrapper
    around its GradScaler; on CUDA a synchronize at each mark, so the phases are real but the
    step is slower: use it on steps apart from the timed ones):

      features   from the step's start to the model's forward: learning rate, waveform -> log-mel,
                 SpecAugment
      forward    the model's forward
      loss       CTC (+ decoder) loss after the forward
      backward   loss.backward()
      optimizer  gradient clipping, the optimizer step (and the loss read back where train_step does)

    A mark the kit no longer passes (say, train_step stops using the scaler) leaves its phase out
    and its time counts in the phase before."""

    PHASES = ("features", "forward", "loss", "backward", "optimizer")

    def __init__(self, trainer, after_unscale=None):
        self.device, self.after_unscale, self.marks = trainer.device, after_unscale, {}
        self.totals = dict.fromkeys(self.PHASES, 0.0)
        self.steps = 0
        model = trainer.model
        self._handles = [model.register_forward_pre_hook(lambda *a: self.mark("forward_start")),
                         model.register_forward_hook(lambda *a: self.mark("forward_end"))]
        self._trainer, self._scaler = trainer, trainer.scaler
        trainer.scaler = _ClockedScaler(trainer.scaler, self)

    def mark(self, name):
        synchronize(self.device)
        self.marks.setdefault(name, time.perf_counter())

    def step(self, batch):
        """One timed train_step; returns its loss."""
        synchronize(self.device)
        self.marks = {"start": time.perf_counter()}
        loss, _ = self._trainer.train_step(batch)
        synchronize(self.device)
        m, end = self.marks, time.perf_counter()
        order = ["start", "forward_start", "forward_end", "backward_start", "backward_end"]
        seen = [k for k in order if k in m] + ["end"]
        m["end"] = end
        names = {"start": "features", "forward_start": "forward", "forward_end": "loss",
                 "backward_start": "backward", "backward_end": "optimizer"}
        for a, b in zip(seen, seen[1:]):
            self.totals[names[a]] += m[b] - m[a]
        self.steps += 1
        return float(loss)  # a tensor in kits that keep the loss on the device (read here, after the marks)

    def shares(self) -> dict:
        total = sum(self.totals.values())
        return {k: v / total for k, v in self.totals.items()} if total else {}

    def close(self):
        for h in self._handles:
            h.remove()
        self._trainer.scaler = self._scaler


class RecurrentDtypes:
    """The dtype each recurrent layer (GRU, LSTM) computes in, seen by forward hooks: under CUDA
    autocast cuDNN RNNs run in float16 whatever the autocast dtype, unless the model keeps them out."""

    def __init__(self, model):
        self.seen = {}
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in model.named_modules()
                         if isinstance(m, torch.nn.RNNBase)]

    def _hook(self, name):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            out = getattr(out, "data", out)  # a PackedSequence's values
            self.seen.setdefault(name or "model", amp_name(out.dtype))
        return hook

    def close(self):
        for h in self._handles:
            h.remove()


def kernel_seconds(step_fn) -> float:
    """GPU-busy seconds of `step_fn()`: the union of its CUDA kernels' time spans (torch.profiler),
    so kernels overlapping on several streams count once."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step_fn()
        torch.cuda.synchronize()
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == DeviceType.CUDA)
    busy, last_end = 0.0, -math.inf
    for start, end in spans:
        if end > last_end:
            busy += end - max(start, last_end)
            last_end = end
    return busy / 1e6


class UtilizationSampler:
    """torch.cuda.utilization() (NVML, needs pynvml) sampled every 0.1 s in a thread; None without NVML."""

    def __init__(self, device):
        self.samples, self._stop = [], threading.Event()
        try:
            torch.cuda.utilization(device)
        except Exception:  # no pynvml, or NVML not usable here
            self._thread = None
            return
        self._thread = threading.Thread(target=self._run, args=(device,), daemon=True)
        self._thread.start()

    def _run(self, device):
        while not self._stop.wait(0.1):
            self.samples.append(torch.cuda.utilization(device))

    def mean(self):
        if self._thread is None:
            return None
        self._stop.set()
        self._thread.join()
        return sum(self.samples) / len(self.samples) / 100 if self.samples else None


def full_length_batch(trainer, seconds: float = 30.0) -> dict:
    """A training batch of `seconds`-long utterances, as many as the batch size holds (at least
    one): the most memory a batch of that size can take (no padding, the longest frames)."""
    rec = trainer.recognizer
    sample_rate = rec.feature_config.sample_rate
    rows = max(1, int(trainer.config.batch_seconds // seconds))
    generator = torch.Generator().manual_seed(0)
    units = 4 * int(seconds)  # about 4 units a second, well under any model's output frame rate
    samples = int(seconds * sample_rate)
    return {"indices": list(range(rows)), "waves": 0.1 * torch.randn(rows, samples, generator=generator),
            "wave_lengths": torch.full((rows,), samples),
            "targets": torch.randint(1, len(rec.tokenizer), (rows * units,), generator=generator),
            "target_lengths": torch.full((rows,), units)}


def compile_counters() -> dict:
    """torch._dynamo's counters: graphs compiled (each recompile adds one), frame compilations,
    graph breaks."""
    from torch._dynamo.utils import counters
    return {"unique_graphs": counters["stats"].get("unique_graphs", 0),
            "frames_compiled": counters["frames"].get("ok", 0),
            "graph_breaks": sum(counters["graph_break"].values())}


def is_compiled(net) -> bool:
    net = getattr(net, "module", net)  # under DDP
    return isinstance(net, torch._dynamo.eval_frame.OptimizedModule) or hasattr(net, "_orig_mod")


# -- training throughput, split -------------------------------------------------------------

def training_throughput(main_argv: list, steps: int = 20, warmup: int = 2, ddp: bool = False,
                        profile_steps: int = 0, full_length_seconds: float = 0.0) -> dict:
    """Audio seconds trained per second over `steps` optimizer steps after `warmup` steps, and
    where that time goes.

    The batches are the first of the trainer's seeded epoch order (the same ones on every run),
    data loading included, validation excluded. The timed steps are split into
      data wait   blocked on the loader's iterator (workers not keeping up)
      GPU time    kernels busy (torch.profiler over `profile_steps` more steps, per audio second,
                  applied to the timed audio); on CPU, the model's forward, loss, backward and
                  optimizer step (StepClock), which is what a GPU would run
      host time   the rest: the GPU idle while Python prepares, launches and waits.
    Then `profile_steps` more steps with StepClock give each phase's share (0: no split), and two
    steps of a batch of `full_length_seconds` utterances (0: none) the peak memory at the batch size
    (GPU; on CPU the peak RSS). Without them the figures are the plain throughput run_suite.py reads.
    """
    from modules import distributed
    trainer, options = build_trainer(main_argv, ddp)
    backend = torch.distributed.get_backend() if distributed.is_distributed() else None
    device = trainer.device
    cuda = device.type == "cuda"
    rec = trainer.recognizer
    rec.model.train()
    sample_rate = rec.feature_config.sample_rate
    recurrent = RecurrentDtypes(rec.model) if not options.compile else None  # hooks would change the graph
    batches = _endless_batches(trainer)
    done, audio, padded, data_wait, first_step = 0, 0.0, 0.0, 0.0, None
    utilization = None
    while done < warmup + steps:
        if done == warmup:
            synchronize(device)  # the warm-up's queued GPU work is not timed
            start = time.perf_counter()
            utilization = UtilizationSampler(device) if cuda else None
        waited = time.perf_counter()
        batch = next(batches)
        if done >= warmup:
            data_wait += time.perf_counter() - waited
        step_start = time.perf_counter()
        trainer.train_step(batch)
        if done == 0:
            synchronize(device)
            first_step = time.perf_counter() - step_start
            compiled_first = compile_counters()["unique_graphs"] if options.compile else 0
        done += 1
        if done > warmup:
            audio += float(batch["wave_lengths"].sum()) / sample_rate
            padded += batch["waves"].numel() / sample_rate
    synchronize(device)
    elapsed = time.perf_counter() - start
    nvml = utilization.mean() if utilization else None
    result = {"audio_seconds_per_second": audio / elapsed, "steps": steps, "warmup_steps": warmup,
              "seconds": elapsed, "audio_seconds": audio, "batch_audio_seconds": audio / steps,
              "batch_seconds_option": trainer.config.batch_seconds,
              "padding_fraction": 1 - audio / max(padded, 1e-9), "first_step_seconds": first_step,
              "parameters": sum(p.numel() for p in rec.model.parameters()), "device": str(device),
              "amp_dtype": amp_name(trainer.amp_dtype), "grad_scaler": bool(trainer.scaler.is_enabled()),
              "compiled": bool(options.compile), "ddp_backend": backend,
              "num_workers": trainer.train_loader.num_workers,
              "persistent_workers": bool(trainer.train_loader.persistent_workers),
              **precision_on(device)}
    if recurrent:
        result["recurrent_dtypes"] = recurrent.seen
        recurrent.close()
    if options.compile:
        # recompiles: graphs compiled after the first step (new batch shapes, failed guards)
        result.update(compile_counters(), compiled_model=is_compiled(trainer.net))
        result["recompiles"] = result["unique_graphs"] - compiled_first
    else:  # phases and GPU time on steps apart from the timed ones (instruments slow a step down)
        clock, busy, busy_audio = StepClock(trainer), 0.0, 0.0
        for _ in range(profile_steps):
            batch = next(batches)
            if cuda:
                try:
                    busy += kernel_seconds(lambda: clock.step(batch))
                except Exception as error:  # a profiler that cannot see the GPU: say so, keep the rest
                    result["gpu_time_error"] = f"{type(error).__name__}: {error}"
                    clock.step(batch)
            else:
                clock.step(batch)
            busy_audio += float(batch["wave_lengths"].sum()) / sample_rate
        shares = clock.shares()
        clock.close()
        result["phase_shares"] = shares
        if cuda and busy:
            device_share = min(busy / busy_audio * audio / elapsed, 1 - data_wait / elapsed)
        elif not cuda and shares:
            compute = sum(shares[k] for k in ("forward", "loss", "backward", "optimizer"))
            device_share = compute * (1 - data_wait / elapsed)
        else:
            device_share = None
        if device_share is not None:
            result["split"] = {"data_wait": data_wait / elapsed, "gpu" if cuda else "compute": device_share,
                               "host": 1 - data_wait / elapsed - device_share}
        result["gpu_utilization"] = nvml if nvml is not None else (device_share if cuda else None)
        result["gpu_utilization_source"] = "nvml" if nvml is not None else ("kernel time" if cuda else None)
    result["data_wait_seconds"] = data_wait
    if cuda:
        result.update(peak_gpu_allocated_mib=torch.cuda.max_memory_allocated(device) / 2**20,
                      peak_gpu_reserved_mib=torch.cuda.max_memory_reserved(device) / 2**20,
                      gpu_name=torch.cuda.get_device_name(device))
    result["peak_rss_mib"] = peak_rss_mib()  # the measured run's own, before the full-length batch
    if full_length_seconds and not options.compile:
        result.update(full_length_peak(trainer, full_length_seconds))
    if backend:
        result["world_size"] = distributed.world_size()
        distributed.shutdown()
    return result


def _endless_batches(trainer):
    """The trainer's training batches, epoch after epoch, skipping batches that failed to load."""
    epoch = 0
    while True:
        trainer.train_sampler.set_epoch(epoch)
        for batch in trainer.train_loader:
            if batch is not None:
                yield batch
        epoch += 1


def full_length_peak(trainer, seconds: float) -> dict:
    """Peak memory of two training steps on a batch of `seconds`-long utterances (GPU: reset first,
    so this is the batch's own peak; CPU: the process's peak RSS so far)."""
    device, batch = trainer.device, full_length_batch(trainer, seconds)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        for _ in range(2):  # the second step has the optimizer's state allocated too
            trainer.train_step(batch)
        synchronize(device)
    except torch.OutOfMemoryError as error:
        return {"full_length": {"utterance_seconds": seconds, "rows": len(batch["indices"]),
                                "error": f"out of memory: {str(error)[:300]}"}}
    entry = {"utterance_seconds": seconds, "rows": len(batch["indices"])}
    if device.type == "cuda":
        entry.update(peak_gpu_allocated_mib=torch.cuda.max_memory_allocated(device) / 2**20,
                     peak_gpu_reserved_mib=torch.cuda.max_memory_reserved(device) / 2**20,
                     gpu_total_mib=torch.cuda.get_device_properties(device).total_memory / 2**20)
    else:
        entry["peak_rss_mib"] = peak_rss_mib()
    return {"full_length": entry}


# -- fp32 against bf16 on the same batches ----------------------------------------------------

def precision_comparison(main_argv: list, steps: int = 3, dtype=torch.bfloat16) -> dict:
    """`steps` training steps in fp32, then the same steps from the same weights, optimizer state,
    batches and random seeds under autocast `dtype`: each step's loss and gradient (before
    clipping) compared. Relative differences: |a - b| / |a| for the loss, ||a - b|| / ||a|| for the
    gradient of all parameters together, and the gradients' cosine."""
    trainer, _ = build_trainer(main_argv)
    device, model = trainer.device, trainer.recognizer.model
    batches = _endless_batches(trainer)
    batches = [next(batches) for _ in range(steps)]
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer_state = copy.deepcopy(trainer.optimizer.state_dict())
    step_count = trainer.step
    runs = {}
    recurrent = None
    for name, amp in (("float32", None), (amp_name(dtype), dtype)):
        model.load_state_dict(weights)
        trainer.optimizer.load_state_dict(optimizer_state)
        trainer.step, trainer.amp_dtype = step_count, amp
        grads = []
        clock = StepClock(trainer, after_unscale=lambda opt: grads.append(torch.cat(
            [p.grad.detach().float().flatten() for g in opt.param_groups for p in g["params"] if p.grad is not None])))
        if amp is not None:
            recurrent = RecurrentDtypes(model)
        torch.manual_seed(0)  # SpecAugment, dropout: the same draws in both runs
        if device.type == "cuda":
            torch.cuda.manual_seed_all(0)
        losses = [clock.step(b) for b in batches]
        clock.close()
        runs[name] = {"losses": losses, "grads": grads}
    reference, other = runs["float32"], runs[amp_name(dtype)]
    compared = []
    for i in range(steps):
        entry = {"loss_float32": reference["losses"][i], "loss_" + amp_name(dtype): other["losses"][i],
                 "loss_relative_diff": abs(other["losses"][i] - reference["losses"][i])
                 / max(abs(reference["losses"][i]), 1e-12)}
        if i < len(reference["grads"]) and i < len(other["grads"]):
            a, b = reference["grads"][i], other["grads"][i]
            entry.update(grad_relative_diff=float((a - b).norm() / a.norm().clamp_min(1e-30)),
                         grad_cosine=float(torch.nn.functional.cosine_similarity(a, b, dim=0)),
                         grad_norm_float32=float(a.norm()))
        compared.append(entry)
    batch_audio = [float(b["wave_lengths"].sum()) / trainer.recognizer.feature_config.sample_rate for b in batches]
    result = {"steps": compared, "batch_audio_seconds": batch_audio, "device": str(device),
              "compared_dtype": amp_name(dtype),
              "max_loss_relative_diff": max(e["loss_relative_diff"] for e in compared),
              "max_grad_relative_diff": max((e["grad_relative_diff"] for e in compared if "grad_relative_diff" in e),
                                            default=None),
              "recurrent_dtypes": recurrent.seen if recurrent else {}}
    if recurrent:
        recurrent.close()
    return result


# -- a validation pass and the test set's inference ------------------------------------------

def validation_and_inference(main_argv: list, sample: int = 200, test_utterances: int = TEST_SET_2021) -> dict:
    """One greedy validation pass over what the trainer validates each epoch, and the recognizer's
    own decoder (main_argv's, e.g. --decoder beam with the LM) timed on `sample` test files and
    projected to the test set's `test_utterances` against NSML's 1-hour inference limit. The
    weights are untrained: a beam search over near-uniform outputs prunes least, so the
    projection errs slow."""
    trainer, _ = build_trainer(main_argv)
    rec, device = trainer.recognizer, trainer.device
    start = time.perf_counter()
    metrics = trainer.evaluate()
    synchronize(device)
    validation = {"seconds": time.perf_counter() - start, "split_utterances": len(trainer.valid_utts),
                  "split_audio_seconds": sum(u.duration for u in trainer.valid_utts), "val_cer": metrics["val_cer"]}
    dataset = argparse.ArgumentParser(add_help=False)
    dataset.add_argument("--dataset_path")
    root = dataset.parse_known_args(main_argv)[0].dataset_path
    test_dir = os.path.join(root, "test", "test_data")
    paths = sorted(os.path.join(test_dir, n) for n in os.listdir(test_dir))[:sample]
    inference = inference_speed(rec, paths, rec.decoder_config.batch_seconds)
    inference.update(decoder=rec.decoder_config.decoder, beam_width=rec.decoder_config.beam_width,
                     lm=rec.lm is not None, lm_weight=rec.decoder_config.lm_weight,
                     projected_seconds=inference["seconds_per_utterance"] * test_utterances,
                     projected_utterances=test_utterances, time_limit_seconds=TIME_LIMIT)
    inference["within_limit"] = inference["projected_seconds"] < TIME_LIMIT
    return {"validation": validation, "inference": inference, "device": str(device)}


# -- a DDP run whose rank 0 is slow at the end ------------------------------------------------

def run_main_with_slow_rank0(main_argv: list, delay: float, pg_timeout: float = None):
    """Run main.py (as `python main.py <main_argv>` under torchrun) with rank 0 sleeping `delay`
    seconds once training is done, as a long LM tuning and final decode would: the other ranks
    must neither time out waiting for it nor get it killed. `pg_timeout`: the process group's
    timeout in seconds, for a kit without an option of its own to set it. Bench-only hooks:
    Trainer.fit and init_process_group are wrapped here, in this process; the kit is unchanged."""
    import datetime
    import runpy
    from modules import distributed, training
    real_fit = training.Trainer.fit

    def fit(self, *args, **kwargs):
        out = real_fit(self, *args, **kwargs)
        if distributed.rank() == 0:
            print(f"[slow-rank0] rank 0 sleeps {delay:g} s after training", file=sys.stderr, flush=True)
            time.sleep(delay)
        return out

    training.Trainer.fit = fit
    if pg_timeout:
        real_init = torch.distributed.init_process_group
        torch.distributed.init_process_group = lambda *a, **k: real_init(
            *a, **dict(k, timeout=datetime.timedelta(seconds=pg_timeout)))
    sys.argv = [os.path.join(ROOT, "main.py"), *main_argv]
    runpy.run_path(sys.argv[0], run_name="__main__")


def inference_speed(recognizer, paths: list, batch_seconds: float) -> dict:
    """Real-time factor of transcribing `paths` (batch_seconds 0 = one file at a time),
    and the time that projects to for the 2021 test set of 10,000 utterances."""
    from modules.transcribe.inference import transcribe_files
    audio = sum(audio_duration(p) for p in paths)
    transcribe_files(recognizer, paths[:1], batch_seconds=batch_seconds, progress=False)  # warm up
    start = time.perf_counter()
    transcribe_files(recognizer, paths, batch_seconds=batch_seconds, progress=False)
    elapsed = time.perf_counter() - start
    per_utterance = elapsed / len(paths)
    return {"rtf": elapsed / audio, "seconds": elapsed, "files": len(paths), "audio_seconds": audio,
            "seconds_per_utterance": per_utterance, "projected_10k_seconds": per_utterance * TEST_SET_2021,
            "batch_seconds": batch_seconds}


def test_cer(recognizer, paths: list, references: list, batch_seconds: float) -> dict:
    """CER of the recognizer's current decoder on `paths` against `references` (the submit's
    metric: spaces removed), and the seconds per utterance of the whole transcription."""
    from modules.metrics import cer
    from modules.transcribe.inference import transcribe_files
    start = time.perf_counter()
    hyps = transcribe_files(recognizer, paths, batch_seconds=batch_seconds, progress=False)
    elapsed = time.perf_counter() - start
    return {"test_cer": cer(hyps, references), "seconds_per_utterance": elapsed / len(paths), "files": len(paths)}


def librosa_features(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """One file's normalised log-mel, the per-file way the official baselines computed features."""
    import librosa
    mel = librosa.feature.melspectrogram(y=wave, sr=config.sample_rate, n_fft=config.n_fft,
                                         hop_length=config.hop_length, win_length=config.win_length,
                                         n_mels=config.n_mels, power=2.0)
    feats = np.log(mel + 1e-6).T
    return (feats - feats.mean(0)) / np.sqrt(feats.var(0) + 1e-5)


def feature_extraction(paths: list, config: FeatureConfig = FeatureConfig(), batch_seconds: float = 300.0) -> dict:
    """Seconds per hour of audio: the kit's batched torch log-mel vs a per-file librosa loop.

    Audio is loaded first and not timed: this measures feature computation only.
    """
    waves = [load_audio(p) for p in paths]
    hours = sum(len(w) for w in waves) / config.sample_rate / 3600
    featurizer = LogMelFilterbank(config)
    sampler = DurationBatchSampler([len(w) / config.sample_rate for w in waves], batch_seconds, shuffle=False)
    librosa_features(waves[0], config)  # warm up (librosa caches its mel basis)
    start = time.perf_counter()
    for batch in sampler:
        lengths = torch.tensor([len(waves[i]) for i in batch])
        padded = torch.zeros(len(batch), int(lengths.max()))
        for row, i in enumerate(batch):
            padded[row, : len(waves[i])] = torch.from_numpy(waves[i])
        featurizer(padded, lengths)
    kit = time.perf_counter() - start
    start = time.perf_counter()
    for w in waves:
        librosa_features(w, config)
    per_file = time.perf_counter() - start
    return {"kit_batched_seconds_per_hour": kit / hours, "librosa_per_file_seconds_per_hour": per_file / hours,
            "files": len(paths), "hours": hours}


def _cli():
    p = argparse.ArgumentParser(description="Measurements of a main.py configuration (one JSON line); see the "
                                            "module docstring.")
    p.add_argument("what", choices=["throughput", "precision", "evaluate", "slow-rank0"])
    p.add_argument("--steps", type=int, default=None, help="throughput: timed steps (20); precision: steps (3)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--profile-steps", type=int, default=0,
                   help="throughput: further steps for the phases and GPU time (gpu_check: 2)")
    p.add_argument("--full-length", type=float, default=0.0,
                   help="throughput: utterance seconds of a peak-memory batch at the batch size (gpu_check: 30)")
    p.add_argument("--ddp", action="store_true", help="under torchrun: a DDP run, even with one process")
    p.add_argument("--sample", type=int, default=200, help="evaluate: test files decoded")
    p.add_argument("--delay", type=float, default=30.0, help="slow-rank0: seconds rank 0 sleeps after training")
    p.add_argument("--pg-timeout", type=float, default=None, help="slow-rank0: the process group's timeout (s)")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # main.py options follow `--`
    a, main_args = p.parse_args(argv[:split]), argv[split + 1:]
    if a.what == "slow-rank0":
        return run_main_with_slow_rank0(main_args, a.delay, a.pg_timeout)
    if a.what == "throughput":
        result = training_throughput(main_args, a.steps or 20, a.warmup, a.ddp, a.profile_steps, a.full_length)
    elif a.what == "precision":
        result = precision_comparison(main_args, a.steps or 3)
    else:
        result = validation_and_inference(main_args, a.sample)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _cli()
