"""Measurements the benchmarks share: training throughput, inference speed, feature extraction.

Each is a plain function returning a dict of figures, so bench/run_suite.py and
other bench scripts (e.g. bench/bench_features.py) can reuse them. Training
throughput runs in a process of its own, so its peak RSS is the training
process's alone:

    python bench/measure.py throughput --steps 20 --warmup 2 [--out F.json] [--ddp] -- [main.py options]

prints one JSON line (the last line of stdout), also written to --out. On a GPU it
includes the peak GPU memory; under `torchrun --nproc_per_node 1`, --ddp makes it a
1-process DDP run (nccl on CUDA, gloo on CPU). bench/gpu_check.py runs it per configuration.
"""
import argparse
import json
import os
import resource
import sys
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


def training_throughput(main_argv: list, steps: int = 20, warmup: int = 2, ddp: bool = False) -> dict:
    """Audio seconds trained per second over `steps` optimizer steps after `warmup` steps.

    The trainer is built by the transcription recipe exactly as `python main.py <main_argv>`
    builds it (`--dataset_path D` and `--device` as in main.py; every other option the task's),
    and the batches are the first of its seeded epoch order (the same ones on every run),
    data loading included, validation excluded. On CUDA, the peak GPU memory of the whole run
    (model, warm-up and measured steps) is reported too. With `ddp` (under torchrun, even with
    one process) the process joins the group as main.py does and the trainer runs DDP.
    """
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
            raise SystemExit("--ddp needs the environment torchrun sets: torchrun --nproc_per_node 1 bench/measure.py ...")
        ddp_device = distributed.init_from_env()
    device = torch.device(args.device) if args.device else (ddp_device or default_device())
    options = parse_options(task_argv)
    trainer = recipe.build(options, args.dataset_path, device)
    backend = torch.distributed.get_backend() if distributed.is_distributed() else None
    cuda = device.type == "cuda"
    rec = trainer.recognizer
    rec.model.train()
    sample_rate = rec.feature_config.sample_rate
    done, audio, padded, elapsed, epoch = 0, 0.0, 0.0, 0.0, 0
    start = None
    while done < warmup + steps:
        trainer.train_sampler.set_epoch(epoch)
        for batch in trainer.train_loader:
            if done == warmup:
                if cuda:
                    torch.cuda.synchronize()  # the warm-up's queued GPU work is not timed
                start = time.perf_counter()  # data loading of measured steps is counted
            if batch is None:
                continue
            trainer.train_step(batch)
            done += 1
            if done > warmup:
                audio += float(batch["wave_lengths"].sum()) / sample_rate
                padded += batch["waves"].numel() / sample_rate
            if done == warmup + steps:
                break
        epoch += 1
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    result = {"audio_seconds_per_second": audio / elapsed, "steps": steps, "warmup_steps": warmup,
              "seconds": elapsed, "audio_seconds": audio, "batch_audio_seconds": audio / steps,
              "padding_fraction": 1 - audio / max(padded, 1e-9),
              "parameters": sum(p.numel() for p in rec.model.parameters()),
              "peak_rss_mib": peak_rss_mib(), "device": str(device),
              "amp_dtype": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "float32",
              "compiled": bool(options.compile), "ddp_backend": backend}
    if cuda:
        result.update(peak_gpu_allocated_mib=torch.cuda.max_memory_allocated(device) / 2**20,
                      peak_gpu_reserved_mib=torch.cuda.max_memory_reserved(device) / 2**20,
                      gpu_name=torch.cuda.get_device_name(device))
    if backend:
        result["world_size"] = distributed.world_size()
        distributed.shutdown()
    return result


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
    p = argparse.ArgumentParser(description="Training throughput of a main.py configuration (one JSON line).")
    p.add_argument("what", choices=["throughput"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--ddp", action="store_true", help="under torchrun: a DDP run, even with one process")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # main.py options follow `--`
    a, main_args = p.parse_args(argv[:split]), argv[split + 1:]
    result = training_throughput(main_args, a.steps, a.warmup, a.ddp)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _cli()
