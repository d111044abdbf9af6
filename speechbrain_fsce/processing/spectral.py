"""Signal front end of FSCE: STFT, power-law compression, level normalisation.

The network sees the noisy STFT (20 ms window, 10 ms hop, 161 bins at 16 kHz)
whose magnitude is raised to a power ``compression`` (phase kept), after the
waveform has been divided by its RMS; the inverse path undoes each step.

Signals are analysed as if padded with zeros to a whole number of hops, so
that every sample lies under two analysis frames: the overlap-add envelope
then stays above half its peak everywhere, and the last samples of a signal
are never divided by a vanishing window tail (which turned any inconsistency
of the enhanced spectrum into a click at the end).

The front end also runs as a stream, whole hops at a time:
:meth:`SpectralFrontEnd.init_stream_state`, :meth:`~SpectralFrontEnd.analyze_step`
and :meth:`~SpectralFrontEnd.synthesize_step` give the same frames and samples
as the offline path (the signal delayed by one hop).

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
        self.sample_rate = sample_rate
        self.compression = compression
        self.normalize_level = normalize_level
        self.eps = eps
        self.stft_fn = STFT(
            sample_rate=sample_rate,
            win_length=win_length,
            hop_length=hop_length,
            n_fft=n_fft,
            window_fn=WINDOWS[window],
        )
        self.istft_fn = ISTFT(
            sample_rate=sample_rate,
            win_length=win_length,
            hop_length=hop_length,
            n_fft=n_fft,
            window_fn=WINDOWS[window],
        )
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

    # ---- streaming form: whole hops at a time -------------------------------

    def frame_windows(self, device=None):
        """Analysis and synthesis windows padded to ``n_fft`` (as torch centres them).

        Cached per device: the streaming steps ask for them on every hop.

        Example
        -------
        >>> [w.shape for w in SpectralFrontEnd(win_length=15).frame_windows()]
        [torch.Size([320]), torch.Size([320])]
        """
        cache = self.__dict__.setdefault("_frame_windows_cache", {})
        key = str(device)
        if key not in cache:
            windows = []
            for w in (self.stft_fn.window, self.istft_fn.window):
                if w.shape[0] < self.n_fft:
                    left = (self.n_fft - w.shape[0]) // 2
                    w = torch.nn.functional.pad(w, (left, self.n_fft - w.shape[0] - left))
                windows.append(w.to(device) if device is not None else w)
            cache[key] = windows
        return cache[key]

    def _check_streamable(self):
        if self.n_fft != 2 * self.hop_samples or self.win_samples > self.n_fft:
            raise ValueError(
                "streaming needs an STFT whose frames span exactly two hops "
                f"(n_fft = 2 * hop); got n_fft={self.n_fft}, hop={self.hop_samples}"
            )

    def init_stream_state(self, batch_size=1, device=None):
        """Stream state before the first sample.

        Returns
        -------
        list of torch.Tensor
            ``[previous_hop, overlap]``, each ``[batch_size, hop_samples]``:
            the last hop of input (the centred STFT's zero padding at first)
            and the second half of the last synthesised frame.
        """
        self._check_streamable()
        zeros = torch.zeros(batch_size, self.hop_samples, device=device)
        return [zeros, zeros.clone()]

    @staticmethod
    def rescale_stream_state(state, ratio):
        """Stream state carried over to a new level (a level that adapts hop by hop).

        Both buffers of the state hold samples divided by the level of the
        hop they came with (the last input hop, the overlap of the last
        synthesised frame); multiplied by ``ratio = old_level / new_level``
        they hold the same samples divided by the new level, so that the next
        frame is analysed, and the next hop overlap-added, at one level.

        Arguments
        ---------
        state : list of torch.Tensor
            From :meth:`init_stream_state` or the last step.
        ratio : float or torch.Tensor
            ``old_level / new_level`` (a number or ``[B, 1]``).

        Returns
        -------
        list of torch.Tensor

        Example
        -------
        >>> state = [torch.ones(1, 160), torch.ones(1, 160)]
        >>> [float(s[0, 0]) for s in SpectralFrontEnd.rescale_stream_state(state, 0.5)]
        [0.5, 0.5]
        """
        return [s * ratio for s in state]

    def analyze_step(self, samples, state, scale=1.0):
        """Network input for the next whole hops of a stream.

        Arguments
        ---------
        samples : torch.Tensor
            The next ``n`` hops ``[B, n * hop_samples]``.
        state : list of torch.Tensor
            From :meth:`init_stream_state` (only ``state[0]`` is read here).
        scale : float or torch.Tensor
            Level the signal is divided by (``[B, 1]`` or a number).

        Returns
        -------
        spec : torch.Tensor
            Compressed spectrum of the ``n`` frames that the new hops
            complete ``[B, n, freqs, 2]``: frame ``t`` covers the hop before
            ``t * hop`` and the hop after it, as in :meth:`stft`.
        state : list of torch.Tensor
            With the new last hop.
        """
        window = self.frame_windows(samples.device)[0]
        buf = torch.cat([state[0], samples / scale], dim=1)
        spec = torch.stft(
            buf,
            self.n_fft,
            self.hop_samples,
            self.n_fft,
            window,
            center=False,
            normalized=self.stft_fn.normalized_stft,
            onesided=True,
            return_complex=True,
        )
        spec = self.compress(torch.view_as_real(spec).transpose(1, 2))
        return spec, [buf[:, buf.shape[1] - self.hop_samples :], state[1]]

    def synthesize_step(self, spec, state, scale=1.0):
        """Samples completed by the next enhanced frames of a stream.

        Arguments
        ---------
        spec : torch.Tensor
            Compressed enhanced frames ``[B, n, freqs, 2]``.
        state : list of torch.Tensor
            From :meth:`init_stream_state` or the last step (``state[1]`` is
            the overlap-add buffer).
        scale : float or torch.Tensor
            Level to multiply the output by.

        Returns
        -------
        samples : torch.Tensor
            ``[B, n * hop_samples]``: the hop before each frame's centre,
            now covered by both of its frames (frame 0 gives the hop before
            the signal, which a caller drops or zeroes).
        state : list of torch.Tensor
            With the new overlap-add buffer.
        """
        h = self.hop_samples
        window = self.frame_windows(spec.device)[1]
        envelope = window[h:].pow(2) + window[:h].pow(2)
        linear = torch.view_as_complex(self.decompress(spec).contiguous())
        frames = torch.fft.irfft(linear, n=self.n_fft, dim=-1)
        frames = frames * window  # [B, n, n_fft]
        previous = torch.cat([state[1].unsqueeze(1), frames[:, :-1, h:]], dim=1)
        out = (previous + frames[:, :, :h]) / envelope
        return out.reshape(out.shape[0], -1) * scale, [state[0], frames[:, -1, h:]]
