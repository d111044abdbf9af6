"""Robust audio reading, folder scanning and writing: the package's one home.

Data preparation, chunked enhancement, the pretrained interface and the
command line all read, scan and write audio through this module.

Bad input must fail early and clearly, never deep inside a training epoch:

* :func:`load_audio` reads any file libsndfile understands (WAV, NIST-SPHERE,
  FLAC, OGG, ...), mixes channels down to mono, resamples to the target rate
  and raises :class:`AudioError` (a ``ValueError``) naming the file and the
  reason when a file is unreadable, empty or holds non-finite samples.
* :func:`walk_files` is the one folder walk: it follows symbolic links but
  visits every real folder once (no loops, no file counted twice: files are
  de-duplicated by real path, the shortest path wins).
  :func:`find_audio_files` uses it; a missing folder or one without audio
  raises ``FileNotFoundError`` with a helpful message.
* Held-out files stay held out: :func:`exclude_files` drops training files
  that are test files under another name (a symbolic link or a hard link,
  :func:`file_identity`), and :func:`check_separate_folders` refuses two
  folders of different roles that are one folder or lie one inside the
  other (:class:`FolderError`).
* :func:`open_audio`, :func:`audio_info` and :func:`read_blocks` read a file
  piece by piece (constant memory) with the same mix-down and resampling as
  :func:`load_audio`; a WAV whose data chunk is cut short is read with a
  warning.
* :func:`resample` works at any pair of rates in bounded memory: rates with
  a small common factor use torchaudio's polyphase kernel, others (44,101
  Hz...) the same band-limited sinc evaluated per output sample.
* :func:`scan_audio` probes files and skips the unusable ones (unreadable or
  not audio, empty, silent, shorter than one STFT frame) with **one** counted
  summary warning, e.g. ``skipped 3 of 40 noise files: 1 unreadable, 2 silent``.
* :func:`save_wav` writes mono float32 WAV files atomically (through
  :func:`speechbrain_fsce.fileio.atomic_path`) and byte-reproducibly (no
  time-stamped ``PEAK`` chunk, which libsndfile adds to float WAV files);
  :func:`check_finite_output` refuses NaN/Inf samples before anything is
  written.

Authors
 * speechbrain-fsce developers
"""

import dataclasses
import logging
import math
import os
import re
import struct

import numpy as np
import soundfile as sf
import torch
import torchaudio
from tqdm import tqdm

from speechbrain_fsce.fileio import PARTIAL_SUFFIX, atomic_path

logger = logging.getLogger(__name__)

#: File name endings considered audio (compared case-insensitively): what
#: libsndfile reads. TIMIT's NIST-SPHERE files end in ``.WAV``/``.wav``;
#: ``.sph`` is the other usual one; ``.mp3`` needs libsndfile >= 1.1 and
#: ``.opus`` is Ogg Opus (a file libsndfile cannot read is reported, never
#: silently skipped).
AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".sph",
    ".nist",
    ".aiff",
    ".aif",
    ".aifc",
    ".au",
    ".snd",
    ".caf",
    ".w64",
    ".rf64",
)

#: Plausible sampling rates (Hz): a header outside is taken as corrupt (a
#: 1 Hz "recording" of 800 samples would become 13 min of audio at 16 kHz).
SAMPLE_RATE_RANGE = (1000, 1_536_000)

#: Largest torchaudio polyphase kernel (elements) :func:`resample` builds;
#: rate pairs that need more use the per-sample sinc instead.
MAX_KERNEL_ELEMENTS = 1 << 22

#: Output samples computed at once by the per-sample sinc resampler.
RESAMPLE_BLOCK = 8192

#: Samples of one STFT frame (20 ms at 16 kHz): anything shorter cannot be
#: analysed by the front end.
MIN_SAMPLES = 320

#: RMS (full scale = 1.0) below which a file counts as silent (-80 dBFS).
MIN_RMS = 1e-4

#: Containers whose samples are read back exactly as stored (lossless PCM),
#: so a file in one of them can serve as the clean reference in place.
LOSSLESS_FORMATS = ("WAV", "WAVEX", "NIST", "FLAC", "RF64", "W64")


class AudioError(ValueError):
    """A file that cannot be used as audio.

    Arguments
    ---------
    path : str
        The offending file.
    reason : str, optional
        What is wrong with it. Without it, ``path`` is a whole message (as a
        DataLoader worker re-raises it) whose last line is the error.

    Example
    -------
    >>> err = AudioError("x.wav", "empty file")
    >>> str(err)
    'x.wav: empty file'
    >>> isinstance(err, ValueError), err.reason
    (True, 'empty file')
    """

    def __init__(self, path, reason=None):
        if reason is None:
            # Re-raised by a DataLoader worker with one text holding the
            # worker's traceback: keep its last line, "<path>: <reason>".
            lines = str(path).strip().splitlines() or [""]
            path, _, reason = lines[-1].split("AudioError: ", 1)[-1].partition(": ")
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FolderError(ValueError):
    """Folders given for different roles that cannot be used together.

    E.g. the noise folder is the speech folder, or the test speech lies
    inside the training speech. A ``ValueError`` whose message is one line
    naming both options.

    Example
    -------
    >>> isinstance(FolderError("x"), ValueError)
    True
    """


