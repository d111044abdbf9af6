"""Run exported FSCE graphs with numpy and onnxruntime only (no torch).

:func:`speechbrain_fsce.inference.onnx_export.export_onnx` writes a folder
with ``fsce_offline.onnx``, for causal models ``fsce_stream.onnx``, and
``fsce_onnx.json`` (STFT settings, windows, compression, state names and
shapes, latency). This module needs only numpy and onnxruntime, so that a
deployment can stream with neither torch nor SpeechBrain installed: copy this
file and ``stream_level.py`` (the streaming level, numpy only) next to the
exported folder.

Every value of ``fsce_onnx.json`` is checked when it is read
(:func:`load_config`): a damaged or tampered file stops with a one-line
``ValueError`` naming the key, never with NaN output or a division by zero.

Both graphs work in the network's domain, the compressed spectrum
``S * |S|^(c - 1)`` of the level-normalised signal (``c`` =
``compression``), as ``[batch, frames, freqs, 2]`` (real, imaginary):

* ``fsce_offline.onnx``: ``noisy_spectrum`` (any number of frames) ->
  ``enhanced_spectrum``.
* ``fsce_stream.onnx``: ``noisy_frame`` ``[batch, 1, freqs, 2]`` plus every
  state tensor (named in the JSON, zeros or the listed initial values at the
  start) -> ``enhanced_frame`` plus the next state (``next.<name>``).

:class:`OnnxStreamer` adds the STFT framing (one hop in, one hop out, as
:class:`~speechbrain_fsce.inference.streaming.FSCEStreamer`), and
:func:`enhance_offline` enhances a whole signal.

Authors
 * speechbrain-fsce developers
"""

import json
import math
import os

import numpy as np

try:
    from speechbrain_fsce.inference.stream_level import StreamLevel, check_scale
except ImportError:  # this file copied next to stream_level.py, without the package
    from stream_level import StreamLevel, check_scale

CONFIG_NAME = "fsce_onnx.json"
FORMAT = "speechbrain-fsce onnx 1"
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
        The settings, every one checked (:func:`check_config`); windows as
        numpy arrays.

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
        ``config`` with the windows as float32 numpy arrays.

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
    for key in ("analysis_window", "synthesis_window"):
        window = need(key, lambda v: isinstance(v, list), f"a list of n_fft = {n_fft} numbers")
        if len(window) != n_fft:
            raise ValueError(f"{path}: {key} must hold n_fft = {n_fft} numbers, not {len(window)}")
        if not all(_is_number(w) and abs(w) <= 10 for w in window):
            raise ValueError(f"{path}: {key} must hold finite numbers in [-10, 10]")
        config[key] = np.asarray(window, dtype=np.float32)
    w = config["synthesis_window"].astype(np.float64)
    if (w[hop:] ** 2 + w[:hop] ** 2).min() < 1e-3:
        raise ValueError(
            f"{path}: synthesis_window must overlap-add to at least 1e-3 everywhere "
            "(its two halves' squares summed)"
        )
    if "weights_sha256" in config:  # written since the key exists; older exports lack it
        need("weights_sha256", _is_sha256, "64 lowercase hex digits (SHA-256)")
    if "graphs_sha256" in config:
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
    "analysis_window",
    "synthesis_window",
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


def power_law(spec, exponent, eps):
    """``spec * |spec|^(exponent - 1)`` on ``[..., 2]`` arrays (the front end's compression).

    Example
    -------
    >>> x = np.array([[3.0, 4.0]], dtype=np.float32)
    >>> np.round(power_law(x, 0.5, 0.0), 4)
    array([[1.3416, 1.7889]], dtype=float32)
    """
    if exponent == 1.0:
        return spec
    mag = np.sqrt((spec * spec).sum(-1, keepdims=True) + eps)
    return (spec * mag ** (exponent - 1.0)).astype(np.float32)


def stft_frames(buf, config):
    """Network input for whole frames of ``buf`` ``[B, (n + 1) * hop]`` -> ``[B, n, F, 2]``."""
    hop, n_fft = config["hop_samples"], config["n_fft"]
    n = buf.shape[1] // hop - 1
    index = np.arange(n)[:, None] * hop + np.arange(n_fft)[None, :]
    frames = buf[:, index] * config["analysis_window"]
    spec = np.fft.rfft(frames, n=n_fft, axis=-1)
    spec = np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)
    return power_law(spec, config["compression"], config["eps"])


