"""The models shipped with the package, and starting a training from a model.

Two trained model folders are installed with the package (package data, no
network needed), under ``speechbrain_fsce/pretrained_models/``:

* ``noncausal`` (:data:`DEFAULT_MODEL`): best quality for files; what
  ``fsce-enhance`` uses when no ``--model`` is given;
* ``causal`` (:data:`STREAMING_MODEL`): zero look-ahead, for streaming
  (``recipes/examples/stream_wav.py``) and ONNX
  (``recipes/examples/stream_onnx.py`` reads its ``onnx/`` sub-folder).

Each is a normal model folder (``model.json`` + ``enhancer.ckpt`` +
``hyperparams.yaml``, see :mod:`speechbrain_fsce.model_folder`) with a
``README.md`` model card. Wherever a model folder is accepted
(``FSCEEnhancement.from_hparams(source=...)``, ``fsce-enhance --model``,
``fsce-export --model``, the recipes' ``--init_from``) one of these names is
accepted too; :func:`resolve_model` turns it into the folder. An existing
local model folder of the same name (holding ``model.json`` and
``enhancer.ckpt``) wins over a shipped name given explicitly; any other
folder of that name does not, and no local folder is looked at when no name
is given (``fsce-enhance`` without ``--model``).

This module imports neither torch nor SpeechBrain at import time, so the
torch-free ONNX example can use it.

Authors
 * speechbrain-fsce developers
"""

import logging
import pathlib

from speechbrain_fsce.model_folder import (
    CKPT_NAME,
    MODEL_FILES,
    ONNX_FOLDER,
    ModelMismatchError,
    architecture_difference,
    check_folder,
    check_size,
    checkpoint_bound,
    load_state,
    read_architecture,
    read_weights,
    show_value,
)

logger = logging.getLogger(__name__)

#: Names of the models installed with the package.
SHIPPED_MODELS = ("noncausal", "causal")
#: The model ``fsce-enhance`` uses without ``--model``.
DEFAULT_MODEL = "noncausal"
#: The model the streaming and ONNX examples use by default.
STREAMING_MODEL = "causal"
__all__ = [
    "DEFAULT_MODEL",
    "MODEL_FILES",
    "ModelMismatchError",
    "ONNX_FOLDER",
    "SHIPPED_MODELS",
    "STREAMING_MODEL",
    "init_from_model",
    "onnx_folder",
    "resolve_model",
    "shipped_models_root",
]


def shipped_models_root():
    """Folder that holds the shipped model folders (one sub-folder per name).

    Returns
    -------
    pathlib.Path
        ``speechbrain_fsce/pretrained_models`` inside the package (from a
        source checkout, an editable install or an installed wheel alike).

    Example
    -------
    >>> root = shipped_models_root()
    >>> root.name, root.parent.name
    ('pretrained_models', 'speechbrain_fsce')
    """
    return pathlib.Path(__file__).resolve().parents[1] / "pretrained_models"


def _names():
    return ", ".join(SHIPPED_MODELS)


def resolve_model(source=None):
    """The local model folder meant by ``source``: a path or a shipped name.

    ``None`` means the shipped :data:`DEFAULT_MODEL`, always the installed
    one (nothing in the current directory is looked at). A shipped name
    (:data:`SHIPPED_MODELS`) maps to its folder under
    :func:`shipped_models_root`, unless a local model folder of that name
    (one holding ``model.json`` and ``enhancer.ckpt``) is in the current
    directory: a folder that merely shares the name (say an output folder
    ``noncausal/``) never hides the shipped model; write ``./noncausal`` to
    mean a local path. Any other existing path is returned as it is.
    Nothing is downloaded.

    Arguments
    ---------
    source : str or pathlib.Path, optional
        A model folder, or ``"noncausal"`` / ``"causal"``.

    Returns
    -------
    pathlib.Path
        The folder (not checked further: the loader says what is missing).

    Raises
    ------
    FileNotFoundError
        One line listing the shipped names: ``source`` is neither an
        existing path nor a shipped name, or it is a shipped name whose
        folder is not installed.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> resolve_model(tmp) == tmp
    True
    >>> resolve_model(tmp / "nope")
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...nope: no such model folder, and not a shipped model name (noncausal, causal)
    """
    installed_only = source is None
    if source is None:
        source = DEFAULT_MODEL
    path = pathlib.Path(source)
    is_model_folder = not installed_only and all((path / n).is_file() for n in MODEL_FILES)
    if (
        not installed_only
        and path.exists()
        and (str(source) not in SHIPPED_MODELS or is_model_folder)
    ):
        return path
    if str(source) in SHIPPED_MODELS:
        folder = shipped_models_root() / str(source)
        missing = [n for n in MODEL_FILES if not (folder / n).is_file()]
        if not missing:
            return folder
        raise FileNotFoundError(
            f"shipped model {str(source)!r} is not installed ({folder} lacks "
            f"{', '.join(missing)}); shipped models: {_names()}; or give a model folder"
        )
    raise FileNotFoundError(
        f"{source}: no such model folder, and not a shipped model name ({_names()})"
    )


