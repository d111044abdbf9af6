"""Collaborative expert blocks of FSCE.

The CEB replaces a plain convolution with two parallel "expert" convolutions
that gate each other; the CCEB additionally lets the magnitude branch steer
those gates (``Com``); the transposed CEB is the decoder's upsampling version.
All tensors are channels-first ``[batch, channels, time, freq]``.

Both blocks also run as a stream, a few frames at a time: ``init_state``
gives the state before the first frame and ``forward_step`` the output for
exactly the next frames. A forward block is run as the encoder runs it, after
``kernel_time - 1`` zero frames of causal padding; a transposed block as the
decoder runs it, with the ``kernel_time - 1`` extra frames at the end chomped.
The state is a dict, ``{"past": tensor}``: the last ``kernel_time - 1``
frames that the time kernel reads.

Authors
 * speechbrain-fsce developers
"""

import torch

from speechbrain_fsce.nnet.streaming import take_last


def transposed_conv(conv, x, time_padding):
    """A ``ConvTranspose2d`` with time stride 1, computed as stride-1 convolutions.

    Polyphase form: output bin ``f = s * m + r`` of a transposed conv with
    frequency stride ``s`` only meets the kernel taps ``r, r + s, ...``, so
    each phase ``r`` is an ordinary convolution with those taps (flipped,
    input and output channels swapped), and the ``s`` phases are interleaved.
    In time (stride 1) a transposed conv is the convolution with the flipped
    kernel over ``kernel_time - 1`` zero frames on each side; ``time_padding``
    chooses how many are added: ``(kt - 1, kt - 1)`` gives the transposed
    conv's whole output, ``(kt - 1, 0)`` its first ``T`` frames (the causal
    decoder's chomped output), ``(0, 0)`` the frames completed by the last
    of ``x``'s frames when ``x`` starts with ``kt - 1`` past frames (a
    stream step). Same numbers as ``conv`` (a test checks it) and much
    faster on CPU and in onnxruntime than their transposed convolutions.

    Arguments
    ---------
    conv : torch.nn.ConvTranspose2d
        Time stride 1, no padding, output padding, dilation or groups.
    x : torch.Tensor
        ``[B, C_in, T, F]``.
    time_padding : tuple
        ``(past, future)`` zero frames.

    Returns
    -------
    torch.Tensor
        ``[B, C_out, T + past + future - kt + 1, (F - 1) * s + kf]``.

    Example
    -------
    >>> up = torch.nn.ConvTranspose2d(4, 3, (2, 5), (1, 2))
    >>> x = torch.rand(2, 4, 6, 9)
    >>> bool(torch.allclose(transposed_conv(up, x, (1, 1)), up(x), atol=1e-6))
    True
    """
    kt, kf = conv.kernel_size
    stride = conv.stride[1]
    if (
        conv.stride[0] != 1
        or conv.padding != (0, 0)
        or conv.output_padding != (0, 0)
        or conv.dilation != (1, 1)
        or conv.groups != 1
        or kf < stride
    ):
        raise ValueError("transposed_conv needs time stride 1 and no padding, dilation or groups")
    phases = []
    for r in range(stride):
        taps = conv.weight[:, :, :, r::stride]  # [C_in, C_out, kt, Q_r]
        q = taps.shape[-1]
        kernel = taps.flip(2, 3).transpose(0, 1)
        padded = torch.nn.functional.pad(x, (q - 1, q - 1) + tuple(time_padding))
        phases.append(torch.nn.functional.conv2d(padded, kernel, conv.bias))
    if stride == 1:
        return phases[0]
    # Phase r has (q_0 - q_r) bins fewer than phase 0; interleave, then drop
    # the bins past the output (all sizes from the kernel: no shape arithmetic).
    q0 = len(range(0, kf, stride))
    phases = [
        torch.nn.functional.pad(p, (0, q0 - len(range(r, kf, stride))))
        for r, p in enumerate(phases)
    ]
    out = torch.stack(phases, dim=-1).flatten(-2)
    extra = q0 * stride - kf
    return out[..., :-extra] if extra else out