def frames_to_samples(spec, config):
    """Windowed time frames ``[B, n, n_fft]`` of enhanced compressed spectra ``[B, n, F, 2]``."""
    linear = power_law(spec, 1.0 / config["compression"], config["eps"])
    frames = np.fft.irfft(linear[..., 0] + 1j * linear[..., 1], n=config["n_fft"], axis=-1)
    return (frames * config["synthesis_window"]).astype(np.float32)


class OnnxStreamer:
    """Streams a signal through ``fsce_stream.onnx`` hop by hop (numpy + onnxruntime).

    Same contract as the torch ``FSCEStreamer``: :meth:`process` takes any
    piece of signal and returns one hop of the enhanced signal, delayed by
    ``latency_samples``, per hop completed; :meth:`flush` ends the signal.

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
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer  # only to export a model here
    >>> from speechbrain_fsce.inference.onnx_export import export_onnx
    >>> folder = str(getfixture("tmp_path"))
    >>> _ = export_onnx(FSCEEnhancer(FSCE(causal=True, channels=4, inner_channels=2,
    ...     tcm_hidden_channels=4, num_tcm_modules=1, dilations=(1,))), folder)
    >>> streamer = OnnxStreamer(folder, scale=0.1)
    >>> hops = [streamer.process(np.zeros(160, np.float32)) for _ in range(3)]
    >>> [h.shape for h in hops], streamer.flush().shape
    ([(160,), (160,), (160,)], (160,))
    """

    def __init__(self, folder, scale=None, threads=1, time_constant=1.0):
        self.config = load_config(folder)
        if not self.config.get("stream_graph"):
            raise ValueError(f"{folder} has no streaming graph: the model is not causal")
        if scale is not None:
            scale = check_scale(scale)
        elif not self.config["normalize_level"]:
            scale = 1.0  # the model was trained on signals as they come
        self.scale = scale  # None: tracked on line
        self._level = None
        if scale is None:
            self._level = StreamLevel(
                self.config["hop_samples"], self.config["sample_rate"], time_constant
            )
        self.session = _session(os.path.join(folder, self.config["stream_graph"]), threads)
        self.hop_samples = self.config["hop_samples"]
        self.sample_rate = self.config["sample_rate"]
        self.latency_samples = self.config["latency_samples"]
        h = self.hop_samples
        w = self.config["synthesis_window"]
        self._envelope = (w[h:] ** 2 + w[:h] ** 2).astype(np.float32)
        self._names = [s["name"] for s in self.config["state"]]
        self.reset()

    @property
    def level(self):
        """The level the last hop was divided by: ``scale``, or the tracked level
        (``[batch]`` array; ``None`` before the first hop)."""
        return self.scale if self._level is None else self._level.level

    def reset(self):
        """Starts a new signal."""
        if self._level is not None:
            self._level.reset()
        self._last_level = None
        self._pending = None
        self._state = None
        self.samples_out = 0

    def _start(self, batch):
        """Allocates the stream's buffers and binds them to the graph.

        The state lives in two sets of onnxruntime buffers; two I/O bindings
        read one set and write the other, and the hops alternate between
        them, so no state is copied or re-bound between hops.
        """
        import onnxruntime as ort

        h = self.hop_samples
        self._pending = np.zeros((batch, 0), np.float32)
        self._previous = np.zeros((batch, h), np.float32)
        self._ola = np.zeros((batch, h), np.float32)
        initial = [
            np.broadcast_to(np.asarray(s["initial"], np.float32), [batch] + s["shape"][1:]).copy()
            for s in self.config["state"]
        ]
        sets = [[ort.OrtValue.ortvalue_from_numpy(x.copy()) for x in initial] for _ in range(2)]
        freqs = self.config["num_freqs"]
        self._frame = ort.OrtValue.ortvalue_from_numpy(np.zeros((batch, 1, freqs, 2), np.float32))
        self._enhanced = ort.OrtValue.ortvalue_from_numpy(
            np.zeros((batch, 1, freqs, 2), np.float32)
        )
        self._bindings = []
        for source, target in ((sets[0], sets[1]), (sets[1], sets[0])):
            binding = self.session.io_binding()
            binding.bind_ortvalue_input("noisy_frame", self._frame)
            binding.bind_ortvalue_output("enhanced_frame", self._enhanced)
            for name, value_in, value_out in zip(self._names, source, target):
                binding.bind_ortvalue_input(name, value_in)
                binding.bind_ortvalue_output("next." + name, value_out)
            self._bindings.append(binding)
        self._hops_done = 0
        self._state = True

    def _hop(self, hop_samples):
        """One hop of input ``[B, hop]`` -> one hop of delayed output ``[B, hop]``."""
        h = self.hop_samples
        scale = self.scale
        if self._level is not None:  # this hop's level; the buffers carried over to it
            scale = self._level.update(hop_samples)[:, None].astype(np.float32)
            if self._last_level is not None:
                self._previous = self._previous * (self._last_level / scale)
                self._ola = self._ola * (self._last_level / scale)
            self._last_level = scale
        buf = np.concatenate([self._previous, hop_samples / scale], axis=1)
        self._previous = buf[:, h:]
        self._frame.update_inplace(stft_frames(buf, self.config))
        self.session.run_with_iobinding(self._bindings[self._hops_done % 2])
        self._hops_done += 1
        frame = frames_to_samples(self._enhanced.numpy(), self.config)[:, 0]
        out = (self._ola + frame[:, :h]) / self._envelope
        self._ola = frame[:, h:]
        if self.samples_out == 0:
            out[:] = 0.0  # the hop before the signal starts
        self.samples_out += h
        return out * scale

    def _run(self, buf):
        h = self.hop_samples
        whole = buf.shape[1] // h * h
        self._pending = buf[:, whole:]
        outs = [self._hop(buf[:, i : i + h]) for i in range(0, whole, h)]
        return np.concatenate(outs, axis=1) if outs else np.zeros((buf.shape[0], 0), np.float32)

    def process(self, x):
        """Enhances the next piece ``[samples]`` or ``[batch, samples]`` of signal."""
        x = np.asarray(x, dtype=np.float32)
        squeeze = x.ndim == 1
        x = x[None] if squeeze else x
        if x.ndim != 2:
            raise ValueError(f"expected a hop [samples] or [batch, samples], got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("input contains NaN or Inf samples")
        if self._state is None:
            self._start(x.shape[0])
            self._squeeze = squeeze
        elif x.shape[0] != self._pending.shape[0]:
            raise ValueError(f"batch size changed from {self._pending.shape[0]} to {x.shape[0]}")
        out = self._run(np.concatenate([self._pending, x], axis=1))
        return out[0] if self._squeeze else out

    def flush(self):
        """Ends the signal; returns the rest of the delayed output and resets."""
        if self._state is None:
            return np.zeros(0, np.float32)
        h = self.hop_samples
        rest = self._pending.shape[1]
        missing = (h - rest) % h
        pad = np.zeros((self._pending.shape[0], missing + h), np.float32)
        out = self._run(np.concatenate([self._pending, pad], axis=1))
        out = out[:, : out.shape[1] - missing]
        result = out[0] if self._squeeze else out
        self.reset()
        return result


def enhance_offline(folder, signal, threads=1):
    """Enhances a whole signal with ``fsce_offline.onnx`` (numpy + onnxruntime).

    The signal is level-normalised by its RMS (if the model does it), padded
    to whole hops, analysed with the centred STFT, enhanced and resynthesised
    by overlap-add, as the torch ``FSCEEnhancer`` does.

    Arguments
    ---------
    folder : str
        Exported folder.
    signal : numpy.ndarray
        ``[samples]`` at the model's sample rate.
    threads : int
        onnxruntime intra-op threads.

    Returns
    -------
    numpy.ndarray
        Enhanced ``[samples]``.
    """
    config = load_config(folder)
    session = _session(os.path.join(folder, config["offline_graph"]), threads)
    x = np.asarray(signal, dtype=np.float32)
    length, h = x.shape[0], config["hop_samples"]
    scale = 1.0
    if config["normalize_level"]:
        scale = (
            float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) if length else 0.0) + config["eps"]
        )
    padded = np.concatenate(
        [np.zeros(h, np.float32), x / scale, np.zeros((-length) % h + h, np.float32)]
    )
    spec = stft_frames(padded[None], config)
    enhanced = session.run(["enhanced_spectrum"], {"noisy_spectrum": spec})[0]
    frames = frames_to_samples(enhanced, config)[0]
    n_fft, w = config["n_fft"], config["synthesis_window"]
    out = np.zeros(padded.shape[0], np.float64)
    env = np.zeros(padded.shape[0], np.float64)
    for t in range(frames.shape[0]):
        out[t * h : t * h + n_fft] += frames[t]
        env[t * h : t * h + n_fft] += w**2
    return (out[h : h + length] / env[h : h + length] * scale).astype(np.float32)
