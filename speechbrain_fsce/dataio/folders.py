"""The FSCE protocol for any folders of clean speech and noise.

:func:`prepare_folders` (and the command
``python -m speechbrain_fsce.dataio.folders``) turns a folder of clean speech
and folders of noise into the same files as the TIMIT preparation
(:mod:`speechbrain_fsce.dataio.timit`); :func:`write_protocol` is the part
both share. Files written into ``save_folder``:

``train.json``
    ``{utt_id: {"clean_wav", "length", "speaker"}}``: clean utterances only,
    noise is mixed on the fly (:class:`~speechbrain_fsce.dataio.mixing.OnTheFlyMixer`).
``noise_train.wav``
    The training noise folder's files, 16 kHz mono, concatenated (float32);
    used for training and validation mixtures.
``noise_test.wav``
    The training noise followed by the unseen test-noise folder's files;
    used for test mixtures. Without a test-noise folder it holds the
    training noise only (the test then uses seen noise types, a weaker test
    than the paper's; a warning says so).
``valid.json`` / ``test.json``
    Fixed mixtures ``{mix_id: {"noisy_wav", "clean_wav", "length", "snr",
    "clean_id", "noise_source", "noise_offset"}}``: one per validation
    utterance at a seeded random integer SNR in [-5, 15] dB; every test
    utterance at each of -5, 0, 5, 10 dB. The noisy files are float32 WAV
    under ``mixtures/valid/`` and ``mixtures/test/``, neither clipped nor
    rescaled, so ``noisy - clean`` has the labelled SNR.
``noise_*.sources.json``, ``prepare_options.json``, ``mixtures/*/.plan.json``
    Book-keeping: which noise file lies where in the long noise, and what
    the outputs were made from (for the skip / resume checks).

Paths in the manifests are ``{data_root}/...`` (the clean corpus folder) or
``{mix_root}/...`` (``save_folder``); load them with::

    DynamicItemDataset.from_json(
        path, replacements={"data_root": corpus_folder, "mix_root": save_folder}
    )

``clean_wav`` always names a 16 kHz mono file that soundfile reads and that
holds exactly the samples that were mixed: a lossless mono 16 kHz corpus
file (WAV, NIST-SPHERE, FLAC) is used in place; any other (another rate,
several channels, OGG, or a file outside ``data_root``) is resampled once to
a float32 copy under ``save_folder/clean16k*/`` and referenced as
``{mix_root}/clean16k.../<relative path>.wav``.

Splitting a single folder (:func:`prepare_folders`): the speaker of a file is
the name of the first sub-folder it lies in (``clean/<speaker>/.../x.wav``),
or what ``speaker_fn`` returns. With ``split_by="auto"`` the split is by
speaker when every file has one and there are enough speakers, otherwise by
file; the validation (and test) share is a seeded random
``round(ratio * groups)`` (at least one) of the speakers or files.

Authors
 * speechbrain-fsce developers
"""

import dataclasses
import functools
import json
import logging
import os
import re
import sys

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbrain_fsce.dataio.audio import (
    AudioInfo,
    FolderError,
    _inside,
    check_separate_folders,
    exclude_files,
    load_audio,
    save_wav,
    scan_audio,
    wav_comment,
)
from speechbrain_fsce.dataio.mixing import (
    _read_json,
    _template_relpath,
    build_noise_wav,
    write_fixed_mixtures,
    write_json_atomic,
)
from speechbrain_fsce.fileio import remove_partials

logger = logging.getLogger(__name__)

#: The SNRs of the paper's protocol.
VALID_SNR_RANGE = (-5, 15)
TEST_SNRS = (-5, 0, 5, 10)

_OPTIONS_FILE = "prepare_options.json"
_MANIFESTS = ("train.json", "valid.json", "test.json")
_NOISES = ("noise_train.wav", "noise_test.wav")


