"""FSCEStreamer: hop-by-hop output equals offline causal enhancement."""

import pathlib
import re

import pytest
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.inference.streaming import FSCEStreamer
from tests.unittests.tiny_models import SMALL, calibrated

TOLERANCE = 1e-5  # float32 rounding: about 3e-7 is seen


def causal_enhancer(seed=0, device="cpu", **config):
    torch.manual_seed(seed)
    return FSCEEnhancer(calibrated(FSCE(causal=True, **{**SMALL, **config}))).to(device).eval()


def offline(enhancer, x, scale):
    """Offline causal enhancement of ``x`` ``[B, T]`` at a fixed level."""
    s = torch.full((x.shape[0], 1), scale, device=x.device)
    with torch.no_grad():
        return enhancer(x, scale=s)


def stream(enhancer, x, scale, piece=160):
    streamer = FSCEStreamer(enhancer, scale=scale)
    parts = [streamer.process(x[..., i : i + piece]) for i in range(0, x.shape[-1], piece)]
    parts.append(streamer.flush())
    return torch.cat(parts, dim=-1), streamer.latency_samples


CONFIGS = {
    "published-shape": {},
    "plain-conv-magnitude-mask": dict(
        block="conv", collaborate=False, branches="magnitude", magnitude_output="mask"
    ),
    "complex-residual": dict(branches="complex", complex_output="residual"),
    "wider-dilations": dict(
        dilations=(1, 2, 4, 8),
        num_tcm_modules=2,
        kernel_sizes=((2, 5), (3, 3), (2, 3), (2, 3), (2, 3)),
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_hop_by_hop_equals_offline(name, device):
    enhancer = causal_enhancer(device=device, **CONFIGS[name])
    torch.manual_seed(1)
    x = (torch.randn(1, 4800) * 0.3).to(device)  # 0.3 s, whole hops
    scale = 0.3
    ref = offline(enhancer, x, scale)[0]
    y, latency = stream(enhancer, x[0], scale)
    assert latency == 160
    assert y.shape == (4800 + latency,)
    assert torch.all(y[:latency] == 0)  # the hop before the signal
    assert ref.abs().max() > 0.01  # 1000x the tolerance: not a vacuous comparison
    assert (y[latency:] - ref).abs().max() <= TOLERANCE


@pytest.mark.parametrize("length", [100, 160, 1650, 3207])
@pytest.mark.parametrize("piece", [160, 480, 1000])
def test_any_length_and_piece_size(length, piece, device):
    enhancer = causal_enhancer(device=device)
    torch.manual_seed(2)
    x = (torch.randn(2, length) * 0.2).to(device)
    ref = offline(enhancer, x, 0.2)
    y, latency = stream(enhancer, x, 0.2, piece)  # batch of two signals
    assert y.shape == (2, length + latency)
    assert (y[:, latency:] - ref).abs().max() <= TOLERANCE
    assert ref.abs().max() > 0.01


def test_one_hop_in_one_hop_out_and_reset():
    enhancer = causal_enhancer()
    streamer = FSCEStreamer(enhancer)
    x = torch.randn(1600) * 0.1
    outs = [streamer.process(x[i : i + 160]) for i in range(0, 1600, 160)]
    assert [o.shape[0] for o in outs] == [160] * 10
    first = torch.cat(outs + [streamer.flush()])
    # flush() resets: the same signal again gives the same output.
    again = torch.cat(
        [streamer.process(x[i : i + 160]) for i in range(0, 1600, 160)] + [streamer.flush()]
    )
    assert torch.equal(first, again)
    assert streamer.process(torch.zeros(100)).shape == (0,)  # incomplete hop kept
    assert streamer.flush().shape == (260,)
    assert FSCEStreamer(enhancer).flush().shape == (0,)


def test_state_carries_network_history():
    """Without its state the streamer would restart from silence every call."""
    enhancer = causal_enhancer()
    torch.manual_seed(3)
    x = torch.randn(1, 3200) * 0.3
    y, lat = stream(enhancer, x[0], 0.3)
    fresh = FSCEStreamer(enhancer, scale=0.3)
    restarted = torch.cat(
        [FSCEStreamer(enhancer, scale=0.3).process(x[0, i : i + 160]) for i in range(0, 3200, 160)]
    )
    assert (restarted - y[: restarted.shape[0]]).abs().max() > 1e-3
    assert fresh.samples_out == 0


def test_noncausal_model_is_refused():
    with pytest.raises(ValueError, match="causal FSCE model"):
        FSCEStreamer(FSCEEnhancer(FSCE(**SMALL)))
    with pytest.raises(ValueError, match="causal FSCE model"):
        FSCE(**SMALL).init_state(1)


def test_bad_input_is_refused():
    streamer = FSCEStreamer(causal_enhancer())
    with pytest.raises(ValueError, match="NaN or Inf"):
        streamer.process(torch.tensor([0.0, float("nan")] * 80))
    with pytest.raises(ValueError, match="expected a hop"):
        streamer.process(torch.zeros(1, 1, 160))
    streamer.process(torch.zeros(2, 160))
    with pytest.raises(ValueError, match="batch size changed"):
        streamer.process(torch.zeros(3, 160))


def test_training_mode_enhancer_is_streamed_in_eval_mode():
    enhancer = causal_enhancer().train()
    FSCEStreamer(enhancer)
    assert not enhancer.training


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scale_is_refused(scale):
    with pytest.raises(ValueError, match="scale must be a finite positive level"):
        FSCEStreamer(causal_enhancer(), scale=scale)


#: Length residues mod 160 in the fast suite: both ends, the middle and the
#: old click range (149-159); all 160 of them are ``slow``.
EDGE_RESIDUES = (0, 1, 2, 80, *range(146, 160))


@pytest.mark.parametrize(
    "residues",
    [
        pytest.param(EDGE_RESIDUES, id="edge-residues"),
        pytest.param(range(160), id="every-residue", marks=pytest.mark.slow),
    ],
)
def test_every_length_residue_streams_like_offline_without_a_tail_click(residues):
    """Every length mod 160: streamed = offline, and no spike at the end.

    The old front end divided the last samples of a signal whose length mod
    160 was 149-159 by the vanishing tail of a single window: the output
    ended in a click up to 13x the file's peak, offline and in flush().
    """
    enhancer = causal_enhancer(seed=4)
    torch.manual_seed(5)
    base = torch.randn(1, 3 * 160 + 159) * 0.3
    worst = 0.0
    for residue in residues:
        x = base[:, : 3 * 160 + residue] if residue else base[:, : 4 * 160]
        ref = offline(enhancer, x, 0.3)
        y, latency = stream(enhancer, x[0], 0.3, piece=160)
        assert y.shape == (x.shape[1] + latency,)
        assert (y[latency:] - ref[0]).abs().max() <= TOLERANCE
        body_peak = ref[0, :-160].abs().max()
        worst = max(worst, (ref[0, -160:].abs().max() / body_peak).item())
    # A longer signal at every residue (offline and non-causal too), against
    # the input's own peak: level-normalised output stays of the input's order.
    longer = torch.randn(1, 25 * 160 + 159) * 0.3
    for causal in (True, False):
        model = (
            causal_enhancer(seed=6) if causal else FSCEEnhancer(calibrated(FSCE(**SMALL))).eval()
        )
        with torch.no_grad():
            for residue in residues:
                x = longer[:, : 24 * 160 + residue]
                y = model(x)[0]
                assert torch.isfinite(y).all()
                worst = max(worst, (y[-160:].abs().max() / y[:-160].abs().max()).item())
                assert y.abs().max() <= 10 * x.abs().max()
    assert worst < 3.0, f"tail up to {worst:.1f}x the body's peak"


def test_streaming_module_holds_no_block_arithmetic():
    """The streamer drives the modules' own streaming forms; it re-implements nothing."""
    import speechbrain_fsce.inference.streaming as streaming

    source = pathlib.Path(streaming.__file__).read_text()
    assert "speechbrain_fsce.nnet" not in source
    for op in (
        "conv1d",
        "conv2d",
        "conv_transpose",
        "sigmoid",
        "prelu",
        "stft(",
        "irfft",
        "batch_norm",
    ):
        assert not re.search(re.escape(op), source), op
