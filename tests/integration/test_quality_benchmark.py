"""benchmarks/quality.py on a tiny generated corpus: same batches, resume, report."""

import json
import math
import shlex
import shutil

import pytest
import torch

from benchmarks import quality
from benchmarks.quality_systems import packaged_systems
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


def test_summary_of_clean_input_and_groups():
    inf = float("inf")
    rows = {
        "a": {
            "snr": -5,
            "group": "cs_real",
            "noise_type": "hum",
            **dict.fromkeys(quality.METRICS, 1.0),
        },
        "b": {"snr": 20, "noise_type": "hum", **dict.fromkeys(quality.METRICS, 3.0)},
        "c": {
            "snr": inf,
            "group": "cs_real",
            "noise_type": None,
            **dict.fromkeys(quality.METRICS, 5.0),
        },
    }
    rows["c"]["sisdr"] = inf  # clean input scored against itself
    table = quality.summarize(rows)
    assert table["snrs"] == ["-5", "20", "clean"]
    assert list(table)[:6] == ["-5", "0", "5", "10", "20", "clean"]
    assert table["clean"]["n"] == 1 and table["clean"]["stoi"] == 5.0
    assert table["clean"]["sisdr"] is None and table["clean"]["sisdr_unscored"] == 1
    # Averages are over the mixtures with noise: clean input left out.
    assert table["avg"]["n"] == 2 and table["avg"]["stoi"] == 2.0
    assert json.loads(json.dumps(table)) == table  # no inf, no nan left
    groups = table["groups"]
    assert sorted(groups) == ["all", "cs_real"]  # no group in the manifest: "all"
    assert groups["cs_real"]["avg"]["n"] == 1 and groups["cs_real"]["clean"]["n"] == 1
    assert groups["all"]["20"]["stoi"] == 3.0
    assert list(table["noise_types"]) == ["hum"] and table["noise_types"]["hum"]["avg"]["n"] == 2
    assert quality.snr_key(inf) == "clean" and quality.snr_key(-5.0) == "-5"


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
        "--rtf_seconds",
        "0.5",
        "--rtf_repeats",
        "1",
    ]
    assert quality.main(common + ["--steps", "2"]) == 0
    results = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert list(results) == ["noisy", "magnitude_only"]
    row = results["magnitude_only"]
    assert row["steps"] == 2 and row["parameters"] > 0 and row["train_seconds"] > 0
    assert row["rtf"] > 0 and row["rtf_cpu"] >= 0 and row["rtf_seconds"] == 0.5
    assert row["description"] == quality.DESCRIPTIONS["magnitude_only"] and row["trained_here"]
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


def _with_groups_and_clean_input(prepared, folder):
    """A copy of the prepared corpus whose test manifest has what the benchmark
    corpus adds: a group on some mixtures (not all), a noise type on one,
    and a clean-input mixture (SNR Infinity) per test utterance."""
    shutil.copytree(prepared, folder)
    path = folder / "test.json"
    manifest = json.loads(path.read_text())
    for item in manifest.values():
        if item["snr"] in (-5, 0):
            item["group"] = "cs_real"
        elif item["snr"] == 5:
            item.update(group="en_tts", noise_type="babble")
    for item in list(manifest.values()):
        key = f"{item['clean_id']}_clean"
        manifest[key] = {
            **{k: item[k] for k in ("clean_wav", "length", "clean_id")},
            "noisy_wav": item["clean_wav"],
            "snr": float("inf"),
            "group": "cs_real",
        }
    path.write_text(json.dumps(manifest))  # Infinity, as json writes it
    return folder


def test_groups_clean_input_and_shipped_rows(prepared, tmp_path):
    corpus = _with_groups_and_clean_input(prepared, tmp_path / "prepared")
    args = ["--prepared", str(corpus), "--work", str(tmp_path / "work"), "--output"]
    args += [str(tmp_path / "out"), "--systems", "noisy,shipped_causal", "--jobs", "1"]
    args += ["--test_utterances", "1", "--dnsmos_utterances", "0", "--device", "cpu"]
    args += ["--rtf_seconds", "0.5", "--rtf_repeats", "1"]
    assert quality.main(args) == 0
    results = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert list(results) == ["noisy", "shipped_causal"]
    noisy = results["noisy"]
    assert noisy["snrs"] == ["-5", "0", "5", "10", "clean"]
    assert noisy["clean"]["n"] == 1 and noisy["clean"]["stoi"] == pytest.approx(1.0)
    assert noisy["clean"]["sisdr"] > 90  # the metric's ceiling: finite, reported
    assert noisy["avg"]["n"] == 4  # clean input is not in the averages
    assert abs(noisy["avg"]["sisdr"] - 2.5) < 1.0  # mean of -5, 0, 5, 10 dB
    groups = noisy["groups"]
    assert sorted(groups) == ["all", "cs_real", "en_tts"]
    assert groups["cs_real"]["avg"]["n"] == 2 and groups["cs_real"]["clean"]["n"] == 1
    assert groups["en_tts"]["avg"]["n"] == 1 and groups["all"]["avg"]["n"] == 1
    types = noisy["noise_types"]  # noise file stems of the tiny corpus: n0, n1
    assert "babble" in types and set(types) <= {"babble", "n0", "n1"}
    assert sum(t["avg"]["n"] for t in types.values()) == 4
    shipped = results["shipped_causal"]
    assert shipped["parameters"] > 0 and shipped["steps"] == 0
    assert not shipped["trained_here"] and shipped["lr"] is None
    assert shipped["source"].endswith("causal") and "shipped" in shipped["description"]
    assert shipped["rtf"] > 0 and math.isfinite(shipped["avg"]["stoi"])
    scores = json.loads(open(shipped["scores_file"]).read())
    assert {v["group"] for v in scores.values()} == {"all", "cs_real", "en_tts"}
    text = (tmp_path / "out" / "quality.md").read_text()
    assert "clean (clean input)" in text and "Per corpus group" in text
    assert "cs_real (n=2)" in text and "Per noise type" in text
    assert "Difference from `shipped_causal`" in text


def test_packaged_peer_needs_the_extra(prepared, tmp_path):
    if packaged_systems()["dtln"].available():
        pytest.skip("the peers extra is installed")
    with pytest.raises(SystemExit) as err:
        quality.main(["--prepared", str(prepared), "--systems", "dtln", "--jobs", "1"])
    assert err.value.code == 2


def test_folder_rows_are_keyed_on_their_weights(tmp_path, monkeypatch):
    """A model folder whose weights were replaced (a re-shipped model) gets another config,
    so its cached scores are refused, not re-used; rows without a folder keep theirs."""
    import argparse

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "enhancer.ckpt").write_bytes(b"weights 1")
    monkeypatch.setitem(quality.FOLDERS, "mine", str(folder))
    args = argparse.Namespace(
        batch_size=2,
        excerpt_seconds=1.0,
        seed=1,
        test_utterances=2,
        dnsmos_utterances=0,
        prepared=str(tmp_path),
    )
    before = quality.system_config("mine", args)
    (folder / "enhancer.ckpt").write_bytes(b"weights 2")
    after = quality.system_config("mine", args)
    assert before["source"] == after["source"] == str(folder)
    assert before["weights_sha256"] != after["weights_sha256"]
    assert "weights_sha256" not in quality.system_config("noisy", args)
