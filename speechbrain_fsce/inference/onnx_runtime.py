"""Run exported FSCE graphs with numpy and onnxruntime only (no torch).

:func:`speechbrain_fsce.inference.onnx_export.export_onnx` writes a folder
with ``fsce_offline.onnx``, for causal models ``fsce_stream.onnx``, and
``fsce_onnx.json`` (sample rate, hop, level normalisation, state names and
shapes, latency, SHA-256 of the weights and graphs). This module needs only
numpy and onnxruntime, so that a deployment can stream with neither torch nor
SpeechBrain installed: copy this file and ``stream_level.py`` (the one
streamer and the streaming level, numpy only) next to the exported folder.

Every value of ``fsce_onnx.json`` is checked when it is read
(:func:`load_config`): a damaged or tampered file stops with a one-line
``ValueError`` naming the key, never with NaN output or a division by zero;
an export of an earlier format asks to be exported again.

Both graphs take and give waveforms: every piece of signal arithmetic
(level, framing, window, DFT, compression, the network, the inverse path,
overlap-add) is inside them, traced from the torch model
(:meth:`~speechbrain_fsce.models.FSCEEnhancer.forward_framed` and
:meth:`~speechbrain_fsce.models.FSCEEnhancer.forward_step`):

* ``fsce_offline.onnx``: ``noisy [batch, samples]`` and ``scale [batch, 1]``
  (the level to divide by; 0 measures each signal's own) -> ``enhanced``
  ``[batch, samples]``.
* ``fsce_stream.onnx``: ``noisy_hop [batch, hop]``, ``scale [batch, 1]`` and
  every state tensor (named in the JSON, zeros or the listed initial values
  at the start) -> ``enhanced_hop`` (the hop before, one hop of delay) and
  the next state (``next.<name>``).

:class:`OnnxStreamer` drives the step graph through the one streamer
(:class:`~speechbrain_fsce.inference.stream_level.HopStreamer`), and
:func:`enhance_offline` is one call of the offline graph.

Authors
 * speechbrain-fsce developers
"""

import json
import math
import os

import numpy as np

try:
    from speechbrain_fsce.inference.stream_level import HopStreamer
except ImportError:  # this file copied next to stream_level.py, without the package
    from stream_level import HopStreamer

CONFIG_NAME = "fsce_onnx.json"
#: Format of ``fsce_onnx.json`` and its graphs (2: waveforms in and out, the
#: analysis and synthesis inside the graphs; 1 took and gave spectra).
FORMAT = "speechbrain-fsce onnx 2"
MAX_STATE_VALUES = 10_000_000  # per state tensor, batch 1 (the published model's: < 100,000)


def load_config(folder):
    """Reads ``fsce_onnx.json`` of an exported folder.

    Arguments
    ---------
    folder : str
        Folder written by ``export_onnx``.

    Returns
    -------
    dict
        The settings, every one checked (:func:`check_config`).

    Raises
    ------
    FileNotFoundError
        No ``fsce_onnx.json`` in ``folder``.
    ValueError
        The file is not JSON, or a value is missing or wrong (one line that
        names the key).
    """
    path = os.path.join(folder, CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: export the model with fsce-export --onnx first")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)  # NaN and Infinity parse, and are refused by key below
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path} is not a JSON file written by fsce-export --onnx: {err}"
        ) from None
    return check_config(config, path)


