"""Objective speech-quality metrics: PESQ (nb raw / nb / wb), STOI, SI-SDR,
segmental SNR, the composite measures CSIG / CBAK / COVL, and the
non-intrusive DNSMOS (P.835 SIG / BAK / OVRL and P.808), which needs no
clean reference.

The FSCE paper reports PESQ as computed by ``pypesq``: the *raw* narrow-band
P.862 score, before the P.862.1 mapping to MOS-LQO. ``pypesq`` no longer
builds with plain pip, so :func:`pesq_nb_raw` recovers the same number from
the maintained ``pesq`` package by inverting the P.862.1 mapping
(``tests/unittests/test_metrics.py`` checks it against ``pypesq`` when that
is installed). It is not comparable with the wide-band PESQ (P.862.2) found
in VoiceBank-DEMAND tables, which :func:`pesq_wb` gives.

Input rules shared by every metric (inputs are 1-D numpy arrays or torch
tensors; a leading/trailing singleton dimension is squeezed):

* Different lengths: both signals are cut to the shorter one, keeping the
  first samples (padding and STFT round-off sit at the end).
* Non-finite samples in either signal, a reference shorter than
  ``MIN_SECONDS`` (PESQ and STOI only), a silent reference (peak below
  ``SILENCE_PEAK``), or PESQ finding no utterance: the metric returns
  ``float("nan")`` and emits a ``UserWarning`` naming the reason. It never
  raises on data, so one bad file cannot stop an evaluation; average with
  ``numpy.nanmean`` (as :func:`summarize_by_snr` does, reporting nan counts).
* A silent estimate is the model's fault, so it is scored where the metric
  allows: STOI gives 0 (``pystoi``'s value), SI-SDR about -80 dB (the
  ``SISDR_EPS`` floor). PESQ is undefined for it (the ITU code divides by
  its energy) and gives nan with a warning.
* ``compute_all`` at 8 kHz has no wide-band PESQ, hence no composites.
* Wrong shapes (not 1-D) or an unsupported sample rate are programming
  errors and raise ``ValueError``.
* Averages (:class:`EnhancementStats`, :func:`summarize_by_snr`) are taken
  over the items a metric could score; the items PESQ could not score
  (nan for any reason above) are counted as ``pesq_failed``.

DNSMOS comes from the optional ``speechmos`` package
(``pip install speechbrain-fsce[dnsmos]``), which ships Microsoft's DNSMOS
ONNX models in its wheel (nothing is downloaded). :func:`dnsmos_available`
says whether it is installed; :func:`dnsmos` raises a one-line
``ImportError`` when it is not. It scores one signal at 16 kHz (other rates
are resampled), in 9.01 s windows every second; shorter signals are repeated
to fill one window, which is what the DNS Challenge's scripts do.

Authors
 * speechbrain-fsce developers
"""

import math
import warnings

import numpy as np
import pesq as _pesq
import torch
from joblib import Parallel, delayed
from pystoi import stoi as _pystoi
from speechbrain.utils.metric_stats import MetricStats

#: The DNSMOS scores :func:`compute_all` adds with ``with_dnsmos=True``
#: (of the estimate alone; :func:`dnsmos` gives them without the prefix).
DNSMOS_NAMES = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
#: Every score :func:`compute_all` can give.
METRIC_NAMES = (
    "pesq_nb_raw",
    "pesq_nb",
    "pesq_wb",
    "stoi",
    "sisdr",
    "csig",
    "cbak",
    "covl",
    "ssnr",
) + DNSMOS_NAMES
#: Rate of the DNSMOS models (other rates are resampled to it).
DNSMOS_RATE = 16000
#: The PESQ scores whose nan marks an utterance PESQ could not score.
PESQ_NAMES = ("pesq_nb", "pesq_nb_raw", "pesq_wb")
MIN_SECONDS = 0.25  # shorter references give no usable PESQ/STOI
SILENCE_PEAK = 1e-6  # well below one 16-bit LSB (3e-5)
SISDR_EPS = 1e-8

# P.862.1: mos = 0.999 + 4 / (1 + exp(-1.4945 * raw + 4.6607))
_P862_1_A, _P862_1_B = 1.4945, 4.6607
_RAW_RANGE = (-0.5, 4.5)  # range of the raw P.862 score


def _to_numpy(signal):
    """Returns ``signal`` as a 1-D float64 numpy array."""
    if isinstance(signal, torch.Tensor):
        signal = signal.detach().cpu().numpy()
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim > 1:
        signal = np.squeeze(signal)
    if signal.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {signal.shape}")
    return signal


def _prepare(reference, estimate, sample_rate=None, min_seconds=0.0):
    """Applies the module's input rules.

    Returns ``(reference, estimate)`` as float64 arrays of equal length, or
    ``None`` after warning when the metric must be nan.
    """
    reference, estimate = _to_numpy(reference), _to_numpy(estimate)
    n = min(len(reference), len(estimate))
    reference, estimate = reference[:n], estimate[:n]
    if not np.all(np.isfinite(estimate)):
        reason = "estimate contains non-finite samples"
    elif not np.all(np.isfinite(reference)):
        reason = "reference contains non-finite samples"
    elif sample_rate is not None and n < min_seconds * sample_rate:
        reason = f"signal too short ({n} samples < {min_seconds} s)"
    elif n == 0 or np.max(np.abs(reference)) < SILENCE_PEAK:
        reason = "silent reference"
    else:
        return reference, estimate
    warnings.warn(f"metric set to nan: {reason}", stacklevel=3)
    return None


