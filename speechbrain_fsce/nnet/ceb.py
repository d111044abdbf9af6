"""Collaborative expert blocks of FSCE.

The CEB replaces a plain convolution with two parallel "expert" convolutions
that gate each other; the CCEB additionally lets the magnitude branch steer
those gates (``Com``); the transposed CEB is the decoder's upsampling version.
All tensors are channels-first ``[batch, channels, time, freq]``.

Authors
 * speechbrain-fsce developers
"""

import torch


class CEB(torch.nn.Module):
    """Collaborative expert block (CEB), optionally collaborative (CCEB).

    ``x -> 1x1 conv -> experts A, B (m x n conv, same shape)``;
    each expert is multiplied by a sigmoid gate computed (by a 1x1 conv) from
    the *other* expert; ``Com = A' + B'`` is summed and projected by a 1x1 conv.
    When ``com`` is given (CCEB), each gate reads ``(expert + com) / 2``, so the
    magnitude branch's inner feature steers the gating of this block.

    Arguments
    ---------
    in_channels : int
        Channels of the input.
    out_channels : int
        Channels of the output.
    kernel_size : tuple
        (time, freq) kernel of the two experts.
    stride : tuple
        (time, freq) stride of the two experts.
    inner_channels : int
        Width of the experts and gates.
    transposed : bool
        Use transposed convolutions everywhere (decoder block): frequency is
        upsampled by the stride and time grows by ``kernel_size[0] - 1``.

    Returns
    -------
    The forward pass returns ``(output, com)``: the block output
    ``[B, out_channels, T', F']`` and the inner feature ``Com``
    ``[B, inner_channels, T', F']`` (used to steer a CCEB).

    Example
    -------
    >>> block = CEB(2, 64, kernel_size=(2, 5), stride=(1, 2))
    >>> out, com = block(torch.rand(3, 2, 11, 161))
    >>> out.shape, com.shape
    (torch.Size([3, 64, 10, 79]), torch.Size([3, 32, 10, 79]))
    >>> sum(p.numel() for p in block.parameters())
    24864
    >>> out2, _ = CEB(2, 64, (2, 5), (1, 2))(torch.rand(3, 2, 11, 161), com=com)
    >>> up = CEB(128, 64, kernel_size=(2, 3), stride=(1, 2), transposed=True)
    >>> up(torch.rand(1, 128, 10, 4))[0].shape
    torch.Size([1, 64, 11, 9])
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=(2, 3),
        stride=(1, 2),
        inner_channels=32,
        transposed=False,
    ):
        super().__init__()
        conv = torch.nn.ConvTranspose2d if transposed else torch.nn.Conv2d
        self.conv_in = conv(in_channels, inner_channels, 1)
        self.expert_a = conv(inner_channels, inner_channels, kernel_size, stride)
        self.expert_b = conv(inner_channels, inner_channels, kernel_size, stride)
        self.gate_a = conv(inner_channels, inner_channels, 1)
        self.gate_b = conv(inner_channels, inner_channels, 1)
        self.conv_out = conv(inner_channels, out_channels, 1)

    def forward(self, x, com=None):
        """Runs the block; ``com`` (same shape as the experts) makes it a CCEB.

        Arguments
        ---------
        x : torch.Tensor
            Input ``[B, in_channels, T, F]``.
        com : torch.Tensor, optional
            Magnitude branch's ``Com`` at this depth, ``[B, inner, T', F']``.

        Returns
        -------
        output : torch.Tensor
            ``[B, out_channels, T', F']``.
        com : torch.Tensor
            This block's summed gated experts ``[B, inner, T', F']``.
        """
        h = self.conv_in(x)
        a = self.expert_a(h)
        b = self.expert_b(h)
        gate_src_a, gate_src_b = a, b
        if com is not None:
            gate_src_a = (a + com) / 2
            gate_src_b = (b + com) / 2
        # Each expert is gated by the *other* expert's gate.
        a_gated = a * torch.sigmoid(self.gate_b(gate_src_b))
        b_gated = b * torch.sigmoid(self.gate_a(gate_src_a))
        inner = a_gated + b_gated
        return self.conv_out(inner), inner


class PlainConvBlock(torch.nn.Module):
    """A single (transposed) convolution with the CEB's kernel and stride.

    The baseline that the CEB replaces (the paper's ablation ``block="conv"``).
    It has no inner feature, so it cannot steer or be steered; it returns
    ``None`` in place of ``Com`` to keep the CEB's interface.

    Arguments
    ---------
    in_channels : int
        Channels of the input.
    out_channels : int
        Channels of the output.
    kernel_size : tuple
        (time, freq) kernel.
    stride : tuple
        (time, freq) stride.
    inner_channels : int
        Unused; accepted so the two block types are interchangeable.
    transposed : bool
        Use a transposed convolution (decoder).

    Example
    -------
    >>> block = PlainConvBlock(2, 64, kernel_size=(2, 5), stride=(1, 2))
    >>> out, com = block(torch.rand(1, 2, 11, 161))
    >>> out.shape, com
    (torch.Size([1, 64, 10, 79]), None)
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=(2, 3),
        stride=(1, 2),
        inner_channels=None,
        transposed=False,
    ):
        super().__init__()
        conv = torch.nn.ConvTranspose2d if transposed else torch.nn.Conv2d
        self.conv = conv(in_channels, out_channels, kernel_size, stride)

    def forward(self, x, com=None):
        """Returns ``(conv(x), None)``; ``com`` must be None."""
        if com is not None:
            raise ValueError("A plain conv block cannot be steered by Com.")
        return self.conv(x), None
