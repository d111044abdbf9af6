"""Export FSCE to ONNX: an offline graph and, for causal models, a streaming step.

``export_onnx(enhancer, folder)`` writes

* ``fsce_offline.onnx``: the whole waveform enhancer,
  ``noisy [batch, samples]`` and ``scale [batch, 1]`` (the level to divide
  by; 0 measures each signal's RMS in the graph) -> ``enhanced [batch,
  samples]``, traced from :meth:`FSCEEnhancer.forward_framed
  <speechbrain_fsce.models.FSCEEnhancer.forward_framed>`;
* ``fsce_stream.onnx`` (causal models): one hop of
  :meth:`FSCEEnhancer.forward_step <speechbrain_fsce.models.FSCEEnhancer.forward_step>`
  with every piece of state as an explicit input and output:
  ``noisy_hop [batch, hop]``, ``scale [batch, 1]`` and the tensors named by
  the enhancer's ``init_state`` in, ``enhanced_hop`` and ``next.<name>`` out;
* ``fsce_onnx.json``: sample rate, hop, FFT size, compression exponent, level
  normalisation, latency, each state tensor's name, shape (batch 1) and
  initial value, the SHA-256 of the network's weights (:func:`weights_sha256`)
  and of each graph file.

The analysis and synthesis (window, DFT as a product with fixed bases,
compression, overlap-add) are inside both graphs, written once in
:class:`~speechbrain_fsce.processing.spectral.SpectralFrontEnd`'s framed
methods; nothing is re-implemented for export, and the runtime
(:mod:`speechbrain_fsce.inference.onnx_runtime`, numpy + onnxruntime only)
holds no signal arithmetic.

A model folder may ship such an export in its ``onnx/`` sub-folder;
:func:`onnx_enhancer` runs it when it belongs to the folder's weights (same
weights SHA-256, graph files unchanged, same receptive field) and exports
afresh to a temporary folder otherwise. :class:`OnnxEnhancer` is the
offline graph in place of an :class:`~speechbrain_fsce.models.FSCEEnhancer`
(``fsce-enhance --backend onnx``).

Needs the optional extra: ``pip install -e ".[onnx]"`` (onnx, onnxruntime).

Authors
 * speechbrain-fsce developers
"""

import hashlib
import io
import json
import logging
import os
import tempfile
import warnings

import torch

from speechbrain_fsce.fileio import atomic_path
from speechbrain_fsce.inference.onnx_runtime import CONFIG_NAME, FORMAT, _session, run_offline

OFFLINE_GRAPH = "fsce_offline.onnx"
STREAM_GRAPH = "fsce_stream.onnx"
OPSET = 17

logger = logging.getLogger(__name__)


class _Offline(torch.nn.Module):
    """Traceable view of ``FSCEEnhancer.forward_framed``: waveforms and levels in, waveforms out."""

    def __init__(self, enhancer):
        super().__init__()
        self.enhancer = enhancer

    def forward(self, noisy, scale):
        return self.enhancer.forward_framed(noisy, scale)


class _Step(torch.nn.Module):
    """Traceable view of ``FSCEEnhancer.forward_step`` with the state as flat arguments."""

    def __init__(self, enhancer, names):
        super().__init__()
        self.enhancer = enhancer
        self.names = names

    def forward(self, noisy_hop, scale, *state):
        out, new_state = self.enhancer.forward_step(noisy_hop, scale, dict(zip(self.names, state)))
        return (out, *(new_state[n] for n in self.names))


def _export(module, args, input_names, output_names, dynamic_axes):
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buf,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    return buf.getvalue()


