"""The noise protocol of FSCE's line of work: one long noise, exact SNRs.

Noise files are resampled to 16 kHz mono and concatenated into one long
signal (:func:`build_noise_wav`). A mixture takes a random segment of it
(:func:`random_segment`, wrapping around when the noise is shorter than the
speech) and scales it by energy ratio so that
``10 log10(sum(clean^2) / sum(noise^2))`` equals the SNR exactly
(:func:`mix_at_snr`).

* Training: :class:`OnTheFlyMixer` draws a fresh integer SNR in [-5, 15] dB
  and a fresh segment every time an utterance is loaded.
* Validation and test: :func:`write_fixed_mixtures` writes fixed, seeded
  mixtures once (float32 WAV, so the SNR of the written files is the label to
  within float32 rounding) and a manifest pointing at them. It is resumable
  and atomic: every file goes through :mod:`speechbrain_fsce.fileio`;
  the manifest is written last, also atomically, and removed before any
  change, so a killed run never leaves a manifest pointing at a missing or
  partial file; re-running with everything present rewrites nothing.

Authors
 * speechbrain-fsce developers
"""

import hashlib
import json
import logging
import os

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from speechbrain_fsce.dataio.audio import (
    find_audio_files,
    load_audio,
    save_wav,
    scan_audio,
)
from speechbrain_fsce.fileio import atomic_write, remove_partials

logger = logging.getLogger(__name__)

#: Segments quieter than this RMS are redrawn (their SNR scaling would blow
#: up digital silence or dither).
MIN_SEGMENT_RMS = 1e-5

#: Clean excerpts quieter than this RMS (-80 dBFS, as a silent file) hold no
#: speech to mix at an SNR: :meth:`OnTheFlyMixer.excerpt` redraws them.
MIN_EXCERPT_RMS = 1e-4

#: Random redraws of a silent excerpt before the loudest excerpt is taken.
EXCERPT_TRIES = 8


def _energy(x):
    return float(np.sum(np.square(np.asarray(x, dtype=np.float64))))


def compute_snr(clean, noise):
    """SNR in dB between a signal and a noise, by energy ratio.

    Arguments
    ---------
    clean : array-like
        ``[samples]`` signal.
    noise : array-like
        ``[samples]`` noise (e.g. ``noisy - clean``).

    Returns
    -------
    float
        ``10 log10(sum(clean^2) / sum(noise^2))``.

    Example
    -------
    >>> round(compute_snr(np.ones(10), 0.1 * np.ones(10)), 6)
    20.0
    """
    return float(10.0 * np.log10(_energy(clean) / _energy(noise)))


def as_snr(snr):
    """An SNR as stored in manifests: an int in dB, or ``inf`` (clean input).

    Example
    -------
    >>> as_snr(5.0), as_snr("inf"), as_snr(float("inf"))
    (5, inf, inf)
    """
    snr = float(snr)
    if np.isnan(snr) or snr == -np.inf:
        raise ValueError(f"not an SNR: {snr}")
    return snr if snr == np.inf else int(round(snr))


def snr_label(snr):
    """``"5"``, ``"-5"`` or ``"clean"`` (an infinite SNR): names and table rows.

    Example
    -------
    >>> snr_label(-5), snr_label(float("inf"))
    ('-5', 'clean')
    """
    snr = as_snr(snr)
    return "clean" if snr == np.inf else str(snr)


