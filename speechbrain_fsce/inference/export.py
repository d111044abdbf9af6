"""Exports trained FSCE weights as a model folder (see :mod:`speechbrain_fsce.model_folder`).

A **model folder** holds ``model.json`` (the architecture as plain data,
what this package's loader reads), ``enhancer.ckpt`` (the state dict of the
``FSCEEnhancer``) and ``hyperparams.yaml`` (HyperPyYAML from the same
values, for users of plain SpeechBrain; never read by this package's
loader). :mod:`speechbrain_fsce.model_folder` is its home (names, checks,
reading, writing); this module picks the weights of a training run and
their architecture.

The ``hyperparams.yaml``'s ``pretrainer`` lists the ``enhancer`` loadable
without a ``paths`` entry: SpeechBrain then looks for
``<source>/enhancer.ckpt`` in the folder it was asked to load, so a model
folder can be moved, copied or uploaded as it is.

Exports are checked before they are written (the weights must fit the
architecture exactly, every size is bounded) and are atomic: the files go to
a temporary sibling folder that is renamed into place. An existing folder is
replaced only when it is an earlier model folder and ``overwrite`` is given;
a folder holding anything else (a training run, a model card, audio) is
never replaced.

Authors
 * speechbrain-fsce developers
"""

import logging
import pathlib

from speechbrain_fsce.model_folder import (  # noqa: F401  (names of this module's API)
    CKPT_NAME,
    HPARAMS_NAME,
    INTERFACE_KEYS,
    INTERFACE_YAML,
    MODEL_JSON,
    MODEL_YAML,
    ModelFolderError,
    ModelMismatchError,
    architecture_from,
    architecture_keys,
    check_size,
    checkpoint_bound,
    complete_architecture,
    object_keys,
    parse_model_json,
    read_weights,
    read_yaml_data,
    render_hparams,
    write,
)
from speechbrain_fsce.model_folder import build_enhancer as _build_checked

logger = logging.getLogger(__name__)

#: Names a training Checkpointer may have given the enhancer's recoverable.
CHECKPOINT_NAMES = ("enhancer.ckpt", "model.ckpt")
#: The mapping of a recipe yaml that ``!include``-s ``fsce_model.yaml``.
RECIPE_SECTION = "fsce"


def load_state_dict(source, max_bytes=None):
    """Reads a state dict from a ``.ckpt`` path, a dict or a module.

    A file is read with :func:`speechbrain_fsce.model_folder.read_weights`
    (``weights_only``; its size and its zip members' unpacked size bounded
    by ``max_bytes`` before anything is unpacked).

    Arguments
    ---------
    source : str, pathlib.Path, dict or torch.nn.Module
        Checkpoint file (as saved by SpeechBrain's Checkpointer), a state
        dict, or a module whose ``state_dict()`` is taken.
    max_bytes : int, optional
        Bound of a file (default: that of the largest model a folder may
        hold, :data:`~speechbrain_fsce.model_folder.MAX_PARAMETERS`).

    Returns
    -------
    dict
        The state dict (tensors on the CPU when read from a file).

    Example
    -------
    >>> import torch
    >>> sorted(load_state_dict(torch.nn.Linear(2, 1)))
    ['bias', 'weight']
    """
    import torch

    from speechbrain_fsce.model_folder import MAX_CKPT_MEMBERS, MAX_PARAMETERS

    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, dict):
        return source
    if max_bytes is None:
        max_bytes = checkpoint_bound(4 * MAX_PARAMETERS, MAX_CKPT_MEMBERS)
    return read_weights(source, max_bytes)


def key_mismatch(expected_keys, state_dict):
    """Missing and unexpected keys of a state dict.

    Arguments
    ---------
    expected_keys : iterable of str
        Keys the module wants.
    state_dict : dict
        Keys offered.

    Returns
    -------
    (missing, unexpected) : tuple of sorted lists

    Example
    -------
    >>> key_mismatch(["a", "b"], {"b": 0, "c": 1})
    (['a'], ['c'])
    """
    expected, offered = set(expected_keys), set(state_dict)
    return sorted(expected - offered), sorted(offered - expected)


