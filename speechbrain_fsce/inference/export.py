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

import importlib
import io
import logging
import os
import pathlib

import ruamel.yaml
import torch
from hyperpyyaml import load_hyperpyyaml
from ruamel.yaml.comments import CommentedSeq, TaggedScalar

from speechbrain_fsce.fileio import atomic_folder
from speechbrain_fsce.resources import hparams_file

logger = logging.getLogger(__name__)

MODEL_YAML = "fsce_model.yaml"
HPARAMS_NAME = "hyperparams.yaml"
CKPT_NAME = "enhancer.ckpt"
#: Names a training Checkpointer may have given the enhancer's recoverable.
CHECKPOINT_NAMES = ("enhancer.ckpt", "model.ckpt")
#: The mapping of a recipe yaml that ``!include``-s ``fsce_model.yaml``.
RECIPE_SECTION = "fsce"

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
#: Keys of a model folder's ``hyperparams.yaml`` that are not architecture.
INTERFACE_KEYS = ("modules", "pretrainer")


def _load_yaml(stream):
    """Round-trip load (ruamel.yaml, as HyperPyYAML): tags kept, nothing built."""
    return ruamel.yaml.YAML().load(stream)


def _tag(node):
    tag = getattr(node, "tag", None)
    return getattr(tag, "value", None) or ""


def _named(tag, where):
    """The object a ``!name:module.attr`` tag points to."""
    module, _, attr = tag[len("!name:") :].rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"{where}: cannot import {tag!r} ({err})") from None


def _from_yaml(node, where):
    """Plain Python value of a loaded YAML value (``!name:`` imported)."""
    tag = _tag(node)
    if tag.startswith("!name:"):
        return _named(tag, where)
    if tag in ("!ref", "!copy"):
        raise ValueError(f"{where} is an unresolved reference {tag} {node.value}")
    if tag:
        raise ValueError(f"{where} is {tag} {getattr(node, 'value', '')}: expected a plain value")
    if isinstance(node, list):
        return [_from_yaml(v, where) for v in node]
    return node


def _to_yaml(value):
    """YAML node of an architecture value (classes as ``!name:``, lists in flow style)."""
    if isinstance(value, type) or callable(value):
        return TaggedScalar("", tag=f"!name:{value.__module__}.{value.__qualname__}")
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq([_to_yaml(v) for v in value])
        seq.fa.set_flow_style()
        return seq
    return value


