"""Tests for speechbrain_fsce.metrics: known relations, edge cases, pypesq.

Authors
 * speechbrain-fsce developers
"""

import functools
import itertools
import math
import warnings

import numpy as np
import pytest
import torch

from speechbrain_fsce import metrics
from tests.unittests.speechlike import speech_like

SR = 16000


@functools.cache
def _clean(seconds=3.0, seed=0):
    return speech_like(seconds, SR, seed=seed)


def _noise(n, seed=1):
    return np.random.default_rng(seed).standard_normal(n)


def _at_snr(clean, noise, snr):
    """clean + noise scaled so that the energy ratio is exactly ``snr`` dB."""
    clean = clean.astype(np.float64)
    noise = noise - noise.mean()
    gain = np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr / 10))
    return clean + gain * noise


# --------------------------------------------------------------- SI-SDR


def test_sisdr_identity_is_large():
    x = _clean()
    assert metrics.sisdr(x, x) > 80


@pytest.mark.parametrize("scale", [0.01, 0.5, 3.0, -2.0])
def test_sisdr_scale_invariant(scale):
    x = _clean()
    y = _at_snr(x, _noise(len(x)), 5)
    # Exact but for the absolute eps in the residual energy.
    assert metrics.sisdr(x, scale * y) == pytest.approx(metrics.sisdr(x, y), abs=1e-4)
    # A scaled clean copy is near-perfect; the cap (energy / eps) depends on level.
    assert metrics.sisdr(x, scale * x) > 50


@pytest.mark.parametrize("snr", [-5, 0, 10, 20])
def test_sisdr_matches_snr_of_white_noise(snr):
    # Uncorrelated noise on a long signal: SI-SDR tends to the energy SNR.
    x = _clean(8.0, seed=4)
    y = _at_snr(x - x.mean(), _noise(len(x), seed=snr + 100), snr)
    assert metrics.sisdr(x, y) == pytest.approx(snr, abs=0.1)


def test_sisdr_agrees_with_speechbrain_si_snr():
    from speechbrain.nnet.losses import cal_si_snr

    x = _clean()
    y = _at_snr(x, _noise(len(x)), 3) + 0.3  # DC offset: both remove the mean
    sb = -cal_si_snr(
        torch.from_numpy(x.astype(np.float64))[:, None, None],
        torch.from_numpy(y)[:, None, None],
    )
    assert metrics.sisdr(x, y) == pytest.approx(float(sb), abs=1e-4)


def test_sisdr_silent_estimate_is_floor():
    x = _clean()
    assert metrics.sisdr(x, np.zeros_like(x)) == pytest.approx(-80.0, abs=0.1)


# ----------------------------------------------------------------- PESQ


def test_pesq_clean_near_top_and_above_noisy():
    x = _clean()
    y = _at_snr(x, _noise(len(x)), 5)
    clean = {k: metrics.compute_all(x, x)[k] for k in ("pesq_nb_raw", "pesq_nb", "pesq_wb")}
    noisy = metrics.compute_all(x, y)
    assert clean["pesq_nb_raw"] > 4.4  # raw P.862 tops out at 4.5
    assert clean["pesq_nb"] > 4.4  # nb MOS-LQO tops out at 4.549
    assert clean["pesq_wb"] > 4.5  # wb MOS-LQO tops out at 4.644
    for name, value in clean.items():
        assert noisy[name] < value - 1.0, name


def test_pesq_decreases_with_noise():
    x = _clean()
    noise = _noise(len(x))
    scores = [metrics.pesq_nb_raw(x, _at_snr(x, noise, s)) for s in (20, 10, 0)]
    assert scores[0] > scores[1] > scores[2]


def test_compute_all_uses_one_nb_evaluation(monkeypatch):
    x = _clean()
    y = _at_snr(x, _noise(len(x)), 0)
    calls = []
    real = metrics._pesq.pesq

    def counting(sample_rate, ref, deg, mode):
        calls.append(mode)
        return real(sample_rate, ref, deg, mode)

    monkeypatch.setattr(metrics._pesq, "pesq", counting)
    scores = metrics.compute_all(x, y)
    # One ITU evaluation per PESQ flavour: pesq_nb_raw is derived from
    # pesq_nb, and the composite measures reuse pesq_wb.
    assert sorted(calls) == ["nb", "wb"]
    assert set(scores) == set(metrics.METRIC_NAMES) - set(metrics.DNSMOS_NAMES)
    assert scores["pesq_nb"] == pytest.approx(metrics.pesq_nb(x, y))
    assert scores["pesq_nb_raw"] == pytest.approx(metrics.nb_mos_to_raw(scores["pesq_nb"]))


