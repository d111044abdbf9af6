"""Enhancement of signals and files of any length in constant memory.

The whole-signal forward pass keeps every activation of the signal in memory
(hundreds of MB per minute for the published model). Here the signal is cut
into chunks that are enhanced one at a time and put back together:

* **Non-causal model.** Each chunk of ``chunk_seconds`` is enhanced together
  with ``context_seconds`` of signal on both sides, and neighbouring chunks
  are cross-faded over ``crossfade_seconds`` around their boundary. The
  published model's output frame depends on 388 past and 378 future frames
  (``model.time_receptive_field()``, 3.9 s / 3.8 s); with the default
  context (the receptive field plus half the cross-fade, about 4 s each
  side) every output sample sees exactly what it sees in a whole-signal pass,
  so the result equals whole-signal enhancement up to float rounding, at the
  cost of ``(chunk + 2 * context) / chunk`` times the computation (1.8 x with
  the default 10 s chunks). A shorter context is cheaper but changes the
  samples near chunk boundaries (the cross-fade hides the seam, not the
  difference); longer chunks lower the overhead but raise the peak memory
  (for the published model, roughly 45 MB per second of chunk plus context
  on top of what torch itself needs: 10 s chunks peaked at 1.4 GB resident,
  20 s chunks at 1.9 GB, see ``benchmarks/bench_long_file_memory.py``).
* **Causal model.** Chunks are fed to :class:`FSCEStreamer`, which carries
  all temporal state across chunks: exact, with no context overhead.
* **One level for the whole signal.** Level normalisation uses a single RMS
  for the whole signal, computed in a first pass (streamed from disk for
  files), so that all chunks agree with each other and with whole-signal
  enhancement.
* **Files** are read in blocks (:func:`speechbrain_fsce.dataio.audio.read_blocks`:
  mixed to mono, resampled block by block with the same result as
  ``load_audio``), and written block by block to a temporary file that is
  renamed into place at the end
  (:func:`speechbrain_fsce.fileio.atomic_path`); every block is checked
  finite before it is written.

Authors
 * speechbrain-fsce developers
"""

import math
import os

import numpy as np  # noqa: F401 (doctests)
import soundfile as sf
import torch
import torchaudio  # noqa: F401 (doctests)

from speechbrain_fsce.dataio.audio import (  # noqa: F401 (re-exported)
    AudioError,
    StreamingResampler,
    audio_info,
    check_finite_output,
    read_blocks,
    wav_comment,
)
from speechbrain_fsce.fileio import atomic_path
from speechbrain_fsce.inference.streaming import FSCEStreamer

#: Comment of every enhanced file written here: marks it as an output of
#: its own kind, which ``fsce-enhance --overwrite`` may replace.
ENHANCED_COMMENT = "speechbrain-fsce enhanced"


def is_enhanced_output(path):
    """Whether a file is an enhanced file written by this package (its comment).

    Arguments
    ---------
    path : str
        Any path; a folder, or a missing or unreadable file, gives False.

    Returns
    -------
    bool

    Example
    -------
    >>> from speechbrain_fsce.dataio.audio import save_wav
    >>> tmp = getfixture("tmp_path")
    >>> save_wav(str(tmp / "a.wav"), np.zeros(8), comment=ENHANCED_COMMENT)
    >>> save_wav(str(tmp / "b.wav"), np.zeros(8))
    >>> is_enhanced_output(tmp / "a.wav"), is_enhanced_output(tmp / "b.wav")
    (True, False)
    """
    return os.path.isfile(str(path)) and wav_comment(path) == ENHANCED_COMMENT


def receptive_context(model, hop):
    """Samples of context that make chunked non-causal enhancement exact.

    Arguments
    ---------
    model : speechbrain_fsce.models.FSCE
        The network (its ``time_receptive_field()`` in frames).
    hop : int
        STFT hop in samples.

    Returns
    -------
    int
        ``hop * (max(look_back, look_ahead) + 2)``: the frames the output
        depends on, plus the two STFT frames that share each sample.

    Example
    -------
    >>> from speechbrain_fsce import FSCE
    >>> receptive_context(FSCE(), 160) / 16000
    3.9
    """
    look_back, look_ahead = model.time_receptive_field()
    return hop * (max(look_back, look_ahead) + 2)


