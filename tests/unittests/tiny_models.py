"""Tiny FSCE configurations for fast tests, and BatchNorm calibration."""

import torch

# Every branch and block of FSCE, at a size that runs in milliseconds.
SMALL = dict(channels=8, inner_channels=4, tcm_hidden_channels=8, num_tcm_modules=1, dilations=[1, 2])


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
