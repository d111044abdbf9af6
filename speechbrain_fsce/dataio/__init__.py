"""Corpus preparation and the paper's noise protocol.

One entry point, :func:`prepare_corpus`, dispatches to
:func:`~speechbrain_fsce.dataio.timit.prepare_timit` (TIMIT) or
:func:`~speechbrain_fsce.dataio.folders.prepare_folders` (any folders of
clean speech and noise). Both write into ``save_folder``: ``train.json``
(clean utterances, noise mixed on the fly by :class:`OnTheFlyMixer`),
``noise_train.wav``, ``noise_test.wav`` and the fixed mixtures of
``valid.json`` / ``test.json``; formats in
:mod:`speechbrain_fsce.dataio.folders`. Corpora of fixed noisy/clean pairs
(VoiceBank-DEMAND) are prepared by
:func:`~speechbrain_fsce.dataio.paired.prepare_paired` instead. Load the manifests with::

    sb.dataio.dataset.DynamicItemDataset.from_json(
        path, replacements={"data_root": data_folder, "mix_root": save_folder}
    )

Authors
 * speechbrain-fsce developers
"""

import importlib

# Names re-exported from the submodules, imported on first access (PEP 562)
# so that ``python -m speechbrain_fsce.dataio.folders`` runs its module once.
_EXPORTS = {
    "AudioError": "audio",
    "find_audio_files": "audio",
    "load_audio": "audio",
    "save_wav": "audio",
    "scan_audio": "audio",
    "NoiseSource": "mixing",
    "OnTheFlyMixer": "mixing",
    "compute_snr": "mixing",
    "mix_at_snr": "mixing",
    "random_segment": "mixing",
    "write_fixed_mixtures": "mixing",
    "prepare_folders": "folders",
    "prepare_timit": "timit",
    "PairedExcerpts": "paired",
    "prepare_paired": "paired",
}


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = [
    "AudioError",
    "NoiseSource",
    "OnTheFlyMixer",
    "PairedExcerpts",
    "compute_snr",
    "find_audio_files",
    "load_audio",
    "mix_at_snr",
    "prepare_corpus",
    "prepare_folders",
    "prepare_paired",
    "prepare_timit",
    "random_segment",
    "save_wav",
    "scan_audio",
    "write_fixed_mixtures",
]


def prepare_corpus(
    corpus,
    data_folder,
    save_folder,
    noise_folder,
    test_noise_folder=None,
    seed=1234,
    skip_prep=False,
    valid_ratio=0.1,
    **kwargs,
):
    """Prepares a corpus with the FSCE noise protocol.

    Arguments
    ---------
    corpus : str
        ``"timit"`` (``data_folder`` is the TIMIT root) or ``"folders"``
        (``data_folder`` is a folder of clean speech).
    data_folder : str
        The clean corpus; becomes ``{data_root}`` in the manifests.
    save_folder : str
        Output folder; becomes ``{mix_root}``.
    noise_folder : str
        Training/validation noise.
    test_noise_folder : str, optional
        Unseen noise added for the test.
    seed : int
        Seed of every draw.
    skip_prep : bool
        Do nothing and return the paths.
    valid_ratio : float
        Share of the training speakers held out for validation (TIMIT: of
        each dialect region, its ``valid_speakers``; folders: its
        ``valid_ratio``).
    **kwargs
        Passed on: ``core_test_only``, ``valid_speakers`` (TIMIT: speaker
        ids or a count, instead of ``valid_ratio``); ``clean_test_folder``,
        ``test_ratio``, ``split_by`` (folders); ``valid_snr_range``,
        ``test_snrs``, ``progress`` (both).

    Returns
    -------
    dict
        ``train``, ``valid``, ``test``, ``noise_train``, ``noise_test`` paths
        and the ``data_root`` / ``mix_root`` replacements.

    Example
    -------
    >>> out = prepare_corpus("timit", "/TIMIT", "/prep", "/noise", skip_prep=True)
    >>> out["train"], out["data_root"], out["mix_root"]
    ('/prep/train.json', '/TIMIT', '/prep')
    """
    from speechbrain_fsce.dataio.folders import prepare_folders
    from speechbrain_fsce.dataio.timit import prepare_timit

    name = str(corpus).lower()
    kwargs.update(test_noise_folder=test_noise_folder, seed=seed, skip_prep=skip_prep)
    if name == "timit":
        kwargs.setdefault("valid_speakers", valid_ratio)
        return prepare_timit(data_folder, save_folder, noise_folder, **kwargs)
    if name in ("folders", "folder"):
        return prepare_folders(
            data_folder, save_folder, noise_folder, valid_ratio=valid_ratio, **kwargs
        )
    raise ValueError(f"Unknown corpus {corpus!r}: use 'timit' or 'folders'")
