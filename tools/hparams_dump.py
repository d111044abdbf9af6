"""Dumps the fully resolved hyperparameters of recipe yamls as text, to diff.

For checking that a restructuring of the yamls (shared includes, moved keys)
leaves what train.py gets unchanged: every scalar, every object's attributes,
each module's repr, parameter count and a hash of its initial weights, and
which keys are the same object. The shared ``training`` include is dumped
last, so that a yaml with and one without it line up::

    python -m tools.hparams_dump /tmp/before    # then change the yamls
    python -m tools.hparams_dump /tmp/after && diff -r /tmp/before /tmp/after

An older revision: ``git archive REV | tar -x -C /tmp/old``, copy this file
to ``/tmp/old/tools/`` and run it from ``/tmp/old`` (its yamls, its package).

Authors
 * speechbrain-fsce developers
"""

import argparse
import functools
import hashlib
import inspect
import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]

#: name -> (recipe yaml, overrides): each recipe yaml, plain and overridden.
CASES = {
    "timit_fsce": ("recipes/TIMIT/hparams/fsce.yaml", ""),
    "timit_fsce_causal": ("recipes/TIMIT/hparams/fsce_causal.yaml", ""),
    "timit_demo": ("recipes/TIMIT/hparams/demo.yaml", ""),
    "voicebank_fsce": ("recipes/Voicebank/hparams/fsce.yaml", "data_folder: /data/VB"),
    "timit_fsce_overridden": (
        "recipes/TIMIT/hparams/fsce.yaml",
        "{lr: 0.0005, batch_size: 2, fsce: {compression: 0.3, causal: True}, experiment_name: x}",
    ),
    "timit_demo_overridden": (
        "recipes/TIMIT/hparams/demo.yaml",
        "{number_of_epochs: 3, fsce: {channels: 16}}",
    ),
    "voicebank_overridden": (
        "recipes/Voicebank/hparams/fsce.yaml",
        "{data_folder: /d, lr: 0.0003, fsce: {compression: 0.3}}",
    ),
}


def _hash(tensors):
    digest = hashlib.sha256()
    for name, tensor in tensors:
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def describe(obj, path, seen, out, depth=0):
    """Appends lines describing ``obj`` (found at ``path``) to ``out``.

    Arguments
    ---------
    obj : object
        A loaded hyperparameter.
    path : str
        Where it is, e.g. ``hparams[loss]``.
    seen : dict
        ``id -> (path, obj)`` of what was described already.
    out : list of str
        The lines.
    depth : int
        Indentation level.

    Example
    -------
    >>> out = []
    >>> shared = [1, 2]
    >>> describe({"a": shared, "b": shared}, "hparams", {}, out)
    >>> out[-1]
    '  hparams[b] -> same object as hparams[a]'
    """
    import torch

    pad = "  " * depth
    if isinstance(obj, (str, int, float, bool, type(None))):
        out.append(f"{pad}{path} = {obj!r} ({type(obj).__name__})")
        return
    if id(obj) in seen:
        out.append(f"{pad}{path} -> same object as {seen[id(obj)][0]}")
        return
    seen[id(obj)] = (path, obj)  # keeps obj alive: ids are not reused
    if isinstance(obj, (list, tuple, dict)):
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        out.append(f"{pad}{path}: {type(obj).__name__} of {len(obj)}")
        for key, value in items:
            describe(value, f"{path}[{key}]", seen, out, depth + 1)
    elif inspect.isclass(obj) or inspect.isroutine(obj):
        out.append(f"{pad}{path} = <{obj.__module__}.{obj.__qualname__}>")
    elif isinstance(obj, functools.partial):
        out.append(f"{pad}{path} = partial <{obj.func.__module__}.{obj.func.__qualname__}>")
        describe(list(obj.args), f"{path}.args", seen, out, depth + 1)
        describe(dict(obj.keywords), f"{path}.keywords", seen, out, depth + 1)
    elif isinstance(obj, torch.Tensor):
        out.append(f"{pad}{path} = tensor{tuple(obj.shape)} {obj.dtype} {_hash([('', obj)])}")
    elif isinstance(obj, torch.nn.Module):
        params = sum(p.numel() for p in obj.parameters())
        out.append(
            f"{pad}{path}: {type(obj).__module__}.{type(obj).__qualname__} "
            f"params={params} weights={_hash(obj.state_dict().items())} training={obj.training}"
        )
        out.extend(f"{pad}  | {line}" for line in repr(obj).splitlines())
        for key, value in sorted(vars(obj).items()):
            if not key.startswith("_") and key != "training":
                describe(value, f"{path}.{key}", seen, out, depth + 1)
        for name, sub in obj.named_modules():
            seen.setdefault(id(sub), (f"{path}.{name}", sub))
    else:
        out.append(f"{pad}{path}: {type(obj).__module__}.{type(obj).__qualname__}")
        for key, value in sorted(getattr(obj, "__dict__", {}).items()):
            describe(value, f"{path}.{key}", seen, out, depth + 1)


def dump(yaml_path, overrides=""):
    """The description of a yaml loaded with ``overrides``, as text."""
    from hyperpyyaml import load_hyperpyyaml

    with open(yaml_path, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    out, seen = [], {}
    training = hparams.pop("training", None)
    describe(hparams, "hparams", seen, out)
    if training is not None:
        describe(training, "hparams[training]", seen, out)
    return "\n".join(out) + "\n"


def main(argv=None):
    """``python -m tools.hparams_dump OUT_FOLDER [CASE ...]``; returns 0."""
    parser = argparse.ArgumentParser(prog="python -m tools.hparams_dump", description=__doc__)
    parser.add_argument("out_folder", help="one <case>.txt per case is written here")
    parser.add_argument("cases", nargs="*", choices=[[], *CASES], help="default: all")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out_folder).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "cwd").mkdir(exist_ok=True)
    os.chdir(out / "cwd")  # loading makes the checkpoint folders: keep them here
    for case in args.cases or CASES:
        yaml_path, overrides = CASES[case]
        (out / f"{case}.txt").write_text(dump(REPO / yaml_path, overrides))
        print(f"{out / case}.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
