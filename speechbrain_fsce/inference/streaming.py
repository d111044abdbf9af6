"""Frame-by-frame (streaming) enhancement with a causal FSCE model.

A causal FSCE (``causal: True``) has no look-ahead in the network, so it can
run on a live signal 10 ms at a time. :class:`FSCEStreamer` keeps every
piece of temporal state between calls, and its output equals offline causal
enhancement of the same signal (same level ``scale``) up to float rounding:

* STFT framing: SpeechBrain's STFT is centred with zero padding, so frame
  ``t`` covers samples ``[hop * t - hop, hop * t + hop)``; the streamer keeps
  the previous hop of input and analyses one frame per new hop.
* Encoders: each level pads ``kernel_time - 1`` past frames of zeros in front
  of its input; the streamer keeps the last ``kernel_time - 1`` input frames
  of every level (zeros at the start).
* S-TCMs: each gated dilated block pads ``4 * dilation`` past frames of
  zeros on the output of its input 1x1 conv; the streamer keeps that many
  frames of it per block.
* Decoders: each transposed level adds ``kernel_time - 1`` frames that are
  chomped at the end, i.e. output frame ``t`` mixes the level's input frames
  ``t`` and ``t - 1``; the streamer keeps the previous input frame of the
  transposed experts (after their 1x1 input conv) per level and decoder.
* Normalisation layers are used in eval mode (running statistics), which is
  frame-local; the enhancer is put in eval mode.
* ISTFT: windowed overlap-add; a hop of output is final once the next frame
  is known, and is divided by the same window-square envelope as
  ``torch.istft``.

Latency: the output stream is the enhanced signal delayed by one hop
(``latency_samples``); counting the hop being buffered, the algorithmic
latency is one window (20 ms at 16 kHz). Level normalisation cannot see the
future: the streamer divides by a fixed ``scale`` (default 1.0, i.e. the
signal as it comes) and multiplies the output back.

Authors
 * speechbrain-fsce developers
"""

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from speechbrain_fsce.nnet.ceb import CEB


def _take_last(x, n, dim):
    """The last ``n`` entries of ``x`` along ``dim`` (an empty slice for n=0)."""
    return x.narrow(dim, x.shape[dim] - n, n)


def _bn_affine(bn):
    """Eval-mode BatchNorm as ``x * scale + shift`` (per channel)."""
    if not isinstance(bn, _BatchNorm) or not bn.track_running_stats or bn.running_var is None:
        raise ValueError(
            f"streaming needs BatchNorm layers with running statistics, found {type(bn).__name__}"
        )
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale.detach(), shift.detach()


def _prelu_weight(act):
    if not isinstance(act, torch.nn.PReLU):
        raise ValueError(f"streaming supports PReLU activations, found {type(act).__name__}")
    return act.weight.detach()


def _fold_out(weight, bias, bn, out_dim):
    """``bn(conv(x))`` as one conv: scales output channels (axis ``out_dim``)."""
    scale, shift = _bn_affine(bn)
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    bias = torch.zeros_like(scale) if bias is None else bias.detach()
    return weight.detach() * scale.reshape(shape), bias * scale + shift


def _pointwise_transposed(conv):
    """A 1x1 transposed conv as the weight of the equivalent 1x1 conv."""
    return conv.weight.detach().transpose(0, 1).contiguous(), conv.bias.detach()


def _tap_weight(conv, weight=None):
    """Weight of a chomped 2-D transposed conv run as a 1-D transposed conv.

    Output frame ``t`` of the chomped transposed conv is
    ``sum_s W[:, :, s] h[t - s]``: with the time taps folded into the input
    channels (most recent frame last) it is one transposed conv over
    frequency, several times faster on CPU than PyTorch's 2-D transposed
    conv on a couple of frames.
    """
    kt = conv.kernel_size[0]
    if conv.groups != 1 or conv.stride[0] != 1 or conv.padding[0] != 0 or conv.dilation[0] != 1:
        raise ValueError("streaming needs decoder convs with time stride 1 and no time padding")
    weight = conv.weight.detach() if weight is None else weight  # [C_in, C_out, kt, kf]
    return torch.cat([weight[:, :, kt - 1 - s] for s in range(kt)], dim=0)


