"""``hparams/fsce_model.yaml`` and the constructors it calls agree.

Every argument of :class:`FSCE` is passed from a top-level key of the same
name (so export can carry it) whose value is ``FSCE()``'s default, and the
front end's arguments likewise. A constructor argument added, renamed or
given another default without the yaml fails here.
"""

import importlib
import inspect

import pytest
import ruamel.yaml
from hyperpyyaml import resolve_references

from speechbrain_fsce.inference.export import architecture_keys
from speechbrain_fsce.models import FSCE
from speechbrain_fsce.processing import SpectralFrontEnd
from speechbrain_fsce.resources import hparams_file

MODEL_YAML = hparams_file("fsce_model.yaml")

#: Arguments computed from other keys instead of passed from their own key.
DERIVED = {"model": {"num_freqs"}}
#: Arguments deliberately left at their default (numerical floors).
NOT_PASSED = {"front_end": {"eps"}}


def _load(resolve):
    with open(MODEL_YAML, encoding="utf-8") as f:
        text = resolve_references(f).getvalue() if resolve else f.read()
    return ruamel.yaml.YAML().load(text)


def _value(node):
    tag = getattr(getattr(node, "tag", None), "value", None) or ""
    if tag.startswith("!name:"):
        module, _, attr = tag[len("!name:") :].rpartition(".")
        return getattr(importlib.import_module(module), attr)
    assert not tag, f"unexpected tag {tag}"
    if isinstance(node, (list, tuple)):
        return [_value(v) for v in node]
    return node


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


@pytest.mark.parametrize("key, cls", [("model", FSCE), ("front_end", SpectralFrontEnd)])
def test_model_yaml_defaults_equal_constructor_defaults(key, cls):
    passed = _load(resolve=True)[key]
    params = inspect.signature(cls).parameters
    missing = sorted(set(params) - set(passed) - NOT_PASSED.get(key, set()))
    assert not missing, f"{key}: arguments of {cls.__name__} not set by the yaml: {missing}"
    unknown = sorted(set(passed) - set(params))
    assert not unknown, f"{key}: yaml passes {unknown}, not arguments of {cls.__name__}"
    differ = {
        name: (_value(passed[name]), params[name].default)
        for name in passed
        if _plain(_value(passed[name])) != _plain(params[name].default)
    }
    assert not differ, f"{key}: yaml value != {cls.__name__}() default: {differ}"


def test_every_fsce_argument_has_its_own_exportable_key():
    raw = _load(resolve=False)
    exportable = architecture_keys()
    for name in inspect.signature(FSCE).parameters:
        if name in DERIVED["model"]:
            continue
        node = raw["model"][name]
        assert node.tag.value == "!ref" and node.value == f"<{name}>", name
        assert name in exportable, name
