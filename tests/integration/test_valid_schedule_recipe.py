"""A tiny recipe run with a validation subset, metrics every 2nd epoch, and
DNSMOS in the test reports. Slow (~2 min CPU with DNSMOS): the fast suite
checks the schedule on the Brain (tests/unittests/test_valid_schedule.py) and
DNSMOS in the Brain's test reports (tests/unittests/test_brain.py)."""

import json
import re

import pytest

from speechbrain_fsce.metrics import dnsmos_available
from tests.integration.recipe_utils import make_corpus, recipe_args, run_recipe

EPOCH_LINE = re.compile(r"^epoch: (\d+), .* - valid loss: (.*)$", re.M)


@pytest.mark.slow
def test_subset_every_n_epochs_pesq_failed_and_dnsmos(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    output = tmp_path / "run"
    extra = [
        "--number_of_epochs=3",
        "--valid_every_n_epochs=2",
        "--valid_max_utterances=2",
        "--export_model=False",
        "--dnsmos_stages=[test]",
    ]
    proc = run_recipe(recipe_args(corpus, output, extra=extra))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert re.search(r"fixed subset of 2 of the \d+ validation mixtures", proc.stderr + proc.stdout)
    valid = {int(e): s for e, s in EPOCH_LINE.findall((output / "train_log.txt").read_text())}
    assert sorted(valid) == [1, 2, 3]  # the validation loss every epoch
    assert "pesq_nb_raw" not in valid[1]  # metrics on epoch 2 and the last one
    for epoch in (2, 3):
        assert "valid pesq_nb_raw" in valid[epoch] and "valid pesq_failed: 0" in valid[epoch]
    results = json.loads((output / "results.json").read_text())
    for condition in ("noisy", "enhanced"):
        avg = results[condition]["avg"]
        assert avg["pesq_failed"] == 0 and avg["n"] > 0
        if dnsmos_available():  # the test stage adds DNSMOS when the extra is installed
            for name in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"):
                assert 1.0 <= avg[name] <= 5.0, (condition, name)
    if not dnsmos_available():
        pytest.skip("DNSMOS part needs the dnsmos extra")
    assert "DNSMOS OVRL" in (output / "results.md").read_text()
    assert "DNSMOS OVRL" in (output / "index.html").read_text()