def test_nb_mos_to_raw_inverts_p862_1():
    for raw in np.linspace(-0.5, 4.5, 11):
        mos = 0.999 + 4.0 / (1.0 + math.exp(-1.4945 * raw + 4.6607))
        assert metrics.nb_mos_to_raw(mos) == pytest.approx(raw, abs=1e-9)
    # Outside the log's domain: clipped, finite, ordered.
    assert metrics.nb_mos_to_raw(0.999) == -0.5
    assert metrics.nb_mos_to_raw(-3.0) == -0.5
    assert metrics.nb_mos_to_raw(4.999) == 4.5
    assert metrics.nb_mos_to_raw(7.0) == 4.5
    assert math.isnan(metrics.nb_mos_to_raw(float("nan")))


@pytest.mark.parametrize("seed", [0, 5])
def test_pesq_nb_raw_matches_pypesq(seed):
    pypesq = pytest.importorskip("pypesq")
    x = _clean(3.0, seed=seed)
    noise = _noise(len(x), seed=seed + 7)
    for snr in (-5, 0, 5, 10, 20):
        y = _at_snr(x, noise, snr).astype(np.float32)
        ours = metrics.pesq_nb_raw(x, y)
        theirs = float(pypesq.pesq(x, y, SR))
        assert ours == pytest.approx(theirs, abs=0.02), snr


def test_pesq_wb_needs_16k():
    x = _clean()[::2]
    with pytest.raises(ValueError):
        metrics.pesq_wb(x, x, sample_rate=8000)
    scores = metrics.compute_all(x, x, sample_rate=8000)
    assert "pesq_wb" not in scores
    assert scores["pesq_nb_raw"] > 4.4


# ----------------------------------------------------------------- STOI


@pytest.mark.parametrize("extended", [False, True])
def test_stoi_monotone_in_snr(extended):
    x = _clean()
    noise = _noise(len(x))
    scores = [metrics.stoi(x, _at_snr(x, noise, s), extended=extended) for s in (-10, -5, 0, 5, 10)]
    assert all(a < b for a, b in itertools.pairwise(scores)), scores
    assert metrics.stoi(x, x, extended=extended) == pytest.approx(1.0, abs=1e-6)


def test_stoi_too_little_speech_is_nan():
    # 0.3 s passes the length check, but pystoi finds < 30 speech frames.
    x = _clean()[: int(0.3 * SR)]
    with pytest.warns(UserWarning, match="too little speech"):
        assert math.isnan(metrics.stoi(x, x))


# ------------------------------------ segmental SNR, LLR, WSS, composites


def test_composite_parts_of_identical_signals():
    x = _clean()
    parts = metrics.composite(x, x)
    assert parts["llr"] == pytest.approx(0.0, abs=1e-9)  # same LPC model
    assert parts["wss"] == 0.0  # same band slopes
    assert parts["ssnr"] == metrics.SSNR_RANGE[1]  # no error: every frame at the cap
    assert parts["csig"] == parts["covl"] == 5.0  # clipped at the top


@pytest.mark.parametrize("gain", [0.5, 2.0, 0.9])
def test_scaled_copy(gain):
    # y = g x: every frame's error is (1 - g) x, so segSNR = -20 log10|1 - g|;
    # LPC models and dB slopes ignore the level, so LLR = WSS = 0.
    x = _clean().astype(np.float64)  # g x exact to float64 rounding
    expected = -20 * math.log10(abs(1 - gain))
    assert metrics.segmental_snr(x, gain * x) == pytest.approx(expected, abs=1e-6)  # eps terms
    assert metrics.log_likelihood_ratio(x, gain * x) == pytest.approx(0.0, abs=1e-9)
    assert metrics.weighted_spectral_slope(x, gain * x) == pytest.approx(0.0, abs=1e-9)


