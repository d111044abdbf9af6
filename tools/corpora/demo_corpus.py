"""Builds the small, licence-clean demo corpus shipped with speechbrain-fsce.

Run ``python -m speechbrain_fsce.dataio.build_demo_corpus`` to regenerate
``speechbrain_fsce/dataio/demo_corpus`` (or ``--output_folder X`` to write
elsewhere). Everything comes from Debian packages and a fixed seed:

* **Speech**: the project's own sentences
  (:data:`speechbrain_fsce.dataio.sentences.SENTENCES`) read by synthetic
  voices (``flite``, ``espeak-ng``, ``festival``) at several pitches and
  rates. Training and test voices are disjoint, and so are their sentences.
  Each utterance is trimmed of leading/trailing silence and set to -26 dBFS.
* **Noise**: CC0 clips only (``sonic-pi-samples``, per-file licences from its
  copyright file; ``openttd-opensfx``, per-clip licences read from the clip
  descriptions inside ``opensfx.cat``), generated white/pink/brown noise and
  babble summed from the corpus' own voices. Training and test noise types
  are disjoint.

Layout written (the demo recipe depends on it)::

    <output_folder>/clean/{train,test}/<voice_id>/<utt_id>.flac
    <output_folder>/noise/{train,test}/<noise_type>_<n>.flac
    <output_folder>/SOURCES.md        origins, licences, regeneration command
    <output_folder>/transcripts.tsv   text of every clean utterance

All audio is 16 kHz mono 16-bit FLAC. The script installs the Debian packages
it needs when run as root with ``apt-get``; otherwise it names the missing
packages and exits with status 2. The synthetic audio depends on the engine
versions, which SOURCES.md records.

The helpers (silence trimming, levels, coloured noise, babble, the Debian
package checks, the ``opensfx.cat`` reader) are shared with
:mod:`speechbrain_fsce.dataio.benchmark_corpus`.

Authors
 * speechbrain-fsce developers
"""

import argparse
import dataclasses
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
import torch

from speechbrain_fsce.dataio.audio import read_audio_native, resample
from speechbrain_fsce.dataio.sentences import SENTENCES

SAMPLE_RATE = 16000

#: Level of every clean utterance (RMS over the trimmed utterance), the
#: usual active speech level; quieter files also compress better.
SPEECH_DBFS = -26.0

#: Level of every noise file. Mixing rescales noise to the wanted SNR, so
#: this only sets headroom and file size.
NOISE_DBFS = -30.0

#: Package folder holding the committed corpus.
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_corpus")

#: Size cap of the committed corpus (bytes, files rounded up to 4 KiB blocks).
MAX_BYTES = 15 * 1024 * 1024

#: Debian packages the demo corpus is built from.
DEMO_PACKAGES = (
    "flite",
    "espeak-ng",
    "festival",
    "festvox-kdlpc16k",
    "festvox-us-slt-hts",
    "sonic-pi-samples",
    "openttd-opensfx",
)

SONIC_PI_SAMPLES = "/usr/share/sonic-pi/samples"
SONIC_PI_COPYRIGHT = "/usr/share/doc/sonic-pi-samples/copyright"
OPENSFX_CAT = "/usr/share/games/openttd/baseset/opensfx/opensfx.cat"

REGENERATE_COMMAND = "python -m speechbrain_fsce.dataio.build_demo_corpus"


# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------


class MissingPackagesError(RuntimeError):
    """Debian packages that are needed but not installed.

    Arguments
    ---------
    packages : list of str
        The missing packages.
    hint : str
        What to do about it.

    Example
    -------
    >>> err = MissingPackagesError(["flite"], "run apt-get install flite")
    >>> err.packages, "flite" in str(err)
    (['flite'], True)
    """

    def __init__(self, packages, hint=""):
        self.packages = list(packages)
        message = "Missing Debian packages: " + " ".join(self.packages)
        if hint:
            message += "\n" + hint
        super().__init__(message)


def missing_packages(packages):
    """Lists the packages that ``dpkg`` does not report as installed.

    Arguments
    ---------
    packages : list of str
        Debian package names.

    Returns
    -------
    list of str
        The packages not installed (all of them when ``dpkg-query`` is
        unavailable, e.g. on a non-Debian system).

    Example
    -------
    >>> missing_packages(["no-such-package-fsce-test"])
    ['no-such-package-fsce-test']
    """
    if shutil.which("dpkg-query") is None:
        return list(packages)
    missing = []
    for pkg in packages:
        res = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", pkg],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0 or res.stdout.strip() != "installed":
            missing.append(pkg)
    return missing


def can_use_apt():
    """Whether this process may install packages (root and ``apt-get``).

    Returns
    -------
    bool

    Example
    -------
    >>> isinstance(can_use_apt(), bool)
    True
    """
    return shutil.which("apt-get") is not None and os.geteuid() == 0


def apt_install(packages):
    """Runs ``apt-get update`` and ``apt-get install`` for ``packages``.

    Arguments
    ---------
    packages : list of str
        Debian packages to install (without recommended ones).
    """
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("Installing Debian packages: " + " ".join(packages), flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
    )


def ensure_packages(packages, install=True):
    """Makes sure Debian packages are installed, installing them if allowed.

    Arguments
    ---------
    packages : list of str
        Debian packages needed.
    install : bool
        Try ``apt-get install`` (only as root with ``apt-get``).

    Raises
    ------
    MissingPackagesError
        When some packages are missing and cannot be installed; the message
        gives the command to run.

    Example
    -------
    >>> ensure_packages(["no-such-package-fsce-test"], install=False)
    Traceback (most recent call last):
    ...
    speechbrain_fsce.dataio.build_demo_corpus.MissingPackagesError: Missing Debian packages: no-such-package-fsce-test
    ...
    """
    missing = missing_packages(packages)
    if missing and install and can_use_apt():
        try:
            apt_install(missing)
        except subprocess.CalledProcessError as err:
            print(f"apt-get failed: {err}", file=sys.stderr)
        missing = missing_packages(packages)
    if missing:
        raise MissingPackagesError(
            missing,
            "Install them as root with:\n  apt-get update && apt-get install -y "
            + " ".join(missing),
        )


