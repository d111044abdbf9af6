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
    assert folded.tcm_pair is not None and folded.decoder_group is not None  # batched forms
    x = torch.randn(1, 25, 161, 2, device=device)
    state, outs, start = folded.init_state(1), [], 0
    with torch.no_grad():
        for n in [1] * 12 + [6, 7]:
            out, state = folded.forward_step(x[:, start : start + n], state)
            outs.append(out)
            start += n
        ref = model(x)
    streamed = type(ref)(*(torch.cat([getattr(o, f) for o in outs], 1) for f in ref._fields))
    assert max_output_difference(streamed, ref) <= 1e-5


@pytest.mark.parametrize(
    "config,paired,grouped",
    [
        (dict(causal=False), False, True),
        (dict(causal=True, branches="magnitude"), False, False),
        (dict(causal=True, branches="complex"), False, True),
        (dict(causal=True, block="conv", collaborate=False), True, False),
        (dict(causal=True), True, True),
    ],
)
def test_batched_forms_only_where_they_apply(config, paired, grouped):
    """S-TCMs paired: causal, both branches; decoders grouped: two or more CEB decoders."""
    model = FSCE(**{**SMALL, **config}).eval()
    folded = fold_batchnorm(model)
    assert not hasattr(model, "tcm_pair") and not hasattr(model, "decoder_group")  # unchanged
    assert (getattr(folded, "tcm_pair", None) is not None) == paired
    assert (getattr(folded, "decoder_group", None) is not None) == grouped


def test_folded_complex_branch_streams_with_grouped_decoders(device):
    torch.manual_seed(2)
    config = dict(branches="complex", complex_output="residual")
    model = calibrated(randomise_affine(FSCE(causal=True, **{**SMALL, **config}))).to(device)
    folded = fold_batchnorm(model)
    assert folded.decoder_group is not None
    x = torch.randn(2, 12, 161, 2, device=device)
    state, outs = folded.init_state(2), []
    with torch.no_grad():
        for t in range(0, 12, 3):
            out, state = folded.forward_step(x[:, t : t + 3], state)
            outs.append(out.complex)
        ref = model(x).complex
    assert (torch.cat(outs, 1) - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())
