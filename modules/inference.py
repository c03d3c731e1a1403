"""Batched transcription of files and folders, the way a submit calls `infer`."""
import os
import warnings

import torch
from tqdm import tqdm

from .audio import AudioError, audio_duration, load_audio
from .data import DurationBatchSampler


class _AudioFiles(torch.utils.data.Dataset):
    """Waveforms of a list of files; a file that cannot be read comes back as None."""

    def __init__(self, paths, min_samples: int, trim_db: float = 0.0):
        self.paths, self.min_samples, self.trim_db = paths, min_samples, trim_db

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            wave = load_audio(self.paths[i], trim_db=self.trim_db)
        except AudioError as e:
            warnings.warn(f"{e}; its transcript will be empty")
            return i, None
        if len(wave) < self.min_samples:  # too short for one STFT frame: pad with silence
            wave = torch.nn.functional.pad(torch.from_numpy(wave), (0, self.min_samples - len(wave)))
            return i, wave
        return i, torch.from_numpy(wave)


def _collate(items):
    return items


def transcribe_files(recognizer, paths: list, batch_seconds: float = 300.0, num_workers: int = 0,
                     progress: bool = True) -> list:
    """Transcripts of `paths`, in the same order; unreadable files get ''."""
    durations = []
    for p in paths:
        try:
            durations.append(audio_duration(p))
        except AudioError:
            durations.append(0.0)  # reported when loading fails below
    sampler = DurationBatchSampler(durations, batch_seconds, shuffle=False)
    loader = torch.utils.data.DataLoader(_AudioFiles(paths, recognizer.feature_config.n_fft,
                                                     recognizer.feature_config.trim_db),
                                         batch_sampler=sampler, collate_fn=_collate, num_workers=num_workers)
    texts = [""] * len(paths)
    with tqdm(total=len(paths), desc="infer", unit="utt", disable=None if progress else True) as bar:
        for items in loader:
            good = [(i, w) for i, w in items if w is not None]
            if good:
                lengths = torch.tensor([len(w) for _, w in good])
                waves = torch.zeros(len(good), int(lengths.max()))
                for row, (_, w) in enumerate(good):
                    waves[row, : len(w)] = w
                for (i, _), text in zip(good, recognizer.transcribe_batch(waves, lengths)):
                    texts[i] = text
            bar.update(len(items))
    return texts


def transcribe_folder(recognizer, folder: str, **options) -> list:
    """`[{'filename', 'text'}, ...]` sorted by filename, one record per file in `folder`."""
    names = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))
    texts = transcribe_files(recognizer, [os.path.join(folder, n) for n in names], **options)
    return [{"filename": n, "text": t} for n, t in zip(names, texts)]