def file_identity(path):
    """What makes two paths the same file: ``(st_dev, st_ino)``, links followed.

    Two names of one file (a symbolic link, a hard link, another spelling
    of the path) have the same identity.

    Arguments
    ---------
    path : str
        Any path.

    Returns
    -------
    tuple or None
        ``(device, inode)``, or None when the path cannot be read.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "a.wav").write_bytes(b"x")
    >>> os.link(tmp / "a.wav", tmp / "b.wav")
    >>> file_identity(tmp / "a.wav") == file_identity(tmp / "b.wav")
    True
    >>> file_identity(tmp / "nope.wav") is None
    True
    """
    try:
        st = os.stat(str(path))
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _inside(path, folder):
    """Whether the real ``path`` is ``folder`` or lies below it."""
    path, folder = os.path.realpath(str(path)), os.path.realpath(str(folder))
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_separate_folders(roles):
    """Refuses folders of different roles that are one folder or nested.

    Arguments
    ---------
    roles : list of (str, str or None)
        ``(option name, folder)`` pairs; None folders are skipped.

    Raises
    ------
    FolderError
        Naming both options and folders.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "speech" / "noise").mkdir(parents=True)
    >>> check_separate_folders([("--clean_folder", tmp / "speech"), ("--noise_folder", None)])
    >>> check_separate_folders([("--clean_folder", tmp / "speech"),
    ...                         ("--noise_folder", tmp / "speech" / "noise")])
    Traceback (most recent call last):
    ...
    speechbrain_fsce.dataio.audio.FolderError: --noise_folder ... lies inside --clean_folder ...
    """
    roles = [(name, str(folder)) for name, folder in roles if folder]
    for i, (name_a, a) in enumerate(roles):
        for name_b, b in roles[i + 1 :]:
            same = _inside(a, b) and _inside(b, a)
            if not same:
                ident_a, ident_b = file_identity(a), file_identity(b)
                same = ident_a is not None and ident_a == ident_b
            if same:
                raise FolderError(
                    f"{name_a} {a} and {name_b} {b} are the same folder: give each its own folder"
                )
            for (inner_name, inner), (outer_name, outer) in (
                ((name_a, a), (name_b, b)),
                ((name_b, b), (name_a, a)),
            ):
                if _inside(inner, outer):
                    raise FolderError(
                        f"{inner_name} {inner} lies inside {outer_name} {outer}: "
                        "its files would be used for both; give each its own folder"
                    )


def read_audio_native(path):
    """Reads a file at its own rate, channels mixed down to mono.

    Arguments
    ---------
    path : str
        Audio file (any format libsndfile reads, NIST-SPHERE included).

    Returns
    -------
    signal : numpy.ndarray
        Float32 mono signal, ``[samples]``, full scale 1.0.
    sample_rate : int
        The file's sampling rate.

    Raises
    ------
    AudioError
        Unreadable or non-audio file, no samples, or NaN/Inf samples.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "stereo.wav")
    >>> sf.write(path, np.full((100, 2), [0.5, 0.1]), 8000)
    >>> x, sr = read_audio_native(path)
    >>> x.shape, sr, round(float(x[0]), 3)
    ((100,), 8000, 0.3)
    """
    path = str(path)
    with open_audio(path) as f:
        sample_rate = f.samplerate
        data = _read_frames(f, path, -1)
    signal = mix_down(data, path)
    return signal, int(sample_rate)


