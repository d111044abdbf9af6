"""DNSMOS (the ``dnsmos`` extra): ranges, noise sensitivity, rates, short input,
and a clean skip when ``speechmos`` is not installed."""

import math
import sys

import numpy as np
import pytest
import torch

from speechbrain_fsce import metrics
from speechbrain_fsce.dataio.audio import resample
from speechbrain_fsce.testing import speech_like

pytest.importorskip("speechmos", reason="needs the dnsmos extra")

KEYS = {"sig", "bak", "ovrl", "p808"}
#: speechmos doubles a short clip until it fills a 9.01 s window and scores
#: every window a second apart: 2.4 s -> 9.6 s is one window, the cheapest.
SECONDS = 2.4


def _noisy(clean, snr_db, seed=0):
    noise = np.random.default_rng(seed).standard_normal(len(clean))
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (clean + noise).astype(np.float32)


@pytest.fixture(scope="module")
def clean():
    return speech_like(SECONDS, seed=4)


@pytest.fixture(scope="module")
def clean_scores(clean):
    return metrics.dnsmos(clean)


def test_scores_are_mos_values(clean_scores):
    assert set(clean_scores) == KEYS
    for name, value in clean_scores.items():
        assert 1.0 <= value <= 5.0, (name, value)


def test_heavy_white_noise_scores_lower(clean, clean_scores):
    noisy = metrics.dnsmos(_noisy(clean, 0.0))
    assert noisy["bak"] < clean_scores["bak"] - 0.5  # the background is what DNSMOS BAK rates
    assert noisy["ovrl"] < clean_scores["ovrl"] - 0.3


def test_other_rates_are_resampled_to_16k():
    x8 = speech_like(SECONDS, sample_rate=8000, seed=5)
    at_8k = metrics.dnsmos(x8, sample_rate=8000)
    assert at_8k == metrics.dnsmos(resample(x8, 8000, 16000).numpy(), 16000)
    assert all(1.0 <= v <= 5.0 for v in at_8k.values())
    # Read as 16 kHz (the rate ignored), the same samples are another signal.
    assert at_8k != metrics.dnsmos(x8, 16000)


def test_too_short_or_non_finite_gives_nan_and_warning():
    for signal, reason in (
        (np.zeros(0, dtype=np.float32), "too short"),  # speechmos itself would loop forever
        (speech_like(0.2), "too short"),
        (np.full(16000, np.nan, dtype=np.float32), "non-finite"),
    ):
        with pytest.warns(UserWarning, match=f"DNSMOS set to nan: .*{reason}"):
            scores = metrics.dnsmos(signal)
        assert set(scores) == KEYS and all(math.isnan(v) for v in scores.values())


def test_loud_input_is_clipped_not_refused(clean):
    scores = metrics.dnsmos(torch.from_numpy(4 * clean))  # peak 2.0; speechmos refuses > 1
    assert all(1.0 <= v <= 5.0 for v in scores.values())


def test_compute_all_and_enhancement_stats_add_dnsmos_of_the_estimate(clean, clean_scores):
    estimate = clean  # identical pair: the estimate's DNSMOS is the clean one's
    scores = metrics.compute_all(clean, estimate, with_dnsmos=True)
    assert {f"dnsmos_{k}": v for k, v in clean_scores.items()} == {
        k: scores[k] for k in metrics.DNSMOS_NAMES
    }
    assert not set(metrics.DNSMOS_NAMES) & set(metrics.compute_all(clean, estimate))
    stats = metrics.EnhancementStats(with_dnsmos=True)
    x = torch.from_numpy(clean)[None]
    stats.append(["a"], predict=x, target=x)
    assert stats.summarize("dnsmos_ovrl") == pytest.approx(clean_scores["ovrl"])


def test_without_speechmos_a_one_line_error_and_a_clean_skip(monkeypatch):
    for name in ("speechmos", "speechmos.dnsmos"):
        monkeypatch.setitem(sys.modules, name, None)  # import now fails
    assert metrics.dnsmos_available() is False
    for call in (
        lambda: metrics.dnsmos(np.zeros(16000)),
        lambda: metrics.dnsmos_available(require=True),
        lambda: metrics.EnhancementStats(with_dnsmos=True),
    ):
        with pytest.raises(ImportError, match=r"pip install speechbrain-fsce\[dnsmos\]") as err:
            call()
        assert "\n" not in str(err.value)
    plain = metrics.EnhancementStats()  # the other metrics do not need it
    x = torch.from_numpy(speech_like(SECONDS))[None]
    plain.append(["a"], predict=x, target=x)
    assert "stoi" in plain.summarize() and "dnsmos_ovrl" not in plain.summarize()
