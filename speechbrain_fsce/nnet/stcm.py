"""Stacked temporal convolution module (S-TCM) of FSCE.

Works on features flattened to ``[batch, channels, time]``. Each residual block
compresses the channels with a 1x1 conv, runs two dilated-conv paths of which
one (through a sigmoid) gates the other, and expands back with a residual.

Authors
 * speechbrain-fsce developers
"""

import torch


class GatedDilatedBlock(torch.nn.Module):
    """One residual block of a temporal convolution module.

    ``y = x + conv_out(BN(PReLU(A * sigmoid(B))))`` where
    ``A = dconv_a(BN(PReLU(conv_in(x))))`` and ``B`` likewise.

    Arguments
    ---------
    channels : int
        Channels of the input and output (e.g. 256 = 64 channels x 4 bins).
    hidden_channels : int
        Channels inside the block.
    kernel_size : int
        Kernel of the dilated convolutions.
    dilation : int
        Dilation of the dilated convolutions.
    causal : bool
        Pad only on the past side (no look-ahead); otherwise pad symmetrically
        as in the published model.
    activation : type
        Activation class (single-slope PReLU in the paper).
    norm : type
        1-D normalisation class (BatchNorm1d in the paper).

    Example
    -------
    >>> block = GatedDilatedBlock(256, 64, dilation=4)
    >>> block(torch.rand(2, 256, 50)).shape
    torch.Size([2, 256, 50])
    >>> sum(p.numel() for p in block.parameters())
    74563
    """

    def __init__(
        self,
        channels=256,
        hidden_channels=64,
        kernel_size=5,
        dilation=1,
        causal=False,
        activation=torch.nn.PReLU,
        norm=torch.nn.BatchNorm1d,
    ):
        super().__init__()
        self.context = (kernel_size - 1) * dilation
        self.causal = causal
        self.conv_in = torch.nn.Conv1d(channels, hidden_channels, 1)
        self.path_a = self._path(hidden_channels, kernel_size, dilation, activation, norm)
        self.path_b = self._path(hidden_channels, kernel_size, dilation, activation, norm)
        self.out_act = activation()
        self.out_norm = norm(hidden_channels)
        self.conv_out = torch.nn.Conv1d(hidden_channels, channels, 1)

    @staticmethod
    def _path(channels, kernel_size, dilation, activation, norm):
        return torch.nn.Sequential(
            activation(),
            norm(channels),
            torch.nn.Conv1d(channels, channels, kernel_size, dilation=dilation),
        )

    def pad(self, h):
        """Pads time: ``context`` frames of the past (causal) or half each side."""
        if self.causal:
            left, right = self.context, 0
        else:
            left = self.context // 2
            right = self.context - left
        return torch.nn.functional.pad(h, (left, right))

    def forward(self, x, lengths=None):
        """``x``: ``[B, channels, T]`` -> ``[B, channels, T]``."""
        h = self.pad(self.conv_in(x))
        gated = self.path_a(h) * torch.sigmoid(self.path_b(h))
        return x + self.conv_out(self.out_norm(self.out_act(gated)))


class STCM(torch.nn.Module):
    """A stack of temporal convolution modules on ``[B, channels, T]``.

    Arguments
    ---------
    channels : int
        Input/output channels (flattened channels x frequency bins).
    hidden_channels : int
        Channels inside each residual block.
    kernel_size : int
        Kernel of the dilated convolutions.
    dilations : tuple
        Dilations of the residual blocks of one module.
    num_modules : int
        How many modules are stacked.
    causal : bool
        Zero look-ahead (left padding only).
    activation : type
        Activation class.
    norm : type
        1-D normalisation class.

    Example
    -------
    >>> stcm = STCM()
    >>> stcm(torch.rand(1, 256, 20)).shape
    torch.Size([1, 256, 20])
    >>> sum(p.numel() for p in stcm.parameters())
    1342134
    >>> STCM().look_ahead, STCM(causal=True).look_ahead
    (378, 0)
    """

    def __init__(
        self,
        channels=256,
        hidden_channels=64,
        kernel_size=5,
        dilations=(1, 2, 4, 8, 16, 32),
        num_modules=3,
        causal=False,
        activation=torch.nn.PReLU,
        norm=torch.nn.BatchNorm1d,
    ):
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            GatedDilatedBlock(
                channels, hidden_channels, kernel_size, d, causal, activation, norm
            )
            for _ in range(num_modules)
            for d in dilations
        )

    @property
    def look_ahead(self):
        """Future frames that one output frame depends on."""
        return sum(0 if b.causal else b.context - b.context // 2 for b in self.blocks)

    @property
    def look_back(self):
        """Past frames that one output frame depends on."""
        return sum(b.context if b.causal else b.context // 2 for b in self.blocks)

    def forward(self, x, lengths=None):
        """``x``: ``[B, channels, T]`` -> ``[B, channels, T]``."""
        for block in self.blocks:
            x = block(x)
        return x
