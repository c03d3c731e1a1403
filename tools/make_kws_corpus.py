#!/usr/bin/env python3
"""Synthetic Korean audio-classification corpora with espeak-ng: keyword spotting and word mixtures.

    python tools/make_kws_corpus.py --task kws --out corpora/kws          # Speech Commands style
    python tools/make_kws_corpus.py --task mixture --out corpora/mix      # DACON overlapped-speech style

Synthesis, voices ("speakers"), their train/test split and the degradations
(reverberation, noise, level) come from tools/synthesis.py; this file only plans
what is said and writes the classification layouts. Test voices never occur in train.

--task kws (12 classes: 10 keywords + silence + unknown; score: accuracy)
  OUT/train/audio/<keyword>/<voice>_nohash_<n>.wav   yes(예) no(아니오) up(위) down(아래) left(왼쪽)
                                                     right(오른쪽) on(켜) off(꺼) stop(멈춰) go(가)
  OUT/train/audio/<other word>/...                   words that are not keywords (-> unknown)
  OUT/train/audio/_background_noise_/*.wav           long noise recordings (-> silence pieces)
  OUT/test/test_data/clip_000000.wav ...             keywords, other words and noise-only clips
  OUT/test/test_label                                CSV filename,label
--task mixture (2-3 overlapped keywords; label: each class's share of the energy; score: KL)
  OUT/train/train_data/mix_000000.wav + OUT/train/train_label   CSV filename,yes,no,...,go
  OUT/test/test_data/test_000000.wav  + OUT/test/test_label
Both: OUT/data_loader.py and OUT/evaluation.py (the dataset owner's scripts, from
tools/classification_loader.py and tools/classification_eval.py), OUT/corpus_info.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthesis import (NOISE_COLORS, SAMPLE_RATE, EspeakMissing, RenderOptions, Utterance,  # noqa: E402
                       available_voices, check_espeak, colored_noise, render, speaker_style, split_voices,
                       to_int16, write_csv)

KEYWORDS = {"yes": "예", "no": "아니오", "up": "위", "down": "아래", "left": "왼쪽",
            "right": "오른쪽", "on": "켜", "off": "꺼", "stop": "멈춰", "go": "가"}
OTHER_WORDS = {"apple": "사과", "sea": "바다", "school": "학교", "tree": "나무", "sky": "하늘",
               "chair": "의자", "cat": "고양이", "dog": "강아지", "desk": "책상", "milk": "우유",
               "clock": "시계", "cloud": "구름"}
HERE = Path(__file__).resolve().parent


@dataclass
class ClassOptions:
    task: str                      # 'kws' or 'mixture'
    out: Path
    seed: int = 1
    per_voice: int = 2             # kws: training takes of each keyword per train voice
    test_per_voice: int = 1        # kws: test takes of each keyword per test voice
    background_files: int = 6      # kws: noise recordings in _background_noise_
    background_seconds: float = 20.0
    train_mixtures: int = 2000     # mixture: clips
    test_mixtures: int = 300
    clip_seconds: float = 1.0      # mixture: clip length
    test_voice_share: float = 0.2
    max_voices: int = 0            # >0: only this many train voices (and a quarter as many test voices)
    jobs: int = 2
    force: bool = False

    def render_options(self, noise_prob: float) -> RenderOptions:
        """The degradation settings for one word (short silences: clips are ~1 s)."""
        return RenderOptions(noise_prob=noise_prob, snr_min=5.0, snr_max=30.0, reverb=0.3, silence_max=0.2,
                             speed_min=130, speed_max=200)


def parse_args(argv=None) -> ClassOptions:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=["kws", "mixture"], required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-voice", type=int, default=ClassOptions.per_voice)
    p.add_argument("--test-per-voice", type=int, default=ClassOptions.test_per_voice)
    p.add_argument("--background-files", type=int, default=ClassOptions.background_files)
    p.add_argument("--background-seconds", type=float, default=ClassOptions.background_seconds)
    p.add_argument("--train-mixtures", type=int, default=ClassOptions.train_mixtures)
    p.add_argument("--test-mixtures", type=int, default=ClassOptions.test_mixtures)
    p.add_argument("--test-voice-share", type=float, default=ClassOptions.test_voice_share)
    p.add_argument("--max-voices", type=int, default=0, help="use only N train voices (N/4 test voices): tiny corpora")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    return ClassOptions(task=a.task, out=a.out, seed=a.seed, per_voice=a.per_voice, test_per_voice=a.test_per_voice,
                        background_files=a.background_files,
                        background_seconds=a.background_seconds, train_mixtures=a.train_mixtures,
                        test_mixtures=a.test_mixtures, test_voice_share=a.test_voice_share,
                        max_voices=a.max_voices, jobs=a.jobs,
                        force=a.force)


def word_take(split: str, index: int, word: str, label: str, voice: str, rng, opt: ClassOptions) -> Utterance:
    """One spoken word by `voice`, at that speaker's usual speed and pitch, varied a little."""
    speed, pitch = speaker_style(voice, opt.render_options(0.0))
    return Utterance(split=split, index=index, text=word, label=label, sentence_id=label, voice=voice,
                     speed=int(speed + rng.uniform(-15, 15)), pitch=int(np.clip(pitch + rng.uniform(-10, 10), 0, 99)),
                     word_gap=0, seed=[opt.seed, {"train": 0, "test": 1}[split], index])