@dataclasses.dataclass
class Utterance:
    """One clean utterance headed for a manifest.

    Arguments
    ---------
    utt_id : str
        Manifest key.
    speaker : str
        Speaker label (or the file's own id when none is known).
    info : AudioInfo
        The scanned source file.
    copy_rel : str
        Where a 16 kHz copy goes, relative to ``save_folder``, if the file
        cannot be referenced in place.

    Example
    -------
    >>> info = AudioInfo("/c/s1/a.wav", 16000, 1, 16000, "WAV", "PCM_16", 0.1)
    >>> Utterance("s1_a", "s1", info, "clean16k/s1/a.wav.wav").speaker
    's1'
    """

    utt_id: str
    speaker: str
    info: AudioInfo
    copy_rel: str


def output_paths(save_folder):
    """The files a preparation writes (the contract of the recipe).

    Arguments
    ---------
    save_folder : str
        Output folder.

    Returns
    -------
    dict
        ``train``, ``valid``, ``test`` (manifests), ``noise_train``,
        ``noise_test`` (wavs) and ``mix_root`` (= ``save_folder``).

    Example
    -------
    >>> sorted(output_paths("/s"))
    ['mix_root', 'noise_test', 'noise_train', 'test', 'train', 'valid']
    """
    save_folder = os.path.abspath(str(save_folder))
    paths = {m[: -len(".json")]: os.path.join(save_folder, m) for m in _MANIFESTS}
    paths.update({n[: -len(".wav")]: os.path.join(save_folder, n) for n in _NOISES})
    paths["mix_root"] = save_folder
    return paths


def load_prepared(save_folder, split):
    """A prepared manifest with its ``{data_root}``/``{mix_root}`` filled in.

    For scripts that read a prepared corpus without a ``DynamicItemDataset``
    (benchmarks, corpus reports): the roots are the ones the preparation
    recorded in ``prepare_options.json``.

    Arguments
    ---------
    save_folder : str or os.PathLike
        The preparation's output folder.
    split : str
        ``train``, ``valid`` or ``test``.

    Returns
    -------
    dict
        ``{id: entry}`` as in the manifest, paths absolute.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> from speechbrain_fsce.testing import speech_like
    >>> tmp = getfixture("tmp_path")
    >>> for spk in range(4):
    ...     os.makedirs(tmp / "clean" / f"s{spk}")
    ...     sf.write(tmp / "clean" / f"s{spk}" / "u.wav", speech_like(1.0, seed=spk), 16000)
    >>> os.makedirs(tmp / "noise")
    >>> sf.write(tmp / "noise" / "n.wav", np.random.default_rng(0).standard_normal(32000) * 0.1, 16000)
    >>> _ = prepare_folders(tmp / "clean", tmp / "out", tmp / "noise", valid_ratio=0.25,
    ...                     test_ratio=0.25, progress=False)
    >>> test = load_prepared(tmp / "out", "test")
    >>> all(os.path.isfile(v["noisy_wav"]) and os.path.isfile(v["clean_wav"]) for v in test.values())
    True
    """
    from speechbrain.dataio.dataio import load_data_json

    save_folder = os.path.abspath(str(save_folder))
    with open(os.path.join(save_folder, "prepare_options.json"), encoding="utf-8") as f:
        options = json.load(f)
    data_root = options.get("clean_folder") or options.get("data_folder")
    return load_data_json(
        os.path.join(save_folder, f"{split}.json"),
        replacements={"data_root": data_root, "mix_root": save_folder},
    )


def _normalise(options):
    return json.loads(json.dumps(options))


def _protocol_options(corpus, noise_folder, test_noise_folder, protocol, **own):
    """The record a preparation is skipped by (``prepare_options.json``):
    the corpus's own options, the noise folders and the ``protocol``
    (seed, SNRs, sample rate), JSON-normalised."""
    return _normalise(
        {
            "corpus": corpus,
            **own,
            "noise_folder": os.path.abspath(str(noise_folder)),
            "test_noise_folder": test_noise_folder and os.path.abspath(str(test_noise_folder)),
            **protocol,
        }
    )


def _check_noise_folders(noise_folder, test_noise_folder):
    """Raises ``FileNotFoundError`` for a missing noise folder (before any long scan)."""
    for folder in [noise_folder] + ([test_noise_folder] if test_noise_folder else []):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"The noise folder '{folder}' does not exist.")


