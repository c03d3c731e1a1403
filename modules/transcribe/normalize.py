"""Transcript normalisation: what Korean competition labels carry that is not speech.

Labels carry KsponSpeech noise tags (`o/ n/ u/ b/ l/`), dual transcriptions `(철자)/(발음)`,
and in 2022 masked personal data (`&name&`, `&tel-num&`, ...). `normalize_text` resolves the
annotation the same way for training labels and validation references; the output units
built from the result live in tokenizers.py, and a mask token is one unit everywhere.
"""
import re
import unicodedata
from dataclasses import dataclass


# 2022 masked personal data: each is spoken as something, so the model predicts it
# as one unit (one token whatever the unit type) and it is never split or stripped.
MASK_TOKENS = ("&name&", "&address&", "&tel-num&", "&card-num&", "&company-name&",
               "&social-security-num&", "&party-name&")
MASK_PATTERN = re.compile("(" + "|".join(re.escape(t) for t in MASK_TOKENS) + ")")

_DUAL = re.compile(r"\(([^()]*)\)\s*/\s*\(([^()]*)\)")    # (철자)/(발음)
_NOISE = re.compile(r"(?<![0-9A-Za-z])[onubl]/")           # o/ n/ u/ b/ l/ (KsponSpeech)
_FILLER = re.compile(r"(?<=[가-힣])/")                      # 어/ 음/: a filler word keeps its word, loses the mark


@dataclass
class TextConfig:
    keep_spaces: bool = True            # False: train without spaces (the 2019 scorer ignores them)
    remove_noise_tags: bool = True      # drop o/ n/ u/ b/ l/ and the filler mark of `어/`
    dual: str = "spelling"              # (철자)/(발음): keep the "spelling" or the "pronunciation" side
    punctuation: str = "keep"           # "keep" or "remove" (Unicode P* characters; masks are kept)


# Words of Hangul syllables, Latin letters and digits separated by single spaces: such a
# transcript (most of them) has no annotation, punctuation or stray space, and is NFC already.
_PLAIN = re.compile(r"[0-9A-Za-z\uac00-\ud7a3]+(?: [0-9A-Za-z\uac00-\ud7a3]+)*")


def normalize_text(text: str, config: TextConfig = TextConfig()) -> str:
    if config.dual not in ("spelling", "pronunciation"):
        raise ValueError(f"dual must be 'spelling' or 'pronunciation', not {config.dual!r}")
    if _PLAIN.fullmatch(text):  # nothing to normalise: one regex match instead of the passes below
        return text if config.keep_spaces else text.replace(" ", "")
    return _normalize(text, config)


def _normalize(text: str, config: TextConfig) -> str:
    side = 1 if config.dual == "spelling" else 2
    text = unicodedata.normalize("NFC", text)
    if "(" in text:
        text = _DUAL.sub(lambda m: m.group(side), text)
    # odd indices are mask tokens, left exactly as they are
    pieces = MASK_PATTERN.split(text) if "&" in text else [text]
    for i in range(0, len(pieces), 2):
        p = pieces[i]
        if config.remove_noise_tags:
            if "/" in p:
                p = _FILLER.sub("", _NOISE.sub(" ", p))
            p = p.replace("+", "").replace("*", "")  # Kspon repetition / unclear-word marks
        if config.punctuation == "remove":
            p = "".join(" " if unicodedata.category(c).startswith("P") else c for c in p)
        pieces[i] = p
    text = " ".join("".join(pieces).split())  # runs of whitespace -> one space, none at the ends
    if not config.keep_spaces:
        text = text.replace(" ", "")
    return text


def split_units(text: str) -> list:
    """Characters of `text`, with each mask token as one unit."""
    units = []
    for i, piece in enumerate(MASK_PATTERN.split(text)):
        units.extend([piece] if i % 2 else list(piece))
    return units