def _write(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def weights_sha256(model):
    """SHA-256 of a module's ``state_dict``: names, dtypes, shapes and values.

    The same weights give the same digest whatever the device they sit on
    and however they were loaded; an export records it
    (``weights_sha256`` in ``fsce_onnx.json``) so that a later run can tell
    whether shipped graphs belong to the weights it loaded.

    Arguments
    ---------
    model : torch.nn.Module
        The network (``FSCEEnhancer.model``).

    Returns
    -------
    str
        64 lowercase hex digits.

    Example
    -------
    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> _ = b.load_state_dict(a.state_dict())
    >>> weights_sha256(a) == weights_sha256(b), len(weights_sha256(a))
    (True, 64)
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx(enhancer, folder, fold=True):
    """Writes the ONNX graphs and their JSON description for an enhancer.

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        The enhancer (any device; exported from a CPU copy in eval mode).
    folder : str
        Output folder (created; existing files of the same names are
        replaced atomically, other files are left alone).
    fold : bool
        Merge the eval-mode BatchNorms into convolutions first
        (:func:`~speechbrain_fsce.models.folding.fold_batchnorm`): same
        function, fewer operations.

    Returns
    -------
    dict
        The JSON description that was written.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> tiny = FSCEEnhancer(FSCE(causal=True, channels=4, inner_channels=2, tcm_hidden_channels=4,
    ...                          num_tcm_modules=1, dilations=(1,)))
    >>> folder = str(getfixture("tmp_path"))
    >>> config = export_onnx(tiny, folder)
    >>> sorted(os.listdir(folder))
    ['fsce_offline.onnx', 'fsce_onnx.json', 'fsce_stream.onnx']
    >>> [(s["name"], s["shape"]) for s in config["state"][:3]]
    [('input.previous_hop', [1, 160]), ('output.overlap', [1, 160]), ('mag_encoder.0.past', [1, 2, 1, 161])]
    """
    import copy

    from speechbrain_fsce.models.enhancer import FSCEEnhancer
    from speechbrain_fsce.models.folding import fold_batchnorm

    fe = enhancer.front_end
    fe.check_framed()
    weights = weights_sha256(enhancer.model)  # of the weights as loaded, before folding
    model = copy.deepcopy(enhancer.model).cpu().float().eval()
    if fold:
        model = fold_batchnorm(model)
    graph = FSCEEnhancer(model, fe).eval()
    os.makedirs(folder, exist_ok=True)
    hop = fe.hop_samples
    offline = _export(
        _Offline(graph),
        (torch.randn(1, 8 * hop + 37) * 0.1, torch.zeros(1, 1)),
        ["noisy", "scale"],
        ["enhanced"],
        {
            "noisy": {0: "batch", 1: "samples"},
            "scale": {0: "batch"},
            "enhanced": {0: "batch", 1: "samples"},
        },
    )
    config = {
        "format": FORMAT,
        "sample_rate": fe.sample_rate,
        "hop_samples": hop,
        "n_fft": fe.n_fft,
        "num_freqs": model.num_freqs,
        "compression": fe.compression,
        "eps": fe.eps,
        "normalize_level": fe.normalize_level,
        "causal": bool(model.causal),
        "receptive_field_frames": list(model.time_receptive_field()),
        "offline_graph": OFFLINE_GRAPH,
        "stream_graph": None,
        "latency_samples": hop,
        "algorithmic_latency_ms": 2 * hop / fe.sample_rate * 1000,
        "opset": OPSET,
        "state": [],
        "weights_sha256": weights,
        "graphs_sha256": {OFFLINE_GRAPH: hashlib.sha256(offline).hexdigest()},
    }
    _write(os.path.join(folder, OFFLINE_GRAPH), offline)
    if model.causal:
        state = graph.init_state(1, torch.device("cpu"))
        names = list(state)
        step = _export(
            _Step(graph, names),
            (torch.randn(1, hop) * 0.1, torch.full((1, 1), 0.1), *state.values()),
            ["noisy_hop", "scale"] + names,
            ["enhanced_hop"] + ["next." + n for n in names],
            {
                name: {0: "batch"}
                for name in ["noisy_hop", "scale", "enhanced_hop"]
                + names
                + ["next." + n for n in names]
            },
        )
        _write(os.path.join(folder, STREAM_GRAPH), step)
        config["stream_graph"] = STREAM_GRAPH
        config["graphs_sha256"][STREAM_GRAPH] = hashlib.sha256(step).hexdigest()
        config["state"] = [
            {"name": n, "shape": list(s.shape), "initial": _initial(s)} for n, s in state.items()
        ]
    _write(os.path.join(folder, CONFIG_NAME), json.dumps(config, indent=1).encode("utf-8"))
    return config


def _initial(state):
    """A state's initial value, compactly: 0.0, or one value per channel (a bias)."""
    if not state.any():
        return 0.0
    per_channel = state[:, :, :1, :1] if state.dim() == 4 else state[:, :, :1]
    if not torch.equal(per_channel.expand_as(state), state):
        raise ValueError("initial stream state varies within a channel; cannot describe it")
    return per_channel.tolist()


class _ExportedNetwork:
    """What the chunker reads of an exported network: causal and receptive field."""

    def __init__(self, config):
        self.causal = config["causal"]
        self.num_freqs = config["num_freqs"]
        self._receptive_field = tuple(config["receptive_field_frames"])

    def time_receptive_field(self):
        """``(look_back, look_ahead)`` frames of the exported network (as ``FSCE``'s)."""
        return self._receptive_field


class OnnxEnhancer(torch.nn.Module):
    """The offline ONNX graph in place of an ``FSCEEnhancer`` (waveforms in and out).

    ``OnnxEnhancer(folder, front_end)`` enhances waveforms with onnxruntime
    running the whole of ``fsce_offline.onnx`` (analysis, network,
    synthesis). It has what the interface and the chunker read of an
    enhancer: ``front_end`` (rate, hop, the level), ``model`` (causal,
    receptive field: long files go through the chunker with the receptive
    field as context, exact for causal models too) and
    ``forward(noisy, lengths=None, scale=None)``.

    Arguments
    ---------
    folder : str
        Folder written by :func:`export_onnx`.
    front_end : speechbrain_fsce.processing.spectral.SpectralFrontEnd
        The front end of the exported enhancer (for its settings and the
        level of padded batches).
    threads : int
        onnxruntime intra-op threads.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> enhancer = FSCEEnhancer(FSCE(channels=4, inner_channels=2, tcm_hidden_channels=4,
    ...                              num_tcm_modules=1, dilations=(1,))).eval()
    >>> folder = str(getfixture("tmp_path"))
    >>> _ = export_onnx(enhancer, folder)
    >>> x = torch.randn(2, 4321)
    >>> y = OnnxEnhancer(folder, enhancer.front_end)(x)
    >>> y.shape, bool((y - enhancer(x)).abs().max() < 1e-4)
    (torch.Size([2, 4321]), True)
    """

    def __init__(self, folder, front_end, threads=1):
        super().__init__()
        from speechbrain_fsce.inference.onnx_runtime import load_config

        self.config = load_config(folder)
        self.front_end = front_end
        self.model = _ExportedNetwork(self.config)
        self.session = _session(os.path.join(folder, self.config["offline_graph"]), threads)

    def forward(self, noisy, lengths=None, scale=None):
        """``[B, samples]`` or ``[samples]`` -> enhanced, same shape (as ``FSCEEnhancer``).

        ``scale`` ``[B, 1]`` is the level to divide by (default: each
        signal's RMS, over its valid samples when ``lengths`` is given).
        """
        if scale is None and lengths is not None:
            scale = self.front_end.level(noisy if noisy.dim() == 2 else noisy[None], lengths)
        if scale is not None:
            scale = torch.as_tensor(scale).detach().cpu().float().numpy()
        out = run_offline(self.session, noisy.detach().cpu().float().numpy(), scale)
        return torch.from_numpy(out).to(noisy.device)


def shipped_export_mismatch(enhancer, folder):
    """Why the export in ``folder`` cannot stand for ``enhancer``'s network (None: it can).

    It can when its ``fsce_onnx.json`` is valid, records the SHA-256 of
    ``enhancer.model``'s weights (:func:`weights_sha256`) and of the offline
    graph file as it is now, and describes the same network (causal, number
    of frequencies, receptive field).

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        The torch enhancer loaded from the model folder.
    folder : str
        A folder written by :func:`export_onnx` (a model folder's ``onnx/``).

    Returns
    -------
    str or None
        A short reason, or None when the export can be used.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> tiny = FSCEEnhancer(FSCE(channels=4, inner_channels=2, tcm_hidden_channels=4,
    ...                          num_tcm_modules=1, dilations=(1,))).eval()
    >>> folder = str(getfixture("tmp_path"))
    >>> _ = export_onnx(tiny, folder)
    >>> shipped_export_mismatch(tiny, folder) is None
    True
    >>> with torch.no_grad():
    ...     _ = next(tiny.model.parameters()).add_(1.0)
    >>> shipped_export_mismatch(tiny, folder)
    'exported from other weights (weights_sha256 differs)'
    """
    from speechbrain_fsce.inference.onnx_runtime import load_config

    if not os.path.isfile(os.path.join(folder, CONFIG_NAME)):
        return f"no {CONFIG_NAME}"
    try:
        config = load_config(folder)
    except ValueError as err:
        return str(err).strip().splitlines()[0]
    if config["weights_sha256"] != weights_sha256(enhancer.model):
        return "exported from other weights (weights_sha256 differs)"
    model = enhancer.model
    if (
        config["causal"] != bool(model.causal)
        or config["num_freqs"] != model.num_freqs
        or config["receptive_field_frames"] != list(model.time_receptive_field())
    ):
        return "exported from another architecture (causal, num_freqs or receptive field differs)"
    graph = config["offline_graph"]
    path = os.path.join(folder, graph)
    if not os.path.isfile(path) or _file_sha256(path) != config["graphs_sha256"][graph]:
        return f"{graph} is missing or changed since export (graphs_sha256 differs)"
    return None


def onnx_enhancer(enhancer, threads=1, folder=None, shipped=None):
    """``enhancer`` exported and run in onnxruntime (an :class:`OnnxEnhancer`).

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        The torch enhancer (its front end is kept).
    threads : int
        onnxruntime intra-op threads.
    folder : str, optional
        Where to export; default: a temporary folder, removed when the
        session has been created.
    shipped : str, optional
        An existing export of this enhancer (a model folder's ``onnx/``):
        its graph is run, without exporting, when
        :func:`shipped_export_mismatch` finds nothing against it; otherwise
        the enhancer is exported as without it (a log line says why).

    Returns
    -------
    OnnxEnhancer
    """
    if shipped is not None and folder is None:
        if not os.path.isdir(shipped):
            logger.info("no ONNX export in %s: exporting the network for this run", shipped)
        else:
            reason = shipped_export_mismatch(enhancer, shipped)
            if reason is None:
                return OnnxEnhancer(shipped, enhancer.front_end, threads).eval()
            logger.warning(
                "not using the ONNX export in %s (%s): exporting the network for this run; "
                "fsce-export --model <model folder> --onnx %s writes one that is used",
                shipped,
                reason,
                shipped,
            )
    if folder is not None:
        export_onnx(enhancer, folder)
        return OnnxEnhancer(folder, enhancer.front_end, threads).eval()
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(enhancer, tmp)
        return OnnxEnhancer(tmp, enhancer.front_end, threads).eval()