def onnx_folder(source=None):
    """The ONNX export inside a model folder (``<model>/onnx/``).

    A shipped name or a model folder gives its ``onnx/`` sub-folder; a
    folder that itself holds ``fsce_onnx.json`` (what ``fsce-export --onnx``
    writes) is returned as it is. ``None`` means :data:`STREAMING_MODEL`.

    Arguments
    ---------
    source : str or pathlib.Path, optional
        An ONNX folder, a model folder with an ``onnx/`` sub-folder, or a
        shipped name.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        One line saying how to write the export when there is none.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "onnx").mkdir(), (tmp / "onnx" / "fsce_onnx.json").write_text("{}")
    >>> onnx_folder(tmp) == tmp / "onnx", onnx_folder(tmp / "onnx") == tmp / "onnx"
    (True, True)
    >>> onnx_folder(tmp / "onnx" / "nope")
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...nope: no such model folder, and not a shipped model name (noncausal, causal)
    """
    folder = resolve_model(STREAMING_MODEL if source is None else source)
    if (folder / "fsce_onnx.json").is_file():
        return folder
    if (folder / ONNX_FOLDER / "fsce_onnx.json").is_file():
        return folder / ONNX_FOLDER
    raise FileNotFoundError(
        f"{folder}: no ONNX export (no fsce_onnx.json in it or in {ONNX_FOLDER}/); write one "
        f"with: fsce-export --model {folder} --onnx {folder / ONNX_FOLDER}"
    )


def init_from_model(enhancer, source, architecture=None, checkpointer=None):
    """Starts a training from the weights of a model folder (``--init_from``).

    Resuming wins: when ``checkpointer`` holds a checkpoint to recover, the
    training continues from it and ``source`` is not read (logged). On a
    fresh start the model folder must describe the same architecture as the
    training (``architecture``; compared key by key, nothing is taken from
    the folder: give the folder's values with ``--fsce="{...}"`` to train
    its architecture), and its weights are loaded strictly. The folder is
    read as data (:mod:`speechbrain_fsce.model_folder`: ``model.json``, and
    ``enhancer.ckpt`` size-bounded with ``weights_only``); its
    ``hyperparams.yaml`` is not read.

    Arguments
    ---------
    enhancer : torch.nn.Module
        The training's ``FSCEEnhancer`` (receives the weights).
    source : str or pathlib.Path
        A model folder or a shipped model name (:func:`resolve_model`).
    architecture : dict, optional
        The training's architecture values; None skips the comparison
        (the weights are still loaded strictly).
    checkpointer : speechbrain.utils.checkpoints.Checkpointer, optional
        The training's checkpointer.

    Returns
    -------
    pathlib.Path or None
        The model folder the weights came from; None when resuming.

    Raises
    ------
    FileNotFoundError
        ``source`` does not exist and is not an installed shipped model.
    ModelFolderError
        One line: ``source`` is not a model folder (a file, a folder
        without ``model.json``, say a training run or a recipe yaml), or
        its ``model.json`` or checkpoint is refused.
    ModelMismatchError
        (a ``ModelFolderError``) One line naming the differing architecture
        keys (with both values) or the missing, unexpected and mis-shaped
        tensors.

    Example
    -------
    >>> import torch
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> from speechbrain_fsce.inference.export import export_model
    >>> small = dict(channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...              num_tcm_modules=1, dilations=[1, 2])
    >>> folder = export_model(getfixture("tmp_path") / "model", FSCEEnhancer(FSCE(**small)), small)
    >>> fresh = FSCEEnhancer(FSCE(**small))
    >>> init_from_model(fresh, folder, small) == folder
    True
    >>> init_from_model(FSCEEnhancer(FSCE(**dict(small, channels=16))), folder, dict(small, channels=16))
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelMismatchError: --init_from ...model: its architecture differs from the training's: channels: 8 in the model folder, 16 in the training (to train its architecture: --fsce="{channels: 8}")
    """
    if checkpointer is not None:
        checkpoint = checkpointer.find_checkpoint()
        if checkpoint is not None:
            logger.info(
                "init_from: %s not used: resuming from the checkpoint %s (resuming wins)",
                source,
                checkpoint.path,
            )
            return None
    folder = resolve_model(source)
    what = f"--init_from {folder}"
    try:
        check_folder(folder, what)
    except FileNotFoundError:
        raise FileNotFoundError(f"--init_from {source}: no such model folder") from None
    arch = read_architecture(folder, what)
    if architecture is not None:
        differ = architecture_difference(arch, architecture)
        if differ:
            listed = "; ".join(
                f"{k}: {show_value(a)} in the model folder, {show_value(b)} in the training"
                for k, (a, b) in differ.items()
            )
            override = ", ".join(f"{k}: {show_value(a)}" for k, (a, _) in differ.items())
            raise ModelMismatchError(
                f"{what}: its architecture differs from the training's: {listed} "
                f'(to train its architecture: --fsce="{{{override}}}")'
            )
    info = check_size(arch, what)
    bound = checkpoint_bound(info["state_bytes"], info["tensors"])
    state = read_weights(folder / CKPT_NAME, bound, what=f"{what}: {CKPT_NAME}")
    load_state(enhancer, state, what=what)
    logger.info("init_from: training starts from the weights of %s", folder)
    return folder