def mix_at_snr(clean, noise_segment, snr_db):
    """Adds noise scaled so that the mixture has exactly ``snr_db``.

    The scale is ``sqrt(E_clean / (E_noise * 10^(snr/10)))`` computed in
    float64 over the whole segment; the result is cast back to the input
    type and dtype.

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        ``[samples]`` clean speech.
    noise_segment : numpy.ndarray or torch.Tensor
        ``[samples]`` noise of the same length.
    snr_db : float
        Target SNR in dB.

    Returns
    -------
    noisy : same type as ``clean``
        ``clean + scaled_noise``.
    scaled_noise : same type as ``clean``
        The noise actually added.

    Raises
    ------
    ValueError
        If the lengths differ or either signal has no energy.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> clean, noise = rng.standard_normal(800), rng.standard_normal(800)
    >>> noisy, added = mix_at_snr(clean, noise, 5)
    >>> round(compute_snr(clean, noisy - clean), 6)
    5.0
    >>> noisy, added = mix_at_snr(torch.ones(4), torch.ones(4), 0)
    >>> noisy
    tensor([2., 2., 2., 2.])
    """
    is_torch = isinstance(clean, torch.Tensor)
    if is_torch:
        dtype = clean.dtype
        c = clean.detach().cpu().double().numpy()
        n = torch.as_tensor(noise_segment).detach().cpu().double().numpy()
    else:
        dtype = np.asarray(clean).dtype
        c = np.asarray(clean, dtype=np.float64)
        n = np.asarray(noise_segment, dtype=np.float64)
    if c.shape != n.shape or c.ndim != 1:
        raise ValueError(f"clean {c.shape} and noise {n.shape} must be 1-D of equal length")
    e_clean, e_noise = _energy(c), _energy(n)
    if e_clean <= 0.0 or e_noise <= 0.0:
        raise ValueError(f"cannot mix at an SNR: energy clean={e_clean:g}, noise={e_noise:g}")
    scale = np.sqrt(e_clean / (e_noise * 10.0 ** (float(snr_db) / 10.0)))
    scaled = n * scale
    noisy = c + scaled
    if is_torch:
        return (
            torch.from_numpy(noisy).to(dtype=dtype, device=clean.device),
            torch.from_numpy(scaled).to(dtype=dtype, device=clean.device),
        )
    return noisy.astype(dtype, copy=False), scaled.astype(dtype, copy=False)


def noise_segment(noise, offset, length):
    """The ``length`` samples of ``noise`` starting at ``offset``, wrapping.

    Arguments
    ---------
    noise : numpy.ndarray or torch.Tensor
        ``[N]`` noise signal.
    offset : int
        First sample, ``0 <= offset < N``.
    length : int
        Wanted length; when it runs past the end, the noise restarts at 0.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``[length]`` segment, same type as ``noise``.

    Example
    -------
    >>> noise_segment(np.arange(5), 3, 7).tolist()
    [3, 4, 0, 1, 2, 3, 4]
    """
    n = len(noise)
    if n == 0:
        raise ValueError("the noise signal is empty")
    offset, length = int(offset), int(length)
    if offset + length <= n:
        return noise[offset : offset + length]
    index = (offset + np.arange(length)) % n
    if isinstance(noise, torch.Tensor):
        return noise[torch.from_numpy(index)]
    return noise[index]


