"""BatchNorm folding: the folded copy computes what the plain network computes."""

import pytest
import torch

from speechbrain_fsce import FSCE
from speechbrain_fsce.models.folding import fold_batchnorm
from tests.unittests.tiny_models import SMALL, calibrated, max_output_difference

CONFIGS = {
    "both": {},
    "plain-conv": dict(block="conv", collaborate=False),
    "magnitude-mask": dict(branches="magnitude", magnitude_output="mask"),
    "complex-residual": dict(branches="complex", complex_output="residual"),
}


def randomise_affine(model):
    """Non-trivial BatchNorm affine parameters (calibration sets the statistics)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_folded_equals_plain_offline(name, causal, device):
    torch.manual_seed(0)
    model = calibrated(randomise_affine(FSCE(causal=causal, **{**SMALL, **CONFIGS[name]}))).to(
        device
    )
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()
    )  # untouched
    x = torch.randn(2, 30, 161, 2, device=device)
    with torch.no_grad():
        ref, out = model(x), folded(x)
    assert ref.enhanced.abs().max() > 0.1
    assert max_output_difference(out, ref) <= 1e-5


def test_folded_stream_equals_plain_offline(device):
    torch.manual_seed(1)
    model = calibrated(randomise_affine(FSCE(causal=True, **SMALL))).to(device)
    folded = fold_batchnorm(model)
    x = torch.randn(1, 25, 161, 2, device=device)
    state, outs = folded.init_state(1), []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = folded.forward_step(x[:, t : t + 1], state)
            outs.append(out)
        ref = model(x)
    streamed = type(ref)(*(torch.cat([getattr(o, f) for o in outs], 1) for f in ref._fields))
    assert max_output_difference(streamed, ref) <= 1e-5
