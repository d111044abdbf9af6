"""Waveform-in, waveform-out FSCE: the network wrapped in its front end.

Authors
 * speechbrain-fsce developers
"""

import torch

from speechbrain_fsce.models.fsce import FSCE, FSCEOutput
from speechbrain_fsce.processing.spectral import SpectralFrontEnd


class FSCEEnhancer(torch.nn.Module):
    """Enhances waveforms ``[B, samples]`` with FSCE.

    noisy -> divide by RMS -> STFT -> compress -> FSCE -> decompress -> ISTFT
    -> multiply by RMS. Output and input have the same shape.

    Arguments
    ---------
    model : torch.nn.Module, optional
        Maps a spectrum ``[B, T, F, 2]`` to an :class:`FSCEOutput` (or to a
        spectrum). Default: ``FSCE()`` (the published configuration).
    front_end : SpectralFrontEnd, optional
        Default: ``SpectralFrontEnd()`` (16 kHz, 20/10 ms, power 0.5).

    Example
    -------
    >>> enhancer = FSCEEnhancer(FSCE(channels=8, inner_channels=8, tcm_hidden_channels=8))
    >>> enhancer(torch.randn(3, 8000)).shape
    torch.Size([3, 8000])
    """

    def __init__(self, model=None, front_end=None):
        super().__init__()
        self.model = model if model is not None else FSCE()
        self.front_end = front_end if front_end is not None else SpectralFrontEnd()

    def enhance_spectrum(self, noisy, lengths=None, scale=None):
        """Runs the network on a batch of waveforms.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[B, samples]``.
        lengths : torch.Tensor, optional
            Relative lengths.
        scale : torch.Tensor, optional
            ``[B, 1]`` level to normalise by (default: the RMS of ``noisy``).

        Returns
        -------
        output : FSCEOutput
            Network output in the compressed, level-normalised domain.
        noisy_spec : torch.Tensor
            The network's input ``[B, T, F, 2]``.
        scale : torch.Tensor
            ``[B, 1]`` level used.
        """
        noisy_spec, scale = self.front_end.analyze(noisy, lengths, scale)
        output = self.model(noisy_spec, lengths)
        if not isinstance(output, FSCEOutput):
            output = FSCEOutput(output, None, None)
        return output, noisy_spec, scale

    def target_spectrum(self, clean, scale):
        """Clean spectrum in the network's domain (same level scale as the noisy)."""
        return self.front_end.compress(self.front_end.stft(clean / scale))

    def enhanced_waveform(self, output, scale, length):
        """The waveforms of a network output: the second half of :meth:`forward`.

        Training calls ``forward(..., return_spectra=True)`` (the loss is
        computed on the network output) and scores the waveforms this method
        gives, the very ones ``forward`` returns.

        Arguments
        ---------
        output : FSCEOutput
            From :meth:`enhance_spectrum`.
        scale : torch.Tensor
            ``[B, 1]`` level from :meth:`enhance_spectrum`.
        length : int
            Samples of the noisy input.

        Returns
        -------
        torch.Tensor
            Enhanced ``[B, length]``.

        Example
        -------
        >>> enhancer = FSCEEnhancer(FSCE(channels=8, inner_channels=8, tcm_hidden_channels=8)).eval()
        >>> noisy = torch.randn(2, 8000)
        >>> output, _, scale = enhancer(noisy, return_spectra=True)
        >>> bool((enhancer.enhanced_waveform(output, scale, 8000) == enhancer(noisy)).all())
        True
        """
        return self.front_end.synthesize(output.enhanced, scale, length)

    def forward(self, noisy, lengths=None, return_spectra=False, scale=None):
        """``[B, samples]`` -> enhanced ``[B, samples]``.

        The one waveform-to-waveform path: the interface and the chunker call
        it; the recipes' Brain calls it with ``return_spectra`` and turns the
        output into waveforms with :meth:`enhanced_waveform`.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[B, samples]`` or ``[samples]``.
        lengths : torch.Tensor, optional
            Relative lengths.
        return_spectra : bool
            Return :meth:`enhance_spectrum`'s tuple instead: training goes
            through ``forward`` so that wrappers such as
            DistributedDataParallel see the call.
        scale : torch.Tensor, optional
            ``[B, 1]`` level to normalise by instead of each signal's own RMS
            (e.g. the level of a whole file when enhancing a chunk of it).

        Returns
        -------
        torch.Tensor
            Enhanced waveforms, same shape as ``noisy``.
        """
        if return_spectra:
            return self.enhance_spectrum(noisy, lengths, scale)
        if noisy.dim() == 1:
            return self.forward(noisy.unsqueeze(0), lengths, scale=scale)[0]
        output, _, scale = self.enhance_spectrum(noisy, lengths, scale)
        return self.enhanced_waveform(output, scale, noisy.shape[-1])

    # ---- framed forms: one hop of a stream; the exportable offline path ----

    #: Names of the front end's two stream buffers in :meth:`init_state`.
    FRONT_END_STATE = ("input.previous_hop", "output.overlap")

    def init_state(self, batch_size=1, device=None):
        """Stream state before the first hop (causal models only).

        Arguments
        ---------
        batch_size : int
            Signals streamed side by side.
        device : torch.device, optional
            Default: where the network's parameters are.

        Returns
        -------
        dict of str to torch.Tensor
            Ordered: the front end's buffers (:attr:`FRONT_END_STATE`, each
            ``[batch_size, hop]``, in the input's own units, not divided by
            any level: the last hop of input, the centred STFT's zero padding
            at first; the second half of the last synthesised frame), then
            the network's state (``FSCE.state_names()``, in that order).
        """
        self.front_end.check_framed()
        if device is None:
            device = next(self.model.parameters()).device
        zeros = torch.zeros(batch_size, self.front_end.hop_samples, device=device)
        state = dict(zip(self.FRONT_END_STATE, (zeros, zeros.clone())))
        state.update(self.model.init_state(batch_size))
        return state

    def forward_step(self, hop, scale, state):
        """One hop of a stream: analysis, network step, synthesis, overlap-add.

        The frame is the last hop and this one divided by this hop's level,
        windowed, transformed (:meth:`SpectralFrontEnd.analyze_frames
        <speechbrain_fsce.processing.spectral.SpectralFrontEnd.analyze_frames>`)
        and compressed; the network's frame is resynthesised, multiplied back
        by the level and overlap-added with the previous frame's second half.
        The buffers stay in the input's units, so a level that changes from
        hop to hop needs nothing else. Traced as ``fsce_stream.onnx``.

        Arguments
        ---------
        hop : torch.Tensor
            ``[B, hop_samples]`` next samples of the noisy signal.
        scale : torch.Tensor
            ``[B, 1]`` level this hop is divided by (and its output
            multiplied by).
        state : dict of str to torch.Tensor
            From :meth:`init_state` or the previous step.

        Returns
        -------
        out : torch.Tensor
            ``[B, hop_samples]``: the enhanced hop before this one (all of
            whose frames are now known): the stream is delayed by one hop.
        state : dict of str to torch.Tensor
            The state after this hop.

        Example
        -------
        >>> enhancer = FSCEEnhancer(FSCE(causal=True, channels=8, inner_channels=4,
        ...     tcm_hidden_channels=8, num_tcm_modules=1, dilations=(1, 2))).eval()
        >>> x, scale = torch.randn(1, 1600), torch.full((1, 1), 0.5)
        >>> state = enhancer.init_state(1)
        >>> hops = []
        >>> for i in range(0, 1600 + 160, 160):  # one hop of zeros after the signal
        ...     hop = x[:, i : i + 160] if i < 1600 else torch.zeros(1, 160)
        ...     out, state = enhancer.forward_step(hop, scale, state)
        ...     hops.append(out)
        >>> stream = torch.cat(hops, 1)[:, 160:]
        >>> bool(torch.allclose(stream, enhancer(x, scale=scale), atol=1e-5))
        True
        """
        fe = self.front_end
        h = fe.hop_samples
        previous, overlap = (state[name] for name in self.FRONT_END_STATE)
        frame = torch.cat([previous, hop], dim=1) / scale
        spec = fe.analyze_frames(frame.unsqueeze(1))  # [B, 1, F, 2]
        network_state = {n: t for n, t in state.items() if n not in self.FRONT_END_STATE}
        output, network_state = self.model.forward_step(spec, network_state)
        if not isinstance(output, FSCEOutput):
            output = FSCEOutput(output, None, None)
        frame = fe.synthesize_frames(output.enhanced[:, 0]) * scale  # [B, n_fft]
        out = fe.overlap_add(frame[:, :h], overlap)
        new_state = dict(zip(self.FRONT_END_STATE, (hop, frame[:, h:])))
        new_state.update(network_state)
        return out, new_state

    def forward_framed(self, noisy, scale):
        """:meth:`forward` with the analysis and synthesis as framed DFTs.

        The same function as ``forward(noisy, scale=...)`` (up to float
        rounding) written with :meth:`SpectralFrontEnd.frames
        <speechbrain_fsce.processing.spectral.SpectralFrontEnd.frames>`,
        ``analyze_frames``, ``synthesize_frames`` and ``overlap_add_frames``
        only (matrix products and reshapes), which export to ONNX: traced
        as ``fsce_offline.onnx``.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[B, samples]``.
        scale : torch.Tensor
            ``[B, 1]`` level to divide by; where it is 0 (or negative), each
            signal's own level (:meth:`SpectralFrontEnd.level`).

        Returns
        -------
        torch.Tensor
            Enhanced ``[B, samples]``.

        Example
        -------
        >>> enhancer = FSCEEnhancer(FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8,
        ...     num_tcm_modules=1, dilations=(1, 2))).eval()
        >>> x = torch.randn(2, 1234)
        >>> y = enhancer.forward_framed(x, torch.zeros(2, 1))
        >>> bool(torch.allclose(y, enhancer(x), atol=1e-5))
        True
        """
        fe = self.front_end
        scale = torch.where(scale > 0, scale, fe.level(noisy))
        spec = fe.analyze_frames(fe.frames(noisy / scale))
        output = self.model(spec)
        enhanced = output.enhanced if isinstance(output, FSCEOutput) else output
        return fe.overlap_add_frames(fe.synthesize_frames(enhanced), noisy.shape[-1]) * scale
