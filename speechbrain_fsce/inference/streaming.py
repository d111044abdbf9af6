"""Frame-by-frame (streaming) enhancement with a causal FSCE model.

A causal FSCE (``causal: True``) has no look-ahead in the network, so it can
run on a live signal 10 ms at a time. :class:`FSCEStreamer` is the one
streamer (:class:`~speechbrain_fsce.inference.stream_level.HopStreamer`:
framing of pieces into hops, buffering, flush, level) with tensors in and
out, driving one of two steps: :class:`TorchStep`, the enhancer's own
:meth:`~speechbrain_fsce.models.FSCEEnhancer.forward_step` (analysis, network
step, synthesis, overlap-add), or the same step exported to ONNX and run in
onnxruntime (:class:`~speechbrain_fsce.inference.onnx_runtime.OnnxStep`).
All arithmetic lives in the modules, so its output equals offline causal
enhancement of the same signal (same level ``scale``) up to float rounding.

Latency: the output stream is the enhanced signal delayed by one hop
(``latency_samples``); counting the hop being buffered, the algorithmic
latency is one window (20 ms at 16 kHz).

Level: offline, a level-normalised model divides the signal by its RMS,
which a stream does not know in advance. By default the streamer tracks the
level on line, hop by hop, with
:class:`~speechbrain_fsce.inference.stream_level.StreamLevel` (a running RMS
of the speech-active hops, time constant ``time_constant``, bounded gain), so
that a stream that starts with silence or changes level comes out at the
input's level. A fixed ``scale`` instead divides every hop by that level:
the output then equals offline causal enhancement at that level (what
:mod:`~speechbrain_fsce.inference.chunked` uses, with the RMS of the whole
file).

Authors
 * speechbrain-fsce developers
"""

import torch

from speechbrain_fsce.inference.stream_level import HopStreamer
from speechbrain_fsce.models import folding


class TorchStep:
    """An enhancer's :meth:`~speechbrain_fsce.models.FSCEEnhancer.forward_step` as the
    step of a :class:`~speechbrain_fsce.inference.stream_level.HopStreamer`:
    numpy hops in and out, tensors on the enhancer's device in between.

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        In eval mode, with a causal network.

    Example
    -------
    >>> import numpy as np
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> step = TorchStep(FSCEEnhancer(FSCE(causal=True, channels=4, inner_channels=2,
    ...     tcm_hidden_channels=4, num_tcm_modules=1, dilations=(1,))).eval())
    >>> state = step.init_state(2)
    >>> out, state = step.step(np.zeros((2, 160), np.float32), np.ones((2, 1), np.float32), state)
    >>> out.shape
    (2, 160)
    """

    def __init__(self, enhancer):
        self.enhancer = enhancer
        self.device = next(enhancer.parameters()).device

    def init_state(self, batch):
        """The enhancer's stream state for ``batch`` signals."""
        return self.enhancer.init_state(batch, self.device)

    def step(self, hop, scale, state):
        """One hop ``[B, hop]`` at levels ``[B, 1]`` (numpy) -> (the hop before, state)."""
        if next(self.enhancer.parameters()).device != self.device:
            raise ValueError("the enhancer was moved to another device in the middle of a signal")
        # inference_mode, not no_grad: no version counters or autograd
        # records on hundreds of small tensors a hop (~9 % of a step's time).
        with torch.inference_mode():
            hop = torch.from_numpy(hop).to(self.device)
            scale = torch.from_numpy(scale).to(self.device)
            out, state = self.enhancer.forward_step(hop, scale, state)
        return out.cpu().numpy(), state


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
        if backend not in ("torch", "onnx"):
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        self.enhancer = enhancer.eval()
        self.front_end = enhancer.front_end
        self.model = enhancer.model
        self.model.init_state(1)  # raises for a non-causal model
        self.front_end.check_framed()
        if backend == "onnx":
            step = _onnx_step(enhancer, fold_batchnorm, threads)
        else:
            if fold_batchnorm:
                self.model = folding.fold_batchnorm(self.model)
                enhancer = type(enhancer)(self.model, self.front_end).eval()
            step = TorchStep(enhancer)
        self._device = torch.device("cpu") if backend == "onnx" else step.device
        self._stream = HopStreamer(
            step,
            self.front_end.hop_samples,
            self.front_end.sample_rate,
            scale=scale,
            normalize_level=self.front_end.normalize_level,
            time_constant=time_constant,
        )
        self.hop_samples = self._stream.hop_samples
        self.sample_rate = self._stream.sample_rate
        self.latency_samples = self._stream.latency_samples
        self.scale = self._stream.scale

    @property
    def level(self):
        """The level the last hop was divided by: ``scale``, or the tracked level
        (``[batch]`` numpy array; ``None`` before the first hop)."""
        return self._stream.level

    @property
    def samples_in(self):
        """Samples taken since the signal started."""
        return self._stream.samples_in

    @property
    def samples_out(self):
        """Samples given back since the signal started."""
        return self._stream.samples_out

    def reset(self):
        """Starts a new signal."""
        self._stream.reset()

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
            piece (possibly none), on the enhancer's device (the CPU for the
            onnx backend).
        """
        x = torch.as_tensor(x).detach().cpu().float().numpy()
        return torch.from_numpy(self._stream.process(x)).to(self._device)

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
        return torch.from_numpy(self._stream.flush()).to(self._device)


def _onnx_step(enhancer, fold_batchnorm, threads):
    """An :class:`OnnxStep` on a freshly exported step graph of ``enhancer``."""
    import tempfile

    from speechbrain_fsce.inference.onnx_export import export_onnx
    from speechbrain_fsce.inference.onnx_runtime import OnnxStep

    with tempfile.TemporaryDirectory() as folder:
        export_onnx(enhancer, folder, fold=fold_batchnorm)
        return OnnxStep(folder, threads)