def _bad(path, key, expected, value):
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return ValueError(f"{path}: {key} must be {expected}, got {text}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _file_name(value):
    return (
        isinstance(value, str)
        and value.endswith(".onnx")
        and os.path.basename(value) == value
        and "/" not in value
        and "\\" not in value
        and not value.startswith(".")
    )


def _is_sha256(value):
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def check_config(config, path=CONFIG_NAME):
    """Checks every value of an ``fsce_onnx.json`` mapping (type, range, consistency).

    Arguments
    ---------
    config : dict
        The parsed file.
    path : str
        Named in the error messages.

    Returns
    -------
    dict
        A copy of ``config``.

    Raises
    ------
    ValueError
        One line naming the first wrong key.

    Example
    -------
    >>> config = {"format": FORMAT, "sample_rate": 16000, "hop_samples": 160, "n_fft": 320,
    ...     "num_freqs": 161, "compression": 0.5, "eps": -1.0}
    >>> check_config(config, "fsce_onnx.json")
    Traceback (most recent call last):
    ...
    ValueError: fsce_onnx.json: eps must be a finite number in (0, 0.01], got -1.0
    """
    if not isinstance(config, dict):
        raise _bad(path, "the file", "a JSON object", type(config).__name__)
    config = dict(config)

    def need(key, ok, expected):
        if key not in config:
            raise ValueError(f"{path}: {key} is missing (re-export with fsce-export --onnx)")
        if not ok(config[key]):
            raise _bad(path, key, expected, config[key])
        return config[key]

    if isinstance(config.get("format"), str) and config["format"].startswith(
        "speechbrain-fsce onnx"
    ):
        if config["format"] != FORMAT:
            raise ValueError(
                f"{path}: format is {config['format']!r}, an export of an earlier version; "
                f"export it again with fsce-export --onnx (format {FORMAT!r})"
            )
    need("format", lambda v: v == FORMAT, repr(FORMAT))
    rate = need(
        "sample_rate", lambda v: _is_int(v) and 1000 <= v <= 384000, "an int in [1000, 384000]"
    )
    hop = need("hop_samples", lambda v: _is_int(v) and 1 <= v <= rate, f"an int in [1, {rate}]")
    need("n_fft", lambda v: v == 2 * hop and _is_int(v), f"2 * hop_samples = {2 * hop}")
    n_fft = config["n_fft"]
    need(
        "num_freqs",
        lambda v: v == n_fft // 2 + 1 and _is_int(v),
        f"n_fft // 2 + 1 = {n_fft // 2 + 1}",
    )
    need("compression", lambda v: _is_number(v) and 0 < v <= 1, "a finite number in (0, 1]")
    need("eps", lambda v: _is_number(v) and 0 < v <= 1e-2, "a finite number in (0, 0.01]")
    need("normalize_level", lambda v: isinstance(v, bool), "true or false")
    causal = need("causal", lambda v: isinstance(v, bool), "true or false")
    need(
        "receptive_field_frames",
        lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x >= 0 for x in v),
        "two ints >= 0 (look-back, look-ahead)",
    )
    need("offline_graph", _file_name, "a .onnx file name in the folder")
    if causal:
        need("stream_graph", _file_name, "a .onnx file name in the folder (causal: true)")
    else:
        need("stream_graph", lambda v: v is None, "null (causal: false)")
    need("latency_samples", lambda v: v == hop and _is_int(v), f"hop_samples = {hop}")
    need("algorithmic_latency_ms", lambda v: _is_number(v) and v >= 0, "a finite number >= 0")
    need("opset", lambda v: _is_int(v) and v > 0, "a positive int")
    states = need("state", lambda v: isinstance(v, list), "a list")
    if causal and not states:
        raise _bad(path, "state", "a non-empty list (causal: true)", states)
    names = set()
    for i, entry in enumerate(states):
        key = f"state[{i}]"
        if not (isinstance(entry, dict) and set(entry) == {"name", "shape", "initial"}):
            raise _bad(path, key, "an object with name, shape and initial", entry)
        name, shape = entry["name"], entry["shape"]
        if not (isinstance(name, str) and name and not name.startswith("next.")) or name in names:
            raise _bad(path, key + ".name", "a new name", name)
        names.add(name)
        if not (
            isinstance(shape, list)
            and 1 <= len(shape) <= 6
            and all(_is_int(n) and n >= 1 for n in shape)
            and shape[0] == 1
            and math.prod(shape) <= MAX_STATE_VALUES
        ):
            raise _bad(
                path,
                key + ".shape",
                f"[1, ...] ints >= 1, at most {MAX_STATE_VALUES:,} values",
                shape,
            )
        try:
            with np.errstate(over="ignore"):  # 1e300 -> inf: refused below
                initial = np.asarray(entry["initial"], dtype=np.float32)
            np.broadcast_to(initial, shape)
        except (TypeError, ValueError):
            raise _bad(
                path, key + ".initial", f"a number or an array that fits {shape}", entry["initial"]
            ) from None
        if not np.isfinite(initial).all():
            raise _bad(path, key + ".initial", "finite", entry["initial"])
    need("weights_sha256", _is_sha256, "64 lowercase hex digits (SHA-256)")
    graphs = {config["offline_graph"], config["stream_graph"]} - {None}
    need(
        "graphs_sha256",
        lambda v: isinstance(v, dict) and set(v) == graphs and all(map(_is_sha256, v.values())),
        f"a SHA-256 (64 lowercase hex digits) for each of {', '.join(sorted(graphs))}",
    )
    unknown = set(config) - _KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    return config


