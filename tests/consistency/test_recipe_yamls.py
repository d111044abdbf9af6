"""Recipe yamls other than ``fsce.yaml`` differ from it only where they say.

Each variant's header lists the keys it changes (``fsce.yaml with: a,
b[c], ...``); everything else (objects, comments aside) must be identical,
so the shared part cannot drift between copies.
"""

import pathlib
import re

import pytest
import ruamel.yaml

HPARAMS = pathlib.Path(__file__).resolve().parents[2] / "recipes" / "TIMIT" / "hparams"
BASE = HPARAMS / "fsce.yaml"
VARIANTS = sorted(p for p in HPARAMS.glob("*.yaml") if p != BASE)


def _leaf(node):
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, list):
        return tag, [_leaf(v) for v in node]
    return tag, str(getattr(node, "value", node))


def _flatten(node, prefix=""):
    out = {}
    for key, value in node.items():
        path = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            out[path] = ("mapping", getattr(getattr(value, "tag", None), "value", None))
            out.update(_flatten(value, path))
        else:
            out[path] = _leaf(value)
    return out


def _load(path):
    return _flatten(ruamel.yaml.YAML().load(path.read_text()))


def _declared(path):
    header = " ".join(
        line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")
    )
    match = re.search(r"fsce\.yaml with: (.*?)\s*\(checked by a test", header)
    assert match, f"{path.name}: header does not list its differences from fsce.yaml"
    return {k.strip() for k in match.group(1).split(",")}


def test_there_are_variants():
    assert VARIANTS, "no recipe yaml besides fsce.yaml"


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.name)
def test_variant_differs_from_fsce_yaml_only_where_declared(path):
    base, variant = _load(BASE), _load(path)
    differ = {k for k in set(base) | set(variant) if base.get(k) != variant.get(k)}
    assert differ == _declared(path), (
        f"{path.name}: undeclared differences {sorted(differ - _declared(path))}, "
        f"declared but equal {sorted(_declared(path) - differ)}"
    )
