"""Fast validation on real corpora: a fixed validation subset, metrics every
N epochs (the loss every epoch) without breaking the checkpoint selection,
and utterances PESQ cannot score counted, not averaged."""

import json
import math
import time

import numpy as np
import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_fsce import metrics
from speechbrain_fsce.recipe import fixed_subset
from speechbrain_fsce.reporting import write_results
from speechbrain_fsce.testing import speech_like
from tests.unittests.test_best_metric import _brain as best_metric_brain

SR = 16000


def _unscorable():
    """Leading silence plus a sliver of speech: PESQ's VAD finds no utterance."""
    return speech_like(1.5, seed=3)[: int(0.3 * SR)]


# ------------------------------------------------------------ pesq_failed


def test_pesq_failures_are_counted_and_left_out_of_the_means(tmp_path):
    good = speech_like(1.5, seed=1)
    noisy = (good + 0.05 * np.random.default_rng(0).standard_normal(len(good))).astype(np.float32)
    bad = _unscorable()
    stats = metrics.EnhancementStats()
    pad = np.zeros(len(good) - len(bad), dtype=np.float32)
    predict = torch.from_numpy(np.stack([noisy, np.concatenate([bad, pad])]))
    target = torch.from_numpy(np.stack([good, np.concatenate([bad, pad])]))
    with pytest.warns(UserWarning, match="PESQ failed"):
        stats.append(["good", "bad"], predict, target, lengths=torch.tensor([1.0, 0.2]))
        assert stats.pesq_failed == 1
    scores = stats.by_id()
    assert math.isnan(scores["bad"]["pesq_wb"]) and metrics.pesq_failed(scores["bad"])
    assert not metrics.pesq_failed(scores["good"])
    assert stats.summarize("pesq_wb") == pytest.approx(scores["good"]["pesq_wb"])
    records = [{"id": i, "snr": 0, "noisy": s, "enhanced": s} for i, s in stats.by_id().items()]
    table = write_results(tmp_path, records, snrs=(0,))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["enhanced"]["avg"]["pesq_failed"] == 1 and saved["enhanced"]["avg"]["n"] == 2
    assert saved["enhanced"]["avg"]["pesq_wb"] == pytest.approx(scores["good"]["pesq_wb"])
    assert table["noisy"]["0"]["pesq_failed"] == 1
    note = (tmp_path / "results.md").read_text()
    assert "PESQ could not score 1 noisy and 1 enhanced utterance(s)" in note


# ---------------------------------------------------- valid_max_utterances


def test_fixed_subset_is_seeded_and_keeps_the_order():
    data = DynamicItemDataset({f"u{i:02d}": {"length": 20 - i} for i in range(20)})
    by_length = data.filtered_sorted(sort_key="length")
    subset = fixed_subset(by_length, 5, seed=7)
    assert len(subset) == 5
    assert subset.data_ids == fixed_subset(by_length, 5, seed=7).data_ids  # every run, process
    assert subset.data_ids != fixed_subset(by_length, 5, seed=8).data_ids
    order = [by_length.data_ids.index(i) for i in subset.data_ids]
    assert order == sorted(order)  # still sorted by length: little padding
    for count in (None, 0, 20, 50):
        assert fixed_subset(by_length, count, seed=7).data_ids == by_length.data_ids


# ---------------------------------------------------- valid_every_n_epochs


class _Stats:
    """Stands for the stage's EnhancementStats (no batches run here)."""

    def __init__(self, means, failed=0):
        self.means, self.pesq_failed = means, failed

    def summarize(self):
        return self.means


class _Logger:
    def __init__(self):
        self.valid = {}

    def log_stats(self, stats_meta, train_stats=None, valid_stats=None, **kwargs):
        self.valid[stats_meta["epoch"]] = valid_stats


def _brain(tmp_path, limit, **hparams):
    brain = best_metric_brain(
        tmp_path, epoch_counter=EpochCounter(limit), sample_rate=SR, **hparams
    )
    brain.hparams.train_logger = _Logger()
    return brain


def _run_epochs(brain, scores, limit):
    """Validates epochs 1..limit; a scored epoch gets ``scores[epoch]``."""
    scored = []
    for epoch in range(1, limit + 1):
        brain.on_stage_start(sb.Stage.VALID, epoch)
        if brain.scoring:
            scored.append(epoch)
            brain.enhanced_stats = _Stats(scores[epoch], failed=epoch)
        brain.train_stats = {"loss": 1.0}
        brain.on_stage_end(sb.Stage.VALID, float(epoch), epoch)  # loss = epoch: tells them apart
    return scored


# pesq_nb_raw is slow: test_best_metric.py selects by it; SI-SDR (negative) is the harder case.
@pytest.mark.parametrize("best", [pytest.param("pesq_nb_raw", marks=pytest.mark.slow), "sisdr"])
def test_metrics_every_n_epochs_and_the_best_scored_checkpoint_wins(tmp_path, best):
    brain = _brain(tmp_path, limit=7, valid_every_n_epochs=3, best_metric=best)
    # SI-SDR can be far below -1 dB: an unscored epoch must still lose.
    scores = {3: {best: -5.0}, 6: {best: -8.0}, 7: {best: -9.0}}
    assert _run_epochs(brain, scores, limit=7) == [3, 6, 7]  # every 3rd and the last
    logged = brain.hparams.train_logger.valid
    assert sorted(logged) == list(range(1, 8))  # the loss every epoch
    assert all(set(logged[e]) == {"loss"} for e in (1, 2, 4, 5))
    assert logged[6][best] == -8.0 and logged[6]["pesq_failed"] == 6
    tested = brain.checkpointer.find_checkpoint(max_key=best)  # what evaluate and export load
    assert tested.meta["loss"] == 3.0
    kept = sorted(c.meta["loss"] for c in brain.checkpointer.list_checkpoints())
    assert kept == [3.0, 7.0]  # the best and the most recent


def test_an_unscored_first_epoch_does_not_break_the_selection(tmp_path):
    brain = _brain(tmp_path, limit=4, valid_every_n_epochs=2)
    brain.on_stage_start(sb.Stage.VALID, 1)
    assert not brain.scoring
    brain.train_stats = {"loss": 1.0}
    brain.on_stage_end(sb.Stage.VALID, 1.0, 1)
    ckpt = brain.checkpointer.find_checkpoint(max_key="pesq_nb_raw")
    assert ckpt is not None and ckpt.meta["pesq_nb_raw"] == float("-inf")


def test_the_epoch_the_time_budget_stops_after_is_scored(tmp_path):
    brain = _brain(tmp_path, limit=50, valid_every_n_epochs=10, time_budget_minutes=1)
    brain._first_epoch = 1
    brain.fit_start_time = time.time() - 35  # epoch 1 took 35 s of 60: a 2nd would overrun
    brain.on_stage_start(sb.Stage.VALID, 1)
    assert brain.scoring and brain.hparams.epoch_counter.limit == 1


def test_a_bad_schedule_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="valid_every_n_epochs"):
        _brain(tmp_path, limit=2, valid_every_n_epochs=-1)
    with pytest.raises(ValueError, match="needs valid in dnsmos_stages"):
        _brain(tmp_path, limit=2, best_metric="dnsmos_ovrl")