def _pesq_mos(reference, estimate, sample_rate, mode):
    """MOS-LQO from the ``pesq`` package, nan + warning on data problems."""
    if sample_rate not in (8000, 16000) or (mode == "wb" and sample_rate != 16000):
        raise ValueError(
            f"PESQ-{mode} does not support sample_rate={sample_rate}; "
            "resample to 16000 (or 8000 for nb) first"
        )
    signals = _prepare(reference, estimate, sample_rate, MIN_SECONDS)
    if signals is None:
        return float("nan")
    reference, estimate = signals
    if np.max(np.abs(estimate)) < SILENCE_PEAK:
        warnings.warn("metric set to nan: silent estimate (PESQ undefined)", stacklevel=3)
        return float("nan")
    try:
        return float(_pesq.pesq(sample_rate, reference, estimate, mode))
    except (_pesq.PesqError, ValueError) as err:  # NoUtterancesError, NaN...
        warnings.warn(
            f"metric set to nan: PESQ failed ({type(err).__name__}: {err})",
            stacklevel=3,
        )
        return float("nan")


def pesq_wb(reference, estimate, sample_rate=16000):
    """Wide-band PESQ (ITU-T P.862.2 MOS-LQO, about 1.04 to 4.64).

    Arguments
    ---------
    reference, estimate : numpy.ndarray or torch.Tensor
        Clean and degraded (or enhanced) 1-D signals; see the module's input rules.
    sample_rate : int
        Must be 16000.

    Returns
    -------
    float
        MOS-LQO, or nan (with a warning) for unusable input.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.5)
    >>> pesq_wb(x, x) > 4.5
    True
    """
    return _pesq_mos(reference, estimate, sample_rate, "wb")


def pesq_nb(reference, estimate, sample_rate=16000):
    """Narrow-band PESQ (P.862 mapped by P.862.1 to MOS-LQO, 1.02 to 4.55).

    Arguments and result as :func:`pesq_wb`, except that ``sample_rate``
    may be 8000 or 16000.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.5, sample_rate=8000)
    >>> pesq_nb(x, x, sample_rate=8000) > 4.5
    True
    """
    return _pesq_mos(reference, estimate, sample_rate, "nb")


def nb_mos_to_raw(mos):
    """Inverts the P.862.1 mapping: narrow-band MOS-LQO to raw P.862 score.

    ``raw = (4.6607 - ln(4 / (mos - 0.999) - 1)) / 1.4945``. The logarithm
    needs ``0.999 < mos < 4.999``; ``mos`` is clipped 1e-6 inside that
    interval and the result clipped to the raw P.862 range [-0.5, 4.5], so
    any finite ``mos`` gives a finite score (nan stays nan). ``pesq`` itself
    only returns values in [1.017, 4.549], where neither clip acts.

    Arguments
    ---------
    mos : float
        Narrow-band MOS-LQO, as returned by :func:`pesq_nb`.

    Returns
    -------
    float
        Raw P.862 score.

    Example
    -------
    >>> round(nb_mos_to_raw(0.999 + 4 / (1 + math.exp(-1.4945 * 2.5 + 4.6607))), 6)
    2.5
    >>> nb_mos_to_raw(4.999), nb_mos_to_raw(0.5)
    (4.5, -0.5)
    """
    if math.isnan(mos):
        return float("nan")
    mos = min(max(mos, 0.999 + 1e-6), 4.999 - 1e-6)
    raw = (_P862_1_B - math.log(4.0 / (mos - 0.999) - 1.0)) / _P862_1_A
    return float(min(max(raw, _RAW_RANGE[0]), _RAW_RANGE[1]))


def pesq_nb_raw(reference, estimate, sample_rate=16000):
    """Raw narrow-band P.862 score, the PESQ the FSCE paper reports.

    Equal to what ``pypesq.pesq(reference, estimate, sample_rate)`` returns,
    obtained as ``nb_mos_to_raw(pesq_nb(...))``; arguments as :func:`pesq_nb`.

    Returns
    -------
    float
        Score in [-0.5, 4.5], or nan (with a warning) for unusable input.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.5)
    >>> round(pesq_nb_raw(x, x), 2)
    4.5
    """
    return nb_mos_to_raw(pesq_nb(reference, estimate, sample_rate))


