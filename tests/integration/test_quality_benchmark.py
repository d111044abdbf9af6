"""benchmarks/quality.py on a tiny generated corpus: same batches, resume, report."""

import json
import math
import shlex

import pytest
import torch

from benchmarks import quality
from tests.integration.recipe_utils import make_prepared


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("quality"), speakers=3, utts=2, test_speakers=2)


def test_batches_depend_on_seed_and_step_only(prepared):
    a = quality.TrainBatches(str(prepared), 3, 0.5, seed=7)
    b = quality.TrainBatches(str(prepared), 3, 0.5, seed=7)
    for step in (4, 0, 4):  # any order: a system resumed at step 4 sees what others saw
        for x, y in zip(a(step), b(step)):
            assert torch.equal(x, y)
    assert not torch.equal(a(0)[0], a(1)[0])
    assert not torch.equal(a(0)[0], quality.TrainBatches(str(prepared), 3, 0.5, seed=8)(0)[0])
    noisy, clean, lengths = a(2)
    assert noisy.shape == clean.shape == (3, 8000) and lengths.shape == (3,)


def test_summary_counts_unscored_clips():
    rows = {
        "a": {"snr": -5, **dict.fromkeys(quality.METRICS, 1.0)},
        "b": {"snr": -5, **dict.fromkeys(quality.METRICS, 3.0)},
    }
    rows["b"]["pesq_wb"] = float("nan")  # PESQ found no utterance
    rows["b"]["dnsmos_ovrl"] = None  # not computed for this clip
    table = quality.summarize(rows)
    assert table["-5"]["pesq_wb"] == 1.0 and table["-5"]["pesq_wb_unscored"] == 1
    assert table["-5"]["stoi"] == 2.0 and "stoi_unscored" not in table["-5"]
    assert table["-5"]["dnsmos_ovrl"] == 1.0 and table["-5"]["dnsmos_n"] == 1
    assert "dnsmos_ovrl_unscored" not in table["-5"]
    assert table["0"]["n"] == 0 and table["0"]["stoi"] is None


def test_one_command_trains_resumes_and_reports(prepared, tmp_path, capsys):
    common = [
        "--prepared",
        str(prepared),
        "--work",
        str(tmp_path / "work"),
        "--output",
        str(tmp_path / "out"),
        "--systems",
        "noisy,magnitude_only",
        "--ckpt_every",
        "1",
        "--test_utterances",
        "1",
        "--dnsmos_utterances",
        "0",
        "--jobs",
        "1",
        "--excerpt_seconds",
        "0.5",
        "--batch_size",
        "2",
    ]
    assert quality.main(common + ["--steps", "2"]) == 0
    results = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert list(results) == ["noisy", "magnitude_only"]
    row = results["magnitude_only"]
    assert row["steps"] == 2 and row["parameters"] > 0 and row["train_seconds"] > 0
    for snr in ("-5", "0", "5", "10", "avg"):
        assert set(quality.METRICS) <= set(row[snr])
        assert math.isfinite(row[snr]["stoi"])
    assert results["noisy"]["steps"] == 0 and results["noisy"]["parameters"] == 0
    # SI-SDR of the unprocessed mixtures is their SNR (within a dB).
    assert abs(results["noisy"]["10"]["sisdr"] - 10) < 1.0
    assert (tmp_path / "out" / "quality.md").is_file()
    assert (tmp_path / "out" / "quality.png").stat().st_size > 1000
    assert (tmp_path / "work" / "magnitude_only" / "model" / "enhancer.ckpt").is_file()

    capsys.readouterr()
    variant = 'mag_fused={"fused_weight": 1.0, "lr": 0.002, "branches": "magnitude"}'
    assert quality.main(common + ["--steps", "3", "--variant", variant]) == 0
    assert "magnitude_only: resumed at update 2" in capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert results["magnitude_only"]["steps"] == 3
    row = results["mag_fused"]
    assert row["steps"] == 3 and row["lr"] == 0.002
    assert row["loss_weights"] == {"fused_weight": 1.0}
    assert row["configuration"]["branches"] == "magnitude"
    # Same architecture as magnitude_only, another loss and lr: other weights.
    assert row["parameters"] == results["magnitude_only"]["parameters"]
    assert row["final_loss"] != results["magnitude_only"]["final_loss"]
    assert "`mag_fused`" in (tmp_path / "out" / "quality.md").read_text()
    paired = quality.paired_differences(results, reference="magnitude_only")
    low, high = paired["noisy"]["stoi"][1:]
    assert low <= paired["noisy"]["stoi"][0] <= high
    mean_gap = results["noisy"]["avg"]["stoi"] - results["magnitude_only"]["avg"]["stoi"]
    assert paired["noisy"]["stoi"][0] == pytest.approx(mean_gap, abs=1e-9)
    assert shlex.split(row["command"])[-2:] == ["--variant", variant]  # re-runnable as printed
    assert row["batch_size"] == 2 and row["excerpt_seconds"] == 0.5

    # A work folder is never resumed or re-used under other settings.
    for changed, why in (
        (["--steps", "3", "--batch_size", "3"], "other settings (batch_size)"),
        (["--steps", "2", "--systems", "magnitude_only"], "updates already, more than --steps 2"),
    ):
        with pytest.raises(SystemExit) as err:
            quality.main(common + changed)
        assert why in str(err.value)


def test_unknown_system_is_a_usage_error(prepared, tmp_path):
    with pytest.raises(SystemExit) as err:
        quality.main(["--prepared", str(prepared), "--systems", "fsce,nope", "--jobs", "1"])
    assert err.value.code == 2
