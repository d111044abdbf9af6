"""A live stream, hop by hop: framing, buffering, flush and level (numpy only).

:class:`HopStreamer` is the one streamer: it cuts pieces of any size into
hops, keeps what does not make a whole hop for the next call, ends a signal
(:meth:`~HopStreamer.flush`) and gives each hop its level; a *step* (the
torch :meth:`FSCEEnhancer.forward_step
<speechbrain_fsce.models.FSCEEnhancer.forward_step>` through
:class:`~speechbrain_fsce.inference.streaming.TorchStep`, or the exported
``fsce_stream.onnx`` through
:class:`~speechbrain_fsce.inference.onnx_runtime.OnnxStep`) does all the
arithmetic of a hop. Both public streamers,
:class:`~speechbrain_fsce.inference.streaming.FSCEStreamer` (tensors) and
:class:`~speechbrain_fsce.inference.onnx_runtime.OnnxStreamer` (numpy, no
torch), are this class with a step.

The rest of this module is the level of a live stream, tracked hop by hop.

FSCE divides its input by a level (offline: the RMS of the whole noisy
signal) so that the network always sees speech at about unit level, and
multiplies its output back. A live stream cannot know the RMS of what has
not arrived yet, and a fixed guess fails on ordinary streams: a stream that
starts with a second of silence, or whose level changes by 20 dB, puts the
network tens of dB away from the level it was trained at, and its output
away from the input's level (the shipped causal model came out 12 dB too
loud after a silent second). :class:`StreamLevel` is the one home of the
streaming level: :class:`HopStreamer` (so both streamers) and the
streaming examples use it, and :func:`check_scale` checks a fixed
level given by hand.

How the level is tracked, per signal of the batch, one hop (10 ms) at a
time, before the hop is enhanced (no look-ahead, no added latency):

* **Speech-active hops only.** A hop counts when its RMS is at least
  ``floor`` (default 1e-4, -80 dB re full scale 1.0: digital silence
  and dither never count) and at most ``gate_db`` (default 30 dB) below the
  current level: pauses between words do not pull the level down.
* **Running RMS, with a time constant.** The level is the RMS (power mean)
  of the active hops: an equal-weight mean over the first
  ``time_constant`` seconds of activity (the very first active hop sets it),
  then an exponential average with that time constant (default 1 s of
  active signal).
* **Bounded rise.** One hop counts as at most ``max_rise_db`` (default
  20 dB) above the current level: a one-hop click moves the level by at most
  3 dB.
* **Level changes.** When the mean of the last ``time_constant / 4`` of
  active hops differs from the level by more than ``change_db`` (default
  10 dB), the past no longer describes the signal and the average starts
  afresh from that recent mean. Measured on speech-like signals (``speech_like``,
  noise 14 dB below): after a 20 dB step the level is within 3 dB of the new
  RMS after about 1.2 s (step up) or 2.2 s (step down); 20 s of steady noisy
  speech at 0-40 dB SNR never triggered a restart and kept the level
  within 3 dB of the RMS after the first 2 s.
* **Release.** Hops above ``floor`` but more than ``gate_db`` under the
  level (a talker who became 40 dB quieter, or a quiet pause) pull it down
  with a ten times longer time constant, so the level never stays stuck
  above the signal.
* **Bounded gain.** Until the first active hop the level is ``floor``;
  it always stays within ``[floor, ceiling]``, so the gain ``1 / level``
  never exceeds ``1 / floor``.

The settled level is the RMS of the active part of the input, close to the
offline level of the same signal (which also counts pauses and silence, so
it is lower by the share of silence). A level-normalised model then
enhances at the level it was trained at, and its output comes out at the
input's level: with the shipped causal model, a stream starting with a
silent second, or stepping by +20 or -20 dB, gives output within 2 dB of
what the same model gives at the right fixed level, from 0.5 s after the
onset (silence) or 1 s after the step (measured: within 0.6 dB;
``tests/unittests/test_stream_level.py``).

Authors
 * speechbrain-fsce developers
"""

import math

import numpy as np