def stoi(reference, estimate, sample_rate=16000, extended=False):
    """Short-Time Objective Intelligibility (``pystoi``), 0 to 1.

    ``pystoi`` returns 1e-5 with a warning when fewer than 30 non-silent
    frames (about 0.4 s of speech) remain; that case gives nan here.

    Arguments
    ---------
    reference, estimate : numpy.ndarray or torch.Tensor
        Clean and degraded (or enhanced) 1-D signals; see the module's input rules.
    sample_rate : int
        Any rate; ``pystoi`` resamples to 10 kHz.
    extended : bool
        Whether to compute extended STOI (ESTOI).

    Returns
    -------
    float
        STOI (ESTOI with ``extended``) in [0, 1], or nan (with a warning)
        for unusable input.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.5)
    >>> round(stoi(x, x), 3)
    1.0
    """
    signals = _prepare(reference, estimate, sample_rate, MIN_SECONDS)
    if signals is None:
        return float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = float(_pystoi(*signals, sample_rate, extended=extended))
    too_few = False
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            too_few = True
        else:  # pass through anything we do not handle
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if too_few:
        warnings.warn(
            "metric set to nan: too little speech for STOI (< 30 frames)",
            stacklevel=2,
        )
        return float("nan")
    return score


def sisdr(reference, estimate):
    """Scale-invariant signal-to-distortion ratio in dB.

    Both signals are made zero-mean, the reference is scaled to its
    least-squares projection of the estimate, and
    ``10 log10(|target|^2 / (|residual|^2 + eps) + eps)`` is taken in float64
    with ``eps = SISDR_EPS``: a perfect estimate gives a large finite value,
    a silent one about -80 dB.

    Arguments
    ---------
    reference, estimate : numpy.ndarray or torch.Tensor
        Clean and degraded (or enhanced) 1-D signals; see the module's input rules.

    Returns
    -------
    float
        SI-SDR in dB, or nan (with a warning) for unusable input.

    Example
    -------
    >>> x = np.sin(np.arange(1000) * 0.1)
    >>> round(sisdr(x, 2 * x + 0.01 * np.cos(np.arange(1000) * 0.3)), 1)
    46.0
    """
    signals = _prepare(reference, estimate)
    if signals is None:
        return float("nan")
    reference, estimate = (s - s.mean() for s in signals)
    ref_energy = np.dot(reference, reference)
    if ref_energy < SILENCE_PEAK**2:  # constant (DC-only) reference
        warnings.warn("metric set to nan: silent reference", stacklevel=2)
        return float("nan")
    target = np.dot(estimate, reference) / ref_energy * reference
    residual = estimate - target
    ratio = np.dot(target, target) / (np.dot(residual, residual) + SISDR_EPS)
    return float(10.0 * np.log10(ratio + SISDR_EPS))


def _speechmos_dnsmos():
    """``speechmos.dnsmos``, or a one-line ``ImportError`` saying what to install."""
    try:
        from speechmos import dnsmos as module
    except ImportError as err:
        raise ImportError(
            f"DNSMOS needs the speechmos package: pip install speechbrain-fsce[dnsmos] ({err})"
        ) from None
    return module


def dnsmos_available(require=False):
    """Whether DNSMOS can be computed (the ``dnsmos`` extra is installed).

    Arguments
    ---------
    require : bool
        Raise the one-line ``ImportError`` (what to install) instead of
        returning False.

    Returns
    -------
    bool
        True when ``speechmos`` and what it imports (``librosa``,
        ``onnxruntime``) load.

    Example
    -------
    >>> isinstance(dnsmos_available(), bool)
    True
    """
    try:
        _speechmos_dnsmos()
    except ImportError:
        if require:
            raise
        return False
    return True