def random_segment(noise, length, generator, max_tries=20):
    """Draws a random noise segment of ``length`` samples.

    When the noise is at least as long as the segment, the offset is uniform
    over the positions where the segment fits; otherwise it is uniform over
    the whole noise and the segment wraps around. A segment quieter than
    :data:`MIN_SEGMENT_RMS` (digital silence inside a noise file) is redrawn;
    after ``max_tries`` silent draws, the offset is drawn uniformly among
    the offsets whose segment is loud enough (computed exactly, slower).

    Arguments
    ---------
    noise : numpy.ndarray or torch.Tensor
        ``[N]`` noise signal.
    length : int
        Wanted segment length.
    generator : numpy.random.Generator
        Source of randomness (seeded for reproducibility).
    max_tries : int
        Quick random draws before the exact fallback.

    Returns
    -------
    segment : numpy.ndarray or torch.Tensor
        ``[length]`` samples, same type as ``noise``.
    offset : int
        Where it starts in ``noise``.

    Raises
    ------
    ValueError
        If the noise is empty or no segment of it has energy.

    Example
    -------
    >>> noise = np.arange(1, 101, dtype=np.float32)
    >>> seg, off = random_segment(noise, 10, np.random.default_rng(0))
    >>> len(seg), bool((seg == noise[off : off + 10]).all())
    (10, True)
    >>> seg, off = random_segment(noise, 250, np.random.default_rng(0))
    >>> len(seg), float(seg[100 - off])
    (250, 1.0)
    """
    n, length = len(noise), int(length)
    if n == 0:
        raise ValueError("the noise signal is empty")
    high = n - length + 1 if n >= length else n
    min_energy = MIN_SEGMENT_RMS**2 * max(length, 1)
    for _ in range(max_tries):
        offset = int(generator.integers(0, high))
        segment = noise_segment(noise, offset, length)
        if _energy(segment) >= min_energy:
            return segment, offset
    # Mostly silent noise: energy of every candidate segment at once.
    x = np.asarray(noise.cpu() if isinstance(noise, torch.Tensor) else noise, dtype=np.float64)
    reps = -(-(high - 1 + length) // n)  # ceil: enough copies for wrapping
    cs = np.concatenate([[0.0], np.cumsum(np.tile(x**2, reps))])
    energies = cs[length : length + high] - cs[:high]
    valid = np.flatnonzero(energies >= min_energy)
    if len(valid) == 0:
        raise ValueError("no segment of the noise has any energy")
    offset = int(valid[generator.integers(0, len(valid))])
    return noise_segment(noise, offset, length), offset


class NoiseSource:
    """A concatenated noise wav, loaded once, on first use.

    Arguments
    ---------
    path : str
        Noise file (e.g. ``noise_train.wav``); resampled and mixed to mono
        at ``sample_rate`` if needed.
    sample_rate : int
        Rate of the speech it will be mixed with.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "noise.wav")
    >>> save_wav(path, np.arange(100) / 100.0, 16000)
    >>> source = NoiseSource(path)
    >>> len(source), float(source.segment(98, 3)[2])
    (100, 0.0)
    """

    def __init__(self, path, sample_rate=16000):
        self.path = str(path)
        self.sample_rate = sample_rate
        self._signal = None

    @property
    def signal(self):
        """The whole noise as a float32 numpy array ``[N]``."""
        if self._signal is None:
            self._signal = load_audio(self.path, self.sample_rate).numpy()
        return self._signal

    def __len__(self):
        return len(self.signal)

    def segment(self, offset, length):
        """See :func:`noise_segment`."""
        return noise_segment(self.signal, offset, length)

    def random_segment(self, length, generator):
        """See :func:`random_segment`; returns ``(segment, offset)``."""
        return random_segment(self.signal, length, generator)

    def __getstate__(self):
        # Worker processes reload the file rather than receive a pickled copy.
        state = dict(self.__dict__)
        state["_signal"] = None
        return state


def _fresh_stats():
    return {"excerpts": 0, "redrawn": 0, "loudest": 0, "silent": 0}


class OnTheFlyMixer:
    """Mixes a clean utterance with a random noise segment at a random SNR.

    For training: every call draws an integer SNR uniformly from
    ``[snr_low, snr_high]`` and a random offset into the concatenated noise,
    then mixes by energy ratio (:func:`mix_at_snr`); with probability
    ``clean_share`` it returns the clean signal itself (SNR ``inf``), so
    that the network also learns to leave clean speech alone (a model that
    never sees clean input suppresses its strongest harmonics as if they
    were tonal noise; ``benchmarks/RESULTS.md``, over-suppression). The noise file is loaded
    once, lazily, in each process that uses the mixer, so it can sit inside a
    SpeechBrain dynamic-item pipeline with any number of DataLoader workers::

        mixer = OnTheFlyMixer(save_folder + "/noise_train.wav", seed=1234)

        @sb.utils.data_pipeline.takes("clean_wav")
        @sb.utils.data_pipeline.provides("clean_sig", "noisy_sig", "snr")
        def pipeline(clean_wav):
            clean = load_audio(clean_wav)
            yield clean
            noisy, snr = mixer(clean)
            yield noisy
            yield snr

    Randomness: the draws follow one stream seeded by ``(seed, epoch,
    rank)`` (see :meth:`set_epoch`), plus the worker id inside a DataLoader
    worker; so epochs, processes and workers never repeat each other's
    noise, and a run resumed at epoch k draws exactly what an uninterrupted
    run draws there. ``seed=None`` uses ``torch.initial_seed()`` instead of a
    fixed seed.

    Silence: training files may hold long digital silences, so a random
    excerpt can hold no speech (nothing to mix at an SNR).
    :meth:`excerpt` redraws such excerpts and, after
    :data:`EXCERPT_TRIES` silent draws, takes the file's loudest excerpt;
    a clean signal with no energy at all gets noise at the level it would
    have beside speech at -80 dBFS. :meth:`pop_stats` returns the counts
    (the recipe's Brain reports them per epoch; with DataLoader workers each
    worker counts its own).

    Arguments
    ---------
    noise_wav : str
        The concatenated training noise (``noise_train.wav``).
    snr_low : int
        Lowest SNR in dB (inclusive).
    snr_high : int
        Highest SNR in dB (inclusive).
    seed : int, optional
        Seed of the draws (see above).
    sample_rate : int
        Rate of the clean speech.
    clean_share : float
        Share of calls that return the clean input unmixed (``snr`` is
        ``float("inf")``), in ``[0, 1)``.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "noise.wav")
    >>> save_wav(path, np.random.default_rng(0).standard_normal(8000), 16000)
    >>> clean = torch.sin(torch.arange(16000) * 0.05)
    >>> noisy, snr = OnTheFlyMixer(path, seed=1)(clean)
    >>> noisy.shape, -5 <= snr <= 15
    (torch.Size([16000]), True)
    >>> abs(compute_snr(clean, noisy - clean) - snr) < 1e-3
    True
    >>> bool((OnTheFlyMixer(path, seed=1)(clean)[0] == noisy).all())
    True
    >>> mixer = OnTheFlyMixer(path, seed=1, clean_share=0.5)
    >>> draws = [mixer(clean) for _ in range(40)]
    >>> unmixed = [n for n, s in draws if s == float("inf")]
    >>> 10 < len(unmixed) < 30, all(bool((n == clean).all()) for n in unmixed)
    (True, True)
    """

    def __init__(
        self, noise_wav, snr_low=-5, snr_high=15, seed=None, sample_rate=16000, clean_share=0.0
    ):
        if int(snr_low) > int(snr_high):
            raise ValueError(f"snr_low {snr_low} > snr_high {snr_high}")
        if not 0.0 <= float(clean_share) < 1.0:
            raise ValueError(f"clean_share must be in [0, 1), got {clean_share}")
        self.clean_share = float(clean_share)
        self.noise = NoiseSource(noise_wav, sample_rate)
        self.snr_low = int(snr_low)
        self.snr_high = int(snr_high)
        self.seed = seed
        self.epoch, self.rank = 0, 0
        self._rng = None
        self._rng_owner = None
        self.stats = _fresh_stats()

    def set_epoch(self, epoch, rank=0):
        """Starts the draws of ``epoch`` for process ``rank``.

        The stream is a function of ``(seed, epoch, rank)``: a run resumed at
        epoch k draws what an uninterrupted run draws there, and the
        processes of a multi-process run draw different noise. The recipe's
        Brain calls this at the start of every training epoch.
        """
        self.epoch, self.rank = int(epoch), int(rank)
        self._rng = None

    def _generator(self):
        """The generator for this process / worker / epoch (made lazily)."""
        info = torch.utils.data.get_worker_info()
        owner = (os.getpid(), None if info is None else info.seed)
        if self._rng is None or self._rng_owner != owner:
            base = torch.initial_seed() if self.seed is None else int(self.seed)
            entropy = [base, self.epoch, self.rank]
            if info is not None:
                entropy.append(info.id)
            self._rng = np.random.default_rng(entropy)
            self._rng_owner = owner
        return self._rng

    def excerpt(self, clean, length):
        """A random ``length``-sample excerpt of ``clean`` (all of it if shorter).

        Drawn from the mixer's stream, so it follows the same seeding rules.
        An excerpt quieter than :data:`MIN_EXCERPT_RMS` (a digital silence
        inside a training file) is redrawn, up to :data:`EXCERPT_TRIES`
        times; then the loudest excerpt of the file is taken (the documented
        fallback, found exactly). Redraws and fallbacks are counted in
        :attr:`stats` (see :meth:`pop_stats`). As the draws are a function of
        ``(seed, epoch, rank)``, a resumed run makes the same choices.
        """
        self.stats["excerpts"] += 1
        if length is None or len(clean) <= length:
            return clean
        rng = self._generator()
        high = len(clean) - length + 1
        min_energy = MIN_EXCERPT_RMS**2 * length
        for attempt in range(EXCERPT_TRIES):
            start = int(rng.integers(0, high))
            piece = clean[start : start + length]
            if _energy(piece) >= min_energy:
                self.stats["redrawn"] += attempt
                return piece
        self.stats["redrawn"] += EXCERPT_TRIES - 1
        self.stats["loudest"] += 1
        x = np.asarray(
            clean.detach().cpu() if isinstance(clean, torch.Tensor) else clean, dtype=np.float64
        )
        cs = np.concatenate([[0.0], np.cumsum(x**2)])
        start = int(np.argmax(cs[length:] - cs[:high]))
        return clean[start : start + length]

    def pop_stats(self):
        """Returns this process's counts since the last call and resets them.

        Returns
        -------
        dict
            ``excerpts`` (excerpts taken), ``redrawn`` (silent draws
            replaced), ``loudest`` (excerpts for which every draw was silent,
            replaced by the loudest one) and ``silent`` (mixtures of an
            all-silent clean signal, see :meth:`__call__`).
        """
        stats, self.stats = self.stats, _fresh_stats()
        return stats

    def draw(self, length):
        """Draws ``(snr, offset)`` for a clean signal of ``length`` samples
        (``snr`` is ``inf`` for an unmixed draw, see ``clean_share``)."""
        rng = self._generator()
        snr = int(rng.integers(self.snr_low, self.snr_high + 1))
        _, offset = self.noise.random_segment(length, rng)
        if self.clean_share and rng.random() < self.clean_share:
            snr = float("inf")
        return snr, offset

    def __call__(self, clean):
        """Mixes ``clean`` (``[samples]`` tensor); returns ``(noisy, snr)``."""
        if not isinstance(clean, torch.Tensor) or clean.dim() != 1:
            raise ValueError("OnTheFlyMixer expects a 1-D torch tensor")
        snr, offset = self.draw(len(clean))
        if snr == float("inf"):
            return clean.clone(), snr
        raw = np.asarray(self.noise.segment(offset, len(clean)))
        segment = torch.from_numpy(raw)
        if _energy(clean.detach().cpu().numpy()) <= 0.0:
            # No speech energy at all (a silent file that was not prepared):
            # noise at the level it would have beside speech at -80 dBFS.
            self.stats["silent"] += 1
            noise_rms = max(np.sqrt(_energy(raw) / max(len(raw), 1)), 1e-12)
            scale = MIN_EXCERPT_RMS * 10.0 ** (-snr / 20.0) / noise_rms
            return clean + (segment * scale).to(clean.dtype), snr
        noisy, _ = mix_at_snr(clean, segment, snr)
        return noisy, snr


def _file_signature(paths):
    """(path, size, mtime) of each file: detects a changed set of inputs."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    return out


def write_json_atomic(path, data):
    """Writes JSON atomically (:func:`speechbrain_fsce.fileio.atomic_write`).

    Nothing is written when the file already holds exactly these bytes, so
    an unchanged manifest keeps its modification time.

    Arguments
    ---------
    path : str
        Destination.
    data : object
        JSON-serialisable content.

    Returns
    -------
    bool
        Whether the file was (re)written.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "a.json")
    >>> write_json_atomic(path, {"x": 1}), write_json_atomic(path, {"x": 1})
    (True, False)
    """
    text = json.dumps(data, indent=2) + "\n"
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    atomic_write(path, text)
    return True


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def build_noise_wav(folders, out_wav, sample_rate=16000, progress=True):
    """Concatenates every noise file of the folders into one wav.

    Files are taken in sorted order of their path inside each folder, folder
    after folder, resampled to ``sample_rate`` and mixed to mono, with their
    levels unchanged (segments are scaled per mixture anyway). Unusable files
    are skipped with one summary warning (see :func:`scan_audio`). Beside
    the wav, ``<out_wav minus .wav>.sources.json`` records where each source
    file starts and how long it is (to tell which noise a mixture's
    ``noise_offset`` falls in) and the inputs' sizes and times: when they
    are unchanged and the wav exists, nothing is rewritten.

    Arguments
    ---------
    folders : list of str
        Noise folders, walked recursively.
    out_wav : str
        The float32 wav to write.
    sample_rate : int
        Rate of the wav (every file is resampled to it).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The sources record: ``{"sample_rate", "samples", "inputs", "files":
        [{"path", "start", "length"}]}``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> noise_dir = tmp.mkdir("noise")
    >>> sf.write(str(noise_dir / "a.wav"), np.ones(8000) * 0.1, 8000)
    >>> sf.write(str(noise_dir / "b.flac"), np.ones(500) * 0.2, 16000)
    >>> rec = build_noise_wav([str(noise_dir)], str(tmp / "n.wav"), progress=False)
    >>> rec["samples"], [f["start"] for f in rec["files"]]
    (16500, [0, 16000])
    """
    out_wav = str(out_wav)
    sources_path = os.path.splitext(out_wav)[0] + ".sources.json"
    files = []
    for folder in folders:
        files.extend(find_audio_files(folder, what="noise"))
    inputs = _file_signature(files)
    previous = _read_json(sources_path)
    if (
        previous is not None
        and previous.get("inputs") == inputs
        and previous.get("sample_rate") == sample_rate
        and os.path.isfile(out_wav)
        and sf.info(out_wav).frames == previous.get("samples")
    ):
        logger.info("%s is up to date, not rewritten", out_wav)
        return previous

    kept, _ = scan_audio(files, sample_rate, what="noise", progress=progress)
    pieces, record, start = [], [], 0
    for info in tqdm(kept, desc="Concatenating noise", disable=not progress or None, leave=False):
        x = load_audio(info.path, sample_rate).numpy()
        pieces.append(x)
        record.append({"path": info.path, "start": start, "length": len(x)})
        start += len(x)
    noise = np.concatenate(pieces)
    save_wav(out_wav, noise, sample_rate)
    sources = {
        "sample_rate": sample_rate,
        "samples": len(noise),
        "seconds": len(noise) / sample_rate,
        "files": record,
        "inputs": inputs,
    }
    write_json_atomic(sources_path, sources)
    logger.info("Wrote %s: %d noise files, %.1f s", out_wav, len(kept), len(noise) / sample_rate)
    return sources


def _sha256(path, chunk=1 << 22):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _escape(text):
    """Doubles braces so that ``str.format_map`` leaves them alone."""
    return text.replace("{", "{{").replace("}", "}}")


def _template_relpath(path, root):
    """``path`` relative to ``root`` with ``{`` / ``}`` escaped for format_map."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if rel.startswith(".."):
        raise ValueError(f"'{path}' is not inside '{root}'")
    return _escape(rel.replace(os.sep, "/"))


