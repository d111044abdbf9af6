"""Exports trained FSCE weights as a self-contained pretrained-model folder.

A **model folder** holds two files:

* ``hyperparams.yaml``: ``hparams/fsce_model.yaml`` with the training run's
  architecture values in its top-level keys (the objects still ``!ref``
  them; nothing is ``!include``-d from the repository), followed by the
  interface part that
  :class:`speechbrain.inference.interfaces.Pretrained` needs (``modules`` and
  ``pretrainer``);
* ``enhancer.ckpt``: the state dict of the ``FSCEEnhancer`` module.

The ``pretrainer`` lists the ``enhancer`` loadable without a ``paths`` entry:
SpeechBrain then looks for ``<source>/enhancer.ckpt`` in the folder it was
asked to load, so a model folder can be moved, copied or uploaded as it is
(a relative path would be read relative to the *current directory*, and an
absolute one would silently keep pointing at the old place).

Exports are checked before they are written (the weights must fit the
architecture exactly) and are atomic: the files go to a temporary sibling
folder that is renamed into place.

Authors
 * speechbrain-fsce developers
"""

import io
import logging
import os
import pathlib
import shutil
import tempfile

import torch
import yaml
from hyperpyyaml import load_hyperpyyaml

from speechbrain_fsce.resources import hparams_file

logger = logging.getLogger(__name__)

MODEL_YAML = "fsce_model.yaml"
HPARAMS_NAME = "hyperparams.yaml"
CKPT_NAME = "enhancer.ckpt"
#: Names a training Checkpointer may have given the enhancer's recoverable.
CHECKPOINT_NAMES = ("enhancer.ckpt", "model.ckpt")

INTERFACE_YAML = """
# ----------------------------------------------------------------------------
# Pretrained interface (speechbrain_fsce.inference.FSCEEnhancement).
# No `paths`: the Pretrainer loads <model folder>/enhancer.ckpt, wherever the
# folder has been moved to.
# ----------------------------------------------------------------------------
modules:
    enhancer: !ref <enhancer>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        enhancer: !ref <enhancer>
"""


class _TolerantLoader(yaml.SafeLoader):
    """Safe YAML loader that reads HyperPyYAML tags as plain YAML values."""


