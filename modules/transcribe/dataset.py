"""Utterances as tensors: the dataset the training and validation loaders read, and its collate."""
import warnings

import torch

from ..audio import AudioError, load_audio


class SpeechDataset(torch.utils.data.Dataset):
    """(index, waveform, unit ids) triples, or (index, features, unit ids) with a FeatureCache;
    an item whose audio fails to load comes back as None."""

    def __init__(self, utterances: list, tokenizer, trim_db: float = 0.0, cache=None):
        self.utterances, self.trim_db, self.cache = utterances, trim_db, cache
        self.targets = [torch.tensor(tokenizer.encode(u.text), dtype=torch.long) for u in utterances]

    def __len__(self):
        return len(self.utterances)

    def __getitem__(self, i):
        path = self.utterances[i].path
        try:
            if self.cache is not None:
                return i, self.cache.features(path), self.targets[i]
            return i, torch.from_numpy(load_audio(path, trim_db=self.trim_db)), self.targets[i]
        except AudioError as e:
            warnings.warn(f"{e}; skipped")
            return None


def collate(items):
    """Pad (index, waveform or features, ids) items into a batch, dropping items that failed to load.
    Waveforms give 'waves'/'wave_lengths'; (T, n_mels) features give 'feats'/'feat_lengths'."""
    items = [it for it in items if it is not None]
    if not items:
        return None
    indices, signals, targets = zip(*items)
    lengths = torch.tensor([len(x) for x in signals])
    padded = torch.zeros((len(signals), int(lengths.max())) + tuple(signals[0].shape[1:]))
    for i, x in enumerate(signals):
        padded[i, : len(x)] = x
    batch = {
        "indices": list(indices),
        "targets": torch.cat(targets),
        "target_lengths": torch.tensor([len(t) for t in targets]),
    }
    if signals[0].dim() == 2:
        batch.update(feats=padded, feat_lengths=lengths)
    else:
        batch.update(waves=padded, wave_lengths=lengths)
    return batch


