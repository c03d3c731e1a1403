"""Measurements the benchmarks share: training throughput, inference speed, feature extraction.

Each is a plain function returning a dict of figures, so bench/run_suite.py and
other bench scripts (e.g. bench/bench_features.py) can reuse them. Training
throughput runs in a process of its own, so its peak RSS is the training
process's alone:

    python bench/measure.py throughput --steps 20 --warmup 2 -- [main.py options]

prints one JSON line (the last line of stdout).
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


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_throughput(main_argv: list, steps: int = 20, warmup: int = 2) -> dict:
    """Audio seconds trained per second over `steps` optimizer steps after `warmup` steps.

    The trainer is built by the transcription recipe exactly as `python main.py <main_argv>`
    builds it (`--dataset_path D` and `--device` as in main.py; every other option the task's),
    and the batches are the first of its seeded epoch order (the same ones on every run),
    data loading included, validation excluded.
    """
    from modules.tasks import default_device
    from modules.transcribe import parse_options, recipe
    kit_argv = argparse.ArgumentParser(add_help=False)
    kit_argv.add_argument("--dataset_path", required=True)
    kit_argv.add_argument("--device", default=None)
    args, task_argv = kit_argv.parse_known_args(main_argv)
    device = torch.device(args.device) if args.device else default_device()
    trainer = recipe.build(parse_options(task_argv), args.dataset_path, device)
    rec = trainer.recognizer
    rec.model.train()
    sample_rate = rec.feature_config.sample_rate
    done, audio, padded, elapsed, epoch = 0, 0.0, 0.0, 0.0, 0
    start = None
    while done < warmup + steps:
        trainer.train_sampler.set_epoch(epoch)
        for batch in trainer.train_loader:
            if done == warmup:
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
    elapsed = time.perf_counter() - start
    return {"audio_seconds_per_second": audio / elapsed, "steps": steps, "warmup_steps": warmup,
            "seconds": elapsed, "audio_seconds": audio, "padding_fraction": 1 - audio / max(padded, 1e-9),
            "parameters": sum(p.numel() for p in rec.model.parameters()),
            "peak_rss_mib": peak_rss_mib()}


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
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # main.py options follow `--`
    a, main_args = p.parse_args(argv[:split]), argv[split + 1:]
    print(json.dumps(training_throughput(main_args, a.steps, a.warmup)), flush=True)


if __name__ == "__main__":
    _cli()
