"""Utterances as tensors: the dataset the training and validation loaders read, and its collate."""
import warnings

import numpy as np
import torch

from ..audio import AudioError, load_audio


class PackedStrings:
    """A list of strings stored as one UTF-8 buffer and offsets: `packed[i]` is the i-th string.

    Not one Python object per string, so that forked DataLoader workers share it: reading a
    Python object writes its reference count, which copies the memory page it lives on into
    the worker (PyTorch issue 13246); reading a NumPy buffer copies nothing."""

    def __init__(self, strings: list):
        encoded = [s.encode("utf-8") for s in strings]
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self.offsets[1:])
        self.buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, i) -> str:
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")


class Targets:
    """The unit ids of many transcripts as one flat array (the smallest integer type that holds
    them) and offsets: `targets[i]` is the i-th transcript's ids as a LongTensor, `lengths` their counts."""

    def __init__(self, ids: np.ndarray, lengths: np.ndarray):
        self.ids = ids
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])

    @classmethod
    def encode(cls, tokenizer, texts: list) -> "Targets":
        ids, lengths = tokenizer.encode_batch(texts)
        return cls(ids, lengths)

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i) -> torch.Tensor:
        return torch.from_numpy(self.ids[self.offsets[i]:self.offsets[i + 1]].astype(np.int64))

    def select(self, indices, copies: int = 1) -> "Targets":
        """The targets at `indices` (in that order), as a new Targets; `copies` > 1 repeats the lot."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        if len(indices) == 0 or np.all(np.diff(indices) > 0):
            # increasing (which utterances to keep): a mask over the ids, one byte per id
            keep = np.zeros(len(self), dtype=bool)
            keep[indices] = True
            ids = self.ids[np.repeat(keep, self.lengths)]
        else:  # positions of every id taken: each transcript's offset + 0..length-1
            starts = np.repeat(self.offsets[indices] - np.cumsum(lengths) + lengths, lengths)
            ids = self.ids[starts + np.arange(int(lengths.sum()))]
        return Targets(np.tile(ids, copies), np.tile(lengths, copies))


class SpeechDataset(torch.utils.data.Dataset):
    """(index, waveform, unit ids) triples, or (index, features, unit ids) with a FeatureCache;
    an item whose audio fails to load comes back as None.

    Paths and unit ids are kept as flat arrays (PackedStrings, Targets), not one Python object
    per utterance, so that forked loader workers share them instead of copying them page by page.
    `targets`: the utterances' transcripts already encoded (else they are encoded here)."""

    def __init__(self, utterances: list, tokenizer, trim_db: float = 0.0, cache=None, targets: Targets = None):
        self.paths = PackedStrings([u.path for u in utterances])
        self.targets = targets if targets is not None else Targets.encode(tokenizer, [u.text for u in utterances])
        if len(self.targets) != len(self.paths):
            raise ValueError(f"{len(self.targets)} targets for {len(self.paths)} utterances")
        self.trim_db, self.cache = trim_db, cache

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        path = self.paths[i]
        try:
            if self.cache is not None:
                return i, self.cache.features(path), self.targets[i]
            return i, torch.from_numpy(load_audio(path, trim_db=self.trim_db)), self.targets[i]
        except AudioError as e:  # load_audio names the file, an I/O or permission error included
            warnings.warn(f"{e}; skipped")
            return None
        except OSError as e:  # the feature cache's own files (a full or failing disk): this item only
            warnings.warn(f"{path}: cannot read ({e}); skipped")
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
