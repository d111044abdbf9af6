"""TIMIT preparation for the FSCE protocol.

Clean speech from TIMIT (LDC93S1) as in the paper's line of work: training
and validation utterances from the TIMIT training set (validation speakers
held out), test utterances from the TIMIT test set (all of it, or the
24-speaker core test set). The SA1/SA2 dialect sentences, read by every
speaker, are excluded. Noise and mixtures follow
:mod:`speechbrain_fsce.dataio.folders` (same files, same formats).

Accepted layouts, found at ``data_folder`` or one folder below it (e.g. the
``TIMIT/`` or ``data/`` folder of a download)::

    <data_folder>/TRAIN/DR1/FCJF0/SI1027.WAV     (LDC, upper case)
    <data_folder>/train/dr1/fcjf0/si1027.wav     (lower case)
    <data_folder>/TRAIN/DR1/FCJF0/SI1027.WAV.wav (RIFF copies beside NIST)

The ``.WAV`` files are NIST-SPHERE, which soundfile reads directly; when a
RIFF copy sits beside one, the original is used. Utterance ids are
``<dialect>_<speaker>_<sentence>`` in lower case, e.g. ``dr1_fcjf0_si1027``.

Validation speakers (``valid_speakers``): a list of speaker ids; an int
``k``: ``k`` speakers drawn from each dialect region; a float ``r`` in
(0, 1): ``round(r * n)`` speakers (at least one when the region has two or
more) of each region's ``n``. The default 0.1 holds out 48 of the 462
training speakers (384 utterances), spread over the 8 dialect regions.
Draws use ``seed``.

Authors
 * speechbrain-fsce developers
"""

import logging
import os
import re

import numpy as np

from speechbrain_fsce.dataio.audio import exclude_files, scan_audio, walk_files
from speechbrain_fsce.dataio.folders import (
    TEST_SNRS,
    VALID_SNR_RANGE,
    Utterance,
    _check_noise_folders,
    _protocol_writer,
    output_paths,
)

logger = logging.getLogger(__name__)

#: The 24 speakers of TIMIT's core test set (two men and one woman from each
#: of the 8 dialect regions).
CORE_TEST_SPEAKERS = (
    "mdab0", "mwbt0", "felc0",  # DR1
    "mtas1", "mwew0", "fpas0",  # DR2
    "mjmp0", "mlnt0", "fpkt0",  # DR3
    "mlll0", "mtls0", "fjlm0",  # DR4
    "mbpm0", "mklt0", "fnlp0",  # DR5
    "mcmj0", "mjdh0", "fmgd0",  # DR6
    "mgrt0", "mnjm0", "fdhc0",  # DR7
    "mjln0", "mpam0", "fmld0",  # DR8
)  # fmt: skip

_LAYOUT_HELP = (
    "Expected the TIMIT corpus (LDC93S1) laid out as "
    "<data_folder>/TRAIN/DR1/FCJF0/SI1027.WAV and <data_folder>/TEST/... "
    "(lower-case train/dr1/fcjf0/si1027.wav is fine too). Pass its location "
    "with --data_folder /path/to/TIMIT (e.g. `python train.py "
    "hparams/fsce.yaml --data_folder /path/to/TIMIT`) or set data_folder in "
    "the YAML file."
)
_DIALECT = re.compile(r"^dr[1-8]$", re.IGNORECASE)
_SENTENCE = re.compile(r"^(s[aix]\d+)\.wav(\.wav)?$", re.IGNORECASE)


def _split_dirs(folder):
    """``(train_dir, test_dir)`` if ``folder`` holds both, else None."""
    if not os.path.isdir(folder):
        return None
    found = {}
    for name in os.listdir(folder):
        if name.lower() in ("train", "test") and os.path.isdir(os.path.join(folder, name)):
            found[name.lower()] = os.path.join(folder, name)
    if "train" in found and "test" in found:
        return found["train"], found["test"]
    return None


