"""A stand-in for the one torchaudio function the official 2022/2023 baselines call,
`torchaudio.compliance.kaldi.fbank`, so they run on a machine without torchaudio (the kit itself
never uses torchaudio). Put tools/torchaudio_standin on PYTHONPATH; see docs/platforms.md.
Same shapes and meaning as torchaudio's (log mel energies, Kaldi framing), not bit-identical values.
"""
from . import compliance  # noqa: F401
