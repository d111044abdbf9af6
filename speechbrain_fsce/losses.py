"""Training objectives of FSCE: L_mag, L_RI and their weighted sum.

The paper names ``L_mag`` (on the magnitude branch) and ``L_RI`` (on the
complex branch) but not their form or weights: here each is a mean squared or
absolute error, on the spectra the network sees (compressed) or on linear
spectra, masked by lengths so that padded frames never count.

Authors
 * speechbrain-fsce developers
"""

import torch
from speechbrain.dataio.dataio import length_to_mask
from speechbrain.processing.features import spectral_magnitude

ERRORS = ("mse", "mae")


def frame_mask(reference, lengths=None):
    """``[B, T]`` float mask of valid frames for a ``[B, T, ...]`` tensor.

    Example
    -------
    >>> frame_mask(torch.zeros(2, 4, 3), torch.tensor([1.0, 0.5]))
    tensor([[1., 1., 1., 1.],
            [1., 1., 0., 0.]])
    """
    batch, frames = reference.shape[:2]
    if lengths is None:
        return torch.ones(batch, frames, device=reference.device, dtype=reference.dtype)
    abs_len = torch.round(lengths.to(reference.device) * frames).clamp(min=1)
    return length_to_mask(abs_len, max_len=frames).to(reference.dtype)


def masked_error(estimate, target, lengths=None, error="mse"):
    """Mean squared or absolute error over valid frames only.

    Arguments
    ---------
    estimate, target : torch.Tensor
        ``[B, T, ...]`` tensors of the same shape.
    lengths : torch.Tensor, optional
        Relative lengths ``[B]``.
    error : str
        ``"mse"`` or ``"mae"``.

    Returns
    -------
    torch.Tensor
        Scalar: the error averaged over every valid element.

    Example
    -------
    >>> est, tgt = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)
    >>> tgt[0, 2:] = 100.0  # padding: must not count
    >>> masked_error(est, tgt, torch.tensor([0.5]))
    tensor(1.)
    """
    if error not in ERRORS:
        raise ValueError(f"error must be one of {ERRORS}, got {error!r}")
    if estimate.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(estimate.shape)} vs {tuple(target.shape)}")
    diff = estimate - target
    diff = diff.pow(2) if error == "mse" else diff.abs()
    mask = frame_mask(estimate, lengths)
    mask = mask.reshape(mask.shape + (1,) * (diff.dim() - 2)).expand_as(diff)
    return (diff * mask).sum() / mask.sum().clamp(min=1)


def magnitude_loss(est_magnitude, target_spec, lengths=None, error="mse"):
    """L_mag: error between the magnitude estimate and the clean magnitude.

    The clean magnitude is SpeechBrain's ``spectral_magnitude`` (``power=0.5``:
    the square root of the summed squares, with ``1e-8`` added under the root
    as in the front end, so that silent bins stay differentiable).

    Example
    -------
    >>> target = torch.tensor([[[[3.0, 4.0]]]])  # magnitude 5
    >>> magnitude_loss(torch.tensor([[[5.0]]]), target)
    tensor(0.)
    """
    target = spectral_magnitude(target_spec, power=0.5, eps=1e-8)
    return masked_error(est_magnitude, target, lengths, error)


def ri_loss(est_complex, target_spec, lengths=None, error="mse"):
    """L_RI: error between the complex estimate and the clean real/imag parts.

    Example
    -------
    >>> ri_loss(torch.ones(1, 3, 5, 2), torch.zeros(1, 3, 5, 2), error="mae")
    tensor(1.)
    """
    return masked_error(est_complex, target_spec, lengths, error)


class FSCELoss(torch.nn.Module):
    """Weighted ``mag_weight * L_mag + ri_weight * L_RI (+ fused_weight * L_fused)``.

    Estimates and targets arrive in the network's (compressed) domain; with
    ``domain="linear"`` both are decompressed first by the front end that
    compressed them (passed to :meth:`forward`: the loss holds no copy of its
    exponent). Terms for a branch the model does not have (ablations) are
    skipped.

    Arguments
    ---------
    mag_weight : float
        Weight of L_mag.
    ri_weight : float
        Weight of L_RI.
    fused_weight : float
        Weight of an extra real/imag loss on the fused output (0 = paper).
    error : str
        ``"mse"`` or ``"mae"``.
    domain : str
        ``"compressed"`` (as the network sees it) or ``"linear"``.

    Example
    -------
    >>> from speechbrain_fsce.models import FSCEOutput
    >>> from speechbrain_fsce.processing import SpectralFrontEnd
    >>> out = FSCEOutput(torch.zeros(2, 4, 3, 2), torch.zeros(2, 4, 3), torch.zeros(2, 4, 3, 2))
    >>> loss, terms = FSCELoss()(out, torch.ones(2, 4, 3, 2))
    >>> round(loss.item(), 4), sorted(terms)
    (3.0, ['mag', 'ri'])
    >>> linear = FSCELoss(domain="linear")
    >>> loss, _ = linear(out, torch.ones(2, 4, 3, 2), front_end=SpectralFrontEnd(compression=0.5))
    >>> round(loss.item(), 4)  # target magnitude sqrt(2) -> 2: L_mag 2 ** 2 + L_RI sqrt(2) ** 2
    6.0
    """

    def __init__(
        self, mag_weight=1.0, ri_weight=1.0, fused_weight=0.0, error="mse", domain="compressed"
    ):
        super().__init__()
        if domain not in ("compressed", "linear"):
            raise ValueError(f"domain must be 'compressed' or 'linear', got {domain!r}")
        if error not in ERRORS:
            raise ValueError(f"error must be one of {ERRORS}, got {error!r}")
        self.mag_weight = mag_weight
        self.ri_weight = ri_weight
        self.fused_weight = fused_weight
        self.error = error
        self.domain = domain

    def forward(self, output, target_spec, lengths=None, front_end=None):
        """Returns ``(total_loss, {term_name: value})``.

        Arguments
        ---------
        output : FSCEOutput
            The network's output.
        target_spec : torch.Tensor
            Clean spectrum ``[B, T, F, 2]`` in the network's domain.
        lengths : torch.Tensor, optional
            Relative lengths; padded frames are ignored.
        front_end : SpectralFrontEnd, optional
            The front end that made the spectra (``enhancer.front_end``);
            needed for ``domain="linear"``, which undoes its compression.
        """
        linear = self._linear_domain(front_end)
        target = linear(target_spec)
        terms = {}
        if output.magnitude is not None and self.mag_weight:
            mag = output.magnitude
            if self.domain == "linear" and front_end.compression != 1.0:
                mag = mag.clamp(min=0).pow(1.0 / front_end.compression)
            terms["mag"] = magnitude_loss(mag, target, lengths, self.error)
        if output.complex is not None and self.ri_weight:
            terms["ri"] = ri_loss(linear(output.complex), target, lengths, self.error)
        if self.fused_weight:
            terms["fused"] = ri_loss(linear(output.enhanced), target, lengths, self.error)
        if not terms:
            raise ValueError("no loss term applies: check the weights and branches")
        weights = {"mag": self.mag_weight, "ri": self.ri_weight, "fused": self.fused_weight}
        total = sum(weights[k] * v for k, v in terms.items())
        return total, terms

    def _linear_domain(self, front_end):
        """Spectrum -> spectrum map into the loss's domain."""
        if self.domain == "compressed":
            return lambda spec: spec
        if front_end is None:
            raise ValueError(
                "FSCELoss(domain='linear') needs the front end that compressed the "
                "spectra: loss(output, target, lengths, front_end=enhancer.front_end)"
            )
        return front_end.decompress
