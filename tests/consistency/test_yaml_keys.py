"""Every key of every recipe yaml is used by the recipe code or referenced."""

import pathlib
import re

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
RECIPE_YAMLS = sorted((REPO / "recipes").glob("*/hparams/*.yaml"))
MODEL_YAMLS = sorted((REPO / "hparams").glob("*.yaml"))


class _AnyTagLoader(yaml.SafeLoader):
    """Reads HyperPyYAML as plain YAML (tags ignored) to list its keys."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _top_level_keys(path):
    return list(yaml.load(path.read_text(), Loader=_AnyTagLoader) or {})


def _code_for(path):
    recipe = path.parents[1]
    sources = [*recipe.glob("*.py"), REPO / "speechbrain_fsce" / "brain.py"]
    return "\n".join(p.read_text() for p in sources)


def _used_in_code(key, code):
    from speechbrain.core import RunOptions

    if key in RunOptions().as_dict():  # read from hparams by sb.Brain itself
        return True
    return re.search(rf"""(hparams\[["']{key}["']\]|hparams\.{key}\b|["']{key}["'])""", code)


@pytest.mark.parametrize("path", RECIPE_YAMLS, ids=lambda p: p.name)
def test_recipe_yaml_keys_are_used(path):
    text = path.read_text()
    code = _code_for(path)
    unused = [
        key for key in _top_level_keys(path)
        if not key.startswith("__")
        and f"<{key}>" not in text and f"<{key}[" not in text
        and not _used_in_code(key, code)
    ]
    assert not unused, f"{path.name}: keys used nowhere: {unused}"


@pytest.mark.parametrize("path", MODEL_YAMLS, ids=lambda p: p.name)
def test_model_yaml_keys_are_referenced(path):
    text = path.read_text()
    objects = {"front_end", "model", "enhancer", "modules", "pretrainer"}
    unused = [k for k in _top_level_keys(path) if k not in objects and f"<{k}>" not in text]
    assert not unused, f"{path.name}: keys used nowhere: {unused}"


def test_recipe_yamls_share_the_model_definition():
    for path in RECIPE_YAMLS:
        assert "!include:../../../hparams/fsce_model.yaml" in path.read_text(), path.name