#: Range a fixed ``scale`` given by hand must lie in: any RMS of float audio
#: (at most 1 at full scale) or of int16-valued samples (at most 32768), and
#: every level the offline path computes (RMS + eps, eps = 1e-8).
SCALE_RANGE = (1e-12, 1e5)


def check_scale(scale):
    """A fixed input level given by hand, checked: finite, positive, in :data:`SCALE_RANGE`.

    Arguments
    ---------
    scale : float
        The level (RMS) the input is divided by and the output multiplied by.

    Returns
    -------
    float

    Example
    -------
    >>> check_scale(0.05)
    0.05
    >>> check_scale(1e30)
    Traceback (most recent call last):
    ...
    ValueError: scale must be a finite positive level in [1e-12, 100000] (the input's RMS; leave it out to track the level), got 1e+30
    """
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = math.nan
    low, high = SCALE_RANGE
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(
            f"scale must be a finite positive level in [{low:g}, {high:g}] "
            f"(the input's RMS; leave it out to track the level), got {scale!r}"
        )
    return value


class StreamLevel:
    """Running level of a stream's speech-active hops (see the module docstring).

    Call :meth:`update` with each hop, in order, before enhancing it; it
    returns the level to divide that hop by (and to multiply its output by).

    Arguments
    ---------
    hop_samples : int
        Samples per hop.
    sample_rate : int
        Samples per second (for the time constant).
    time_constant : float
        Seconds of active signal over which the level averages (exponential
        time constant of the power mean).
    gate_db : float
        Hops more than this many dB under the level are not speech-active.
    floor : float
        Hops with a lower RMS never count; the lowest level (bounds the gain).
    ceiling : float
        The highest level.
    max_rise_db : float
        A hop counts as at most this many dB above the current level.
    change_db : float
        A recent mean (``time_constant / 4``) this many dB away from the
        level restarts the average from it.

    Example
    -------
    >>> level = StreamLevel(hop_samples=160, sample_rate=16000)
    >>> silence, speech = np.zeros((1, 160)), np.full((1, 160), 0.05)
    >>> level.update(silence)  # no speech yet: the floor
    array([0.0001])
    >>> np.round(level.update(speech), 4)  # the first active hop sets the level
    array([0.05])
    >>> np.round(level.update(silence), 4)  # pauses do not pull it down
    array([0.05])
    >>> for _ in range(300):  # 3 s, 20 dB louder
    ...     louder = level.update(speech * 10)
    >>> np.round(louder, 3)
    array([0.5])
    """

    def __init__(
        self,
        hop_samples,
        sample_rate,
        time_constant=1.0,
        gate_db=30.0,
        floor=1e-4,
        ceiling=1e5,
        max_rise_db=20.0,
        change_db=10.0,
    ):
        checks = {
            "hop_samples": hop_samples,
            "sample_rate": sample_rate,
            "time_constant": time_constant,
            "gate_db": gate_db,
            "floor": floor,
            "max_rise_db": max_rise_db,
            "change_db": change_db,
        }
        for name, value in checks.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite positive number, got {value!r}")
        if not (isinstance(ceiling, (int, float)) and ceiling > floor):
            raise ValueError(f"ceiling must be above floor ({floor}), got {ceiling!r}")
        self.hop_samples = int(hop_samples)
        self.floor = float(floor)
        self.ceiling = float(ceiling)
        hops = time_constant * sample_rate / hop_samples  # hops per time constant
        self._weight = min(1.0, 1.0 / hops)
        self._short_weight = min(1.0, 4.0 / hops)
        self._release = min(1.0, 0.1 / hops)
        self._gate = 10.0 ** (-gate_db / 10.0)  # power ratios
        self._rise = 10.0 ** (max_rise_db / 10.0)
        self._change = 10.0 ** (change_db / 10.0)
        self.reset()

    def reset(self):
        """Forgets the stream (a new signal starts)."""
        self._power = None  # [B] mean power of the active hops; 0 before the first
        self._count = None  # [B] active hops averaged into it
        self._short = None  # [B] mean power of the active hops over time_constant / 4
        self._short_count = None

    @property
    def level(self):
        """The current level ``[B]`` (``None`` before the first hop)."""
        if self._power is None:
            return None
        return np.clip(np.sqrt(self._power), self.floor, self.ceiling)

    def _average(self, mean, count, power, weight, which):
        """Running mean ``mean`` of ``count`` values updated with ``power`` where ``which``."""
        count = count + which
        rise_limited = np.where(count == 1, power, np.minimum(power, mean * self._rise))
        step = np.maximum(1.0 / np.maximum(count, 1), weight) * (rise_limited - mean)
        return np.where(which, mean + step, mean), count

    def update(self, hop):
        """Takes the next hop into account and returns the level to use for it.

        Arguments
        ---------
        hop : numpy.ndarray
            ``[B, samples]`` (one hop per signal of the batch; any length
            works, a hop is the intended unit).

        Returns
        -------
        numpy.ndarray
            ``[B]`` levels (float64), within ``[floor, ceiling]``.
        """
        hop = np.asarray(hop, dtype=np.float64)
        if hop.ndim != 2:
            raise ValueError(f"expected [batch, samples], got shape {hop.shape}")
        if self._power is None:
            zeros = np.zeros(hop.shape[0])
            self._power, self._short = zeros, zeros.copy()
            self._count, self._short_count = zeros.astype(np.int64), zeros.astype(np.int64)
        elif hop.shape[0] != self._power.shape[0]:
            raise ValueError(f"batch size changed from {self._power.shape[0]} to {hop.shape[0]}")
        if hop.shape[1] == 0:
            return self.level
        power = np.mean(hop * hop, axis=1)
        audible = power >= self.floor**2
        active = audible & (power >= self._power * self._gate)
        quiet = audible & ~active
        self._power, self._count = self._average(
            self._power, self._count, power, self._weight, active
        )
        self._short, self._short_count = self._average(
            self._short, self._short_count, power, self._short_weight, active
        )
        # The last quarter time constant far from the level: the signal's
        # level changed, and its past no longer describes it (start afresh).
        ratio = self._short / np.maximum(self._power, 1e-300)
        changed = active & ((ratio > self._change) | (ratio * self._change < 1.0))
        self._power = np.where(changed, self._short, self._power)
        self._count = np.where(changed, 1, self._count)
        released = self._power + self._release * (power - self._power)
        self._power = np.where(quiet, released, self._power)
        return self.level


