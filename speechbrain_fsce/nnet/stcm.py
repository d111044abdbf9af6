"""Stacked temporal convolution module (S-TCM) of FSCE.

Works on features flattened to ``[batch, channels, time]``. Each residual block
compresses the channels with a 1x1 conv, runs two dilated-conv paths of which
one (through a sigmoid) gates the other, and expands back with a residual.

Each path is ``PReLU -> BatchNorm1d -> dilated Conv1d`` and, as in the
authors' model, the time padding is the dilated conv's own zero padding: the
zeros are inserted *after* the normalisation, separately on each path, so
they never enter the batch statistics and edge frames see exact zeros.

Both modules also run as a stream (causal blocks only): ``init_state`` gives
the state before the first frame and ``forward_step`` takes the next frames
and that state and returns the output for exactly those frames and the new
state. The state is a list of plain tensors (the last normalised frames of
each path), so a step can be traced and exported.

Authors
 * speechbrain-fsce developers
"""

import torch


def take_last(x, n, dim=-1):
    """The last ``n`` entries of ``x`` along ``dim`` (an empty slice for n=0).

    Written as a slice with constant bounds, so that a traced (ONNX) graph
    needs no shape arithmetic.

    Example
    -------
    >>> take_last(torch.arange(5), 2), take_last(torch.arange(5), 0).shape
    (tensor([3, 4]), torch.Size([0]))
    """
    index = [slice(None)] * x.dim()
    index[dim] = slice(-n, None) if n else slice(0, 0)
    return x[tuple(index)]


def _dilated_step(conv, full, one_frame):
    """The dilated ``conv`` on past + new frames (as many outputs as new frames).

    For a single new frame the conv reads every ``dilation``-th frame once:
    a matrix-vector product (PyTorch's CPU convolutions, dilated ones above
    all, are slow on such short inputs). When exporting to ONNX it stays one
    convolution node (onnxruntime runs it well).
    """
    if one_frame and not torch.onnx.is_in_onnx_export():
        taps = full[:, :, :: conv.dilation[0]].flatten(1)  # [B, C * kernel]
        return torch.nn.functional.linear(taps, conv.weight.flatten(1), conv.bias).unsqueeze(-1)
    return conv(full)


def _pointwise_step(conv, x):
    """A 1x1 ``Conv1d`` on ``[B, C, n]`` as a matrix product (faster in eager torch).

    When exporting to ONNX it stays a convolution: one graph node instead of three.
    """
    if torch.onnx.is_in_onnx_export():
        return conv(x)
    return torch.nn.functional.linear(x.transpose(1, 2), conv.weight[:, :, 0], conv.bias).transpose(
        1, 2
    )