def find_timit_splits(data_folder):
    """Finds TIMIT's training and test folders.

    Arguments
    ---------
    data_folder : str
        The corpus folder, or the folder just above it.

    Returns
    -------
    tuple
        Absolute ``(train_dir, test_dir)``.

    Raises
    ------
    FileNotFoundError
        With the expected layout and how to pass ``--data_folder``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> _ = tmp.ensure_dir("TIMIT", "TRAIN"), tmp.ensure_dir("TIMIT", "TEST")
    >>> [os.path.basename(d) for d in find_timit_splits(str(tmp))]
    ['TRAIN', 'TEST']
    >>> find_timit_splits(str(tmp / "nowhere"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: TIMIT not found at ...
    """
    data_folder = os.path.abspath(str(data_folder))
    if not os.path.isdir(data_folder):
        raise FileNotFoundError(
            f"TIMIT not found at '{data_folder}' (no such folder). {_LAYOUT_HELP}"
        )
    splits = _split_dirs(data_folder)
    if splits is None:
        for name in sorted(os.listdir(data_folder)):
            splits = _split_dirs(os.path.join(data_folder, name))
            if splits is not None:
                break
    if splits is None:
        raise FileNotFoundError(
            f"TIMIT not found at '{data_folder}': no TRAIN and TEST folders "
            f"there or one level below. {_LAYOUT_HELP}"
        )
    return splits


def list_timit_files(split_dir):
    """Lists a TIMIT split's SI/SX sentence files (SA excluded).

    Arguments
    ---------
    split_dir : str
        ``TRAIN`` or ``TEST`` folder.

    Returns
    -------
    list of dict
        ``{"utt_id", "dialect", "speaker", "path"}`` sorted by ``utt_id``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> spk = tmp.ensure_dir("TRAIN", "DR1", "FCJF0")
    >>> for name in ["SI1027.WAV", "SI1027.WAV.wav", "SA1.WAV", "SI1027.PHN"]:
    ...     _ = (spk / name).write("")
    >>> [(f["utt_id"], os.path.basename(f["path"]))
    ...  for f in list_timit_files(str(tmp / "TRAIN"))]
    [('dr1_fcjf0_si1027', 'SI1027.WAV')]
    """
    found = {}
    # The one folder walk: links followed without loops, each real file once.
    for path in walk_files(split_dir):
        parts = os.path.relpath(path, split_dir).split(os.sep)
        if len(parts) != 3:
            continue
        dialect, speaker, name = parts
        match = _SENTENCE.match(name)
        if not _DIALECT.match(dialect) or not match or match.group(1).lower().startswith("sa"):
            continue
        utt_id = f"{dialect}_{speaker}_{match.group(1)}".lower()
        # Prefer the original (single extension) over a RIFF copy.
        if utt_id in found and len(found[utt_id]["path"]) <= len(path):
            continue
        found[utt_id] = {
            "utt_id": utt_id,
            "dialect": dialect.lower(),
            "speaker": speaker.lower(),
            "path": path,
        }
    return [found[k] for k in sorted(found)]


