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
state. The state is a dict of plain tensors (the last normalised frames of
each path, see :mod:`speechbrain_fsce.nnet.streaming`), so a step can be
traced and exported.

Authors
 * speechbrain-fsce developers
"""

import torch

from speechbrain_fsce.nnet.streaming import sliding_windows, take_last


def pointwise_step(conv, x):
    """A 1x1 ``Conv1d`` on ``[B, C, n]`` as a matrix product.

    Eager torch runs it faster than the convolution on a few frames; the
    exported step graph traces the same operations.

    Example
    -------
    >>> conv = torch.nn.Conv1d(6, 4, 1)
    >>> x = torch.rand(2, 6, 3)
    >>> bool(torch.allclose(pointwise_step(conv, x), conv(x), atol=1e-6))
    True
    """
    return torch.nn.functional.linear(x.transpose(1, 2), conv.weight[:, :, 0], conv.bias).transpose(
        1, 2
    )


def dilated_step(conv, full):
    """A dilated ``Conv1d`` on ``full`` ``[B, C, context + n]`` as one matrix product.

    Each of the ``n`` outputs reads every ``dilation``-th frame of its
    window: the windows' taps are gathered (``sliding_windows``) and multiplied by the
    flattened kernel. PyTorch's dilated convolutions are slow on such short
    inputs; the exported step graph traces the same operations.

    Example
    -------
    >>> conv = torch.nn.Conv1d(6, 4, 3, dilation=2)
    >>> full = torch.rand(2, 6, 7)
    >>> bool(torch.allclose(dilated_step(conv, full), conv(full), atol=1e-6))
    True
    """
    taps = sliding_windows(full, conv.kernel_size[0], conv.dilation[0], dim=2)  # [B, C, n, kernel]
    y = torch.nn.functional.linear(
        taps.transpose(1, 2).flatten(2), conv.weight.flatten(1), conv.bias
    )
    return y.transpose(1, 2)


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
        dict
            ``"path_a"``, ``"path_b"``: the past normalised frames that each
            path's dilated conv reads, ``[batch_size, hidden_channels, context]``.
        """
        if not self.causal:
            raise ValueError(
                "a non-causal S-TCM block looks ahead and cannot run as a stream; "
                "build it with causal=True"
            )
        zeros = self.conv_in.weight.new_zeros(batch_size, self.hidden_channels, self.context)
        if self.path_pad_values is None:
            return {"path_a": zeros, "path_b": zeros.clone()}
        pads = self.path_pad_values.reshape(2, 1, -1, 1)
        return {"path_a": zeros + pads[0], "path_b": zeros + pads[1]}

    def forward_step(self, x, state):
        """Runs the next frames of a stream (eval mode).

        Arguments
        ---------
        x : torch.Tensor
            Next frames ``[B, channels, n]``, ``n >= 1``.
        state : dict
            From :meth:`init_state` or the previous step.

        Returns
        -------
        y : torch.Tensor
            ``[B, channels, n]``: what :meth:`forward` gives for these frames.
        state : dict
            The state after these frames.
        """
        h = pointwise_step(self.conv_in, x)
        full_a = torch.cat([state["path_a"], self._normalised(self.path_a, h)], dim=2)
        full_b = torch.cat([state["path_b"], self._normalised(self.path_b, h)], dim=2)
        a = dilated_step(self.path_a[2], full_a)
        b = dilated_step(self.path_b[2], full_b)
        y = self._gated(x, a, b, pointwise_step)
        return y, {
            "path_a": take_last(full_a, self.context, 2),
            "path_b": take_last(full_b, self.context, 2),
        }


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
    >>> y.shape, list(state), list(state["0"])
    (torch.Size([2, 32, 1]), ['0', '1'], ['path_a', 'path_b'])
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
        """Stream state before the first frame: every block's, under its index (``"0"``, ...)."""
        return {name: block.init_state(batch_size) for name, block in self.blocks.named_children()}

    def forward_step(self, x, state):
        """Next frames ``[B, channels, n]`` of a stream -> ``(output, state)``."""
        new_state = {}
        for name, block in self.blocks.named_children():
            x, new_state[name] = block.forward_step(x, state[name])
        return x, new_state


