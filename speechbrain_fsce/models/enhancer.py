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