def test_segmental_snr_clips_each_frame():
    x = _clean()
    assert metrics.segmental_snr(x, np.zeros_like(x)) == pytest.approx(0.0, abs=1e-9)
    assert metrics.segmental_snr(x, -x) == pytest.approx(-20 * math.log10(2))  # 2x error
    assert metrics.segmental_snr(x, x + 100 * _noise(len(x))) == metrics.SSNR_RANGE[0]


@pytest.mark.parametrize("snr", [-5, 0, 10, 20])
def test_segmental_snr_of_white_noise_at_known_snr(snr):
    # Stationary signal and noise: every frame sits near the global SNR.
    x = _noise(4 * SR, seed=7)
    y = _at_snr(x, _noise(len(x), seed=8), snr)
    assert metrics.segmental_snr(x, y) == pytest.approx(snr, abs=0.15)


def test_llr_wss_grow_and_composites_fall_with_noise():
    x = _clean()
    noise = _noise(len(x))
    scores = [metrics.composite(x, _at_snr(x, noise, s)) for s in (20, 10, 0)]
    for a, b in itertools.pairwise(scores):
        assert a["llr"] < b["llr"] and a["wss"] < b["wss"] and a["ssnr"] > b["ssnr"]
        assert a["csig"] > b["csig"] and a["cbak"] > b["cbak"] and a["covl"] > b["covl"]


def test_composite_linear_formulae_and_clipping():
    out = metrics.composite_from_parts(pesq=3.0, llr=0.4, wss=25.0, ssnr=8.0)
    assert out["csig"] == pytest.approx(3.093 - 1.029 * 0.4 + 0.603 * 3 - 0.009 * 25)
    assert out["cbak"] == pytest.approx(1.634 + 0.478 * 3 - 0.007 * 25 + 0.063 * 8)
    assert out["covl"] == pytest.approx(1.594 + 0.805 * 3 - 0.512 * 0.4 - 0.007 * 25)
    assert metrics.composite_from_parts(pesq=1.0, llr=3.0, wss=90.0, ssnr=-10.0) == {
        "csig": 1.0,
        "cbak": 1.0,
        "covl": 1.0,
    }
    assert math.isnan(metrics.composite_from_parts(float("nan"), 0.1, 1.0, 5.0)["cbak"])


def test_composite_uses_wideband_pesq_by_default():
    x = _clean()
    y = _at_snr(x, _noise(len(x)), 20)  # no composite at its clip
    wb = metrics.pesq_wb(x, y)
    assert metrics.composite(x, y) == pytest.approx(metrics.composite(x, y, pesq=wb))
    assert metrics.composite(x, y, pesq=wb + 1)["csig"] == pytest.approx(
        metrics.composite(x, y)["csig"] + 0.603
    )


# LLR (composite variant: no clipping at 2), WSS and segSNR computed by an
# independent implementation, pysepm-evo 0.1.1 (llr(..., used_for_composite=
# True), wss, SNRseg), in a separate virtual environment, on the pairs below.
PYSEPM_REFERENCE = {
    "white_5dB": (3.256789249, 43.877081896, -0.554881193),
    "babble_0dB": (0.618842850, 56.899696719, -1.667041641),
    "smoothed": (1.930713544, 41.247697654, 4.476755200),
}


def _reference_pairs():
    x = speech_like(2.0, SR, seed=11).astype(np.float64)
    white = _at_snr(x, _noise(len(x), seed=3), 5)
    babble = _at_snr(x, sum(speech_like(2.0, SR, seed=20 + k) for k in range(3)), 0)
    smoothed = np.convolve(white, np.hanning(9) / np.hanning(9).sum(), "same")
    return {"white_5dB": (x, white), "babble_0dB": (x, babble), "smoothed": (x, smoothed)}


@pytest.mark.parametrize("name", sorted(PYSEPM_REFERENCE))
def test_llr_wss_ssnr_match_pysepm(name):
    x, y = _reference_pairs()[name]
    llr, wss, ssnr = PYSEPM_REFERENCE[name]
    # rel 1e-6: the float32 babble sum may round differently across numpy versions.
    assert metrics.log_likelihood_ratio(x, y) == pytest.approx(llr, rel=1e-6)
    assert metrics.weighted_spectral_slope(x, y) == pytest.approx(wss, rel=1e-6)
    assert metrics.segmental_snr(x, y) == pytest.approx(ssnr, rel=1e-6)


