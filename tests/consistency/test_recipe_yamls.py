"""Recipe yamls share one training definition and differ only where they say.

* Every recipe yaml takes its loss, optimiser, learning-rate schedule, epoch
  counter, loaders and train logger from ``hparams/fsce_training.yaml``
  (``training: !include:...``; its keys point there), so these cannot drift.
* Each variant's header lists the keys it changes from TIMIT's ``fsce.yaml``
  (``fsce.yaml with: a, b[c], ...``); everything else (comments aside) must be
  identical: over all keys for the TIMIT variants, over the keys both have
  for the other corpora's recipes (their data sections are their own).
"""

import pathlib
import re

import pytest
import ruamel.yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
BASE = REPO / "recipes" / "TIMIT" / "hparams" / "fsce.yaml"
TRAINING = REPO / "hparams" / "fsce_training.yaml"
RECIPE_YAMLS = sorted((REPO / "recipes").glob("*/hparams/*.yaml"))
VARIANTS = [p for p in RECIPE_YAMLS if p != BASE]
INCLUDE = "!include:../../../hparams/fsce_training.yaml"


def _tag(node):
    return getattr(getattr(node, "tag", None), "value", None)


def _leaf(node):
    if isinstance(node, list):
        return _tag(node), [_leaf(v) for v in node]
    return _tag(node), str(getattr(node, "value", node))


def _flatten(node, prefix=""):
    """``{"a[b][c]": (tag, value)}``; a mapping is an entry of its own only
    when tagged (an object or an include), otherwise its leaves say it all."""
    out = {}
    for key, value in node.items():
        path = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            if _tag(value):
                out[path] = ("mapping", _tag(value))
            out.update(_flatten(value, path))
        else:
            out[path] = _leaf(value)
    return out


def _load(path):
    return ruamel.yaml.YAML().load(path.read_text())


def _declared(path):
    header = " ".join(
        line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")
    )
    match = re.search(r"fsce\.yaml with: (.*?)\s*\(checked by a test", header)
    assert match, f"{path.name}: header does not list its differences from fsce.yaml"
    return {k.strip() for k in match.group(1).split(",")}


def test_there_are_variants():
    assert any(p.parent == BASE.parent for p in VARIANTS), "no TIMIT yaml besides fsce.yaml"
    assert any(p.parent != BASE.parent for p in VARIANTS), "no other corpus's recipe yaml"


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_variant_differs_from_fsce_yaml_only_where_declared(path):
    base, variant = _flatten(_load(BASE)), _flatten(_load(path))
    keys = set(base) | set(variant)
    if path.parent != BASE.parent:  # another corpus: its data keys are its own
        keys = set(base) & set(variant)
    differ = {k for k in keys if base.get(k) != variant.get(k)}
    assert differ == _declared(path), (
        f"{path.name}: undeclared differences {sorted(differ - _declared(path))}, "
        f"declared but equal {sorted(_declared(path) - differ)}"
    )


@pytest.mark.parametrize("path", RECIPE_YAMLS, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_training_objects_come_from_the_shared_yaml(path):
    recipe, shared = _load(path), _load(TRAINING)
    assert _tag(recipe.get("training")) == INCLUDE, f"{path.name}: no `training: {INCLUDE}`"
    placeholders = {k for k, v in shared.items() if _tag(v) == "!PLACEHOLDER"}
    passed = recipe["training"]
    for key in placeholders:  # the recipe's own value, overridable from the command line
        assert key in recipe and str(getattr(passed.get(key), "value", None)) == f"<{key}>", (
            f"{path.name}: training[{key}] must be `!ref <{key}>`"
        )
    for key in set(shared) - placeholders:  # one definition: the recipe points at it
        value = recipe.get(key)
        assert _tag(value) == "!ref" and value.value == f"<training[{key}]>", (
            f"{path.name}: {key} must be `!ref <training[{key}]>`, not its own definition"
        )
    unknown = set(passed) - set(shared)
    assert not unknown, f"{path.name}: training overrides keys it does not have: {sorted(unknown)}"


def test_shared_training_yaml_loads_only_with_its_inputs():
    from hyperpyyaml import load_hyperpyyaml

    inputs = dict(
        number_of_epochs=3, batch_size=2, lr=0.01, train_log="/dev/null", fused_weight=0.5
    )
    hp = load_hyperpyyaml(TRAINING.read_text(), inputs)
    assert hp["epoch_counter"].limit == 3 and hp["opt_class"].keywords["lr"] == 0.01
    assert hp["loss"].fused_weight == 0.5
    for missing in inputs:  # each input has no default here: the recipe's value is the one
        with pytest.raises(ValueError, match=f"'{missing}' is a !PLACEHOLDER"):
            load_hyperpyyaml(
                TRAINING.read_text(), {k: v for k, v in inputs.items() if k != missing}
            )
