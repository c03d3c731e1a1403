"""Reading audio files into 16 kHz mono float32 waveforms.

Competitions ship headerless 16 kHz int16 PCM (2022), RIFF WAV with extra chunks
(2019), and participants bring WAV/FLAC at other rates, widths and channel counts.
Everything goes through `load_audio`, which raises `AudioError` with a message
naming the file when it cannot give a usable waveform; `usable_duration` is the one
check that a listed file can be trained on, and `list_audio_files` the one rule for
which files of a folder are inputs.
"""
import os
import stat
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


# Names the 2022 competitions give headerless PCM (none, or these suffixes): sized by stat alone.
HEADERLESS_SUFFIXES = ("", ".pcm", ".raw")
_SNIFF_SAMPLE = 32  # headerless-named files whose first bytes are checked before trusting the names


def usable_durations(paths: list) -> tuple:
    """`usable_duration` of every path, as ((N,) float64 durations, NaN where unusable;
    {index: why not} for those), with one stat per file.

    Files named as headerless PCM (HEADERLESS_SUFFIXES) are sized from the stat; only the
    others are opened for their header. For 600,000 files this is one system call each instead
    of five (isfile, open, read, close, getsize), which matters most on network storage. The
    first files named as PCM are still sniffed: if any holds a container (a WAV without its
    extension), every file is read as `usable_duration` reads it.
    """
    durations, reasons = np.full(len(paths), np.nan), {}
    headerless = [_named_headerless(p) for p in paths]
    sample = [p for p, h in zip(paths, headerless) if h][:_SNIFF_SAMPLE]
    if any(_has_container_header(p) for p in sample):
        headerless = [False] * len(paths)
    for i, (path, by_size) in enumerate(zip(paths, headerless)):
        duration, reason = _pcm_duration_from_stat(path) if by_size else usable_duration(path)
        if reason:
            reasons[i] = reason
        else:
            durations[i] = duration
    return durations, reasons


def _pcm_duration_from_stat(path: str):
    """What usable_duration says of a headerless PCM file, from its stat alone."""
    try:
        st = os.stat(path)
    except OSError:
        return None, "label row without audio file"
    if not stat.S_ISREG(st.st_mode):
        return None, "label row without audio file"
    if st.st_size // 2 == 0:
        return None, "empty audio"
    return st.st_size // 2 / SAMPLE_RATE, None


def _named_headerless(path: str) -> bool:
    name = path[path.rfind(os.sep) + 1:]
    return "." not in name or os.path.splitext(name)[1].lower() in HEADERLESS_SUFFIXES


def _has_container_header(path: str) -> bool:
    try:
        return not is_headerless_pcm(path)
    except OSError:
        return False


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
