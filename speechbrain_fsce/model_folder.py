"""The model folder: its files, and reading, checking and writing them as data.

A **model folder** is what the recipes and ``fsce-export`` write and what
``FSCEEnhancement.from_hparams``, ``fsce-enhance --model``, ``fsce-export
--model``, the recipes' ``--init_from`` and the shipped names
(``noncausal``, ``causal``) read. This module is its one home: the names of
its files, the checks, reading, writing, and the strict loading of weights.
It sits below :mod:`speechbrain_fsce.inference` and the CLI and imports
nothing from them (nor torch at import time: the torch-free ONNX example
uses the names).

Files
-----
* ``model.json`` (:data:`MODEL_JSON`): the architecture as plain data, e.g.
  ``{"format": "speechbrain-fsce model folder", "version": 1,
  "architecture": {"sample_rate": 16000, "channels": 32, ...,
  "activation": "PReLU", ...}}``. Every key of :func:`architecture_keys`
  is required and no other is accepted.
* ``enhancer.ckpt`` (:data:`CKPT_NAME`): the ``FSCEEnhancer`` state dict
  (``torch.save``), tensors only.
* ``hyperparams.yaml`` (:data:`HPARAMS_NAME`): HyperPyYAML built from the
  same values (:func:`render_hparams`), so that users of plain SpeechBrain
  can ``Pretrained.from_hparams`` the folder. **This package's loader never
  reads it.**
* optionally ``onnx/`` (``fsce-export --onnx``) and ``README.md`` (a model
  card of the shipped models); the loader reads neither.

Why ``model.json`` rather than the plain keys of ``hyperparams.yaml``
--------------------------------------------------------------------
JSON has no tags, references, anchors or aliases, merge keys or implicit
types: ``json.loads`` can only return dicts, lists, strings, numbers,
booleans and null, so the text cannot name a Python object, call anything,
or expand (YAML aliases grow exponentially). The ``hyperparams.yaml`` that
plain SpeechBrain needs is HyperPyYAML *code* (``!new:``, ``!ref``,
``!name:``): reading "only its plain keys" would leave the objects that
SpeechBrain builds from it unread, so what we load and what SpeechBrain
runs could disagree, and a text-level allow list over it can be bypassed
(a ``!ref`` that joins strings into a tag; issue 17). So the architecture
lives in its own data file, and the YAML is only written, from the same
values, never read back by the safe loader.

What the loader refuses (one line naming the file, :class:`ModelFolderError`)
-----------------------------------------------------------------------------
* ``model.json``: over :data:`MAX_JSON_BYTES`; not UTF-8 JSON; duplicate
  keys; ``NaN``/``Infinity``; a missing or unknown key; a value of the
  wrong type (``true`` is not a number, ``1.5`` not a whole number) or out
  of its range (:data:`ARCHITECTURE`, e.g. ``channels`` 1 to 1024); more
  than :data:`MAX_TCM_BLOCKS` S-TCM blocks; a receptive field over
  :data:`MAX_RECEPTIVE_FRAMES`; more than :data:`MAX_PARAMETERS`
  parameters (counted on torch's ``meta`` device: no memory is allocated
  for a refused size).
* ``enhancer.ckpt``: larger than a checkpoint of that architecture can be
  (:func:`checkpoint_bound`), or whose zip members declare more bytes
  than that (checked with ``zipfile`` before anything is unpacked: a
  zip bomb is refused at its directory); not a ``torch.save`` archive;
  pickled objects besides tensors (``torch.load(weights_only=True)``,
  nothing is unpickled); missing, unexpected, mis-shaped or other-dtype
  tensors, NaN/Inf weights. After loading, every tensor of the module is
  compared with the file's (values, not only names).

Executing a folder's ``hyperparams.yaml`` stays possible only as an
explicit opt-in: ``FSCEEnhancement.from_hparams(..., trusted=True)``,
``fsce-enhance --unsafe-load``, ``fsce-export --model ... --unsafe-load``.

Folders written before ``model.json`` existed hold only
``hyperparams.yaml`` + ``enhancer.ckpt``; ``fsce-export --upgrade <folder>``
(:func:`upgrade`) adds their ``model.json`` after checking that their YAML
is exactly what the exporter writes for its plain values (read as data with
ruamel.yaml, never run).

Authors
 * speechbrain-fsce developers
"""

import io
import json
import math
import os
import pathlib
import zipfile

#: The architecture (plain data, the only file the loader reads besides the weights).
MODEL_JSON = "model.json"
#: The ``FSCEEnhancer`` weights.
CKPT_NAME = "enhancer.ckpt"
#: HyperPyYAML for plain SpeechBrain users; written, never read by the safe loader.
HPARAMS_NAME = "hyperparams.yaml"
#: Sub-folder holding the ONNX export (``fsce-export --onnx``).
ONNX_FOLDER = "onnx"
#: Model card of a shipped model.
README_NAME = "README.md"
#: Files the safe loader needs.
MODEL_FILES = (MODEL_JSON, CKPT_NAME)
#: Files an export writes.
EXPORT_FILES = (MODEL_JSON, HPARAMS_NAME, CKPT_NAME)
#: Files of an ONNX export (``onnx/``).
ONNX_FILES = ("fsce_onnx.json", "fsce_offline.onnx", "fsce_stream.onnx")
#: Names of a model folder written before ``model.json`` existed.
LEGACY_FILES = (HPARAMS_NAME, CKPT_NAME)

#: ``model.json``'s ``format`` and ``version``.
FORMAT = "speechbrain-fsce model folder"
VERSION = 1

#: Largest ``model.json`` read.
MAX_JSON_BYTES = 64 * 1024
#: Largest ``hyperparams.yaml`` read as data (:func:`upgrade`, run yamls).
MAX_YAML_BYTES = 1 << 20
#: Most parameters a model folder may hold (the published FSCE has 3.2 M).
MAX_PARAMETERS = 50_000_000
#: Widest receptive field, in frames, past and future together (published: 766).
MAX_RECEPTIVE_FRAMES = 16384
#: Most S-TCM blocks (``num_tcm_modules`` x ``len(dilations)``; published: 18).
MAX_TCM_BLOCKS = 64
#: Most members in a checkpoint archive.
MAX_CKPT_MEMBERS = 20000

