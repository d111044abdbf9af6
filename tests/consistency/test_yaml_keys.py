"""Every key of every recipe yaml is used by the recipe code or referenced.

The recipe's own code is its ``*.py`` files; the Brain's keys are the ones it
declares (``FSCEBrain.HPARAMS``), and a test here checks that ``brain.py``
reads no other.
"""

import pathlib
import re

import pytest
import ruamel.yaml

from speechbrain_fsce import recipe
from speechbrain_fsce.brain import FSCEBrain

REPO = pathlib.Path(__file__).resolve().parents[2]
RECIPE_YAMLS = sorted((REPO / "recipes").glob("*/hparams/*.yaml"))
MODEL_YAMLS = sorted((REPO / "hparams").glob("*.yaml"))


def _top_level_keys(path):
    return list(ruamel.yaml.YAML().load(path.read_text()) or {})


def _recipe_code(path):
    return "\n".join(p.read_text() for p in path.parents[1].glob("*.py"))


def _used_in_code(key, code):
    from speechbrain.core import RunOptions

    if key in RunOptions().as_dict():  # read from hparams by sb.Brain itself
        return True
    if key in FSCEBrain.HPARAMS or key in recipe.HPARAMS:  # read by the package
        return True
    return re.search(rf"""(hparams\[["']{key}["']\]|hparams\.{key}\b|["']{key}["'])""", code)


@pytest.mark.parametrize("path", RECIPE_YAMLS, ids=lambda p: p.name)
def test_recipe_yaml_keys_are_used(path):
    text = path.read_text()
    code = _recipe_code(path)
    unused = [
        key
        for key in _top_level_keys(path)
        if not key.startswith("__")
        and f"<{key}>" not in text
        and f"<{key}[" not in text
        and not _used_in_code(key, code)
    ]
    assert not unused, f"{path.name}: keys used nowhere: {unused}"


def test_brain_reads_only_its_declared_hparams():
    source = (REPO / "speechbrain_fsce" / "brain.py").read_text()
    read = set(re.findall(r"self\.hparams\.(\w+)", source))
    read |= set(re.findall(r"""(?:getattr|hasattr)\(self\.hparams,\s*["'](\w+)["']""", source))
    read |= set(re.findall(r"""["'](\w+_logger)["']""", source))  # getattr(self.hparams, name)
    assert read <= set(FSCEBrain.HPARAMS), f"undeclared: {sorted(read - set(FSCEBrain.HPARAMS))}"
    assert set(FSCEBrain.HPARAMS) <= read, (
        f"declared, never read: {sorted(set(FSCEBrain.HPARAMS) - read)}"
    )


@pytest.mark.parametrize("path", MODEL_YAMLS, ids=lambda p: p.name)
def test_model_yaml_keys_are_referenced(path):
    """Referenced in the file, or by recipe yamls through their include
    (``loss: !ref <training[loss]>``)."""
    text = path.read_text()
    include = f"!include:../../../hparams/{path.name}"
    recipes = "\n".join(t for t in (p.read_text() for p in RECIPE_YAMLS) if include in t)
    objects = {"front_end", "model", "enhancer", "modules", "pretrainer"}
    unused = [
        k
        for k in _top_level_keys(path)
        if k not in objects and f"<{k}>" not in text and not re.search(rf"<\w+\[{k}\]>", recipes)
    ]
    assert not unused, f"{path.name}: keys used nowhere: {unused}"


def test_recipe_yamls_share_the_model_definition():
    for path in RECIPE_YAMLS:
        assert "!include:../../../hparams/fsce_model.yaml" in path.read_text(), path.name