def check_folder_roles(speech, noise_folder, test_noise_folder, save_folder):
    """Refuses folders that would mix roles, before anything is read or written.

    Speech and noise folders must be apart (not one folder, neither inside
    the other), the speech folders apart from each other (the test speech is
    held out), and the save folder must not lie inside any of them (its
    files would be read as speech or noise by the next preparation).

    Arguments
    ---------
    speech : list of (str, str or None)
        ``(role, folder)`` of the speech folders, e.g.
        ``[("clean speech folder", ...), ("clean test folder", ...)]``.
    noise_folder, test_noise_folder : str or None
        The noise folders.
    save_folder : str
        The output folder.

    Raises
    ------
    speechbrain_fsce.dataio.audio.FolderError
        One line naming the two folders.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "speech").mkdir()
    >>> check_folder_roles([("clean speech folder", tmp / "speech")], tmp / "speech", None, tmp / "s")
    Traceback (most recent call last):
    ...
    speechbrain_fsce.dataio.audio.FolderError: clean speech folder ... and noise folder ... are the same folder: give each its own folder
    """
    noises = [("noise folder", noise_folder), ("test noise folder", test_noise_folder)]
    check_separate_folders(speech)
    for noise in noises:
        check_separate_folders(speech + [noise])
    for role, folder in speech + noises:
        if folder and _inside(save_folder, folder):
            raise FolderError(
                f"save folder {save_folder} lies inside the {role} {folder}: "
                "choose a save folder outside the corpus"
            )


def is_prepared(save_folder, options):
    """Whether ``save_folder`` holds every output, made with ``options``.

    Arguments
    ---------
    save_folder : str
        Output folder.
    options : dict
        JSON-serialisable description of the preparation.

    Returns
    -------
    bool

    Example
    -------
    >>> is_prepared(str(getfixture("tmpdir")), {"seed": 1})
    False
    """
    paths = output_paths(save_folder)
    files = [paths[k] for k in ("train", "valid", "test", "noise_train", "noise_test")]
    if not all(os.path.isfile(p) for p in files):
        return False
    return _read_json(os.path.join(paths["mix_root"], _OPTIONS_FILE)) == _normalise(options)


def _protocol_writer(
    corpus, speech, save_folder, noise_folder, test_noise_folder, protocol, progress, **own
):
    """The start every preparation shares, before it reads its corpus.

    Records the options (:func:`_protocol_options`; ``own``: the corpus's
    own), refuses folders that mix roles (:func:`check_folder_roles`, with
    ``speech`` as there) and returns None when ``save_folder`` is already
    prepared with these options; otherwise ``write(data_root, train, valid,
    test)``, which ends the preparation: :func:`write_protocol` with these
    folders, options, ``protocol`` (seed, SNRs, sample rate) and
    ``progress``.
    """
    options = _protocol_options(corpus, noise_folder, test_noise_folder, protocol, **own)
    check_folder_roles(speech, noise_folder, test_noise_folder, save_folder)
    if is_prepared(save_folder, options):
        return None
    return functools.partial(
        write_protocol,
        save_folder,
        noise_folder=noise_folder,
        test_noise_folder=test_noise_folder,
        options=options,
        progress=progress,
        **protocol,
    )


def _invalidate(save_folder):
    """Removes the completion flag and manifests before a (re)preparation."""
    for name in (_OPTIONS_FILE,) + _MANIFESTS:
        path = os.path.join(save_folder, name)
        if os.path.isfile(path):
            os.remove(path)


def source_stamp(path):
    """What a resampled copy records of its source: size and modification time.

    A copy whose stamp differs from its source's was made from an earlier
    file of that name and is made again.

    Arguments
    ---------
    path : str
        The source file.

    Returns
    -------
    str

    Example
    -------
    >>> path = getfixture("tmp_path") / "a.wav"
    >>> _ = path.write_bytes(b"1234")
    >>> source_stamp(path).startswith("speechbrain-fsce copy of 4 bytes, mtime_ns ")
    True
    """
    st = os.stat(str(path))
    return f"speechbrain-fsce copy of {st.st_size} bytes, mtime_ns {st.st_mtime_ns}"


