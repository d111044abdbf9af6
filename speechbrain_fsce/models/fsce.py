"""The FSCE two-branch collaborative speech-enhancement network.

A magnitude branch (encoder -> S-TCMs -> decoder) estimates the clean
magnitude; a complex branch (an encoder steered by the magnitude encoder ->
S-TCMs -> real and imaginary decoders) estimates the clean real and imaginary
parts. The output spectrum is the magnitude estimate carrying the phase of the
complex estimate. Reference: Tai et al., "Foster Strengths and Circumvent
Weaknesses: a Speech Enhancement Framework with Two-branch Collaborative
Learning", arXiv:2110.05713.

Tensor layouts: the public interface uses SpeechBrain's STFT layout
``[batch, time, freq, 2]`` (last axis: real, imaginary); the 2-D inner parts
use ``[batch, channels, time, freq]``; the S-TCMs use
``[batch, channels * freq, time]`` (channel-major flattening).

Authors
 * speechbrain-fsce developers
"""

import math
from typing import NamedTuple, Optional

import torch

from speechbrain_fsce.nnet.ceb import CEB, PlainConvBlock
from speechbrain_fsce.nnet.stcm import STCM
from speechbrain_fsce.nnet.streaming import (
    flatten_state,
    sliding_windows,
    take_last,
    unflatten_state,
)

PUBLISHED_KERNELS = ((2, 5), (2, 3), (2, 3), (2, 3), (2, 3))
BLOCKS = {"ceb": CEB, "conv": PlainConvBlock}


class FSCEOutput(NamedTuple):
    """What :class:`FSCE` returns.

    Attributes
    ----------
    enhanced : torch.Tensor
        Fused enhanced spectrum ``[B, T, F, 2]``: magnitude estimate times the
        phase of the complex estimate (mode ``"both"``), the noisy phase
        (``"magnitude"``), or the complex estimate itself (``"complex"``).
    magnitude : torch.Tensor or None
        Magnitude-branch estimate ``[B, T, F]`` (None in ``"complex"`` mode).
    complex : torch.Tensor or None
        Complex-branch estimate ``[B, T, F, 2]`` (None in ``"magnitude"`` mode).
    """

    enhanced: torch.Tensor
    magnitude: Optional[torch.Tensor]
    complex: Optional[torch.Tensor]


def _block_class(block):
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {block!r}")
    return BLOCKS[block]


class _Levels(torch.nn.Module):
    """Levels of (transposed) blocks, each followed by a norm and an activation.

    The common part of :class:`Encoder` and :class:`Decoder`: their layers
    (``blocks``, ``norms``, ``acts``, built from ``(c_in, c_out, kernel)``
    levels) and their stream state, each level's under its index.
    """

    def _build_levels(
        self, levels, block, freq_stride, inner_channels, transposed, activation, norm
    ):
        block_cls = _block_class(block)
        self.blocks = torch.nn.ModuleList(
            block_cls(
                cin, cout, tuple(kernel), (1, freq_stride), inner_channels, transposed=transposed
            )
            for cin, cout, kernel in levels
        )
        self.norms = torch.nn.ModuleList(norm(cout) for _, cout, _ in levels)
        self.acts = torch.nn.ModuleList(activation() for _ in levels)

    def init_state(self, batch_size=1, freqs=1):
        """Stream state before the first frame: each level's, under its index (``"0"``, ...).

        Arguments
        ---------
        batch_size : int
            Batch of the stream.
        freqs : int
            Frequency bins of the input (for a decoder: of the encoder's output).

        Returns
        -------
        dict
            ``{"0": {"past": tensor}, ...}``, see the blocks' ``init_state``.
        """
        state = {}
        for name, blk in self.blocks.named_children():
            state[name] = blk.init_state(batch_size, freqs)
            freqs = blk.output_freqs(freqs)
        return state


