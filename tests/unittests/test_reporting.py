"""Every recipe's report lists the VoiceBank-DEMAND measures beside the paper's."""

import json

import numpy as np

from speechbrain_fsce import metrics, reporting
from speechbrain_fsce.testing import speech_like


def test_results_files_carry_composites_and_ssnr(tmp_path):
    clean = speech_like(1.5, seed=1)
    noise = np.random.default_rng(0).standard_normal(len(clean)) * 0.05
    records = [
        {
            "id": "u1",
            "snr": 0,
            "noisy": metrics.compute_all(clean, clean + noise),
            "enhanced": metrics.compute_all(clean, clean + 0.1 * noise),
        },
    ]
    table = reporting.write_results(tmp_path, records, snrs=(0,))
    saved = json.loads((tmp_path / "results.json").read_text())
    for condition in ("noisy", "enhanced"):
        for name in ("csig", "cbak", "covl", "ssnr", "pesq_nb_raw", "pesq_wb", "stoi", "sisdr"):
            assert saved[condition]["avg"][name] == records[0][condition][name], name
    assert table["enhanced"]["0"]["ssnr"] > table["noisy"]["0"]["ssnr"]
    header = (tmp_path / "results.md").read_text().splitlines()[2]
    for title in ("CSIG", "CBAK", "COVL", "SSNR (dB)", "PESQ-NB raw (paper)"):
        assert title in header
