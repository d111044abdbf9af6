"""``best_metric``: one hparam picks the checkpoint kept, tested and exported."""

import pathlib

import pytest
import ruamel.yaml
import speechbrain as sb
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.brain import FSCEBrain
from speechbrain_fsce.losses import FSCELoss
from speechbrain_fsce.metrics import METRIC_NAMES
from speechbrain_fsce.reporting import REPORTED_METRICS
from tests.unittests.tiny_models import SMALL

RECIPE_YAMLS = sorted(
    (pathlib.Path(__file__).resolve().parents[2] / "recipes").glob("*/hparams/*.yaml")
)


class _Stats:
    pesq_failed = 0

    def __init__(self, means):
        self.means = means

    def summarize(self):
        return self.means


class _Logger:
    def log_stats(self, **kwargs):
        pass


def _brain(tmp_path, **hparams):
    enhancer = FSCEEnhancer(FSCE(**SMALL))
    checkpointer = Checkpointer(tmp_path / "save", recoverables={"enhancer": enhancer})
    hparams = dict(
        loss=FSCELoss(),
        lr_annealing=lambda opts, epoch, loss: (1e-3, 1e-3),
        train_logger=_Logger(),
        **hparams,
    )
    brain = FSCEBrain(modules={"enhancer": enhancer}, hparams=hparams, checkpointer=checkpointer)
    brain.optimizer = None  # the stub schedule never touches it
    return brain


def _validate(brain, epoch, means):
    brain.on_stage_start(sb.Stage.VALID, epoch)
    brain.enhanced_stats = _Stats(means)
    brain.train_stats = {"loss": 1.0}
    brain.on_stage_end(sb.Stage.VALID, 1.0, epoch)


@pytest.mark.parametrize("best, best_epoch", [("pesq_wb", 2), ("pesq_nb_raw", 1), (None, 1)])
def test_the_kept_checkpoint_is_the_best_by_best_metric(tmp_path, best, best_epoch):
    brain = _brain(tmp_path, sample_rate=16000, **({"best_metric": best} if best else {}))
    scores = {
        1: {"pesq_nb_raw": 3.0, "pesq_wb": 2.0},
        2: {"pesq_nb_raw": 1.0, "pesq_wb": 2.5},
        3: {"pesq_nb_raw": 2.0, "pesq_wb": 1.0},
    }
    for epoch, means in scores.items():
        _validate(brain, epoch, means)
    kept = {c.meta["pesq_wb"] for c in brain.checkpointer.list_checkpoints()}
    assert kept == {scores[best_epoch]["pesq_wb"], scores[3]["pesq_wb"]}  # best + most recent
    tested = brain.checkpointer.find_checkpoint(max_key=brain.best_metric)  # what evaluate loads
    assert tested.meta["pesq_wb"] == scores[best_epoch]["pesq_wb"]


def test_an_unknown_best_metric_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="best_metric: 'pesq' is not one of"):
        _brain(tmp_path, best_metric="pesq")


@pytest.mark.parametrize("path", RECIPE_YAMLS, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_every_recipe_yaml_names_a_reported_metric(path):
    assert ruamel.yaml.YAML().load(path.read_text())["best_metric"] in REPORTED_METRICS


def test_every_reported_metric_is_computed():
    # best_metric must be a reported metric, and a reported one must be scored.
    assert REPORTED_METRICS and set(REPORTED_METRICS) <= set(METRIC_NAMES)
