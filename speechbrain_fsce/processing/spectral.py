"""Signal front end of FSCE: STFT, power-law compression, level normalisation.

The network sees the noisy STFT (20 ms window, 10 ms hop, 161 bins at 16 kHz)
whose magnitude is raised to a power ``compression`` (phase kept), after the
waveform has been divided by its RMS; the inverse path undoes each step.

Authors
 * speechbrain-fsce developers
"""

import torch
from speechbrain.dataio.dataio import length_to_mask
from speechbrain.processing.features import ISTFT, STFT

WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window}


class SpectralFrontEnd(torch.nn.Module):
    """Waveform <-> (compressed, level-normalised) spectrum for FSCE.

    Arguments
    ---------
    sample_rate : int
        Sampling rate of the waveforms.
    win_length : float
        STFT window in milliseconds (20 ms = 320 samples at 16 kHz).
    hop_length : float
        STFT hop in milliseconds.
    n_fft : int
        FFT size (320 gives 161 bins).
    window : str
        ``"hann"`` or ``"hamming"``.
    compression : float
        Magnitude exponent applied before the network (1.0 = none; 0.5 as in
        the authors' later recipe).
    normalize_level : bool
        Divide each input by its RMS (over its valid samples) before analysis
        and multiply the output back: the network always sees unit level.
    eps : float
        Keeps magnitudes, compression and level normalisation finite.

    Example
    -------
    >>> fe = SpectralFrontEnd()
    >>> wavs = torch.randn(2, 16000)
    >>> spec, scale = fe.analyze(wavs)
    >>> spec.shape, scale.shape
    (torch.Size([2, 101, 161, 2]), torch.Size([2, 1]))
    >>> back = fe.synthesize(spec, scale, wavs.shape[1])
    >>> bool((back - wavs).abs().max() < 1e-4)
    True
    """

    def __init__(
        self,
        sample_rate=16000,
        win_length=20,
        hop_length=10,
        n_fft=320,
        window="hann",
        compression=0.5,
        normalize_level=True,
        eps=1e-8,
    ):
        super().__init__()
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {sorted(WINDOWS)}, got {window!r}")
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        self.sample_rate = sample_rate
        self.compression = compression
        self.normalize_level = normalize_level
        self.eps = eps
        self.stft_fn = STFT(
            sample_rate=sample_rate, win_length=win_length,
            hop_length=hop_length, n_fft=n_fft, window_fn=WINDOWS[window],
        )
        self.istft_fn = ISTFT(
            sample_rate=sample_rate, win_length=win_length,
            hop_length=hop_length, n_fft=n_fft, window_fn=WINDOWS[window],
        )
        self.hop_samples = self.stft_fn.hop_length
        self.win_samples = self.stft_fn.win_length
        self.num_freqs = n_fft // 2 + 1

    def stft(self, wavs):
        """``[B, samples]`` -> linear spectrum ``[B, frames, freqs, 2]``."""
        return self.stft_fn(wavs)

    def istft(self, spec, sig_length):
        """``[B, frames, freqs, 2]`` -> ``[B, sig_length]``."""
        return self.istft_fn(spec, sig_length=sig_length)

    def _power(self, spec, exponent):
        if exponent == 1.0:
            return spec
        mag = torch.sqrt(spec.pow(2).sum(-1, keepdim=True) + self.eps)
        return spec * mag.pow(exponent - 1.0)

    def compress(self, spec):
        """Raises the magnitude to ``compression``, keeping the phase."""
        return self._power(spec, self.compression)

    def decompress(self, spec):
        """Inverse of :meth:`compress`."""
        return self._power(spec, 1.0 / self.compression)

    def level(self, wavs, lengths=None):
        """Per-signal RMS ``[B, 1]`` over the valid samples (1 if disabled)."""
        if not self.normalize_level:
            return torch.ones(wavs.shape[0], 1, device=wavs.device, dtype=wavs.dtype)
        mask = self.sample_mask(wavs, lengths)
        power = (wavs.pow(2) * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
        return torch.sqrt(power) + self.eps

    @staticmethod
    def sample_mask(wavs, lengths=None):
        """``[B, samples]`` float mask of valid samples from relative lengths."""
        if lengths is None:
            return torch.ones_like(wavs)
        abs_len = torch.round(lengths * wavs.shape[1])
        return length_to_mask(abs_len, max_len=wavs.shape[1]).to(wavs.dtype)

    def analyze(self, wavs, lengths=None, scale=None):
        """Level-normalises and analyses a batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]``.
        lengths : torch.Tensor, optional
            Relative lengths (padding is ignored by the level estimate).
        scale : torch.Tensor, optional
            ``[B, 1]`` level to divide by; default: measured on ``wavs``.

        Returns
        -------
        spec : torch.Tensor
            Compressed spectrum ``[B, frames, freqs, 2]``.
        scale : torch.Tensor
            ``[B, 1]`` level that :meth:`synthesize` multiplies back.
        """
        if scale is None:
            scale = self.level(wavs, lengths)
        return self.compress(self.stft(wavs / scale)), scale

    def synthesize(self, spec, scale, sig_length):
        """Inverse of :meth:`analyze`: ``[B, frames, freqs, 2]`` -> ``[B, sig_length]``."""
        return self.istft(self.decompress(spec), sig_length) * scale