def render_all(takes: list, render_opt: RenderOptions, opt: ClassOptions):
    """(take, int16 audio) for every take, in order, synthesised by `opt.jobs` processes."""
    check_espeak()
    with multiprocessing.get_context("fork").Pool(max(1, opt.jobs)) as pool:
        for utt, audio, _ in pool.imap(render, [(t, render_opt) for t in takes], chunksize=8):
            yield utt, audio


def noise_clip(seconds: float, rng) -> np.ndarray:
    """Coloured noise with a slowly varying level: a stand-in for room tone, fans, traffic."""
    n = int(seconds * SAMPLE_RATE)
    color = list(NOISE_COLORS)[rng.integers(len(NOISE_COLORS))]
    envelope = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 2) * np.arange(n) / SAMPLE_RATE + rng.uniform(0, 6))
    return colored_noise(n, NOISE_COLORS[color], rng) * envelope * 10 ** (rng.uniform(-45, -20) / 20)


def write_wav(path: Path, audio: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, SAMPLE_RATE, subtype="PCM_16")


def generate_kws(opt: ClassOptions, train_voices: list, test_voices: list) -> dict:
    rng = np.random.default_rng(opt.seed)
    audio_dir, test_dir = opt.out / "train" / "audio", opt.out / "test" / "test_data"
    others = list(OTHER_WORDS)
    takes, names = [], []
    # Each voice says every keyword `per_voice` times and 2 x `per_voice` other words (test: `test_per_voice`
    # of each), so `unknown` is about as common as two keywords, not as all the other words together.
    for voice in train_voices:
        chosen = rng.choice(others, size=min(len(others), 2 * opt.per_voice), replace=False)
        for folder in list(KEYWORDS) + list(chosen):
            for r in range(opt.per_voice if folder in KEYWORDS else 1):
                takes.append(word_take("train", len(takes), {**KEYWORDS, **OTHER_WORDS}[folder], folder, voice, rng, opt))
                names.append(audio_dir / folder / f"{voice}_nohash_{r}.wav")
    test_labels = []
    for voice in test_voices:
        chosen = rng.choice(others, size=min(len(others), opt.test_per_voice), replace=False)
        for folder in list(KEYWORDS) * opt.test_per_voice + list(chosen):
            takes.append(word_take("test", len(takes), {**KEYWORDS, **OTHER_WORDS}[folder], folder, voice, rng, opt))
            test_labels.append(folder if folder in KEYWORDS else "unknown")
    n_silence = max(1, len(test_labels) // 11)  # about one clip in twelve, as in Speech Commands' test set
    order = rng.permutation(len(test_labels) + n_silence)  # test clips in random order: names say nothing
    test_names = [test_dir / f"clip_{order[i]:06d}.wav" for i in range(len(test_labels) + n_silence)]
    names += test_names[: len(test_labels)]
    for utt, audio in render_all(takes, opt.render_options(noise_prob=0.8), opt):
        write_wav(names[utt.index], audio)
    for k, path in enumerate(test_names[len(test_labels):]):
        write_wav(path, to_int16(noise_clip(1.0, rng), rng))
    test_labels += ["silence"] * n_silence
    for k in range(opt.background_files):
        write_wav(audio_dir / "_background_noise_" / f"noise_{k}.wav",
                  to_int16(noise_clip(opt.background_seconds, rng), rng))
    write_csv(opt.out / "test" / "test_label", sorted((p.name, lab) for p, lab in zip(test_names, test_labels)),
              ["filename", "label"])
    return {"classes": list(KEYWORDS) + ["silence", "unknown"], "train_clips": len(takes) - len(test_labels) + n_silence,
            "test_clips": len(test_labels)}


def generate_mixture(opt: ClassOptions, train_voices: list, test_voices: list) -> dict:
    """Each clip: 2-3 different keywords said at once by different voices, with random energy shares."""
    rng = np.random.default_rng(opt.seed)
    classes, n = list(KEYWORDS), int(opt.clip_seconds * SAMPLE_RATE)
    plans, takes = [], []  # plan: (split, name, class indices, weights, first take)
    for split, count, voices in (("train", opt.train_mixtures, train_voices), ("test", opt.test_mixtures, test_voices)):
        for m in range(count):
            k = int(rng.integers(2, 4))
            chosen = rng.choice(len(classes), size=k, replace=False)
            weights = rng.dirichlet(np.ones(k))
            plans.append((split, f"{'mix' if split == 'train' else 'test'}_{m:06d}.wav", chosen, weights, len(takes)))
            for c in chosen:
                voice = voices[rng.integers(len(voices))]
                takes.append(word_take(split, len(takes), KEYWORDS[classes[c]], classes[c], voice, rng, opt))
    rendered = [None] * len(takes)
    for utt, audio in render_all(takes, opt.render_options(noise_prob=0.0), opt):
        rendered[utt.index] = audio.astype(np.float64) / 32768
    rows = {"train": [], "test": []}
    for split, name, chosen, weights, first in plans:
        mix = np.zeros(n)
        for j, w in enumerate(weights):
            word = rendered[first + j][:n]
            start = int(rng.integers(0, n - len(word) + 1))
            mix[start:start + len(word)] += word * np.sqrt(w) / (np.sqrt(np.mean(word ** 2)) + 1e-9)
        mix += colored_noise(n, 1.0, rng) * np.sqrt(np.mean(mix ** 2) / 10 ** (rng.uniform(15, 30) / 10))
        mix *= 10 ** (rng.uniform(-12, -3) / 20) / (np.abs(mix).max() + 1e-9)
        write_wav(opt.out / split / f"{split}_data" / name, to_int16(mix, rng))
        probs = np.zeros(len(classes))
        probs[chosen] = weights
        rows[split].append([name] + [f"{p:.6f}" for p in probs])
    for split in rows:
        write_csv(opt.out / split / f"{split}_label", rows[split], ["filename"] + classes)
    return {"classes": classes, "train_clips": len(rows["train"]), "test_clips": len(rows["test"])}


def write_owner_scripts(opt: ClassOptions):
    """The dataset owner's data_loader.py and evaluation.py (accuracy for kws, KL for mixtures)."""
    shutil.copyfile(HERE / "classification_loader.py", opt.out / "data_loader.py")
    evaluation = (HERE / "classification_eval.py").read_text(encoding="utf-8")
    if opt.task == "mixture":
        declared = '\nMETRIC = "ACCURACY"\nHIGHER_IS_BETTER = True\n'
        assert declared in evaluation, "tools/classification_eval.py no longer declares its metric as expected"
        evaluation = evaluation.replace(declared, '\nMETRIC = "KL"\nHIGHER_IS_BETTER = False\n', 1)
    (opt.out / "evaluation.py").write_text(evaluation, encoding="utf-8")


def generate(opt: ClassOptions) -> dict:
    if opt.out.exists() and any(opt.out.iterdir()):
        if not opt.force:
            raise SystemExit(f"error: {opt.out} is not empty; use --force to replace it")
        shutil.rmtree(opt.out)
    opt.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    train_voices, test_voices = split_voices(available_voices(), opt.test_voice_share)
    if opt.max_voices:
        train_voices, test_voices = train_voices[:opt.max_voices], test_voices[:max(1, opt.max_voices // 4)]
    made = (generate_kws if opt.task == "kws" else generate_mixture)(opt, train_voices, test_voices)
    write_owner_scripts(opt)
    summary = {"task": opt.task, "seed": opt.seed, **made, "train_voices": train_voices, "test_voices": test_voices,
               "seconds_taken": round(time.time() - start, 1)}
    (opt.out / "corpus_info.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n",
                                              encoding="utf-8")
    return summary


def main(argv=None):
    opt = parse_args(argv)
    try:
        s = generate(opt)
    except EspeakMissing as e:
        raise SystemExit(f"error: {e}")
    print(f"wrote a {opt.task} corpus to {opt.out}: {s['train_clips']} train / {s['test_clips']} test clips, "
          f"{len(s['classes'])} classes, {len(s['train_voices'])} train / {len(s['test_voices'])} test voices, "
          f"in {s['seconds_taken']:.1f} s")


if __name__ == "__main__":
    main()
