"""kaldi.fbank: (frames, num_mel_bins) log mel energies. Frames are cut as Kaldi's snip_edges=True
cuts them (whole windows only), with its per-frame DC removal, pre-emphasis and window, an FFT
padded to a power of two, and HTK-scale triangular mel filters."""
import librosa
import torch


def _window(kind, length):
    if kind == "hamming":
        return torch.hamming_window(length, periodic=False)
    if kind == "hanning":
        return torch.hann_window(length, periodic=False)
    if kind == "povey":  # Kaldi's default: a Hann window raised to 0.85
        return torch.hann_window(length, periodic=False).pow(0.85)
    raise ValueError(f"torchaudio stand-in: window_type {kind!r} is not supported")


def fbank(waveform, num_mel_bins=23, frame_length=25.0, frame_shift=10.0, sample_frequency=16000.0,
          window_type="povey", preemphasis_coefficient=0.97, low_freq=20.0, high_freq=0.0, **unsupported):
    signal = waveform[0].float()  # channel 0, as Kaldi's default channel=-1 takes for mono
    win = int(sample_frequency * frame_length / 1000)
    hop = int(sample_frequency * frame_shift / 1000)
    if signal.numel() < win:
        return torch.empty(0, num_mel_bins)
    frames = signal.unfold(0, win, hop)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # Kaldi repeats the first sample
    frames = (frames - preemphasis_coefficient * previous) * _window(window_type, win)
    n_fft = 1 << (win - 1).bit_length()
    power = torch.fft.rfft(frames, n=n_fft).abs().square()
    top = high_freq if high_freq > 0 else sample_frequency / 2 + high_freq
    mel = librosa.filters.mel(sr=sample_frequency, n_fft=n_fft, n_mels=num_mel_bins, fmin=low_freq, fmax=top,
                              htk=True, norm=None)
    return torch.log((power @ torch.from_numpy(mel).float().T).clamp(min=torch.finfo(torch.float32).eps))