def write_fixed_mixtures(
    utterances,
    noise_wav,
    out_folder,
    manifest_path,
    replacements,
    snrs=None,
    snr_range=(-5, 15),
    seed=1234,
    sample_rate=16000,
    progress=True,
):
    """Writes seeded fixed mixtures and their manifest, resumably.

    With ``snrs`` given (test), every utterance is mixed at every SNR; with
    ``snrs=None`` (validation), each utterance gets one mixture at an integer
    SNR drawn uniformly from ``snr_range``. Noise offsets are drawn with
    :func:`random_segment`. All draws come from one generator seeded with
    ``seed``, in sorted utterance order, so the same inputs and seed give the
    same mixtures, byte for byte.

    Files: ``<out_folder>/<mix_id>.wav`` (float32 mono WAV, not clipped nor
    rescaled: ``noisy = clean + scaled noise`` holds against the clean file as
    read) with ``mix_id = <utt_id>_snr<snr>``; ``<out_folder>/.plan.json``
    fingerprints the plan (draws, clean file sizes, noise hash). Manifest
    entries: ``{"noisy_wav", "clean_wav", "length", "snr", "clean_id",
    "noise_source", "noise_offset"}`` with ``noisy_wav`` written as
    ``{mix_root}/<path of the file relative to mix_root>``.

    Resuming: wavs already present are kept when the plan is unchanged; a
    different plan (other seed, inputs, noise) first removes the manifest,
    then the previous plan's wavs. The manifest is written last and only if
    its content changed; nothing at all is rewritten when everything is in
    place.

    Arguments
    ---------
    utterances : dict
        ``{utt_id: clean_wav}`` where ``clean_wav`` is the manifest string
        (e.g. ``"{data_root}/TEST/DR1/FAKS0/SI943.WAV"``); it must resolve
        (via ``replacements``) to a mono file at ``sample_rate``.
    noise_wav : str
        The concatenated noise to draw from (``noise_train.wav`` or
        ``noise_test.wav``); its file name goes in ``noise_source``.
    out_folder : str
        Where the mixtures go; must be inside ``replacements["mix_root"]``.
    manifest_path : str
        The JSON manifest to write.
    replacements : dict
        ``{"data_root": ..., "mix_root": ...}``, as the recipe passes them to
        ``DynamicItemDataset.from_json``.
    snrs : list of int, optional
        Fixed SNRs (test); ``float("inf")`` is the clean input itself
        (``mix_id`` suffix ``snrclean``, ``"snr": Infinity`` in the JSON).
        ``None``: one random SNR per utterance.
    snr_range : tuple
        ``(low, high)`` inclusive, used when ``snrs`` is None.
    seed : int
        Seed of the SNR and offset draws.
    sample_rate : int
        Sampling rate of speech, noise and mixtures.
    progress : bool
        Show a tqdm bar while writing.

    Returns
    -------
    dict
        The manifest content.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> rng = np.random.default_rng(0)
    >>> save_wav(str(tmp / "clean.wav"), 0.1 * rng.standard_normal(4000))
    >>> save_wav(str(tmp / "noise.wav"), rng.standard_normal(3000))
    >>> roots = {"data_root": str(tmp), "mix_root": str(tmp)}
    >>> manifest = write_fixed_mixtures(
    ...     {"u1": "{data_root}/clean.wav"}, str(tmp / "noise.wav"),
    ...     str(tmp / "mixtures" / "test"), str(tmp / "test.json"), roots,
    ...     snrs=[0, 5], progress=False)
    >>> sorted(manifest), manifest["u1_snr5"]["noisy_wav"]
    (['u1_snr0', 'u1_snr5'], '{mix_root}/mixtures/test/u1_snr5.wav')
    >>> noisy, _ = sf.read(str(tmp / "mixtures" / "test" / "u1_snr5.wav"))
    >>> clean, _ = sf.read(str(tmp / "clean.wav"))
    >>> round(compute_snr(clean, noisy - clean), 3)
    5.0
    """
    out_folder = os.path.abspath(str(out_folder))
    manifest_path = str(manifest_path)
    mix_root = replacements["mix_root"]
    rel_out = _template_relpath(out_folder, mix_root)
    noise_name = os.path.basename(str(noise_wav))
    if snrs is None:
        low, high = int(snr_range[0]), int(snr_range[1])
        if low > high:
            raise ValueError(f"empty SNR range {snr_range}")

    source = NoiseSource(noise_wav, sample_rate)
    if sf.info(str(noise_wav)).samplerate != sample_rate:
        raise ValueError(f"{noise_wav} is not at {sample_rate} Hz")
    rng = np.random.default_rng(seed)
    plan = []
    for utt_id in sorted(utterances):
        clean_wav = utterances[utt_id]
        clean_path = clean_wav.format_map(replacements)
        info = sf.info(clean_path)
        if info.samplerate != sample_rate or info.channels != 1:
            raise ValueError(
                f"clean reference {clean_path} must be mono at {sample_rate} Hz "
                f"(is {info.channels} ch, {info.samplerate} Hz)"
            )
        utt_snrs = list(snrs) if snrs is not None else [int(rng.integers(low, high + 1))]
        for snr in utt_snrs:
            _, offset = source.random_segment(info.frames, rng)
            snr = as_snr(snr)
            mix_id = f"{utt_id}_snr{snr_label(snr)}"
            plan.append(
                {
                    "mix_id": mix_id,
                    "clean_id": utt_id,
                    "clean_wav": clean_wav,
                    "clean_size": os.path.getsize(clean_path),
                    "frames": int(info.frames),
                    "snr": snr,
                    "noise_offset": int(offset),
                }
            )
    if len({p["mix_id"] for p in plan}) != len(plan):
        raise ValueError("duplicate mixture ids (duplicate SNRs?)")
    fingerprint = {
        "noise_source": noise_name,
        "noise_sha256": _sha256(str(noise_wav)),
        "sample_rate": sample_rate,
        "seed": seed,
        "mixtures": plan,
    }
    # Compare as stored: JSON turns tuples (e.g. a seed pair) into lists.
    fingerprint = json.loads(json.dumps(fingerprint))

    manifest = {}
    for p in plan:
        manifest[p["mix_id"]] = {
            "noisy_wav": "{mix_root}/" + f"{rel_out}/{_escape(p['mix_id'])}.wav",
            "clean_wav": p["clean_wav"],
            "length": p["frames"] / sample_rate,
            "snr": p["snr"],
            "clean_id": p["clean_id"],
            "noise_source": noise_name,
            "noise_offset": p["noise_offset"],
        }

    def wav_path(p):
        return os.path.join(out_folder, p["mix_id"] + ".wav")

    plan_path = os.path.join(out_folder, ".plan.json")
    previous = _read_json(plan_path)
    same_plan = previous == fingerprint
    missing = [p for p in plan if not os.path.isfile(wav_path(p))]
    # Before touching any wav: no manifest may point at them meanwhile.
    if (not same_plan or missing) and os.path.isfile(manifest_path):
        os.remove(manifest_path)
    if not same_plan:
        if previous is not None:
            for old in previous.get("mixtures", []):
                old_path = os.path.join(out_folder, old["mix_id"] + ".wav")
                if os.path.isfile(old_path):
                    os.remove(old_path)
        os.makedirs(out_folder, exist_ok=True)
        write_json_atomic(plan_path, fingerprint)
        todo = plan  # files of unknown provenance are overwritten
    else:
        todo = missing
    remove_partials(out_folder)  # left by a killed run

    if todo:
        bar = tqdm(
            todo,
            desc=f"Mixing {os.path.basename(out_folder)}",
            disable=not progress or None,
        )
        cache_id, clean = None, None
        for p in bar:
            if p["clean_id"] != cache_id:  # test mixes each clean 4 times
                clean = load_audio(p["clean_wav"].format_map(replacements), sample_rate)
                clean = clean.numpy().astype(np.float64)
                cache_id = p["clean_id"]
            segment = source.segment(p["noise_offset"], p["frames"])
            noisy, _ = mix_at_snr(clean, segment, p["snr"])
            save_wav(wav_path(p), noisy.astype(np.float32), sample_rate)
        logger.info("Wrote %d mixtures under %s", len(todo), out_folder)
    write_json_atomic(manifest_path, manifest)
    return manifest