class STCMPair(torch.nn.Module):
    """Two causal S-TCMs of the same shape run as one batched stack (inference only).

    FSCE's two branches each end their encoder in an S-TCM; block ``i`` of
    one and block ``i`` of the other do the same operations on different
    weights, so they run as batched matrix products: per block one for both
    ``conv_in``, one for the four dilated convs (two paths of two stacks),
    one for both ``conv_out``. A step then costs a third of the kernels of
    the two stacks run one after the other, in eager torch and in an
    exported graph alike. The weights are copied, stacked, when the pair is
    built: build it from trained stacks whose BatchNorms were folded into
    the convolutions (:func:`~speechbrain_fsce.models.folding.fold_batchnorm`
    does both), and build it again after any change to their weights.

    The state is the two stacks' own (:meth:`STCM.init_state`), so a stream
    can switch between the pair and the stacks at any step.

    Arguments
    ---------
    first, second : STCM
        Causal stacks of equal shape, with identity norms (folded) and
        single-slope PReLU activations.

    Example
    -------
    >>> stacks = [STCM(32, 8, dilations=(1, 2), num_modules=1, causal=True).eval() for _ in range(2)]
    >>> for stack in stacks:
    ...     for block in stack.blocks:
    ...         block.path_a[1] = block.path_b[1] = block.out_norm = torch.nn.Identity()
    >>> pair = STCMPair(*stacks)
    >>> x = torch.rand(2, 3, 7, 32)  # [stack, batch, time, channels]
    >>> y = pair(x)
    >>> bool(torch.allclose(y[1], stacks[1](x[1].transpose(1, 2)).transpose(1, 2), atol=1e-5))
    True
    """

    def __init__(self, first, second):
        super().__init__()
        pairs = list(zip(first.blocks, second.blocks))
        if not pairable(first, second):
            raise ValueError(
                "STCMPair needs two causal S-TCMs of the same shape with folded "
                "(identity) norms and single-slope PReLUs"
            )
        self.contexts = [a.context for a, _ in pairs]
        self.dilations = [a.path_a[2].dilation[0] for a, _ in pairs]
        self.kernel_size = first.blocks[0].path_a[2].kernel_size[0]
        with torch.no_grad():
            for i, blocks in enumerate(pairs):
                paths = [p for b in blocks for p in (b.path_a, b.path_b)]
                stacked = {
                    "w_in": [b.conv_in.weight[:, :, 0].t() for b in blocks],
                    "b_in": [b.conv_in.bias[None] for b in blocks],
                    "slope_path": [p[0].weight.reshape(1, 1) for p in paths],
                    "w_dil": [p[2].weight.flatten(1).t() for p in paths],
                    "b_dil": [p[2].bias[None] for p in paths],
                    "slope_out": [b.out_act.weight.reshape(1, 1) for b in blocks],
                    "w_out": [b.conv_out.weight[:, :, 0].t() for b in blocks],
                    "b_out": [b.conv_out.bias[None] for b in blocks],
                }
                pads = [
                    b.conv_in.weight.new_zeros(2, b.hidden_channels)
                    if b.path_pad_values is None
                    else b.path_pad_values
                    for b in blocks
                ]
                stacked["pad"] = [torch.cat(pads).reshape(4, 1, -1, 1)]
                for name, tensors in stacked.items():
                    value = torch.stack([t.detach() for t in tensors]).contiguous()
                    if name == "slope_path":
                        value = value.reshape(2, 2, 1, 1, 1)
                    elif name == "pad":
                        value = value[0]
                    else:  # a batch axis, broadcast in the products: [stack, 1, ...]
                        value = value.unsqueeze(1)
                    self.register_buffer(f"{name}_{i}", value, persistent=False)

    def _block(self, i, x, past):
        """Block ``i`` of both stacks: ``x`` ``[2, B, n, C]``, ``past`` ``[4, B, H, context]``.

        Only axes of known size are merged or split (an exported graph keeps
        the batch and the frames dynamic).
        """
        w = {name: getattr(self, f"{name}_{i}") for name in _PAIR_WEIGHTS}
        h = torch.matmul(x, w["w_in"]) + w["b_in"]  # [2, B, n, H]
        h = h.unsqueeze(1)  # [stack, path, B, n, H]
        h = torch.where(h >= 0, h, h * w["slope_path"])
        full = torch.cat([past, h.flatten(0, 1).transpose(2, 3)], dim=3)  # [4, B, H, context + n]
        if x.shape[2] == 1:
            # One frame (the streamer's steps, the exported step graph): its
            # taps are every d-th frame, one strided slice; n frames: windows.
            taps = full[..., :: self.dilations[i]].reshape(4, -1, 1, w["w_dil"].shape[2])
        else:
            taps = sliding_windows(full, self.kernel_size, self.dilations[i], dim=3)
            taps = taps.permute(0, 1, 3, 2, 4).flatten(3)  # [4, B, n, H * kernel]
        paths = (torch.matmul(taps, w["w_dil"]) + w["b_dil"]).unflatten(0, (2, 2))
        gated = paths[:, 0] * torch.sigmoid(paths[:, 1])
        gated = torch.where(gated >= 0, gated, gated * w["slope_out"])
        y = torch.matmul(gated, w["w_out"]) + w["b_out"] + x
        return y, take_last(full, self.contexts[i], 3)

    def forward(self, x):
        """Both stacks on ``x`` ``[2, B, T, channels]`` (time-major) from the start of a signal."""
        return self.forward_step(x, [None, None])[0]

    def forward_step(self, x, states):
        """The next frames ``[2, B, n, channels]`` of both stacks' streams.

        Arguments
        ---------
        x : torch.Tensor
            ``[2, B, n, channels]``: the first stack's input, then the second's.
        states : list
            The two stacks' states (:meth:`STCM.init_state`); None: the state
            before the first frame.

        Returns
        -------
        y : torch.Tensor
            ``[2, B, n, channels]``.
        states : list of dict
            The two stacks' states after these frames.
        """
        new_states = [{}, {}]
        for i in range(len(self.contexts)):
            name = str(i)
            if states[0] is None:
                past = self.init_past(i, x.shape[1])
            else:
                past = torch.stack([s[name][path] for s in states for path in ("path_a", "path_b")])
            x, past = self._block(i, x, past)
            for k, (a, b) in enumerate(zip(past[0::2].unbind(0), past[1::2].unbind(0))):
                new_states[k][name] = {"path_a": a, "path_b": b}
        return x, new_states

    def init_past(self, i, batch_size):
        """Block ``i``'s four paths' state before the first frame ``[4, B, H, context]``.

        The causal padding: zeros, or the folded BatchNorms' ``path_pad_values``.
        """
        pad = getattr(self, f"pad_{i}")
        return pad.expand(4, batch_size, pad.shape[2], self.contexts[i])


