"""Loading model folders without running code from them.

A model folder (``hyperparams.yaml`` + ``enhancer.ckpt``) is what users
download and share, so by default nothing in it may execute code:

* :func:`check_hparams_text` reads the YAML's tags before HyperPyYAML sees
  it and accepts only plain values, ``!ref`` / ``!copy`` / ``!tuple``,
  ``!new:`` of model classes (``torch.nn.Module`` subclasses defined in
  ``speechbrain_fsce`` or ``torch.nn``) plus SpeechBrain's ``Pretrainer``,
  and ``!name:`` of such a module class (an activation passed as a class).
  ``!apply:``, ``!include:``, ``!name:`` / ``!new:`` of anything else and
  Python tags (``!!python/...``) are refused with an error naming the tag
  and its line.
* :func:`read_checkpoint` reads ``enhancer.ckpt`` with
  ``torch.load(weights_only=True)`` (which stays safe whatever
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says, since the argument is
  explicit), before anything else touches the file, and turns every failure
  (empty file, random bytes, pickled objects) into one clear line.
* :func:`load_weights` puts the weights into the module strictly, with a
  one-line summary of missing, unexpected and mis-shaped tensors.

Folders that need more (custom classes, ``!apply``) can be loaded with
``FSCEEnhancement.from_hparams(..., trusted=True)`` / ``fsce-enhance
--unsafe-load``: only for folders from a source you trust, as it runs
whatever the YAML and the checkpoint contain.

Authors
 * speechbrain-fsce developers
"""

import importlib
import pathlib
import re
import zipfile

import torch

#: Classes outside this package that a model folder may build.
ALLOWED_EXTRA_CLASSES = ("speechbrain.utils.parameter_transfer.Pretrainer",)

#: HyperPyYAML tags that build nothing (references and tuples).
ALLOWED_PLAIN_TAGS = ("!ref", "!copy", "!tuple")

#: Standard YAML tags of plain values.
_CORE = "tag:yaml.org,2002:"
ALLOWED_CORE_TAGS = tuple(
    _CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge")
)

UNSAFE_HINT = (
    "model folders are loaded without running code from them; if you trust "
    "this folder, load it with trusted=True (fsce-enhance --unsafe-load)"
)


class UnsafeModelError(ValueError):
    """A model folder that would run code, or whose weights cannot be read safely.

    Arguments
    ---------
    message : str
        One line naming the file and the problem.

    Example
    -------
    >>> isinstance(UnsafeModelError("x"), ValueError)
    True
    """