def _clean_references(utterances, data_root, save_folder, sample_rate, progress):
    """``{utt_id: (clean_wav template, length in s)}``, writing copies if needed."""
    refs, to_copy = {}, []
    data_root = os.path.abspath(data_root)
    for utt in utterances:
        inside = not os.path.relpath(utt.info.path, data_root).startswith("..")
        if inside and utt.info.is_reference_ready(sample_rate):
            template = "{data_root}/" + _template_relpath(utt.info.path, data_root)
            refs[utt.utt_id] = (template, utt.info.frames / sample_rate)
        else:
            to_copy.append(utt)
    bar = tqdm(
        to_copy,
        desc="Resampling clean speech to 16 kHz",
        disable=not progress or None,
        leave=False,
    )
    for utt in bar:
        dest = os.path.join(save_folder, utt.copy_rel)
        # An existing copy (atomic writes: never partial) is reused only when
        # it was made from the source as it is now (size and modification
        # time, recorded in the copy) and its length still matches.
        stamp = source_stamp(utt.info.path)
        if (
            os.path.isfile(dest)
            and wav_comment(dest) == stamp
            and sf.info(dest).frames == utt.info.frames_at(sample_rate)
        ):
            frames = sf.info(dest).frames
        else:
            signal = load_audio(utt.info.path, sample_rate)
            save_wav(dest, signal, sample_rate, comment=stamp)
            frames = len(signal)
        template = "{mix_root}/" + _template_relpath(dest, save_folder)
        refs[utt.utt_id] = (template, frames / sample_rate)
    if to_copy:
        logger.info(
            "%d clean files are not 16 kHz mono lossless: referenced through "
            "resampled copies under %s",
            len(to_copy),
            save_folder,
        )
    return refs