class Encoder(_Levels):
    """Causal convolutional encoder: levels of pad-past -> block -> BN -> PReLU.

    Each level pads ``kernel_time - 1`` frames of zeros on the past side, so the
    time length is kept and no future frame is used; frequency is strided.

    Arguments
    ---------
    in_channels : int
        Input channels (2: real and imaginary parts).
    channels : int
        Channels of every level.
    inner_channels : int
        Inner width of the CEBs.
    kernel_sizes : tuple
        (time, freq) kernel of each level.
    freq_stride : int
        Frequency stride of each level.
    block : str
        ``"ceb"`` or ``"conv"``.
    activation : type
        Activation class after each level.
    norm : type
        2-D normalisation class after each level.

    Example
    -------
    >>> enc = Encoder()
    >>> out, skips, coms = enc(torch.rand(2, 2, 7, 161))
    >>> out.shape, len(skips), coms[0].shape
    (torch.Size([2, 64, 7, 4]), 5, torch.Size([2, 32, 7, 79]))
    >>> sum(p.numel() for p in enc.parameters())
    100133
    >>> state = enc.init_state(2, 161)
    >>> (out, skips, coms), state = enc.eval().forward_step(torch.rand(2, 2, 1, 161), state)
    >>> out.shape, list(state), state["4"]["past"].shape
    (torch.Size([2, 64, 1, 4]), ['0', '1', '2', '3', '4'], torch.Size([2, 32, 1, 9]))
    """

    def __init__(
        self,
        in_channels=2,
        channels=64,
        inner_channels=32,
        kernel_sizes=PUBLISHED_KERNELS,
        freq_stride=2,
        block="ceb",
        activation=torch.nn.PReLU,
        norm=torch.nn.BatchNorm2d,
    ):
        super().__init__()
        self.freq_stride = freq_stride
        self.past_pads = [k[0] - 1 for k in kernel_sizes]
        levels = [
            (in_channels if i == 0 else channels, channels, k) for i, k in enumerate(kernel_sizes)
        ]
        self._build_levels(levels, block, freq_stride, inner_channels, False, activation, norm)

    def forward(self, x, coms=None):
        """Encodes ``x`` ``[B, C, T, F]``.

        Arguments
        ---------
        x : torch.Tensor
            Input ``[B, in_channels, T, F]``.
        coms : list of torch.Tensor, optional
            Per-level ``Com`` of the magnitude encoder; makes the CEBs CCEBs.

        Returns
        -------
        output : torch.Tensor
            ``[B, channels, T, F_enc]``.
        skips : list of torch.Tensor
            Each level's output (after norm and activation), for the decoder.
        coms : list of torch.Tensor or None
            Each level's inner feature ``Com``.
        """
        skips, inner = [], []
        for i, (blk, nrm, act) in enumerate(zip(self.blocks, self.norms, self.acts)):
            x = torch.nn.functional.pad(x, (0, 0, self.past_pads[i], 0))
            x, com = blk(x, None if coms is None else coms[i])
            x = act(nrm(x))
            skips.append(x)
            inner.append(com)
        return x, skips, inner

    def forward_step(self, x, state, coms=None):
        """Encodes the next frames ``[B, C, n, F]`` of a stream (eval mode).

        Returns ``((output, skips, coms), state)``: :meth:`forward`'s triple
        for these frames, then the new state.
        """
        skips, inner, new_state = [], [], {}
        for i, (name, blk) in enumerate(self.blocks.named_children()):
            (x, com), new_state[name] = blk.forward_step(
                x, state[name], None if coms is None else coms[i]
            )
            x = self.acts[i](self.norms[i](x))
            skips.append(x)
            inner.append(com)
        return (x, skips, inner), new_state


class Decoder(_Levels):
    """U-Net decoder: levels of concat(skip) -> transposed block -> chomp -> BN -> PReLU.

    Level ``i`` concatenates ``[current, skip]`` where the skip is the output of
    the mirrored encoder level; the transposed block upsamples frequency and
    adds ``kernel_time - 1`` frames, which are dropped from the end (causal).

    Arguments
    ---------
    channels : int
        Channels of the encoder levels.
    out_channels : int
        Channels of the last level.
    inner_channels : int
        Inner width of the transposed CEBs.
    kernel_sizes : tuple
        The *encoder's* kernels; the decoder mirrors them.
    freq_stride : int
        Frequency upsampling of each level.
    block : str
        ``"ceb"`` or ``"conv"``.
    activation : type
        Activation class after each level (the last level included).
    norm : type
        2-D normalisation class after each level (the last level included).

    Example
    -------
    >>> enc, dec = Encoder(), Decoder()
    >>> out, skips, _ = enc(torch.rand(2, 2, 7, 161))
    >>> dec(out, skips).shape
    torch.Size([2, 1, 7, 161])
    >>> sum(p.numel() for p in dec.parameters())
    110152
    >>> enc, dec = enc.eval(), dec.eval()
    >>> (out, skips, _), _ = enc.forward_step(torch.rand(2, 2, 1, 161), enc.init_state(2, 161))
    >>> y, state = dec.forward_step(out, skips, dec.init_state(2, 4))
    >>> y.shape, len(state)
    (torch.Size([2, 1, 1, 161]), 5)
    """

    def __init__(
        self,
        channels=64,
        out_channels=1,
        inner_channels=32,
        kernel_sizes=PUBLISHED_KERNELS,
        freq_stride=2,
        block="ceb",
        activation=torch.nn.PReLU,
        norm=torch.nn.BatchNorm2d,
    ):
        super().__init__()
        self.freq_stride = freq_stride
        mirrored = list(kernel_sizes)[::-1]
        self.chomps = [k[0] - 1 for k in mirrored]
        levels = [
            (2 * channels, out_channels if i == len(mirrored) - 1 else channels, k)
            for i, k in enumerate(mirrored)
        ]
        self._build_levels(levels, block, freq_stride, inner_channels, True, activation, norm)

    def forward(self, x, skips):
        """Decodes ``x`` ``[B, channels, T, F_enc]`` with encoder ``skips``.

        Returns ``[B, out_channels, T, F]``.
        """
        for i, (blk, nrm, act) in enumerate(zip(self.blocks, self.norms, self.acts)):
            x, _ = blk(torch.cat([x, skips[-1 - i]], dim=1))
            if self.chomps[i]:
                x = x[:, :, : -self.chomps[i]]
            x = act(nrm(x))
        return x

    def forward_step(self, x, skips, state):
        """Decodes the next frames of a stream; returns ``(output, state)``."""
        new_state = {}
        for i, (name, blk) in enumerate(self.blocks.named_children()):
            (x, _), new_state[name] = blk.forward_step(
                torch.cat([x, skips[-1 - i]], dim=1), state[name]
            )
            x = self.acts[i](self.norms[i](x))
        return x, new_state