def test_composites_at_8k_and_short_input():
    x = _clean()[::2]
    scores = metrics.compute_all(x, x, sample_rate=8000)
    assert "csig" not in scores and scores["ssnr"] == metrics.SSNR_RANGE[1]
    with pytest.warns(UserWarning, match="too short"):
        assert math.isnan(metrics.segmental_snr(x[:100], x[:100], 8000))


# --------------------------------------------------------- input rules


@pytest.mark.parametrize(
    "name",
    [
        "pesq_nb_raw",
        "pesq_nb",
        "pesq_wb",
        "stoi",
        "sisdr",
        "segmental_snr",
        "log_likelihood_ratio",
        "weighted_spectral_slope",
    ],
)
def test_silent_reference_gives_nan_and_warning(name):
    fn = getattr(metrics, name)
    x = _clean()
    with pytest.warns(UserWarning, match="silent reference"):
        assert math.isnan(fn(np.zeros_like(x), x))


def test_compute_all_on_bad_inputs_never_raises():
    x = _clean()
    bad_estimate = x.copy()
    bad_estimate[100] = np.inf
    cases = [
        (np.zeros(SR), x[:SR], "silent reference"),
        (x[:1000], x[:1000], "too short"),
        (x, bad_estimate, "non-finite"),
    ]
    for ref, est, reason in cases:
        with pytest.warns(UserWarning, match=reason):
            scores = metrics.compute_all(ref, est)
        assert all(math.isnan(scores[k]) for k in ("pesq_nb", "pesq_nb_raw", "pesq_wb", "stoi"))


def test_silent_estimate():
    x = _clean()
    with pytest.warns(UserWarning, match="silent estimate"):
        scores = metrics.compute_all(x, np.zeros_like(x))
    assert math.isnan(scores["pesq_nb"]) and math.isnan(scores["pesq_wb"])
    assert scores["stoi"] == pytest.approx(0.0, abs=1e-6)
    assert scores["sisdr"] < -70


def test_no_utterance_gives_nan():
    # Leading silence plus a sliver of speech: PESQ's VAD finds nothing.
    x = _clean()[: int(0.3 * SR)]
    with pytest.warns(UserWarning, match="PESQ failed"):
        assert math.isnan(metrics.pesq_nb(x, x))