_PAIR_WEIGHTS = ("w_in", "b_in", "slope_path", "w_dil", "b_dil", "slope_out", "w_out", "b_out")


def pairable(first, second):
    """Whether two S-TCMs can run as an :class:`STCMPair`.

    They must be causal, of the same shape, with identity norms (folded) and
    single-slope PReLU activations.

    Example
    -------
    >>> pairable(STCM(causal=True), STCM(causal=True))  # BatchNorms not folded
    False
    """
    return len(first.blocks) == len(second.blocks) and all(
        _pairable_blocks(a, b) for a, b in zip(first.blocks, second.blocks)
    )


def _pairable_blocks(a, b):
    same = a.context == b.context and a.conv_in.weight.shape == b.conv_in.weight.shape
    same = same and a.path_a[2].weight.shape == b.path_a[2].weight.shape
    same = same and a.path_a[2].dilation == b.path_a[2].dilation
    for block in (a, b):
        acts = (block.path_a[0], block.path_b[0], block.out_act)
        norms = (block.path_a[1], block.path_b[1], block.out_norm)
        same = same and block.causal
        same = same and all(type(m) is torch.nn.PReLU and m.weight.numel() == 1 for m in acts)
        same = same and all(isinstance(m, torch.nn.Identity) for m in norms)
    return same
