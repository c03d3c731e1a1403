"""On-disk cache of per-utterance log-mel features, so later epochs and sessions skip the STFT.

The cache stores exactly what `LogMelFilterbank` (the one feature implementation)
returns for a single utterance, already normalised per utterance; SpecAugment is
applied afterwards by the recognizer, as for features computed on the fly. An entry
is keyed by the file's path, size and mtime, the FeatureConfig and the kit version,
so a changed file or setting never reads a stale entry. Entries are float16 .npy.
"""
import hashlib
import json
import os
from dataclasses import asdict

import numpy as np
import torch

from .. import __version__
from ..audio import load_audio
from ..features import FeatureConfig, LogMelFilterbank

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "korean_asr_kit", "features")


def cache_dir_from_option(option: str):
    """--feature_cache: 'off' (or '') -> None, 'on' -> the default folder, anything else -> that folder."""
    if option in (None, "", "off"):
        return None
    return DEFAULT_CACHE_DIR if option == "on" else option


class FeatureCache:
    def __init__(self, folder: str, config: FeatureConfig):
        self.folder, self.config = folder, config
        self.featurizer = LogMelFilterbank(config)  # CPU copy: runs in DataLoader workers
        self._settings = json.dumps(asdict(config), sort_keys=True) + __version__
        os.makedirs(folder, exist_ok=True)

    def _entry(self, path: str) -> str:
        st = os.stat(path)
        key = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{self._settings}"
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
        return os.path.join(self.folder, digest[:2], digest + ".npy")

    def features(self, path: str) -> torch.Tensor:
        """(T, n_mels) float32 features of `path`, from the cache or computed and stored.
        Raises AudioError like `load_audio` for a file that cannot be read."""
        entry = self._entry(path)
        try:
            return torch.from_numpy(np.load(entry).astype(np.float32))
        except (OSError, ValueError):
            pass  # missing or damaged entry: compute it again
        wave = torch.from_numpy(load_audio(path, self.config.sample_rate, self.config.trim_db))
        if len(wave) < self.config.n_fft:  # too short for one STFT frame: pad with silence
            wave = torch.nn.functional.pad(wave, (0, self.config.n_fft - len(wave)))
        feats, lengths = self.featurizer(wave[None], torch.tensor([len(wave)]))
        feats = feats[0, : int(lengths[0])].half()  # what the entry holds, so epoch 1 sees what epoch 2 does
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        tmp = f"{entry}.tmp-{os.getpid()}.npy"
        np.save(tmp, feats.numpy())
        os.replace(tmp, entry)  # atomic: parallel workers never read half an entry
        return feats.float()
