"""Frame-by-frame (streaming) enhancement with a causal FSCE model.

A causal FSCE (``causal: True``) has no look-ahead in the network, so it can
run on a live signal 10 ms at a time. :class:`FSCEStreamer` is a thin driver
over the streaming forms of the modules themselves: the front end's
:meth:`~speechbrain_fsce.processing.spectral.SpectralFrontEnd.analyze_step`
and :meth:`~speechbrain_fsce.processing.spectral.SpectralFrontEnd.synthesize_step`
and the network's :meth:`~speechbrain_fsce.models.FSCE.forward_step`. It
buffers incomplete hops, threads the state (plain tensors) from one call to
the next and ends the signal; all arithmetic lives in the modules, so its
output equals offline causal enhancement of the same signal (same level
``scale``) up to float rounding.

Latency: the output stream is the enhanced signal delayed by one hop
(``latency_samples``); counting the hop being buffered, the algorithmic
latency is one window (20 ms at 16 kHz).

Level: offline, a level-normalised model divides the signal by its RMS,
which a stream does not know in advance. By default the streamer tracks the
level on line, hop by hop, with
:class:`~speechbrain_fsce.inference.stream_level.StreamLevel` (a running RMS
of the speech-active hops, time constant ``time_constant``, bounded gain; the
same class drives the onnxruntime backend), so that a stream that starts
with silence or changes level comes out at the input's level. A fixed
``scale`` instead divides every hop by that level: the output then equals
offline causal enhancement at that level (what
:mod:`~speechbrain_fsce.inference.chunked` uses, with the RMS of the whole
file).

Authors
 * speechbrain-fsce developers
"""

import torch

from speechbrain_fsce.inference.stream_level import StreamLevel, check_scale
from speechbrain_fsce.models import folding


