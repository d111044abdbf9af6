"""S-TCM residual block: the authors' padding order and its streaming form."""

import pytest
import torch
import torch.nn.functional as F

from speechbrain_fsce.nnet import STCM, GatedDilatedBlock
from speechbrain_fsce.nnet.stcm import STCMPair


def randomised_block(causal, seed=0, channels=12, hidden=6, dilation=3):
    """A block in eval mode with non-trivial BatchNorm statistics, affine parameters and slopes."""
    torch.manual_seed(seed)
    block = GatedDilatedBlock(channels, hidden, kernel_size=5, dilation=dilation, causal=causal)
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1, 1)
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.1, 0.4)
    return block.eval()


def reference(block, x):
    """Independent computation: conv(pad(bn(prelu(h)))) on each path separately."""

    def bn(m, z):
        return (z - m.running_mean[:, None]) / torch.sqrt(
            m.running_var[:, None] + m.eps
        ) * m.weight[:, None] + m.bias[:, None]

    h = F.conv1d(x, block.conv_in.weight, block.conv_in.bias)
    ctx = block.context
    pad = (ctx, 0) if block.causal else (ctx // 2, ctx - ctx // 2)
    outs = []
    for act, norm, conv in (block.path_a, block.path_b):
        z = F.pad(bn(norm, F.prelu(h, act.weight)), pad)
        outs.append(F.conv1d(z, conv.weight, conv.bias, dilation=conv.dilation))
    g = bn(block.out_norm, F.prelu(outs[0] * torch.sigmoid(outs[1]), block.out_act.weight))
    return x + F.conv1d(g, block.conv_out.weight, block.conv_out.bias)


@pytest.mark.parametrize("causal", [False, True])
def test_padding_after_batchnorm_in_eval(causal, device):
    block = randomised_block(causal).to(device)
    x = torch.randn(2, 12, 40, device=device)
    with torch.no_grad():
        out, ref = block(x), reference(block, x)
    edge = 2 * block.context  # frames that read the padding
    # Edge frames are where the padding order matters; the old order (pad
    # before PReLU -> BN) differs there by O(1) with these statistics.
    assert (out[..., :edge] - ref[..., :edge]).abs().max() < 1e-5
    assert (out[..., -edge:] - ref[..., -edge:]).abs().max() < 1e-5
    assert (out - ref).abs().max() < 1e-5


def test_padded_frames_do_not_enter_batch_statistics():
    torch.manual_seed(0)
    block = GatedDilatedBlock(12, 6, kernel_size=5, dilation=8).train()
    for norm in (block.path_a[1], block.path_b[1]):
        norm.momentum = 1.0  # running stats = the last batch's stats
    x = torch.randn(3, 12, 20) + 2.0  # padding (32 frames) outweighs the signal
    with torch.no_grad():
        block(x)
        h = block.conv_in(x)
        for act, norm, _ in (block.path_a, block.path_b):
            z = act(h)
            expected_mean = z.mean(dim=(0, 2))
            assert torch.allclose(norm.running_mean, expected_mean, atol=1e-5)


@pytest.mark.parametrize("pieces", [[1] * 30, [7, 1, 13, 9], [30]])
def test_block_and_stack_stream_equal_offline(pieces, device):
    block = randomised_block(causal=True, dilation=2).to(device)
    stack = STCM(12, 6, dilations=(1, 3), num_modules=2, causal=True).to(device)
    for m in stack.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
    stack.eval()
    x = torch.randn(2, 12, sum(pieces), device=device)
    for module in (block, stack):
        state, outs, start = module.init_state(2), [], 0
        with torch.no_grad():
            for n in pieces:
                y, state = module.forward_step(x[..., start : start + n], state)
                outs.append(y)
                start += n
            full = module(x)
        assert (torch.cat(outs, -1) - full).abs().max() <= 1e-5 * full.abs().max()
        assert list(state) == list(module.init_state(2))


def test_non_causal_block_refuses_to_stream():
    with pytest.raises(ValueError, match="causal=True"):
        GatedDilatedBlock(causal=False).init_state()


def folded_like_stack(seed):
    """A causal stack with identity norms, padding values and random PReLU slopes (as folded)."""
    torch.manual_seed(seed)
    stack = STCM(12, 6, dilations=(1, 3), num_modules=2, causal=True).eval()
    with torch.no_grad():
        for block in stack.blocks:
            block.path_a[1] = block.path_b[1] = block.out_norm = torch.nn.Identity()
            block.path_pad_values = torch.randn(2, 6)
            for act in (block.path_a[0], block.path_b[0], block.out_act):
                act.weight.uniform_(-0.5, 1.5)
    return stack


@pytest.mark.parametrize("pieces", [[1] * 20, [3, 1, 9, 7]])
def test_pair_streams_as_the_two_stacks(pieces, device):
    stacks = [folded_like_stack(seed).to(device) for seed in (0, 1)]
    pair = STCMPair(*stacks)
    x = torch.randn(2, 2, 20, 12, device=device)  # [stack, batch, time, channels]
    with torch.no_grad():
        ref = torch.stack([s(part.transpose(1, 2)).transpose(1, 2) for s, part in zip(stacks, x)])
        assert (pair(x) - ref).abs().max() <= 1e-5 * ref.abs().max()
        states, outs, start = [s.init_state(2) for s in stacks], [], 0
        for n in pieces:
            y, states = pair.forward_step(x[:, :, start : start + n], states)
            outs.append(y)
            start += n
    assert (torch.cat(outs, 2) - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert [list(s) for s in states] == [list(s.init_state(2)) for s in stacks]


def test_pair_refuses_unfolded_stacks():
    with pytest.raises(ValueError, match="folded"):
        STCMPair(STCM(causal=True), STCM(causal=True))