def select_valid_speakers(speakers_by_dialect, valid_speakers=0.1, seed=1234):
    """Chooses the training speakers held out for validation.

    Arguments
    ---------
    speakers_by_dialect : dict
        ``{dialect: [speaker, ...]}`` of the training set.
    valid_speakers : list, int or float
        Explicit speaker ids; ``k`` per dialect region; or a share of each
        region (see the module docstring).
    seed : int
        Seed of the draw.

    Returns
    -------
    set of str
        Lower-case speaker ids.

    Example
    -------
    >>> spk = {"dr1": ["fa", "fb", "mc", "md"], "dr2": ["me", "mf"]}
    >>> sorted(select_valid_speakers(spk, ["MC"]))
    ['mc']
    >>> len(select_valid_speakers(spk, 1)), len(select_valid_speakers(spk, 0.5))
    (2, 3)
    """
    known = {s.lower() for spk in speakers_by_dialect.values() for s in spk}
    if isinstance(valid_speakers, (list, tuple, set, frozenset)):
        chosen = {str(s).lower() for s in valid_speakers}
        unknown = sorted(chosen - known)
        if unknown:
            raise ValueError(f"validation speakers not in the training set: {unknown}")
        return chosen
    if isinstance(valid_speakers, bool) or not isinstance(valid_speakers, (int, float)):
        raise TypeError(f"valid_speakers must be a list, int or float, not {valid_speakers!r}")
    if valid_speakers < 0 or (isinstance(valid_speakers, float) and valid_speakers >= 1):
        raise ValueError(f"valid_speakers {valid_speakers} out of range")
    rng = np.random.default_rng(seed)
    chosen = set()
    for dialect in sorted(speakers_by_dialect):
        speakers = sorted(s.lower() for s in speakers_by_dialect[dialect])
        if isinstance(valid_speakers, int):
            k = min(valid_speakers, len(speakers) - 1)
        elif valid_speakers > 0:
            k = round(valid_speakers * len(speakers))
            k = min(max(k, 1), len(speakers) - 1)
        else:
            k = 0
        order = rng.permutation(len(speakers))
        chosen.update(speakers[i] for i in order[: max(k, 0)])
    return chosen


def _scan(files, data_root, what, progress, sample_rate):
    """Scans TIMIT files, returning Utterances (unusable ones skipped)."""
    if not files:
        raise FileNotFoundError(f"No TIMIT {what} sentence files found. {_LAYOUT_HELP}")
    by_path = {f["path"]: f for f in files}
    try:
        infos, _ = scan_audio(
            [f["path"] for f in files],
            sample_rate,
            what=f"TIMIT {what}",
            progress=progress,
        )
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err} Shorten-compressed NIST files must be decompressed first (e.g. with sph2pipe)."
        ) from err
    utts = []
    for info in infos:
        f = by_path[info.path]
        rel = os.path.relpath(info.path, data_root)
        utts.append(
            Utterance(f["utt_id"], f["speaker"], info, os.path.join("clean16k", rel + ".wav"))
        )
    return utts


