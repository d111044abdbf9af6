"""Export FSCE to ONNX: an offline graph and, for causal models, a streaming step.

``export_onnx(enhancer, folder)`` writes

* ``fsce_offline.onnx``: the network on a compressed noisy spectrum of any
  length, ``noisy_spectrum [batch, frames, freqs, 2]`` ->
  ``enhanced_spectrum`` (the fused output of :class:`~speechbrain_fsce.models.FSCE`)
  and the branches' estimates ``magnitude [batch, frames, freqs]`` and
  ``complex_spectrum`` (those the model has);
* ``fsce_stream.onnx`` (causal models): one frame (10 ms hop) of
  :meth:`FSCE.forward_step <speechbrain_fsce.models.FSCE.forward_step>` with
  every piece of state as an explicit input and output:
  ``noisy_frame [batch, 1, freqs, 2]`` and the tensors named by
  ``FSCE.state_names()`` in, ``enhanced_frame`` and ``next.<name>`` out;
* ``fsce_onnx.json``: sample rate, hop, FFT size, the analysis and synthesis
  windows, compression exponent, level normalisation, latency, each
  state tensor's name, shape (batch 1) and initial value, the SHA-256 of the
  network's weights (:func:`weights_sha256`) and of each graph file.

A model folder may ship such an export in its ``onnx/`` sub-folder;
:func:`onnx_enhancer` runs it when it belongs to the folder's weights (same
weights SHA-256, graph files unchanged, same receptive field) and exports
afresh to a temporary folder otherwise.

Both graphs are traced from the model's own ``forward`` and ``forward_step``
(eval mode): nothing is re-implemented for export. Run them with
:mod:`speechbrain_fsce.inference.onnx_runtime` (numpy + onnxruntime only) or
through :class:`OnnxModel`, a drop-in replacement for the network inside an
:class:`~speechbrain_fsce.models.FSCEEnhancer` (``fsce-enhance --backend onnx``).

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
from speechbrain_fsce.inference.onnx_runtime import CONFIG_NAME, _session
from speechbrain_fsce.models.fsce import FSCEOutput

OFFLINE_GRAPH = "fsce_offline.onnx"
STREAM_GRAPH = "fsce_stream.onnx"
OPSET = 17

logger = logging.getLogger(__name__)


class _Offline(torch.nn.Module):
    """Traceable view of ``FSCE.forward``: spectrum in; fused output and the branches' out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, noisy_spectrum):
        out = self.model(noisy_spectrum)
        return tuple(t for t in out if t is not None)


def _offline_outputs(model):
    """Output names of the offline graph: the fused spectrum, then each branch's estimate."""
    names = ["enhanced_spectrum"]
    if model.branches in ("both", "magnitude"):
        names.append("magnitude")
    if model.branches in ("both", "complex"):
        names.append("complex_spectrum")
    return names