def block_conv(conv, x, step=False):
    """The expert (or plain) convolution of a block, forward or transposed.

    A forward conv is the module itself (its time padding is the input's
    past frames). A transposed conv on a whole signal runs in polyphase form
    (:func:`transposed_conv`, with ``kernel_time - 1`` zero frames on each
    side, as ``ConvTranspose2d`` pads); on a stream step (``step``: ``x``
    starts with the ``kernel_time - 1`` past frames) it is one
    ``conv_transpose2d`` whose time padding keeps only the new frames'
    outputs. Eager torch and the exported graphs run the same operations.

    Arguments
    ---------
    conv : torch.nn.Conv2d or torch.nn.ConvTranspose2d
        The block's convolution.
    x : torch.Tensor
        ``[B, C_in, T, F]``.
    step : bool
        ``x`` is a stream step's past and new frames.

    Returns
    -------
    torch.Tensor
        ``[B, C_out, T', F']``.

    Example
    -------
    >>> up = torch.nn.ConvTranspose2d(4, 3, (2, 3), (1, 2))
    >>> x = torch.rand(1, 4, 5, 6)
    >>> step = block_conv(up, x, step=True)  # frames 1.. of the transposed conv
    >>> bool(torch.allclose(step, up(x)[:, :, 1:5], atol=1e-6))
    True
    """
    if not isinstance(conv, torch.nn.ConvTranspose2d):
        return conv(x)
    past = conv.kernel_size[0] - 1
    if step:
        return torch.nn.functional.conv_transpose2d(
            x, conv.weight, conv.bias, conv.stride, (past, 0), conv.output_padding, conv.groups
        )
    return transposed_conv(conv, x, (past, past))


def pointwise(conv, x):
    """A 1x1 conv, or a 1x1 stride-1 transposed conv computed as the equivalent conv.

    The transposed form's weight ``[in, out, 1, 1]`` is the conv weight
    ``[out, in, 1, 1]`` with its first two axes swapped; computing it as a
    plain conv gives the same numbers and runs faster on CPU and in ONNX.

    Example
    -------
    >>> t = torch.nn.ConvTranspose2d(4, 3, 1)
    >>> x = torch.rand(2, 4, 5, 6)
    >>> bool(torch.allclose(pointwise(t, x), t(x), atol=1e-6))
    True
    """
    if isinstance(conv, torch.nn.ConvTranspose2d):
        if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding != (0, 0):
            return conv(x)
        return torch.nn.functional.conv2d(x, conv.weight.transpose(0, 1), conv.bias)
    return conv(x)


def _check_streamable(conv):
    if conv.stride[0] != 1 or conv.padding[0] != 0 or conv.dilation[0] != 1:
        raise ValueError(
            "streaming needs block convs with time stride 1, no time padding or dilation"
        )


