"""Output units the model predicts: characters, Hangul jamo, or SentencePiece subwords.

A tokenizer is built from the (normalised) training transcripts, saved inside every
checkpoint as plain lists, strings, ints and bytes (`state_dict`, loadable with
torch.load(weights_only=True)) and rebuilt from there at inference, so inference
never needs the training data. Id 0 is always the CTC blank. Every tokenizer keeps
the 2022 mask tokens (`&name&`, ...) as single units, and every `decode` returns
ordinary NFC Korean text.
"""
import os
import tempfile
import unicodedata
import warnings

import numpy as np

from .normalize import MASK_PATTERN, MASK_TOKENS, split_units

BLANK = "<blank>"  # CTC blank, always id 0
UNK = "<unk>"      # stands for a unit never seen when the vocabulary was built


class CharTokenizer:
    """One unit per character (mask tokens whole); every unit of the training labels gets an id."""

    kind = "char"

    def __init__(self, units):
        self.units = list(units)
        self.index = {u: i for i, u in enumerate(self.units)}
        self._ids = {}  # character or mask token -> its ids: encode looks each up once
        self._warned = set()

    @classmethod
    def build(cls, texts, **_):
        return cls([BLANK, UNK] + sorted(cls.units_of(texts)))

    @classmethod
    def units_of(cls, texts) -> set:
        """{u for t in texts for u in cls.split(t)}, splitting each distinct character once."""
        chars, units = set(), set()
        for t in texts:
            if "&" in t:  # may hold mask tokens
                pieces = MASK_PATTERN.split(t)
                units.update(pieces[1::2])
                chars.update("".join(pieces[::2]))
            else:
                chars.update(t)
        for c in chars:
            units.update(cls.split(c))
        return units

    @staticmethod
    def split(text: str) -> list:
        return split_units(text)

    def __len__(self):
        return len(self.units)

    def encode(self, text: str) -> list:
        ids, known = [], self._ids
        for piece in split_units(text) if "&" in text else text:
            piece_ids = known.get(piece)
            if piece_ids is None:
                piece_ids = known[piece] = [self._unit_id(u) for u in self.split(piece)]
            ids += piece_ids
        return ids

    def encode_batch(self, texts: list, chunk: int = 50_000):
        """`encode` of every text as (one flat array of ids, (N,) lengths): C-speed `str.translate`
        with each character's ids as code points, in chunks that bound the memory it takes.
        The ids array has the smallest unsigned type that holds the vocabulary (uint8 for jamo)."""
        if len(self.units) > 0xD7FF:  # ids past the surrogate code points: no str round trip
            return _flatten([self.encode(t) for t in texts])
        wide = len(self.units) > 0xFF
        codec, dtype = ("utf-16-le", np.uint16) if wide else ("latin-1", np.uint8)
        table = _IdTable(self)
        ids, lengths = [], np.zeros(len(texts), dtype=np.int64)
        for start in range(0, len(texts), chunk):
            encoded = ["".join(map(chr, self.encode(t))) if "&" in t else t.translate(table)
                       for t in texts[start:start + chunk]]
            lengths[start:start + len(encoded)] = [len(e) for e in encoded]
            ids.append(np.frombuffer("".join(encoded).encode(codec), dtype=dtype))
        return (np.concatenate(ids) if ids else np.zeros(0, dtype)), lengths

    def _unit_id(self, unit: str) -> int:
        i = self.index.get(unit)
        if i is None:
            if unit not in self._warned:
                self._warned.add(unit)
                warnings.warn(f"unit {unit!r} is not in the vocabulary; encoded as {UNK}")
            i = self.index[UNK]
        return i

    def decode(self, ids) -> str:
        return "".join(self.units[i] for i in ids if i > 1)  # skip blank and unk

    def state_dict(self) -> dict:
        return {"kind": self.kind, "units": self.units}