class _Step(torch.nn.Module):
    """Traceable view of ``FSCE.forward_step`` with the state as flat arguments."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, noisy_frame, *state):
        output, new_state = self.model.forward_step(noisy_frame, list(state))
        return (output.enhanced, *new_state)


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
    >>> config["state"][0]["name"], config["state"][0]["shape"]
    ('mag_encoder.0.past', [1, 2, 1, 161])
    """
    import copy

    from speechbrain_fsce.models.folding import fold_batchnorm

    fe = enhancer.front_end
    weights = weights_sha256(enhancer.model)  # of the weights as loaded, before folding
    model = copy.deepcopy(enhancer.model).cpu().float().eval()
    if fold:
        model = fold_batchnorm(model)
    freqs = model.num_freqs
    os.makedirs(folder, exist_ok=True)
    outputs = _offline_outputs(model)
    offline = _export(
        _Offline(model),
        (torch.randn(1, 8, freqs, 2),),
        ["noisy_spectrum"],
        outputs,
        {name: {0: "batch", 1: "frames"} for name in ["noisy_spectrum"] + outputs},
    )
    analysis, synthesis = (w.tolist() for w in fe.frame_windows())
    config = {
        "format": "speechbrain-fsce onnx 1",
        "sample_rate": fe.sample_rate,
        "hop_samples": fe.hop_samples,
        "n_fft": fe.n_fft,
        "num_freqs": freqs,
        "compression": fe.compression,
        "eps": fe.eps,
        "normalize_level": fe.normalize_level,
        "causal": bool(model.causal),
        "receptive_field_frames": list(model.time_receptive_field()),
        "offline_graph": OFFLINE_GRAPH,
        "stream_graph": None,
        "latency_samples": fe.hop_samples,
        "algorithmic_latency_ms": 2 * fe.hop_samples / fe.sample_rate * 1000,
        "opset": OPSET,
        "state": [],
        "analysis_window": analysis,
        "synthesis_window": synthesis,
        "weights_sha256": weights,
        "graphs_sha256": {OFFLINE_GRAPH: hashlib.sha256(offline).hexdigest()},
    }
    _write(os.path.join(folder, OFFLINE_GRAPH), offline)
    if model.causal:
        state = model.init_state(1)
        names = model.state_names()
        step = _export(
            _Step(model),
            (torch.randn(1, 1, freqs, 2), *state),
            ["noisy_frame"] + names,
            ["enhanced_frame"] + ["next." + n for n in names],
            {
                name: {0: "batch"}
                for name in ["noisy_frame", "enhanced_frame"] + names + ["next." + n for n in names]
            },
        )
        _write(os.path.join(folder, STREAM_GRAPH), step)
        config["stream_graph"] = STREAM_GRAPH
        config["graphs_sha256"][STREAM_GRAPH] = hashlib.sha256(step).hexdigest()
        config["state"] = [
            {"name": n, "shape": list(s.shape), "initial": _initial(s)}
            for n, s in zip(names, state)
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


class OnnxModel(torch.nn.Module):
    """The offline ONNX graph in place of the network inside an ``FSCEEnhancer``.

    ``FSCEEnhancer(OnnxModel(folder), front_end)`` enhances waveforms with
    torch doing the STFT and onnxruntime running the network. Long files go
    through the chunker with the network's receptive field as context (exact
    for causal models too, which have no torch streaming state here).

    Arguments
    ---------
    folder : str
        Folder written by :func:`export_onnx`.
    threads : int
        onnxruntime intra-op threads.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> enhancer = FSCEEnhancer(FSCE(channels=4, inner_channels=2, tcm_hidden_channels=4,
    ...                              num_tcm_modules=1, dilations=(1,))).eval()
    >>> folder = str(getfixture("tmp_path"))
    >>> _ = export_onnx(enhancer, folder)
    >>> out = OnnxModel(folder)(torch.randn(1, 7, 161, 2))
    >>> out.enhanced.shape, out.magnitude.shape
    (torch.Size([1, 7, 161, 2]), torch.Size([1, 7, 161]))
    """

    def __init__(self, folder, threads=1):
        super().__init__()
        from speechbrain_fsce.inference.onnx_runtime import load_config

        self.config = load_config(folder)
        self.causal = self.config["causal"]
        self.num_freqs = self.config["num_freqs"]
        self._receptive_field = tuple(self.config["receptive_field_frames"])
        self.session = _session(os.path.join(folder, self.config["offline_graph"]), threads)

    def time_receptive_field(self):
        """``(look_back, look_ahead)`` frames of the exported network (as ``FSCE``'s)."""
        return self._receptive_field

    def forward(self, x, lengths=None):
        """``[B, T, F, 2]`` compressed spectrum -> :class:`FSCEOutput`."""
        names = [o.name for o in self.session.get_outputs()]
        results = self.session.run(names, {"noisy_spectrum": x.detach().cpu().float().numpy()})
        found = {n: torch.from_numpy(r).to(x.device) for n, r in zip(names, results)}
        return FSCEOutput(
            found["enhanced_spectrum"], found.get("magnitude"), found.get("complex_spectrum")
        )


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
    if "weights_sha256" not in config or "graphs_sha256" not in config:
        return "exported by an older version (no weights_sha256)"
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
    """A copy of ``enhancer`` whose network runs in onnxruntime.

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
    speechbrain_fsce.models.FSCEEnhancer
    """
    from speechbrain_fsce.models.enhancer import FSCEEnhancer

    if shipped is not None and folder is None:
        if not os.path.isdir(shipped):
            logger.info("no ONNX export in %s: exporting the network for this run", shipped)
        else:
            reason = shipped_export_mismatch(enhancer, shipped)
            if reason is None:
                return FSCEEnhancer(OnnxModel(shipped, threads), enhancer.front_end).eval()
            logger.warning(
                "not using the ONNX export in %s (%s): exporting the network for this run; "
                "fsce-export --model <model folder> --onnx %s writes one that is used",
                shipped,
                reason,
                shipped,
            )
    if folder is not None:
        export_onnx(enhancer, folder)
        return FSCEEnhancer(OnnxModel(folder, threads), enhancer.front_end).eval()
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(enhancer, tmp)
        return FSCEEnhancer(OnnxModel(tmp, threads), enhancer.front_end).eval()