def _resolve(dotted):
    """The object a ``!new:`` tag names, imported as HyperPyYAML would."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


def is_allowed_class(dotted):
    """Whether ``!new:<dotted>`` may appear in an untrusted model folder.

    Only ``torch.nn.Module`` classes defined in this package (the model,
    its blocks and front end) or in ``torch.nn`` (layers, activations) and
    SpeechBrain's ``Pretrainer`` are allowed; modules outside
    ``speechbrain_fsce`` and ``torch.nn`` are not even imported to check.

    Arguments
    ---------
    dotted : str
        The tag's suffix, e.g. ``speechbrain_fsce.models.FSCE``.

    Returns
    -------
    bool

    Example
    -------
    >>> is_allowed_class("speechbrain_fsce.models.FSCE")
    True
    >>> is_allowed_class("torch.nn.PReLU"), is_allowed_class("subprocess.Popen")
    (True, False)
    >>> is_allowed_class("torch.nn.parallel.DistributedDataParallel")
    False
    >>> is_allowed_class("speechbrain_fsce.cli.os.system"), is_allowed_class("torch.nn.modules.module.os.system")
    (False, False)
    """
    if dotted in ALLOWED_EXTRA_CLASSES:
        return True
    packages = ("speechbrain_fsce.", "torch.nn.")
    if not dotted.startswith(packages):
        return False
    obj = _resolve(dotted)
    return (
        isinstance(obj, type)
        and issubclass(obj, torch.nn.Module)
        # torch.nn.modules: layers and activations (not parallel wrappers)
        and obj.__module__.startswith(("speechbrain_fsce.", "torch.nn.modules."))
    )


#: What a ``!ref`` / ``!copy`` of an untrusted folder may hold: references to
#: keys (``<a>``, ``<a[b]>``), number literals, ``+ - / //`` and parentheses
#: (``<n_fft> // 2 + 1``). No attribute access, no ``*``/``**`` (string
#: repetition and huge powers).
_REFERENCE = re.compile(
    r"^(\s*(<[A-Za-z_][A-Za-z0-9_]*(\[[A-Za-z0-9_]+\])*>|[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"
    r"|//|/|\+|-|\(|\)))+\s*$"
)
#: What a tuple (``!tuple`` or a scalar in parentheses, which HyperPyYAML
#: turns into a tuple through PyYAML's full loader) may hold: numbers only.
_NUMERIC_TUPLE = re.compile(r"^\(\s*[-+0-9.eE,\s]*\)$")
#: Largest hyperparams.yaml accepted from an untrusted folder.
MAX_HPARAMS_BYTES = 1 << 20


def _scalar_problem(tag, value):
    """Refuses scalar text that HyperPyYAML would evaluate beyond plain values."""
    text = str(value)
    if tag in ("!ref", "!copy"):
        if not _REFERENCE.match(text):
            return f"'{tag} {text}' (references may only combine keys, numbers and + - / //)"
        return None
    if "__" in text or "**" in text:
        return f"'{text}' (dunder names and powers are not allowed)"
    if "<" in text and ">" in text:
        # A reference resolving to this string would be resolved again.
        return f"'{text}' (reference syntax outside !ref)"
    stripped = text.strip()
    if (
        tag == "!tuple" or (stripped.startswith("(") and stripped.endswith(")"))
    ) and not _NUMERIC_TUPLE.match(stripped):
        return f"'{text}' (tuples may only hold numbers)"
    return None


def _tag_problem(node):
    tag = node.tag if isinstance(node.tag, str) else getattr(node.tag, "value", None)
    if isinstance(node.value, str):
        problem = _scalar_problem(tag, node.value)
        if problem is not None:
            return problem
    if tag is None or tag in ALLOWED_CORE_TAGS:
        return None
    if tag in ALLOWED_PLAIN_TAGS:
        return None
    for kind in ("!new:", "!name:"):
        if tag.startswith(kind) and is_allowed_class(tag[len(kind) :]):
            return None
    return f"'{tag}'"


def check_hparams_text(text, source="hyperparams.yaml"):
    """Raises unless a HyperPyYAML text only builds this package's models.

    Arguments
    ---------
    text : str
        The YAML.
    source : str
        Its name, for the message.

    Raises
    ------
    UnsafeModelError
        Naming the first refused tag and its line.

    Example
    -------
    >>> check_hparams_text("a: 1\\nm: !new:speechbrain_fsce.models.FSCE\\nb: !ref <a>\\n")
    >>> check_hparams_text('x: !apply:os.system ["touch /tmp/x"]\\n')
    Traceback (most recent call last):
    ...
    speechbrain_fsce.safe_loading.UnsafeModelError: hyperparams.yaml line 1: refusing tag '!apply:os.system': model folders are loaded without running code from them; ...
    """
    import ruamel.yaml

    if len(text.encode("utf-8", "replace")) > MAX_HPARAMS_BYTES:
        raise UnsafeModelError(
            f"{source}: larger than {MAX_HPARAMS_BYTES} bytes, refused: {UNSAFE_HINT}"
        )
    try:
        nodes = list(ruamel.yaml.YAML(typ="rt").compose_all(text))
    except ruamel.yaml.YAMLError as err:
        raise UnsafeModelError(
            f"{source}: not readable YAML ({str(err).splitlines()[0]})"
        ) from None
    if len(nodes) > 1:
        raise UnsafeModelError(f"{source}: holds {len(nodes)} YAML documents, expected one")
    stack, seen = list(nodes), set()
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if id(node) in seen:  # an alias: expansion can blow up exponentially
            line = node.start_mark.line + 1
            raise UnsafeModelError(
                f"{source} line {line}: refusing YAML anchors/aliases: {UNSAFE_HINT}"
            )
        seen.add(id(node))
        problem = _tag_problem(node)
        if problem is not None:
            line = node.start_mark.line + 1
            raise UnsafeModelError(f"{source} line {line}: refusing tag {problem}: {UNSAFE_HINT}")
        value = node.value
        if isinstance(value, list):
            for item in value:
                stack.extend(item if isinstance(item, tuple) else (item,))


def check_overrides(overrides, source="overrides"):
    """Applies :func:`check_hparams_text` to YAML overrides (or checks a dict is plain).

    Arguments
    ---------
    overrides : str, dict or None
        As passed to ``load_hyperpyyaml``.
    source : str
        Name for the message.

    Example
    -------
    >>> check_overrides({"causal": True, "dilations": [1, 2]})
    >>> check_overrides("x: !name:os.system")
    Traceback (most recent call last):
    ...
    speechbrain_fsce.safe_loading.UnsafeModelError: overrides line 1: refusing tag '!name:os.system': ...
    """
    if overrides is None:
        return
    if isinstance(overrides, str):
        check_hparams_text(overrides, source)
        return

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, (str, int, float, bool))

    if not plain(overrides):
        raise UnsafeModelError(
            f"{source}: only plain values (numbers, strings, lists, mappings) are allowed"
        )


def _first_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_checkpoint(path):
    """Reads a weights-only checkpoint with one clear error per failure.

    Arguments
    ---------
    path : str or pathlib.Path
        ``enhancer.ckpt``.

    Returns
    -------
    dict
        ``{name: tensor}`` on the CPU.

    Raises
    ------
    FileNotFoundError
        Missing file.
    UnsafeModelError
        Empty file, not a torch checkpoint, pickled Python objects (never
        unpickled), or not a state dict of tensors.

    Example
    -------
    >>> p = getfixture("tmp_path") / "enhancer.ckpt"
    >>> torch.save({"w": torch.ones(2)}, p)
    >>> read_checkpoint(p)
    {'w': tensor([1., 1.])}
    >>> _ = p.write_bytes(b"")
    >>> read_checkpoint(p)
    Traceback (most recent call last):
    ...
    speechbrain_fsce.safe_loading.UnsafeModelError: ...enhancer.ckpt: empty file (0 bytes): the model folder is incomplete; export or download it again
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise UnsafeModelError(
            f"{path}: empty file (0 bytes): the model folder is incomplete; export or download it again"
        )
    if not zipfile.is_zipfile(path):
        raise UnsafeModelError(
            f"{path}: not a torch checkpoint (not a torch.save archive; {size} bytes): "
            "the file is damaged or is something else"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise UnsafeModelError(
                f"{path}: holds pickled Python objects besides tensors, refused "
                f"(never unpickled): {UNSAFE_HINT}"
            ) from None
        raise UnsafeModelError(
            f"{path}: not a readable torch checkpoint ({_first_line(err)})"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UnsafeModelError(
            f"{path}: holds a {type(state).__name__}, not a state dict of tensors"
        )
    return state


def load_weights(module, state, what="checkpoint", hint=""):
    """Loads a state dict strictly, or raises one readable line.

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

    Raises
    ------
    ValueError
        With the counts and first examples of missing, unexpected and
        mis-shaped tensors.

    Example
    -------
    >>> lin = torch.nn.Linear(2, 1)
    >>> load_weights(lin, {"weight": torch.zeros(1, 2), "bias": torch.zeros(1)})
    >>> load_weights(lin, {"weight": torch.zeros(3, 2), "bias": torch.zeros(1)})
    Traceback (most recent call last):
    ...
    ValueError: checkpoint does not fit the model: 1 tensor(s) of another shape (weight: [3, 2] in the checkpoint, [1, 2] in the model)
    """
    from speechbrain_fsce.inference.export import describe_mismatch

    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shaped = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    parts = [describe_mismatch(missing, unexpected, limit=3)] if missing or unexpected else []
    if shaped:
        k = shaped[0]
        parts.append(
            f"{len(shaped)} tensor(s) of another shape ({k}: {list(state[k].shape)} in the "
            f"checkpoint, {list(own[k].shape)} in the model)"
        )
    if parts:
        raise ValueError(f"{what} does not fit the model: {'; '.join(parts)}{hint}")
    module.load_state_dict(state, strict=True)


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