class _EncoderLevel:
    """One causal encoder level: pad-past -> (C)CEB or conv -> BN -> PReLU."""

    def __init__(self, blk, nrm, act, past):
        self.past = past
        self.alpha = _prelu_weight(act)
        if isinstance(blk, CEB):
            self.ceb = True
            self.w_in, self.b_in = blk.conv_in.weight.detach(), blk.conv_in.bias.detach()
            self.expert_stride = blk.expert_a.stride
            self.w_a, self.b_a = blk.expert_a.weight.detach(), blk.expert_a.bias.detach()
            self.w_b, self.b_b = blk.expert_b.weight.detach(), blk.expert_b.bias.detach()
            self.w_ga, self.b_ga = blk.gate_a.weight.detach(), blk.gate_a.bias.detach()
            self.w_gb, self.b_gb = blk.gate_b.weight.detach(), blk.gate_b.bias.detach()
            self.w_out, self.b_out = _fold_out(blk.conv_out.weight, blk.conv_out.bias, nrm, 0)
        else:
            self.ceb = False
            self.stride = blk.conv.stride
            self.w, self.b = _fold_out(blk.conv.weight, blk.conv.bias, nrm, 0)

    def __call__(self, x, com=None):
        conv2d = torch.nn.functional.conv2d
        if not self.ceb:
            return torch.nn.functional.prelu(conv2d(x, self.w, self.b, self.stride), self.alpha), None
        h = conv2d(x, self.w_in, self.b_in)
        a = conv2d(h, self.w_a, self.b_a, self.expert_stride)
        b = conv2d(h, self.w_b, self.b_b, self.expert_stride)
        src_a, src_b = (a, b) if com is None else ((a + com) / 2, (b + com) / 2)
        # Each expert is gated by the other expert's gate (see CEB.forward).
        inner = a * torch.sigmoid(conv2d(src_b, self.w_gb, self.b_gb)) + b * torch.sigmoid(
            conv2d(src_a, self.w_ga, self.b_ga)
        )
        out = torch.nn.functional.prelu(conv2d(inner, self.w_out, self.b_out), self.alpha)
        return out, inner


class _DecoderLevel:
    """One decoder level: transposed (CEB or conv) -> chomp -> BN -> PReLU."""

    def __init__(self, blk, nrm, act, past):
        self.past = past
        self.alpha = _prelu_weight(act)
        if isinstance(blk, CEB):
            self.ceb = True
            self.w_in, self.b_in = _pointwise_transposed(blk.conv_in)
            self.expert = dict(
                stride=blk.expert_a.stride[1], padding=blk.expert_a.padding[1],
                output_padding=blk.expert_a.output_padding[1], dilation=blk.expert_a.dilation[1],
            )
            self.w_a, self.b_a = _tap_weight(blk.expert_a), blk.expert_a.bias.detach()
            self.w_b, self.b_b = _tap_weight(blk.expert_b), blk.expert_b.bias.detach()
            self.w_ga, self.b_ga = _pointwise_transposed(blk.gate_a)
            self.w_gb, self.b_gb = _pointwise_transposed(blk.gate_b)
            w_out, b_out = _pointwise_transposed(blk.conv_out)
            self.w_out, self.b_out = _fold_out(w_out, b_out, nrm, 0)
        else:
            self.ceb = False
            self.expert = dict(
                stride=blk.conv.stride[1], padding=blk.conv.padding[1],
                output_padding=blk.conv.output_padding[1], dilation=blk.conv.dilation[1],
            )
            w, self.b = _fold_out(blk.conv.weight, blk.conv.bias, nrm, 1)
            self.w = _tap_weight(blk.conv, w)

    def _taps(self, h, weight, bias, n):
        """Chomped transposed conv of the last ``n`` frames of ``h`` ``[B, C, past + n, F]``."""
        b, c, _, f = h.shape
        kt = self.past + 1
        win = h.unfold(2, kt, 1)  # [B, C, n, F, kt]; win[..., s] = h[t - (kt - 1) + s]
        x = win.permute(0, 2, 4, 1, 3).reshape(b * n, kt * c, f)
        y = torch.nn.functional.conv_transpose1d(x, weight, bias, **self.expert)
        return y.reshape(b, n, y.shape[1], y.shape[2]).permute(0, 2, 1, 3)

    def __call__(self, x, state, key):
        """``x``: new frames ``[B, C, n, F]``; ``state`` keeps past inputs by ``key``."""
        n = x.shape[2]
        conv2d = torch.nn.functional.conv2d
        if not self.ceb:
            h = CausalFSCEState._with_past(state, key, x, self.past, dim=2)
            return torch.nn.functional.prelu(self._taps(h, self.w, self.b, n), self.alpha)
        h = CausalFSCEState._with_past(state, key, conv2d(x, self.w_in, self.b_in), self.past, dim=2)
        a = self._taps(h, self.w_a, self.b_a, n)
        b = self._taps(h, self.w_b, self.b_b, n)
        inner = a * torch.sigmoid(conv2d(b, self.w_gb, self.b_gb)) + b * torch.sigmoid(
            conv2d(a, self.w_ga, self.b_ga)
        )
        return torch.nn.functional.prelu(conv2d(inner, self.w_out, self.b_out), self.alpha)