def _plain(value):
    """Comparable form: tuples as lists, recursively."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _model_tree():
    with open(hparams_file(MODEL_YAML), encoding="utf-8") as f:
        return _load_yaml(f)


def object_keys():
    """Top-level keys of ``fsce_model.yaml`` that build objects (``!new:``).

    Example
    -------
    >>> object_keys()
    ('front_end', 'model', 'enhancer')
    """
    return tuple(k for k, v in _model_tree().items() if _tag(v).startswith("!new:"))


def architecture_keys():
    """Top-level keys of ``fsce_model.yaml`` that define the architecture.

    Every value the ``front_end``, ``model`` and ``enhancer`` objects are
    built from (numbers, strings, lists, ``null``, and classes given as
    ``!name:``); a training run that changed any of them must export with the
    same values. Every argument of :class:`~speechbrain_fsce.models.FSCE` is
    one of them (a consistency test checks it).

    Returns
    -------
    dict
        Key -> default value, in file order (``!name:`` values imported).

    Example
    -------
    >>> keys = architecture_keys()
    >>> keys["causal"], keys["channels"], keys["kernel_sizes"][0], "model" in keys
    (False, 64, [2, 5], False)
    >>> keys["activation"].__name__
    'PReLU'
    """
    tree = _model_tree()
    objects = object_keys()
    return {
        key: _from_yaml(value, f"{MODEL_YAML}: {key}")
        for key, value in tree.items()
        if key not in objects
    }


def architecture_from(mapping, what="hparams"):
    """The architecture values of one explicit mapping, checked.

    ``mapping`` is the ``fsce:`` block of a recipe's hparams (loaded, or read
    from a run's saved ``hyperparams.yaml``) or the top level of a model
    yaml. Its object keys (``front_end``, ``model``, ``enhancer``, and
    ``modules`` / ``pretrainer`` of a model folder) are skipped; any other key
    must be an architecture key, so a misspelt override fails here instead of
    being ignored.

    Arguments
    ---------
    mapping : dict
        Key -> value (plain values, or loaded objects, e.g. classes).
    what : str
        Name of the mapping, for the error messages.

    Returns
    -------
    dict
        Architecture key -> value, in the order of ``fsce_model.yaml``.

    Raises
    ------
    ValueError
        On an unknown key or an unresolved ``!ref``.

    Example
    -------
    >>> architecture_from({"causal": True, "channels": 32, "model": object()})
    {'causal': True, 'channels': 32}
    >>> architecture_from({"chanels": 32}, what="--fsce")
    Traceback (most recent call last):
    ...
    ValueError: --fsce: unknown architecture key(s) ['chanels']; the keys of fsce_model.yaml are: ...
    """
    known = architecture_keys()
    skip = set(object_keys()) | set(INTERFACE_KEYS)
    unknown = sorted(str(k) for k in mapping if k not in known and k not in skip)
    if unknown:
        raise ValueError(
            f"{what}: unknown architecture key(s) {unknown}; the keys of "
            f"{MODEL_YAML} are: {', '.join(known)}"
        )
    found = {}
    for key in known:
        if key in mapping:
            found[key] = _from_yaml(mapping[key], f"{what}: {key}")
    return found


def render_hparams(model_overrides=None):
    """Text of a model folder's ``hyperparams.yaml``.

    ``fsce_model.yaml`` is rewritten with the override values in its
    top-level keys (a ruamel.yaml round trip, which keeps the
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
    overrides = architecture_from(model_overrides or {}, what="model overrides")
    defaults = architecture_keys()
    rt = ruamel.yaml.YAML()  # round trip: tags, references and comments kept
    with open(hparams_file(MODEL_YAML), encoding="utf-8") as f:
        tree = rt.load(f)
    for key, value in overrides.items():
        if _plain(value) != _plain(defaults[key]):  # keep the file's text otherwise
            tree[key] = _to_yaml(value)
    stream = io.StringIO()
    rt.dump(tree, stream)
    # Drop the source file's banner (it describes the repository file).
    lines = stream.getvalue().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    body = [line for line in lines if not line.lstrip().startswith("#")]
    if any("!include" in line for line in body):
        raise ValueError(
            f"{MODEL_YAML} includes other files; an exported model must be self-contained"
        )
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


def build_enhancer(model_overrides=None):
    """A fresh ``FSCEEnhancer`` of ``fsce_model.yaml`` with ``model_overrides``.

    The same construction as an exported folder's ``hyperparams.yaml``, so
    what is trained from it exports without a mismatch.

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
    return _build_enhancer(render_hparams(model_overrides))


def _check_replaceable(output_folder):
    """Raises unless ``output_folder`` is absent, empty or an earlier export."""
    if not output_folder.exists():
        return
    if not output_folder.is_dir():
        raise FileExistsError(f"{output_folder} exists and is not a folder")
    entries = os.listdir(output_folder)
    if entries and HPARAMS_NAME not in entries:
        raise FileExistsError(
            f"{output_folder} exists and is not a model folder (no {HPARAMS_NAME}); "
            "refusing to replace it"
        )


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

    _check_replaceable(output_folder)
    with atomic_folder(output_folder) as tmp:  # normal permissions, renamed when complete
        tmp = pathlib.Path(tmp)
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


def export_best(
    save_folder, output_folder, model_overrides=None, max_key="pesq_nb_raw", min_key=None
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


def overrides_from_hparams(path, section=RECIPE_SECTION):
    """Reads a training run's architecture values from its ``hyperparams.yaml``.

    One explicit mapping is read: the ``fsce:`` block (``section``) of a
    recipe run's saved yaml (SpeechBrain saves it with the ``!include`` and
    the references resolved), or, for a model folder's ``hyperparams.yaml``
    (a model yaml: ``enhancer`` at the top level), the top level. Nothing is
    searched for elsewhere in the file.

    Arguments
    ---------
    path : str or pathlib.Path
        The run's ``hyperparams.yaml`` (or a model folder's).
    section : str
        Name of the block that holds the architecture in a recipe yaml.

    Returns
    -------
    dict
        The architecture values found (keys not found keep their defaults).

    Example
    -------
    >>> p = getfixture("tmp_path") / "hyperparams.yaml"
    >>> _ = p.write_text("seed: 1\\nfsce:\\n  causal: true\\n  channels: 32\\n  model: !new:x.Y\\n")
    >>> overrides_from_hparams(p)
    {'causal': True, 'channels': 32}
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such hyperparameter file")
    with open(path, encoding="utf-8") as f:
        try:
            tree = _load_yaml(f)
        except ruamel.yaml.YAMLError as err:
            raise ValueError(f"{path}: not a readable YAML file ({err})") from err
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    if isinstance(tree.get(section), dict):
        mapping, what = tree[section], f"{path} ({section}:)"
    elif "enhancer" in tree:
        mapping, what = tree, str(path)
    else:
        raise ValueError(
            f"{path}: no `{section}:` block (a recipe run's hyperparams.yaml) and no "
            f"top-level `enhancer` (a model yaml): cannot tell its architecture"
        )
    found = architecture_from(mapping, what=what)
    if not found:
        raise ValueError(
            f"{what}: none of the architecture keys ({', '.join(architecture_keys())}) was found"
        )
    return found