def _construct_tagged(loader, tag_suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    value = loader.construct_scalar(node)
    if tag_suffix.startswith("ref") or tag_suffix.startswith("copy"):
        return _Unresolved(value)
    return value


class _Unresolved(str):
    """A ``!ref``/``!copy`` left in a YAML that should have been resolved."""


_TolerantLoader.add_multi_constructor("!", _construct_tagged)


def architecture_keys():
    """Top-level keys of ``fsce_model.yaml`` that define the architecture.

    These are the plain values (numbers, strings, lists) that the
    ``front_end``, ``model`` and ``enhancer`` objects are built from; a
    training run that changed any of them must export with the same values.

    Returns
    -------
    dict
        Key -> default value, in file order.

    Example
    -------
    >>> keys = architecture_keys()
    >>> keys["causal"], keys["channels"], "model" in keys
    (False, 64, False)
    """
    with open(hparams_file(MODEL_YAML), encoding="utf-8") as f:
        tree = yaml.load(f, Loader=_TolerantLoader)
    return {
        key: value
        for key, value in tree.items()
        if isinstance(value, (bool, int, float, str, list)) and not isinstance(value, _Unresolved)
    }


def _check_overrides(model_overrides):
    overrides = dict(model_overrides or {})
    known = architecture_keys()
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(
            f"Unknown model override(s) {unknown}; the architecture keys of "
            f"{MODEL_YAML} are: {', '.join(known)}"
        )
    return overrides


def render_hparams(model_overrides=None):
    """Text of a model folder's ``hyperparams.yaml``.

    ``fsce_model.yaml`` is rewritten with the override values in its
    top-level keys (a round trip through ruamel.yaml, which keeps the
    ``!new:``/``!ref`` tags and comments), so the objects still refer to those
    keys and ``from_hparams(..., overrides=...)`` keeps working on them.

    Arguments
    ---------
    model_overrides : dict, optional
        Architecture values of the training run (keys of
        :func:`architecture_keys`), e.g. ``{"causal": True}``.

    Returns
    -------
    str
        Self-contained HyperPyYAML: model definition + interface part.

    Example
    -------
    >>> text = render_hparams({"causal": True, "dilations": [1, 2]})
    >>> "causal: true" in text, "dilations: [1, 2]" in text, "!include" in text
    (True, True, False)
    >>> "pretrainer:" in text and "causal: !ref <causal>" in text
    True
    """
    import ruamel.yaml
    from ruamel.yaml.comments import CommentedSeq

    overrides = _check_overrides(model_overrides)
    rt = ruamel.yaml.YAML()  # round trip: tags, references and comments kept
    with open(hparams_file(MODEL_YAML), encoding="utf-8") as f:
        tree = rt.load(f)
    for key, value in overrides.items():
        if isinstance(value, (list, tuple)):
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        tree[key] = value
    stream = io.StringIO()
    rt.dump(tree, stream)
    # Drop the source file's banner (it describes the repository file).
    lines = stream.getvalue().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    body = [line for line in lines if not line.lstrip().startswith("#")]
    if any("!include" in line for line in body):
        raise ValueError(f"{MODEL_YAML} includes other files; an exported model must be self-contained")
    return "\n".join(lines).rstrip("\n") + "\n" + INTERFACE_YAML


def load_state_dict(source):
    """Reads a state dict from a ``.ckpt`` path, a dict or a module.

    Arguments
    ---------
    source : str, pathlib.Path, dict or torch.nn.Module
        Checkpoint file (as saved by SpeechBrain's Checkpointer), a state
        dict, or a module whose ``state_dict()`` is taken.

    Returns
    -------
    dict
        The state dict (tensors on the CPU when read from a file).

    Example
    -------
    >>> sorted(load_state_dict(torch.nn.Linear(2, 1)))
    ['bias', 'weight']
    """
    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, dict):
        return source
    path = pathlib.Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


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
    raise ValueError(
        f"{what} does not fit the FSCE architecture: "
        f"{describe_mismatch(missing, unexpected)}. Were the architecture "
        "overrides of the training run given (e.g. --hparams <run>/hyperparams.yaml)?"
    )


def _build_enhancer(text):
    return load_hyperpyyaml(io.StringIO(text))["enhancer"]


