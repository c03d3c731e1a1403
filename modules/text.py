"""Text normalisation and the output units the model predicts.

A tokenizer is built from the training transcripts, saved inside every
checkpoint as plain lists and strings (`state_dict`), and rebuilt from there at
inference, so inference never needs the training data.
"""
import re
import warnings
from dataclasses import dataclass

BLANK = "<blank>"  # CTC blank, always id 0
UNK = "<unk>"      # stands for a character never seen when the vocabulary was built


@dataclass
class TextConfig:
    keep_spaces: bool = True  # False: train without spaces (the 2019 scorer ignores them)


def normalize_text(text: str, config: TextConfig = TextConfig()) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if not config.keep_spaces:
        text = text.replace(" ", "")
    return text


class CharTokenizer:
    """One unit per character; every character of the training labels gets an id."""

    kind = "char"

    def __init__(self, units):
        self.units = list(units)
        self.index = {u: i for i, u in enumerate(self.units)}
        self._warned = set()

    @classmethod
    def build(cls, texts):
        chars = sorted({c for t in texts for c in t})
        return cls([BLANK, UNK] + chars)

    def __len__(self):
        return len(self.units)

    def encode(self, text: str) -> list:
        ids = []
        for c in text:
            i = self.index.get(c)
            if i is None:
                if c not in self._warned:
                    self._warned.add(c)
                    warnings.warn(f"character {c!r} is not in the vocabulary; encoded as {UNK}")
                i = self.index[UNK]
            ids.append(i)
        return ids

    def decode(self, ids) -> str:
        return "".join(self.units[i] for i in ids if i > 1)  # skip blank and unk

    def state_dict(self) -> dict:
        return {"kind": self.kind, "units": self.units}


def build_tokenizer(kind: str, texts) -> CharTokenizer:
    if kind == "char":
        return CharTokenizer.build(texts)
    raise ValueError(f"unknown text unit {kind!r}; choose from: char")


def tokenizer_from_state(state: dict) -> CharTokenizer:
    if state["kind"] == "char":
        return CharTokenizer(state["units"])
    raise ValueError(f"checkpoint uses unknown text unit {state['kind']!r}")
