"""Robust audio reading, scanning and writing for corpus preparation.

Bad input must fail early and clearly, never deep inside a training epoch:

* :func:`load_audio` reads any file libsndfile understands (WAV, NIST-SPHERE,
  FLAC, OGG, ...), mixes channels down to mono, resamples to the target rate
  and raises :class:`AudioError` (a ``ValueError``) naming the file and the
  reason when a file is unreadable, empty or holds non-finite samples.
* :func:`find_audio_files` walks a folder; a missing folder or one without
  audio raises ``FileNotFoundError`` with a helpful message.
* :func:`scan_audio` probes files and skips the unusable ones (unreadable or
  not audio, empty, silent, shorter than one STFT frame) with **one** counted
  summary warning, e.g. ``skipped 3 of 40 noise files: 1 unreadable, 2 silent``.
* :func:`save_wav` writes mono float32 WAV files atomically (temporary name,
  then ``os.replace``) and byte-reproducibly (no time-stamped ``PEAK`` chunk,
  which libsndfile adds to float WAV files).

Authors
 * speechbrain-fsce developers
"""

import dataclasses
import logging
import math
import os
import struct

import numpy as np
import soundfile as sf
import torch
import torchaudio
from tqdm import tqdm

logger = logging.getLogger(__name__)

#: File name endings considered audio (compared case-insensitively). TIMIT's
#: NIST-SPHERE files end in ``.WAV``/``.wav``; ``.sph`` is the other usual one.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".sph")

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
    reason : str
        What is wrong with it.

    Example
    -------
    >>> err = AudioError("x.wav", "empty file")
    >>> str(err)
    'x.wav: empty file'
    >>> isinstance(err, ValueError), err.reason
    (True, 'empty file')
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


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
    if not os.path.isfile(path):
        raise AudioError(path, "no such file")
    try:
        data, sample_rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types
        raise AudioError(path, f"unreadable or not audio ({err})") from err
    if data.shape[0] == 0:
        raise AudioError(path, "empty file (no samples)")
    # Averaging keeps the level of identical channels; float64 sum first so
    # that the mean of a mono file is bit-exact.
    if data.shape[1] == 1:
        signal = data[:, 0]
    else:
        signal = data.astype(np.float64).mean(axis=1).astype(np.float32)
    if not np.all(np.isfinite(signal)):
        raise AudioError(path, "contains NaN or Inf samples")
    return np.ascontiguousarray(signal), int(sample_rate)


def resample(signal, orig_rate, new_rate):
    """Resamples a 1-D signal (band-limited sinc, torchaudio's default).

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
    """
    signal = torch.as_tensor(signal, dtype=torch.float32)
    if int(orig_rate) == int(new_rate):
        return signal
    return torchaudio.functional.resample(signal, int(orig_rate), int(new_rate))


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


def _wav_float32_bytes(signal, sample_rate):
    """Serialises a mono float32 WAV (fmt type 3 + fact chunk), no PEAK."""
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
    return b"RIFF" + struct.pack("<I", len(body)) + body


def save_wav(path, signal, sample_rate=16000):
    """Writes a mono float32 WAV atomically and reproducibly.

    The file is first written under ``path + ".partial"`` and then renamed
    over ``path`` (``os.replace``), so a killed run never leaves a truncated
    file under the final name. Float32 keeps levels above full scale (no
    clipping) and keeps the exact sample values, so SNRs computed from the
    files match the labels. The bytes depend only on the samples and the
    rate (libsndfile would add a time-stamped ``PEAK`` chunk).

    Arguments
    ---------
    path : str
        Destination ``.wav`` file; parent folders are created.
    signal : numpy.ndarray or torch.Tensor
        ``[samples]`` mono signal.
    sample_rate : int
        Sampling rate in Hz.

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
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(_wav_float32_bytes(signal, int(sample_rate)))
    os.replace(tmp, path)


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


def find_audio_files(folder, extensions=AUDIO_EXTENSIONS, what="audio"):
    """Lists the audio files under a folder, recursively and sorted.

    Hidden files and folders (names starting with ``.``) and unfinished
    ``.partial`` files are ignored.

    Arguments
    ---------
    folder : str
        Folder to walk (symbolic links are followed).
    extensions : tuple
        File endings considered audio, compared case-insensitively.
    what : str
        What the folder should hold, for error messages ("noise", ...).

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
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or name.endswith(".partial"):
                continue
            if is_audio_name(name, extensions):
                found.append(os.path.join(root, name))
    if not found:
        raise FileNotFoundError(
            f"The {what} folder '{folder}' holds no audio file (looked "
            f"recursively for {', '.join(extensions)}, any case)."
        )
    return sorted(found, key=lambda p: os.path.relpath(p, folder))


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
        If the folder is missing or no file is usable.

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
    bar = tqdm(
        files, desc=f"Scanning {what}", disable=not progress or None, leave=False
    )
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