class _IdTable(dict):
    """str.translate table: a character's code point -> its ids as a string of code points."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    def __missing__(self, code: int) -> str:
        self[code] = value = "".join(map(chr, self.tokenizer.encode(chr(code))))
        return value


def _flatten(id_lists: list):
    lengths = np.array([len(ids) for ids in id_lists], dtype=np.int64)
    flat = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


# Conjoining jamo blocks (what NFD gives for syllables U+AC00..U+D7A3).
_LEAD, _VOWEL, _TAIL = (0x1100, 0x1112), (0x1161, 0x1175), (0x11A8, 0x11C2)


class _Decomposed(dict):
    """str.translate table: a character's code point -> its NFD decomposition (Hangul: its jamo)."""

    def __missing__(self, code: int) -> str:
        self[code] = value = unicodedata.normalize("NFD", chr(code))
        return value


_JAMO = _Decomposed()


def _is_conjoining_jamo(c: str) -> bool:
    return any(lo <= ord(c) <= hi for lo, hi in (_LEAD, _VOWEL, _TAIL))


class JamoTokenizer(CharTokenizer):
    """Hangul syllables decomposed into jamo (19 leads, 21 vowels, 27 tails) for training.

    ~70 units instead of ~2,000 syllables, so rare syllables share what they are made
    of. `decode` recomposes syllables (NFC) and drops any jamo that does not form one,
    so the output is ordinary Korean text.
    """

    kind = "jamo"

    @staticmethod
    def split(text: str) -> list:
        if "&" not in text:  # no mask token: every character's jamo, at C speed
            return list(text.translate(_JAMO))
        units = []
        for u in split_units(text):
            units.extend([u] if len(u) > 1 else _JAMO[ord(u)])
        return units

    def decode(self, ids) -> str:
        text = unicodedata.normalize("NFC", super().decode(ids))
        return "".join(c for c in text if not _is_conjoining_jamo(c))


class SentencePieceTokenizer:
    """Subwords trained on the training labels with SentencePiece (unigram).

    Ids are SentencePiece ids + 1 so that 0 stays the CTC blank. Mask tokens are
    user-defined pieces, so never split. The checkpoint keeps the serialized model.
    """

    kind = "spm"

    def __init__(self, model_proto: bytes):
        import sentencepiece

        self.model_proto = bytes(model_proto)
        self.sp = sentencepiece.SentencePieceProcessor(model_proto=self.model_proto)

    @classmethod
    def build(cls, texts, vocab_size: int = 500, **_):
        import sentencepiece

        texts = [t for t in texts if t]
        with tempfile.TemporaryDirectory() as tmp:
            corpus = os.path.join(tmp, "labels.txt")
            with open(corpus, "w", encoding="utf-8") as f:
                f.write("\n".join(texts) + "\n")
            prefix = os.path.join(tmp, "spm")
            # hard_vocab_limit=False: a small label set yields fewer pieces rather than an error.
            sentencepiece.SentencePieceTrainer.train(
                input=corpus, model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
                character_coverage=1.0, hard_vocab_limit=False, user_defined_symbols=list(MASK_TOKENS),
                unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, split_digits=True, add_dummy_prefix=False,
                minloglevel=2,
                num_threads=1)
            with open(prefix + ".model", "rb") as f:
                return cls(f.read())

    def __len__(self):
        return self.sp.get_piece_size() + 1

    def encode(self, text: str) -> list:
        return [i + 1 for i in self.sp.encode(text, out_type=int)]

    def encode_batch(self, texts: list):
        """`encode` of every text as (one flat array of ids, (N,) lengths)."""
        flat, lengths = _flatten(self.sp.encode(list(texts), out_type=int))
        return flat + 1, lengths

    def decode(self, ids) -> str:
        # blank (0) and unk (1) carry no text
        return unicodedata.normalize("NFC", self.sp.decode([int(i) - 1 for i in ids if i > 1]))

    def state_dict(self) -> dict:
        return {"kind": self.kind, "model_proto": self.model_proto}


TOKENIZERS = {t.kind: t for t in (CharTokenizer, JamoTokenizer, SentencePieceTokenizer)}


def build_tokenizer(kind: str, texts, vocab_size: int = 500):
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown text unit {kind!r}; choose from: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind].build(list(texts), vocab_size=vocab_size)


def tokenizer_from_state(state: dict):
    kind = state["kind"]
    if kind == "spm":
        return SentencePieceTokenizer(state["model_proto"])
    if kind in TOKENIZERS:
        return TOKENIZERS[kind](state["units"])
    raise ValueError(f"checkpoint uses unknown text unit {kind!r}")