def _truncation(f):
    """``(declared, present)`` data bytes when the header promises more."""
    try:
        info = f.extra_info
    except Exception:  # not every format has it
        return None
    match = re.search(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", info, re.M)
    if match and int(match.group(1)) > int(match.group(2)):
        return int(match.group(1)), int(match.group(2))
    return None


def open_audio(path):
    """Opens an audio file for reading, with clear errors.

    A file whose header promises more data than it holds (a WAV cut short
    by a failed copy or download) is opened with a warning naming the file:
    the samples present are read.

    Arguments
    ---------
    path : str
        Audio file.

    Returns
    -------
    soundfile.SoundFile
        Open for reading (use it as a context manager).

    Raises
    ------
    AudioError
        Missing, unreadable, non-audio or empty file, or a sampling rate
        outside :data:`SAMPLE_RATE_RANGE`.

    Example
    -------
    >>> p = str(getfixture("tmp_path") / "x.wav")
    >>> sf.write(p, np.zeros(800), 8000)
    >>> with open_audio(p) as f:
    ...     f.samplerate, f.frames
    (8000, 800)
    """
    path = str(path)
    if not os.path.isfile(path):
        raise AudioError(path, "no such file")
    try:
        f = sf.SoundFile(path)
    except Exception as err:  # libsndfile raises several types
        raise AudioError(path, f"unreadable or not audio ({err})") from err
    if f.frames == 0:
        f.close()
        raise AudioError(path, "empty file (no samples)")
    low, high = SAMPLE_RATE_RANGE
    if not low <= f.samplerate <= high:
        f.close()
        raise AudioError(
            path,
            f"implausible sampling rate {f.samplerate} Hz in its header (expected {low}..{high}): corrupt file?",
        )
    cut = _truncation(f)
    if cut is not None:
        logger.warning(
            "%s: truncated file: its header declares %d data bytes but only %d "
            "are there; reading the %d samples present",
            path,
            cut[0],
            cut[1],
            f.frames,
        )
    return f


def _read_frames(f, path, frames):
    try:
        return f.read(frames, dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(path, f"unreadable audio data ({err})") from err


def mix_down(data, path="signal"):
    """Averages ``[samples, channels]`` to mono float32, refusing NaN/Inf.

    Arguments
    ---------
    data : numpy.ndarray
        ``[samples, channels]`` float32.
    path : str
        Name for the error message.

    Returns
    -------
    numpy.ndarray
        Contiguous float32 ``[samples]``.

    Example
    -------
    >>> mix_down(np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)).tolist()
    [0.5, 0.5]
    """
    # Averaging keeps the level of identical channels; float64 sum first so
    # that the mean of a mono file is bit-exact.
    if data.shape[1] == 1:
        signal = data[:, 0]
    else:
        signal = data.astype(np.float64).mean(axis=1).astype(np.float32)
    if not np.all(np.isfinite(signal)):
        raise AudioError(path, "contains NaN or Inf samples")
    return np.ascontiguousarray(signal)


def audio_info(path):
    """Sampling rate, channels and samples of an audio file, with clear errors.

    Arguments
    ---------
    path : str
        Audio file, opened with :func:`open_audio`.

    Returns
    -------
    (sample_rate, channels, frames) : tuple of int

    Raises
    ------
    AudioError
        As :func:`open_audio`, for an unusable file.

    Example
    -------
    >>> p = str(getfixture("tmp_path") / "stereo.wav")
    >>> sf.write(p, np.zeros((800, 2)), 8000)
    >>> audio_info(p)
    (8000, 2, 800)
    """
    with open_audio(path) as f:
        return int(f.samplerate), int(f.channels), int(f.frames)


def _sinc_kernel(t, base, orig_rate, width=6):
    """torchaudio's ``sinc_interp_hann`` kernel at times ``t`` (input units)."""
    t = (t * base).clamp(-width, width)
    window = torch.cos(t * math.pi / width / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    return kernel * window * (base / orig_rate)


def _resample_direct(signal, orig_rate, new_rate, block=RESAMPLE_BLOCK):
    """Band-limited sinc, evaluated output by output (bounded memory).

    Same kernel as ``torchaudio.functional.resample`` (Hann-windowed sinc,
    6 zero crossings, roll-off 0.99), so the results agree to float
    rounding; memory is ``block x taps`` whatever the rates.
    """
    n_in = signal.shape[0]
    n_out = math.ceil(n_in * new_rate / orig_rate)
    base = min(orig_rate, new_rate) * 0.99
    half = 6 * orig_rate / base  # kernel half-width in input samples
    taps = int(math.ceil(2 * half)) + 2
    x = signal.double()
    out = torch.empty(n_out, dtype=torch.float64)
    offsets = torch.arange(taps, dtype=torch.float64)
    for k0 in range(0, n_out, block):
        k = torch.arange(k0, min(k0 + block, n_out), dtype=torch.float64)
        first = torch.floor(k * orig_rate / new_rate - half)
        idx = first[:, None] + offsets[None, :]
        kernel = _sinc_kernel(idx / orig_rate - k[:, None] / new_rate, base, orig_rate)
        inside = (idx >= 0) & (idx < n_in)
        values = x[idx.clamp(0, max(n_in - 1, 0)).long()] * inside
        out[k0 : k0 + k.shape[0]] = (values * kernel).sum(dim=1)
    return out.to(signal.dtype)


def resample(signal, orig_rate, new_rate):
    """Resamples a 1-D signal (band-limited sinc, torchaudio's default).

    Any pair of rates works in bounded memory: when the reduced ratio
    ``orig / new`` has small terms (44,100 -> 16,000 is 441 / 160) the
    polyphase kernel of ``torchaudio.functional.resample`` is used; when it
    would be huge (44,101 -> 16,000 needs a 16,000 x 44,135 kernel) the same
    sinc is evaluated per output sample, a block at a time.

    Arguments
    ---------
    signal : numpy.ndarray or torch.Tensor
        ``[samples]`` signal.
    orig_rate : int
        Its rate in Hz.
    new_rate : int
        The wanted rate in Hz.

    Returns
    -------
    torch.Tensor
        Float32 ``[ceil(samples * new_rate / orig_rate)]`` signal (the input
        itself, as a tensor, when the rates agree).

    Example
    -------
    >>> resample(np.zeros(44100, dtype=np.float32), 44100, 16000).shape
    torch.Size([16000])
    >>> x = torch.sin(torch.arange(4410) * 0.01)
    >>> y = resample(x, 44101, 16000)
    >>> y.shape, bool((y[100:-100] - resample(x, 44100, 16000)[100:-100]).abs().max() < 1e-3)
    (torch.Size([1600]), True)
    """
    signal = torch.as_tensor(signal, dtype=torch.float32)
    orig_rate, new_rate = int(orig_rate), int(new_rate)
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sampling rates must be positive, got {orig_rate} -> {new_rate}")
    if orig_rate == new_rate:
        return signal
    g = math.gcd(orig_rate, new_rate)
    o, n = orig_rate // g, new_rate // g
    width = math.ceil(6 * o / (min(o, n) * 0.99))
    if n * (2 * width + o) <= MAX_KERNEL_ELEMENTS:
        return torchaudio.functional.resample(signal, orig_rate, new_rate)
    return _resample_direct(signal, orig_rate, new_rate)


class StreamingResampler:
    """Resamples a signal block by block, exactly as :func:`resample` in one call.

    Each group of ``new / g`` output samples (``g = gcd(orig, new)``) is
    computed from input samples within ``width`` of the group's ``orig / g``
    input samples. Blocks are resampled with enough kept input on both sides
    that every output sample is computed from the same input samples as in a
    single call over the whole signal.

    Arguments
    ---------
    orig_rate : int
        Input rate in Hz.
    new_rate : int
        Output rate in Hz.

    Example
    -------
    >>> x = torch.randn(44100)
    >>> rs = StreamingResampler(44100, 16000)
    >>> y = torch.cat([rs.push(x[i : i + 5000]) for i in range(0, 44100, 5000)] + [rs.flush()])
    >>> ref = torchaudio.functional.resample(x, 44100, 16000)
    >>> y.shape == ref.shape, bool((y - ref).abs().max() < 1e-5)
    (True, True)
    """

    def __init__(self, orig_rate, new_rate):
        self.orig_rate, self.new_rate = int(orig_rate), int(new_rate)
        g = math.gcd(self.orig_rate, self.new_rate)
        self.o, self.n = self.orig_rate // g, self.new_rate // g
        self.identity = self.o == self.n
        # Kernel half-width (lowpass_filter_width=6, rolloff=0.99), in input
        # samples, plus one for the per-sample path's rounding.
        self.width = int(math.ceil(6 * self.o / (min(self.o, self.n) * 0.99))) + 1
        self.reset()

    def reset(self):
        """Starts a new signal."""
        self.buf = torch.zeros(0)
        self.p0 = 0  # input position of buf[0] (a multiple of o)
        self.emit_from = 0  # input position whose outputs come next (multiple of o)
        self.total = 0

    def _resample(self, seg):
        return resample(seg, self.orig_rate, self.new_rate)

    def push(self, x):
        """Adds input samples; returns the output samples that are final.

        Arguments
        ---------
        x : torch.Tensor
            ``[samples]`` float32.

        Returns
        -------
        torch.Tensor
            ``[samples']`` at ``new_rate``.
        """
        x = torch.as_tensor(x, dtype=torch.float32)
        if self.identity:
            self.total += x.shape[0]
            return x
        if self.buf.device != x.device:
            self.buf = self.buf.to(x.device)
        self.buf = torch.cat([self.buf, x])
        self.total += x.shape[0]
        c_end = ((self.total - self.width) // self.o) * self.o
        if c_end <= self.emit_from:
            return x.new_zeros(0)
        y = self._resample(self.buf)
        start = (self.emit_from - self.p0) // self.o * self.n
        end = (c_end - self.p0) // self.o * self.n
        out = y[start:end]
        self.emit_from = c_end
        keep_from = max(0, ((c_end - self.width) // self.o) * self.o)
        self.buf = self.buf[keep_from - self.p0 :]
        self.p0 = keep_from
        return out

    def flush(self):
        """Returns the remaining output (``ceil(total * new / orig)`` in all)."""
        if self.identity or self.total == 0:
            self.reset()
            return torch.zeros(0)
        y = self._resample(self.buf)
        out = y[(self.emit_from - self.p0) // self.o * self.n :]
        self.reset()
        return out


def read_blocks(path, sample_rate=16000, block_seconds=10.0):
    """Yields a file as mono float32 blocks at ``sample_rate``.

    Channels are averaged and the rate converted with
    :class:`StreamingResampler`, so the concatenated blocks equal
    ``load_audio(path, sample_rate)``, in memory bounded by one block.

    Arguments
    ---------
    path : str
        Audio file.
    sample_rate : int
        Wanted rate.
    block_seconds : float
        Seconds of the file read at a time.

    Yields
    ------
    torch.Tensor
        ``[samples]`` blocks (possibly empty).

    Raises
    ------
    AudioError
        Missing, unreadable, non-audio or empty file, or NaN/Inf samples.

    Example
    -------
    >>> p = str(getfixture("tmp_path") / "x.wav")
    >>> sf.write(p, np.random.randn(24000, 2) * 0.1, 48000)
    >>> sum(len(b) for b in read_blocks(p, 16000, block_seconds=0.1))
    8000
    """
    path = str(path)
    with open_audio(path) as f:
        rate = int(f.samplerate)
        resampler = StreamingResampler(rate, sample_rate)
        block = max(1, int(block_seconds * rate))
        while True:
            data = _read_frames(f, path, block)
            if data.shape[0] == 0:
                break
            yield resampler.push(torch.from_numpy(mix_down(data, path)))
        yield resampler.flush()


def load_audio(path, sample_rate=16000):
    """Loads an audio file as a mono float tensor at ``sample_rate``.

    Other rates are resampled and several channels are averaged, so any
    readable file comes back in the form the model expects.

    Arguments
    ---------
    path : str
        Audio file (WAV, NIST-SPHERE, FLAC, OGG, ...).
    sample_rate : int
        Wanted sampling rate in Hz.

    Returns
    -------
    torch.Tensor
        Float32 ``[samples]`` waveform, full scale 1.0.

    Raises
    ------
    AudioError
        For a missing, unreadable, non-audio or empty file (it is a
        ``ValueError``; the message names the file and the reason).

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> path = str(tmp / "stereo44k.wav")
    >>> sf.write(path, np.zeros((44100, 2)), 44100)
    >>> load_audio(path).shape
    torch.Size([16000])
    >>> _ = (tmp / "notes.wav").write("not audio")
    >>> load_audio(str(tmp / "notes.wav"))
    Traceback (most recent call last):
    ...
    speechbrain_fsce.dataio.audio.AudioError: ...notes.wav: unreadable or not audio ...
    """
    signal, native_rate = read_audio_native(path)
    return resample(signal, native_rate, sample_rate).contiguous()


def _wav_float32_bytes(signal, sample_rate, comment=None):
    """Serialises a mono float32 WAV (fmt type 3 + fact chunk), no PEAK;
    ``comment`` goes into a ``LIST``/``INFO``/``ICMT`` chunk after the data."""
    data = np.asarray(signal, dtype="<f4").tobytes()
    n = len(data) // 4
    fmt = struct.pack("<HHIIHH", 3, 1, sample_rate, sample_rate * 4, 4, 32)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<II", 4, n)
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    if comment is not None:
        text = comment.encode("utf-8") + b"\0"
        text += b"\0" * (len(text) % 2)
        info = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text
        body += b"LIST" + struct.pack("<I", len(info)) + info
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav_comment(path):
    """The comment a file carries (WAV ``ICMT``), or None (none, or unreadable).

    Arguments
    ---------
    path : str
        An audio file.

    Returns
    -------
    str or None

    Example
    -------
    >>> path = str(getfixture("tmp_path") / "c.wav")
    >>> save_wav(path, np.zeros(4), 16000, comment="copy of a.wav")
    >>> wav_comment(path), sf.read(path)[0].tolist()
    ('copy of a.wav', [0.0, 0.0, 0.0, 0.0])
    """
    try:
        with sf.SoundFile(str(path)) as f:
            return f.comment or None
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError):
        return None


def check_finite_output(signal, path):
    """Refuses to write a signal holding NaN or Inf samples.

    Arguments
    ---------
    signal : numpy.ndarray or torch.Tensor
        Samples about to be written.
    path : str
        The destination, named in the error.

    Raises
    ------
    ValueError
        Naming ``path`` (nothing has been written).

    Example
    -------
    >>> check_finite_output(np.zeros(3), "out.wav")
    >>> check_finite_output(np.array([1.0, np.inf]), "out.wav")
    Traceback (most recent call last):
    ...
    ValueError: out.wav: the enhanced signal holds NaN or Inf samples (input level too extreme?); nothing written
    """
    if isinstance(signal, torch.Tensor):
        finite = bool(torch.isfinite(signal).all())
    else:
        finite = bool(np.all(np.isfinite(signal)))
    if not finite:
        raise ValueError(
            f"{path}: the enhanced signal holds NaN or Inf samples "
            "(input level too extreme?); nothing written"
        )


def save_wav(path, signal, sample_rate=16000, overwrite=True, comment=None):
    """Writes a mono float32 WAV atomically and reproducibly.

    The file is written under a hidden temporary name and renamed over
    ``path`` (:func:`speechbrain_fsce.fileio.atomic_path`), so a killed run
    never leaves a truncated file under the final name; it gets normal
    permissions (``0o666`` minus the umask). Float32 keeps levels above full
    scale (no clipping) and keeps the exact sample values, so SNRs computed
    from the files match the labels. The bytes depend only on the samples
    and the rate (libsndfile would add a time-stamped ``PEAK`` chunk).

    Arguments
    ---------
    path : str
        Destination ``.wav`` file; parent folders are created.
    signal : numpy.ndarray or torch.Tensor
        ``[samples]`` mono signal (finite: NaN/Inf raise ``ValueError``).
    sample_rate : int
        Sampling rate in Hz.
    overwrite : bool
        Replace an existing file (default); False raises
        ``FileExistsError`` instead.
    comment : str, optional
        Text stored in the file (read back with :func:`wav_comment`), e.g.
        what a resampled copy was made from.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "sub" / "x.wav")
    >>> save_wav(path, np.array([0.5, -1.5, 2.0]), 16000)
    >>> x, sr = sf.read(path, dtype="float32")
    >>> x.tolist(), sr
    ([0.5, -1.5, 2.0], 16000)
    """
    if isinstance(signal, torch.Tensor):
        signal = signal.detach().cpu().numpy()
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ValueError(f"save_wav expects a 1-D signal, got {signal.shape}")
    path = str(path)
    check_finite_output(signal, path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(_wav_float32_bytes(signal, int(sample_rate), comment))


def is_audio_name(name, extensions=AUDIO_EXTENSIONS):
    """Whether a file name ends with one of the audio extensions.

    Arguments
    ---------
    name : str
        File name or path.
    extensions : tuple
        Lower-case endings (with the dot).

    Returns
    -------
    bool

    Example
    -------
    >>> is_audio_name("SI1027.WAV"), is_audio_name("SI1027.PHN")
    (True, False)
    """
    return str(name).lower().endswith(tuple(extensions))


def walk_files(folder, extensions=None, exclude=(), on_error=None):
    """The one folder walk: every file under ``folder``, once, loop-free.

    Symbolic links to folders are followed, but every real folder is visited
    once: a link back up the tree (``current -> .``) or two links pointing
    at each other add nothing and cannot make the walk loop. Files reached
    by several paths (through links) are listed once, under their shortest
    path (real folders are walked before linked ones). Hidden files and
    folders (names starting with ``.``) and unfinished ``.partial`` files
    are ignored.

    Arguments
    ---------
    folder : str
        Folder to walk.
    extensions : tuple, optional
        Keep only names ending with one of these (case-insensitive);
        default: every file.
    exclude : iterable of str
        Folders (any path to them) not to enter, e.g. an output folder.
    on_error : callable, optional
        Called with each ``OSError`` met while listing (default: logged as
        a warning).

    Returns
    -------
    list of str
        Paths (``folder`` joined with the relative path), sorted by their
        path relative to ``folder``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "spk").mkdir()
    >>> sf.write(str(tmp / "spk" / "a.wav"), np.zeros(400), 16000)
    >>> os.symlink(".", tmp / "spk" / "self")
    >>> os.symlink(str(tmp / "spk"), tmp / "link")
    >>> [os.path.relpath(p, tmp) for p in walk_files(str(tmp))]
    ['spk/a.wav']
    """
    folder = os.path.abspath(str(folder))
    skip = {os.path.realpath(str(e)) for e in exclude}
    visited, seen_files, found = set(), set(), []
    linked = []  # folders reached through a symbolic link, walked last

    def report(err):
        if on_error is not None:
            on_error(err)
        else:
            logger.warning("cannot list %s: %s", err.filename, err.strerror)

    def walk(top):
        for root, dirs, files in os.walk(top, onerror=report, followlinks=False):
            real = os.path.realpath(root)
            if real in visited or real in skip:
                dirs[:] = []
                continue
            visited.add(real)
            keep = []
            for d in sorted(dirs):
                if d.startswith("."):
                    continue
                path = os.path.join(root, d)
                (linked if os.path.islink(path) else keep).append(
                    path if os.path.islink(path) else d
                )
            dirs[:] = keep
            for name in sorted(files):
                if name.startswith(".") or name.endswith(PARTIAL_SUFFIX):
                    continue
                if extensions is not None and not is_audio_name(name, extensions):
                    continue
                path = os.path.join(root, name)
                real_file = os.path.realpath(path)
                if real_file not in seen_files:
                    seen_files.add(real_file)
                    found.append(path)

    walk(folder)
    while linked:
        linked.sort(key=lambda p: (p.count(os.sep), p))
        walk(linked.pop(0))
    return sorted(found, key=lambda p: os.path.relpath(p, folder))


def exclude_files(items, others, what="training", other_what="test"):
    """Drops the items whose file is also one of ``others`` (by real path or inode).

    Guards held-out sets: a link inside a training folder that points at
    test or validation files (symbolic, or hard: the same inode,
    :func:`file_identity`) must not put them into training.

    Arguments
    ---------
    items : list
        Paths, or dicts with a ``"path"``, or objects with a ``.path``.
    others : iterable of str
        Paths that ``items`` must not share.
    what, other_what : str
        Names of the two sets, for the warning.

    Returns
    -------
    list
        ``items`` without the shared ones (one warning counts them).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "t.wav").write_bytes(b"")
    >>> os.symlink(tmp / "t.wav", tmp / "link.wav")
    >>> os.link(tmp / "t.wav", tmp / "hard.wav")
    >>> exclude_files([str(tmp / "link.wav"), str(tmp / "hard.wav")], [str(tmp / "t.wav")])
    []
    """
    others = [str(p) for p in others]
    banned = {os.path.realpath(p) for p in others}
    banned_ids = {file_identity(p) for p in others} - {None}

    def path_of(item):
        if isinstance(item, dict):
            return item["path"]
        return getattr(item, "path", item)

    def shared(item):
        path = str(path_of(item))
        return os.path.realpath(path) in banned or file_identity(path) in banned_ids

    kept = [i for i in items if not shared(i)]
    if len(kept) < len(items):
        dropped = next(path_of(i) for i in items if shared(i))
        logger.warning(
            "left out %d %s file(s) that are also %s files (through links; e.g. %s)",
            len(items) - len(kept),
            what,
            other_what,
            dropped,
        )
    return kept


def find_audio_files(folder, extensions=AUDIO_EXTENSIONS, what="audio", exclude=()):
    """Lists the audio files under a folder, recursively and sorted.

    Uses :func:`walk_files`: symbolic links are followed without loops and
    every file is listed once; hidden entries and ``.partial`` files are
    ignored.

    Arguments
    ---------
    folder : str
        Folder to walk.
    extensions : tuple
        File endings considered audio, compared case-insensitively.
    what : str
        What the folder should hold, for error messages ("noise", ...).
    exclude : iterable of str
        Folders not to enter.

    Returns
    -------
    list of str
        Absolute paths, sorted by their path relative to ``folder``.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist or holds no audio file.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> sf.write(str(tmp / "b.flac"), np.zeros(400), 16000)
    >>> sf.write(str(tmp.mkdir("a") / "x.WAV"), np.zeros(400), 16000)
    >>> _ = (tmp / "readme.txt").write("hello")
    >>> [os.path.relpath(p, str(tmp)) for p in find_audio_files(str(tmp))]
    ['a/x.WAV', 'b.flac']
    """
    folder = os.path.abspath(str(folder))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"The {what} folder '{folder}' does not exist (or is not a "
            "folder). Pass the folder that holds the audio files."
        )
    found = walk_files(folder, extensions, exclude=exclude)
    if not found:
        raise FileNotFoundError(
            f"The {what} folder '{folder}' holds no audio file (looked "
            f"recursively for {', '.join(extensions)}, any case)."
        )
    return found


@dataclasses.dataclass
class AudioInfo:
    """What :func:`scan_audio` learned about a usable file.

    Arguments
    ---------
    path : str
        Absolute path of the file.
    sample_rate : int
        Its native rate in Hz.
    channels : int
        Its number of channels.
    frames : int
        Samples per channel at the native rate.
    format : str
        libsndfile container name ("WAV", "NIST", "FLAC", "OGG", ...).
    subtype : str
        libsndfile sample encoding ("PCM_16", "FLOAT", "VORBIS", ...).
    rms : float
        RMS of the mono mix (full scale 1.0).

    Example
    -------
    >>> info = AudioInfo("a.wav", 8000, 1, 8000, "WAV", "PCM_16", 0.1)
    >>> info.frames_at(16000), info.seconds
    (16000, 1.0)
    """

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    rms: float

    @property
    def seconds(self):
        """Duration in seconds."""
        return self.frames / self.sample_rate

    def frames_at(self, sample_rate):
        """Samples after resampling to ``sample_rate`` (as ``resample``)."""
        return math.ceil(self.frames * int(sample_rate) / self.sample_rate)

    def is_reference_ready(self, sample_rate=16000):
        """Whether the file can serve as a clean reference as it is.

        True for lossless mono files at ``sample_rate``: reading them gives
        back exactly the samples that were mixed.
        """
        return (
            self.sample_rate == int(sample_rate)
            and self.channels == 1
            and self.format in LOSSLESS_FORMATS
        )


def probe_audio(path, sample_rate=16000, min_samples=MIN_SAMPLES, min_rms=MIN_RMS):
    """Checks that one file is usable audio and describes it.

    Arguments
    ---------
    path : str
        Audio file.
    sample_rate : int
        Rate at which ``min_samples`` is counted.
    min_samples : int
        Minimum length at ``sample_rate`` (default one 320-sample frame).
    min_rms : float
        Minimum RMS of the mono mix; quieter files count as silent.

    Returns
    -------
    AudioInfo

    Raises
    ------
    AudioError
        With ``reason`` starting with one of "unreadable", "empty",
        "too short", "silent" (or "contains NaN").

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "zeros.wav")
    >>> sf.write(path, np.zeros(16000), 16000)
    >>> probe_audio(path)
    Traceback (most recent call last):
    ...
    speechbrain_fsce.dataio.audio.AudioError: ...zeros.wav: silent (RMS 0 < 0.0001)
    """
    path = os.path.abspath(str(path))
    signal, native_rate = read_audio_native(path)
    with sf.SoundFile(path) as f:
        channels, fmt, subtype = f.channels, f.format, f.subtype
    info = AudioInfo(
        path=path,
        sample_rate=native_rate,
        channels=channels,
        frames=len(signal),
        format=fmt,
        subtype=subtype,
        rms=float(np.sqrt(np.mean(signal.astype(np.float64) ** 2))),
    )
    if info.frames_at(sample_rate) < min_samples:
        raise AudioError(
            path,
            f"too short ({info.frames_at(sample_rate)} samples at "
            f"{sample_rate} Hz < {min_samples}, one STFT frame)",
        )
    if info.rms < min_rms:
        raise AudioError(path, f"silent (RMS {info.rms:.3g} < {min_rms:g})")
    return info


def _reason_kind(reason):
    """Short category of an :class:`AudioError` reason, for the summary."""
    for kind in ("unreadable", "empty", "too short", "silent", "no such file"):
        if reason.startswith(kind):
            return kind
    return "invalid"


def scan_audio(
    files,
    sample_rate=16000,
    min_samples=MIN_SAMPLES,
    min_rms=MIN_RMS,
    what="audio",
    progress=True,
):
    """Probes files, keeps the usable ones, warns once about the rest.

    Unreadable or non-audio files, empty files, silent files (RMS below
    ``min_rms``) and files shorter than ``min_samples`` at ``sample_rate``
    are skipped. A single warning counts them by reason (each skipped file
    is logged at debug level).

    Arguments
    ---------
    files : str or list of str
        A folder (walked with :func:`find_audio_files`) or a list of files.
    sample_rate : int
        Rate at which lengths are checked.
    min_samples : int
        Shortest usable length at ``sample_rate``.
    min_rms : float
        Quietest usable RMS.
    what : str
        What the files are ("noise", "clean speech"), for messages.
    progress : bool
        Show a tqdm bar (when attached to a terminal).

    Returns
    -------
    kept : list of AudioInfo
        The usable files, in input order.
    skipped : dict
        ``{path: reason}`` for the others.

    Raises
    ------
    FileNotFoundError
        As :func:`find_audio_files` for a folder, and when no file is usable.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> sf.write(str(tmp / "ok.wav"), 0.1 * np.ones(800), 16000)
    >>> sf.write(str(tmp / "quiet.wav"), np.zeros(800), 16000)
    >>> kept, skipped = scan_audio(str(tmp), progress=False)
    >>> [os.path.basename(i.path) for i in kept], list(skipped.values())
    (['ok.wav'], ['silent (RMS 0 < 0.0001)'])
    """
    if isinstance(files, (str, os.PathLike)):
        files = find_audio_files(files, what=what)
    kept, skipped = [], {}
    bar = tqdm(files, desc=f"Scanning {what}", disable=not progress or None, leave=False)
    for path in bar:
        try:
            kept.append(probe_audio(path, sample_rate, min_samples, min_rms))
        except AudioError as err:
            skipped[err.path] = err.reason
            logger.debug("Skipping %s: %s", err.path, err.reason)
    if skipped:
        counts = {}
        for reason in skipped.values():
            kind = _reason_kind(reason)
            counts[kind] = counts.get(kind, 0) + 1
        detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        logger.warning(
            "skipped %d of %d %s files: %s (e.g. %s)",
            len(skipped),
            len(files),
            what,
            detail,
            next(iter(skipped)),
        )
    if not kept:
        raise FileNotFoundError(
            f"None of the {len(files)} {what} files is usable audio "
            f"(all were skipped: {sorted(set(skipped.values()))[:3]})."
        )
    return kept, skipped
