"""Eval-mode BatchNorm folding: an optional optimisation pass over FSCE.

In eval mode a BatchNorm layer is a fixed per-channel affine map, so it can
be merged into a neighbouring linear layer. :func:`fold_batchnorm` returns a
copy of an :class:`~speechbrain_fsce.models.FSCE` in which

* each encoder/decoder level's BatchNorm2d is merged into the block's last
  convolution (the CEB's ``conv_out``, or the plain conv);
* each S-TCM block's output BatchNorm1d is merged into its ``conv_out``;
* each S-TCM path's BatchNorm1d is merged into the dilated conv after it,
  whose padding then becomes the per-channel value that the BatchNorm maps
  to zero (``path_pad_values``), so edge frames stay exact;

and the merged BatchNorms are replaced by identities. A stream step of
the copy then runs the two S-TCMs of a causal model with both branches as
one batched stack (:class:`~speechbrain_fsce.nnet.stcm.STCMPair`,
``tcm_pair``) and its decoders as grouped convolutions
(:class:`~speechbrain_fsce.models.fsce.DecoderGroup`, ``decoder_group``):
about a third of their kernels, in eager torch and in an exported step
graph (offline, the S-TCMs and decoders run as they are). The copy computes
the same function (up to float rounding) with fewer operations; it is for
inference only (do not train it) and is not saved.

Authors
 * speechbrain-fsce developers
"""

import copy

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from speechbrain_fsce.models.fsce import DecoderGroup, groupable
from speechbrain_fsce.nnet.ceb import CEB
from speechbrain_fsce.nnet.stcm import STCM, STCMPair, pairable


def _affine(bn):
    """Eval-mode BatchNorm as ``x * scale + shift`` per channel."""
    if not isinstance(bn, _BatchNorm) or bn.running_var is None:
        raise ValueError(
            f"can only fold BatchNorm layers with running statistics, found {type(bn).__name__}"
        )
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale.detach(), shift.detach()


def _fold_after(conv, bn):
    """``bn(conv(x))`` -> ``conv'(x)``: scales the conv's output channels."""
    scale, shift = _affine(bn)
    axis = 1 if isinstance(conv, torch.nn.ConvTranspose2d) else 0
    shape = [1] * conv.weight.dim()
    shape[axis] = -1
    conv.weight.data = conv.weight.data * scale.reshape(shape)
    bias = conv.bias.data if conv.bias is not None else torch.zeros_like(scale)
    conv.bias = torch.nn.Parameter(bias * scale + shift)


def _fold_before(conv, bn):
    """``conv(bn(y))`` -> ``conv'(y)`` for a Conv1d: scales its input channels.

    Returns the per-channel value ``y0`` with ``bn(y0) = 0`` (what a zero
    padding after the BatchNorm becomes before it).
    """
    scale, shift = _affine(bn)
    if torch.any(scale == 0):
        raise ValueError("cannot fold a BatchNorm with a zero scale into the next conv")
    w = conv.weight.data
    bias = conv.bias.data if conv.bias is not None else w.new_zeros(w.shape[0])
    conv.bias = torch.nn.Parameter(bias + (w * shift[None, :, None]).sum((1, 2)))
    conv.weight.data = w * scale[None, :, None]
    return -shift / scale


def fold_batchnorm(model):
    """A copy of ``model`` (eval mode) with its BatchNorms merged into convolutions.

    Arguments
    ---------
    model : speechbrain_fsce.models.FSCE
        The network (left unchanged).

    Returns
    -------
    speechbrain_fsce.models.FSCE
        The folded copy, in eval mode.

    Example
    -------
    >>> from speechbrain_fsce import FSCE
    >>> model = FSCE(causal=True, channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...              num_tcm_modules=1, dilations=(1, 2)).eval()
    >>> folded = fold_batchnorm(model)
    >>> x = torch.randn(1, 20, 161, 2)
    >>> bool(torch.allclose(folded(x).enhanced, model(x).enhanced, atol=1e-5))
    True
    >>> sum(isinstance(m, torch.nn.BatchNorm1d) for m in folded.modules())
    0
    >>> type(folded.tcm_pair).__name__  # the two S-TCMs batched (causal, both branches)
    'STCMPair'
    """
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module in folded.modules():
            if hasattr(module, "blocks") and hasattr(module, "norms"):  # encoder / decoder
                for i, (blk, nrm) in enumerate(zip(module.blocks, module.norms)):
                    _fold_after(blk.conv_out if isinstance(blk, CEB) else blk.conv, nrm)
                    module.norms[i] = torch.nn.Identity()
            elif isinstance(module, STCM):
                for block in module.blocks:
                    scale, shift = _affine(block.out_norm)
                    conv = block.conv_out
                    conv.bias.data = conv.bias.data + (
                        conv.weight.data[:, :, 0] * shift[None, :]
                    ).sum(1)
                    conv.weight.data = conv.weight.data * scale[None, :, None]
                    block.out_norm = torch.nn.Identity()
                    pads = []
                    for path in (block.path_a, block.path_b):
                        pads.append(_fold_before(path[2], path[1]))
                        path[1] = torch.nn.Identity()
                    block.path_pad_values = torch.stack(pads)
        tcms = [getattr(folded, name, None) for name in ("mag_tcm", "cplx_tcm")]
        if None not in tcms and pairable(*tcms):
            folded.tcm_pair = STCMPair(*tcms)
        decoders = [
            getattr(folded, name)
            for name in ("mag_decoder", "real_decoder", "imag_decoder")
            if hasattr(folded, name)
        ]
        if groupable(decoders):
            folded.decoder_group = DecoderGroup(decoders)
    return folded
