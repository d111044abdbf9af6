"""A tiny end-to-end run of recipes/Voicebank/train.py on a generated
corpus in the VoiceBank-DEMAND layout (48 kHz files, p226_001.wav names).

Slow (a second recipe run, ~40 s CPU): the fast suite checks VoiceBank
preparation and paired excerpts (test_dataio_paired.py), the composite
metrics (test_metrics.py) as units, and the recipe code it shares with the
TIMIT recipe (test_recipe.py)."""

import json
import re

import pytest

from tests.integration.recipe_utils import (
    REPO,
    TINY_MODEL,
    make_voicebank_corpus,
    run_recipe,
)

COMPOSITES = ("csig", "cbak", "covl", "ssnr")


@pytest.mark.slow
def test_voicebank_recipe_trains_and_scores(tmp_path):
    corpus = make_voicebank_corpus(tmp_path / "VoiceBank-DEMAND")
    output = tmp_path / "run"
    args = [
        "hparams/fsce.yaml",
        f"--data_folder={corpus}",
        f"--output_folder={output}",
        f"--fsce={TINY_MODEL}",
        "--number_of_epochs=1",
        "--batch_size=2",
        "--train_chunk_seconds=0.5",
        "--metric_n_jobs=2",
        "--export_model=False",
    ]
    proc = run_recipe(args, recipe=REPO / "recipes" / "Voicebank")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (output / "train.py").is_file()  # the recipe's script is kept with the run

    # Validation ran on the held-out speakers and logged every metric.
    log = (output / "train_log.txt").read_text()
    assert re.search(r"^epoch: 1, .*valid loss: .*valid csig: .*valid ssnr: ", log, re.M), log
    valid = json.loads((output / "prepared" / "valid.json").read_text())
    assert {item["speaker"] for item in valid.values()} == {"p226", "p287"}
    # 16 kHz copies were written once, beside the originals (SpeechBrain's layout).
    assert len(list((corpus / "noisy_testset_wav_16k").glob("p*.wav"))) == 4

    results = json.loads((output / "results.json").read_text())
    for condition in ("noisy", "enhanced"):
        assert list(results[condition]) == ["avg"]  # VoiceBank: the whole test set
        row = results[condition]["avg"]
        assert row["n"] == 4
        assert {"pesq_wb", "stoi", *COMPOSITES} <= set(row)
        for name in ("csig", "cbak", "covl"):
            assert 1.0 <= row[name] <= 5.0, (condition, name, row[name])
    # The generated noisy files are 5 dB mixtures: their segmental SNR is near it.
    assert -1.0 < results["noisy"]["avg"]["ssnr"] < 7.0
    table = (output / "results.md").read_text()
    for title in ("CSIG", "CBAK", "COVL", "SSNR (dB)"):
        assert title in table
    assert sorted(p.stem for p in (output / "enhanced").glob("*.wav")) == [
        "p232_001",
        "p232_002",
        "p257_001",
        "p257_002",
    ]