def write_protocol(
    save_folder,
    data_root,
    train,
    valid,
    test,
    noise_folder,
    test_noise_folder=None,
    options=None,
    seed=1234,
    valid_snr_range=VALID_SNR_RANGE,
    test_snrs=TEST_SNRS,
    sample_rate=16000,
    progress=True,
):
    """Writes noise, fixed mixtures and manifests for given splits.

    The shared back end of :func:`prepare_folders` and
    :func:`~speechbrain_fsce.dataio.timit.prepare_timit`: the caller decides
    which utterances go where; this writes every file of the contract (see
    the module docstring) in an order that keeps a killed run harmless:
    completion flag and manifests removed first (with the ``.partial``
    files of a killed run), then clean copies, noise wavs, mixtures, and
    each manifest only once what it points at exists.

    Arguments
    ---------
    save_folder : str
        Output folder (``{mix_root}``).
    data_root : str
        Clean corpus folder (``{data_root}``).
    train, valid, test : list of Utterance
        The splits.
    noise_folder : str
        Training (and validation) noise folder.
    test_noise_folder : str, optional
        Unseen noise added for the test.
    options : dict, optional
        Recorded in ``prepare_options.json`` once everything is written.
    seed : int
        Seed of every draw (validation and test use separate streams).
    valid_snr_range : tuple
        Inclusive integer SNR range of validation mixtures.
    test_snrs : tuple
        SNRs at which every test utterance is mixed.
    sample_rate : int
        Rate of all outputs.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        :func:`output_paths` plus ``data_root``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> rng = np.random.default_rng(0)
    >>> utts = []
    >>> for i in range(3):
    ...     path = str(tmp.ensure_dir("clean") / f"u{i}.wav")
    ...     sf.write(path, 0.1 * rng.standard_normal(1600), 16000)
    ...     info = AudioInfo(path, 16000, 1, 1600, "WAV", "PCM_16", 0.1)
    ...     utts.append(Utterance(f"u{i}", f"s{i}", info, f"clean16k/u{i}.wav"))
    >>> sf.write(str(tmp.ensure_dir("noise") / "n.wav"), rng.standard_normal(4000), 16000)
    >>> out = write_protocol(str(tmp / "save"), str(tmp / "clean"), utts[:1],
    ...     utts[1:2], utts[2:], str(tmp / "noise"), progress=False)
    >>> json.load(open(out["train"]))["u0"]["clean_wav"]
    '{data_root}/u0.wav'
    >>> len(json.load(open(out["test"])))
    4
    """
    save_folder = os.path.abspath(str(save_folder))
    data_root = os.path.abspath(str(data_root))
    paths = output_paths(save_folder)
    os.makedirs(save_folder, exist_ok=True)
    _invalidate(save_folder)
    remove_partials(save_folder, recursive=True)  # what a killed (SIGKILL) run left
    replacements = {"data_root": data_root, "mix_root": save_folder}

    refs = _clean_references(
        list(train) + list(valid) + list(test),
        data_root,
        save_folder,
        sample_rate,
        progress,
    )

    build_noise_wav([noise_folder], paths["noise_train"], sample_rate, progress)
    test_noise = [noise_folder]
    if test_noise_folder:
        test_noise.append(test_noise_folder)
    else:
        logger.warning(
            "No test noise folder: noise_test.wav holds the training noise "
            "only, so the test uses seen noise types."
        )
    build_noise_wav(test_noise, paths["noise_test"], sample_rate, progress)

    # Validation: seen noise, one random SNR each; test: every SNR of test_snrs.
    for index, (split, utts, noise, snrs) in enumerate(
        (
            ("valid", valid, "noise_train", dict(snrs=None, snr_range=valid_snr_range)),
            ("test", test, "noise_test", dict(snrs=list(test_snrs))),
        )
    ):
        write_fixed_mixtures(
            {u.utt_id: refs[u.utt_id][0] for u in utts},
            paths[noise],
            os.path.join(save_folder, "mixtures", split),
            paths[split],
            replacements,
            seed=[int(seed), index],
            sample_rate=sample_rate,
            progress=progress,
            **snrs,
        )
    train_manifest = {
        u.utt_id: {
            "clean_wav": refs[u.utt_id][0],
            "length": refs[u.utt_id][1],
            "speaker": u.speaker,
        }
        for u in sorted(train, key=lambda u: u.utt_id)
    }
    write_json_atomic(paths["train"], train_manifest)
    if options is not None:
        write_json_atomic(os.path.join(save_folder, _OPTIONS_FILE), options)
    logger.info(
        "Prepared %s: %d train, %d valid, %d test utterances (%d test mixtures)",
        save_folder,
        len(train),
        len(valid),
        len(test),
        len(test) * len(test_snrs),
    )
    out = dict(paths)
    out["data_root"] = data_root
    return out


