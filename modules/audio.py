"""Reading audio files into 16 kHz mono float32 waveforms.

Competitions ship headerless 16 kHz int16 PCM (2022), RIFF WAV with extra chunks
(2019), and participants bring WAV/FLAC/MP3 at other rates, widths and channel counts.
Everything goes through `load_audio`, which raises `AudioError` with a message
naming the file when it cannot give a usable waveform (an I/O or permission error
included); `usable_duration` is the one check that a listed file can be trained on,
and `list_audio_files` the one rule for which files of a folder are inputs.

What a file holds is decided by its content (`_audio_kind`), never by its extension alone:
a container soundfile recognises (by magic bytes, or for files not named as headerless PCM by
asking soundfile) is read by soundfile; anything else is raw 16 kHz int16 PCM (with a warning
unless the name says so), except a file whose first bytes read as text, which no PCM recording
does, and one named as a compressed format (.mp3, .flac, ...): those are refused, naming the file.
"""
import codecs
import io
import os
import stat
import warnings

import numpy as np
import soundfile

SAMPLE_RATE = 16000

# Magic bytes of the containers soundfile reads: WAV (RIFF/RIFX), RF64, W64 ('riff' + GUID), FLAC, OGG,
# AIFF (FORM), AU ('.snd', big-endian), NIST SPHERE, CAF, MP3 with an ID3 tag. An MP3 without a tag starts
# with a frame-sync word that near-silent raw PCM also starts with, so it is only tried on files not named
# as headerless PCM (`_audio_kind`).
_CONTAINER_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"riff", b"fLaC", b"OggS", b"FORM", b".snd", b"NIST", b"caff", b"ID3")
_HEAD_BYTES = 4096  # what is sniffed: enough to tell text from PCM
# Names of compressed formats: such a file soundfile cannot read is damaged (or a format libsndfile
# lacks, such as AAC), never raw PCM, so it is refused rather than read as noise.
COMPRESSED_SUFFIXES = (".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".mp4", ".aac", ".wma", ".webm")
# A damaged header can claim any rate or length: 1 Hz resampled to 16 kHz is 16,000 times the samples,
# and a claimed length is allocated before reading. Rates and lengths outside these are refused.
_RATE_RANGE = (4000, 384000)
_MAX_FILE_SECONDS = 4 * 3600.0


class AudioError(Exception):
    """An audio file that cannot be turned into a waveform."""


class _AudioBytes(io.BytesIO):
    """A file's bytes for soundfile. A damaged header can make libsndfile seek before the start;
    BytesIO raises there, inside a C callback, which Python prints as "Exception ignored" noise:
    such a seek leaves the position as it is instead (libsndfile then fails cleanly)."""

    def seek(self, offset, whence=io.SEEK_SET):
        try:
            return super().seek(offset, whence)
        except ValueError:
            return self.tell()


def is_headerless_pcm(path: str) -> bool:
    """True when the file does not start with the magic bytes of a container soundfile reads."""
    with open(path, "rb") as f:
        return not f.read(4).startswith(_CONTAINER_MAGIC)


def _looks_like_text(head: bytes) -> bool:
    """True when `head` decodes as UTF-8 or CP949 to printable characters and line breaks only: a
    label file or a log saved as audio. Recorded int16 PCM always holds bytes no text has (NUL, 0xFF,
    control characters); a cut multi-byte character at the end of `head` is allowed."""
    if not head or b"\0" in head:
        return False
    for encoding in ("utf-8", "cp949"):
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        if all(c.isprintable() or c in "\t\r\n\ufeff" for c in text):
            return True
    return False


def _soundfile_reads(source) -> bool:
    try:
        soundfile.info(source)
        return True
    except (RuntimeError, soundfile.LibsndfileError):
        return False


def _audio_kind(path: str, head: bytes, source) -> str:
    """'container' (read by soundfile from `source`, the path or the file's bytes), 'pcm' (a file named
    as headerless PCM: the 2022 `idx_000000` names, .pcm, .raw) or 'unnamed pcm' (raw PCM under another
    name, e.g. .wav, read with a warning); AudioError for a file that is none of these: text, or a
    compressed format's name on bytes soundfile cannot read."""
    if head.startswith(_CONTAINER_MAGIC):
        return "container"
    headerless_name = _named_headerless(path)
    if not headerless_name and _soundfile_reads(source):  # e.g. an MP3 without an ID3 tag
        return "container"
    if _looks_like_text(head):
        raise AudioError(f"{path}: looks like text, not audio (no audio container soundfile reads, "
                         "and not raw PCM)")
    if path.lower().endswith(COMPRESSED_SUFFIXES):
        raise AudioError(f"{path}: named {os.path.splitext(path)[1]} but soundfile cannot read it (damaged, or a "
                         f"format libsndfile {soundfile.__libsndfile_version__} lacks)")
    return "pcm" if headerless_name else "unnamed pcm"


def audio_duration(path: str) -> float:
    """Duration in seconds, read from the header (or the size of raw PCM) without decoding."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
            size = os.fstat(f.fileno()).st_size
        if _audio_kind(path, head, path) != "container":
            return size // 2 / SAMPLE_RATE
        info = soundfile.info(path)
        _check_header(path, info.samplerate, info.frames)
        return info.frames / info.samplerate
    except (OSError, RuntimeError, soundfile.LibsndfileError) as e:
        raise AudioError(f"{path}: cannot read audio header ({_cause(e)})") from e


def _check_header(path: str, rate: int, frames: int) -> None:
    if not _RATE_RANGE[0] <= rate <= _RATE_RANGE[1]:
        raise AudioError(f"{path}: sample rate {rate} Hz in its header is outside {_RATE_RANGE[0]}-{_RATE_RANGE[1]} Hz")
    if frames > _MAX_FILE_SECONDS * rate:
        raise AudioError(f"{path}: its header claims {frames / rate:.0f} s of audio (over {_MAX_FILE_SECONDS:.0f} s)")


def _cause(error: Exception) -> str:
    """An exception as a short cause: 'Permission denied' rather than the errno tuple and path."""
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


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
    # One read of the whole file, decoded from memory: a permission or I/O error (network storage)
    # can only happen here, and becomes an AudioError naming the file, which every caller skips.
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise AudioError(f"{path}: cannot read ({_cause(e)})") from e
    if not data:
        raise AudioError(f"{path}: empty file")

    kind = _audio_kind(path, data[:_HEAD_BYTES], _AudioBytes(data))
    if kind != "container":
        if kind == "unnamed pcm":
            warnings.warn(f"{path}: no audio container soundfile reads; read as raw 16 kHz int16 PCM")
        if len(data) < 2:
            raise AudioError(f"{path}: no samples (1 byte)")
        if len(data) % 2:
            warnings.warn(f"{path}: odd byte count {len(data)} for int16 PCM; last byte ignored")
        samples = np.frombuffer(data, dtype="<i2", count=len(data) // 2).astype(np.float32) / 32768.0
        file_rate = SAMPLE_RATE  # the 2022 competitions define raw PCM as 16 kHz
    else:
        try:
            with soundfile.SoundFile(_AudioBytes(data)) as f:
                file_rate = f.samplerate
                _check_header(path, file_rate, f.frames)
                samples = f.read(dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError, MemoryError) as e:
            raise AudioError(f"{path}: not a readable audio file ({e or type(e).__name__})") from e
        samples = samples.mean(axis=1)  # mix stereo down

    if samples.size == 0:
        raise AudioError(f"{path}: no samples")
    if not np.isfinite(samples).all():  # before resampling, which would spread them
        raise AudioError(f"{path}: samples contain NaN or infinity")
    if file_rate != sample_rate:
        import librosa  # only needed for the rare resampled file

        samples = librosa.resample(samples, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
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