class ChunkPlan:
    """Chunk, context and cross-fade lengths in samples (multiples of the hop).

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        The enhancer (its hop, rate and receptive field are read).
    chunk_seconds : float
        Length of each chunk's own part.
    context_seconds : float, optional
        Signal added on each side of a chunk; default: exact (the receptive
        field plus half the cross-fade).
    crossfade_seconds : float
        Length of the linear cross-fade between neighbouring chunks.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> plan = ChunkPlan(FSCEEnhancer(FSCE()))
    >>> plan.chunk, plan.context, plan.crossfade
    (160000, 64480, 4000)
    """

    def __init__(self, enhancer, chunk_seconds=10.0, context_seconds=None, crossfade_seconds=0.25):
        fe = enhancer.front_end
        hop, rate = fe.hop_samples, fe.sample_rate
        if chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be > 0, got {chunk_seconds}")
        self.chunk = hop * max(1, int(round(chunk_seconds * rate / hop)))
        self.crossfade = 2 * int(round(max(0.0, crossfade_seconds) * rate / 2))
        self.crossfade = min(self.crossfade, self.chunk)
        half = self.crossfade // 2
        if context_seconds is None:
            context = receptive_context(enhancer.model, hop) + half
        else:
            context = max(int(round(context_seconds * rate)), half)
        self.context = hop * int(math.ceil(context / hop))


def _enhance_segment(enhancer, seg, scale):
    """Whole-segment enhancement at a given level ``scale`` ([1, 1] tensor)."""
    return enhancer(seg, scale=scale)


def _enhance_blocks_noncausal(enhancer, blocks, scale, plan):
    C, L, X = plan.chunk, plan.context, plan.crossfade
    half = X // 2
    ramp = None
    buf, buf_start, total, i = None, 0, 0, 0
    pending = None  # previous chunk's output over [i*C - half, i*C + half)
    exhausted = False
    it = iter(blocks)
    while True:
        # Read until chunk i and its right context are there, or the end.
        need = (i + 1) * C + L
        while not exhausted and total < need:
            try:
                b = next(it)
            except StopIteration:
                exhausted = True
                break
            buf = b if buf is None else torch.cat([buf, b.to(buf.device)])
            total += b.shape[0]
        final = total < need  # only at the end of the stream
        start = 0 if i == 0 else i * C - half  # first output sample of this chunk
        if final and total <= start:
            return
        a = max(0, i * C - L)
        b_end = total if final else need
        y = _enhance_segment(enhancer, buf[a - buf_start : b_end - buf_start], scale)
        stop = total if final else (i + 1) * C - half
        out = y[start - a : stop - a]
        if pending is not None:
            n = min(X, out.shape[0])
            if ramp is None or ramp.device != out.device:
                ramp = (torch.arange(X, device=out.device, dtype=out.dtype) + 0.5) / X
            out = out.clone()
            out[:n] = pending[:n] * (1 - ramp[:n]) + out[:n] * ramp[:n]
        yield out
        if final:
            return
        pending = y[stop - a : stop + X - a] if X else None
        i += 1
        keep_from = max(0, i * C - L)
        buf = buf[keep_from - buf_start :]
        buf_start = keep_from


def _enhance_blocks_causal(enhancer, blocks, scale):
    streamer = FSCEStreamer(enhancer, scale=scale)
    skip = streamer.latency_samples
    for b in blocks:
        out = streamer.process(b)
        if skip:
            cut = min(skip, out.shape[0])
            out, skip = out[cut:], skip - cut
        yield out
    out = streamer.flush()
    yield out[skip:]