def describe_mismatch(missing, unexpected, limit=5):
    """One readable line about missing/unexpected keys.

    Example
    -------
    >>> describe_mismatch(["a"], [])
    "1 missing key(s) ['a']"
    """
    parts = []
    if missing:
        more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
        parts.append(f"{len(missing)} missing key(s) {missing[:limit]}{more}")
    if unexpected:
        more = f" and {len(unexpected) - limit} more" if len(unexpected) > limit else ""
        parts.append(f"{len(unexpected)} unexpected key(s) {unexpected[:limit]}{more}")
    return "; ".join(parts)


def match_enhancer_keys(enhancer, state_dict, what="checkpoint"):
    """Returns ``state_dict`` keyed as ``enhancer.state_dict()``, or raises.

    A checkpoint of the bare :class:`~speechbrain_fsce.models.FSCE` network
    (keys without the ``model.`` prefix) is accepted too.

    Arguments
    ---------
    enhancer : torch.nn.Module
        The ``FSCEEnhancer`` the weights are for.
    state_dict : dict
        Offered weights.
    what : str
        Name of the source, for the error message.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        When keys are missing or unexpected.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> enh = FSCEEnhancer(FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8))
    >>> bare = enh.model.state_dict()
    >>> len(match_enhancer_keys(enh, bare)) == len(enh.state_dict())
    True
    """
    expected = enhancer.state_dict().keys()
    missing, unexpected = key_mismatch(expected, state_dict)
    if not missing and not unexpected:
        return state_dict
    prefixed = {"model." + k: v for k, v in state_dict.items()}
    if not any(key_mismatch(expected, prefixed)):
        return prefixed
    raise ModelMismatchError(
        f"{what} does not fit the FSCE architecture: "
        f"{describe_mismatch(missing, unexpected)}. Were the architecture "
        "overrides of the training run given (e.g. --hparams <run>/hyperparams.yaml)?"
    )


def build_enhancer(model_overrides=None):
    """A fresh ``FSCEEnhancer`` of the defaults with ``model_overrides``.

    The same construction (and random initialisation) as ``fsce_model.yaml``
    gives, so what is trained from it exports without a mismatch.

    Arguments
    ---------
    model_overrides : dict, optional
        Architecture values (keys of ``fsce_model.yaml``).

    Returns
    -------
    FSCEEnhancer

    Example
    -------
    >>> enhancer = build_enhancer({"causal": True, "num_tcm_modules": 1})
    >>> enhancer.model.causal, sum(p.numel() for p in enhancer.parameters()) < 3214992
    (True, True)
    """
    arch = complete_architecture(model_overrides, what="model overrides")
    check_size(arch, what="model overrides")
    return _build_checked(arch)


