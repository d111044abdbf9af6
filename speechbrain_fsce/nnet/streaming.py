"""Stream states of the network's modules: named tensors, nested like the modules.

Every module that runs as a stream declares its own state: ``init_state``
returns a dict of the tensors it carries from one step to the next (names,
shapes and initial values), a parent module's state holds its children's
under their attribute names, and ``forward_step(..., state)`` returns the
output and a new state of the same structure. Only the edge of the network
sees a flat mapping (``"mag_tcm.3.path_a"`` to a tensor, the names of an
exported step graph's inputs): :func:`flatten_state` and
:func:`unflatten_state` are the one place where one becomes the other.

Authors
 * speechbrain-fsce developers
"""

import torch


def flatten_state(state, prefix=""):
    """A nested stream state as one flat dict, names joined by dots, in order.

    Arguments
    ---------
    state : dict
        Tensors, or dicts of them, to any depth.
    prefix : str
        Put in front of every name.

    Returns
    -------
    dict
        ``{"a.b.c": tensor}``, in the nested dicts' order (depth first).

    Example
    -------
    >>> flatten_state({"tcm": {"0": {"path_a": 1, "path_b": 2}}, "head": {"past": 3}})
    {'tcm.0.path_a': 1, 'tcm.0.path_b': 2, 'head.past': 3}
    """
    flat = {}
    for name, value in state.items():
        if isinstance(value, dict):
            flat.update(flatten_state(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = value
    return flat


def unflatten_state(flat):
    """The nested stream state of a flat one (inverse of :func:`flatten_state`).

    Arguments
    ---------
    flat : dict
        ``{"a.b.c": tensor}``.

    Returns
    -------
    dict
        Nested dicts, in the order of ``flat``.

    Example
    -------
    >>> unflatten_state({"tcm.0.path_a": 1, "tcm.0.path_b": 2, "head.past": 3})
    {'tcm': {'0': {'path_a': 1, 'path_b': 2}}, 'head': {'past': 3}}
    """
    nested = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


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


def sliding_windows(x, size, dilation=1, dim=-1):
    """Every whole window of ``size`` taps ``dilation`` apart along ``dim``, as a new last axis.

    ``out[..., t, j] = x[..., t + j * dilation]`` (``t`` along ``dim``): what
    ``x.unfold(dim, (size - 1) * dilation + 1, 1)[..., ::dilation]`` gives,
    written as slices with constant bounds, so that a traced (ONNX) graph
    needs no shape arithmetic and keeps dynamic sizes (the exporter cannot
    unfold a tensor of unknown size).

    Example
    -------
    >>> sliding_windows(torch.arange(6), 3, dilation=2)
    tensor([[0, 2, 4],
            [1, 3, 5]])
    """
    span = (size - 1) * dilation
    index = [slice(None)] * x.dim()
    windows = []
    for j in range(size):
        index[dim] = slice(j * dilation, (j * dilation - span) or None)
        windows.append(x[tuple(index)])
    return torch.stack(windows, dim=-1)