def _output_freqs(conv, freqs):
    """Frequency bins out of a block's (transposed) ``conv`` for ``freqs`` bins in."""
    kf, stride = conv.kernel_size[1], conv.stride[1]
    if isinstance(conv, torch.nn.ConvTranspose2d):
        return (freqs - 1) * stride + kf
    return (freqs - kf) // stride + 1


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
    >>> (step, _), state = up.forward_step(torch.rand(1, 128, 1, 4), up.init_state(1, 4))
    >>> step.shape, state["past"].shape
    (torch.Size([1, 64, 1, 9]), torch.Size([1, 32, 1, 4]))
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
        self.transposed = transposed
        self.in_channels = in_channels
        self.inner_channels = inner_channels
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
        h = pointwise(self.conv_in, x)
        return self._gate(block_conv(self.expert_a, h), block_conv(self.expert_b, h), com)

    def _gate(self, a, b, com):
        """Cross-gates the two experts' outputs; returns ``(output, Com)``."""
        gate_src_a, gate_src_b = a, b
        if com is not None:
            gate_src_a = (a + com) / 2
            gate_src_b = (b + com) / 2
        # Each expert is gated by the *other* expert's gate.
        a_gated = a * torch.sigmoid(pointwise(self.gate_b, gate_src_b))
        b_gated = b * torch.sigmoid(pointwise(self.gate_a, gate_src_a))
        inner = a_gated + b_gated
        return pointwise(self.conv_out, inner), inner

    def init_state(self, batch_size=1, freqs=1):
        """Stream state before the first frame.

        The experts read ``kernel_time - 1`` past frames of ``conv_in``'s
        output: for a forward block those of the encoder's zero padding
        (``conv_in(0)``, i.e. its bias), for a transposed block none (zeros).

        Arguments
        ---------
        batch_size : int
            Batch of the stream.
        freqs : int
            Frequency bins of the block's input.

        Returns
        -------
        dict
            ``"past"``: ``[batch_size, inner_channels, kernel_time - 1, freqs]``.
        """
        _check_streamable(self.expert_a)
        past = self.expert_a.kernel_size[0] - 1
        w = self.conv_in.weight
        state = w.new_zeros(batch_size, self.inner_channels, past, freqs)
        if not self.transposed:
            state = state + self.conv_in.bias.detach().reshape(1, -1, 1, 1)
        return {"past": state}

    def output_freqs(self, freqs):
        """Frequency bins of the output for ``freqs`` bins of input."""
        return _output_freqs(self.expert_a, freqs)

    def forward_step(self, x, state, com=None):
        """Output for the next frames ``x`` ``[B, in_channels, n, F]`` of a stream.

        Returns ``((output, com), state)``, the pair as :meth:`forward`'s for
        these ``n`` frames.
        """
        full = torch.cat([state["past"], pointwise(self.conv_in, x)], dim=2)
        a = block_conv(self.expert_a, full, step=True)
        b = block_conv(self.expert_b, full, step=True)
        past = self.expert_a.kernel_size[0] - 1
        return self._gate(a, b, com), {"past": take_last(full, past, 2)}


class PlainConvBlock(torch.nn.Module):
    """A single (transposed) convolution with the CEB's kernel and stride.

    The baseline that the CEB replaces (the paper's ablation ``block="conv"``).
    It has no inner feature, so it cannot steer or be steered; it returns
    ``None`` in place of ``Com`` to keep the CEB's interface.

    Arguments
    ---------
    in_channels, out_channels, kernel_size, stride, transposed
        As for :class:`CEB`: one convolution of that kernel and stride.
    inner_channels : int
        Unused; accepted so the two block types are interchangeable.

    Example
    -------
    >>> block = PlainConvBlock(2, 64, kernel_size=(2, 5), stride=(1, 2))
    >>> out, com = block(torch.rand(1, 2, 11, 161))
    >>> out.shape, com
    (torch.Size([1, 64, 10, 79]), None)
    >>> (out, _), state = block.forward_step(torch.rand(1, 2, 1, 161), block.init_state(1, 161))
    >>> out.shape
    torch.Size([1, 64, 1, 79])
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
        self.in_channels = in_channels
        self.conv = conv(in_channels, out_channels, kernel_size, stride)

    def forward(self, x, com=None):
        """Returns ``(conv(x), None)``; ``com`` must be None."""
        if com is not None:
            raise ValueError("A plain conv block cannot be steered by Com.")
        return block_conv(self.conv, x), None

    def init_state(self, batch_size=1, freqs=1):
        """Stream state: ``"past"``, the last input frames ``[B, C_in, kt - 1, F]`` (zeros)."""
        _check_streamable(self.conv)
        past = self.conv.kernel_size[0] - 1
        return {"past": self.conv.weight.new_zeros(batch_size, self.in_channels, past, freqs)}

    def output_freqs(self, freqs):
        """Frequency bins of the output for ``freqs`` bins of input."""
        return _output_freqs(self.conv, freqs)

    def forward_step(self, x, state, com=None):
        """Output for the next frames of a stream: ``((conv(x), None), state)``."""
        if com is not None:
            raise ValueError("A plain conv block cannot be steered by Com.")
        full = torch.cat([state["past"], x], dim=2)
        out = block_conv(self.conv, full, step=True)
        return (out, None), {"past": take_last(full, self.conv.kernel_size[0] - 1, 2)}
