"""Helpers shared by the corpus builders: Debian packages, signals, licences.

Used by :mod:`tools.corpora.demo_corpus` (the committed demo corpus) and
:mod:`tools.corpora.benchmark_corpus` (the real-speech benchmark corpus):

* Debian packages: which are installed, installing them as root, versions;
* signal helpers: frame energies, silence trimming, levels, resampling to
  16 kHz, coloured noise, looping/cutting to a length, babble, FLAC output;
* noise sources and their licences: OpenTTD's ``opensfx.cat`` container and
  the per-file licences of ``sonic-pi-samples`` (a DEP-5 copyright file).

These are build-time tools: nothing in the installed ``speechbrain_fsce``
package imports them.

Authors
 * speechbrain-fsce developers
"""

import dataclasses
import io
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import soundfile as sf

from speechbrain_fsce.dataio.audio import resample
from speechbrain_fsce.fileio import atomic_write

#: Rate of every file the builders write.
SAMPLE_RATE = 16000

#: Installed locations of the Debian files the noise helpers read.
SONIC_PI_SAMPLES = "/usr/share/sonic-pi/samples"
SONIC_PI_COPYRIGHT = "/usr/share/doc/sonic-pi-samples/copyright"
OPENSFX_CAT = "/usr/share/games/openttd/baseset/opensfx/opensfx.cat"


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
    tools.corpora.common.MissingPackagesError: Missing Debian packages: no-such-package-fsce-test
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
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else "unknown"


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
    buf = io.BytesIO()
    sf.write(buf, signal, sample_rate, format="FLAC", subtype="PCM_16", compression_level=1.0)
    atomic_write(path, buf.getvalue())


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
    offsets = [struct.unpack_from("<I", data, 8 * i)[0] & 0x7FFFFFFF for i in range(count)]
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