def prepare_timit(
    data_folder,
    save_folder,
    noise_folder,
    test_noise_folder=None,
    valid_speakers=0.1,
    core_test_only=False,
    seed=1234,
    skip_prep=False,
    valid_snr_range=VALID_SNR_RANGE,
    test_snrs=TEST_SNRS,
    sample_rate=16000,
    progress=True,
):
    """Prepares TIMIT with the paper's noise protocol.

    Writes into ``save_folder``: ``train.json`` (clean training utterances,
    validation speakers removed), ``noise_train.wav``, ``noise_test.wav``
    (training noise + ``test_noise_folder``; the training noise alone if
    none is given), ``valid.json`` (one fixed mixture per validation
    utterance, seeded integer SNR in [-5, 15] dB) and ``test.json`` (every
    test utterance at -5, 0, 5 and 10 dB), with float32 mixtures under
    ``mixtures/``. Formats: :mod:`speechbrain_fsce.dataio.folders`. Load the
    manifests with ``DynamicItemDataset.from_json(path, replacements=
    {"data_root": data_folder, "mix_root": save_folder})``. TIMIT's 16 kHz
    NIST files are referenced in place (``{data_root}/TRAIN/DR1/...``).

    Nothing is done when every output exists and was made with the same
    options (or when ``skip_prep``); an interrupted run resumes.

    Arguments
    ---------
    data_folder : str
        TIMIT root (holding ``TRAIN``/``TEST``, or one folder above it).
    save_folder : str
        Output folder.
    noise_folder : str
        Training/validation noise folder.
    test_noise_folder : str, optional
        Unseen noise added for the test.
    valid_speakers : list, int or float
        Validation speakers (see the module docstring); default 10 % of each
        dialect region.
    core_test_only : bool
        Test on the 24-speaker core test set (192 utterances) instead of the
        whole test set (168 speakers, 1344 utterances).
    seed : int
        Seed of the speaker, SNR and noise-offset draws.
    skip_prep, valid_snr_range, test_snrs, sample_rate, progress
        As :func:`~speechbrain_fsce.dataio.folders.prepare_folders`.

    Returns
    -------
    dict
        The paths :func:`~speechbrain_fsce.dataio.folders.prepare_folders`
        returns.

    Raises
    ------
    FileNotFoundError
        If TIMIT or the noise is not where it should be.

    Example
    -------
    >>> import json, soundfile as sf
    >>> tmp = getfixture("tmpdir")
    >>> rng = np.random.default_rng(0)
    >>> for split, spks in [("TRAIN", ["FAAA0", "MBBB0", "MCCC0"]), ("TEST", ["MDAB0"])]:
    ...     for spk in spks:
    ...         folder = tmp.ensure_dir("TIMIT", split, "DR1", spk)
    ...         for sent in ["SA1", "SI100", "SX10"]:
    ...             sf.write(str(folder / f"{sent}.WAV"), 0.1 * rng.standard_normal(3200),
    ...                      16000, format="NIST", subtype="PCM_16")
    >>> sf.write(str(tmp.ensure_dir("noise") / "n.wav"), rng.standard_normal(8000), 16000)
    >>> out = prepare_timit(str(tmp / "TIMIT"), str(tmp / "prep"), str(tmp / "noise"),
    ...                     valid_speakers=["MCCC0"], progress=False)
    >>> train = json.load(open(out["train"]))
    >>> first = sorted(train)[0]
    >>> first, train[first]["clean_wav"]
    ('dr1_faaa0_si100', '{data_root}/TRAIN/DR1/FAAA0/SI100.WAV')
    >>> len(train), len(json.load(open(out["valid"]))), len(json.load(open(out["test"])))
    (4, 2, 8)
    """
    paths = output_paths(save_folder)
    paths["data_root"] = os.path.abspath(str(data_folder))
    if skip_prep:
        return paths
    if isinstance(valid_speakers, (list, tuple, set, frozenset)):
        valid_option = sorted(str(s).lower() for s in valid_speakers)
    else:
        valid_option = valid_speakers
    protocol = dict(
        seed=seed, valid_snr_range=valid_snr_range, test_snrs=test_snrs, sample_rate=sample_rate
    )
    write = _protocol_writer(
        "timit",
        [("TIMIT folder", data_folder)],
        save_folder,
        noise_folder,
        test_noise_folder,
        protocol,
        progress,
        data_folder=paths["data_root"],
        valid_speakers=valid_option,
        core_test_only=bool(core_test_only),
    )
    if write is None:
        logger.info("%s is already prepared with these options: skipping", save_folder)
        return paths

    data_root = paths["data_root"]
    train_dir, test_dir = find_timit_splits(data_root)
    train_files = list_timit_files(train_dir)
    test_files = list_timit_files(test_dir)
    train_files = exclude_files(
        train_files, [f["path"] for f in test_files], "TIMIT training", "test"
    )
    if core_test_only:
        test_files = [f for f in test_files if f["speaker"] in CORE_TEST_SPEAKERS]
    _check_noise_folders(noise_folder, test_noise_folder)  # before the long scan of the corpus

    train_all = _scan(train_files, data_root, "training", progress, sample_rate)
    test = _scan(test_files, data_root, "test", progress, sample_rate)
    by_dialect = {}
    for f in train_files:
        by_dialect.setdefault(f["dialect"], set()).add(f["speaker"])
    valid_set = select_valid_speakers(
        {d: sorted(s) for d, s in by_dialect.items()}, valid_speakers, seed
    )
    train = [u for u in train_all if u.speaker not in valid_set]
    valid = [u for u in train_all if u.speaker in valid_set]
    logger.info(
        "TIMIT: %d training speakers, %d validation speakers, %d test speakers",
        len({u.speaker for u in train}),
        len({u.speaker for u in valid}),
        len({u.speaker for u in test}),
    )
    return write(data_root, train, valid, test)


if __name__ == "__main__":  # the command lives in the CLI layer, above this module
    import sys

    from speechbrain_fsce.cli import prepare_timit_main

    sys.exit(prepare_timit_main())