class GatedDilatedBlock(torch.nn.Module):
    """One residual block of a temporal convolution module.

    ``y = x + conv_out(BN(PReLU(A * sigmoid(B))))`` where
    ``A = dconv_a(pad(BN(PReLU(h))))``, ``B`` likewise on its own path, and
    ``h = conv_in(x)``.

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
    >>> causal = GatedDilatedBlock(16, 8, dilation=2, causal=True).eval()
    >>> x = torch.rand(1, 16, 6)
    >>> state = causal.init_state(1)
    >>> y1, state = causal.forward_step(x[..., :4], state)
    >>> y2, state = causal.forward_step(x[..., 4:], state)
    >>> bool(torch.allclose(torch.cat([y1, y2], -1), causal(x), atol=1e-6))
    True
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
        self.hidden_channels = hidden_channels
        self.conv_in = torch.nn.Conv1d(channels, hidden_channels, 1)
        self.path_a = self._path(hidden_channels, kernel_size, dilation, activation, norm)
        self.path_b = self._path(hidden_channels, kernel_size, dilation, activation, norm)
        self.out_act = activation()
        self.out_norm = norm(hidden_channels)
        self.conv_out = torch.nn.Conv1d(hidden_channels, channels, 1)
        # Values padded on paths A and B ([2, hidden]); None = zeros. Only
        # fold_batchnorm sets them (the padding of a path whose BatchNorm was
        # folded into its conv is the value that normalised to 0).
        self.register_buffer("path_pad_values", None, persistent=False)

    @staticmethod
    def _path(channels, kernel_size, dilation, activation, norm):
        # Applied as conv(pad(norm(act(h)))) by ``_run_path``: the padding
        # sits between the normalisation and the dilated conv.
        return torch.nn.Sequential(
            activation(),
            norm(channels),
            torch.nn.Conv1d(channels, channels, kernel_size, dilation=dilation),
        )

    @property
    def padding(self):
        """``(past, future)`` zero frames padded in front of each dilated conv."""
        if self.causal:
            return self.context, 0
        return self.context // 2, self.context - self.context // 2

    def pad(self, h, path=0):
        """Pads time: ``context`` frames of the past (causal) or half each side.

        Zeros, or ``path_pad_values[path]`` per channel (folded BatchNorm).
        """
        if self.path_pad_values is None:
            return torch.nn.functional.pad(h, self.padding)
        left, right = self.padding
        value = self.path_pad_values[path].reshape(1, -1, 1)
        return torch.cat(
            [value.expand(h.shape[0], -1, left), h, value.expand(h.shape[0], -1, right)], dim=2
        )

    def _gated(self, x, a, b, conv_out=None):
        """The residual output from the two paths' outputs."""
        gated = self.out_norm(self.out_act(a * torch.sigmoid(b)))
        return x + (self.conv_out(gated) if conv_out is None else conv_out(self.conv_out, gated))

    def _normalised(self, path, h):
        act, norm, _ = path
        return norm(act(h))

    def forward(self, x, lengths=None):
        """``x``: ``[B, channels, T]`` -> ``[B, channels, T]``."""
        h = self.conv_in(x)
        a = self.path_a[2](self.pad(self._normalised(self.path_a, h), 0))
        b = self.path_b[2](self.pad(self._normalised(self.path_b, h), 1))
        return self._gated(x, a, b)

    def init_state(self, batch_size=1):
        """Stream state before the first frame: the causal zero padding.

        Returns
        -------
        list of torch.Tensor
            Past normalised frames of path A and path B, each
            ``[batch_size, hidden_channels, context]``.
        """
        if not self.causal:
            raise ValueError(
                "a non-causal S-TCM block looks ahead and cannot run as a stream; "
                "build it with causal=True"
            )
        w = self.conv_in.weight
        zeros = w.new_zeros(batch_size, self.hidden_channels, self.context)
        if self.path_pad_values is None:
            return [zeros, zeros.clone()]
        return [zeros + self.path_pad_values[i].reshape(1, -1, 1) for i in range(2)]

    def state_names(self):
        """Names of the tensors of :meth:`init_state`, in order."""
        return ["path_a", "path_b"]

    def forward_step(self, x, state):
        """Runs the next frames of a stream (eval mode).

        Arguments
        ---------
        x : torch.Tensor
            Next frames ``[B, channels, n]``, ``n >= 1``.
        state : list of torch.Tensor
            From :meth:`init_state` or the previous step.

        Returns
        -------
        y : torch.Tensor
            ``[B, channels, n]``: what :meth:`forward` gives for these frames.
        state : list of torch.Tensor
            The state after these frames.
        """
        h = _pointwise_step(self.conv_in, x)
        full_a = torch.cat([state[0], self._normalised(self.path_a, h)], dim=2)
        full_b = torch.cat([state[1], self._normalised(self.path_b, h)], dim=2)
        one = x.shape[2] == 1
        a = _dilated_step(self.path_a[2], full_a, one)
        b = _dilated_step(self.path_b[2], full_b, one)
        y = self._gated(x, a, b, _pointwise_step)
        return y, [take_last(full_a, self.context, 2), take_last(full_b, self.context, 2)]


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
    >>> small = STCM(32, 8, dilations=(1, 2), num_modules=1, causal=True).eval()
    >>> y, state = small.forward_step(torch.rand(2, 32, 1), small.init_state(2))
    >>> y.shape, len(state), small.state_names()[:2]
    (torch.Size([2, 32, 1]), 4, ['0.path_a', '0.path_b'])
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
            GatedDilatedBlock(channels, hidden_channels, kernel_size, d, causal, activation, norm)
            for _ in range(num_modules)
            for d in dilations
        )

    @property
    def look_ahead(self):
        """Future frames that one output frame depends on."""
        return sum(b.padding[1] for b in self.blocks)

    @property
    def look_back(self):
        """Past frames that one output frame depends on."""
        return sum(b.padding[0] for b in self.blocks)

    def forward(self, x, lengths=None):
        """``x``: ``[B, channels, T]`` -> ``[B, channels, T]``."""
        for block in self.blocks:
            x = block(x)
        return x

    def init_state(self, batch_size=1):
        """Stream state before the first frame: every block's, in order."""
        return [s for block in self.blocks for s in block.init_state(batch_size)]

    def state_names(self):
        """Names of the tensors of :meth:`init_state`: ``"<block>.<path>"``."""
        return [f"{i}.{n}" for i, block in enumerate(self.blocks) for n in block.state_names()]

    def forward_step(self, x, state):
        """Next frames ``[B, channels, n]`` of a stream -> ``(output, state)``."""
        new_state, k = [], 0
        for block in self.blocks:
            x, s = block.forward_step(x, state[k : k + 2])
            new_state.extend(s)
            k += 2
        return x, new_state
