"""Batched transcription of files and folders, the way a submit calls `infer`."""
import os
import time
import warnings
from dataclasses import replace

import torch
from tqdm import tqdm

from ..audio import AudioError, audio_duration, list_audio_files, load_audio
from ..samplers import DurationBatchSampler


class _AudioFiles(torch.utils.data.Dataset):
    """Waveforms of a list of files; a file that cannot be read comes back as None."""

    def __init__(self, paths, min_samples: int, trim_db: float = 0.0):
        self.paths, self.min_samples, self.trim_db = paths, min_samples, trim_db

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            wave = load_audio(self.paths[i], trim_db=self.trim_db)
        except AudioError as e:  # load_audio names the file, an I/O or permission error included
            warnings.warn(f"{e}; its transcript will be empty")
            return i, None
        if len(wave) < self.min_samples:  # too short for one STFT frame: pad with silence
            wave = torch.nn.functional.pad(torch.from_numpy(wave), (0, self.min_samples - len(wave)))
            return i, wave
        return i, torch.from_numpy(wave)


def _collate(items):
    return items


def transcribe_files(recognizer, paths: list, batch_seconds: float = None, num_workers: int = 0,
                     progress: bool = True, budget_s: float = None) -> list:
    """Transcripts of `paths`, in the same order; unreadable files get ''.

    Batches hold `batch_seconds` of padded audio (default: the checkpoint's decoder config; 0 = one
    file at a time). With a decoder slower than greedy, the total time is projected from the audio
    done so far; if it would pass `budget_s` (default: the checkpoint's decoder config; the submit
    limit is 3600 s), the rest is decoded greedily.
    """
    durations = []
    for p in paths:
        try:
            durations.append(audio_duration(p))
        except AudioError:
            durations.append(0.0)  # reported when loading fails below
    if batch_seconds is None:
        batch_seconds = recognizer.decoder_config.batch_seconds
    sampler = DurationBatchSampler(durations, batch_seconds, shuffle=False)
    loader = torch.utils.data.DataLoader(_AudioFiles(paths, recognizer.feature_config.n_fft,
                                                     recognizer.feature_config.trim_db),
                                         batch_sampler=sampler, collate_fn=_collate, num_workers=num_workers)
    texts = [""] * len(paths)
    decoder = recognizer.decoder_config
    budget_s = decoder.infer_budget_s if budget_s is None else budget_s
    total_audio, done_audio, start = max(sum(durations), 1e-9), 0.0, time.time()
    log_progress = ProgressLines(len(paths), start)
    with tqdm(total=len(paths), desc="infer", unit="utt", disable=None if progress else True) as bar:
        for batch_number, items in enumerate(loader):
            good = [(i, w) for i, w in items if w is not None]
            if good:
                lengths = torch.tensor([len(w) for _, w in good])
                waves = torch.zeros(len(good), int(lengths.max()))
                for row, (_, w) in enumerate(good):
                    waves[row, : len(w)] = w
                for (i, _), text in zip(good, recognizer.transcribe_batch(waves, lengths, decoder=decoder)):
                    texts[i] = text
            bar.update(len(items))
            if progress and bar.disable:  # no terminal (a submit's log): tqdm is off, plain lines instead
                log_progress(len(items))
            done_audio += sum(durations[i] for i, _ in items)
            if decoder.decoder != "greedy" and budget_s and batch_number >= 1:
                projected = (time.time() - start) * total_audio / max(done_audio, 1e-9)
                if projected > budget_s:
                    print(f"[infer] {decoder.decoder} decoding projects {projected:.0f} s for {len(paths)} files "
                          f"> budget {budget_s:.0f} s: decoding the rest greedily", flush=True)
                    decoder = replace(decoder, decoder="greedy")
    return texts


class ProgressLines:
    """A line `[infer] 120/1200 files (10%) ...` per 10% of the files or per minute, whichever comes first."""

    def __init__(self, total: int, start: float):
        self.total, self.start, self.done = total, start, 0
        self.next_tenth, self.last_line = 1, start

    def __call__(self, count: int):
        self.done += count
        now = time.time()
        if self.done * 10 < self.next_tenth * self.total and now - self.last_line < 60:
            return
        elapsed = now - self.start
        eta = elapsed / self.done * (self.total - self.done)
        print(f"[infer] {self.done}/{self.total} files ({100 * self.done / self.total:.0f}%), "
              f"{elapsed:.0f} s, eta {eta:.0f} s", flush=True)
        self.next_tenth, self.last_line = self.done * 10 // self.total + 1, now


def transcribe_folder(recognizer, folder: str, **options) -> list:
    """`[{'filename', 'text'}, ...]` sorted by filename, one record per file in `folder`."""
    names = list_audio_files(folder)
    texts = transcribe_files(recognizer, [os.path.join(folder, n) for n in names], **options)
    return [{"filename": n, "text": t} for n, t in zip(names, texts)]