def test_lengths_truncated_to_shorter():
    x = _clean()
    y = _at_snr(x, _noise(len(x)), 5)
    longer = np.concatenate([y, _noise(2000)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # truncation is silent by design
        for fn in (metrics.sisdr, metrics.pesq_nb, metrics.stoi):
            assert fn(x, longer) == pytest.approx(fn(x, y))
            assert fn(np.concatenate([x, x[:500]]), y) == pytest.approx(fn(x, y))


def test_torch_and_numpy_agree():
    x = _clean()
    y = _at_snr(x, _noise(len(x)), 5).astype(np.float32)
    a = metrics.compute_all(x, y)
    b = metrics.compute_all(torch.from_numpy(x)[None], torch.from_numpy(y))
    assert a == pytest.approx(b)
    with pytest.raises(ValueError):
        metrics.sisdr(np.zeros((2, 100)), np.zeros((2, 100)))


# ------------------------------------------------------ summarize_by_snr


def test_summarize_by_snr_means_and_nan_counts():
    nan = float("nan")
    records = [
        (-5, {"stoi": 0.4, "sisdr": -1.0}),
        (-5.0, {"stoi": 0.6, "sisdr": nan}),
        ("0", {"stoi": 0.8, "sisdr": 3.0}),
        (10, {"stoi": nan, "sisdr": nan}),
    ]
    out = metrics.summarize_by_snr(iter(records))
    assert list(out) == ["-5", "0", "10", "avg"]
    assert out["-5"]["stoi"] == pytest.approx(0.5)
    assert out["-5"]["sisdr"] == pytest.approx(-1.0)
    assert out["-5"]["n"] == {"items": 2, "nan": {"stoi": 0, "sisdr": 1}, "pesq_failed": 0}
    assert math.isnan(out["10"]["stoi"]) and out["10"]["n"]["nan"]["stoi"] == 1
    assert out["avg"]["stoi"] == pytest.approx(0.6)
    assert out["avg"]["sisdr"] == pytest.approx(1.0)
    assert out["avg"]["n"] == {"items": 4, "nan": {"stoi": 1, "sisdr": 2}, "pesq_failed": 0}


def test_summarize_by_snr_requested_order_and_missing():
    records = [(5, {"pesq_nb_raw": 2.0}), (0, {"pesq_nb_raw": 1.0})]
    out = metrics.summarize_by_snr(records, snrs=[-5, 0, 5, 10])
    assert list(out) == ["-5", "0", "5", "10", "avg"]
    assert math.isnan(out["-5"]["pesq_nb_raw"]) and out["-5"]["n"]["items"] == 0
    assert out["avg"]["pesq_nb_raw"] == pytest.approx(1.5)


# --------------------------------------------- EnhancementStats (parallel)


def _padded_pair():
    """Two items; item 1 is 2 s long and padded with loud garbage in the estimate."""
    x = torch.from_numpy(_clean(3.0, seed=2))
    y = torch.from_numpy(_at_snr(x.numpy(), _noise(len(x)), 5).astype(np.float32))
    short = int(2.0 * SR)
    target = torch.stack([x, torch.cat([x[:short], torch.zeros(len(x) - short)])])
    predict = torch.stack([y, torch.cat([y[:short], torch.ones(len(x) - short)])])
    return x, y, short, predict, target, torch.tensor([1.0, short / len(x)])


def test_enhancement_stats_cut_padding_and_match_compute_all():
    x, y, short, predict, target, lengths = _padded_pair()
    stats = metrics.EnhancementStats(n_jobs=1)
    stats.append(["a", "b"], predict=predict, target=target, lengths=lengths)
    by_id = stats.by_id()
    assert by_id["a"] == pytest.approx(metrics.compute_all(x, y))
    assert by_id["b"] == pytest.approx(metrics.compute_all(x[:short], y[:short]))
    mean = stats.summarize()
    assert set(mean) == set(metrics.METRIC_NAMES) - set(metrics.DNSMOS_NAMES)  # not asked for
    for name in mean:
        assert mean[name] == pytest.approx((by_id["a"][name] + by_id["b"][name]) / 2)
    assert stats.summarize("stoi") == mean["stoi"]


def test_enhancement_stats_parallel_workers_give_the_same_scores():
    _, _, _, predict, target, lengths = _padded_pair()
    ids = ["a", "b", "c", "d"]
    predict, target, lengths = predict.repeat(2, 1), target.repeat(2, 1), lengths.repeat(2)
    sequential = metrics.EnhancementStats(n_jobs=1)
    parallel = metrics.EnhancementStats(n_jobs=2)
    for stats in (sequential, parallel):
        stats.append(ids[:2], predict=predict[:2], target=target[:2], lengths=lengths[:2])
        stats.append(ids[2:], predict=predict[2:], target=target[2:], lengths=lengths[2:])
    assert parallel.ids == []  # queued: scored when 4 * n_jobs items wait, or on demand
    expected = sequential.by_id()
    for utt_id, scores in parallel.by_id().items():
        assert scores == pytest.approx(expected[utt_id]), utt_id
    assert parallel.ids == ids
    parallel.clear()
    assert parallel.summarize() == {} and parallel.ids == []


# ---------------------------------------------------------- fixtures


def test_speech_like_is_deterministic_speech():
    a = speech_like(2.0, SR, seed=3)
    assert a.dtype == np.float32 and a.shape == (2 * SR,)
    assert np.abs(a).max() == pytest.approx(0.5, abs=1e-6)
    assert np.array_equal(a, speech_like(2.0, SR, seed=3))
    assert not np.array_equal(a, speech_like(2.0, SR, seed=4))
    # Pauses: a good share of 20 ms frames is > 30 dB below the loudest.
    frames = a[: len(a) // 320 * 320].reshape(-1, 320)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
    assert 0.1 < np.mean(level < level.max() - 30) < 0.6