_KEYS = {
    "format",
    "sample_rate",
    "hop_samples",
    "n_fft",
    "num_freqs",
    "compression",
    "eps",
    "normalize_level",
    "causal",
    "receptive_field_frames",
    "offline_graph",
    "stream_graph",
    "latency_samples",
    "algorithmic_latency_ms",
    "opset",
    "state",
    "weights_sha256",
    "graphs_sha256",
}


def _session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class OnnxStep:
    """``fsce_stream.onnx`` as the step of a :class:`HopStreamer` (one hop per call).

    The state lives in two sets of onnxruntime buffers; two I/O bindings
    read one set and write the other, and the hops alternate between them,
    so no state is copied or re-bound between hops.

    Arguments
    ---------
    folder : str
        Folder written by ``export_onnx`` for a causal model.
    threads : int
        onnxruntime intra-op threads (1 is fastest for one hop).
    config : dict, optional
        Its ``fsce_onnx.json``, already read by :func:`load_config`.

    Example
    -------
    >>> from speechbrain_fsce.inference.shipped import onnx_folder
    >>> step = OnnxStep(onnx_folder())  # the export shipped with the causal model
    >>> state = step.init_state(2)
    >>> out, state = step.step(np.zeros((2, 160), np.float32), np.ones((2, 1), np.float32), state)
    >>> out.shape, state
    ((2, 160), 1)
    """

    def __init__(self, folder, threads=1, config=None):
        self.config = config if config is not None else load_config(folder)
        if not self.config.get("stream_graph"):
            raise ValueError(f"{folder} has no streaming graph: the model is not causal")
        self.session = _session(os.path.join(folder, self.config["stream_graph"]), threads)
        self._names = [s["name"] for s in self.config["state"]]

    def init_state(self, batch):
        """Binds fresh state buffers for ``batch`` signals; returns the hop counter (0)."""
        import onnxruntime as ort

        h = self.config["hop_samples"]
        initial = [
            np.broadcast_to(np.asarray(s["initial"], np.float32), [batch] + s["shape"][1:]).copy()
            for s in self.config["state"]
        ]
        sets = [[ort.OrtValue.ortvalue_from_numpy(x.copy()) for x in initial] for _ in range(2)]
        self._hop = ort.OrtValue.ortvalue_from_numpy(np.zeros((batch, h), np.float32))
        self._scale = ort.OrtValue.ortvalue_from_numpy(np.ones((batch, 1), np.float32))
        self._out = ort.OrtValue.ortvalue_from_numpy(np.zeros((batch, h), np.float32))
        self._bindings = []
        for source, target in ((sets[0], sets[1]), (sets[1], sets[0])):
            binding = self.session.io_binding()
            binding.bind_ortvalue_input("noisy_hop", self._hop)
            binding.bind_ortvalue_input("scale", self._scale)
            binding.bind_ortvalue_output("enhanced_hop", self._out)
            for name, value_in, value_out in zip(self._names, source, target):
                binding.bind_ortvalue_input(name, value_in)
                binding.bind_ortvalue_output("next." + name, value_out)
            self._bindings.append(binding)
        return 0

    def step(self, hop, scale, state):
        """Runs one hop; ``state`` counts the hops (which binding reads the state)."""
        self._hop.update_inplace(hop)
        self._scale.update_inplace(scale)
        self.session.run_with_iobinding(self._bindings[state % 2])
        return self._out.numpy().copy(), state + 1