def _sanitise_id(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "utt"


def _default_speaker(rel_path):
    """First sub-folder of the file's path, or None for a top-level file."""
    parts = rel_path.replace(os.sep, "/").split("/")
    return parts[0] if len(parts) > 1 else None


def _utterances(infos, root, copy_dir, speaker_fn):
    """Builds :class:`Utterance` records with unique ids for one folder."""
    utts, seen = [], set()
    for info in infos:
        rel = os.path.relpath(info.path, root)
        utt_id = _sanitise_id(os.path.splitext(rel)[0].replace(os.sep, "_"))
        base, k = utt_id, 2
        while utt_id in seen:  # e.g. a.wav next to a.flac
            utt_id, k = f"{base}_{k}", k + 1
        seen.add(utt_id)
        speaker = speaker_fn(rel)
        utts.append(
            Utterance(
                utt_id=utt_id,
                speaker=None if speaker is None else str(speaker),
                info=info,
                copy_rel=os.path.join(copy_dir, rel + ".wav"),
            )
        )
    return utts


def _count(ratio, total):
    return 0 if ratio <= 0 else max(1, round(ratio * total))


def prepare_folders(
    clean_folder,
    save_folder,
    noise_folder,
    test_noise_folder=None,
    clean_test_folder=None,
    valid_ratio=0.1,
    test_ratio=0.1,
    split_by="auto",
    speaker_fn=None,
    seed=1234,
    skip_prep=False,
    valid_snr_range=VALID_SNR_RANGE,
    test_snrs=TEST_SNRS,
    sample_rate=16000,
    progress=True,
):
    """Prepares the FSCE protocol from folders of clean speech and noise.

    Writes ``train.json``, ``valid.json``, ``test.json``, ``noise_train.wav``
    and ``noise_test.wav`` into ``save_folder`` (formats in the module
    docstring); load the manifests with
    ``DynamicItemDataset.from_json(path, replacements={"data_root":
    clean_folder, "mix_root": save_folder})``.

    Splits: when ``clean_test_folder`` is given, all of it is the test set
    and ``clean_folder`` is split into train and validation; otherwise
    ``clean_folder`` is split three ways. A file's speaker is its first
    sub-folder (``clean_folder/<speaker>/.../x.wav``) or ``speaker_fn(rel)``.
    ``split_by``: ``"speaker"`` keeps every speaker in one split (needs a
    speaker for every file), ``"file"`` splits files independently,
    ``"auto"`` uses speakers when every file has one and there are more
    speakers than held-out splits, files otherwise. Held-out shares are
    ``round(ratio * groups)`` (at least one group when ``ratio > 0``),
    drawn with ``seed``. Files without a speaker get their own id as
    ``speaker``.

    Unusable files (unreadable, non-audio, empty, silent, shorter than one
    320-sample frame) are skipped with one summary warning each for speech
    and noise; missing or empty folders raise ``FileNotFoundError``; a
    noise folder that is (or lies inside, or holds) a speech folder, a
    clean test folder that is (or lies inside, or holds) the clean folder,
    or a save folder inside any of them raise
    :class:`~speechbrain_fsce.dataio.audio.FolderError`. Test files linked
    into the clean folder (symbolic or hard links) stay out of training.

    Nothing is done when every output exists and was made with the same
    options (or when ``skip_prep``); an interrupted run resumes.

    Arguments
    ---------
    clean_folder : str
        Clean speech, any rate/channels/format libsndfile reads (``{data_root}``).
    save_folder : str
        Output folder (``{mix_root}``).
    noise_folder : str
        Training/validation noise.
    test_noise_folder : str, optional
        Unseen test-only noise (added to the training noise for the test).
        Without it, the test uses the training noise only.
    clean_test_folder : str, optional
        Separate clean test speech (referenced through 16 kHz copies, as it
        lies outside ``{data_root}``).
    valid_ratio : float
        Share of speakers (or files) held out for validation.
    test_ratio : float
        Share held out for test (ignored with ``clean_test_folder``).
    split_by : str
        ``"auto"``, ``"speaker"`` or ``"file"``.
    speaker_fn : callable, optional
        ``speaker_fn(relative_path) -> str or None`` replacing the
        first-sub-folder rule.
    seed : int
        Seed of the split, SNR and noise-offset draws.
    skip_prep : bool
        Do nothing and return the paths.
    valid_snr_range : tuple
        Inclusive SNR range of validation mixtures.
    test_snrs : tuple
        Test SNRs.
    sample_rate : int
        Output rate.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        Paths: ``train``, ``valid``, ``test``, ``noise_train``,
        ``noise_test``, and the replacements ``data_root``, ``mix_root``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> rng = np.random.default_rng(0)
    >>> for spk in ["ann", "bob", "cid", "dan"]:
    ...     for k in range(2):
    ...         sf.write(str(tmp.ensure_dir("clean", spk) / f"{k}.flac"),
    ...                  0.1 * rng.standard_normal(3200), 16000)
    >>> sf.write(str(tmp.ensure_dir("noise") / "hum.wav"), rng.standard_normal(8000), 8000)
    >>> out = prepare_folders(str(tmp / "clean"), str(tmp / "prep"),
    ...                       str(tmp / "noise"), progress=False)
    >>> train = json.load(open(out["train"]))
    >>> len(train), sorted({u["speaker"] for u in train.values()}) != []
    (4, True)
    >>> len(json.load(open(out["valid"]))), len(json.load(open(out["test"])))
    (2, 8)
    """
    paths = output_paths(save_folder)
    paths["data_root"] = os.path.abspath(str(clean_folder))
    if skip_prep:
        return paths
    if split_by not in ("auto", "speaker", "file"):
        raise ValueError(f"split_by must be auto, speaker or file, not {split_by!r}")
    protocol = dict(
        seed=seed, valid_snr_range=valid_snr_range, test_snrs=test_snrs, sample_rate=sample_rate
    )
    write = _protocol_writer(
        "folders",
        [("clean speech folder", clean_folder), ("clean test folder", clean_test_folder)],
        save_folder,
        noise_folder,
        test_noise_folder,
        protocol,
        progress,
        clean_folder=os.path.abspath(str(clean_folder)),
        clean_test_folder=clean_test_folder and os.path.abspath(str(clean_test_folder)),
        valid_ratio=valid_ratio,
        test_ratio=test_ratio,
        split_by=split_by,
        speaker_fn=speaker_fn and getattr(speaker_fn, "__qualname__", repr(speaker_fn)),
    )
    if write is None:
        logger.info("%s is already prepared with these options: skipping", save_folder)
        return paths

    _check_noise_folders(noise_folder, test_noise_folder)  # before the long scan of the speech
    speaker_fn = speaker_fn or _default_speaker
    root = os.path.abspath(str(clean_folder))
    infos, _ = scan_audio(root, sample_rate, what="clean speech", progress=progress)
    utts = _utterances(infos, root, "clean16k", speaker_fn)
    if clean_test_folder:
        test_root = os.path.abspath(str(clean_test_folder))
        test_infos, _ = scan_audio(
            test_root, sample_rate, what="clean test speech", progress=progress
        )
        infos = exclude_files(infos, [i.path for i in test_infos], "clean speech", "clean test")
        utts = _utterances(infos, root, "clean16k", speaker_fn)
        test = _utterances(test_infos, test_root, "clean16k_test", speaker_fn)
        test_share = 0.0
    else:
        test, test_share = [], test_ratio
    held_out = int(valid_ratio > 0) + int(test_share > 0)

    speakers = sorted({u.speaker for u in utts if u.speaker is not None})
    has_all = all(u.speaker is not None for u in utts)
    if split_by == "speaker" and not has_all:
        raise ValueError(
            "split_by='speaker' needs a speaker for every file: put each "
            "speaker's files in a sub-folder of the clean folder, or pass speaker_fn"
        )
    by_speaker = split_by == "speaker" or (
        split_by == "auto" and has_all and len(speakers) > held_out
    )
    for u in utts + test:
        if u.speaker is None:
            u.speaker = u.utt_id
    groups = speakers if by_speaker else [u.utt_id for u in utts]
    logger.info(
        "Splitting %d clean files by %s (%d groups)",
        len(utts),
        "speaker" if by_speaker else "file",
        len(groups),
    )

    rng = np.random.default_rng(seed)
    order = [groups[i] for i in rng.permutation(len(groups))]
    n_test, n_valid = _count(test_share, len(groups)), _count(valid_ratio, len(groups))
    if n_test + n_valid >= len(groups):
        raise ValueError(
            f"{len(groups)} {'speakers' if by_speaker else 'files'} are too few "
            f"to hold out {n_valid} for validation and {n_test} for test"
        )
    test_groups = set(order[:n_test])
    valid_groups = set(order[n_test : n_test + n_valid])

    def group_of(u):
        return u.speaker if by_speaker else u.utt_id

    train, valid = [], []
    for u in utts:
        g = group_of(u)
        (test if g in test_groups else valid if g in valid_groups else train).append(u)
    if not valid:
        logger.warning("valid_ratio=%s: the validation set is empty", valid_ratio)

    return write(root, train, valid, test)


if __name__ == "__main__":  # the command lives in the CLI layer, above this module
    from speechbrain_fsce.cli import prepare_main  # fsce-prepare: this command, one-line errors

    sys.exit(prepare_main())