def dnsmos(signal, sample_rate=16000):
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS of one signal, 1 to 5.

    Non-intrusive: no clean reference. Microsoft's DNSMOS models (from the
    ``speechmos`` package, run with onnxruntime) predict the ratings of
    ITU-T P.835 listening tests: speech signal quality (SIG), background
    noise intrusiveness (BAK, higher is quieter), overall quality (OVRL),
    and the P.808 overall rating. The signal is resampled to 16 kHz when
    ``sample_rate`` differs (:func:`speechbrain_fsce.dataio.audio.resample`)
    and clipped to [-1, 1] (what a 16-bit file of it holds; ``speechmos``
    refuses anything outside). Scores are averaged over 9.01 s windows
    every second; a shorter signal is repeated to fill one window. A silent
    signal is scored (badly, as any model output would be).

    Arguments
    ---------
    signal : numpy.ndarray or torch.Tensor
        1-D signal (enhanced or noisy speech).
    sample_rate : int
        Its rate in Hz.

    Returns
    -------
    dict
        ``{"sig", "bak", "ovrl", "p808"}`` to floats; all nan (with a
        ``UserWarning``) for a signal shorter than ``MIN_SECONDS`` or with
        non-finite samples.

    Raises
    ------
    ImportError
        When ``speechmos`` is not installed (one line: what to install).

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> scores = dnsmos(speech_like(2.0))  # pip install speechbrain-fsce[dnsmos]
    >>> sorted(scores), all(1 <= v <= 5 for v in scores.values())
    (['bak', 'ovrl', 'p808', 'sig'], True)
    """
    module = _speechmos_dnsmos()
    signal = _to_numpy(signal)
    if not np.all(np.isfinite(signal)):
        reason = "signal contains non-finite samples"
    elif len(signal) < MIN_SECONDS * sample_rate:
        reason = f"signal too short ({len(signal)} samples < {MIN_SECONDS} s)"
    else:
        reason = None
    if reason is not None:
        warnings.warn(f"DNSMOS set to nan: {reason}", stacklevel=2)
        return dict.fromkeys(("sig", "bak", "ovrl", "p808"), float("nan"))
    if sample_rate != DNSMOS_RATE:
        from speechbrain_fsce.dataio.audio import resample

        signal = resample(signal, sample_rate, DNSMOS_RATE).numpy()
    scores = module.run(np.clip(signal, -1.0, 1.0).astype(np.float32), DNSMOS_RATE)
    return {k: float(scores[f"{k}_mos"]) for k in ("sig", "bak", "ovrl", "p808")}


def pesq_failed(scores):
    """Whether PESQ could not score an utterance (a nan PESQ in ``scores``).

    Arguments
    ---------
    scores : dict
        One utterance's ``{metric: value}`` (as :func:`compute_all` returns).

    Returns
    -------
    bool

    Example
    -------
    >>> pesq_failed({"pesq_nb": float("nan"), "stoi": 0.5}), pesq_failed({"pesq_wb": 2.0})
    (True, False)
    """
    return any(math.isnan(scores[k]) for k in PESQ_NAMES if k in scores)


def compute_all(reference, estimate, sample_rate=16000, with_dnsmos=False):
    """Computes every metric of the paper's tables for one pair of signals.

    Narrow-band PESQ is evaluated once and ``pesq_nb_raw`` derived from it;
    wide-band PESQ is evaluated once and reused by the composite measures
    (:func:`composite`).

    Arguments
    ---------
    reference, estimate : numpy.ndarray or torch.Tensor
        Clean and degraded (or enhanced) 1-D signals; see the module's input rules.
    sample_rate : int
        8000 or 16000; ``pesq_wb`` is only present at 16000.
    with_dnsmos : bool
        Whether to add the DNSMOS scores of ``estimate`` (:func:`dnsmos`,
        as ``DNSMOS_NAMES``; needs the ``dnsmos`` extra).

    Returns
    -------
    dict
        ``{"pesq_nb_raw", "pesq_nb", "pesq_wb", "stoi", "sisdr", "csig",
        "cbak", "covl", "ssnr"}`` (plus ``DNSMOS_NAMES`` with
        ``with_dnsmos``) to floats (nan for unusable input, with warnings).

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.5)
    >>> scores = compute_all(x, x + 0.01 * speech_like(1.5, seed=9))
    >>> sorted(scores)
    ['cbak', 'covl', 'csig', 'pesq_nb', 'pesq_nb_raw', 'pesq_wb', 'sisdr', 'ssnr', 'stoi']
    """
    mos = pesq_nb(reference, estimate, sample_rate)
    scores = {"pesq_nb_raw": nb_mos_to_raw(mos), "pesq_nb": mos}
    if sample_rate == 16000:
        scores["pesq_wb"] = pesq_wb(reference, estimate, sample_rate)
    scores["stoi"] = stoi(reference, estimate, sample_rate)
    scores["sisdr"] = sisdr(reference, estimate)
    if sample_rate == 16000:
        parts = composite(reference, estimate, sample_rate, pesq=scores["pesq_wb"])
        scores.update((k, parts[k]) for k in ("csig", "cbak", "covl", "ssnr"))
    else:
        scores["ssnr"] = segmental_snr(reference, estimate, sample_rate)
    if with_dnsmos:
        for name, value in dnsmos(estimate, sample_rate).items():
            scores[f"dnsmos_{name}"] = value
    return scores


def _snr_key(snr):
    """'-5' for -5, -5.0 or '-5'; '2.5' for 2.5."""
    snr = float(snr)
    return str(int(snr)) if snr.is_integer() else str(snr)


def summarize_by_snr(records, snrs=None):
    """Averages per-utterance metrics per SNR and over everything.

    Arguments
    ---------
    records : iterable of (snr, dict)
        One ``(snr, {metric: value})`` pair per utterance.
    snrs : list, optional
        SNRs to report, in this order; an SNR without records gets nan
        means and zero counts. By default every SNR seen, ascending.

    Returns
    -------
    dict
        ``{"-5": {...}, "0": {...}, ..., "avg": {...}}`` where each value maps
        every metric to its nan-ignoring mean (nan when no finite value), and
        ``"n"`` to ``{"items": utterances, "nan": {metric: nan count},
        "pesq_failed": utterances PESQ could not score}``.
        ``"avg"`` pools all utterances, including those of SNRs not listed in
        ``snrs``. SNR keys are strings: integers without ``.0``.

    Example
    -------
    >>> records = [(0, {"stoi": 0.5}), (0, {"stoi": 0.7}), (5, {"stoi": float("nan")})]
    >>> out = summarize_by_snr(records)
    >>> round(out["0"]["stoi"], 3), out["5"]["n"], round(out["avg"]["stoi"], 3)
    (0.6, {'items': 1, 'nan': {'stoi': 1}, 'pesq_failed': 0}, 0.6)
    """
    groups, names = {}, []
    for snr, scores in records:
        groups.setdefault(_snr_key(snr), []).append(scores)
        names.extend(k for k in scores if k not in names)
    if snrs is None:
        keys = sorted(groups, key=float)
    else:
        keys = [_snr_key(s) for s in snrs]
    everything = [s for group in groups.values() for s in group]

    def _summary(items):
        out = {}
        nans = {}
        for name in names:
            values = np.array([s.get(name, np.nan) for s in items], dtype=np.float64)
            finite = values[~np.isnan(values)]
            out[name] = float(finite.mean()) if finite.size else float("nan")
            nans[name] = int(values.size - finite.size)
        failed = sum(pesq_failed(s) for s in items)
        out["n"] = {"items": len(items), "nan": nans, "pesq_failed": failed}
        return out

    summary = {key: _summary(groups.get(key, [])) for key in keys}
    summary["avg"] = _summary(everything)
    return summary


# ------------------------------------------------------------------------
# Segmental SNR, LLR, WSS and the composite measures of Hu & Loizou (2008),
# as defined in P. C. Loizou, "Speech Enhancement: Theory and Practice"
# (2nd ed., 2013), chapter 11: 30 ms Hann frames every quarter frame, the
# lowest 95 % of the frame distortions averaged for LLR and WSS.

#: Frame length of the composite measures, in seconds.
COMPOSITE_FRAME_SECONDS = 0.03
#: Share of frames (the least distorted) kept in the LLR and WSS means.
COMPOSITE_TRIM = 0.95
#: Per-frame segmental SNR is clipped to this range (dB).
SSNR_RANGE = (-10.0, 35.0)
#: WSS weighting constants suggested by Klatt (1982).
WSS_KMAX, WSS_KLOCMAX = 20.0, 1.0
# Klatt's 25 critical bands (Hz): centres and bandwidths.
_WSS_CENTRES = np.array(
    [
        50.0,
        120.0,
        190.0,
        260.0,
        330.0,
        400.0,
        470.0,
        540.0,
        617.372,
        703.378,
        798.717,
        904.128,
        1020.38,
        1148.30,
        1288.72,
        1442.54,
        1610.70,
        1794.16,
        1993.93,
        2211.08,
        2446.71,
        2701.97,
        2978.04,
        3276.17,
        3597.63,
    ]
)
_WSS_BANDWIDTHS = np.array(
    [
        70.0,
        70.0,
        70.0,
        70.0,
        70.0,
        70.0,
        70.0,
        77.3724,
        86.0056,
        95.3398,
        105.411,
        116.256,
        127.914,
        140.423,
        153.823,
        168.154,
        183.457,
        199.776,
        217.153,
        235.631,
        255.255,
        276.072,
        298.126,
        321.465,
        346.136,
    ]
)
_EPS = np.finfo(np.float64).eps


def _composite_frames(signal, sample_rate):
    """Hann-windowed frames ``[frames, samples]`` of the composite measures.

    ``floor((len - win) / hop)`` frames of ``win = round(0.03 fs)`` samples
    every ``hop = floor(win / 4)``; the window is
    ``0.5 (1 - cos(2 pi n / (win + 1)))``, ``n = 1..win``.
    """
    win = int(round(COMPOSITE_FRAME_SECONDS * sample_rate))
    hop = win // 4
    count = max(0, (len(signal) - win) // hop)
    index = hop * np.arange(count)[:, None] + np.arange(win)[None, :]
    window = 0.5 * (1.0 - np.cos(2 * np.pi * np.arange(1, win + 1) / (win + 1)))
    return signal[index] * window


def _trimmed_mean(values):
    """Mean of the lowest ``COMPOSITE_TRIM`` share (rounded half up)."""
    keep = int(np.floor(len(values) * COMPOSITE_TRIM + 0.5))
    return float(np.mean(np.sort(values)[:keep])) if keep else float("nan")


def _composite_inputs(reference, estimate, sample_rate):
    """The input rules, plus at least one analysis frame."""
    signals = _prepare(reference, estimate, sample_rate, MIN_SECONDS)
    if signals is not None and len(_composite_frames(signals[0], sample_rate)) < 2:
        warnings.warn("metric set to nan: too short for 30 ms frames", stacklevel=3)
        return None
    return signals


def segmental_snr(reference, estimate, sample_rate=16000):
    """Segmental SNR in dB (the "SSNR" of VoiceBank-DEMAND tables).

    Per frame ``10 log10(|x|^2 / (|x - y|^2 + eps) + eps)`` on Hann-windowed
    30 ms frames every 7.5 ms (``eps`` the float64 machine epsilon), clipped
    to ``SSNR_RANGE`` = [-10, 35] dB, averaged over all frames. A perfect
    estimate gives 35 dB, the cap.

    Arguments
    ---------
    reference, estimate : numpy.ndarray or torch.Tensor
        Clean and degraded (or enhanced) 1-D signals; see the module's input rules.
    sample_rate : int
        Sampling rate in Hz (sets the frame length).

    Returns
    -------
    float
        Segmental SNR in dB, or nan (with a warning) for unusable input.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.0)
    >>> segmental_snr(x, x), abs(round(segmental_snr(x, 0 * x), 6))
    (35.0, 0.0)
    """
    signals = _composite_inputs(reference, estimate, sample_rate)
    if signals is None:
        return float("nan")
    ref, est = (_composite_frames(s, sample_rate) for s in signals)
    signal_energy = np.sum(ref**2, axis=1)
    noise_energy = np.sum((ref - est) ** 2, axis=1)
    snr = 10 * np.log10(signal_energy / (noise_energy + _EPS) + _EPS)
    return float(np.mean(np.clip(snr, *SSNR_RANGE)))


def _lpc(autocorrelation):
    """Levinson-Durbin: prediction-error filters ``[frames, order + 1]``.

    ``A = [1, a_1, ..., a_p]`` minimises ``A R A^T`` for the Toeplitz matrix
    ``R`` of each row of ``autocorrelation`` (lags 0..p); a frame whose
    prediction error reaches zero keeps its lower-order filter.
    """
    frames, order = autocorrelation.shape[0], autocorrelation.shape[1] - 1
    filters = np.zeros((frames, order + 1))
    filters[:, 0] = 1.0
    error = autocorrelation[:, 0].copy()
    for i in range(1, order + 1):
        acc = np.sum(filters[:, :i] * autocorrelation[:, i:0:-1], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(error > 0, -acc / error, 0.0)
        filters[:, 1 : i + 1] += k[:, None] * filters[:, i - 1 :: -1].copy()
        error = error * (1.0 - k**2)
    return filters


def log_likelihood_ratio(reference, estimate, sample_rate=16000):
    """Log-likelihood ratio (Itakura) between LPC models of the two signals.

    Per frame, with ``A_x``, ``A_y`` the prediction-error filters of order
    10 (below 10 kHz) or 16 of the reference and estimate frames and ``R_x``
    the reference's autocorrelation matrix:
    ``LLR = ln(A_y R_x A_y^T / A_x R_x A_x^T)`` (>= 0, 0 when the models
    agree). The mean of the lowest 95 % of frames is returned, without the
    clipping at 2 of Loizou's stand-alone LLR (as in the composite measures).
    Frames where the reference is digitally silent have no LPC model and
    are left out.

    Arguments
    ---------
    reference, estimate : numpy.ndarray or torch.Tensor
        Clean and degraded (or enhanced) 1-D signals; see the module's input rules.
    sample_rate : int
        Sampling rate in Hz (sets the frame length and the LPC order).

    Returns
    -------
    float
        Mean LLR, or nan (with a warning) for unusable input.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.0)
    >>> round(log_likelihood_ratio(x, x), 6), log_likelihood_ratio(x, x + speech_like(1.0, seed=2)) > 0.1
    (0.0, True)
    """
    signals = _composite_inputs(reference, estimate, sample_rate)
    if signals is None:
        return float("nan")
    order = 10 if sample_rate < 10000 else 16
    ref, est = (_composite_frames(s, sample_rate) for s in signals)
    win = ref.shape[1]

    def autocorrelation(frames):
        return np.stack(
            [np.sum(frames[:, : win - k] * frames[:, k:], axis=1) for k in range(order + 1)], axis=1
        )

    r_ref = autocorrelation(ref)
    toeplitz = r_ref[:, np.abs(np.arange(order + 1)[:, None] - np.arange(order + 1))]
    a_ref, a_est = _lpc(r_ref), _lpc(autocorrelation(est))
    numerator = np.einsum("fi,fij,fj->f", a_est, toeplitz, a_est)
    denominator = np.einsum("fi,fij,fj->f", a_ref, toeplitz, a_ref)
    voiced = denominator > 0
    return _trimmed_mean(np.log(numerator[voiced] / denominator[voiced]))


def _critical_band_filters(sample_rate, n_fft):
    """Klatt's Gaussian-shaped critical-band filters ``[25, n_fft // 2]``."""
    half = n_fft // 2
    bins = np.arange(half)[None, :]
    centre = np.floor(_WSS_CENTRES / (sample_rate / 2) * half)[:, None]
    width = (_WSS_BANDWIDTHS / (sample_rate / 2) * half)[:, None]
    gain = np.log(_WSS_BANDWIDTHS[0]) - np.log(_WSS_BANDWIDTHS)[:, None]
    filters = np.exp(-11.0 * ((bins - centre) / width) ** 2 + gain)
    return filters * (filters > np.exp(-30.0 / (2.0 * 2.303)))  # -30 dB cut-off


