"""Signal front end of FSCE: STFT, power-law compression, level normalisation.

The network sees the noisy STFT (20 ms window, 10 ms hop, 161 bins at 16 kHz)
whose magnitude is raised to a power ``compression`` (phase kept), after the
waveform has been divided by its RMS; the inverse path undoes each step.

Signals are analysed as if padded with zeros to a whole number of hops, so
that every sample lies under two analysis frames: the overlap-add envelope
then stays above half its peak everywhere, and the last samples of a signal
are never divided by a vanishing window tail (which turned any inconsistency
of the enhanced spectrum into a click at the end).

The same analysis and synthesis also exist in a framed form, the DFT as a
product with fixed bases (:meth:`~SpectralFrontEnd.frames`,
:meth:`~SpectralFrontEnd.analyze_frames`,
:meth:`~SpectralFrontEnd.synthesize_frames`,
:meth:`~SpectralFrontEnd.overlap_add`): the one implementation that the
streaming step and both exported ONNX graphs are made of
(:meth:`speechbrain_fsce.models.FSCEEnhancer.forward_step`,
:meth:`~speechbrain_fsce.models.FSCEEnhancer.forward_framed`). It gives the
frames and samples of the offline path up to float rounding.

Authors
 * speechbrain-fsce developers
"""

import math

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
    >>> fe.stft(torch.randn(1, 16001)).shape  # padded to 16160 samples: 102 frames
    torch.Size([1, 102, 161, 2])
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
        # Analysis and synthesis share one framing (perfect reconstruction).
        framing = dict(
            sample_rate=sample_rate,
            win_length=win_length,
            hop_length=hop_length,
            n_fft=n_fft,
            window_fn=WINDOWS[window],
        )
        self.stft_fn = STFT(**framing)
        self.istft_fn = ISTFT(**framing)
        self.sample_rate = sample_rate
        self.compression = compression
        self.normalize_level = normalize_level
        self.eps = eps
        self.hop_samples = self.stft_fn.hop_length
        self.win_samples = self.stft_fn.win_length
        self.n_fft = n_fft
        self.num_freqs = n_fft // 2 + 1

    def num_frames(self, num_samples):
        """Frames of :meth:`stft` for a signal of ``num_samples`` samples.

        Example
        -------
        >>> fe = SpectralFrontEnd()
        >>> fe.num_frames(16000), fe.num_frames(16001), fe.num_frames(0)
        (101, 102, 1)
        """
        return 1 + -(-num_samples // self.hop_samples)

    def stft(self, wavs):
        """``[B, samples]`` -> linear spectrum ``[B, frames, freqs, 2]``.

        The signal is padded with zeros to a whole number of hops first
        (``num_frames`` frames), so that :meth:`istft` never divides a sample
        by the tail of a single window.
        """
        tail = -wavs.shape[-1] % self.hop_samples
        if tail:
            wavs = torch.nn.functional.pad(wavs, (0, tail))
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
        """Per-signal RMS over the valid samples, plus ``eps`` (1 if disabled).

        The one home of the level that :meth:`analyze` divides by: for a
        batch, and for one signal given in pieces (a file read block by
        block, in constant memory), whose squares are summed in float64.

        Arguments
        ---------
        wavs : torch.Tensor or iterable of torch.Tensor
            ``[B, samples]``, or the ``[samples]`` pieces of one signal.
        lengths : torch.Tensor, optional
            Relative lengths of a batch (padding is left out).

        Returns
        -------
        torch.Tensor
            ``[B, 1]`` (``[1, 1]`` float64 for pieces).

        Example
        -------
        >>> fe = SpectralFrontEnd()
        >>> fe.level(torch.ones(2, 40) * 2, torch.tensor([1.0, 0.5])).squeeze(1)
        tensor([2., 2.])
        >>> float(fe.level([torch.ones(10) * 2, torch.ones(30) * 2])) == 2 + 1e-8
        True
        >>> float(SpectralFrontEnd(normalize_level=False).level([torch.ones(4) * 3]))
        1.0
        """
        if torch.is_tensor(wavs):
            mask = self.sample_mask(wavs, lengths)
            power = (wavs.pow(2) * mask).sum(1, keepdim=True)
            count = mask.sum(1, keepdim=True)
        else:  # the pieces of one signal, in turn
            power, count = 0.0, 0
            for piece in wavs:
                power += float(piece.double().pow(2).sum())
                count += piece.shape[-1]
            power = torch.tensor([[power]], dtype=torch.float64)
            count = torch.tensor([[count]], dtype=torch.float64)
        if not self.normalize_level:
            return torch.ones_like(power)
        return torch.sqrt(power / count.clamp(min=1)) + self.eps

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

    # ---- framed form: the DFT as matrices (the exported graphs) -------------
    #
    # With frames spanning exactly two hops (n_fft = 2 * hop), a signal is
    # framed by reshaping and overlap-added by summing two half frames; the
    # DFT of a frame is a product with fixed cosine/sine bases that carry the
    # windows. The streaming step (FSCEEnhancer.forward_step) and the
    # exported offline graph (FSCEEnhancer.forward_framed) are written with
    # these methods only, so that they export to plain MatMul/Reshape graphs;
    # they give the frames and samples of stft/istft up to float rounding.

    def frame_windows(self, device=None):
        """Analysis and synthesis windows padded to ``n_fft`` (as torch centres them).

        Example
        -------
        >>> [w.shape for w in SpectralFrontEnd(win_length=15).frame_windows()]
        [torch.Size([320]), torch.Size([320])]
        """
        windows = []
        for w in (self.stft_fn.window, self.istft_fn.window):
            if w.shape[0] < self.n_fft:
                left = (self.n_fft - w.shape[0]) // 2
                w = torch.nn.functional.pad(w, (left, self.n_fft - w.shape[0] - left))
            windows.append(w.to(device) if device is not None else w)
        return windows

    def check_framed(self):
        """Raises unless frames span exactly two hops (what framing and streaming need).

        Example
        -------
        >>> SpectralFrontEnd(hop_length=5).check_framed()
        Traceback (most recent call last):
        ...
        ValueError: streaming and export need an STFT whose frames span exactly two hops (n_fft = 2 * hop); got n_fft=320, hop=80
        """
        if self.n_fft != 2 * self.hop_samples or self.win_samples > self.n_fft:
            raise ValueError(
                "streaming and export need an STFT whose frames span exactly two hops "
                f"(n_fft = 2 * hop); got n_fft={self.n_fft}, hop={self.hop_samples}"
            )

    def _bases(self, device):
        """``(analysis [n_fft, 2F], synthesis [2F, n_fft], envelope [hop])``, cached per device.

        Built in float64 and stored as float32; the analysis basis holds the
        analysis window, the synthesis basis the inverse real DFT's weights
        and the synthesis window, the envelope the two half windows' squares
        summed (what overlap-add divides by).
        """
        cache = self.__dict__.setdefault("_bases_cache", {})
        key = str(device)
        if key not in cache:
            self.check_framed()
            n, freqs, h = self.n_fft, self.num_freqs, self.hop_samples
            analysis_window, synthesis_window = (w.double() for w in self.frame_windows())
            angle = (
                2
                * math.pi
                * torch.outer(torch.arange(n, dtype=torch.float64), torch.arange(freqs))
                / n
            )  # [n_fft, F]
            cos, sin = torch.cos(angle), torch.sin(angle)
            analysis = torch.stack([cos, -sin], dim=-1) * analysis_window[:, None, None]
            weight = torch.full((freqs,), 2.0, dtype=torch.float64)
            weight[0] = weight[-1] = 1.0  # DC and Nyquist appear once
            synthesis = torch.stack([cos.T, -sin.T], dim=1) * (weight / n)[:, None, None]
            synthesis[0, 1] = synthesis[-1, 1] = 0.0  # their imaginary parts are ignored
            synthesis = synthesis * synthesis_window
            envelope = synthesis_window[h:].pow(2) + synthesis_window[:h].pow(2)
            cache[key] = tuple(
                t.float().to(device)
                for t in (analysis.reshape(n, 2 * freqs), synthesis.reshape(2 * freqs, n), envelope)
            )
        return cache[key]

    def analyze_frames(self, frames):
        """Compressed spectrum of time frames: window, DFT, compression.

        Arguments
        ---------
        frames : torch.Tensor
            ``[..., n_fft]`` level-normalised samples.

        Returns
        -------
        torch.Tensor
            ``[..., freqs, 2]``, as :meth:`analyze` gives for these frames.

        Example
        -------
        >>> fe = SpectralFrontEnd()
        >>> x = torch.randn(1, 1600)
        >>> frames = fe.frames(x)
        >>> spec = fe.analyze_frames(frames)
        >>> bool(torch.allclose(spec, fe.analyze(x, scale=torch.ones(1, 1))[0], atol=1e-4))
        True
        """
        analysis = self._bases(frames.device)[0]
        spec = torch.matmul(frames, analysis)
        return self.compress(spec.unflatten(-1, (self.num_freqs, 2)))

    def synthesize_frames(self, spec):
        """Windowed time frames of compressed spectra: decompression, inverse DFT, window.

        Arguments
        ---------
        spec : torch.Tensor
            ``[..., freqs, 2]`` compressed spectrum.

        Returns
        -------
        torch.Tensor
            ``[..., n_fft]``: frames for :meth:`overlap_add`.
        """
        synthesis = self._bases(spec.device)[1]
        linear = self.decompress(spec)
        return torch.matmul(linear.flatten(-2), synthesis)

    def overlap_add(self, first_halves, second_halves):
        """Samples covered by two frames: the earlier frame's second half plus the
        later frame's first half, divided by the window envelope.

        Arguments
        ---------
        first_halves : torch.Tensor
            ``[..., hop]``: the first halves of the later frames.
        second_halves : torch.Tensor
            ``[..., hop]``: the second halves of the earlier frames.

        Returns
        -------
        torch.Tensor
            ``[..., hop]``.
        """
        return (second_halves + first_halves) / self._bases(first_halves.device)[2]

    def frames(self, wavs):
        """Frames of :meth:`stft`, whole hops: ``[B, samples]`` -> ``[B, frames, n_fft]``.

        The signal is padded with one hop of zeros before it (the centred
        STFT's padding) and with zeros to whole hops and one hop after it;
        frame ``t`` is the hop before ``t * hop`` and the hop after it.

        Example
        -------
        >>> fe = SpectralFrontEnd()
        >>> fe.frames(torch.randn(2, 16001)).shape
        torch.Size([2, 102, 320])
        """
        h = self.hop_samples
        length = wavs.shape[-1]
        hops = (length + h - 1) // h + 2
        padded = torch.nn.functional.pad(wavs, (h, hops * h - h - length))
        halves = padded.reshape(wavs.shape[0], hops, h)
        return torch.cat([halves[:, :-1], halves[:, 1:]], dim=-1)

    def overlap_add_frames(self, frames, sig_length):
        """Inverse of :meth:`frames` for windowed frames of :meth:`synthesize_frames`.

        Arguments
        ---------
        frames : torch.Tensor
            ``[B, frames, n_fft]``.
        sig_length : int
            Samples of the signal the frames were made of.

        Returns
        -------
        torch.Tensor
            ``[B, sig_length]``.

        Example
        -------
        >>> fe = SpectralFrontEnd()
        >>> x = torch.randn(2, 1000)
        >>> back = fe.overlap_add_frames(fe.synthesize_frames(fe.analyze_frames(fe.frames(x))), 1000)
        >>> bool((back - x).abs().max() < 1e-4)
        True
        """
        h = self.hop_samples
        out = self.overlap_add(frames[:, 1:, :h], frames[:, :-1, h:])
        return out.reshape(frames.shape[0], -1)[:, :sig_length]
