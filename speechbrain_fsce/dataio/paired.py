"""Paired corpora: fixed noisy/clean file pairs such as VoiceBank-DEMAND.

:func:`prepare_paired` matches a folder of noisy files with a folder of
clean ones by file name, checks every pair (same sampling rate, same
length), holds out validation speakers, resamples to 16 kHz when needed
(copies written once through :func:`~speechbrain_fsce.dataio.audio.load_audio`'s
resampler and :func:`~speechbrain_fsce.dataio.audio.save_wav`) and writes
SpeechBrain JSON manifests keyed by utterance id::

    {"p226_001": {"noisy_wav": "{data_root}/noisy_trainset_28spk_wav/p226_001.wav",
                  "clean_wav": "{data_root}/clean_trainset_28spk_wav/p226_001.wav",
                  "length": 2.43, "snr": 12, "speaker": "p226"}}

Files used in place are written relative to ``{data_root}``; resampled
copies relative to ``{resampled_root}`` (``<folder name>_16k/...`` inside
it, SpeechBrain's naming). Load a manifest with::

    sb.dataio.dataset.DynamicItemDataset.from_json(
        path, replacements={"data_root": data_root, "resampled_root": resampled_root})

``snr`` is the measured energy ratio of clean speech to ``noisy - clean``,
rounded to whole dB (the test tables are grouped by it; 0 when either is
digitally silent).

Training takes random excerpts of the *same* span of noisy and clean
(:class:`PairedExcerpts`), drawn per utterance, epoch and seed.

Refused, with one line naming the files or folders: a noisy folder that is
its clean folder (or a pair whose noisy file is its clean file, or holds
exactly the same samples: no noise to learn), training and test folders
that are one folder or nested, and a training file that is a test file
under another name (a symbolic or hard link). A resampled copy records
what it was made from (a hash of the source's samples): after an original
is replaced, its copy is made again, never re-used; a copy that this
preparation did not make (e.g. SpeechBrain's own ``_16k`` folders) is used
only if it holds the same audio, and never replaced.

Authors
 * speechbrain-fsce developers
"""

import hashlib
import logging
import os
import re
import zlib

import numpy as np
import torch
from tqdm import tqdm

from speechbrain_fsce.dataio.audio import (
    LOSSLESS_FORMATS,
    AudioError,
    FolderError,
    check_separate_folders,
    file_identity,
    find_audio_files,
    load_audio,
    open_audio,
    read_audio_native,
    resample,
    save_wav,
    wav_comment,
)
from speechbrain_fsce.dataio.mixing import compute_snr, write_json_atomic
from speechbrain_fsce.fileio import remove_partials

logger = logging.getLogger(__name__)

#: Speaker id at the start of a file name (VoiceBank: ``p226_001.wav``).
SPEAKER_PATTERN = r"^([^_]+)_"

#: SpeechBrain's VoiceBank validation speakers (the first two of its list).
VOICEBANK_VALID_SPEAKERS = ("p226", "p287")

#: Start of the comment of a resampled copy made here (:func:`copy_key`).
COPY_PREFIX = "speechbrain-fsce resampled copy"

#: Least SNR (dB) of a copy made elsewhere against this resampler's
#: version of its source for it to be used as that source's copy.
FOREIGN_COPY_SNR = 20.0


def speaker_of(name, pattern=SPEAKER_PATTERN):
    """The speaker id in a file name (the whole stem when it does not match).

    Arguments
    ---------
    name : str
        File name or path.
    pattern : str
        Regular expression whose first group is the speaker id.

    Returns
    -------
    str

    Example
    -------
    >>> speaker_of("noisy/p226_001.wav"), speaker_of("single.wav")
    ('p226', 'single')
    """
    stem = os.path.splitext(os.path.basename(str(name)))[0]
    found = re.match(pattern, stem)
    return found.group(1) if found else stem


def _by_key(folder, what):
    """``{relative path without extension: absolute path}`` of a folder."""
    files = find_audio_files(folder, what=what)
    out = {}
    for path in files:
        key = os.path.splitext(os.path.relpath(path, folder))[0].replace(os.sep, "/")
        if key in out:
            raise ValueError(f"{what} folder {folder}: two files for {key!r} ({out[key]}, {path})")
        out[key] = path
    return out


