"""The models shipped with the package, and starting a training from a model.

Two trained model folders are installed with the package (package data, no
network needed), under ``speechbrain_fsce/pretrained_models/``:

* ``noncausal`` (:data:`DEFAULT_MODEL`): best quality for files; what
  ``fsce-enhance`` uses when no ``--model`` is given;
* ``causal`` (:data:`STREAMING_MODEL`): zero look-ahead, for streaming
  (``recipes/examples/stream_wav.py``) and ONNX
  (``recipes/examples/stream_onnx.py`` reads its ``onnx/`` sub-folder).

Each is a normal model folder (``hyperparams.yaml`` + ``enhancer.ckpt``, as
:func:`~speechbrain_fsce.inference.export.export_model` writes them) with a
``README.md`` model card. Wherever a model folder is accepted
(``FSCEEnhancement.from_hparams(source=...)``, ``fsce-enhance --model``,
``fsce-export --model``, the recipes' ``--init_from``) one of these names is
accepted too; :func:`resolve_model` turns it into the folder. An existing
local model folder of the same name (holding ``hyperparams.yaml`` and
``enhancer.ckpt``) wins over a shipped name; any other folder of that name
does not.

This module imports neither torch nor SpeechBrain at import time, so the
torch-free ONNX example can use it.

Authors
 * speechbrain-fsce developers
"""

import logging
import pathlib

logger = logging.getLogger(__name__)

#: Names of the models installed with the package.
SHIPPED_MODELS = ("noncausal", "causal")
#: The model ``fsce-enhance`` uses without ``--model``.
DEFAULT_MODEL = "noncausal"
#: The model the streaming and ONNX examples use by default.
STREAMING_MODEL = "causal"
#: Sub-folder of a model folder holding its ONNX export (``fsce-export --onnx``).
ONNX_FOLDER = "onnx"
#: Files a model folder must hold (``export.HPARAMS_NAME``, ``export.CKPT_NAME``).
MODEL_FILES = ("hyperparams.yaml", "enhancer.ckpt")


class ModelMismatchError(ValueError):
    """A model folder whose architecture or weights do not fit the model to start.

    Arguments
    ---------
    message : str
        One line naming the model folder and the differing keys.

    Example
    -------
    >>> isinstance(ModelMismatchError("x"), ValueError)
    True
    """


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

    ``None`` means the shipped :data:`DEFAULT_MODEL`. A shipped name
    (:data:`SHIPPED_MODELS`) maps to its folder under
    :func:`shipped_models_root`, unless a local model folder of that name
    (one holding ``hyperparams.yaml`` and ``enhancer.ckpt``) is in the
    current directory: a folder that merely shares the name (say an output
    folder ``noncausal/``) never hides the shipped model; write
    ``./noncausal`` to mean a local path. Any other existing path is
    returned as it is. Nothing is downloaded.

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
    if source is None:
        source = DEFAULT_MODEL
    path = pathlib.Path(source)
    is_model_folder = all((path / n).is_file() for n in MODEL_FILES)
    if path.exists() and (str(source) not in SHIPPED_MODELS or is_model_folder):
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


def _plain(value):
    """Comparable form of an architecture value (tuples as lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def architecture_difference(first, second):
    """Architecture keys whose values differ (missing keys take their defaults).

    Arguments
    ---------
    first, second : dict
        Architecture values (keys of ``hparams/fsce_model.yaml``).

    Returns
    -------
    dict
        Key -> ``(first value, second value)``, in the order of
        ``fsce_model.yaml``.

    Example
    -------
    >>> architecture_difference({"channels": 8, "causal": False}, {"channels": 16})
    {'channels': (8, 16)}
    >>> architecture_difference({"dilations": (1, 2)}, {"dilations": [1, 2]})
    {}
    """
    from speechbrain_fsce.inference.export import architecture_keys

    defaults = architecture_keys()
    first, second = {**defaults, **first}, {**defaults, **second}
    return {
        key: (first[key], second[key])
        for key in defaults
        if _plain(first[key]) != _plain(second[key])
    }


def _shown(value):
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def init_from_model(enhancer, source, architecture=None, checkpointer=None):
    """Starts a training from the weights of a model folder (``--init_from``).

    Resuming wins: when ``checkpointer`` holds a checkpoint to recover, the
    training continues from it and ``source`` is not read (logged). On a
    fresh start the model folder must describe the same architecture as the
    training (``architecture``; compared key by key, nothing is taken from
    the folder: give the folder's values with ``--fsce="{...}"`` to train
    its architecture), and its weights are loaded strictly, safely
    (``weights_only``; the YAML is checked, and no object of it is built).

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
        ``source`` is not a model folder nor an installed shipped model.
    ModelMismatchError
        One line naming the differing architecture keys (with both values)
        or the missing, unexpected and mis-shaped tensors.

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
    speechbrain_fsce.inference.shipped.ModelMismatchError: --init_from ...model: its architecture differs from the training's: channels: 8 in the model folder, 16 in the training (to train its architecture: --fsce="{channels: 8}")
    """
    from speechbrain_fsce.inference.export import CKPT_NAME, HPARAMS_NAME, overrides_from_hparams
    from speechbrain_fsce.safe_loading import check_hparams_text, load_weights, read_checkpoint

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
    missing = [n for n in (HPARAMS_NAME, CKPT_NAME) if not (folder / n).is_file()]
    if not folder.is_dir() or missing:
        raise FileNotFoundError(
            f"--init_from {source}: not an FSCE model folder "
            f"(missing {', '.join(missing) if folder.is_dir() else 'the folder'})"
        )
    what = f"--init_from {folder}"
    if architecture is not None:
        check_hparams_text((folder / HPARAMS_NAME).read_text(encoding="utf-8"), what)
        differ = architecture_difference(
            overrides_from_hparams(folder / HPARAMS_NAME), architecture
        )
        if differ:
            listed = "; ".join(
                f"{k}: {_shown(a)} in the model folder, {_shown(b)} in the training"
                for k, (a, b) in differ.items()
            )
            override = ", ".join(f"{k}: {_shown(a)}" for k, (a, _) in differ.items())
            raise ModelMismatchError(
                f"{what}: its architecture differs from the training's: {listed} "
                f'(to train its architecture: --fsce="{{{override}}}")'
            )
    try:
        load_weights(enhancer, read_checkpoint(folder / CKPT_NAME), what=what)
    except ValueError as err:
        raise ModelMismatchError(str(err)) from None
    logger.info("init_from: training starts from the weights of %s", folder)
    return folder
