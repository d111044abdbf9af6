"""FSCEEnhancer's framed forms: the stream step and the exportable offline path."""

import pytest
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from tests.unittests.tiny_models import SMALL, calibrated

TOLERANCE = 1e-5


def causal_enhancer(seed=0):
    torch.manual_seed(seed)
    return FSCEEnhancer(calibrated(FSCE(causal=True, **SMALL))).eval()


def run_steps(enhancer, x, scales):
    """Hops of ``x`` ``[B, n * hop]`` at per-hop levels ``scales`` ``[n, B, 1]``."""
    h = enhancer.front_end.hop_samples
    state = enhancer.init_state(x.shape[0])
    outs = []
    with torch.no_grad():
        for i in range(x.shape[1] // h):
            out, state = enhancer.forward_step(x[:, i * h : (i + 1) * h], scales[i], state)
            outs.append(out)
    return torch.cat(outs, dim=1), state


def test_state_names_and_shapes():
    enhancer = causal_enhancer()
    state = enhancer.init_state(3)
    names = list(state)
    assert names[:2] == ["input.previous_hop", "output.overlap"]
    assert names[2:] == enhancer.model.state_names()
    assert state["input.previous_hop"].shape == state["output.overlap"].shape == (3, 160)
    x = torch.randn(3, 160)
    _, new_state = enhancer.forward_step(x, torch.ones(3, 1), state)
    assert list(new_state) == names
    assert all(new_state[n].shape == state[n].shape for n in names)
    assert torch.equal(new_state["input.previous_hop"], x)  # kept as it came, not divided


def test_steps_at_a_fixed_level_equal_offline():
    enhancer = causal_enhancer()
    torch.manual_seed(1)
    x = torch.randn(2, 3200) * 0.3
    scale = torch.tensor([[0.3], [0.05]])
    padded = torch.nn.functional.pad(x, (0, 160))  # one hop after: the last frame
    y, _ = run_steps(enhancer, padded, scale.expand(21, 2, 1))
    with torch.no_grad():
        ref = enhancer(x, scale=scale)
    assert ref.abs().max() > 0.01
    assert (y[:, 160:] - ref).abs().max() <= TOLERANCE


def test_a_level_that_changes_every_hop_is_scale_equivariant():
    """The buffers hold the input's own units, so scaling the input and every level
    by k scales the output by k: the state needs no rescaling between levels."""
    enhancer = causal_enhancer()
    torch.manual_seed(2)
    x = torch.randn(1, 3200) * 0.2
    scales = torch.rand(20, 1, 1) * 0.5 + 0.05
    y, _ = run_steps(enhancer, x, scales)
    y8, _ = run_steps(enhancer, x * 8, scales * 8)
    assert y.abs().max() > 0.01
    assert (y8 / 8 - y).abs().max() <= TOLERANCE


def test_a_level_change_equals_rescaling_the_state_by_old_over_new():
    """Two hops at one level then one at another equals the earlier form, which
    divided the buffers by the old level and rescaled them by old / new."""
    enhancer = causal_enhancer()
    fe = enhancer.front_end
    torch.manual_seed(3)
    x = torch.randn(1, 480) * 0.2
    old, new = torch.full((1, 1), 0.2), torch.full((1, 1), 0.05)
    y, _ = run_steps(enhancer, x, torch.stack([old, old, new]))
    # The third hop by hand, in the earlier normalised form.
    with torch.no_grad():
        _, state = run_steps(enhancer, x[:, :320], torch.stack([old, old]))
        previous = state["input.previous_hop"] / old * (old / new)
        overlap = state["output.overlap"] / old * (old / new)
        spec = fe.analyze_frames(torch.cat([previous, x[:, 320:] / new], 1).unsqueeze(1))
        net = {n: t for n, t in state.items() if n not in enhancer.FRONT_END_STATE}
        out, _ = enhancer.model.forward_step(spec, net)
        frame = fe.synthesize_frames(out.enhanced[:, 0])
        expected = fe.overlap_add(frame[:, :160], overlap) * new
    assert (y[:, 320:] - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("causal", [True, False])
def test_forward_framed_equals_forward(causal):
    torch.manual_seed(4)
    enhancer = FSCEEnhancer(calibrated(FSCE(causal=causal, **SMALL))).eval()
    x = torch.randn(2, 5000) * torch.tensor([[0.3], [0.01]])
    with torch.no_grad():
        ref = enhancer(x)
        assert (enhancer.forward_framed(x, torch.zeros(2, 1)) - ref).abs().max() <= TOLERANCE
        scale = torch.tensor([[0.1], [0.2]])
        ref = enhancer(x, scale=scale)
        assert (enhancer.forward_framed(x, scale) - ref).abs().max() <= TOLERANCE


def test_non_causal_model_has_no_step():
    enhancer = FSCEEnhancer(FSCE(**SMALL)).eval()
    with pytest.raises(ValueError, match="causal"):
        enhancer.init_state(1)