class FSCEStreamer:
    """Streams a causal FSCE enhancer hop by hop (10 ms at 16 kHz).

    Feed consecutive pieces of the noisy signal to :meth:`process` (usually
    one hop of ``hop_samples`` samples; any length works, incomplete hops are
    kept for the next call) and call :meth:`flush` at the end. The returned
    pieces, concatenated, are the enhanced signal delayed by
    ``latency_samples`` (one hop; the first hop out is silence): one hop in
    gives one hop out. After :meth:`flush`, ``latency_samples + len(signal)``
    samples have come out. With a fixed ``scale``, dropping the first
    ``latency_samples`` gives the offline causal enhancement
    ``enhance_spectrum(signal, scale=scale)``; by default the level adapts
    (see the module docstring) and no piece size changes the output.

    The enhancer is put in eval mode (BatchNorm uses its running statistics,
    which is what makes a frame's output independent of later frames). On
    CPU, one thread (``torch.set_num_threads(1)``) is usually fastest: a hop
    is hundreds of small operations, for which thread synchronisation costs
    more than it saves (``benchmarks/bench_streaming.py`` measures it, and
    its ``--backend onnx`` runs the exported step graph, several times
    faster).

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        Waveform enhancer whose ``model.causal`` is True.
    scale : float, optional
        A fixed level the input is divided by (and the output multiplied by)
        in place of the offline per-signal RMS, which needs the whole signal:
        finite, positive and within
        :data:`~speechbrain_fsce.inference.stream_level.SCALE_RANGE`. Default:
        the level is tracked on line (1.0 for a model without level
        normalisation, as offline).
    fold_batchnorm : bool
        Stream a copy of the network with its eval-mode BatchNorms merged
        into convolutions (:func:`~speechbrain_fsce.models.folding.fold_batchnorm`):
        same output, fewer operations per hop. The weights are then read
        when the streamer is created; make a new streamer after changing or
        moving the enhancer.
    backend : str
        ``"torch"`` (default) runs the modules' streaming forms in PyTorch;
        ``"onnx"`` exports the step graph (BatchNorms folded) and runs it in
        onnxruntime through :class:`~speechbrain_fsce.inference.onnx_runtime.OnnxStreamer`
        (CPU; needs the ``onnx`` extra), several times faster per hop. Same
        output within float rounding; tensors in and out either way.
    threads : int
        onnxruntime threads (``backend="onnx"``; 1 is fastest for one hop).
    time_constant : float
        Seconds of speech-active signal the tracked level averages over
        (:class:`~speechbrain_fsce.inference.stream_level.StreamLevel`;
        unused with a fixed ``scale``).

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> enhancer = FSCEEnhancer(FSCE(causal=True, channels=8, inner_channels=4,
    ...     tcm_hidden_channels=8, num_tcm_modules=1, dilations=(1, 2)))
    >>> streamer = FSCEStreamer(enhancer, scale=0.1)
    >>> noisy = torch.randn(1600)
    >>> hops = [streamer.process(noisy[i : i + 160]) for i in range(0, 1600, 160)]
    >>> [len(h) for h in hops[:3]], len(streamer.flush())
    ([160, 160, 160], 160)
    >>> FSCEStreamer(FSCEEnhancer(FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8)))
    Traceback (most recent call last):
    ...
    ValueError: Streaming needs a causal FSCE model (causal: True); this one looks 378 frames ahead. Use speechbrain_fsce.inference.chunked for non-causal models.
    """

    def __init__(
        self,
        enhancer,
        scale=None,
        fold_batchnorm=True,
        backend="torch",
        threads=1,
        time_constant=1.0,
    ):
        if scale is not None:
            scale = check_scale(scale)
        if backend not in ("torch", "onnx"):
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        self.enhancer = enhancer.eval()
        self.front_end = enhancer.front_end
        self.model = enhancer.model
        self.model.init_state(1)  # raises for a non-causal model
        if fold_batchnorm and backend == "torch":
            self.model = folding.fold_batchnorm(self.model)
        self.front_end._check_streamable()
        self.hop_samples = self.front_end.hop_samples
        self.sample_rate = self.front_end.sample_rate
        self.latency_samples = self.hop_samples
        if scale is None and not self.front_end.normalize_level:
            scale = 1.0  # the model was trained on signals as they come
        self.scale = scale  # None: tracked on line
        self._level = None
        if scale is None:
            self._level = StreamLevel(self.hop_samples, self.sample_rate, time_constant)
        self._onnx = None
        if backend == "onnx":
            self._onnx = _onnx_streamer(enhancer, scale, fold_batchnorm, threads, time_constant)
        self.reset()

    @property
    def level(self):
        """The level the last hop was divided by: ``scale``, or the tracked level
        (``[batch]`` numpy array; ``None`` before the first hop)."""
        if self._onnx is not None:
            return self._onnx.level
        if self._level is None:
            return self.scale
        return self._level.level

    def reset(self):
        """Starts a new signal."""
        if self._onnx is not None:
            self._onnx.reset()
        if self._level is not None:
            self._level.reset()
        self._last_level = None  # [B, 1] level of the last hop (tracked level)
        self._pending = None  # [B, samples] input not analysed yet (< one hop)
        self._net_state = self._fe_state = None
        self._squeeze = None
        self.samples_in = 0
        self.samples_out = 0

    def _prepare(self, x):
        x = torch.as_tensor(x)
        squeeze = x.dim() == 1
        if squeeze:
            x = x.unsqueeze(0)
        if x.dim() != 2:
            raise ValueError(
                f"expected a hop [samples] or [batch, samples], got shape {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError("input contains NaN or Inf samples")
        device = next(self.model.parameters()).device
        x = x.to(device=device, dtype=torch.float32)
        if self._pending is None:
            self._squeeze = squeeze
            self._pending = x.new_zeros(x.shape[0], 0)
            self._net_state = self.model.init_state(x.shape[0])
            self._fe_state = self.front_end.init_stream_state(x.shape[0], device)
        elif x.shape[0] != self._pending.shape[0]:
            raise ValueError(f"batch size changed from {self._pending.shape[0]} to {x.shape[0]}")
        elif self._net_state[0].device != device:
            raise ValueError("the enhancer was moved to another device in the middle of a signal")
        return x

    def _step(self, samples, scale):
        """Enhanced output for whole hops ``[B, n * hop]`` at one level."""
        spec, self._fe_state = self.front_end.analyze_step(samples, self._fe_state, scale)
        output, self._net_state = self.model.forward_step(spec, self._net_state)
        out, self._fe_state = self.front_end.synthesize_step(output.enhanced, self._fe_state, scale)
        return out

    def _tracked_hops(self, samples):
        """:meth:`_step` hop by hop, each at the level tracked up to and with it."""
        h = self.hop_samples
        hops = samples.detach().cpu().numpy()
        outs = []
        for i in range(0, samples.shape[1], h):
            level = torch.as_tensor(self._level.update(hops[:, i : i + h]), dtype=samples.dtype)
            level = level.to(samples.device).unsqueeze(1)
            if self._last_level is not None:
                self._fe_state = self.front_end.rescale_stream_state(
                    self._fe_state, self._last_level / level
                )
            self._last_level = level
            outs.append(self._step(samples[:, i : i + h], level))
        return torch.cat(outs, dim=1)

    def _hops(self, samples):
        """Enhanced output (delayed by one hop) for whole hops of input ``[B, n * hop]``."""
        if self._level is None:
            out = self._step(samples, self.scale)
        else:
            out = self._tracked_hops(samples)
        if self.samples_out == 0:
            out[:, : self.hop_samples] = 0.0  # the hop before the signal starts
        self.samples_out += out.shape[1]
        return out

    def _finish(self, out):
        return out[0] if self._squeeze else out

    def process(self, x):
        """Enhances the next piece of signal.

        Arguments
        ---------
        x : torch.Tensor
            ``[samples]`` or ``[batch, samples]``; normally one hop.

        Returns
        -------
        torch.Tensor
            One hop of the delayed enhanced stream per hop completed by this
            piece (possibly none).
        """
        if self._onnx is not None:
            x = torch.as_tensor(x)
            self.samples_in += x.shape[-1]
            out = torch.from_numpy(self._onnx.process(x.detach().cpu().float().numpy()))
            self.samples_out += out.shape[-1]
            return out
        with torch.no_grad():
            x = self._prepare(x)
            self.samples_in += x.shape[1]
            buf = torch.cat([self._pending, x], dim=1)
            whole = buf.shape[1] // self.hop_samples * self.hop_samples
            self._pending = buf[:, whole:]
            if whole == 0:
                return self._finish(buf.new_zeros(buf.shape[0], 0))
            return self._finish(self._hops(buf[:, :whole]))

    def flush(self):
        """Ends the signal: returns the rest of the delayed enhanced stream.

        An incomplete last hop is completed with zeros and the last frame is
        analysed with zeros after the signal, as the offline front end does
        (it pads a signal to whole hops); the output is cut back to the
        signal's length. The streamer is then reset.

        Returns
        -------
        torch.Tensor
            The remaining samples (one hop plus any incomplete hop), or an
            empty tensor if nothing was processed.
        """
        if self._onnx is not None:
            result = torch.from_numpy(self._onnx.flush())
            self.reset()
            return result
        if self._pending is None:
            self.reset()
            return torch.zeros(0)
        with torch.no_grad():
            h = self.hop_samples
            rest = self._pending.shape[1]
            batch = self._pending.shape[0]
            tail = torch.cat(
                [self._pending, self._pending.new_zeros(batch, (h - rest) % h + h)], dim=1
            )
            out = self._hops(tail)
            out = out[:, : out.shape[1] - (h - rest) % h]
            result = self._finish(out)
        self.reset()
        return result


def _onnx_streamer(enhancer, scale, fold_batchnorm, threads, time_constant):
    """An :class:`OnnxStreamer` on a freshly exported step graph of ``enhancer``."""
    import tempfile

    from speechbrain_fsce.inference.onnx_export import export_onnx
    from speechbrain_fsce.inference.onnx_runtime import OnnxStreamer

    with tempfile.TemporaryDirectory() as folder:
        export_onnx(enhancer, folder, fold=fold_batchnorm)
        return OnnxStreamer(folder, scale=scale, threads=threads, time_constant=time_constant)
