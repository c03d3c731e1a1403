"""Reading audio files into 16 kHz mono float32 waveforms.

Competitions ship headerless 16 kHz int16 PCM (2022), RIFF WAV with extra chunks
(2019), and participants bring WAV/FLAC at other rates, widths and channel counts.
Everything goes through `load_audio`, which raises `AudioError` with a message
naming the file when it cannot give a usable waveform; `usable_duration` is the one
check that a listed file can be trained on, and `list_audio_files` the one rule for
which files of a folder are inputs.
"""
import os
import warnings

import numpy as np
import soundfile

SAMPLE_RATE = 16000

# Magic bytes of the containers soundfile reads; anything else is taken as raw PCM.
_CONTAINER_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM")


class AudioError(Exception):
    """An audio file that cannot be turned into a waveform."""


def is_headerless_pcm(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) not in _CONTAINER_MAGIC


def audio_duration(path: str) -> float:
    """Duration in seconds, read from the header (or the size of raw PCM) without decoding."""
    try:
        if is_headerless_pcm(path):
            return os.path.getsize(path) // 2 / SAMPLE_RATE
        info = soundfile.info(path)
        return info.frames / info.samplerate
    except (OSError, RuntimeError, soundfile.LibsndfileError) as e:
        raise AudioError(f"{path}: cannot read audio header ({e})") from e


def usable_duration(path: str):
    """(duration in seconds, None) for a file that can be used, else (None, why not), read from the
    header only. Both tasks check their training files with this before training starts."""
    if not os.path.isfile(path):
        return None, "label row without audio file"
    try:
        duration = audio_duration(path)
    except AudioError as e:
        return None, str(e).removeprefix(f"{path}: ")
    if duration <= 0:
        return None, "empty audio"
    return duration, None


def list_audio_files(folder: str) -> list:
    """Names of the input files in `folder`, sorted: every regular file but hidden ones (`.DS_Store`,
    editor swap files), which NSML does not stage either. `infer` returns one record per name."""
    return sorted(f for f in os.listdir(folder)
                  if not f.startswith(".") and os.path.isfile(os.path.join(folder, f)))


def load_audio(path: str, sample_rate: int = SAMPLE_RATE, trim_db: float = 0.0) -> np.ndarray:
    """Return the file's samples as float32 in [-1, 1], mono, at `sample_rate`; with `trim_db` > 0,
    leading and trailing audio quieter than `trim_db` below the peak is cut (`trim_silence`)."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise AudioError(f"{path}: cannot open ({e.strerror})") from e
    if size == 0:
        raise AudioError(f"{path}: empty file")

    if is_headerless_pcm(path):
        if size % 2:
            warnings.warn(f"{path}: odd byte count {size} for int16 PCM; last byte ignored")
        samples = np.fromfile(path, dtype="<i2", count=size // 2).astype(np.float32) / 32768.0
        file_rate = SAMPLE_RATE  # the 2022 competitions define raw PCM as 16 kHz
    else:
        try:
            samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as e:
            raise AudioError(f"{path}: not a readable audio file ({e})") from e
        samples = samples.mean(axis=1)  # mix stereo down

    if samples.size == 0:
        raise AudioError(f"{path}: no samples")
    if file_rate != sample_rate:
        import librosa  # only needed for the rare resampled file

        samples = librosa.resample(samples, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: samples contain NaN or infinity")
    if trim_db > 0:
        samples = trim_silence(samples, trim_db)
    return np.ascontiguousarray(samples, dtype=np.float32)


def trim_silence(samples: np.ndarray, top_db: float) -> np.ndarray:
    """Cut leading/trailing audio more than `top_db` dB below the peak (librosa.effects.trim).

    Training and inference both call this through `load_audio(trim_db=...)`, with the
    value saved in the checkpoint's FeatureConfig, so both see the same audio.
    """
    import librosa

    trimmed, _ = librosa.effects.trim(samples, top_db=top_db, frame_length=400, hop_length=160)
    return trimmed if trimmed.size >= 400 else samples  # all "silence": keep the original