def export_model(output_folder, enhancer_state, model_overrides=None, overwrite=False):
    """Writes a model folder: ``model.json``, ``hyperparams.yaml``, ``enhancer.ckpt``.

    The architecture is the defaults with ``model_overrides``, checked and
    bounded; the weights are loaded strictly into it first (a bare ``FSCE``
    state dict is accepted too), so a mismatch fails here and not when the
    model is used. Written atomically by
    :func:`speechbrain_fsce.model_folder.write`: an earlier model folder at
    ``output_folder`` is replaced only with ``overwrite``; a folder holding
    anything else is never replaced (``FileExistsError``).

    Arguments
    ---------
    output_folder : str or pathlib.Path
        The model folder to create.
    enhancer_state : str, pathlib.Path, dict or torch.nn.Module
        ``FSCEEnhancer`` weights: a checkpoint path, a state dict or the
        module.
    model_overrides : dict, optional
        The training run's architecture values (keys of ``fsce_model.yaml``).
    overwrite : bool
        Replace an earlier model folder at ``output_folder``.

    Returns
    -------
    pathlib.Path
        ``output_folder``.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> small = dict(channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...              num_tcm_modules=1, dilations=[1, 2])
    >>> enh = FSCEEnhancer(FSCE(**small))
    >>> folder = export_model(getfixture("tmp_path") / "model", enh, small)
    >>> sorted(p.name for p in folder.iterdir())
    ['enhancer.ckpt', 'hyperparams.yaml', 'model.json']
    """
    arch = complete_architecture(model_overrides, what="model overrides")
    info = check_size(arch, what="model overrides")
    enhancer = _build_checked(arch)
    what = enhancer_state if isinstance(enhancer_state, (str, pathlib.Path)) else "state dict"
    bound = checkpoint_bound(info["state_bytes"], info["tensors"])
    state = match_enhancer_keys(
        enhancer, load_state_dict(enhancer_state, max_bytes=bound), what=str(what)
    )
    from speechbrain_fsce.model_folder import state_difference

    problem = state_difference(enhancer, state)
    if problem:  # shapes differ: wrong widths in the overrides
        raise ModelFolderError(
            f"{what} does not fit the FSCE architecture {dict(model_overrides or {})}: {problem}"
        )
    folder = write(output_folder, state, arch, overwrite=overwrite)
    logger.info("Exported FSCE model folder %s", folder)
    return folder


def find_best_checkpoint(save_folder, max_key="pesq_nb_raw", min_key=None):
    """Picks a checkpoint of a SpeechBrain ``Checkpointer`` folder.

    Arguments
    ---------
    save_folder : str or pathlib.Path
        Folder with ``CKPT+*`` sub-folders (each with ``CKPT.yaml``).
    max_key : str
        Meta key to maximise (ignored when ``min_key`` is given).
    min_key : str, optional
        Meta key to minimise instead.

    Returns
    -------
    checkpoint : speechbrain.utils.checkpoints.Checkpoint
        ``(path, meta, paramfiles)`` of the chosen checkpoint.
    ckpt_file : pathlib.Path
        Its ``enhancer.ckpt`` (or ``model.ckpt``).

    Example
    -------
    >>> find_best_checkpoint("no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no/such/folder: no such checkpoint folder
    """
    from speechbrain.utils.checkpoints import Checkpointer

    save_folder = pathlib.Path(save_folder)
    if not save_folder.is_dir():  # the Checkpointer would create it
        raise FileNotFoundError(f"{save_folder}: no such checkpoint folder")
    checkpointer = Checkpointer(save_folder)
    key = dict(min_key=min_key) if min_key else dict(max_key=max_key)
    ckpt = checkpointer.find_checkpoint(**key)
    if ckpt is None:
        found = len(checkpointer.list_checkpoints())
        raise FileNotFoundError(
            f"{save_folder}: no checkpoint with meta key {min_key or max_key!r} "
            f"({found} checkpoint folder(s) found)"
        )
    for name in CHECKPOINT_NAMES:
        path = pathlib.Path(ckpt.path) / name
        if path.is_file():
            return ckpt, path
    raise FileNotFoundError(
        f"{ckpt.path}: none of {', '.join(CHECKPOINT_NAMES)} in this checkpoint "
        f"(it holds {sorted(p.name for p in pathlib.Path(ckpt.path).iterdir())})"
    )


