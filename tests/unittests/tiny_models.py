"""Tiny FSCE configurations for fast tests, and BatchNorm calibration."""

import torch

# Every branch and block of FSCE, at a size that runs in milliseconds.
SMALL = dict(
    channels=8, inner_channels=4, tcm_hidden_channels=8, num_tcm_modules=1, dilations=[1, 2]
)


def calibrated(model, frames=40):
    """Eval-mode model whose BatchNorm statistics were fitted on random input.

    With default running statistics an untrained encoder shrinks its input by
    orders of magnitude, which would hide any difference in rounding noise.
    """
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, frames, 161, 2))
    return model.eval()


def max_output_difference(out, ref):
    """Largest difference between two ``FSCEOutput``s, relative to ``max(1, peak)``.

    The branch estimates (where the network computes) are compared
    everywhere. The fused output is the magnitude estimate with the phase of
    the complex estimate, so its error is bounded by the branches' errors
    amplified by ``magnitude / |complex|`` (large where the complex estimate
    nears zero, which random weights do in some bins): it is checked against
    that bound bin by bin, and compared directly where the phase is well
    defined (``|complex| > magnitude``).
    """
    worst = 0.0
    for a, b in zip(out, ref):
        assert (a is None) == (b is None)
    for name in ("magnitude", "complex"):
        a, b = getattr(out, name), getattr(ref, name)
        if b is not None:
            worst = max(worst, (a - b).abs().max().item() / max(1.0, b.abs().max().item()))
    scale = max(1.0, ref.enhanced.abs().max().item())
    d_enh = (out.enhanced - ref.enhanced).pow(2).sum(-1).sqrt()
    if ref.complex is not None and ref.magnitude is not None:
        d_mag = (out.magnitude - ref.magnitude).abs()
        c_abs = ref.complex.pow(2).sum(-1).sqrt()
        d_c = (out.complex - ref.complex).pow(2).sum(-1).sqrt()
        bound = d_mag + 2 * ref.magnitude * d_c / c_abs.clamp(min=1e-12) + 1e-6 * scale
        assert bool((d_enh <= bound).all()), "fused output differs more than its branches explain"
        d_enh = d_enh[c_abs > ref.magnitude]
    return max(worst, d_enh.max().item() / scale if d_enh.numel() else 0.0)


def tiny_brain(save, counter=None):
    """An ``FSCEBrain`` on a ``SMALL`` model whose checkpointer saves to ``save``.

    Returns ``(brain, counter)``; ``counter`` defaults to ``EpochCounter(10)``.
    """
    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain.utils.epoch_loop import EpochCounter

    from speechbrain_fsce import FSCE, FSCEEnhancer
    from speechbrain_fsce.brain import FSCEBrain

    torch.manual_seed(0)
    enhancer = FSCEEnhancer(FSCE(**SMALL))
    counter = counter or EpochCounter(10)
    ckpter = Checkpointer(save, {"enhancer": enhancer, "counter": counter})
    return FSCEBrain(modules={"enhancer": enhancer}, hparams={}, checkpointer=ckpter), counter