class DecoderGroup(torch.nn.Module):
    """Decoders of the same shape stepped together as grouped convolutions (inference only).

    Level ``j`` of every decoder is one grouped 1x1 conv (``conv_in``), one
    batched matrix product for both experts of every decoder (their
    transposed convs in polyphase form, over the input's patches), one
    grouped 1x1 conv (the gates; each expert's slot receives the *other*
    expert's gate), one grouped ``conv_out`` and one PReLU: a stream step costs about
    a third of the kernels of the decoders run one after the other, in eager
    torch and in an exported graph. The weights are copied, grouped, when the
    group is built: build it from decoders whose BatchNorms were folded
    (:func:`~speechbrain_fsce.models.folding.fold_batchnorm` does both).
    The state is the decoders' own (:meth:`Decoder.init_state`).

    Arguments
    ---------
    decoders : list of Decoder
        Decoders with transposed CEB levels of the same shapes, identity
        norms and single-slope PReLU activations.

    Example
    -------
    >>> decoders = [Decoder(8, 1, 4).eval() for _ in range(3)]
    >>> for dec in decoders:
    ...     dec.norms = torch.nn.ModuleList(torch.nn.Identity() for _ in dec.norms)
    >>> group = DecoderGroup(decoders)
    >>> x, skips = torch.rand(1, 8, 1, 4), [torch.rand(1, 8, 1, f) for f in (79, 39, 19, 9, 4)]
    >>> states = [dec.init_state(1, 4) for dec in decoders]
    >>> outs, _ = group.forward_step([(x, skips)] * 3, states)
    >>> ref, _ = decoders[2].forward_step(x, skips, states[2])
    >>> outs[2].shape, bool(torch.allclose(outs[2], ref, atol=1e-6))
    (torch.Size([1, 1, 1, 161]), True)
    """

    def __init__(self, decoders):
        super().__init__()
        if not groupable(decoders):
            raise ValueError(
                "DecoderGroup needs decoders of the same shape with transposed CEB "
                "levels, folded (identity) norms and single-slope PReLUs"
            )
        self.size = len(decoders)
        first = decoders[0].blocks
        self.pasts = [blk.expert_a.kernel_size[0] - 1 for blk in first]
        self.strides = [blk.expert_a.stride[1] for blk in first]
        kernels = [blk.expert_a.kernel_size[1] for blk in first]
        self.taps = [-(-kf // s) for kf, s in zip(kernels, self.strides)]
        self.trims = [q * s - kf for q, s, kf in zip(self.taps, self.strides, kernels)]
        with torch.no_grad():
            for j, blocks in enumerate(zip(*(dec.blocks for dec in decoders))):
                # Transposed 1x1 convs as convs: [in, out, 1, 1] -> [out, in, 1, 1].
                gates = []
                for blk in blocks:
                    ga, gb = (g.weight.transpose(0, 1) for g in (blk.gate_a, blk.gate_b))
                    zero = torch.zeros_like(ga)
                    gates.append(torch.cat([torch.cat([zero, gb], 1), torch.cat([ga, zero], 1)]))
                grouped = {
                    "w_in": [blk.conv_in.weight.transpose(0, 1) for blk in blocks],
                    "b_in": [blk.conv_in.bias for blk in blocks],
                    "w_exp": [
                        _polyphase_kernel(
                            torch.cat([blk.expert_a.weight, blk.expert_b.weight], 1),
                            self.strides[j],
                            self.taps[j],
                        )
                        .flatten(1)
                        .t()[None, None, None]  # [1, 1, 1, C * kt * q, s * C_out]
                        for blk in blocks
                    ],
                    "b_exp": [
                        torch.cat([blk.expert_a.bias, blk.expert_b.bias]).repeat(self.strides[j])[
                            None, None, None, None
                        ]
                        for blk in blocks
                    ],
                    "w_gate": gates,
                    "b_gate": [torch.cat([blk.gate_b.bias, blk.gate_a.bias]) for blk in blocks],
                    "w_out": [blk.conv_out.weight.transpose(0, 1) for blk in blocks],
                    "b_out": [blk.conv_out.bias for blk in blocks],
                    "slope": [
                        dec.acts[j].weight.expand(blk.conv_out.out_channels)
                        for dec, blk in zip(decoders, blocks)
                    ],
                }
                for name, tensors in grouped.items():
                    value = torch.cat([t.detach() for t in tensors]).contiguous()
                    self.register_buffer(f"{name}_{j}", value, persistent=False)

    def _level(self, j, x, past):
        """Level ``j`` of every decoder on ``x`` ``[B, k * C_in, n, F]`` after ``past``."""
        w = {name: getattr(self, f"{name}_{j}") for name in _GROUP_WEIGHTS}
        k = self.size
        h = torch.nn.functional.conv2d(x, w["w_in"], w["b_in"], groups=k)
        full = torch.cat([past, h], dim=2)
        # Both experts of every decoder: their transposed convs in polyphase form
        # (_polyphase_kernel) as one batched matrix product over the input's
        # patches (time kernel x frequency taps), the phases then interleaved.
        q, s, p = self.taps[j], self.strides[j], self.pasts[j]
        patches = torch.nn.functional.pad(full, (q - 1, q - 1))
        patches = sliding_windows(sliding_windows(patches, p + 1, dim=2), q, dim=3)
        # [B, k * C, n, F', kt, q] -> [k, B, n, F', C * kt * q]: only axes of known size
        # are merged or split (an exported graph keeps the batch and the frames dynamic).
        patches = patches.unflatten(1, (k, -1)).permute(1, 0, 3, 4, 2, 5, 6).flatten(4)
        phases = torch.matmul(patches, w["w_exp"]) + w["b_exp"]  # [k, B, n, F', s * C]
        experts = phases.unflatten(-1, (s, -1)).permute(1, 0, 5, 2, 3, 4).flatten(4).flatten(1, 2)
        if self.trims[j]:
            experts = experts[..., : -self.trims[j]]
        gates = torch.nn.functional.conv2d(experts, w["w_gate"], w["b_gate"], groups=k)
        inner = (experts * torch.sigmoid(gates)).unflatten(1, (k, 2, -1)).sum(2).flatten(1, 2)
        out = torch.nn.functional.conv2d(inner, w["w_out"], w["b_out"], groups=k)
        return torch.nn.functional.prelu(out, w["slope"]), take_last(full, self.pasts[j], 2)

    def forward_step(self, inputs, states):
        """The next frames of every decoder's stream.

        Arguments
        ---------
        inputs : list of tuple
            ``(x, skips)`` of each decoder, as for :meth:`Decoder.forward_step`.
        states : list of dict
            Each decoder's state.

        Returns
        -------
        outputs : list of torch.Tensor
            Each decoder's output ``[B, out_channels, n, F]``.
        states : list of dict
            Each decoder's state after these frames.
        """
        new_states = [{} for _ in inputs]
        xs = [x for x, _ in inputs]
        for j in range(len(self.pasts)):
            name = str(j)
            x = torch.cat([t for x, (_, skips) in zip(xs, inputs) for t in (x, skips[-1 - j])], 1)
            past = torch.cat([state[name]["past"] for state in states], 1)
            x, past = self._level(j, x, past)
            xs = x.chunk(self.size, 1)
            for new_state, part in zip(new_states, past.chunk(self.size, 1)):
                new_state[name] = {"past": part}
        return list(xs), new_states


def _polyphase_kernel(weight, stride, taps):
    """A transposed conv's weight as the conv that gives all its frequency phases at once.

    For ``weight`` ``[C_in, C_out, kt, kf]`` (time stride 1, frequency stride
    ``stride``), output bin ``stride * m + r`` is ``sum_j W[..., r + stride * j]
    x[m - j]``: the returned ``[stride * C_out, C_in, kt, taps]`` kernel (phase
    major; time and frequency taps flipped, missing taps zero) computes every
    phase ``r`` as a plain correlation over ``x`` padded by ``taps - 1`` bins
    on each side (and starting with the ``kt - 1`` past frames); the phases
    interleaved are the transposed conv's output, with ``taps * stride - kf``
    extra bins at the end.
    """
    c_in, c_out, kt, kf = weight.shape
    padded = torch.nn.functional.pad(weight, (0, taps * stride - kf))
    phases = padded.reshape(c_in, c_out, kt, taps, stride).permute(4, 1, 0, 2, 3)
    return phases.flip(3, 4).reshape(stride * c_out, c_in, kt, taps)


_GROUP_WEIGHTS = ("w_in", "b_in", "w_exp", "b_exp", "w_gate", "b_gate", "w_out", "b_out", "slope")


def groupable(decoders):
    """Whether decoders can be stepped as a :class:`DecoderGroup`.

    At least two, with transposed CEB levels of the same shapes, identity
    norms (folded) and single-slope PReLU activations.

    Example
    -------
    >>> groupable([Decoder(), Decoder()])  # BatchNorms not folded
    False
    """
    if len(decoders) < 2:
        return False
    shapes = {tuple(tuple(p.shape) for p in dec.parameters()) for dec in decoders}
    return len(shapes) == 1 and all(
        isinstance(blk, CEB)
        and isinstance(norm, torch.nn.Identity)
        and type(act) is torch.nn.PReLU
        and act.weight.numel() == 1
        for dec in decoders
        for blk, norm, act in zip(dec.blocks, dec.norms, dec.acts)
    )


class FSCE(torch.nn.Module):
    """FSCE: the two-branch collaborative enhancement network.

    Takes the noisy STFT ``[B, T, F, 2]`` (optionally power-compressed by the
    front end) and returns an :class:`FSCEOutput` with the fused enhanced
    spectrum and the estimates of both branches. The defaults are the
    published configuration (3,214,992 parameters, non-causal S-TCMs).

    Arguments
    ---------
    branches : str
        ``"both"`` (FSCE), ``"magnitude"`` (magnitude branch only, noisy phase)
        or ``"complex"`` (complex branch only) — the paper's ablation.
    collaborate : bool or None
        Steer the complex encoder with the magnitude encoder's ``Com`` (CCEB);
        False uses plain CEBs there. Needs ``block="ceb"`` and both branches;
        None (default) collaborates whenever that is possible.
    block : str
        ``"ceb"`` (collaborative expert blocks) or ``"conv"`` (a plain conv of
        the same kernel, the baseline the CEB replaces).
    causal : bool
        Pad the S-TCMs on the past side only: zero look-ahead, 20 ms latency.
    num_freqs : int
        Frequency bins of the input (161 for a 320-point FFT).
    channels : int
        Channels of every encoder/decoder level.
    inner_channels : int
        Inner width of the CEBs.
    kernel_sizes : tuple
        (time, freq) kernel of each encoder level; decoders mirror them.
    freq_stride : int
        Frequency stride of each encoder level.
    tcm_hidden_channels : int
        Channels inside the S-TCM residual blocks.
    tcm_kernel_size : int
        Kernel of the dilated convolutions.
    dilations : tuple
        Dilations of the residual blocks of one temporal conv module.
    num_tcm_modules : int
        Temporal conv modules per branch.
    magnitude_output : str
        ``"mapping"`` (paper: 1x1 conv + Softplus predicts the magnitude) or
        ``"mask"`` (a bounded mask ``mask_max * sigmoid`` on the noisy
        magnitude, initialised to 1 so training starts at the input).
    mask_max : float
        Upper bound of the mask (``"mask"`` output only).
    complex_output : str
        ``"mapping"`` (paper: decoders output real/imag parts) or
        ``"residual"`` (noisy spectrum + a learnt gain, initialised to 0, times
        the decoders' output, so training starts at the input).
    activation : type
        Activation class (single-slope PReLU in the paper).
    eps : float
        Keeps the phase of an all-zero complex estimate finite.

    Example
    -------
    >>> model = FSCE()
    >>> sum(p.numel() for p in model.parameters())
    3214992
    >>> out = model(torch.rand(3, 12, 161, 2))
    >>> out.enhanced.shape, out.magnitude.shape, out.complex.shape
    (torch.Size([3, 12, 161, 2]), torch.Size([3, 12, 161]), torch.Size([3, 12, 161, 2]))
    >>> FSCE(branches="magnitude")(torch.rand(1, 5, 161, 2)).complex is None
    True
    """

    def __init__(
        self,
        branches="both",
        collaborate=None,
        block="ceb",
        causal=False,
        num_freqs=161,
        channels=64,
        inner_channels=32,
        kernel_sizes=PUBLISHED_KERNELS,
        freq_stride=2,
        tcm_hidden_channels=64,
        tcm_kernel_size=5,
        dilations=(1, 2, 4, 8, 16, 32),
        num_tcm_modules=3,
        magnitude_output="mapping",
        mask_max=2.0,
        complex_output="mapping",
        activation=torch.nn.PReLU,
        eps=1e-8,
    ):
        super().__init__()
        if branches not in ("both", "magnitude", "complex"):
            raise ValueError(f"branches must be 'both', 'magnitude' or 'complex', got {branches!r}")
        if magnitude_output not in ("mapping", "mask"):
            raise ValueError(
                f"magnitude_output must be 'mapping' or 'mask', got {magnitude_output!r}"
            )
        if complex_output not in ("mapping", "residual"):
            raise ValueError(
                f"complex_output must be 'mapping' or 'residual', got {complex_output!r}"
            )
        _block_class(block)
        self.branches = branches
        if collaborate is None:
            collaborate = block == "ceb"
        self.collaborate = bool(collaborate) and branches == "both"
        if self.collaborate and block != "ceb":
            raise ValueError(
                "collaborate=True needs block='ceb' (a plain conv has no Com "
                "to share); set collaborate: False for the plain-conv ablation"
            )
        self.causal = causal
        self.magnitude_output = magnitude_output
        self.complex_output = complex_output
        self.mask_max = mask_max
        self.eps = eps
        kernel_sizes = tuple(tuple(k) for k in kernel_sizes)
        self.kernel_sizes = kernel_sizes

        enc_freqs = num_freqs
        for k in kernel_sizes:
            enc_freqs = (enc_freqs - k[1]) // freq_stride + 1
        dec_freqs = enc_freqs
        for k in kernel_sizes[::-1]:
            dec_freqs = (dec_freqs - 1) * freq_stride + k[1]
        if enc_freqs < 1 or dec_freqs != num_freqs:
            raise ValueError(
                f"num_freqs={num_freqs} is not restored by these kernels and "
                f"strides (decoder gives {dec_freqs}); use e.g. 161 or 257"
            )
        self.num_freqs = num_freqs
        self.encoded_freqs = enc_freqs

        coder = dict(
            channels=channels,
            inner_channels=inner_channels,
            kernel_sizes=kernel_sizes,
            freq_stride=freq_stride,
            block=block,
            activation=activation,
        )
        tcm = dict(
            channels=channels * enc_freqs,
            hidden_channels=tcm_hidden_channels,
            kernel_size=tcm_kernel_size,
            dilations=tuple(dilations),
            num_modules=num_tcm_modules,
            causal=causal,
            activation=activation,
        )
        if branches in ("both", "magnitude"):
            self.mag_encoder = Encoder(in_channels=2, **coder)
            self.mag_tcm = STCM(**tcm)
            self.mag_decoder = Decoder(out_channels=1, **coder)
            self.mag_head = torch.nn.Conv2d(1, 1, 1)
            if magnitude_output == "mask":
                # Start as an identity mask so training begins at the input.
                torch.nn.init.zeros_(self.mag_head.weight)
                torch.nn.init.constant_(self.mag_head.bias, -math.log(mask_max - 1.0))
        if branches in ("both", "complex"):
            self.cplx_encoder = Encoder(in_channels=2, **coder)
            self.cplx_tcm = STCM(**tcm)
            self.real_decoder = Decoder(out_channels=1, **coder)
            self.imag_decoder = Decoder(out_channels=1, **coder)
            if complex_output == "residual":
                self.residual_gain = torch.nn.Parameter(torch.zeros(1))
        if magnitude_output == "mask" and mask_max <= 1.0:
            raise ValueError("mask_max must be > 1 so the mask can start at 1")

    def time_receptive_field(self):
        """Frames of past and future input that one output frame depends on.

        Returns
        -------
        (look_back, look_ahead) : tuple of int

        Example
        -------
        >>> FSCE().time_receptive_field(), FSCE(causal=True).time_receptive_field()
        ((388, 378), (766, 0))
        """
        coder_past = sum(k[0] - 1 for k in self.kernel_sizes)
        tcm = self.mag_tcm if hasattr(self, "mag_tcm") else self.cplx_tcm
        return 2 * coder_past + tcm.look_back, tcm.look_ahead

    def _to_tcm(self, x):
        """``[B, C, T, F_enc]`` -> ``[B, C * F_enc, T]``, channel-major (index ``c * F_enc + f``)."""
        return x.transpose(2, 3).flatten(1, 2)

    def _from_tcm(self, y):
        # Sizes from the module, not the tensor: a traced graph needs no shape arithmetic.
        return y.unflatten(1, (-1, self.encoded_freqs)).transpose(2, 3)

    def forward(self, x, lengths=None):
        """Enhances a noisy spectrum.

        Arguments
        ---------
        x : torch.Tensor
            Noisy spectrum ``[B, T, F, 2]`` (real, imaginary).
        lengths : torch.Tensor, optional
            Relative lengths; accepted for SpeechBrain compatibility (every
            layer is frame-local or causal/symmetric in time, so no masking).

        Returns
        -------
        FSCEOutput
        """
        return self._run(x, None)[0]

    def _check_streamable(self):
        if not self.causal:
            raise ValueError(
                "Streaming needs a causal FSCE model (causal: True); this one looks "
                f"{self.time_receptive_field()[1]} frames ahead. Use "
                "speechbrain_fsce.inference.chunked for non-causal models."
            )

    def init_state(self, batch_size=1):
        """Stream state before the first frame (causal models only).

        Each module declares its own state (its ``init_state``); this is
        theirs under the modules' names, flattened (see
        :mod:`speechbrain_fsce.nnet.streaming`).

        Arguments
        ---------
        batch_size : int
            Batch of the stream.

        Returns
        -------
        dict
            Plain tensors by name, in the order of :meth:`state_names`:
            ``"<coder>.<level>.past"`` ``[B, C, kernel_time - 1, F]``, the past
            frames that each encoder/decoder level's time kernel reads, and
            ``"<branch>_tcm.<block>.path_a"`` / ``".path_b"``
            ``[B, tcm_hidden_channels, context]``, the past normalised frames
            of each S-TCM block's two paths.

        Example
        -------
        >>> model = FSCE(causal=True, channels=8, inner_channels=4, tcm_hidden_channels=8,
        ...              num_tcm_modules=1, dilations=(1, 2))
        >>> state = model.init_state(1)
        >>> state["mag_encoder.0.past"].shape, state["cplx_tcm.1.path_b"].shape
        (torch.Size([1, 4, 1, 161]), torch.Size([1, 8, 8]))
        """
        self._check_streamable()
        state = {}
        if hasattr(self, "mag_encoder"):
            state["mag_encoder"] = self.mag_encoder.init_state(batch_size, self.num_freqs)
            state["mag_tcm"] = self.mag_tcm.init_state(batch_size)
            state["mag_decoder"] = self.mag_decoder.init_state(batch_size, self.encoded_freqs)
        if hasattr(self, "cplx_encoder"):
            state["cplx_encoder"] = self.cplx_encoder.init_state(batch_size, self.num_freqs)
            state["cplx_tcm"] = self.cplx_tcm.init_state(batch_size)
            for name in ("real_decoder", "imag_decoder"):
                state[name] = getattr(self, name).init_state(batch_size, self.encoded_freqs)
        return flatten_state(state)

    def state_names(self):
        """Names of the tensors of :meth:`init_state`, e.g. ``"mag_tcm.3.path_a"`` (causal models)."""
        return list(self.init_state(1))

    def forward_step(self, x, state):
        """Runs the next frames of a stream through the network (eval mode).

        The outputs, concatenated over steps, equal :meth:`forward` on the
        whole spectrum (eval mode, causal model).

        Arguments
        ---------
        x : torch.Tensor
            Next noisy frames ``[B, n, F, 2]``, ``n >= 1``.
        state : dict
            From :meth:`init_state` or the previous step: tensors by name.

        Returns
        -------
        output : FSCEOutput
            For these ``n`` frames.
        state : dict
            The state after them, the same names in the same order.

        Example
        -------
        >>> model = FSCE(causal=True, channels=8, inner_channels=4, tcm_hidden_channels=8,
        ...              num_tcm_modules=1, dilations=(1, 2)).eval()
        >>> spec = torch.randn(1, 9, 161, 2)
        >>> state = model.init_state(1)
        >>> first, state = model.forward_step(spec[:, :4], state)
        >>> second, state = model.forward_step(spec[:, 4:], state)
        >>> whole = model(spec).enhanced
        >>> bool(torch.allclose(torch.cat([first.enhanced, second.enhanced], 1), whole, atol=1e-5))
        True
        """
        self._check_streamable()
        if self.training:
            raise ValueError("forward_step needs eval mode (BatchNorm with running statistics)")
        nested = unflatten_state(state)
        output, new_state = self._run(x, nested)
        return output, flatten_state({name: new_state[name] for name in nested})

    def _run(self, x, state):
        """:meth:`forward` (``state`` None) or :meth:`forward_step`: one home for both."""
        if x.dim() != 4 or x.shape[-1] != 2 or x.shape[2] != self.num_freqs:
            raise ValueError(
                f"FSCE expects [batch, time, {self.num_freqs}, 2], got {tuple(x.shape)}"
            )
        inp = x.permute(0, 3, 1, 2)  # [B, 2, T, F]
        new_state = None if state is None else {}

        def run(name, *inputs, **options):
            """Submodule ``name`` offline (no state) or as a stream step (its own state)."""
            module = getattr(self, name)
            if state is None:
                return module(*inputs, **options)
            output, new_state[name] = module.forward_step(*inputs, state=state[name], **options)
            return output

        has_mag, has_cplx = hasattr(self, "mag_encoder"), hasattr(self, "cplx_encoder")
        magnitude = cplx = coms = None
        if has_mag:
            h_mag, skips_mag, coms = run("mag_encoder", inp)
        if has_cplx:
            h_cplx, skips_cplx, _ = run(
                "cplx_encoder", inp, coms=coms if self.collaborate else None
            )

        pair = getattr(self, "tcm_pair", None)  # set by folding.fold_batchnorm
        if state is not None and pair is not None:
            h_mag, h_cplx = self._paired_tcms(h_mag, h_cplx, state, new_state)
        else:
            if has_mag:
                h_mag = self._from_tcm(run("mag_tcm", self._to_tcm(h_mag)))
            if has_cplx:
                h_cplx = self._from_tcm(run("cplx_tcm", self._to_tcm(h_cplx)))

        inputs = {}
        if has_mag:
            inputs["mag_decoder"] = (h_mag, skips_mag)
        if has_cplx:
            inputs["real_decoder"] = inputs["imag_decoder"] = (h_cplx, skips_cplx)
        group = getattr(self, "decoder_group", None)  # set by folding.fold_batchnorm
        if state is not None and group is not None:
            names = list(inputs)
            outputs, states = group.forward_step(
                list(inputs.values()), [state[name] for name in names]
            )
            decoded = dict(zip(names, outputs))
            new_state.update(zip(names, states))
        else:
            decoded = {name: run(name, h, skips) for name, (h, skips) in inputs.items()}

        if has_mag:
            magnitude = self.magnitude_estimate(x, decoded["mag_decoder"])
        if has_cplx:
            cplx = self.complex_estimate(x, decoded["real_decoder"], decoded["imag_decoder"])
        return self.fuse(x, magnitude, cplx), new_state

    def _paired_tcms(self, h_mag, h_cplx, state, new_state):
        """A stream step of both branches' S-TCMs as one :class:`~speechbrain_fsce.nnet.stcm.STCMPair`."""
        x = torch.stack([self._to_tcm(h).transpose(1, 2) for h in (h_mag, h_cplx)])
        y, (new_state["mag_tcm"], new_state["cplx_tcm"]) = self.tcm_pair.forward_step(
            x, [state["mag_tcm"], state["cplx_tcm"]]
        )
        return [self._from_tcm(part.transpose(1, 2)) for part in y.unbind(0)]

    def magnitude_estimate(self, x, decoded):
        """Magnitude branch output ``[B, T, F]`` from its decoder's ``[B, 1, T, F]``."""
        head = self.mag_head(decoded).squeeze(1)
        if self.magnitude_output == "mask":
            noisy_mag = torch.sqrt(x.pow(2).sum(-1) + self.eps)
            return noisy_mag * self.mask_max * torch.sigmoid(head)
        return torch.nn.functional.softplus(head)

    def complex_estimate(self, x, real, imag):
        """Complex branch output ``[B, T, F, 2]`` from the two ``[B, 1, T, F]`` decoders."""
        cplx = torch.stack([real.squeeze(1), imag.squeeze(1)], dim=-1)
        if self.complex_output == "residual":
            cplx = x + self.residual_gain * cplx
        return cplx

    def fuse(self, x, magnitude, cplx):
        """Fused :class:`FSCEOutput`: magnitude with the complex (or noisy) phase."""
        if self.branches == "complex":
            return FSCEOutput(cplx, magnitude, cplx)
        phase_src = x if self.branches == "magnitude" else cplx
        # cos/sin of atan2(imag, real) without atan2's undefined gradient at 0.
        unit = phase_src / torch.sqrt(phase_src.pow(2).sum(-1, keepdim=True) + self.eps)
        return FSCEOutput(magnitude.unsqueeze(-1) * unit, magnitude, cplx)
