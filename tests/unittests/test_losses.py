"""Losses: values, masking of padding, ablation branches, linear domain."""

import pytest
import torch

from speechbrain_fsce import FSCEOutput
from speechbrain_fsce.losses import FSCELoss, magnitude_loss, masked_error, ri_loss
from speechbrain_fsce.processing import SpectralFrontEnd


def test_padding_never_counts():
    torch.manual_seed(0)
    est, tgt = torch.randn(2, 10, 161, 2), torch.randn(2, 10, 161, 2)
    lengths = torch.tensor([1.0, 0.4])
    base = ri_loss(est, tgt, lengths)
    tgt2 = tgt.clone()
    tgt2[1, 4:] = 1e6  # garbage in the padded frames of item 2
    assert torch.allclose(ri_loss(est, tgt2, lengths), base)
    assert not torch.allclose(ri_loss(est, tgt2), base)


def test_masked_mean_is_over_valid_frames():
    est = torch.zeros(2, 4, 3)
    tgt = torch.ones(2, 4, 3)
    assert masked_error(est, tgt, torch.tensor([1.0, 0.25]), "mae").item() == pytest.approx(1.0)
    tgt[0] = 3.0
    # 12 elements of |3| and 3 elements of |1|
    assert masked_error(est, tgt, torch.tensor([1.0, 0.25]), "mae").item() == pytest.approx(39 / 15)


def test_magnitude_loss_on_magnitude():
    target = torch.zeros(1, 2, 3, 2)
    target[..., 0] = 3.0
    target[..., 1] = 4.0
    assert magnitude_loss(torch.full((1, 2, 3), 5.0), target).item() == pytest.approx(0.0, abs=1e-6)
    assert magnitude_loss(torch.full((1, 2, 3), 6.0), target, error="mse").item() == pytest.approx(
        1.0, abs=1e-4
    )


def test_weights_and_ablations():
    out = FSCEOutput(torch.zeros(1, 3, 4, 2), torch.zeros(1, 3, 4), torch.zeros(1, 3, 4, 2))
    tgt = torch.ones(1, 3, 4, 2)
    total, terms = FSCELoss(mag_weight=2.0, ri_weight=0.5)(out, tgt)
    assert total.item() == pytest.approx(2.0 * terms["mag"].item() + 0.5 * terms["ri"].item())
    mag_only = FSCEOutput(out.enhanced, out.magnitude, None)
    _, terms = FSCELoss()(mag_only, tgt)
    assert set(terms) == {"mag"}
    _, terms = FSCELoss(fused_weight=1.0)(out, tgt)
    assert set(terms) == {"mag", "ri", "fused"}


def test_linear_domain_decompresses():
    out = FSCEOutput(torch.zeros(1, 1, 1, 2), torch.full((1, 1, 1), 2.0), None)
    tgt = torch.tensor([[[[2.0, 0.0]]]])  # compressed magnitude 2 -> linear 4
    loss_c, _ = FSCELoss(domain="compressed")(out, tgt)
    loss_l, _ = FSCELoss(domain="linear", error="mae")(
        FSCEOutput(out.enhanced, torch.full((1, 1, 1), 1.0), None),
        tgt,
        front_end=SpectralFrontEnd(compression=0.5),
    )
    assert loss_c.item() == pytest.approx(0.0, abs=1e-6)
    assert loss_l.item() == pytest.approx(3.0, abs=1e-3)  # |1 - 4|


def test_linear_domain_takes_the_exponent_from_the_front_end():
    out = FSCEOutput(torch.zeros(1, 1, 1, 2), torch.full((1, 1, 1), 1.0), None)
    tgt = torch.tensor([[[[2.0, 0.0]]]])  # compressed magnitude 2
    loss = FSCELoss(domain="linear", error="mae")
    for compression in (0.5, 0.25, 1.0):  # linear magnitude 2 ** (1 / compression)
        value, _ = loss(out, tgt, front_end=SpectralFrontEnd(compression=compression))
        assert value.item() == pytest.approx(2 ** (1 / compression) - 1, rel=1e-5)
    with pytest.raises(ValueError, match="front end"):
        loss(out, tgt)  # no exponent of its own to fall back on
    assert "compression" not in FSCELoss.__init__.__code__.co_varnames


def _old_loss(output, target, lengths, compression, domain, error="mse"):
    """The loss as it was, with its own magnitude and its own copy of the exponent."""

    def mag(spec):
        return torch.sqrt(spec.pow(2).sum(-1) + 1e-8)

    def linear(spec):
        if domain == "compressed" or compression == 1.0:
            return spec
        return spec * mag(spec).unsqueeze(-1).pow(1.0 / compression - 1.0)

    target = linear(target)
    est_mag = output.magnitude
    if domain == "linear" and compression != 1.0:
        est_mag = est_mag.clamp(min=0).pow(1.0 / compression)
    return masked_error(est_mag, mag(target), lengths, error) + masked_error(
        linear(output.complex), target, lengths, error
    )


@pytest.mark.parametrize("domain", ["compressed", "linear"])
@pytest.mark.parametrize("error", ["mse", "mae"])
def test_values_and_gradients_equal_the_old_loss_bitwise(domain, error):
    """SpeechBrain's spectral_magnitude and the front end's decompress give
    the very numbers (and gradients) of the loss's former own copies."""
    torch.manual_seed(0)
    front_end = SpectralFrontEnd(compression=0.3)
    scale = torch.logspace(-5, 2, 161)[None, None, :, None]  # quiet to loud bins
    target = torch.randn(2, 20, 161, 2) * scale
    target[0, :3] = 0.0  # silent frames: eps under the root matters
    lengths = torch.tensor([1.0, 0.6])
    results = []
    for new in (True, False):
        torch.manual_seed(1)
        mag = (torch.rand(2, 20, 161) * scale[..., 0]).requires_grad_()
        cplx = (torch.randn(2, 20, 161, 2) * scale).requires_grad_()
        out = FSCEOutput(cplx.detach(), mag, cplx)
        if new:
            loss, _ = FSCELoss(error=error, domain=domain)(
                out, target, lengths, front_end=front_end
            )
        else:
            loss = _old_loss(out, target, lengths, front_end.compression, domain, error)
        loss.backward()
        results.append((loss, mag.grad, cplx.grad))
    for new, old in zip(*results):
        assert torch.equal(new, old)


def test_bad_options():
    with pytest.raises(ValueError):
        FSCELoss(domain="log")
    with pytest.raises(ValueError):
        masked_error(torch.zeros(1, 2), torch.zeros(1, 3))