def package_version(package):
    """The installed version of a Debian package, or ``"unknown"``.

    Arguments
    ---------
    package : str
        Debian package name.

    Returns
    -------
    str

    Example
    -------
    >>> package_version("no-such-package-fsce-test")
    'unknown'
    """
    if shutil.which("dpkg-query") is None:
        return "unknown"
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return (
        res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else "unknown"
    )


# ---------------------------------------------------------------------------
# Signal helpers
# ---------------------------------------------------------------------------


def frame_energy_db(signal, frame_length):
    """Energy of non-overlapping frames in dB (full scale 1.0 = 0 dB).

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.
    frame_length : int
        Samples per frame; a last partial frame is padded with zeros.

    Returns
    -------
    numpy.ndarray
        ``[frames]`` mean-square energy in dB (floored at -200 dB).

    Example
    -------
    >>> x = np.concatenate([np.zeros(160), 0.1 * np.ones(160)])
    >>> frame_energy_db(x, 160).round(1).tolist()
    [-200.0, -20.0]
    """
    signal = np.asarray(signal, dtype=np.float64)
    n = -(-len(signal) // frame_length)
    padded = np.zeros(n * frame_length)
    padded[: len(signal)] = signal
    power = np.mean(padded.reshape(n, frame_length) ** 2, axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def active_span(signal, sample_rate, threshold_db=-40.0, margin=0.1, frame=0.02):
    """Start and end sample of the part louder than a relative threshold.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.
    sample_rate : int
        Its rate in Hz.
    threshold_db : float
        Frames more than this many dB below the loudest frame are quiet.
    margin : float
        Seconds kept before the first and after the last loud frame.
    frame : float
        Frame length in seconds.

    Returns
    -------
    (int, int)
        ``start, end`` (``end`` exclusive); ``(0, 0)`` for an all-zero signal.

    Example
    -------
    >>> x = np.zeros(16000); x[8000:9600] = 0.5
    >>> active_span(x, 16000, margin=0.05)
    (7200, 10400)
    """
    flen = max(1, round(frame * sample_rate))
    energy = frame_energy_db(signal, flen)
    if energy.max() <= -200.0:
        return 0, 0
    loud = np.flatnonzero(energy > energy.max() + threshold_db)
    pad = round(margin * sample_rate)
    start = max(0, loud[0] * flen - pad)
    end = min(len(signal), (loud[-1] + 1) * flen + pad)
    return int(start), int(end)


def trim_silence(signal, sample_rate, threshold_db=-40.0, margin=0.1):
    """Cuts leading and trailing silence, keeping a short margin.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.
    sample_rate : int
        Its rate in Hz.
    threshold_db : float
        Quiet = more than this many dB below the loudest 20 ms frame.
    margin : float
        Seconds of context kept on each side.

    Returns
    -------
    numpy.ndarray
        The trimmed signal (empty for an all-zero input).

    Example
    -------
    >>> x = np.zeros(32000, dtype=np.float32); x[16000:20000] = 0.3
    >>> len(trim_silence(x, 16000, margin=0.1))  # 20 ms frame resolution
    7360
    """
    start, end = active_span(signal, sample_rate, threshold_db, margin)
    return np.asarray(signal)[start:end]


def rms_dbfs(signal):
    """RMS level in dBFS (full scale 1.0), -inf for silence.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.

    Returns
    -------
    float

    Example
    -------
    >>> round(rms_dbfs(0.1 * np.ones(100)), 2)
    -20.0
    """
    power = float(np.mean(np.asarray(signal, dtype=np.float64) ** 2))
    return float(10.0 * np.log10(power)) if power > 0 else float("-inf")


def set_level(signal, dbfs, peak=0.99):
    """Scales a signal to an RMS level, lowering it if it would clip.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal, not silent.
    dbfs : float
        Wanted RMS level in dBFS.
    peak : float
        Largest allowed absolute sample; wins over ``dbfs``.

    Returns
    -------
    numpy.ndarray
        Float32 scaled signal.

    Example
    -------
    >>> y = set_level(np.sin(np.arange(1000) / 5.0), -26.0)
    >>> round(rms_dbfs(y), 2)
    -26.0
    >>> float(np.abs(set_level(np.r_[1.0, np.zeros(999)], -10.0)).max())
    0.9900000095367432
    """
    signal = np.asarray(signal, dtype=np.float64)
    current = rms_dbfs(signal)
    if not np.isfinite(current):
        raise ValueError("cannot set the level of a silent signal")
    gain = 10.0 ** ((dbfs - current) / 20.0)
    top = np.abs(signal).max() * gain
    if top > peak:
        gain *= peak / top
    return (signal * gain).astype(np.float32)


def to_16k(signal, sample_rate):
    """Resamples a mono signal to 16 kHz as a float32 numpy array.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.
    sample_rate : int
        Its rate in Hz.

    Returns
    -------
    numpy.ndarray

    Example
    -------
    >>> to_16k(np.zeros(22050, dtype=np.float32), 22050).shape
    (16000,)
    """
    return resample(signal, sample_rate, SAMPLE_RATE).numpy().astype(np.float32)


def colored_noise(num_samples, exponent, rng, sample_rate=SAMPLE_RATE, f_min=20.0):
    """Gaussian noise with a power spectrum falling as ``1 / f**exponent``.

    ``exponent`` 0 gives white, 1 pink and 2 brown noise. Frequencies below
    ``f_min`` are set to the level at ``f_min`` (no huge DC drift).

    Arguments
    ---------
    num_samples : int
        Length of the noise.
    exponent : float
        Spectral slope exponent.
    rng : numpy.random.Generator
        Source of randomness (seed it for reproducible noise).
    sample_rate : int
        Rate in Hz, to place ``f_min``.
    f_min : float
        Frequency in Hz below which the spectrum is flat.

    Returns
    -------
    numpy.ndarray
        Float64 ``[num_samples]`` noise with unit RMS.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> pink = colored_noise(64000, 1.0, rng)
    >>> spec = np.abs(np.fft.rfft(pink)) ** 2
    >>> f = np.fft.rfftfreq(64000, 1 / 16000)
    >>> low = spec[(f > 100) & (f < 200)].mean()
    >>> high = spec[(f > 1000) & (f < 2000)].mean()
    >>> bool(7 < low / high < 13)   # one decade apart: 10x the power
    True
    """
    white = rng.standard_normal(num_samples)
    if exponent == 0:
        noise = white
    else:
        spec = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
        spec *= np.maximum(freqs, f_min) ** (-exponent / 2.0)
        noise = np.fft.irfft(spec, n=num_samples)
    noise = noise - noise.mean()
    return noise / np.sqrt(np.mean(noise**2))


def fit_length(signal, num_samples, start=0, fade=160):
    """Cuts or loops a signal to exactly ``num_samples``.

    Longer signals are cut from ``start``; shorter ones are repeated with a
    short cross-fade at each seam so that looping adds no click.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.
    num_samples : int
        Wanted length.
    start : int
        First sample taken when cutting.
    fade : int
        Cross-fade length in samples at each loop seam.

    Returns
    -------
    numpy.ndarray
        ``[num_samples]`` float32 signal.

    Example
    -------
    >>> fit_length(np.arange(10.0), 4, start=3).tolist()
    [3.0, 4.0, 5.0, 6.0]
    >>> len(fit_length(np.ones(1000), 5000, fade=100))
    5000
    """
    signal = np.asarray(signal, dtype=np.float64)
    if len(signal) >= num_samples:
        start = int(min(max(start, 0), len(signal) - num_samples))
        return signal[start : start + num_samples].astype(np.float32)
    fade = int(min(fade, len(signal) // 4))
    out = signal.copy()
    ramp = np.linspace(0.0, 1.0, fade) if fade else np.zeros(0)
    while len(out) < num_samples:
        if fade:
            head = signal[:fade] * ramp + out[-fade:] * (1.0 - ramp)
            out = np.concatenate([out[:-fade], head, signal[fade:]])
        else:
            out = np.concatenate([out, signal])
    return out[:num_samples].astype(np.float32)


def segment_starts(length, num_samples, count):
    """Evenly spread start samples of ``count`` segments within a signal.

    Arguments
    ---------
    length : int
        Signal length.
    num_samples : int
        Segment length.
    count : int
        Number of segments.

    Returns
    -------
    list of int

    Example
    -------
    >>> segment_starts(100, 40, 3)
    [0, 30, 60]
    >>> segment_starts(30, 40, 2)
    [0, 0]
    """
    room = max(0, length - num_samples)
    if count == 1:
        return [0]
    return [round(room * i / (count - 1)) for i in range(count)]


def mix_babble(utterances, num_samples, rng, talkers):
    """Sums several talkers at equal level into babble noise.

    Each talker is one utterance, looped to length and started at a random
    offset, so the voices overlap everywhere.

    Arguments
    ---------
    utterances : list of numpy.ndarray
        Candidate speech signals (at least ``talkers`` of them).
    num_samples : int
        Length of the babble.
    rng : numpy.random.Generator
        Chooses utterances and offsets.
    talkers : int
        Number of overlapping voices.

    Returns
    -------
    (numpy.ndarray, list of int)
        Float32 babble with unit RMS, and the indices of the utterances used.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> utts = [np.sin(np.arange(800) * (k + 1) / 10.0) for k in range(5)]
    >>> babble, used = mix_babble(utts, 4000, rng, talkers=3)
    >>> babble.shape, len(set(used)), round(float(np.sqrt(np.mean(babble**2))), 3)
    ((4000,), 3, 1.0)
    """
    if len(utterances) < talkers:
        raise ValueError(f"need {talkers} utterances for babble, got {len(utterances)}")
    chosen = [int(i) for i in rng.choice(len(utterances), size=talkers, replace=False)]
    total = np.zeros(num_samples)
    for idx in chosen:
        utt = np.asarray(utterances[idx], dtype=np.float64)
        utt = utt / np.sqrt(np.mean(utt**2))
        offset = int(rng.integers(0, len(utt)))
        total += fit_length(np.roll(utt, -offset), num_samples)
    total /= np.sqrt(np.mean(total**2))
    return total.astype(np.float32), chosen


def write_flac(path, signal, sample_rate=SAMPLE_RATE):
    """Writes 16-bit mono FLAC (max compression) atomically.

    Arguments
    ---------
    path : str
        Destination file; parent folders are created.
    signal : numpy.ndarray
        ``[samples]`` float signal in [-1, 1].
    sample_rate : int
        Rate in Hz.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "a" / "x.flac")
    >>> write_flac(path, 0.5 * np.ones(1600))
    >>> info = sf.info(path)
    >>> info.samplerate, info.channels, info.subtype
    (16000, 1, 'PCM_16')
    """
    signal = np.clip(np.asarray(signal, dtype=np.float64), -1.0, 32767.0 / 32768.0)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buf = io.BytesIO()
    sf.write(
        buf, signal, sample_rate, format="FLAC", subtype="PCM_16", compression_level=1.0
    )
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)


def disk_bytes(paths, block=4096):
    """Total size of files rounded up to whole blocks, as ``du`` counts it.

    Arguments
    ---------
    paths : list of str
        Files.
    block : int
        Block size in bytes.

    Returns
    -------
    int

    Example
    -------
    >>> p = getfixture("tmpdir") / "f.bin"
    >>> _ = p.write_binary(b"x" * 5000)
    >>> disk_bytes([str(p)])
    8192
    """
    return sum(-(-os.path.getsize(p) // block) * block for p in paths)


# ---------------------------------------------------------------------------
# Noise sources and their licences
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class OpenSfxClip:
    """One sound of OpenTTD's ``opensfx.cat`` container.

    Arguments
    ---------
    index : int
        Position in the container.
    description : str
        The clip's description (title, origin, licence).
    filename : str
        Its source file name in the OpenSFX tree (``src/wav/osfx_NN.wav``).
    wav : bytes
        The RIFF WAV data.

    Example
    -------
    >>> c = OpenSfxClip(0, '"Cow". Original by X. License: Creative Commons Zero 1.0.', "a.wav", b"")
    >>> c.title, c.licence
    ('Cow', 'Creative Commons Zero 1.0')
    """

    index: int
    description: str
    filename: str
    wav: bytes

    @property
    def title(self):
        """The quoted title at the start of the description."""
        m = re.match(r'\s*"([^"]*)"', self.description)
        return m.group(1) if m else self.description

    @property
    def licence(self):
        """The licence named after ``License:`` in the description."""
        m = re.search(r"License:\s*(.*?)\.(?:\s|$)", self.description)
        return m.group(1).strip() if m else "unknown"

    @property
    def is_cc0(self):
        """Whether the clip itself is dedicated under CC0 1.0."""
        return self.licence in ("Creative Commons Zero 1.0", "CC0 1.0", "CC0")


def parse_opensfx_cat(data):
    """Splits an OpenTTD sound container (``opensfx.cat``) into its clips.

    The container starts with a table of ``(offset, size)`` little-endian
    uint32 pairs (the first offset, high bit masked, is the table size).
    At each offset: one length byte and a NUL-terminated description, then
    ``size`` bytes of RIFF WAV, then (after optional NUL padding) one length
    byte and the NUL-terminated source file name.

    Arguments
    ---------
    data : bytes
        The container's bytes.

    Returns
    -------
    list of OpenSfxClip

    Example
    -------
    >>> def entry(desc, wav, name):
    ...     d, n = desc.encode() + b"\\0", name.encode() + b"\\0"
    ...     return bytes([len(d)]) + d + wav + bytes([len(n)]) + n
    >>> e = entry('"Cow". License: Creative Commons Zero 1.0.', b"RIFFdata\\0", "cow.wav")
    >>> cat = struct.pack("<II", 0x80000008, 8) + e
    >>> clip = parse_opensfx_cat(cat)[0]
    >>> clip.title, clip.filename, clip.wav, clip.is_cc0
    ('Cow', 'cow.wav', b'RIFFdata', True)
    """
    first = struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF
    count = first // 8
    offsets = [
        struct.unpack_from("<I", data, 8 * i)[0] & 0x7FFFFFFF for i in range(count)
    ]
    clips = []
    for i in range(count):
        offset = offsets[i]
        size = struct.unpack_from("<I", data, 8 * i + 4)[0]
        end = offsets[i + 1] if i + 1 < count else len(data)
        desc_len = data[offset]
        desc = data[offset + 1 : offset + 1 + desc_len].split(b"\0")[0]
        start = offset + 1 + desc_len
        wav = data[start : start + size]
        # After the WAV data: padding NUL bytes, then a length byte and the
        # NUL-terminated source file name, up to the next clip.
        tail = data[start + size : end].lstrip(b"\0")
        name = tail[1 : 1 + tail[0]].split(b"\0")[0] if tail else b""
        clips.append(
            OpenSfxClip(
                index=i,
                description=desc.decode("utf-8", "replace"),
                filename=name.decode("utf-8", "replace"),
                wav=wav,
            )
        )
    return clips


def read_opensfx(path=OPENSFX_CAT):
    """Reads all clips of ``opensfx.cat``.

    Arguments
    ---------
    path : str
        The container file.

    Returns
    -------
    list of OpenSfxClip
    """
    with open(path, "rb") as f:
        return parse_opensfx_cat(f.read())


def decode_wav_bytes(wav):
    """Decodes in-memory WAV bytes to a mono float32 signal.

    Arguments
    ---------
    wav : bytes
        A RIFF WAV file's bytes.

    Returns
    -------
    (numpy.ndarray, int)
        ``[samples]`` signal and its rate.

    Example
    -------
    >>> buf = io.BytesIO(); sf.write(buf, np.zeros((10, 2)), 8000, format="WAV")
    >>> x, sr = decode_wav_bytes(buf.getvalue()); x.shape, sr
    ((10,), 8000)
    """
    x, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return x.mean(axis=1).astype(np.float32), int(sr)


def parse_dep5(text):
    """Reads per-file licences from a machine-readable Debian copyright file.

    Arguments
    ---------
    text : str
        Contents of ``/usr/share/doc/<pkg>/copyright`` (DEP-5 format).

    Returns
    -------
    dict
        ``{file pattern: {"license", "copyright", "source"}}`` for each
        pattern of each ``Files:`` paragraph, in file order.

    Example
    -------
    >>> text = ("Files: *\\nLicense: MIT\\n\\n"
    ...         "Files: etc/samples/a.flac\\nCopyright: 2013 Ann\\n"
    ...         "Source: http://x/1\\nLicense: CC0\\n")
    >>> parse_dep5(text)["etc/samples/a.flac"]
    {'license': 'CC0', 'copyright': '2013 Ann', 'source': 'http://x/1'}
    """
    result = {}
    for para in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in para.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m and not line.startswith((" ", "\t")):
                key = m.group(1).lower()
                fields[key] = m.group(2).strip()
            elif key is not None:
                fields[key] = (fields[key] + " " + line.strip()).strip()
        if "files" not in fields or "license" not in fields:
            continue
        licence = fields["license"].split()[0] if fields["license"] else ""
        for pattern in fields["files"].split():
            result[pattern] = {
                "license": licence,
                "copyright": fields.get("copyright", ""),
                "source": fields.get("source", ""),
            }
    return result


def sonic_pi_licences(path=SONIC_PI_COPYRIGHT):
    """Licence of each Sonic Pi sample listed by name in the copyright file.

    Files not listed by name fall under the package-wide ``Files: *`` entry
    and are not returned: only explicitly listed files are known CC0.

    Arguments
    ---------
    path : str
        The package's copyright file.

    Returns
    -------
    dict
        ``{sample file name: {"license", "copyright", "source"}}``.
    """
    with open(path, encoding="utf-8") as f:
        entries = parse_dep5(f.read())
    return {
        os.path.basename(p): v
        for p, v in entries.items()
        if p.startswith("etc/samples/") and "*" not in p
    }


# ---------------------------------------------------------------------------
# Voices
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Voice:
    """A synthetic voice: an engine, a voice and its pitch/rate settings.

    Arguments
    ---------
    voice_id : str
        Folder name of the voice (the speaker label).
    engine : str
        ``"flite"``, ``"espeak-ng"`` or ``"festival"``.
    options : tuple of str
        Engine command-line options selecting voice, pitch and rate.
    description : str
        Human-readable description for SOURCES.md.

    Example
    -------
    >>> v = Voice("flite_slt", "flite", ("-voice", "slt"), "US female")
    >>> v.command("Hello there.", "out.wav")
    ['flite', '-voice', 'slt', '-t', 'Hello there.', '-o', 'out.wav']
    """

    voice_id: str
    engine: str
    options: tuple
    description: str

    def command(self, text, wav_path, text_path=None):
        """The command line that writes ``text`` spoken to ``wav_path``."""
        if self.engine == "flite":
            return ["flite", *self.options, "-t", text, "-o", wav_path]
        if self.engine == "espeak-ng":
            return ["espeak-ng", *self.options, "-w", wav_path, text]
        if self.engine == "festival":
            evals = []
            for expr in self.options:
                evals += ["-eval", expr]
            return ["text2wave", *evals, text_path, "-o", wav_path]
        raise ValueError(f"unknown engine {self.engine}")


def _flite(voice, f0=None, stretch=None):
    opts = ["-voice", voice]
    if f0 is not None:
        opts += ["--setf", f"int_f0_target_mean={f0}"]
    if stretch is not None:
        opts += ["--setf", f"duration_stretch={stretch}"]
    return tuple(opts)


def _espeak(variant, pitch, speed):
    return ("-v", variant, "-p", str(pitch), "-s", str(speed))


#: Training voices. All flite ``slt``/``rms``/``kal16`` variants and the
#: festival HTS ``slt`` voice are here, so no test voice shares a speaker.
TRAIN_VOICES = (
    Voice("flite_slt", "flite", _flite("slt"), "flite slt (US female)"),
    Voice(
        "flite_slt_f215",
        "flite",
        _flite("slt", 215, 0.92),
        "flite slt, mean F0 215 Hz, 8% faster",
    ),
    Voice("flite_rms", "flite", _flite("rms"), "flite rms (US male)"),
    Voice(
        "flite_rms_slow", "flite", _flite("rms", None, 1.15), "flite rms, 15% slower"
    ),
    Voice("flite_kal16", "flite", _flite("kal16"), "flite kal16 (US male, diphone)"),
    Voice(
        "flite_kal16_f135",
        "flite",
        _flite("kal16", 135, 1.05),
        "flite kal16, mean F0 135 Hz, 5% slower",
    ),
    Voice(
        "espeak_enus_m3",
        "espeak-ng",
        _espeak("en-us+m3", 45, 160),
        "espeak-ng en-us, variant m3, pitch 45, 160 wpm",
    ),
    Voice(
        "espeak_engb_f3",
        "espeak-ng",
        _espeak("en-gb+f3", 60, 150),
        "espeak-ng en-gb, variant f3, pitch 60, 150 wpm",
    ),
    Voice(
        "espeak_rp_m1",
        "espeak-ng",
        _espeak("en-gb-x-rp+m1", 35, 170),
        "espeak-ng en-gb-x-rp, variant m1, pitch 35, 170 wpm",
    ),
    Voice(
        "espeak_enus_f2",
        "espeak-ng",
        _espeak("en-us+f2", 70, 145),
        "espeak-ng en-us, variant f2, pitch 70, 145 wpm",
    ),
    Voice(
        "festival_slt_hts",
        "festival",
        ("(voice_cmu_us_slt_arctic_hts)",),
        "festival cmu_us_slt_arctic_hts (US female, HTS)",
    ),
)

#: Test voices: speakers and variants that no training voice uses.
TEST_VOICES = (
    Voice("flite_awb", "flite", _flite("awb"), "flite awb (Scottish English male)"),
    Voice(
        "festival_ked",
        "festival",
        ("(voice_ked_diphone)",),
        "festival ked_diphone (US male, diphone)",
    ),
    Voice(
        "espeak_scot_f4",
        "espeak-ng",
        _espeak("en-gb-scotland+f4", 55, 155),
        "espeak-ng en-gb-scotland, variant f4, pitch 55, 155 wpm",
    ),
    Voice(
        "espeak_carib_m7",
        "espeak-ng",
        _espeak("en-029+m7", 40, 165),
        "espeak-ng en-029 (Caribbean), variant m7, pitch 40, 165 wpm",
    ),
    Voice(
        "espeak_nyc_f5",
        "espeak-ng",
        _espeak("en-us-nyc+f5", 65, 150),
        "espeak-ng en-us-nyc, variant f5, pitch 65, 150 wpm",
    ),
)


def synthesize(voice, text, workdir):
    """Speaks ``text`` with ``voice`` and returns 16 kHz float32 audio.

    Arguments
    ---------
    voice : Voice
        The voice.
    text : str
        The sentence.
    workdir : str
        Folder for temporary files.

    Returns
    -------
    numpy.ndarray
        ``[samples]`` signal at 16 kHz, untrimmed, engine level.
    """
    wav = os.path.join(workdir, "tts.wav")
    txt = os.path.join(workdir, "tts.txt")
    with open(txt, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    subprocess.run(
        voice.command(text, wav, txt),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    signal, sr = read_audio_native(wav)
    os.remove(wav)
    return to_16k(signal, sr)


def split_sentences(sentences=SENTENCES, test_every=5):
    """Splits sentence indices by position: every ``test_every``-th is test.

    Arguments
    ---------
    sentences : sequence of str
        The sentence list.
    test_every : int
        Period of test sentences.

    Returns
    -------
    (list of int, list of int)
        Train and test sentence indices (disjoint).

    Example
    -------
    >>> split_sentences(["s"] * 10, test_every=5)
    ([0, 1, 2, 3, 5, 6, 7, 8], [4, 9])
    """
    test = [i for i in range(len(sentences)) if i % test_every == test_every - 1]
    train = [i for i in range(len(sentences)) if i % test_every != test_every - 1]
    return train, test


# ---------------------------------------------------------------------------
# Noise plan
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClipSource:
    """A CC0 recording turned into one or more noise files.

    Arguments
    ---------
    noise_type : str
        Type name (file prefix); types never span both splits.
    package : str
        ``"sonic-pi-samples"`` or ``"openttd-opensfx"``.
    name : str
        Sample file name (Sonic Pi) or clip title (OpenSFX).
    segments : int
        Number of separate segments cut from it.

    Example
    -------
    >>> ClipSource("hum", "sonic-pi-samples", "ambi_glass_hum.flac").segments
    1
    """

    noise_type: str
    package: str
    name: str
    segments: int = 1


_SP, _OS = "sonic-pi-samples", "openttd-opensfx"

#: Recorded training noise (all CC0, checked again at build time).
TRAIN_CLIPS = (
    ClipSource("hum", _SP, "ambi_glass_hum.flac"),
    ClipSource("hum", _SP, "ambi_haunted_hum.flac"),
    ClipSource("hum", _SP, "ambi_soft_buzz.flac"),
    ClipSource("drone", _SP, "ambi_drone.flac"),
    ClipSource("drone", _SP, "ambi_lunar_land.flac"),
    ClipSource("drone", _SP, "ambi_dark_woosh.flac"),
    ClipSource("vinyl", _SP, "vinyl_hiss.flac", segments=2),
    ClipSource("vinyl", _SP, "vinyl_rewind.flac"),
    ClipSource("drums", _SP, "loop_amen_full.flac"),
    ClipSource("drums", _SP, "loop_compus.flac"),
    ClipSource("drums", _SP, "loop_garzul.flac"),
    ClipSource("drums", _SP, "loop_mika.flac"),
    ClipSource("engine", _OS, "Truck/old bus start, pull away"),
    ClipSource("engine", _OS, "Truck/old bus start, pull away with horn"),
    ClipSource("engine", _OS, "Modern jet take off"),
    ClipSource("engine", _OS, "Toyland: Propeller plane take off"),
    ClipSource("crash", _OS, "Lumber mill: Crashing tree"),
    ClipSource("crash", _OS, "Lumber mill: Falling tree"),
    ClipSource("crash", _OS, "Train/ship breakdown"),
    ClipSource("crash", _OS, "Splat (building docks/canals/river)"),
    ClipSource("bell", _OS, "Level crossing"),
    ClipSource("bell", _SP, "perc_bell.flac"),
    ClipSource("bell", _SP, "elec_chime.flac"),
)

#: Recorded test noise, of types absent from training (all CC0).
TEST_CLIPS = (
    ClipSource("animal", _OS, "Sheep"),
    ClipSource("animal", _OS, "Cow"),
    ClipSource("animal", _OS, "Tropical: Lion roar"),
    ClipSource("animal", _OS, "Tropical: Monkeys"),
    ClipSource("animal", _OS, "Tropical: Bird (1)"),
    ClipSource("animal", _OS, "Tropical: Bird (2)"),
    ClipSource("tabla", _SP, "loop_tabla.flac", segments=2),
    ClipSource("tabla", _SP, "tabla_ghe6.flac"),
)

#: Generated noise: (split, type, spectral exponent, files).
GENERATED_NOISE = (
    ("train", "white", 0.0, 3),
    ("train", "pink", 1.0, 3),
    ("test", "brown", 2.0, 3),
)

#: Babble: (split, type, talkers, files). Training "chatter" sums training
#: voices; test "babble" sums test voices (sentences not in the clean set).
BABBLE_NOISE = (
    ("train", "chatter", 3, 3),
    ("test", "babble", 5, 3),
)

#: Seconds per noise file in each split.
NOISE_SECONDS = {"train": 3.0, "test": 4.0}


def noise_type_of(filename):
    """The noise type of a ``<noise_type>_<n>.flac`` file name.

    Arguments
    ---------
    filename : str
        File name or path.

    Returns
    -------
    str

    Example
    -------
    >>> noise_type_of("noise/test/animal_3.flac")
    'animal'
    """
    stem = os.path.splitext(os.path.basename(filename))[0]
    return stem.rsplit("_", 1)[0]


# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------


def _synthesize_split(voices, sentence_ids, target_seconds, min_s, max_s, workdir, rng):
    """Round-robin over voices until the split holds ``target_seconds``.

    Returns the kept utterances ``[(voice, sentence index, signal)]`` and the
    sentence indices left unused.
    """
    pool = [int(i) for i in rng.permutation(sentence_ids)]
    kept, total, turn, tries = [], 0.0, 0, {}
    while pool and total < target_seconds:
        voice = voices[turn % len(voices)]
        turn += 1
        sid = pool.pop(0)
        raw = synthesize(voice, SENTENCES[sid], workdir)
        speech = trim_silence(raw, SAMPLE_RATE)
        seconds = len(speech) / SAMPLE_RATE
        if not min_s <= seconds <= max_s:
            # Too long or short for this voice: another voice (faster or
            # slower) may fit, so the sentence goes back once.
            tries[sid] = tries.get(sid, 0) + 1
            if tries[sid] < 2:
                pool.append(sid)
            continue
        kept.append((voice, sid, set_level(speech, SPEECH_DBFS)))
        total += seconds
    return kept, pool


def _babble_pool(voices, sentence_ids, count, workdir):
    """Utterances (trimmed, levelled) for babble, cycling through voices."""
    utts = []
    for k, sid in enumerate(sentence_ids[:count]):
        voice = voices[k % len(voices)]
        speech = trim_silence(synthesize(voice, SENTENCES[sid], workdir), SAMPLE_RATE)
        utts.append((voice, sid, set_level(speech, SPEECH_DBFS)))
    return utts


def _load_clip(source, opensfx, sonic_licences):
    """Loads one CC0 source at 16 kHz; returns (signal, origin, licence)."""
    if source.package == _OS:
        matches = [c for c in opensfx if c.title == source.name]
        if len(matches) != 1:
            raise RuntimeError(f"OpenSFX clip '{source.name}' not found exactly once")
        clip = matches[0]
        if not clip.is_cc0:
            raise RuntimeError(
                f"OpenSFX clip '{source.name}' is not CC0: {clip.licence}"
            )
        signal, sr = decode_wav_bytes(clip.wav)
        origin = (
            f"openttd-opensfx {package_version(_OS)}: clip {clip.index} of "
            f"opensfx.cat ({clip.filename}), described as: {clip.description}"
        )
        return to_16k(signal, sr), origin, "CC0-1.0"
    meta = sonic_licences.get(source.name)
    if meta is None or meta["license"] != "CC0":
        raise RuntimeError(f"Sonic Pi sample {source.name} is not listed as CC0")
    signal, sr = read_audio_native(os.path.join(SONIC_PI_SAMPLES, source.name))
    origin = (
        f"sonic-pi-samples {package_version(_SP)}: {SONIC_PI_SAMPLES}/{source.name} "
        f"(Copyright: {meta['copyright']}; Source: {meta['source']})"
    )
    return to_16k(signal, sr), origin, "CC0-1.0"


def build_demo_corpus(
    output_folder=DEFAULT_OUTPUT,
    seed=1234,
    train_seconds=480.0,
    test_seconds=160.0,
    max_bytes=MAX_BYTES,
    install=True,
):
    """Builds the demo corpus into ``output_folder`` (replacing its audio).

    Arguments
    ---------
    output_folder : str
        Destination; its ``clean/``, ``noise/``, ``SOURCES.md`` and
        ``transcripts.tsv`` are replaced, nothing else is touched.
    seed : int
        Seed for sentence order, noise segments and generated noise.
    train_seconds : float
        Training speech to synthesize (stops at the first utterance past it).
    test_seconds : float
        Test speech to synthesize.
    max_bytes : int
        Size cap (4 KiB blocks); exceeding it raises ``RuntimeError``.
    install : bool
        Install missing Debian packages with apt when running as root.

    Returns
    -------
    dict
        Summary: seconds per split, voices, noise types, size in bytes.
    """
    ensure_packages(DEMO_PACKAGES, install=install)
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    output_folder = os.path.abspath(output_folder)
    os.makedirs(output_folder, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=".build_", dir=output_folder)
    workdir = tempfile.mkdtemp(prefix="fsce_tts_")
    try:
        summary = _build_into(stage, workdir, rng, train_seconds, test_seconds)
        for name in ("clean", "noise", "SOURCES.md", "transcripts.tsv"):
            dest = os.path.join(output_folder, name)
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            elif os.path.exists(dest):
                os.remove(dest)
            os.replace(os.path.join(stage, name), dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    files = [
        os.path.join(root, f)
        for root, _, names in os.walk(output_folder)
        for f in names
        if not root.startswith(os.path.join(output_folder, ".build_"))
    ]
    summary["bytes"] = disk_bytes(files)
    if summary["bytes"] > max_bytes:
        raise RuntimeError(
            f"demo corpus is {summary['bytes'] / 2**20:.2f} MiB, over the "
            f"{max_bytes / 2**20:.2f} MiB cap: lower --train_seconds"
        )
    return summary


def _build_into(stage, workdir, rng, train_seconds, test_seconds):
    """Writes corpus files under ``stage``; returns the summary dict."""
    train_ids, test_ids = split_sentences()
    print("Synthesizing test speech ...", flush=True)
    test_utts, test_left = _synthesize_split(
        TEST_VOICES, test_ids, test_seconds, 2.0, 5.0, workdir, rng
    )
    print("Synthesizing training speech ...", flush=True)
    train_utts, train_left = _synthesize_split(
        TRAIN_VOICES, train_ids, train_seconds, 1.5, 8.0, workdir, rng
    )

    transcripts = ["path\tvoice_id\tsentence_index\ttext"]
    voice_rows = []
    seconds = {"train": 0.0, "test": 0.0}
    for split, utts, voices in (
        ("train", train_utts, TRAIN_VOICES),
        ("test", test_utts, TEST_VOICES),
    ):
        for voice in voices:
            mine = [(sid, sig) for v, sid, sig in utts if v is voice]
            dur = sum(len(s) for _, s in mine) / SAMPLE_RATE
            voice_rows.append((split, voice, len(mine), dur))
            seconds[split] += dur
            for sid, sig in mine:
                rel = f"clean/{split}/{voice.voice_id}/{voice.voice_id}_{sid:03d}.flac"
                write_flac(os.path.join(stage, rel), sig)
                transcripts.append(f"{rel}\t{voice.voice_id}\t{sid}\t{SENTENCES[sid]}")

    print("Preparing noise ...", flush=True)
    noise_rows = []  # (split, file, type, origin, licence)
    counters = {}

    def add_noise(split, noise_type, signal, origin, licence):
        n = counters.get((split, noise_type), 0) + 1
        counters[(split, noise_type)] = n
        rel = f"noise/{split}/{noise_type}_{n}.flac"
        write_flac(os.path.join(stage, rel), set_level(signal, NOISE_DBFS))
        noise_rows.append((split, rel, noise_type, origin, licence))

    # Generated coloured noise.
    for split, noise_type, exponent, count in GENERATED_NOISE:
        length = int(NOISE_SECONDS[split] * SAMPLE_RATE)
        for _ in range(count):
            noise = colored_noise(length, exponent, rng)
            add_noise(
                split,
                noise_type,
                noise,
                f"generated: Gaussian noise with 1/f^{exponent:g} power spectrum "
                "(numpy, seeded)",
                "generated for this project",
            )

    # Babble from the corpus' own voices, sentences unused by clean speech.
    pools = {
        "train": (TRAIN_VOICES, train_left),
        "test": (TEST_VOICES, test_left + train_left[len(train_left) // 2 :]),
    }
    for split, noise_type, talkers, count in BABBLE_NOISE:
        voices, left = pools[split]
        utts = _babble_pool(voices, left, talkers * count + 2, workdir)
        length = int(NOISE_SECONDS[split] * SAMPLE_RATE)
        for _ in range(count):
            babble, used = mix_babble([u[2] for u in utts], length, rng, talkers)
            names = ", ".join(f"{utts[i][0].voice_id} #{utts[i][1]}" for i in used)
            add_noise(
                split,
                noise_type,
                babble,
                f"generated: sum of {talkers} {split} voices reading project "
                f"sentences not in the clean set ({names})",
                "generated for this project",
            )

    # CC0 recordings.
    opensfx = read_opensfx()
    sonic_licences = sonic_pi_licences()
    for split, sources in (("train", TRAIN_CLIPS), ("test", TEST_CLIPS)):
        length = int(NOISE_SECONDS[split] * SAMPLE_RATE)
        for source in sources:
            signal, origin, licence = _load_clip(source, opensfx, sonic_licences)
            signal = trim_silence(signal, SAMPLE_RATE, threshold_db=-50.0, margin=0.02)
            for start in segment_starts(len(signal), length, source.segments):
                piece = fit_length(signal, length, start=start)
                where = (
                    f"{start / SAMPLE_RATE:.2f}-{(start + length) / SAMPLE_RATE:.2f} s"
                    if len(signal) >= length
                    else f"looped ({len(signal) / SAMPLE_RATE:.2f} s clip)"
                )
                add_noise(
                    split,
                    source.noise_type,
                    piece,
                    f"{origin}; after trimming silence, {where}",
                    licence,
                )

    with open(os.path.join(stage, "transcripts.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(transcripts) + "\n")
    with open(os.path.join(stage, "SOURCES.md"), "w", encoding="utf-8") as f:
        f.write(_sources_markdown(voice_rows, noise_rows, seconds))

    types = {
        split: sorted({row[2] for row in noise_rows if row[0] == split})
        for split in ("train", "test")
    }
    return {
        "seconds": seconds,
        "utterances": {
            "train": len(train_utts),
            "test": len(test_utts),
        },
        "voices": {
            "train": [v.voice_id for v in TRAIN_VOICES],
            "test": [v.voice_id for v in TEST_VOICES],
        },
        "noise_types": types,
        "noise_files": {
            s: sum(1 for r in noise_rows if r[0] == s) for s in ("train", "test")
        },
    }


def _sources_markdown(voice_rows, noise_rows, seconds):
    """The SOURCES.md text (origins and licences of every file)."""
    versions = {p: package_version(p) for p in DEMO_PACKAGES}
    lines = [
        "# Demo corpus: sources and licences",
        "",
        (
            "Generated by `speechbrain_fsce/dataio/build_demo_corpus.py`. Regenerate "
            "(deterministic, seed 1234; needs the Debian packages below, which it "
            "installs when run as root) with:"
        ),
        "",
        "```",
        REGENERATE_COMMAND,
        "```",
        "",
        (
            "All files are 16 kHz mono 16-bit FLAC. Identical bytes need the same "
            "package versions as listed here."
        ),
        "",
        "| Debian package | version |",
        "|---|---|",
    ]
    lines += [f"| {p} | {v} |" for p, v in versions.items()]
    lines += [
        "",
        "## Speech (`clean/`)",
        "",
        (
            "Synthetic speech only; no recording of a person is included. The "
            "text is the project's own: every sentence was written for "
            "speechbrain-fsce (`speechbrain_fsce/dataio/sentences.py`) and none "
            "is copied from a corpus or prompt list. Test sentences (every fifth "
            "of the list) are never read by a training voice. The output of the "
            "engines is not covered by the engines' own licences; it is "
            "distributed with this project under the project's terms. Each "
            "utterance was trimmed of leading/trailing silence (keeping 0.1 s) "
            f"and set to {SPEECH_DBFS:g} dBFS RMS (peaks kept below 0.99). "
            "Texts per file: `transcripts.tsv`."
        ),
        "",
        (
            f"Training speech: {seconds['train'] / 60:.2f} min; test speech: "
            f"{seconds['test'] / 60:.2f} min. Test voices are disjoint from "
            "training voices (no shared speaker: all flite slt/rms/kal16 variants "
            "and the festival slt voice are training voices)."
        ),
        "",
        "| split | voice_id | engine | options | utterances | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for split, voice, count, dur in voice_rows:
        opts = " ".join(voice.options)
        lines.append(
            f"| {split} | {voice.voice_id} | {voice.engine} "
            f"{versions.get(voice.engine, package_version(voice.engine))} | "
            f"`{opts}` ({voice.description}) | {count} | {dur:.1f} |"
        )
    lines += [
        "",
        "## Noise (`noise/`)",
        "",
        (
            "Only CC0 recordings and generated signals. Licences were checked per "
            "file at build time: Sonic Pi samples against the per-file list in "
            "`/usr/share/doc/sonic-pi-samples/copyright` (files only covered by "
            "its `Files: *` entry are not used); OpenSFX clips against the "
            "licence stated in each clip's own description inside "
            "`opensfx.cat` (clips marked CC-BY or CC-BY-SA are not used). "
            "Generated noise: white, pink (1/f) and brown (1/f^2) Gaussian noise "
            "shaped in the frequency domain (flat below 20 Hz) from a seeded "
            "numpy generator; `chatter` (train) sums 3 training voices, `babble` "
            "(test) sums 5 test voices, each reading project sentences that are "
            "not in the clean set, at equal level with random offsets. Recorded "
            "clips were trimmed of silence, cut or looped (20 ms cross-fade) to "
            f"{NOISE_SECONDS['train']:g} s (train) / {NOISE_SECONDS['test']:g} s "
            f"(test) and set to {NOISE_DBFS:g} dBFS RMS. Training and test noise "
            "types are disjoint."
        ),
        "",
        "| file | type | origin | licence |",
        "|---|---|---|---|",
    ]
    for _, rel, noise_type, origin, licence in noise_rows:
        lines.append(f"| `{rel}` | {noise_type} | {origin} | {licence} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_folder", default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--train_seconds", type=float, default=480.0)
    parser.add_argument("--test_seconds", type=float, default=160.0)
    parser.add_argument(
        "--no_install",
        action="store_true",
        help="never call apt-get; only report missing packages",
    )
    args = parser.parse_args(argv)
    try:
        summary = build_demo_corpus(
            args.output_folder,
            seed=args.seed,
            train_seconds=args.train_seconds,
            test_seconds=args.test_seconds,
            install=not args.no_install,
        )
    except MissingPackagesError as err:
        print(str(err), file=sys.stderr)
        return 2
    for split in ("train", "test"):
        print(
            f"{split}: {summary['seconds'][split] / 60:.2f} min of speech in "
            f"{summary['utterances'][split]} utterances, "
            f"{len(summary['voices'][split])} voices "
            f"({', '.join(summary['voices'][split])}); "
            f"{summary['noise_files'][split]} noise files of types "
            f"{', '.join(summary['noise_types'][split])}"
        )
    print(
        f"total size {summary['bytes'] / 2**20:.2f} MiB (4 KiB blocks) in "
        f"{args.output_folder}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
