"""``--init_from``: a recipe run starts from a model folder's weights (tiny corpus).

Run A trains the tiny model and exports it; run B starts from A's model
folder and trains no epoch, so what B tests are the weights it started from:
its enhanced test files must be A's. A model folder of another architecture
stops a fresh run with one line naming the differing keys, and a run that
has a checkpoint to resume resumes it instead (the folder is not read).
"""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.inference.export import export_model
from tests.integration.recipe_utils import make_corpus, recipe_args, run_recipe

FAST = ["--lr=0.003", "--metric_n_jobs=1"]  # every run: A's lr, no scoring pool
OTHER_MODEL = dict(
    channels=4, inner_channels=4, tcm_hidden_channels=8, num_tcm_modules=1, dilations=[1, 2]
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    # Smaller than the recipe tests' corpus: 8 test mixtures, scored three times.
    return make_corpus(
        tmp_path_factory.mktemp("corpus"), speakers=3, utts=2, test_speakers=1, seconds=1.0
    )


@pytest.fixture(scope="module")
def run_a(corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("a") / "run"
    proc = run_recipe(recipe_args(corpus, output, extra=FAST))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (output / "model" / "enhancer.ckpt").is_file()
    return output


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """A model folder whose architecture is not the recipe's (4 channels, not 8)."""
    folder = tmp_path_factory.mktemp("other") / "model"
    return export_model(folder, FSCEEnhancer(FSCE(**OTHER_MODEL)), OTHER_MODEL)


def _enhanced(output):
    return {p.name: sf.read(p, dtype="float32")[0] for p in (output / "enhanced").glob("*.wav")}


def _log(output):
    return (output / "log.txt").read_text()


def test_init_from_starts_from_the_model_weights(corpus, run_a, tmp_path):
    output = tmp_path / "b"
    extra = [f"--init_from={run_a / 'model'}", "--number_of_epochs=0", "--export_model=False"]
    extra += FAST
    proc = run_recipe(recipe_args(corpus, output, extra=extra))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"training starts from the weights of {run_a / 'model'}" in _log(output)
    a, b = _enhanced(run_a), _enhanced(output)
    assert a.keys() == b.keys() and len(a) == 8  # 2 test utterances x 4 SNRs
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


def test_resuming_wins_over_init_from(corpus, run_a, other_model):
    """A's folder holds its checkpoints: the rerun resumes them (it would
    fail if it read the model folder of the other architecture)."""
    before = _enhanced(run_a)
    extra = [f"--init_from={other_model}", "--export_model=False", *FAST]
    proc = run_recipe(recipe_args(corpus, run_a, extra=extra))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"init_from: {other_model} not used: resuming from the checkpoint" in _log(run_a)
    after = _enhanced(run_a)
    for name in before:
        assert np.array_equal(before[name], after[name]), name


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