class _TCMBlock:
    """One causal gated dilated block, BatchNorms folded into the convs."""

    def __init__(self, block):
        self.context = block.context
        self.w_in, self.b_in = block.conv_in.weight.detach(), block.conv_in.bias.detach()
        self.paths = []
        for path in (block.path_a, block.path_b):
            act, norm, conv = path
            if not isinstance(conv, torch.nn.Conv1d) or conv.padding != (0,) or conv.stride != (1,):
                raise ValueError("streaming needs unpadded, unstrided dilated convs in the S-TCM")
            # conv(BN(y)) = conv'(y): BN scales/shifts the conv's input channels.
            scale, shift = _bn_affine(norm)
            w = conv.weight.detach()
            bias = conv.bias.detach() + (w * shift[None, :, None]).sum((1, 2))
            w = (w * scale[None, :, None]).reshape(w.shape[0], -1)
            self.paths.append((_prelu_weight(act), w, bias, conv.kernel_size[0], conv.dilation[0]))
        self.alpha_out = _prelu_weight(block.out_act)
        scale, shift = _bn_affine(block.out_norm)
        w_out = block.conv_out.weight.detach()
        self.b_out = block.conv_out.bias.detach() + (w_out[:, :, 0] * shift[None, :]).sum(1)
        self.w_out = w_out * scale[None, :, None]

    def _path(self, path, h, n):
        """One dilated path for the last ``n`` frames, reading only its taps."""
        alpha, w, bias, k, d = path
        b, c, _ = h.shape
        taps = h.unfold(2, (k - 1) * d + 1, 1)[..., ::d]  # [B, C, n, k]
        y = torch.nn.functional.prelu(taps, alpha).permute(0, 2, 1, 3).reshape(b * n, c * k)
        return torch.nn.functional.linear(y, w, bias).reshape(b, n, -1).transpose(1, 2)

    def __call__(self, x, state, key):
        n = x.shape[2]
        h = torch.nn.functional.conv1d(x, self.w_in, self.b_in)
        h = CausalFSCEState._with_past(state, key, h, self.context, dim=2)
        gated = self._path(self.paths[0], h, n) * torch.sigmoid(self._path(self.paths[1], h, n))
        gated = torch.nn.functional.prelu(gated, self.alpha_out)
        return x + torch.nn.functional.conv1d(gated, self.w_out, self.b_out)