def enhance_blocks(
    enhancer, blocks, scale, chunk_seconds=10.0, context_seconds=None, crossfade_seconds=0.25
):
    """Enhances a signal given as a stream of blocks; yields enhanced blocks.

    The output blocks, concatenated, have the input's length. Memory stays
    bounded by one chunk plus its context (non-causal) or one block (causal).

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        In eval mode, on the device of the blocks.
    blocks : iterable of torch.Tensor
        ``[samples]`` pieces of the noisy signal at the model rate.
    scale : float
        Level of the whole signal (the front end's
        :meth:`~speechbrain_fsce.processing.spectral.SpectralFrontEnd.level`).
    chunk_seconds : float
        Non-causal: chunk length; causal: ignored (blocks are streamed).
    context_seconds : float, optional
        Non-causal: context on each side (default: exact).
    crossfade_seconds : float
        Non-causal: cross-fade between chunks.

    Yields
    ------
    torch.Tensor
        Enhanced ``[samples]`` pieces.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> enh = FSCEEnhancer(FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...     num_tcm_modules=1, dilations=(1, 2))).eval()
    >>> x = torch.randn(16000)
    >>> with torch.no_grad():
    ...     parts = list(enhance_blocks(enh, x.split(3000), 1.0, chunk_seconds=0.25))
    >>> sum(len(p) for p in parts)
    16000
    """
    if getattr(enhancer.model, "causal", False) and hasattr(enhancer.model, "init_state"):
        gen = _enhance_blocks_causal(enhancer, blocks, scale)
    else:
        plan = ChunkPlan(enhancer, chunk_seconds, context_seconds, crossfade_seconds)
        scale_t = torch.tensor([[float(scale)]])
        device = next(
            enhancer.parameters(), torch.empty(0)
        ).device  # cpu for a parameter-less (ONNX) network
        gen = _enhance_blocks_noncausal(enhancer, blocks, scale_t.to(device), plan)
    with torch.no_grad():
        yield from gen


def enhance_chunked(
    enhancer, noisy, chunk_seconds=10.0, context_seconds=None, crossfade_seconds=0.25, scale=None
):
    """Enhances a 1-D signal chunk by chunk (bounded activation memory).

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        The enhancer (put in eval mode).
    noisy : torch.Tensor
        ``[samples]`` at the model rate.
    chunk_seconds, context_seconds, crossfade_seconds : float
        See :class:`ChunkPlan` (non-causal models only).
    scale : float, optional
        Level to normalise by; default: the signal's RMS (as the whole-signal
        forward pass uses).

    Returns
    -------
    torch.Tensor
        Enhanced ``[samples]``.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> enh = FSCEEnhancer(FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...     num_tcm_modules=1, dilations=(1, 2)))
    >>> x = torch.randn(20000)
    >>> with torch.no_grad():
    ...     whole = enh.eval()(x)
    >>> chunked = enhance_chunked(enh, x, chunk_seconds=0.3)
    >>> bool((chunked - whole).abs().max() < 1e-4)
    True
    """
    enhancer = enhancer.eval()
    if noisy.dim() != 1:
        raise ValueError(f"enhance_chunked expects a 1-D signal, got shape {tuple(noisy.shape)}")
    if not torch.isfinite(noisy).all():
        raise ValueError("input contains NaN or Inf samples")
    if noisy.shape[0] == 0:
        return noisy.clone()
    if scale is None:
        scale = float(enhancer.front_end.level(noisy.unsqueeze(0)))
    block = enhancer.front_end.sample_rate * 10
    parts = list(
        enhance_blocks(
            enhancer, noisy.split(block), scale, chunk_seconds, context_seconds, crossfade_seconds
        )
    )
    return torch.cat(parts)