def match_pairs(noisy_folder, clean_folder):
    """Pairs the files of two folders by name (relative path, any extension).

    Arguments
    ---------
    noisy_folder : str
        Folder of noisy files.
    clean_folder : str
        Folder of the clean references, same names.

    Returns
    -------
    list of (str, str, str)
        ``(key, noisy_path, clean_path)`` sorted by key.

    Raises
    ------
    ValueError
        When a file has no partner; the message lists the unmatched files
        of each folder (the first ten, and how many in all).

    Example
    -------
    >>> import soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> for folder in ("noisy", "clean"):
    ...     (tmp / folder).mkdir()
    ...     sf.write(str(tmp / folder / "p1_001.wav"), np.zeros(400), 16000)
    >>> [key for key, _, _ in match_pairs(str(tmp / "noisy"), str(tmp / "clean"))]
    ['p1_001']
    """
    noisy = _by_key(noisy_folder, "noisy")
    clean = _by_key(clean_folder, "clean")
    problems = []
    for what, mine, other, folder in (
        ("noisy", noisy, clean, clean_folder),
        ("clean", clean, noisy, noisy_folder),
    ):
        alone = sorted(set(mine) - set(other))
        if alone:
            shown = ", ".join(os.path.basename(mine[k]) for k in alone[:10])
            more = f" (and {len(alone) - 10} more)" if len(alone) > 10 else ""
            problems.append(
                f"{len(alone)} {what} file(s) without a partner in {folder}: {shown}{more}"
            )
    if problems:
        raise ValueError("Unmatched files: " + "; ".join(problems))
    return [(key, noisy[key], clean[key]) for key in sorted(noisy)]


def _read_pair(noisy_path, clean_path, length_tolerance):
    """Both signals at their native rate, cut to the shorter; checks the pair."""
    if file_identity(noisy_path) == file_identity(clean_path):
        raise AudioError(noisy_path, f"is the same file as its clean reference {clean_path}")
    noisy, noisy_rate = read_audio_native(noisy_path)
    clean, clean_rate = read_audio_native(clean_path)
    if noisy_rate != clean_rate:
        raise AudioError(
            noisy_path,
            f"sampled at {noisy_rate} Hz but its clean reference {clean_path} at {clean_rate} Hz",
        )
    if abs(len(noisy) - len(clean)) > length_tolerance * noisy_rate:
        raise AudioError(
            noisy_path,
            f"{len(noisy) / noisy_rate:.3f} s long but its "
            f"clean reference {clean_path} {len(clean) / clean_rate:.3f} s "
            f"(more than {length_tolerance} s apart)",
        )
    n = min(len(noisy), len(clean))
    noisy, clean = noisy[:n], clean[:n]
    if np.array_equal(noisy, clean):
        raise AudioError(
            noisy_path,
            f"holds the same samples as its clean reference {clean_path} (no noise): "
            "are the noisy and clean folders the same recordings?",
        )
    return noisy, clean, noisy_rate


def copy_key(signal, native_rate, sample_rate):
    """The comment of a resampled copy: a hash of the samples it was made from.

    Arguments
    ---------
    signal : numpy.ndarray or torch.Tensor
        The source's samples at its native rate (as cut for its pair).
    native_rate, sample_rate : int
        The source's rate and the copy's.

    Returns
    -------
    str

    Example
    -------
    >>> a = copy_key(np.zeros(4), 48000, 16000)
    >>> a.startswith(COPY_PREFIX), a == copy_key(torch.ones(4), 48000, 16000)
    (True, False)
    """
    if isinstance(signal, torch.Tensor):
        signal = signal.detach().cpu().numpy()
    data = np.ascontiguousarray(signal, dtype="<f4").tobytes()
    digest = hashlib.sha256(data).hexdigest()[:32]
    return f"{COPY_PREFIX} of {native_rate} Hz samples sha256 {digest} at {sample_rate} Hz"