class CausalFSCEState:
    """Runs a causal :class:`~speechbrain_fsce.models.FSCE` a few frames at a time.

    Each call to :meth:`step` takes the next ``n >= 1`` frames of the
    (compressed, level-normalised) noisy spectrum and returns the network's
    output for exactly those frames, as the offline forward pass (eval mode)
    over the whole spectrum would. The weights are read when the state is
    created: eval-mode BatchNorms are folded into the neighbouring linear
    layers and the layers are run as plain tensor operations (on a couple of
    frames, module-call overhead otherwise dominates). Create a new state
    after changing the weights or moving the model to another device.

    Arguments
    ---------
    model : speechbrain_fsce.models.FSCE
        A model built with ``causal=True``; it is put in eval mode.

    Example
    -------
    >>> from speechbrain_fsce import FSCE
    >>> model = FSCE(causal=True, channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...              num_tcm_modules=1, dilations=(1, 2)).eval()
    >>> spec = torch.randn(1, 9, 161, 2)
    >>> state = CausalFSCEState(model)
    >>> with torch.no_grad():
    ...     parts = [state.step(spec[:, :4]).enhanced, state.step(spec[:, 4:]).enhanced]
    ...     whole = model(spec).enhanced
    >>> bool(torch.allclose(torch.cat(parts, 1), whole, atol=1e-5))
    True
    """

    def __init__(self, model):
        if not getattr(model, "causal", False):
            look_ahead = model.time_receptive_field()[1] if hasattr(model, "time_receptive_field") else "?"
            raise ValueError(
                "Streaming needs a causal FSCE model (causal: True); this one looks "
                f"{look_ahead} frames ahead. Use speechbrain_fsce.inference.chunked "
                "for non-causal models."
            )
        self.model = model.eval()
        with torch.no_grad():
            self._build()
        self.reset()

    def _build(self):
        m = self.model
        self.device = next(m.parameters()).device
        self.encoders, self.tcms, self.decoders = {}, {}, {}
        for name in ("mag_encoder", "cplx_encoder"):
            if hasattr(m, name):
                enc = getattr(m, name)
                self.encoders[name] = [
                    _EncoderLevel(blk, nrm, act, enc.past_pads[i])
                    for i, (blk, nrm, act) in enumerate(zip(enc.blocks, enc.norms, enc.acts))
                ]
        for name in ("mag_tcm", "cplx_tcm"):
            if hasattr(m, name):
                self.tcms[name] = [_TCMBlock(block) for block in getattr(m, name).blocks]
        for name in ("mag_decoder", "real_decoder", "imag_decoder"):
            if hasattr(m, name):
                dec = getattr(m, name)
                self.decoders[name] = [
                    _DecoderLevel(blk, nrm, act, dec.chomps[i])
                    for i, (blk, nrm, act) in enumerate(zip(dec.blocks, dec.norms, dec.acts))
                ]

    def reset(self):
        """Forgets all history (as at the start of a signal)."""
        self.frames_done = 0
        self._past = {}  # (layer name, index) -> past frames of that layer's input

    @staticmethod
    def _with_past(store, key, x, past, dim):
        """``cat(past frames, x)`` along ``dim``; stores the new past frames."""
        prev = store.get(key)
        if prev is None:
            shape = list(x.shape)
            shape[dim] = past
            prev = x.new_zeros(shape)  # the offline zero padding before frame 0
        full = torch.cat([prev, x], dim=dim)
        store[key] = _take_last(full, past, dim)
        return full

    def _encoder(self, name, x, coms=None):
        skips, inner = [], []
        for i, level in enumerate(self.encoders[name]):
            x = self._with_past(self._past, (name, i), x, level.past, dim=2)
            x, com = level(x, None if coms is None else coms[i])
            skips.append(x)
            inner.append(com)
        return x, skips, inner

    def _bottleneck(self, name, x):
        b, c, t, f = x.shape
        # Channel-major flattening, as FSCE._bottleneck.
        y = x.permute(0, 1, 3, 2).reshape(b, c * f, t)
        for k, block in enumerate(self.tcms[name]):
            y = block(y, self._past, (name, k))
        return y.reshape(b, c, f, t).permute(0, 1, 3, 2)

    def _decoder(self, name, x, skips):
        for i, level in enumerate(self.decoders[name]):
            x = level(torch.cat([x, skips[-1 - i]], dim=1), self._past, (name, i))
        return x

    def step(self, x):
        """Network output for the next frames (mirrors ``FSCE.forward``).

        Arguments
        ---------
        x : torch.Tensor
            Next noisy frames ``[B, n, F, 2]`` (compressed, level-normalised).

        Returns
        -------
        FSCEOutput
            For these ``n`` frames.
        """
        m = self.model
        if x.dim() != 4 or x.shape[-1] != 2 or x.shape[2] != m.num_freqs:
            raise ValueError(f"expected frames [batch, n, {m.num_freqs}, 2], got {tuple(x.shape)}")
        inp = x.permute(0, 3, 1, 2)
        magnitude = cplx = coms = None
        if "mag_encoder" in self.encoders:
            h, skips, coms = self._encoder("mag_encoder", inp)
            h = self._bottleneck("mag_tcm", h)
            magnitude = m.magnitude_estimate(x, self._decoder("mag_decoder", h, skips))
        if "cplx_encoder" in self.encoders:
            h, skips, _ = self._encoder("cplx_encoder", inp, coms if m.collaborate else None)
            h = self._bottleneck("cplx_tcm", h)
            cplx = m.complex_estimate(
                x, self._decoder("real_decoder", h, skips), self._decoder("imag_decoder", h, skips))
        self.frames_done += x.shape[1]
        return m.fuse(x, magnitude, cplx)


