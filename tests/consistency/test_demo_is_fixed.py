"""`make demo` trains a fixed number of updates: its table does not depend on the machine.

Before, ``demo.yaml`` stopped training on a 7-minute wall-clock budget: a
loaded machine ran 1 epoch instead of 5 and printed another table.
"""

import pathlib
import re

import ruamel.yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO = REPO / "recipes" / "TIMIT" / "hparams" / "demo.yaml"
UPDATES = 500  # what the README states


def _value(node):
    return getattr(node, "value", node)


def test_demo_yaml_has_no_wall_clock_budget_and_a_fixed_update_count():
    demo = ruamel.yaml.YAML().load(DEMO.read_text())
    assert _value(demo.get("time_budget_minutes")) is None
    epochs, epoch_size, batch = (
        int(_value(demo[k])) for k in ("number_of_epochs", "epoch_size", "batch_size")
    )
    assert epoch_size % batch == 0, "every epoch is whole batches"
    assert epochs * epoch_size // batch == UPDATES


def test_make_demo_runs_the_yaml_as_it_is_and_the_readme_states_the_count():
    recipe = re.search(r"^demo:.*?\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert recipe and "hparams/demo.yaml" in recipe.group(1)
    for override in ("number_of_epochs", "epoch_size", "batch_size", "time_budget"):
        assert override not in recipe.group(1)
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## What `make demo` does") :]
    assert f"{UPDATES} updates" in section.split("\n## ")[0]
    command = [line for line in readme.splitlines() if line.startswith("make demo ")]
    assert command and f"{UPDATES} updates" in command[0] and "budget" not in command[0]
