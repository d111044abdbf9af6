"""Shared recipe runs of the integration tests.

A recipe subprocess costs ~20 s of CPU, so the fast suite trains one tiny
run (``trained_run``) and every test that only needs a finished run reads
its outputs: the report and listening page (test_recipe.py), the straight
run a resumed one must equal (test_recipe.py), run A of ``--init_from``
(test_init_from.py). Tests that change a run work on a copy.
"""

import pytest

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.inference.export import export_model
from tests.integration.recipe_utils import (
    OTHER_MODEL,
    TRAINED_RUN,
    make_corpus,
    recipe_args,
    run_recipe,
)


@pytest.fixture(scope="session")
def recipe_corpus(tmp_path_factory):
    """The generated corpus of the shared runs: 4 training speakers, 1 test
    speaker (12 test mixtures), 2 noise folders."""
    return make_corpus(tmp_path_factory.mktemp("corpus"), test_speakers=1)


@pytest.fixture(scope="session")
def trained_run(recipe_corpus, tmp_path_factory):
    """Output folder of one tiny TIMIT-recipe run on ``recipe_corpus``: 2 epochs,
    tested, exported (read it, do not change it)."""
    output = tmp_path_factory.mktemp("trained_run") / "fsce"
    proc = run_recipe(recipe_args(recipe_corpus, output, extra=TRAINED_RUN))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return output


@pytest.fixture(scope="session")
def other_model(tmp_path_factory):
    """A model folder whose architecture is not the recipe's (4 channels, not 8)."""
    folder = tmp_path_factory.mktemp("other") / "model"
    return export_model(folder, FSCEEnhancer(FSCE(**OTHER_MODEL)), OTHER_MODEL)