def _replace_folder(tmp, output_folder):
    """Moves ``tmp`` to ``output_folder``, replacing an earlier export."""
    if not output_folder.exists():
        os.rename(tmp, output_folder)
        return
    if not output_folder.is_dir():
        raise FileExistsError(f"{output_folder} exists and is not a folder")
    entries = os.listdir(output_folder)
    if entries and HPARAMS_NAME not in entries:
        raise FileExistsError(
            f"{output_folder} exists and is not a model folder (no {HPARAMS_NAME}); "
            "refusing to replace it"
        )
    backup = pathlib.Path(tempfile.mkdtemp(dir=output_folder.parent, prefix=f".{output_folder.name}.old-"))
    os.rmdir(backup)
    os.rename(output_folder, backup)
    try:
        os.rename(tmp, output_folder)
    except BaseException:
        os.rename(backup, output_folder)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def export_model(output_folder, enhancer_state, model_overrides=None):
    """Writes a model folder: ``hyperparams.yaml`` + ``enhancer.ckpt``.

    The weights are loaded strictly into the architecture first, so a
    mismatch fails here and not when the model is used. The folder is written
    under a temporary name next to ``output_folder`` and renamed into place;
    an earlier export at ``output_folder`` is replaced, any other existing
    non-empty folder is left alone (``FileExistsError``).

    Arguments
    ---------
    output_folder : str or pathlib.Path
        The model folder to create.
    enhancer_state : str, pathlib.Path, dict or torch.nn.Module
        ``FSCEEnhancer`` weights: a checkpoint path, a state dict or the
        module (a bare ``FSCE`` state dict is accepted too).
    model_overrides : dict, optional
        The training run's architecture values (keys of ``fsce_model.yaml``).

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
    ['enhancer.ckpt', 'hyperparams.yaml']
    """
    output_folder = pathlib.Path(output_folder).absolute()
    text = render_hparams(model_overrides)
    enhancer = _build_enhancer(text)
    what = enhancer_state if isinstance(enhancer_state, (str, pathlib.Path)) else "state dict"
    state = match_enhancer_keys(enhancer, load_state_dict(enhancer_state), what=str(what))
    try:
        enhancer.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shapes differ: wrong widths in the overrides
        raise ValueError(
            f"{what} does not fit the FSCE architecture {dict(model_overrides or {})}: {err}"
        ) from None

    output_folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=output_folder.parent, prefix=f".{output_folder.name}.tmp-"))
    try:
        header = (
            "# " + "#" * 76 + "\n"
            "# FSCE pretrained model (Tai et al., arXiv:2110.05713), written by\n"
            "# speechbrain_fsce.inference.export. Load it with\n"
            "#   FSCEEnhancement.from_hparams(source=<this folder>)\n"
            "# (speechbrain_fsce.inference) or use it with `fsce-enhance --model`.\n"
            "# " + "#" * 76 + "\n\n"
        )
        with open(tmp / HPARAMS_NAME, "w", encoding="utf-8") as f:
            f.write(header + text)
        torch.save(enhancer.state_dict(), tmp / CKPT_NAME)
        _replace_folder(tmp, output_folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Exported FSCE model folder %s", output_folder)
    return output_folder


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


def export_best(save_folder, output_folder, model_overrides=None, max_key="pesq_nb_raw", min_key=None):
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
    folder = export_model(output_folder, path, model_overrides)
    return {"folder": folder, "checkpoint": pathlib.Path(ckpt.path), "meta": dict(ckpt.meta)}


def overrides_from_hparams(path):
    """Reads a training run's architecture values from its ``hyperparams.yaml``.

    The saved YAML of a SpeechBrain run has its references resolved. Each
    architecture key (see :func:`architecture_keys`) is looked up breadth
    first: at the top level, else in the shallowest mapping that has it
    (e.g. a section that ``!include``-d ``fsce_model.yaml``).

    Arguments
    ---------
    path : str or pathlib.Path
        The run's ``hyperparams.yaml``.

    Returns
    -------
    dict
        The architecture values found (keys not found keep their defaults).

    Example
    -------
    >>> p = getfixture("tmp_path") / "hyperparams.yaml"
    >>> _ = p.write_text("seed: 1\\ncausal: true\\nmodel: !new:x.Y\\n  channels: 32\\n")
    >>> overrides_from_hparams(p)
    {'causal': True, 'channels': 32}
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such hyperparameter file")
    with open(path, encoding="utf-8") as f:
        try:
            tree = yaml.load(f, Loader=_TolerantLoader)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not a readable YAML file ({err})") from err
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    keys = architecture_keys()
    found, level = {}, [tree]
    while level and len(found) < len(keys):
        nxt = []
        for mapping in level:
            for key, value in mapping.items():
                if key in keys and key not in found and not isinstance(value, dict):
                    if isinstance(value, _Unresolved):
                        raise ValueError(f"{path}: {key} is an unresolved reference {value!r}")
                    found[key] = value
                if isinstance(value, dict):
                    nxt.append(value)
                elif isinstance(value, list):
                    nxt.extend(v for v in value if isinstance(v, dict))
        level = nxt
    if not found:
        raise ValueError(f"{path}: none of the architecture keys ({', '.join(keys)}) was found")
    return {k: found[k] for k in keys if k in found}
