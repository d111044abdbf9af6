"""``--init_from``: a recipe run starts from a model folder's weights (tiny corpus).

Run A (``trained_run``, tests/integration/conftest.py) trained the tiny
model and exported it; run B starts from A's model folder and trains no
epoch, so what B tests are the weights it started from: its enhanced test
files must be A's. A model folder of another architecture stops a fresh run
with one line naming the differing keys; a run that has a checkpoint to
resume resumes it instead, the folder not read (test_recipe.py's resume test).
"""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from tests.integration.recipe_utils import OTHER_MODEL, TRAINED_RUN, recipe_args, run_recipe

FAST = list(TRAINED_RUN)  # every run: A's options


@pytest.fixture(scope="module")
def corpus(recipe_corpus):
    return recipe_corpus


@pytest.fixture(scope="module")
def run_a(trained_run):
    assert (trained_run / "model" / "enhancer.ckpt").is_file()
    return trained_run


def _enhanced(output):
    return {p.name: sf.read(p, dtype="float32")[0] for p in (output / "enhanced").glob("*.wav")}


def _log(output):
    return (output / "log.txt").read_text()


@pytest.mark.slow  # a recipe run (~14 s CPU); init_from_model itself: test_shipped.py
def test_init_from_starts_from_the_model_weights(corpus, run_a, tmp_path):
    output = tmp_path / "b"
    extra = [f"--init_from={run_a / 'model'}", "--number_of_epochs=0", "--export_model=False"]
    extra += FAST
    proc = run_recipe(recipe_args(corpus, output, extra=extra))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"training starts from the weights of {run_a / 'model'}" in _log(output)
    a, b = _enhanced(run_a), _enhanced(output)
    test_manifest = json.loads((run_a / "prepared" / "test.json").read_text())
    assert a.keys() == b.keys() and len(a) == len(test_manifest) == 12  # 3 utterances x 4 SNRs
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    results_a, results_b = (json.loads((o / "results.json").read_text()) for o in (run_a, output))
    assert results_b["enhanced"] == results_a["enhanced"]


def test_other_architecture_is_a_one_line_error(corpus, run_a, other_model, tmp_path):
    output = tmp_path / "c"
    extra = [
        f"--init_from={other_model}",
        f"--prepared_folder={run_a / 'prepared'}",
        "--skip_prep=True",
        *FAST,
    ]
    proc = run_recipe(recipe_args(corpus, output, extra=extra))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"train.py: error: --init_from {other_model}: its architecture differs")
    assert "channels: 4 in the model folder, 8 in the training" in last
    assert '--fsce="{channels: 4}"' in last
    assert "Traceback" not in proc.stderr
    assert not list((output / "save").glob("CKPT+*"))  # nothing trained


@pytest.mark.slow  # a recipe run; the checkpointer's message: test_model_folder.py
def test_rerun_with_another_architecture_is_one_line(corpus, run_a, tmp_path):
    """Issue 17: a run folder rerun with another --fsce stopped with a 167-line
    state_dict error; its checkpoints do not fit: one line naming what to do."""
    output = tmp_path / "rerun"
    shutil.copytree(run_a, output)
    other = "{" + ", ".join(f"{k}: {v}" for k, v in OTHER_MODEL.items()) + "}"
    extra = [
        f"--fsce={other}",
        f"--prepared_folder={run_a / 'prepared'}",
        "--skip_prep=True",
        "--export_model=False",
        *FAST,
    ]
    proc = run_recipe(recipe_args(corpus, output, extra=extra))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and "does not fit the enhancer of this run" in last
    assert "another architecture (--fsce)" in last and "Traceback" not in proc.stderr
