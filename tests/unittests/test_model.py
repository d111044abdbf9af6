"""Unit tests of the FSCE network: shapes, sizes, causality, ablations."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from speechbrain_fsce import FSCE
from speechbrain_fsce.nnet import CEB, STCM, GatedDilatedBlock
from tests.unittests.tiny_models import SMALL, calibrated, max_output_difference


def n_params(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_published_parameter_count():
    assert n_params(FSCE()) == 3_214_992


def test_published_block_counts():
    assert n_params(CEB(2, 64, (2, 5))) == 24_864
    assert n_params(CEB(64, 64, (2, 3))) == 18_656
    assert n_params(GatedDilatedBlock()) == 74_563
    assert n_params(STCM(num_modules=1)) == 447_378


def test_flops_per_second_of_audio():
    model = FSCE().eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 100, 161, 2))  # 100 frames = 1 s at 10 ms hop
    gflops = counter.get_total_flops() / 1e9
    assert abs(gflops - 4.33) / 4.33 < 0.02, gflops


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("frames", [1, 7, 33])
def test_shapes_odd_lengths(batch, frames, device):
    model = FSCE(**SMALL).to(device).eval()
    out = model(torch.randn(batch, frames, 161, 2, device=device))
    assert out.enhanced.shape == (batch, frames, 161, 2)
    assert out.magnitude.shape == (batch, frames, 161)
    assert out.complex.shape == (batch, frames, 161, 2)
    assert torch.isfinite(out.enhanced).all()


def test_fused_output_is_magnitude_with_complex_phase():
    torch.manual_seed(0)
    out = FSCE(**SMALL).eval()(torch.randn(2, 9, 161, 2))
    mag = out.enhanced.pow(2).sum(-1).sqrt()
    assert torch.allclose(mag, out.magnitude, atol=1e-4)
    phase_fused = torch.atan2(out.enhanced[..., 1], out.enhanced[..., 0])
    phase_cplx = torch.atan2(out.complex[..., 1], out.complex[..., 0])
    diff = torch.remainder(phase_fused - phase_cplx + torch.pi, 2 * torch.pi) - torch.pi
    assert diff.abs().max() < 1e-3


def _perturbation_changes(model, frames=40, batch=2, cut_points=(5, 17, 31)):
    """For each cut t, max change of outputs <= t and > t when inputs > t change."""
    torch.manual_seed(1)
    x = torch.randn(batch, frames, 161, 2)
    base = model(x).enhanced
    results = []
    for t in cut_points:
        y = x.clone()
        y[:, t + 1 :] += torch.randn_like(y[:, t + 1 :])
        out = model(y).enhanced
        results.append(
            (
                (out[:, : t + 1] - base[:, : t + 1]).abs().max().item(),
                (out[:, t + 1 :] - base[:, t + 1 :]).abs().max().item(),
            )
        )
    return results


def test_causal_model_ignores_the_future():
    model = calibrated(FSCE(causal=True, **SMALL))
    for past_change, future_change in _perturbation_changes(model):
        assert past_change < 1e-5
        assert future_change > 1e-3  # the test would notice a dead model


def test_noncausal_model_looks_ahead():
    model = calibrated(FSCE(causal=False, **SMALL))
    assert any(past > 1e-3 for past, _ in _perturbation_changes(model))


def test_receptive_field_matches_gradient():
    model = FSCE(**SMALL).eval()
    back, ahead = model.time_receptive_field()
    frames, t0 = 60, 30
    x = torch.randn(1, frames, 161, 2, requires_grad=True)
    model(x).enhanced[0, t0].sum().backward()
    nonzero = torch.nonzero(x.grad[0].abs().sum((1, 2))).squeeze(1)
    assert t0 - nonzero.min().item() == back
    assert nonzero.max().item() - t0 == ahead


def test_published_receptive_field():
    assert FSCE().time_receptive_field() == (388, 378)
    assert FSCE(causal=True).time_receptive_field() == (766, 0)


def test_magnitude_only_uses_noisy_phase():
    model = FSCE(branches="magnitude", **SMALL).eval()
    x = torch.randn(2, 8, 161, 2)
    out = model(x)
    assert out.complex is None and out.magnitude is not None
    cos_noisy = x[..., 0] / x.pow(2).sum(-1).sqrt()
    cos_out = out.enhanced[..., 0] / out.enhanced.pow(2).sum(-1).sqrt()
    assert torch.allclose(cos_noisy, cos_out, atol=1e-3)
    assert not hasattr(model, "cplx_encoder")


def test_complex_only_returns_complex_estimate():
    model = FSCE(branches="complex", **SMALL).eval()
    out = model(torch.randn(2, 8, 161, 2))
    assert out.magnitude is None
    assert torch.equal(out.enhanced, out.complex)
    assert not hasattr(model, "mag_encoder")


def test_collaboration_steers_complex_branch():
    torch.manual_seed(0)
    collab = FSCE(collaborate=True, **SMALL).eval()
    plain = FSCE(collaborate=False, **SMALL).eval()
    plain.load_state_dict(collab.state_dict())  # same weights, no Com
    x = torch.randn(1, 6, 161, 2)
    assert not torch.allclose(collab(x).complex, plain(x).complex)
    assert torch.allclose(collab(x).magnitude, plain(x).magnitude)


def test_com_trains_magnitude_encoder():
    model = FSCE(**SMALL)
    out = model(torch.randn(2, 6, 161, 2))
    out.complex.sum().backward()  # L_RI alone
    grad = model.mag_encoder.blocks[0].expert_a.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_plain_conv_block():
    model = FSCE(block="conv", collaborate=False, **SMALL)
    assert all(not isinstance(b, CEB) for b in model.mag_encoder.blocks)
    assert model(torch.randn(1, 5, 161, 2)).enhanced.shape == (1, 5, 161, 2)
    assert not FSCE(block="conv", **SMALL).collaborate  # defaults adapt
    with pytest.raises(ValueError, match="collaborate"):
        FSCE(block="conv", collaborate=True)


def test_identity_start_options():
    model = FSCE(magnitude_output="mask", complex_output="residual", **SMALL).eval()
    x = torch.randn(2, 7, 161, 2)
    out = model(x)
    assert torch.allclose(out.enhanced, x, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [dict(branches="none"), dict(block="lstm"), dict(num_freqs=160), dict(magnitude_output="x")],
)
def test_bad_configuration_raises(kwargs):
    with pytest.raises(ValueError):
        FSCE(**kwargs)


def test_bad_input_shape_raises():
    with pytest.raises(ValueError, match="expects"):
        FSCE(**SMALL)(torch.randn(1, 5, 160, 2))


@pytest.mark.parametrize(
    "kernel,stride", [((2, 3), 2), ((2, 5), 2), ((3, 3), 2), ((2, 4), 3), ((1, 3), 1)]
)
@pytest.mark.parametrize("time_padding", [(1, 1), (1, 0), (0, 0)])
def test_polyphase_transposed_conv_equals_conv_transpose(kernel, stride, time_padding, device):
    from speechbrain_fsce.nnet.ceb import transposed_conv

    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose2d(6, 5, kernel, (1, stride)).to(device)
    x = torch.randn(2, 6, 7, 9, device=device)
    full = conv(x)  # [B, 5, 7 + kt - 1, F']
    past = kernel[0] - 1
    left, right = [p * past for p in time_padding]
    expected = full[:, :, past - left : full.shape[2] - (past - right)]
    out = transposed_conv(conv, x, (left, right))
    assert out.shape == expected.shape
    assert (out - expected).abs().max() <= 1e-5 * expected.abs().max()


@pytest.mark.parametrize(
    "config,fingerprint,count",
    [
        ({}, "e71bdb43fd047ee8", 1388),
        ({"causal": True, "block": "conv", "collaborate": False}, "309debf1e5414e4c", 1138),
    ],
)
def test_checkpoints_of_earlier_versions_keep_loading(config, fingerprint, count):
    """Names and shapes of every saved tensor are those of the network before the
    streaming/fidelity rework (fingerprints taken from commit 57219b6's FSCE):
    the S-TCM padding fix, the streaming forms, the polyphase transposed convs
    and BatchNorm folding change how it computes, not what it stores."""
    import hashlib

    state = FSCE(**config).state_dict()
    text = ";".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(state.items()))
    assert len(state) == count
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == fingerprint


STREAM_CONFIGS = {
    "both": {},
    "plain-conv": dict(block="conv", collaborate=False),
    "magnitude-mask": dict(branches="magnitude", magnitude_output="mask"),
    "complex-residual": dict(branches="complex", complex_output="residual"),
}


@pytest.mark.parametrize("name", sorted(STREAM_CONFIGS))
def test_stream_steps_equal_offline(name, device):
    torch.manual_seed(0)
    model = calibrated(FSCE(causal=True, **{**SMALL, **STREAM_CONFIGS[name]})).to(device)
    x = torch.randn(2, 21, 161, 2, device=device)
    state, outs, start = model.init_state(2), [], 0
    with torch.no_grad():
        for n in [1, 1, 5, 1, 13]:
            out, state = model.forward_step(x[:, start : start + n], state)
            outs.append(out)
            start += n
        ref = model(x)
    streamed = type(ref)(
        *(
            None if v is None else torch.cat([getattr(o, f) for o in outs], 1)
            for f, v in zip(ref._fields, ref)
        )
    )
    assert max_output_difference(streamed, ref) <= 1e-5


def test_stream_state_is_named_and_ordered():
    """The state is a dict by name: each module's own, in module order, kept by every step."""
    model = FSCE(causal=True, **SMALL).eval()
    state = model.init_state(3)
    names = list(state)
    assert names == model.state_names()
    modules = [n.split(".")[0] for n in names]
    order = ["mag_encoder", "mag_tcm", "mag_decoder", "cplx_encoder", "cplx_tcm"]
    order += ["real_decoder", "imag_decoder"]
    assert sorted(set(modules), key=modules.index) == order
    assert names[:2] == ["mag_encoder.0.past", "mag_encoder.1.past"]
    assert "mag_tcm.1.path_a" in names and "imag_decoder.4.past" in names
    assert state["mag_tcm.1.path_b"].shape == (3, 8, 8)  # hidden, (kernel - 1) * dilation
    assert state["mag_encoder.0.past"].shape == (3, 4, 1, 161)  # inner, kernel_time - 1, bins
    with torch.no_grad():
        _, new_state = model.forward_step(torch.randn(3, 2, 161, 2), state)
    assert list(new_state) == names
    assert all(new_state[n].shape == state[n].shape for n in names)
    assert len(FSCE(causal=True, branches="magnitude", **SMALL).init_state(1)) == 5 + 4 + 5