#: Activations a model folder may name (classes of ``torch.nn``).
ACTIVATIONS = ("PReLU", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Tanh")
#: Architecture keys that configure the front end; the others configure ``FSCE``.
FRONT_END_KEYS = (
    "sample_rate",
    "win_length",
    "hop_length",
    "n_fft",
    "window",
    "compression",
    "normalize_level",
)
#: Top-level keys of ``fsce_model.yaml`` that build objects.
OBJECT_KEYS = ("front_end", "model", "enhancer")
#: Keys of a model folder's ``hyperparams.yaml`` that are not architecture.
INTERFACE_KEYS = ("modules", "pretrainer")
#: Template of the model (and of the recipes' ``fsce:`` block).
MODEL_YAML = "fsce_model.yaml"

UNSAFE_HINT = (
    "model folders are read as data; to run the code of a folder you trust, "
    "load it with trusted=True (--unsafe-load)"
)

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

HPARAMS_HEADER = (
    "# " + "#" * 76 + "\n"
    "# FSCE pretrained model (Tai et al., arXiv:2110.05713), written by\n"
    "# speechbrain_fsce.inference.export. Load it with\n"
    "#   FSCEEnhancement.from_hparams(source=<this folder>)\n"
    "# (speechbrain_fsce.inference) or use it with `fsce-enhance --model`.\n"
    "# " + "#" * 76 + "\n\n"
)


class ModelFolderError(ValueError):
    """A model folder (or checkpoint) that is refused; the message is one line.

    Arguments
    ---------
    message : str
        One line naming the file and the problem.

    Example
    -------
    >>> isinstance(ModelFolderError("x"), ValueError)
    True
    """


class ModelMismatchError(ModelFolderError):
    """Weights or an architecture that do not fit the model they are for.

    Arguments
    ---------
    message : str
        One line naming the source and the differing keys or tensors.

    Example
    -------
    >>> isinstance(ModelMismatchError("x"), ModelFolderError)
    True
    """


# ---------------------------------------------------------------------------
# The architecture: every key, its type and range.
# ---------------------------------------------------------------------------


class _Bad(Exception):
    """A value that fails its check (turned into a ModelFolderError)."""


def _short(value):
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python converts
        return "<a number too long to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _key(key):
    text = str(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _whole(lo, hi):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"expected a whole number from {lo} to {hi}, got {_short(value)}")
        if not lo <= value <= hi:
            raise _Bad(f"expected a whole number from {lo} to {hi}, got {_short(value)}")
        return int(value)

    return check


def _number(lo, hi, low_open=False):
    low = "(" if low_open else "["

    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(f"expected a number in {low}{lo:g}, {hi:g}], got {_short(value)}")
        finite = isinstance(value, int) or math.isfinite(value)  # ints: no float overflow
        if not finite or value > hi or value < lo or (low_open and value == lo):
            raise _Bad(f"expected a number in {low}{lo:g}, {hi:g}], got {_short(value)}")
        return int(value) if isinstance(value, int) else float(value)

    return check


def _choice(*choices):
    def check(value):
        if not isinstance(value, str) or value not in choices:
            raise _Bad(f"expected one of {', '.join(choices)}, got {_short(value)}")
        return str(value)

    return check


def _boolean(value):
    if not isinstance(value, bool):
        raise _Bad(f"expected true or false, got {_short(value)}")
    return bool(value)


def _optional_boolean(value):
    return None if value is None else _boolean(value)


def _list(item, lo, hi, what):
    def check(value):
        if not isinstance(value, (list, tuple)) or not lo <= len(value) <= hi:
            raise _Bad(f"expected a list of {lo} to {hi} {what}, got {_short(value)}")
        return [item(v) for v in value]

    return check


def _kernel(value):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _Bad(f"expected [time, frequency] kernel sizes, got {_short(value)}")
    return [_whole(1, 15)(value[0]), _whole(1, 15)(value[1])]


def _activation(value):
    if isinstance(value, type):  # a class, as HyperPyYAML's !name: gives it
        for name in ACTIVATIONS:
            if value is _torch_nn_attr(name):
                return name
        raise _Bad(f"expected one of torch.nn.{', '.join(ACTIVATIONS)}, got {_short(value)}")
    if isinstance(value, str) and value.startswith("torch.nn."):
        value = value[len("torch.nn.") :]
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise _Bad(f"expected one of {', '.join(ACTIVATIONS)}, got {_short(value)}")
    return str(value)


def _torch_nn_attr(name):
    import torch

    return getattr(torch.nn, name)


#: Key -> check (returns the normalised plain value), in ``fsce_model.yaml``'s order.
ARCHITECTURE = {
    "sample_rate": _whole(1000, 192000),
    "win_length": _number(0, 200, low_open=True),  # ms
    "hop_length": _number(0, 200, low_open=True),  # ms
    "n_fft": _whole(16, 4096),
    "window": _choice("hann", "hamming"),
    "compression": _number(0, 1, low_open=True),
    "normalize_level": _boolean,
    "branches": _choice("both", "magnitude", "complex"),
    "collaborate": _optional_boolean,
    "block": _choice("ceb", "conv"),
    "causal": _boolean,
    "channels": _whole(1, 1024),
    "inner_channels": _whole(1, 1024),
    "kernel_sizes": _list(_kernel, 1, 8, "[time, frequency] pairs"),
    "freq_stride": _whole(1, 8),
    "tcm_hidden_channels": _whole(1, 2048),
    "tcm_kernel_size": _whole(1, 31),
    "dilations": _list(_whole(1, 1024), 1, 32, "whole numbers"),
    "num_tcm_modules": _whole(1, 16),
    "magnitude_output": _choice("mapping", "mask"),
    "mask_max": _number(1, 100, low_open=True),
    "complex_output": _choice("mapping", "residual"),
    "activation": _activation,
    "eps": _number(0, 0.01, low_open=True),
}


def check_value(key, value, what="model.json"):
    """The normalised plain value of one architecture key, or a one-line error.

    Arguments
    ---------
    key : str
        An architecture key.
    value : object
        Its value (plain data; a ``torch.nn`` activation class is accepted
        and returned by name; tuples become lists).
    what : str
        Source, for the message.

    Returns
    -------
    object

    Example
    -------
    >>> check_value("kernel_sizes", ((2, 5), (2, 3)))
    [[2, 5], [2, 3]]
    >>> check_value("channels", 60000)
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: model.json: channels: expected a whole number from 1 to 1024, got 60000
    >>> check_value("causal", "yes", what="x.json")
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: x.json: causal: expected true or false, got 'yes'
    """
    if key not in ARCHITECTURE:
        raise ModelFolderError(
            f"{what}: unknown architecture key {_short(key)}; the keys are: "
            f"{', '.join(ARCHITECTURE)}"
        )
    try:
        return ARCHITECTURE[key](value)
    except _Bad as err:
        raise ModelFolderError(f"{what}: {key}: {err}") from None


def check_architecture(mapping, what="model.json"):
    """Checks a complete architecture: every key, types, ranges, and sizes.

    Per key (:data:`ARCHITECTURE`), then across keys: the hop is not longer
    than the window, the window fits ``n_fft``, at most
    :data:`MAX_TCM_BLOCKS` S-TCM blocks, a receptive field of at most
    :data:`MAX_RECEPTIVE_FRAMES`. Use :func:`check_size` for the parameter
    count.

    Arguments
    ---------
    mapping : dict
        Every key of :data:`ARCHITECTURE`, no other.
    what : str
        Source, for the messages.

    Returns
    -------
    dict
        The normalised plain values, in :data:`ARCHITECTURE`'s order.

    Raises
    ------
    ModelFolderError
        One line naming the first problem.

    Example
    -------
    >>> arch = architecture_keys()
    >>> check_architecture(arch) == arch
    True
    >>> check_architecture({**arch, "chanels": 8})
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: model.json: unknown architecture key(s) ['chanels']; the keys are: sample_rate, ...
    >>> check_architecture({**arch, "dilations": [1] * 30, "num_tcm_modules": 16})
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: model.json: 480 S-TCM blocks (num_tcm_modules x len(dilations)); at most 64 are allowed
    """
    if not isinstance(mapping, dict):
        raise ModelFolderError(f"{what}: the architecture is not a mapping")
    unknown = sorted(_key(k) for k in mapping if k not in ARCHITECTURE)
    if unknown:
        raise ModelFolderError(
            f"{what}: unknown architecture key(s) {unknown}; the keys are: {', '.join(ARCHITECTURE)}"
        )
    missing = [k for k in ARCHITECTURE if k not in mapping]
    if missing:
        raise ModelFolderError(f"{what}: missing architecture key(s) {missing}")
    arch = {k: check_value(k, mapping[k], what) for k in ARCHITECTURE}
    if arch["hop_length"] > arch["win_length"]:
        raise ModelFolderError(
            f"{what}: hop_length {arch['hop_length']} ms is longer than win_length "
            f"{arch['win_length']} ms"
        )
    win = round(arch["sample_rate"] * arch["win_length"] / 1000)
    hop = round(arch["sample_rate"] * arch["hop_length"] / 1000)
    if hop < 1 or win > arch["n_fft"]:
        raise ModelFolderError(
            f"{what}: a {arch['win_length']} ms window ({win} samples, hop {hop}) does not "
            f"fit n_fft {arch['n_fft']} at {arch['sample_rate']} Hz"
        )
    blocks = arch["num_tcm_modules"] * len(arch["dilations"])
    if blocks > MAX_TCM_BLOCKS:
        raise ModelFolderError(
            f"{what}: {blocks} S-TCM blocks (num_tcm_modules x len(dilations)); "
            f"at most {MAX_TCM_BLOCKS} are allowed"
        )
    frames = 2 * sum(k[0] - 1 for k in arch["kernel_sizes"]) + arch["num_tcm_modules"] * (
        arch["tcm_kernel_size"] - 1
    ) * sum(arch["dilations"])
    if frames > MAX_RECEPTIVE_FRAMES:
        raise ModelFolderError(
            f"{what}: a receptive field of {frames} frames; at most "
            f"{MAX_RECEPTIVE_FRAMES} are allowed (fewer dilations or modules)"
        )
    return arch


def _model_tree():
    import ruamel.yaml

    from speechbrain_fsce.resources import hparams_file

    with open(hparams_file(MODEL_YAML), encoding="utf-8") as f:
        return ruamel.yaml.YAML().load(f)  # round trip: tags kept, nothing built


def _tag(node):
    tag = getattr(node, "tag", None)
    return getattr(tag, "value", None) or (tag if isinstance(tag, str) else "") or ""


#: Standard YAML tags of plain values.
_CORE_TAGS = tuple(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
)


#: Most values (list items included) read for one key of a YAML mapping.
MAX_VALUE_NODES = 4096


def _from_yaml(node, where, budget=None):
    """Plain Python value of a round-trip-loaded YAML value (nothing imported).

    ``budget`` bounds the values visited: YAML aliases share nodes, so a
    small text can describe a list nested 2**30 times.
    """
    budget = budget if budget is not None else [MAX_VALUE_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise ModelFolderError(f"{where}: more than {MAX_VALUE_NODES} values; refused")
    if isinstance(node, type):  # already built (HyperPyYAML's !name:)
        return node
    tag = _tag(node)
    if tag.startswith("!name:"):
        name = tag[len("!name:") :].rpartition(".")
        if name[0] in ("torch.nn", "torch.nn.modules.activation") and name[2] in ACTIVATIONS:
            return name[2]
        raise ModelFolderError(
            f"{where} is {tag}: only torch.nn.{', torch.nn.'.join(ACTIVATIONS)} are accepted"
        )
    if tag in ("!ref", "!copy"):
        raise ModelFolderError(f"{where} is an unresolved reference {tag} {node.value}")
    if tag and tag not in _CORE_TAGS:
        raise ModelFolderError(f"{where} is {tag}: expected a plain value")
    if isinstance(node, (list, tuple)):
        return [_from_yaml(v, where, budget) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def object_keys():
    """Top-level keys of ``fsce_model.yaml`` that build objects (``!new:``).

    Example
    -------
    >>> object_keys()
    ('front_end', 'model', 'enhancer')
    """
    return tuple(k for k, v in _model_tree().items() if _tag(v).startswith("!new:"))


def architecture_keys():
    """The architecture keys with their defaults (the published model).

    Read as data from ``hparams/fsce_model.yaml``, whose plain top-level
    keys are exactly :data:`ARCHITECTURE`'s (a consistency test checks
    it); the activation is given by name.

    Returns
    -------
    dict
        Key -> default plain value, in file order.

    Example
    -------
    >>> keys = architecture_keys()
    >>> keys["causal"], keys["channels"], keys["kernel_sizes"][0], keys["activation"]
    (False, 64, [2, 5], 'PReLU')
    """
    objects = object_keys()
    return {
        key: _from_yaml(value, f"{MODEL_YAML}: {key}")
        for key, value in _model_tree().items()
        if key not in objects
    }


def architecture_from(mapping, what="hparams"):
    """The architecture values of one explicit mapping, each checked.

    ``mapping`` is the ``fsce:`` block of a recipe's hparams (loaded, or
    read as data from a run's saved ``hyperparams.yaml``), the top level of
    a model yaml, or overrides. Object keys (``front_end``, ``model``,
    ``enhancer``, ``modules``, ``pretrainer``) are skipped; any other key
    must be an architecture key, so a misspelt override fails here.

    Arguments
    ---------
    mapping : dict
        Key -> value (plain values, round-trip YAML nodes, or an activation
        class).
    what : str
        Name of the mapping, for the messages.

    Returns
    -------
    dict
        Architecture key -> normalised plain value, in :data:`ARCHITECTURE`'s
        order.

    Raises
    ------
    ModelFolderError
        An unknown key, an unresolved ``!ref``, a value of the wrong type or
        out of range.

    Example
    -------
    >>> architecture_from({"causal": True, "channels": 32, "model": object()})
    {'causal': True, 'channels': 32}
    >>> architecture_from({"chanels": 32}, what="--fsce")
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: --fsce: unknown architecture key(s) ['chanels']; the keys are: ...
    """
    skip = set(OBJECT_KEYS) | set(INTERFACE_KEYS)
    unknown = sorted(_key(k) for k in mapping if k not in ARCHITECTURE and k not in skip)
    if unknown:
        raise ModelFolderError(
            f"{what}: unknown architecture key(s) {unknown}; the keys are: {', '.join(ARCHITECTURE)}"
        )
    return {
        key: check_value(key, _from_yaml(mapping[key], f"{what}: {key}"), what)
        for key in ARCHITECTURE
        if key in mapping
    }


def complete_architecture(overrides=None, what="architecture"):
    """The defaults (:func:`architecture_keys`) with ``overrides``, checked whole.

    Arguments
    ---------
    overrides : dict, optional
        Some architecture keys.
    what : str
        Source, for the messages.

    Returns
    -------
    dict

    Example
    -------
    >>> complete_architecture({"causal": True})["causal"]
    True
    """
    found = architecture_from(overrides or {}, what=what)
    return check_architecture({**architecture_keys(), **found}, what=what)


def show_value(value):
    """A value as written after ``--fsce=`` (YAML flow style).

    Example
    -------
    >>> show_value([[2, 5], [2, 3]]), show_value(None), show_value(True)
    ('[[2, 5], [2, 3]]', 'null', 'True')
    """
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return str(value)


def architecture_difference(first, second):
    """Architecture keys whose values differ (missing keys take their defaults).

    Arguments
    ---------
    first, second : dict
        Architecture values.

    Returns
    -------
    dict
        Key -> ``(first value, second value)`` in :data:`ARCHITECTURE`'s order.

    Example
    -------
    >>> architecture_difference({"channels": 8, "causal": False}, {"channels": 16})
    {'channels': (8, 16)}
    >>> architecture_difference({"dilations": (1, 2)}, {"dilations": [1, 2]})
    {}
    """
    first = complete_architecture(first, "first")
    second = complete_architecture(second, "second")
    return {k: (first[k], second[k]) for k in ARCHITECTURE if first[k] != second[k]}


# ---------------------------------------------------------------------------
# Building the module, and its size.
# ---------------------------------------------------------------------------


def build_enhancer(arch, network_device=None):
    """The ``FSCEEnhancer`` of a checked architecture (plain Python, no YAML).

    Built as ``fsce_model.yaml`` builds it (front end, then network, then
    the enhancer; the same random initialisation for the same seed).

    Arguments
    ---------
    arch : dict
        From :func:`check_architecture`.
    network_device : str, optional
        Device the network (all the parameters) is built on, e.g. ``"meta"``
        for shapes only; the front end (two small windows, no parameters)
        is always built on the CPU, which keeps torch's slow first ``meta``
        window (about 2 s) out of :func:`check_size`.

    Returns
    -------
    speechbrain_fsce.models.FSCEEnhancer

    Example
    -------
    >>> enh = build_enhancer(complete_architecture({"causal": True, "channels": 8,
    ...     "inner_channels": 4, "tcm_hidden_channels": 8, "num_tcm_modules": 1}))
    >>> enh.model.causal, enh.model.num_freqs, type(enh.model.mag_encoder.acts[0]).__name__
    (True, 161, 'PReLU')
    """
    import torch

    from speechbrain_fsce.models import FSCE, FSCEEnhancer
    from speechbrain_fsce.processing import SpectralFrontEnd

    front_end = SpectralFrontEnd(**{k: arch[k] for k in FRONT_END_KEYS})
    kwargs = {k: v for k, v in arch.items() if k not in FRONT_END_KEYS}
    kwargs["activation"] = getattr(torch.nn, arch["activation"])
    kwargs["num_freqs"] = arch["n_fft"] // 2 + 1
    import contextlib

    on_device = torch.device(network_device) if network_device else contextlib.nullcontext()
    with on_device:  # None: wherever the caller builds (torch's default device)
        model = FSCE(**kwargs)
    return FSCEEnhancer(model=model, front_end=front_end)


def check_size(arch, what="model.json"):
    """Counts an architecture's parameters without allocating them, or refuses it.

    The network is built on torch's ``meta`` device (shapes only), after
    :func:`check_architecture` has bounded every size, so this is fast and
    takes no memory whatever the values.

    Arguments
    ---------
    arch : dict
        From :func:`check_architecture`.
    what : str
        Source, for the message.

    Returns
    -------
    dict
        ``parameters``, ``state_bytes`` (of the state dict), ``tensors``
        (its entries), ``receptive_field`` (frames back, ahead).

    Raises
    ------
    ModelFolderError
        More than :data:`MAX_PARAMETERS` parameters, or a combination the
        model's constructor refuses (e.g. kernels that do not restore the
        frequency axis).

    Example
    -------
    >>> info = check_size(architecture_keys())
    >>> info["parameters"], info["receptive_field"]
    (3214992, (388, 378))
    >>> check_size(complete_architecture({"channels": 1024, "tcm_hidden_channels": 2048}))
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: model.json: ... parameters; at most 50000000 are allowed
    """
    try:
        enhancer = build_enhancer(arch, network_device="meta")
    except (ValueError, TypeError, RuntimeError) as err:
        raise ModelFolderError(
            f"{what}: not a valid FSCE architecture ({_first_line(err)})"
        ) from None
    state = enhancer.state_dict()
    parameters = sum(p.numel() for p in enhancer.parameters())
    if parameters > MAX_PARAMETERS:
        raise ModelFolderError(
            f"{what}: {parameters} parameters; at most {MAX_PARAMETERS} are allowed"
        )
    return {
        "parameters": parameters,
        "state_bytes": sum(v.numel() * v.element_size() for v in state.values()),
        "tensors": len(state),
        "receptive_field": tuple(enhancer.model.time_receptive_field()),
    }


def checkpoint_bound(state_bytes, tensors):
    """Most bytes a ``torch.save`` of such a state dict may take (file and unpacked).

    The tensors' bytes, plus 1 KiB per tensor (its pickle record, zip
    header and alignment) and 1 MiB.

    Arguments
    ---------
    state_bytes : int
        Bytes of the tensors.
    tensors : int
        How many there are.

    Returns
    -------
    int

    Example
    -------
    >>> checkpoint_bound(1000, 2)
    1051624
    """
    return int(state_bytes) + 1024 * int(tensors) + (1 << 20)


def module_bound(module):
    """:func:`checkpoint_bound` of a module's own state dict.

    Example
    -------
    >>> import torch
    >>> module_bound(torch.nn.Linear(2, 1)) == checkpoint_bound(12, 2)
    True
    """
    state = module.state_dict()
    return checkpoint_bound(sum(v.numel() * v.element_size() for v in state.values()), len(state))


# ---------------------------------------------------------------------------
# Reading.
# ---------------------------------------------------------------------------


def _first_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _Bad(f"duplicate key {_short(key)}")
        seen[key] = value
    return seen


def _no_constant(name):
    raise _Bad(f"{name} is not a number a model folder may hold")


def parse_model_json(text, what=MODEL_JSON):
    """The checked architecture of a ``model.json`` text.

    Arguments
    ---------
    text : str or bytes
        The file's content.
    what : str
        Source, for the messages.

    Returns
    -------
    dict
        The architecture (:func:`check_architecture`).

    Raises
    ------
    ModelFolderError
        One line: not JSON, duplicate keys, NaN/Infinity, another format or
        version, unknown or missing keys, bad values.

    Example
    -------
    >>> parse_model_json(model_json_text(architecture_keys()))["channels"]
    64
    >>> parse_model_json('{"format": "x"}')
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: model.json: not a model.json of speechbrain-fsce (its keys must be format, version, architecture; got ['format'])
    >>> parse_model_json('{"a": NaN}')
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: model.json: not readable JSON (NaN is not a number a model folder may hold)
    """
    if isinstance(text, str):
        text = text.encode("utf-8", "replace")
    if len(text) > MAX_JSON_BYTES:
        raise ModelFolderError(f"{what}: {len(text)} bytes; at most {MAX_JSON_BYTES} are read")
    try:
        doc = json.loads(
            text.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
        )
    except (_Bad, ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise ModelFolderError(f"{what}: not readable JSON ({_first_line(err)})") from None
    keys = ["format", "version", "architecture"]
    if not isinstance(doc, dict) or sorted(doc) != sorted(keys):
        got = sorted(_key(k) for k in doc) if isinstance(doc, dict) else type(doc).__name__
        raise ModelFolderError(
            f"{what}: not a model.json of speechbrain-fsce (its keys must be "
            f"{', '.join(keys)}; got {got})"
        )
    if doc["format"] != FORMAT:
        raise ModelFolderError(f"{what}: format is {_short(doc['format'])}, not {FORMAT!r}")
    if isinstance(doc["version"], bool) or doc["version"] != VERSION:
        raise ModelFolderError(
            f"{what}: version {_short(doc['version'])}; this speechbrain-fsce reads version "
            f"{VERSION} (a newer release wrote it?)"
        )
    return check_architecture(doc["architecture"], what)


def model_json_text(arch):
    """The ``model.json`` text of an architecture (one key per line).

    Arguments
    ---------
    arch : dict
        A complete architecture.

    Returns
    -------
    str

    Example
    -------
    >>> text = model_json_text(architecture_keys())
    >>> [line for line in text.splitlines() if "n_fft" in line]
    ['    "n_fft": 320,']
    """
    arch = check_architecture(arch)
    body = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in arch.items())
    return (
        "{\n"
        f'  "format": {json.dumps(FORMAT)},\n'
        f'  "version": {VERSION},\n'
        '  "architecture": {\n' + body + "\n  }\n}\n"
    )


def _read_bounded(path, limit):
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ModelFolderError(f"{path}: larger than {limit} bytes; refused")
    return data


def check_folder(folder, what=None):
    """Raises unless ``folder`` holds what the safe loader reads.

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder.
    what : str, optional
        How to name it in the message (default: its path).

    Raises
    ------
    FileNotFoundError
        No such folder.
    ModelFolderError
        A file instead of a folder, a folder written before ``model.json``
        existed (with the command that upgrades it), or not a model folder.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "hyperparams.yaml").write_text("seed: 1"), (tmp / "enhancer.ckpt").write_bytes(b"")
    >>> check_folder(tmp)
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: ...: not an FSCE model folder (missing model.json)
    >>> _ = (tmp / "hyperparams.yaml").write_text(HPARAMS_HEADER + "sample_rate: 16000")
    >>> check_folder(tmp)
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: ...: a model folder of an older speechbrain-fsce (no model.json); add it with: fsce-export --upgrade ...
    """
    folder = pathlib.Path(folder)
    what = what or str(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{what}: no such model folder")
    if not folder.is_dir():
        raise ModelFolderError(
            f"{what}: a file, not a model folder ({', '.join(MODEL_FILES)}, {HPARAMS_NAME})"
        )
    missing = [n for n in MODEL_FILES if not (folder / n).is_file()]
    if not missing:
        return
    if missing == [MODEL_JSON] and _exported_yaml(folder / HPARAMS_NAME):
        raise ModelFolderError(
            f"{what}: a model folder of an older speechbrain-fsce (no {MODEL_JSON}); add it "
            f"with: fsce-export --upgrade {folder}"
        )
    raise ModelFolderError(f"{what}: not an FSCE model folder (missing {', '.join(missing)})")


def _exported_yaml(path):
    """Whether ``path`` starts like the ``hyperparams.yaml`` an export writes."""
    try:
        with open(path, "rb") as f:
            return f.read(len(HPARAMS_HEADER)).decode("utf-8", "replace") == HPARAMS_HEADER
    except OSError:
        return False


def read_architecture(folder, what=None):
    """The checked architecture of a model folder (its ``model.json``).

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder.
    what : str, optional
        Name for the messages.

    Returns
    -------
    dict

    Example
    -------
    >>> from speechbrain_fsce.inference.shipped import shipped_models_root
    >>> read_architecture(shipped_models_root() / "causal")["causal"]
    True
    """
    check_folder(folder, what)
    path = pathlib.Path(folder) / MODEL_JSON
    return parse_model_json(_read_bounded(path, MAX_JSON_BYTES), what=str(path))


def read_weights(path, max_bytes, what=None):
    """Reads a checkpoint of tensors safely: sizes first, then ``weights_only``.

    Arguments
    ---------
    path : str or pathlib.Path
        The ``torch.save`` file.
    max_bytes : int
        Bound of the file and of its unpacked zip members
        (:func:`checkpoint_bound`).
    what : str, optional
        Name for the messages (default: the path).

    Returns
    -------
    dict
        ``{name: tensor}`` on the CPU.

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFolderError
        Empty, too large, members declaring more than ``max_bytes`` (refused
        before anything is unpacked), not a torch archive, pickled objects
        besides tensors (never unpickled), not a state dict of tensors.

    Example
    -------
    >>> import torch
    >>> p = getfixture("tmp_path") / "enhancer.ckpt"
    >>> torch.save({"w": torch.ones(2)}, p)
    >>> read_weights(p, 1 << 20)
    {'w': tensor([1., 1.])}
    >>> read_weights(p, 100)
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelFolderError: ...enhancer.ckpt: ... bytes, more than the 100 a checkpoint of this model can take; refused
    """
    import torch

    path = pathlib.Path(path)
    what = what or str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise ModelFolderError(
            f"{what}: empty file (0 bytes): the model folder is incomplete; export or download it again"
        )
    if size > max_bytes:
        raise ModelFolderError(
            f"{what}: {size} bytes, more than the {max_bytes} a checkpoint of this model can take; refused"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ModelFolderError(
            f"{what}: not a torch checkpoint (not a torch.save archive; {size} bytes): "
            "the file is damaged or is something else"
        ) from None
    if len(members) > MAX_CKPT_MEMBERS:
        raise ModelFolderError(f"{what}: {len(members)} archive members; refused")
    unpacked = sum(m.file_size for m in members)
    if unpacked > max_bytes:
        raise ModelFolderError(
            f"{what}: its archive members unpack to {unpacked} bytes, more than the {max_bytes} "
            "a checkpoint of this model can take; refused before unpacking"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise ModelFolderError(
                f"{what}: holds pickled Python objects besides tensors, refused "
                f"(never unpickled): {UNSAFE_HINT}"
            ) from None
        raise ModelFolderError(
            f"{what}: not a readable torch checkpoint ({_first_line(err)})"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelFolderError(
            f"{what}: holds a {type(state).__name__}, not a state dict of tensors"
        )
    return state


def state_difference(module, state, limit=3):
    """What keeps ``state`` from loading into ``module`` exactly, or None.

    Missing and unexpected keys, tensors of another shape or dtype.

    Arguments
    ---------
    module : torch.nn.Module
        The module.
    state : dict
        Name -> tensor.
    limit : int
        Names listed per kind.

    Returns
    -------
    str or None

    Example
    -------
    >>> import torch
    >>> lin = torch.nn.Linear(2, 1)
    >>> state_difference(lin, {"weight": torch.zeros(3, 2), "bias": torch.zeros(1)})
    '1 tensor(s) of another shape (weight: [3, 2] in the checkpoint, [1, 2] in the model)'
    >>> state_difference(lin, {"weight": torch.zeros(1, 2, dtype=torch.float64)})
    "1 missing key(s) ['bias']; 1 tensor(s) of another dtype (weight: torch.float64 in the checkpoint, torch.float32 in the model)"
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    common = sorted(set(own) & set(state))
    shaped = [k for k in common if own[k].shape != state[k].shape]
    typed = [k for k in common if k not in shaped and own[k].dtype != state[k].dtype]
    parts = []
    for keys, kind in ((missing, "missing"), (unexpected, "unexpected")):
        if keys:
            more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
            parts.append(f"{len(keys)} {kind} key(s) {keys[:limit]}{more}")
    if shaped:
        k = shaped[0]
        parts.append(
            f"{len(shaped)} tensor(s) of another shape ({k}: {list(state[k].shape)} in the "
            f"checkpoint, {list(own[k].shape)} in the model)"
        )
    if typed:
        k = typed[0]
        parts.append(
            f"{len(typed)} tensor(s) of another dtype ({k}: {state[k].dtype} in the "
            f"checkpoint, {own[k].dtype} in the model)"
        )
    return "; ".join(parts) or None


def load_state(module, state, what="checkpoint", hint="", finite=True):
    """Loads a state dict strictly and checks that the module now holds its values.

    Arguments
    ---------
    module : torch.nn.Module
        Receives the weights.
    state : dict
        Name -> tensor.
    what : str
        Name of the source for the message.
    hint : str
        Appended to the message (what to do).
    finite : bool
        Refuse NaN or Inf values.

    Raises
    ------
    ModelMismatchError
        One line: the counts and first examples of missing, unexpected,
        mis-shaped and other-dtype tensors; NaN/Inf values; a tensor whose
        loaded value differs from the file's.

    Example
    -------
    >>> import torch
    >>> lin = torch.nn.Linear(2, 1)
    >>> load_state(lin, {"weight": torch.ones(1, 2), "bias": torch.zeros(1)})
    >>> lin.weight.tolist()
    [[1.0, 1.0]]
    >>> load_state(lin, {"weight": torch.zeros(3, 2), "bias": torch.zeros(1)})
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelMismatchError: checkpoint does not fit the model: 1 tensor(s) of another shape (weight: [3, 2] in the checkpoint, [1, 2] in the model)
    """
    import torch

    problem = state_difference(module, state)
    if problem:
        raise ModelMismatchError(f"{what} does not fit the model: {problem}{hint}")
    if finite:
        bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise ModelMismatchError(
                f"{what}: {len(bad)} tensor(s) hold NaN or Inf values (e.g. {bad[0]}); refused"
            )
    module.load_state_dict(state, strict=True)
    check_loaded(module, state, what)


def check_loaded(module, state, what="checkpoint"):
    """Raises unless every tensor of ``module`` equals the one in ``state``.

    Arguments
    ---------
    module : torch.nn.Module
        A module after loading.
    state : dict
        What it was loaded from.
    what : str
        Source, for the message.

    Raises
    ------
    ModelMismatchError

    Example
    -------
    >>> import torch
    >>> lin = torch.nn.Linear(2, 1)
    >>> check_loaded(lin, lin.state_dict())
    >>> check_loaded(lin, {"weight": lin.weight + 1, "bias": lin.bias})
    Traceback (most recent call last):
    ...
    speechbrain_fsce.model_folder.ModelMismatchError: checkpoint was not loaded into the model: 1 tensor(s) hold other values (e.g. weight)
    """
    problem = state_difference(module, state)
    if problem:
        raise ModelMismatchError(f"{what} does not fit the model: {problem}")
    own = module.state_dict()
    differ = [k for k in sorted(state) if not own[k].detach().cpu().equal(state[k].cpu())]
    if differ:
        raise ModelMismatchError(
            f"{what} was not loaded into the model: {len(differ)} tensor(s) hold other "
            f"values (e.g. {differ[0]})"
        )


def load_enhancer(folder, overrides=None, what=None):
    """Loads a model folder as data: ``model.json``, then bounded ``weights_only`` weights.

    Nothing of the folder is executed: ``hyperparams.yaml`` is not read.

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder.
    overrides : dict, optional
        Architecture values that replace the folder's (checked alike).
    what : str, optional
        Name for the messages (default: the folder's path).

    Returns
    -------
    enhancer : speechbrain_fsce.models.FSCEEnhancer
        In eval mode, on the CPU.
    arch : dict
        Its architecture.

    Raises
    ------
    FileNotFoundError, ModelFolderError
        One line naming the file.

    Example
    -------
    >>> from speechbrain_fsce.inference.shipped import shipped_models_root
    >>> enhancer, arch = load_enhancer(shipped_models_root() / "causal")
    >>> enhancer.model.causal, arch["channels"]
    (True, 32)
    """
    folder = pathlib.Path(folder)
    what = what or str(folder)
    arch = read_architecture(folder, what)
    if overrides:
        arch = check_architecture(
            {**arch, **architecture_from(overrides, "overrides")}, "overrides"
        )
    info = check_size(arch, str(folder / MODEL_JSON))
    ckpt = folder / CKPT_NAME
    state = read_weights(ckpt, checkpoint_bound(info["state_bytes"], info["tensors"]))
    enhancer = build_enhancer(arch)
    load_state(
        enhancer, state, what=str(ckpt), hint=f"; does {MODEL_JSON} describe its architecture?"
    )
    return enhancer.eval(), arch


def check_device(device):
    """Raises ``ValueError`` for a device string torch cannot use here.

    Arguments
    ---------
    device : str
        ``cpu``, ``cuda``, ``cuda:1``, ``mps``...

    Example
    -------
    >>> check_device("cpu")
    >>> check_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device 'gpu' is not a torch device (e.g. cpu, cuda, cuda:0)
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device {device!r} is not a torch device (e.g. cpu, cuda, cuda:0)"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is available here; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) here"
            )
    elif dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device {device!r}: MPS is not available here; use cpu")


# ---------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------


def _to_yaml(key, value):
    """YAML node of an architecture value (activation as ``!name:``, lists in flow style)."""
    from ruamel.yaml.comments import CommentedSeq, TaggedScalar

    if key == "activation":
        return TaggedScalar("", tag=f"!name:torch.nn.{value}")
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq([_to_yaml(None, v) for v in value])
        seq.fa.set_flow_style()
        return seq
    return value


def render_hparams(arch=None):
    """Text of a model folder's ``hyperparams.yaml`` (for plain SpeechBrain).

    ``fsce_model.yaml`` with the architecture's values in its top-level keys
    (a ruamel.yaml round trip keeps its ``!new:``/``!ref`` tags and
    comments), followed by the ``modules`` / ``pretrainer`` part that
    ``Pretrained`` needs. This package never reads it back.

    Arguments
    ---------
    arch : dict, optional
        Architecture values (some or all keys).

    Returns
    -------
    str

    Example
    -------
    >>> text = render_hparams({"causal": True, "dilations": [1, 2]})
    >>> "causal: true" in text, "dilations: [1, 2]" in text, "!include" in text
    (True, True, False)
    >>> "pretrainer:" in text and "causal: !ref <causal>" in text
    True
    """
    import ruamel.yaml

    from speechbrain_fsce.resources import hparams_file

    arch = complete_architecture(arch, what="architecture")
    defaults = architecture_keys()
    rt = ruamel.yaml.YAML()  # round trip: tags, references and comments kept
    with open(hparams_file(MODEL_YAML), encoding="utf-8") as f:
        tree = rt.load(f)
    for key, value in arch.items():
        if value != defaults[key]:  # keep the file's text otherwise
            tree[key] = _to_yaml(key, value)
    stream = io.StringIO()
    rt.dump(tree, stream)
    # Drop the source file's banner (it describes the repository file).
    lines = stream.getvalue().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    if any("!include" in line for line in lines if not line.lstrip().startswith("#")):
        raise ValueError(
            f"{MODEL_YAML} includes other files; an exported model must be self-contained"
        )
    return "\n".join(lines).rstrip("\n") + "\n" + INTERFACE_YAML


def _onnx_only(folder):
    try:
        return all(
            n in ONNX_FILES and os.path.isfile(os.path.join(folder, n)) for n in os.listdir(folder)
        )
    except OSError:
        return False


def check_output(output_folder, overwrite=False):
    """Raises unless a model folder may be written at ``output_folder``.

    Allowed: a path that does not exist, an empty folder, and, with
    ``overwrite``, an earlier model folder: one that holds only what an
    export writes (``model.json``, ``hyperparams.yaml``, ``enhancer.ckpt``,
    ``onnx/`` with only ONNX export files). Any other content (a training
    run's ``save/``, a ``README.md`` someone wrote, audio) is never
    replaced, with or without ``overwrite``.

    Arguments
    ---------
    output_folder : str or pathlib.Path
        Where the model folder would go.
    overwrite : bool
        Replace an earlier model folder.

    Raises
    ------
    FileExistsError
        One line saying what is there and what to do.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> check_output(tmp / "new")
    >>> _ = (tmp / "train_log.txt").write_text("epoch 1")
    >>> check_output(tmp, overwrite=True)
    Traceback (most recent call last):
    ...
    FileExistsError: ...: holds 1 entry that an export does not write (train_log.txt); refusing to replace it, with or without --overwrite: choose another output folder
    """
    output = pathlib.Path(output_folder)
    if os.path.islink(output):
        raise FileExistsError(f"{output}: is a symbolic link; give a real folder as the output")
    if not output.exists():
        return
    if not output.is_dir():
        raise FileExistsError(f"{output}: exists and is not a folder; refusing to replace it")
    entries = sorted(os.listdir(output))
    foreign = [
        n
        for n in entries
        if not (
            (n in EXPORT_FILES and (output / n).is_file() and not (output / n).is_symlink())
            or (n == ONNX_FOLDER and (output / n).is_dir() and _onnx_only(output / n))
        )
    ]
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        plural = "entry" if len(foreign) == 1 else "entries"
        raise FileExistsError(
            f"{output}: holds {len(foreign)} {plural} that an export does not write ({shown}); "
            "refusing to replace it, with or without --overwrite: choose another output folder"
        )
    if entries and not overwrite:
        raise FileExistsError(
            f"{output}: holds an earlier model folder; pass --overwrite (overwrite=True) "
            "to replace it"
        )


def write(output_folder, state, arch, overwrite=False):
    """Writes a model folder: ``model.json``, ``hyperparams.yaml``, ``enhancer.ckpt``.

    The architecture is checked whole (sizes included), the weights are
    loaded strictly into it first, and the written folder is read back with
    :func:`load_enhancer` before it is put in place (atomically: a temporary
    sibling folder renamed; see :func:`check_output` for what may be
    replaced).

    Arguments
    ---------
    output_folder : str or pathlib.Path
        The model folder to create.
    state : dict or torch.nn.Module
        ``FSCEEnhancer`` state dict (or the module).
    arch : dict
        Complete architecture (:func:`complete_architecture`).
    overwrite : bool
        Replace an earlier model folder there.

    Returns
    -------
    pathlib.Path
        ``output_folder`` (absolute).

    Example
    -------
    >>> arch = complete_architecture(dict(channels=8, inner_channels=4,
    ...     tcm_hidden_channels=8, num_tcm_modules=1, dilations=[1, 2]))
    >>> out = write(getfixture("tmp_path") / "model", build_enhancer(arch), arch)
    >>> sorted(p.name for p in out.iterdir())
    ['enhancer.ckpt', 'hyperparams.yaml', 'model.json']
    """
    import torch

    from speechbrain_fsce.fileio import atomic_folder

    output = pathlib.Path(output_folder).absolute()
    arch = check_architecture(arch, what="architecture")
    check_size(arch, what="architecture")
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    enhancer = build_enhancer(arch)
    load_state(enhancer, state, what="the weights")
    check_output(output, overwrite)
    with atomic_folder(output) as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / MODEL_JSON).write_text(model_json_text(arch), encoding="utf-8")
        (tmp / HPARAMS_NAME).write_text(HPARAMS_HEADER + render_hparams(arch), encoding="utf-8")
        torch.save(enhancer.state_dict(), tmp / CKPT_NAME)
        load_enhancer(tmp, what=str(output))  # what was written reads back
        check_output(output, overwrite)  # nothing else arrived meanwhile
    return output


# ---------------------------------------------------------------------------
# Folders written before model.json existed.
# ---------------------------------------------------------------------------


def read_yaml_data(path, limit=MAX_YAML_BYTES):
    """A YAML file read as data (ruamel.yaml round trip: tags kept, nothing built or imported).

    Arguments
    ---------
    path : str or pathlib.Path
        The file.
    limit : int
        Largest size read.

    Returns
    -------
    object
        The round-trip tree (tagged values stay tagged nodes).

    Example
    -------
    >>> p = getfixture("tmp_path") / "x.yaml"
    >>> _ = p.write_text('a: !!python/object/apply:os.system ["touch x"]\\n')
    >>> type(read_yaml_data(p)["a"]).__name__
    'CommentedSeq'
    """
    import ruamel.yaml

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    text = _read_bounded(path, limit).decode("utf-8", "replace")
    try:
        return ruamel.yaml.YAML().load(text)
    except ruamel.yaml.YAMLError as err:
        raise ModelFolderError(f"{path}: not a readable YAML file ({_first_line(err)})") from None


def legacy_architecture(folder):
    """The architecture of a folder written before ``model.json`` (read as data).

    Its ``hyperparams.yaml`` must be exactly what the exporter writes for
    its plain top-level values (so those values are all it says).

    Arguments
    ---------
    folder : str or pathlib.Path
        A folder with ``hyperparams.yaml`` and ``enhancer.ckpt``.

    Returns
    -------
    dict

    Raises
    ------
    ModelFolderError
        The YAML is not an unmodified export.
    """
    path = pathlib.Path(folder) / HPARAMS_NAME
    tree = read_yaml_data(path)
    if not isinstance(tree, dict):
        raise ModelFolderError(f"{path}: not a mapping")
    not_export = "not the hyperparams.yaml an export writes (edited, or from another tool)"
    extra = [
        _key(k) for k in tree if k not in ARCHITECTURE and k not in OBJECT_KEYS + INTERFACE_KEYS
    ]
    if extra:
        raise ModelFolderError(f"{path}: {not_export}: it has other keys ({', '.join(extra[:3])})")
    arch = complete_architecture(
        {k: v for k, v in tree.items() if k in ARCHITECTURE},
        what=str(path),
    )
    text = path.read_text(encoding="utf-8").replace(
        "!name:torch.nn.modules.activation.", "!name:torch.nn."
    )
    if not text.endswith(render_hparams(arch)):
        raise ModelFolderError(
            f"{path}: {not_export}: cannot tell its architecture from its values; re-export "
            "the weights with fsce-export --ckpt ... --overrides '{...}'"
        )
    return arch


def upgrade(folder):
    """Adds ``model.json`` to a model folder written before it existed.

    The architecture is read as data from its ``hyperparams.yaml``
    (:func:`legacy_architecture`) and the weights must load into it
    strictly; then ``model.json`` is written (atomically; nothing else in the
    folder changes). A folder that has one already is left as it is.

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder.

    Returns
    -------
    bool
        True if ``model.json`` was written.

    Example
    -------
    >>> arch = complete_architecture(dict(channels=8, inner_channels=4,
    ...     tcm_hidden_channels=8, num_tcm_modules=1, dilations=[1, 2]))
    >>> out = write(getfixture("tmp_path") / "model", build_enhancer(arch), arch)
    >>> (out / "model.json").unlink()
    >>> upgrade(out), upgrade(out), load_enhancer(out)[1] == arch
    (True, False, True)
    """
    from speechbrain_fsce.fileio import atomic_write

    folder = pathlib.Path(folder)
    if (folder / MODEL_JSON).is_file():
        read_architecture(folder)
        return False
    for name in LEGACY_FILES:
        if not (folder / name).is_file():
            raise ModelFolderError(f"{folder}: not an FSCE model folder (missing {name})")
    arch = legacy_architecture(folder)
    info = check_size(arch, str(folder / HPARAMS_NAME))
    state = read_weights(folder / CKPT_NAME, checkpoint_bound(info["state_bytes"], info["tensors"]))
    load_state(build_enhancer(arch), state, what=str(folder / CKPT_NAME))
    atomic_write(folder / MODEL_JSON, model_json_text(arch), overwrite=False)
    return True