class OnnxStreamer(HopStreamer):
    """Streams a signal through ``fsce_stream.onnx`` hop by hop (numpy + onnxruntime).

    The one streamer (:class:`~speechbrain_fsce.inference.stream_level.HopStreamer`:
    :meth:`process` takes any piece of signal and returns one hop of the
    enhanced signal, delayed by ``latency_samples``, per hop completed;
    :meth:`flush` ends the signal) with the exported step graph as its step;
    the torch ``FSCEStreamer`` is the same class with the torch step.

    Arguments
    ---------
    folder : str
        Folder written by ``export_onnx`` for a causal model.
    scale : float, optional
        A fixed input level (the signal is divided by it, the output
        multiplied), checked by
        :func:`~speechbrain_fsce.inference.stream_level.check_scale`; the
        output then equals offline causal enhancement at that level. Default:
        the level is tracked on line by
        :class:`~speechbrain_fsce.inference.stream_level.StreamLevel`, as
        the torch streamer does (1.0 for a model without level normalisation).
    threads : int
        onnxruntime intra-op threads (1 is fastest for one hop).
    time_constant : float
        Seconds of speech-active signal the tracked level averages over.

    Example
    -------
    >>> from speechbrain_fsce.inference.shipped import onnx_folder
    >>> streamer = OnnxStreamer(onnx_folder(), scale=0.1)  # the shipped causal model
    >>> hops = [streamer.process(np.zeros(160, np.float32)) for _ in range(3)]
    >>> [h.shape for h in hops], streamer.flush().shape
    ([(160,), (160,), (160,)], (160,))
    """

    def __init__(self, folder, scale=None, threads=1, time_constant=1.0):
        self.config = load_config(folder)
        super().__init__(
            OnnxStep(folder, threads, self.config),
            self.config["hop_samples"],
            self.config["sample_rate"],
            scale=scale,
            normalize_level=self.config["normalize_level"],
            time_constant=time_constant,
        )
        self.session = self.step.session


def enhance_offline(folder, signal, threads=1, scale=None):
    """Enhances a whole signal with ``fsce_offline.onnx`` (numpy + onnxruntime).

    One call of the graph, which does what the torch ``FSCEEnhancer`` does:
    level normalisation (the signal's RMS, if the model does it), padding to
    whole hops, the centred STFT, the network, resynthesis by overlap-add.

    Arguments
    ---------
    folder : str
        Exported folder.
    signal : numpy.ndarray
        ``[samples]`` or ``[batch, samples]`` at the model's sample rate.
    threads : int
        onnxruntime intra-op threads.
    scale : float or numpy.ndarray, optional
        Level(s) to divide by instead of each signal's own RMS.

    Returns
    -------
    numpy.ndarray
        Enhanced, shaped like ``signal``.
    """
    config = load_config(folder)
    session = _session(os.path.join(folder, config["offline_graph"]), threads)
    return run_offline(session, signal, scale)


def run_offline(session, signal, scale=None):
    """One call of an offline graph's session on ``[samples]`` or ``[batch, samples]``.

    ``scale`` (a number or ``[batch, 1]``) is the level to divide by;
    ``None`` lets the graph measure each signal's own.
    """
    x = np.asarray(signal, dtype=np.float32)
    squeeze = x.ndim == 1
    x = x[None] if squeeze else x
    if x.ndim != 2:
        raise ValueError(f"expected [samples] or [batch, samples], got shape {x.shape}")
    levels = np.zeros((x.shape[0], 1), np.float32)
    if scale is not None:
        levels = np.broadcast_to(np.asarray(scale, np.float32).reshape(-1, 1), levels.shape)
    out = session.run(["enhanced"], {"noisy": x, "scale": np.ascontiguousarray(levels)})[0]
    return out[0] if squeeze else out
