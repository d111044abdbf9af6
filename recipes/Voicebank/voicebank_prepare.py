"""VoiceBank-DEMAND data preparation for the FSCE recipe.

Expects the four folders of the corpus (Valentini-Botinhao et al., 2016)
inside ``data_folder``, under SpeechBrain's names, at 48 kHz as downloaded
or already resampled to 16 kHz (SpeechBrain's ``download_vctk`` adds a
``_16k`` suffix; both spellings are accepted)::

    clean_trainset_28spk_wav/  noisy_trainset_28spk_wav/   (11,572 pairs, 28 speakers)
    clean_testset_wav/         noisy_testset_wav/          (824 pairs, p232 and p257)

Files at another rate than 16 kHz are resampled once into
``<resampled_folder>/<folder>_16k/`` (by default inside ``data_folder``,
SpeechBrain's layout); later runs reuse the copies. Speakers p226 and p287
are held out for validation, as in SpeechBrain's VoiceBank recipes. The
work is done by :func:`speechbrain_fsce.dataio.paired.prepare_paired`.

Authors
 * speechbrain-fsce developers
"""

import os

from speechbrain_fsce.dataio.paired import VOICEBANK_VALID_SPEAKERS, prepare_paired

#: (noisy, clean) folder names of the training and test pairs.
TRAIN_FOLDERS = ("noisy_trainset_28spk_wav", "clean_trainset_28spk_wav")
TEST_FOLDERS = ("noisy_testset_wav", "clean_testset_wav")


def find_folder(data_folder, name):
    """``data_folder/name``, or its 16 kHz copy ``name_16k``.

    Arguments
    ---------
    data_folder : str
        The VoiceBank-DEMAND folder.
    name : str
        One of the corpus's folder names.

    Returns
    -------
    str
        The folder found.

    Raises
    ------
    FileNotFoundError
        Naming both spellings that were looked for.
    """
    for candidate in (name, name + "_16k"):
        path = os.path.join(data_folder, candidate)
        if os.path.isdir(path):
            return path
    raise FileNotFoundError(
        f"VoiceBank-DEMAND folder {name} (or {name}_16k) not found in {data_folder}; "
        f"--data_folder must hold {', '.join(TRAIN_FOLDERS + TEST_FOLDERS)}"
    )


def prepare_voicebank(
    data_folder,
    save_folder,
    resampled_folder=None,
    valid_speakers=VOICEBANK_VALID_SPEAKERS,
    skip_prep=False,
):
    """Writes ``train.json``, ``valid.json`` and ``test.json`` in ``save_folder``.

    Arguments
    ---------
    data_folder : str
        The folder holding the four VoiceBank-DEMAND folders.
    save_folder : str
        Where the manifests go.
    resampled_folder : str, optional
        Where 16 kHz copies of 48 kHz files go (default: ``data_folder``).
    valid_speakers : list of str
        Training speakers held out for validation.
    skip_prep : bool
        Only return the paths.

    Returns
    -------
    dict
        Manifest paths and the ``data_root`` / ``resampled_root``
        replacements (see ``prepare_paired``).
    """
    folders = [find_folder(data_folder, name) for name in TRAIN_FOLDERS + TEST_FOLDERS]
    return prepare_paired(
        *folders[:2],
        save_json_train=os.path.join(save_folder, "train.json"),
        save_json_valid=os.path.join(save_folder, "valid.json"),
        save_json_test=os.path.join(save_folder, "test.json"),
        test_noisy_folder=folders[2],
        test_clean_folder=folders[3],
        data_root=data_folder,
        resampled_root=resampled_folder or data_folder,
        valid_speakers=list(valid_speakers),
        skip_prep=skip_prep,
    )