class HopStreamer:
    """Streams a signal through a step, one hop at a time (numpy in and out).

    :meth:`process` takes the next piece of signal (any length; usually one
    hop) and returns one hop of the enhanced signal per hop completed,
    delayed by ``latency_samples`` (one hop; the first hop out is silence);
    :meth:`flush` ends the signal: an incomplete last hop is completed with
    zeros, one more hop of zeros completes the last frame (as the offline
    front end pads a signal), and the output is cut back to the signal's
    length, so that ``latency_samples + len(signal)`` samples come out in
    all. Each hop is divided by its level: a fixed ``scale``, or the level
    tracked on line by :class:`StreamLevel` (updated with the hop before it
    is enhanced).

    Arguments
    ---------
    step : object
        ``step.init_state(batch_size)`` gives the state before the first hop
        and ``step.step(hop, scale, state)`` (``hop`` ``[B, hop_samples]``
        and ``scale`` ``[B, 1]`` float32 arrays) returns ``(out, state)``:
        the enhanced hop before this one ``[B, hop_samples]`` (array-like)
        and the next state (opaque here).
    hop_samples : int
        Samples per hop.
    sample_rate : int
        Samples per second.
    scale : float, optional
        A fixed level (checked by :func:`check_scale`). Default: tracked on
        line, or 1.0 when ``normalize_level`` is False.
    normalize_level : bool
        Whether the model divides its input by a level at all.
    time_constant : float
        Seconds of speech-active signal the tracked level averages over.

    Example
    -------
    >>> class Delay:  # a step that gives back each hop one hop later
    ...     def init_state(self, batch):
    ...         return np.zeros((batch, 2), np.float32)
    ...     def step(self, hop, scale, state):
    ...         return state, hop
    >>> streamer = HopStreamer(Delay(), hop_samples=2, sample_rate=200, scale=1.0)
    >>> streamer.process(np.arange(1.0, 6.0))  # two whole hops; 5. waits
    array([0., 0., 1., 2.], dtype=float32)
    >>> streamer.flush()  # 5. in a zero-padded hop, one more hop; cut to the signal
    array([3., 4., 5.], dtype=float32)
    """

    def __init__(
        self, step, hop_samples, sample_rate, scale=None, normalize_level=True, time_constant=1.0
    ):
        if scale is not None:
            scale = check_scale(scale)
        elif not normalize_level:
            scale = 1.0  # the model was trained on signals as they come
        self.step = step
        self.hop_samples = int(hop_samples)
        self.sample_rate = int(sample_rate)
        self.latency_samples = self.hop_samples
        self.scale = scale  # None: tracked on line
        self._level = None
        if scale is None:
            self._level = StreamLevel(self.hop_samples, self.sample_rate, time_constant)
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
        self._pending = None  # [B, samples] input not enhanced yet (< one hop)
        self._state = None
        self._squeeze = None
        self.samples_in = 0
        self.samples_out = 0

    def _hop(self, hop):
        """One hop ``[B, hop]`` in, the enhanced hop before it out."""
        if self._level is None:
            scale = np.full((hop.shape[0], 1), self.scale, np.float32)
        else:
            scale = self._level.update(hop)[:, None].astype(np.float32)
        out, self._state = self.step.step(hop, scale, self._state)
        out = np.asarray(out, dtype=np.float32)
        if self.samples_out == 0:
            out = np.zeros_like(out)  # the hop before the signal starts
        self.samples_out += out.shape[1]
        return out

    def _run(self, buf):
        h = self.hop_samples
        whole = buf.shape[1] // h * h
        self._pending = buf[:, whole:]
        outs = [self._hop(np.ascontiguousarray(buf[:, i : i + h])) for i in range(0, whole, h)]
        return np.concatenate(outs, axis=1) if outs else np.zeros((buf.shape[0], 0), np.float32)

    def process(self, x):
        """Enhances the next piece of signal.

        Arguments
        ---------
        x : numpy.ndarray
            ``[samples]`` or ``[batch, samples]``; normally one hop.

        Returns
        -------
        numpy.ndarray
            One hop of the delayed enhanced stream per hop completed by
            this piece (possibly none), float32, shaped like ``x``.
        """
        x = np.asarray(x, dtype=np.float32)
        squeeze = x.ndim == 1
        x = x[None] if squeeze else x
        if x.ndim != 2:
            raise ValueError(f"expected a hop [samples] or [batch, samples], got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("input contains NaN or Inf samples")
        if self._state is None:
            self._state = self.step.init_state(x.shape[0])
            self._pending = np.zeros((x.shape[0], 0), np.float32)
            self._squeeze = squeeze
        elif x.shape[0] != self._pending.shape[0]:
            raise ValueError(f"batch size changed from {self._pending.shape[0]} to {x.shape[0]}")
        self.samples_in += x.shape[1]
        out = self._run(np.concatenate([self._pending, x], axis=1))
        return out[0] if self._squeeze else out

    def flush(self):
        """Ends the signal; returns the rest of the delayed output and resets.

        Returns
        -------
        numpy.ndarray
            The remaining samples (one hop plus any incomplete hop), or an
            empty array if nothing was processed.
        """
        if self._state is None:
            self.reset()
            return np.zeros(0, np.float32)
        h = self.hop_samples
        missing = (h - self._pending.shape[1]) % h
        pad = np.zeros((self._pending.shape[0], missing + h), np.float32)
        out = self._run(np.concatenate([self._pending, pad], axis=1))
        out = out[:, : out.shape[1] - missing]
        result = out[0] if self._squeeze else out
        self.reset()
        return result