def export_best(
    save_folder,
    output_folder,
    model_overrides=None,
    max_key="pesq_nb_raw",
    min_key=None,
    overwrite=False,
):
    """Exports the best checkpoint of a training run as a model folder.

    Arguments
    ---------
    save_folder : str or pathlib.Path
        The run's Checkpointer folder (``CKPT+*`` sub-folders).
    output_folder : str or pathlib.Path
        The model folder to write.
    model_overrides : dict, optional
        The run's architecture values (keys of ``fsce_model.yaml``).
    max_key : str
        Meta key to maximise (default: PESQ narrow-band raw).
    min_key : str, optional
        Meta key to minimise instead.
    overwrite : bool
        Replace an earlier model folder at ``output_folder``.

    Returns
    -------
    dict
        ``folder`` (the model folder), ``checkpoint`` (the chosen ``CKPT+``
        folder) and ``meta`` (its meta data).

    Example
    -------
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> small = dict(channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...              num_tcm_modules=1, dilations=[1, 2])
    >>> tmp = getfixture("tmp_path")
    >>> ckpter = Checkpointer(tmp / "save", {"enhancer": FSCEEnhancer(FSCE(**small))})
    >>> for pesq in (1.5, 2.5, 2.0):
    ...     _ = ckpter.save_checkpoint(meta={"pesq_nb_raw": pesq})
    >>> out = export_best(tmp / "save", tmp / "model", small)
    >>> out["meta"]["pesq_nb_raw"], out["folder"].name
    (2.5, 'model')
    """
    ckpt, path = find_best_checkpoint(save_folder, max_key=max_key, min_key=min_key)
    logger.info("Exporting %s (%s)", ckpt.path, ckpt.meta)
    folder = export_model(output_folder, path, model_overrides, overwrite=overwrite)
    return {"folder": folder, "checkpoint": pathlib.Path(ckpt.path), "meta": dict(ckpt.meta)}


def overrides_from_hparams(path, section=RECIPE_SECTION):
    """Reads a training run's architecture values from its ``hyperparams.yaml``.

    The file is read as data (ruamel.yaml round trip: nothing is built or
    imported). One explicit mapping is read: the ``fsce:`` block
    (``section``) of a recipe run's saved yaml (SpeechBrain saves it with
    the ``!include`` and the references resolved), or, for a model folder's
    ``hyperparams.yaml`` (a model yaml: ``enhancer`` at the top level), the
    top level. Nothing is searched for elsewhere in the file. A model
    folder's ``model.json`` (or the folder) gives its whole architecture.

    Arguments
    ---------
    path : str or pathlib.Path
        The run's ``hyperparams.yaml``, or a model folder's ``hyperparams.yaml``
        or ``model.json``, or a model folder.
    section : str
        Name of the block that holds the architecture in a recipe yaml.

    Returns
    -------
    dict
        The architecture values found (plain data; keys not found keep their
        defaults).

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFolderError
        (a ``ValueError``) One line: not readable, no architecture in it, an
        unknown key or a bad value.

    Example
    -------
    >>> p = getfixture("tmp_path") / "hyperparams.yaml"
    >>> _ = p.write_text("seed: 1\\nfsce:\\n  causal: true\\n  channels: 32\\n  model: !new:x.Y\\n")
    >>> overrides_from_hparams(p)
    {'causal': True, 'channels': 32}
    """
    from speechbrain_fsce.model_folder import read_architecture

    path = pathlib.Path(path)
    if path.is_dir():
        return read_architecture(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such hyperparameter file")
    if path.name == MODEL_JSON:
        return read_architecture(path.parent)
    tree = read_yaml_data(path)
    if not isinstance(tree, dict):
        raise ModelFolderError(f"{path}: expected a mapping at the top level")
    if isinstance(tree.get(section), dict):
        mapping, what = tree[section], f"{path} ({section}:)"
    elif "enhancer" in tree:
        mapping, what = tree, str(path)
    else:
        raise ModelFolderError(
            f"{path}: no `{section}:` block (a recipe run's hyperparams.yaml) and no "
            f"top-level `enhancer` (a model yaml): cannot tell its architecture"
        )
    found = architecture_from(mapping, what=what)
    if not found:
        raise ModelFolderError(
            f"{what}: none of the architecture keys ({', '.join(architecture_keys())}) was found"
        )
    return found