def _same_audio(copy, reference, sample_rate):
    """Whether a copy made elsewhere holds ``reference`` (within FOREIGN_COPY_SNR)."""
    try:
        other = load_audio(copy, sample_rate)
    except AudioError:
        return False
    if abs(len(other) - len(reference)) > max(2, len(reference) // 1000):
        return False
    n = min(len(other), len(reference))
    ref, err = reference[:n].double(), (other[:n] - reference[:n]).double()
    power, error = float(ref.pow(2).sum()), float(err.pow(2).sum())
    if power == 0.0:
        return error == 0.0
    return error == 0.0 or 10 * np.log10(power / error) >= FOREIGN_COPY_SNR


def _in_place(path, native_rate, sample_rate):
    """Whether a file can be read as it is (mono lossless at the rate)."""
    if native_rate != sample_rate:
        return False
    with open_audio(path) as f:
        return f.channels == 1 and f.format in LOSSLESS_FORMATS


def _location(path, signal, native_rate, sample_rate, data_root, resampled_root):
    """Manifest path of one file, writing its resampled copy if needed."""
    if _in_place(path, native_rate, sample_rate):
        return "{data_root}/" + os.path.relpath(path, data_root).replace(os.sep, "/")
    # The copy keeps the file's whole path below data_root, its top folder
    # renamed <top>_16k: noisy and clean files of the same name (in folders
    # of the same name, e.g. noisy/wav/x.wav and clean/wav/x.wav) never share
    # a copy. VoiceBank: noisy_trainset_28spk_wav_16k/p226_001.wav.
    parts = os.path.relpath(path, data_root).split(os.sep)
    if parts[0] == os.pardir or len(parts) < 2:
        raise ValueError(f"{path} is not inside a folder below data_root {data_root}")
    suffix = "_16k" if sample_rate == 16000 else f"_{sample_rate}"
    parts[0] += suffix
    parts[-1] = os.path.splitext(parts[-1])[0] + ".wav"
    rel = os.path.join(*parts)
    copy = os.path.join(resampled_root, rel)
    key = copy_key(signal, native_rate, sample_rate)
    comment = wav_comment(copy) if os.path.isfile(copy) else None
    if comment != key:  # written atomically: a present copy is whole
        resampled = resample(signal, native_rate, sample_rate)
        if not os.path.lexists(copy) or (comment or "").startswith(COPY_PREFIX):
            # New, or an earlier copy of ours made from other samples (the
            # original was replaced since): made (again).
            save_wav(copy, resampled, sample_rate, comment=key)
        elif not _same_audio(copy, resampled, sample_rate):
            raise AudioError(
                copy,
                f"is not a {sample_rate} Hz copy of {path} (other audio) and was not made "
                "by this preparation, so it is not replaced: remove it, or choose "
                "another resampled folder",
            )
    return "{resampled_root}/" + rel.replace(os.sep, "/")


def _manifest(pairs, sample_rate, data_root, resampled_root, length_tolerance, what):
    """Checks, measures and (if needed) resamples pairs; returns a manifest."""
    manifest = {}
    for key, noisy_path, clean_path in tqdm(
        pairs, desc=f"Preparing {what} pairs", leave=False, disable=None
    ):
        noisy, clean, rate = _read_pair(noisy_path, clean_path, length_tolerance)
        utt_id = key.replace("/", "_")
        noise = noisy - clean
        snr = compute_snr(clean, noise) if np.any(noise) and np.any(clean) else 0.0
        manifest[utt_id] = {
            "noisy_wav": _location(noisy_path, noisy, rate, sample_rate, data_root, resampled_root),
            "clean_wav": _location(clean_path, clean, rate, sample_rate, data_root, resampled_root),
            "length": len(clean) / rate,
            "snr": int(round(snr)),
            "speaker": speaker_of(key),
        }
    return manifest


def _check_held_out(train_pairs, test_pairs):
    """Refuses a training file that is a test file under another name (a link)."""
    test = {}
    for _, noisy, clean in test_pairs:
        for path in (noisy, clean):
            test.setdefault(file_identity(path), path)
    test.pop(None, None)
    for _, noisy, clean in train_pairs:
        for path in (noisy, clean):
            other = test.get(file_identity(path))
            if other is not None:
                raise FolderError(
                    f"training file {path} is the test file {other} (a symbolic or hard "
                    "link): the test set must stay out of training; remove the link"
                )


def _split_speakers(pairs, valid_speakers, pattern):
    """Training and validation pairs; validation = the listed speakers."""
    speakers = sorted({speaker_of(key, pattern) for key, _, _ in pairs})
    if isinstance(valid_speakers, int):
        valid_speakers = speakers[:valid_speakers]
    valid_speakers = set(valid_speakers)
    missing = sorted(valid_speakers - set(speakers))
    if missing:
        raise ValueError(
            f"Validation speaker(s) {missing} have no file; speakers "
            f"found: {speakers[:20]}{' ...' if len(speakers) > 20 else ''}"
        )
    valid = [p for p in pairs if speaker_of(p[0], pattern) in valid_speakers]
    train = [p for p in pairs if speaker_of(p[0], pattern) not in valid_speakers]
    if not valid or not train:
        raise ValueError(
            f"Holding out {sorted(valid_speakers)} leaves "
            f"{len(train)} training and {len(valid)} validation pairs"
        )
    return train, valid


def prepare_paired(
    noisy_folder,
    clean_folder,
    save_json_train,
    save_json_valid,
    save_json_test=None,
    test_noisy_folder=None,
    test_clean_folder=None,
    data_root=None,
    resampled_root=None,
    valid_speakers=VOICEBANK_VALID_SPEAKERS,
    speaker_pattern=SPEAKER_PATTERN,
    sample_rate=16000,
    length_tolerance=0.01,
    skip_prep=False,
):
    """Writes JSON manifests of a paired noisy/clean corpus.

    Arguments
    ---------
    noisy_folder : str
        Noisy training files (searched recursively).
    clean_folder : str
        Their clean references, with the same names.
    save_json_train : str
        Training manifest to write.
    save_json_valid : str
        Validation manifest (the ``valid_speakers``' pairs).
    save_json_test : str, optional
        Test manifest, from ``test_noisy_folder`` / ``test_clean_folder``.
    test_noisy_folder : str, optional
        Noisy test files.
    test_clean_folder : str, optional
        Clean test references.
    data_root : str, optional
        Becomes ``{data_root}`` (default: the folder holding all the input
        folders).
    resampled_root : str, optional
        Where copies at ``sample_rate`` are written, becoming
        ``{resampled_root}`` (default: ``resampled`` beside the training
        manifest). Only files that are not mono lossless at ``sample_rate``
        are copied; a copy already there is reused.
    valid_speakers : list of str or int
        Speaker ids held out for validation, or how many speakers to hold
        out (the first ones in sorted order). Default: SpeechBrain's
        VoiceBank choice, p226 and p287.
    speaker_pattern : str
        Regular expression whose first group, matched on a file's stem,
        is its speaker (default: the text before the first ``_``).
    sample_rate : int
        Rate of the manifests' audio.
    length_tolerance : float
        Largest length difference (s) of a noisy file and its reference;
        both are cut to the shorter.
    skip_prep : bool
        Do nothing. Preparation is also skipped when every manifest exists.

    Returns
    -------
    dict
        ``{"train", "valid", "test"}`` manifest paths (``test`` None when not
        asked) and the ``data_root`` / ``resampled_root`` replacements.

    Raises
    ------
    ValueError
        Unmatched files (listed), a pair of different rates or lengths, or
        validation speakers that are missing;
        :class:`~speechbrain_fsce.dataio.audio.AudioError` for a noisy
        file that is (or holds the same samples as) its clean reference;
        :class:`~speechbrain_fsce.dataio.audio.FolderError` for folders
        that are one folder or nested, or a training file that is a test
        file (a link).

    Example
    -------
    >>> import soundfile as sf
    >>> from speechbrain_fsce.testing import speech_like
    >>> tmp = getfixture("tmp_path")
    >>> for spk in ("p1", "p2"):
    ...     clean = speech_like(0.5, 48000, seed=int(spk[1:]))
    ...     for kind, sig in (("clean", clean), ("noisy", clean + 0.05)):
    ...         (tmp / kind).mkdir(exist_ok=True)
    ...         sf.write(str(tmp / kind / f"{spk}_001.wav"), sig, 48000)
    >>> out = prepare_paired(str(tmp / "noisy"), str(tmp / "clean"),
    ...                      str(tmp / "train.json"), str(tmp / "valid.json"),
    ...                      valid_speakers=["p2"])
    >>> import json
    >>> json.load(open(out["valid"]))["p2_001"]["clean_wav"]
    '{resampled_root}/clean_16k/p2_001.wav'
    """
    folders = [noisy_folder, clean_folder]
    if save_json_test is not None:
        if test_noisy_folder is None or test_clean_folder is None:
            raise ValueError("save_json_test needs test_noisy_folder and test_clean_folder")
        folders += [test_noisy_folder, test_clean_folder]
    folders = [os.path.abspath(str(f)) for f in folders]
    if data_root is None:
        data_root = os.path.commonpath(folders)
    if resampled_root is None:
        resampled_root = os.path.join(
            os.path.dirname(os.path.abspath(save_json_train)), "resampled"
        )
    out = {
        "train": save_json_train,
        "valid": save_json_valid,
        "test": save_json_test,
        "data_root": os.path.abspath(data_root),
        "resampled_root": os.path.abspath(resampled_root),
    }
    outputs = [p for p in (save_json_train, save_json_valid, save_json_test) if p]
    if skip_prep or all(os.path.isfile(p) for p in outputs):
        if not skip_prep:
            logger.info(
                "Paired manifests already written (%s): skipping preparation.", ", ".join(outputs)
            )
        return out
    roles = ["noisy folder", "clean folder", "test noisy folder", "test clean folder"]
    check_separate_folders(list(zip(roles, folders)))
    for folder in folders:  # what a killed run left among the copies
        top = os.path.relpath(folder, out["data_root"]).split(os.sep)[0]
        if top != os.pardir:
            suffix = "_16k" if sample_rate == 16000 else f"_{sample_rate}"
            remove_partials(os.path.join(out["resampled_root"], top + suffix), recursive=True)
    args = (sample_rate, out["data_root"], out["resampled_root"], length_tolerance)
    pairs = match_pairs(folders[0], folders[1])
    train, valid = _split_speakers(pairs, valid_speakers, speaker_pattern)
    jobs = [(save_json_valid, valid, "validation"), (save_json_train, train, "training")]
    if save_json_test is not None:
        test = match_pairs(folders[2], folders[3])
        _check_held_out(pairs, test)
        jobs.append((save_json_test, test, "test"))
    # The training manifest is written last: its presence marks a finished run.
    for path, pairs, what in sorted(jobs, key=lambda job: job[0] == save_json_train):
        write_json_atomic(path, _manifest(pairs, *args, what))
        logger.info("%s: %d %s pairs", path, len(pairs), what)
    return out


class PairedExcerpts:
    """Random excerpts of the same span of a noisy signal and its reference.

    The excerpt of an utterance is drawn from a generator seeded by
    ``(seed, epoch, utterance id)``: the same in every process, worker or
    resumed run, and new each epoch once :meth:`set_epoch` is called (the
    recipe's Brain calls it at the start of every training epoch).
    ``seed=None`` uses ``torch.initial_seed()``.

    Arguments
    ---------
    length : int, optional
        Excerpt length in samples (None: whole signals).
    seed : int, optional
        Seed of the draws.

    Example
    -------
    >>> noisy, clean = torch.arange(100.0), torch.arange(100.0) + 1000
    >>> excerpts = PairedExcerpts(length=10, seed=1)
    >>> n, c = excerpts("p1_001", noisy, clean)
    >>> n.shape, bool((c - n == 1000).all())
    (torch.Size([10]), True)
    >>> bool((excerpts("p1_001", noisy, clean)[0] == n).all())
    True
    """

    def __init__(self, length=None, seed=None):
        self.length = None if length is None else int(length)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch, rank=0):
        """Starts the draws of ``epoch`` (``rank`` is accepted for symmetry
        with :class:`~speechbrain_fsce.dataio.mixing.OnTheFlyMixer`; the
        draws depend on the utterance, not the process)."""
        self.epoch = int(epoch)

    def start(self, utt_id, samples):
        """Start of the excerpt of ``utt_id`` (``samples`` long in all)."""
        if self.length is None or samples <= self.length:
            return 0
        seed = torch.initial_seed() if self.seed is None else int(self.seed)
        rng = np.random.default_rng([seed, self.epoch, zlib.crc32(str(utt_id).encode())])
        return int(rng.integers(0, samples - self.length + 1))

    def __call__(self, utt_id, noisy, clean):
        """``(noisy, clean)`` excerpts over one span (cut to the shorter first)."""
        n = min(len(noisy), len(clean))
        begin = self.start(utt_id, n)
        end = n if self.length is None else min(n, begin + self.length)
        return noisy[begin:end], clean[begin:end]