def enhance_file_chunked(
    enhancer,
    path,
    output_filename,
    chunk_seconds=10.0,
    context_seconds=None,
    crossfade_seconds=0.25,
    keep_rate=False,
    subtype="FLOAT",
    block_seconds=10.0,
    device=None,
    progress=False,
    overwrite=True,
):
    """Enhances an audio file of any length in constant memory.

    Two passes over the file: the first measures its level (one RMS for the
    whole file, unless the model does not normalise levels), the second
    enhances it block by block and writes the result to a temporary file in
    the output folder, renamed over ``output_filename`` at the end.

    Arguments
    ---------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        The enhancer (put in eval mode).
    path : str
        Input audio file: any rate, channel count and libsndfile format.
    output_filename : str
        Output WAV (mono). Must not be the input file.
    chunk_seconds, context_seconds, crossfade_seconds : float
        See :class:`ChunkPlan`.
    keep_rate : bool
        Write at the input's rate (default: the model's rate).
    subtype : str
        soundfile subtype of the output (``FLOAT`` keeps levels above full
        scale; ``PCM_16`` clips them).
    block_seconds : float
        Seconds read from the file at a time.
    device : str, optional
        Where the blocks go (default: the enhancer's device).
    progress : bool
        Show a progress bar (seconds of input) for this file if it is longer
        than a minute.
    overwrite : bool
        Replace an existing ``output_filename`` (default); False raises
        ``FileExistsError`` and writes nothing.

    Returns
    -------
    dict
        ``input_rate``, ``output_rate``, ``input_samples``, ``output_samples``
        and ``scale``.

    Raises
    ------
    speechbrain_fsce.dataio.audio.AudioError
        (a ``ValueError``) naming the file: missing, unreadable, not audio,
        empty, NaN/Inf samples, or output path equal to the input; a
        ``ValueError`` when the enhanced signal is not finite (nothing is
        written then).

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> enh = FSCEEnhancer(FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...     num_tcm_modules=1, dilations=(1, 2)))
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(str(tmp / "in.wav"), np.random.randn(44100, 2) * 0.1, 44100, subtype="PCM_24")
    >>> info = enhance_file_chunked(enh, str(tmp / "in.wav"), str(tmp / "out.wav"), chunk_seconds=0.5)
    >>> info["output_rate"], info["output_samples"], sf.info(str(tmp / "out.wav")).frames
    (16000, 16000, 16000)
    """
    from tqdm import tqdm

    path, output_filename = str(path), str(output_filename)
    enhancer = enhancer.eval()
    rate = enhancer.front_end.sample_rate
    in_rate, _, in_frames = audio_info(path)
    if os.path.exists(output_filename) and os.path.samefile(output_filename, path):
        raise AudioError(path, "refusing to overwrite the input file")
    if device is None:
        device = next(
            enhancer.parameters(), torch.empty(0)
        ).device  # cpu for a parameter-less (ONNX) network

    if enhancer.front_end.normalize_level:
        scale = float(enhancer.front_end.level(read_blocks(path, rate, block_seconds)))
    else:
        scale = 1.0
    out_rate = in_rate if keep_rate else rate
    expected = in_frames if keep_rate else int(math.ceil(in_frames * rate / in_rate))
    back = StreamingResampler(rate, in_rate) if keep_rate else None

    written = 0
    bar = tqdm(
        total=round(in_frames / in_rate, 1),
        unit="s",
        leave=False,
        disable=not progress or in_frames < 60 * in_rate,
        desc=os.path.basename(path),
    )
    try:
        with (
            atomic_path(output_filename, overwrite=overwrite) as tmp,
            sf.SoundFile(
                tmp, "w", samplerate=out_rate, channels=1, subtype=subtype, format="WAV"
            ) as out,
        ):
            out.comment = ENHANCED_COMMENT  # what --overwrite may replace (is_enhanced_output)

            def write(piece):
                nonlocal written
                piece = piece[: max(0, expected - written)]
                if piece.shape[0]:
                    check_finite_output(piece, output_filename)
                    out.write(piece.detach().cpu().numpy())
                    written += piece.shape[0]

            blocks = (b.to(device) for b in read_blocks(path, rate, block_seconds))
            for piece in enhance_blocks(
                enhancer, blocks, scale, chunk_seconds, context_seconds, crossfade_seconds
            ):
                bar.update(round(piece.shape[0] / rate, 1))
                write(back.push(piece.cpu()) if back is not None else piece)
            if back is not None:
                write(back.flush())
            if written < expected:  # resampling back may come out a sample short
                write(torch.zeros(expected - written))
    finally:
        bar.close()
    return {
        "input_rate": in_rate,
        "output_rate": out_rate,
        "input_samples": in_frames,
        "output_samples": written,
        "scale": scale,
    }