def _band_levels_and_weights(frames, filters):
    """dB level per critical band, its slopes and Klatt's slope weights."""
    n_fft = 2 * filters.shape[1]
    power = np.abs(np.fft.rfft(frames, n_fft, axis=1)[:, : n_fft // 2]) ** 2
    level = 10 * np.log10(np.maximum(power @ filters.T, 1e-10))
    slope = np.diff(level, axis=1)
    bands = slope.shape[1]
    # Level of the spectral peak each band's slope leads to, located as in
    # Loizou's reference code: on a rising slope the band just before the
    # first non-rising one, on a falling slope the band after the last
    # rising one.
    peak = np.empty_like(slope)
    nxt = np.full(len(slope), bands)
    for i in range(bands - 1, -1, -1):
        nxt = np.where(slope[:, i] <= 0, i, nxt)
        peak[:, i] = np.where(slope[:, i] > 0, level[np.arange(len(slope)), nxt - 1], 0.0)
    prev = np.full(len(slope), -1)
    for i in range(bands):
        prev = np.where(slope[:, i] > 0, i, prev)
        peak[:, i] = np.where(slope[:, i] > 0, peak[:, i], level[np.arange(len(slope)), prev + 1])
    below = level[:, :bands]
    weight = (
        WSS_KMAX
        / (WSS_KMAX + level.max(axis=1, keepdims=True) - below)
        * WSS_KLOCMAX
        / (WSS_KLOCMAX + peak - below)
    )
    return slope, weight


def weighted_spectral_slope(reference, estimate, sample_rate=16000):
    """Weighted spectral slope distance (Klatt 1982) in dB^2.

    Per frame, the 25 critical-band levels (dB) of each signal give 24
    slopes; their squared differences are averaged with weights that favour
    bands near the spectrum's global and local peaks
    (``Kmax / (Kmax + dBmax - level) * Klocmax / (Klocmax + peak - level)``,
    ``Kmax = 20``, ``Klocmax = 1``, the mean of the two signals' weights).
    The mean of the lowest 95 % of frames is returned; 0 when the spectra
    agree.

    Arguments
    ---------
    reference, estimate : numpy.ndarray or torch.Tensor
        Clean and degraded (or enhanced) 1-D signals; see the module's input rules.
    sample_rate : int
        Sampling rate in Hz (sets the frame length; Klatt's bands stop at
        3.8 kHz whatever the rate).

    Returns
    -------
    float
        Mean WSS distance, or nan (with a warning) for unusable input.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.0)
    >>> weighted_spectral_slope(x, x), weighted_spectral_slope(x, x + speech_like(1.0, seed=2)) > 1
    (0.0, True)
    """
    signals = _composite_inputs(reference, estimate, sample_rate)
    if signals is None:
        return float("nan")
    ref, est = (_composite_frames(s, sample_rate) for s in signals)
    n_fft = int(2 ** np.ceil(np.log2(2 * ref.shape[1])))
    filters = _critical_band_filters(sample_rate, n_fft)
    slope_ref, weight_ref = _band_levels_and_weights(ref, filters)
    slope_est, weight_est = _band_levels_and_weights(est, filters)
    weight = (weight_ref + weight_est) / 2
    distance = np.sum(weight * (slope_ref - slope_est) ** 2, axis=1) / np.sum(weight, axis=1)
    return _trimmed_mean(distance)


def composite_from_parts(pesq, llr, wss, ssnr):
    """Hu & Loizou's linear regressions, each clipped to [1, 5].

    ``CSIG = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS``,
    ``CBAK = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR``,
    ``COVL = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS``.

    Arguments
    ---------
    pesq : float
        PESQ score (see :func:`composite`).
    llr : float
        :func:`log_likelihood_ratio`.
    wss : float
        :func:`weighted_spectral_slope`.
    ssnr : float
        :func:`segmental_snr`.

    Returns
    -------
    dict
        ``{"csig", "cbak", "covl"}`` (nan where an input is nan).

    Example
    -------
    >>> composite_from_parts(pesq=2.0, llr=0.5, wss=30.0, ssnr=5.0)
    {'csig': 3.5145, 'cbak': 2.695, 'covl': 2.738}
    """
    scores = {
        "csig": 3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss,
        "cbak": 1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * ssnr,
        "covl": 1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss,
    }
    return {k: round(float(np.clip(v, 1.0, 5.0)), 10) for k, v in scores.items()}


def composite(reference, estimate, sample_rate=16000, pesq=None):
    """CSIG, CBAK and COVL, the composite measures of Hu & Loizou (2008).

    Predicted 1-5 ratings of signal distortion, background intrusiveness
    and overall quality, regressed on PESQ, LLR, WSS and segmental SNR
    (:func:`composite_from_parts`). Hu & Loizou fitted them with the raw
    narrow-band P.862 score; VoiceBank-DEMAND tables (SEGAN, MetricGAN+,
    CMGAN, MP-SENet, ...) are computed with an evaluation script that
    feeds them wide-band PESQ (P.862.2), so the default here is
    :func:`pesq_wb` too, which makes the numbers comparable with those
    tables (and needs 16 kHz).

    Arguments
    ---------
    reference, estimate : numpy.ndarray or torch.Tensor
        Clean and degraded (or enhanced) 1-D signals; see the module's input rules.
    sample_rate : int
        Sampling rate in Hz (16000 unless ``pesq`` is given).
    pesq : float, optional
        A PESQ score already computed for this pair (default: WB-PESQ).

    Returns
    -------
    dict
        ``{"csig", "cbak", "covl", "llr", "wss", "ssnr"}`` to floats.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = speech_like(1.5)
    >>> scores = composite(x, x)
    >>> scores["csig"], scores["covl"], scores["ssnr"]
    (5.0, 5.0, 35.0)
    """
    if pesq is None:
        pesq = pesq_wb(reference, estimate, sample_rate)
    parts = {
        "llr": log_likelihood_ratio(reference, estimate, sample_rate),
        "wss": weighted_spectral_slope(reference, estimate, sample_rate),
        "ssnr": segmental_snr(reference, estimate, sample_rate),
    }
    return {**composite_from_parts(pesq, **parts), **parts}


class EnhancementStats(MetricStats):
    """Every metric of :func:`compute_all` per utterance, in parallel workers.

    ``summarize`` averages each metric over the utterances it could score
    (nan-ignoring); :attr:`pesq_failed` counts those PESQ could not.

    A SpeechBrain ``MetricStats`` whose score per utterance is the dict of
    :func:`compute_all`. ``append`` cuts the padding off each item (relative
    ``lengths``, as ``MetricStats`` does) and queues it; queued items are
    scored in batches of ``4 * n_jobs`` by ``n_jobs`` joblib workers
    (in-process when ``n_jobs == 1``), so a stage costs about
    1 / ``n_jobs`` of the sequential time and holds only a few utterances
    in memory. ``scores`` and ``ids`` are complete after :meth:`summarize`
    (or :meth:`flush`).

    Arguments
    ---------
    sample_rate : int
        Rate of the signals.
    n_jobs : int
        Parallel workers (joblib, ``-1`` = one per CPU).
    with_dnsmos : bool
        Whether to add the DNSMOS scores of each estimate
        (:func:`compute_all`); raises ``ImportError`` at once when the
        ``dnsmos`` extra is missing.

    Example
    -------
    >>> from speechbrain_fsce.testing import speech_like
    >>> x = torch.from_numpy(speech_like(1.5)).repeat(2, 1)
    >>> stats = EnhancementStats(n_jobs=1)
    >>> stats.append(["a", "b"], predict=x, target=x, lengths=torch.tensor([1.0, 0.5]))
    >>> round(stats.summarize("stoi"), 3), stats.ids, sorted(stats.summarize())[:3]
    (1.0, ['a', 'b'], ['cbak', 'covl', 'csig'])
    """

    def __init__(self, sample_rate=16000, n_jobs=1, with_dnsmos=False):
        super().__init__(metric=compute_all, n_jobs=n_jobs, batch_eval=False)
        self.sample_rate = int(sample_rate)
        self.with_dnsmos = bool(with_dnsmos)
        if self.with_dnsmos:
            _speechmos_dnsmos()  # fail here, not in a worker mid-stage

    def clear(self):
        """Forgets every score (and anything queued)."""
        super().clear()
        self._queue = []

    def append(self, ids, predict, target, lengths=None):
        """Queues a padded batch; scores it when the queue is full.

        Arguments
        ---------
        ids : list of str
            Utterance ids.
        predict : torch.Tensor
            Estimates ``[batch, time]``.
        target : torch.Tensor
            Clean references ``[batch, time]``.
        lengths : torch.Tensor, optional
            Relative lengths ``[batch]`` (default: no padding).
        """
        if lengths is None:
            lengths = torch.ones(predict.shape[0])
        samples = (lengths.cpu() * predict.shape[1]).round().int().tolist()
        for utt_id, est, ref, n in zip(ids, predict, target, samples):
            self._queue.append(
                (utt_id, ref[:n].detach().cpu().numpy(), est[:n].detach().cpu().numpy())
            )
        if len(self._queue) >= 4 * max(1, self.n_jobs):
            self.flush()

    def flush(self):
        """Scores every queued item."""
        queue, self._queue = self._queue, []
        if not queue:
            return
        args = (self.sample_rate, self.with_dnsmos)
        if self.n_jobs == 1:
            scores = [compute_all(ref, est, *args) for _, ref, est in queue]
        else:
            scores = Parallel(n_jobs=self.n_jobs)(
                delayed(compute_all)(ref, est, *args) for _, ref, est in queue
            )
        self.ids.extend(utt_id for utt_id, _, _ in queue)
        self.scores.extend(scores)

    def summarize(self, field=None):
        """Nan-ignoring mean of each metric over the utterances.

        Arguments
        ---------
        field : str, optional
            One metric name.

        Returns
        -------
        dict or float
            ``{metric: mean}`` (metrics that were nan everywhere are left
            out), or the mean of ``field``.
        """
        self.flush()
        self.summary = {}
        for name in METRIC_NAMES:
            values = np.array([s.get(name, np.nan) for s in self.scores], dtype=np.float64)
            if values.size and not np.all(np.isnan(values)):
                self.summary[name] = float(np.nanmean(values))
        return self.summary if field is None else self.summary[field]

    def by_id(self):
        """``{utterance id: scores}`` of everything appended so far."""
        self.flush()
        return dict(zip(self.ids, self.scores))

    @property
    def pesq_failed(self):
        """How many utterances PESQ could not score (:func:`pesq_failed`)."""
        self.flush()
        return sum(pesq_failed(scores) for scores in self.scores)