class FSCEStreamer:
    """Streams a causal FSCE enhancer hop by hop (10 ms at 16 kHz).

    Feed consecutive pieces of the noisy signal to :meth:`process` (usually
    one hop of ``hop_samples`` samples; any length works, incomplete hops are
    kept for the next call) and call :meth:`flush` at the end. The returned
    pieces, concatenated, are the enhanced signal delayed by
    ``latency_samples`` (one hop; the first hop out is silence): one hop in
    gives one hop out. After :meth:`flush`, ``latency_samples + len(signal)``
    samples have come out, and dropping the first ``latency_samples`` gives
    the offline causal enhancement ``enhance_spectrum(signal, scale=scale)``.

    The network's weights are read when the streamer is created (see
    :class:`CausalFSCEState`). On CPU, one thread
    (``torch.set_num_threads(1)``) is usually fastest: a hop is hundreds of
    small operations, for which thread synchronisation costs more than it
    saves (``benchmarks/bench_streaming.py`` measures the per-hop time).

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        Waveform enhancer whose ``model.causal`` is True. It is put in eval
        mode.
    scale : float
        Level the input is divided by (and the output multiplied by) in place
        of the offline per-signal RMS, which needs the whole signal.

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

    def __init__(self, enhancer, scale=1.0):
        self.enhancer = enhancer.eval()
        fe = enhancer.front_end
        self.front_end = fe
        self.hop_samples = fe.hop_samples
        self.n_fft = fe.stft_fn.n_fft
        if self.n_fft != 2 * self.hop_samples or fe.win_samples > self.n_fft:
            raise ValueError(
                "FSCEStreamer needs an STFT whose frames span exactly two hops "
                f"(n_fft = 2 * hop); got n_fft={self.n_fft}, hop={self.hop_samples}"
            )
        self.sample_rate = fe.sample_rate
        self.latency_samples = self.hop_samples
        self.state = CausalFSCEState(enhancer.model)
        self.scale = float(scale)
        window = fe.stft_fn.window
        if window.shape[0] < self.n_fft:  # torch.stft centres a shorter window
            left = (self.n_fft - window.shape[0]) // 2
            window = torch.nn.functional.pad(window, (left, self.n_fft - window.shape[0] - left))
        self._window = window
        self._synthesis_window = fe.istft_fn.window
        if self._synthesis_window.shape[0] < self.n_fft:
            sw = self._synthesis_window
            left = (self.n_fft - sw.shape[0]) // 2
            self._synthesis_window = torch.nn.functional.pad(sw, (left, self.n_fft - sw.shape[0] - left))
        h = self.hop_samples
        self._envelope = self._synthesis_window[h:].pow(2) + self._synthesis_window[:h].pow(2)
        self.reset()

    def reset(self):
        """Starts a new signal."""
        self.state.reset()
        self._pending = None  # [B, samples] input not analysed yet (starts with the previous hop)
        self._ola = None  # [B, hop] second half of the last synthesised frame
        self._squeeze = None
        self.samples_in = 0
        self.samples_out = 0

    def _prepare(self, x):
        x = torch.as_tensor(x)
        squeeze = x.dim() == 1
        if squeeze:
            x = x.unsqueeze(0)
        if x.dim() != 2:
            raise ValueError(f"expected a hop [samples] or [batch, samples], got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("input contains NaN or Inf samples")
        if self._squeeze is None:
            self._squeeze = squeeze
        device = next(self.enhancer.parameters()).device
        if device != self.state.device:  # the enhancer was moved: re-read its weights
            if self._pending is not None:
                raise ValueError("the enhancer was moved to another device in the middle of a signal")
            self.state = CausalFSCEState(self.enhancer.model)
        x = x.to(device=device, dtype=torch.float32)
        if self._pending is None:
            # The centred STFT's zero padding in front of the first frame.
            self._pending = x.new_zeros(x.shape[0], self.hop_samples)
            self._ola = x.new_zeros(x.shape[0], self.hop_samples)
        elif x.shape[0] != self._pending.shape[0]:
            raise ValueError(f"batch size changed from {self._pending.shape[0]} to {x.shape[0]}")
        return x

    def _window_device(self, x):
        if self._window.device != x.device:
            self._window = self._window.to(x.device)
            self._synthesis_window = self._synthesis_window.to(x.device)
            self._envelope = self._envelope.to(x.device)

    def _frames(self, buf):
        """Network output frames for a buffer of ``(n + 1) * hop`` samples."""
        spec = torch.stft(
            buf / self.scale, self.n_fft, self.hop_samples, self.n_fft, self._window,
            center=False, normalized=self.front_end.stft_fn.normalized_stft,
            onesided=True, return_complex=True,
        )
        spec = self.front_end.compress(torch.view_as_real(spec).transpose(1, 2))
        out = self.state.step(spec).enhanced
        out = self.front_end.decompress(out)
        frames = torch.fft.irfft(torch.view_as_complex(out.contiguous()), n=self.n_fft, dim=-1)
        return frames * self._synthesis_window  # [B, n, n_fft]

    def _finish(self, out):
        out = out * self.scale
        self.samples_out += out.shape[1]
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
            The next ``hop_samples * (complete hops so far) - samples already
            returned`` samples of the delayed enhanced stream (one hop per
            complete hop in).
        """
        with torch.no_grad():
            x = self._prepare(x)
            self._window_device(x)
            self.samples_in += x.shape[1]
            buf = torch.cat([self._pending, x], dim=1)
            h = self.hop_samples
            n = buf.shape[1] // h - 1  # complete new frames
            if n <= 0:
                self._pending = buf
                return self._finish(buf.new_zeros(buf.shape[0], 0))
            frames = self._frames(buf[:, : (n + 1) * h])
            self._pending = buf[:, n * h :]
            prev = torch.cat([self._ola.unsqueeze(1), frames[:, :-1, h:]], dim=1)
            out = (prev + frames[:, :, :h]) / self._envelope
            if self.state.frames_done == n:
                out[:, 0] = 0.0  # the hop before the signal starts
            self._ola = frames[:, -1, h:]
            return self._finish(out.reshape(out.shape[0], -1))

    def flush(self):
        """Ends the signal: returns the rest of the delayed enhanced stream.

        The last frame is analysed with zeros after the signal, as the
        centred offline STFT does; a final incomplete hop is synthesised from
        that single frame, as ``torch.istft`` does at the end of a signal.
        The streamer is then reset.

        Returns
        -------
        torch.Tensor
            The remaining samples (one hop plus any incomplete hop), or an
            empty tensor if nothing was processed.
        """
        if self._pending is None:
            self.reset()
            return torch.zeros(0)
        with torch.no_grad():
            h = self.hop_samples
            rest = self._pending.shape[1] - h  # samples of an incomplete hop
            buf = torch.nn.functional.pad(self._pending, (0, 2 * h - self._pending.shape[1]))
            frame = self._frames(buf)[:, 0]
            out = (self._ola + frame[:, :h]) / self._envelope
            if self.state.frames_done == 1:
                out = out * 0.0  # the hop before the signal starts
            tail = frame[:, h : h + rest] / self._synthesis_window[h : h + rest].pow(2)
            result = self._finish(torch.cat([out, tail], dim=1))
        self.reset()
        return result
