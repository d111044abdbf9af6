"""Objective speech-quality metrics: PESQ (nb raw / nb / wb), STOI, SI-SDR.

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
* Wrong shapes (not 1-D) or an unsupported sample rate are programming
  errors and raise ``ValueError``.

Authors
 * speechbrain-fsce developers
"""

import math
import warnings

import numpy as np
import pesq as _pesq
import torch
from pystoi import stoi as _pystoi

METRIC_NAMES = ("pesq_nb_raw", "pesq_nb", "pesq_wb", "stoi", "sisdr")
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
        warnings.warn(
            "metric set to nan: silent estimate (PESQ undefined)", stacklevel=3
        )
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
    reference : numpy.ndarray or torch.Tensor
        Clean signal, 1-D.
    estimate : numpy.ndarray or torch.Tensor
        Degraded or enhanced signal, 1-D.
    sample_rate : int
        Must be 16000.

    Returns
    -------
    float
        The score, or nan (with a warning) for unusable input.

    Example
    -------
    >>> from tests.unittests.speechlike import speech_like
    >>> x = speech_like(1.5)
    >>> pesq_wb(x, x) > 4.5
    True
    """
    return _pesq_mos(reference, estimate, sample_rate, "wb")


def pesq_nb(reference, estimate, sample_rate=16000):
    """Narrow-band PESQ (P.862 mapped by P.862.1 to MOS-LQO, 1.02 to 4.55).

    Arguments
    ---------
    reference : numpy.ndarray or torch.Tensor
        Clean signal, 1-D.
    estimate : numpy.ndarray or torch.Tensor
        Degraded or enhanced signal, 1-D.
    sample_rate : int
        8000 or 16000.

    Returns
    -------
    float
        The score, or nan (with a warning) for unusable input.

    Example
    -------
    >>> from tests.unittests.speechlike import speech_like
    >>> x = speech_like(1.5)
    >>> pesq_nb(x, x) > 4.5
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
    obtained as ``nb_mos_to_raw(pesq_nb(...))``.

    Arguments
    ---------
    reference : numpy.ndarray or torch.Tensor
        Clean signal, 1-D.
    estimate : numpy.ndarray or torch.Tensor
        Degraded or enhanced signal, 1-D.
    sample_rate : int
        8000 or 16000.

    Returns
    -------
    float
        Score in [-0.5, 4.5], or nan (with a warning) for unusable input.

    Example
    -------
    >>> from tests.unittests.speechlike import speech_like
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
    reference : numpy.ndarray or torch.Tensor
        Clean signal, 1-D.
    estimate : numpy.ndarray or torch.Tensor
        Degraded or enhanced signal, 1-D.
    sample_rate : int
        Any rate; ``pystoi`` resamples to 10 kHz.
    extended : bool
        Whether to compute extended STOI (ESTOI).

    Returns
    -------
    float
        The score, or nan (with a warning) for unusable input.

    Example
    -------
    >>> from tests.unittests.speechlike import speech_like
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
    reference : numpy.ndarray or torch.Tensor
        Clean signal, 1-D.
    estimate : numpy.ndarray or torch.Tensor
        Degraded or enhanced signal, 1-D.

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


def compute_all(reference, estimate, sample_rate=16000):
    """Computes every metric of the paper's tables for one pair of signals.

    Narrow-band PESQ is evaluated once and ``pesq_nb_raw`` derived from it.

    Arguments
    ---------
    reference : numpy.ndarray or torch.Tensor
        Clean signal, 1-D.
    estimate : numpy.ndarray or torch.Tensor
        Degraded or enhanced signal, 1-D.
    sample_rate : int
        8000 or 16000; ``pesq_wb`` is only present at 16000.

    Returns
    -------
    dict
        ``{"pesq_nb_raw", "pesq_nb", "pesq_wb", "stoi", "sisdr"}`` to floats
        (nan for unusable input, with warnings).

    Example
    -------
    >>> from tests.unittests.speechlike import speech_like
    >>> x = speech_like(1.5)
    >>> scores = compute_all(x, x + 0.01 * speech_like(1.5, seed=9))
    >>> sorted(scores)
    ['pesq_nb', 'pesq_nb_raw', 'pesq_wb', 'sisdr', 'stoi']
    """
    mos = pesq_nb(reference, estimate, sample_rate)
    scores = {"pesq_nb_raw": nb_mos_to_raw(mos), "pesq_nb": mos}
    if sample_rate == 16000:
        scores["pesq_wb"] = pesq_wb(reference, estimate, sample_rate)
    scores["stoi"] = stoi(reference, estimate, sample_rate)
    scores["sisdr"] = sisdr(reference, estimate)
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
        ``"n"`` to ``{"items": utterances, "nan": {metric: nan count}}``.
        ``"avg"`` pools all utterances, including those of SNRs not listed in
        ``snrs``. SNR keys are strings: integers without ``.0``.

    Example
    -------
    >>> records = [(0, {"stoi": 0.5}), (0, {"stoi": 0.7}), (5, {"stoi": float("nan")})]
    >>> out = summarize_by_snr(records)
    >>> round(out["0"]["stoi"], 3), out["5"]["n"], round(out["avg"]["stoi"], 3)
    (0.6, {'items': 1, 'nan': {'stoi': 1}}, 0.6)
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
        out["n"] = {"items": len(items), "nan": nans}
        return out

    summary = {key: _summary(groups.get(key, [])) for key in keys}
    summary["avg"] = _summary(everything)
    return summary


def _metric_for_stats(metric, predict, target, lengths, sample_rate):
    """Scores one item, or a padded batch when the inputs are 2-D."""
    if predict.dim() == 1:
        return metric(target, predict, sample_rate)
    if lengths is None:
        lengths = torch.ones(predict.shape[0])
    n = (lengths * predict.shape[1]).round().int().tolist()
    scores = [metric(t[:k], p[:k], sample_rate) for p, t, k in zip(predict, target, n)]
    return torch.tensor(scores, dtype=torch.float64)


def pesq_nb_raw_metric(predict, target, lengths=None, sample_rate=16000):
    """:func:`pesq_nb_raw` shaped for ``speechbrain.utils.metric_stats.MetricStats``.

    With ``MetricStats(metric=..., batch_eval=False)`` and
    ``append(ids, predict=..., target=..., lengths=...)``, SpeechBrain cuts
    the padding and calls ``metric(predict_i, target_i)`` on 1-D tensors,
    which returns a float. With ``batch_eval=True`` the call gets
    ``[batch, time]`` tensors and relative ``lengths`` and returns a tensor
    of per-item scores. Note the argument order: estimate first.
    A nan score makes ``MetricStats.summarize`` nan too.

    Arguments
    ---------
    predict : torch.Tensor
        Estimate, ``[time]`` or ``[batch, time]``.
    target : torch.Tensor
        Clean reference, same shape.
    lengths : torch.Tensor, optional
        Relative lengths ``[batch]`` (batched call only).
    sample_rate : int
        Sampling rate (use ``functools.partial`` to change it).

    Returns
    -------
    float or torch.Tensor
        One score, or ``[batch]`` scores.

    Example
    -------
    >>> from speechbrain.utils.metric_stats import MetricStats
    >>> from tests.unittests.speechlike import speech_like
    >>> x = torch.from_numpy(speech_like(1.5)).repeat(2, 1)
    >>> stats = MetricStats(metric=pesq_nb_raw_metric, n_jobs=1, batch_eval=False)
    >>> stats.append(["a", "b"], predict=x, target=x, lengths=torch.tensor([1.0, 0.5]))
    >>> round(stats.summarize("average"), 2)
    4.5
    """
    return _metric_for_stats(pesq_nb_raw, predict, target, lengths, sample_rate)


def pesq_wb_metric(predict, target, lengths=None, sample_rate=16000):
    """:func:`pesq_wb` shaped for ``MetricStats``; see :func:`pesq_nb_raw_metric`.

    Arguments
    ---------
    predict : torch.Tensor
        Estimate, ``[time]`` or ``[batch, time]``.
    target : torch.Tensor
        Clean reference, same shape.
    lengths : torch.Tensor, optional
        Relative lengths ``[batch]`` (batched call only).
    sample_rate : int
        Sampling rate.

    Returns
    -------
    float or torch.Tensor
        One score, or ``[batch]`` scores.

    Example
    -------
    >>> from tests.unittests.speechlike import speech_like
    >>> x = torch.from_numpy(speech_like(1.5))
    >>> pesq_wb_metric(x, x) > 4.5
    True
    """
    return _metric_for_stats(pesq_wb, predict, target, lengths, sample_rate)


def stoi_metric(predict, target, lengths=None, sample_rate=16000):
    """:func:`stoi` shaped for ``MetricStats``; see :func:`pesq_nb_raw_metric`.

    Arguments
    ---------
    predict : torch.Tensor
        Estimate, ``[time]`` or ``[batch, time]``.
    target : torch.Tensor
        Clean reference, same shape.
    lengths : torch.Tensor, optional
        Relative lengths ``[batch]`` (batched call only).
    sample_rate : int
        Sampling rate.

    Returns
    -------
    float or torch.Tensor
        One score, or ``[batch]`` scores.

    Example
    -------
    >>> from tests.unittests.speechlike import speech_like
    >>> x = torch.from_numpy(speech_like(1.5)).repeat(2, 1)
    >>> stoi_metric(x, x, torch.tensor([1.0, 0.6])).shape
    torch.Size([2])
    """
    return _metric_for_stats(stoi, predict, target, lengths, sample_rate)


def sisdr_metric(predict, target, lengths=None, sample_rate=16000):
    """:func:`sisdr` shaped for ``MetricStats``; see :func:`pesq_nb_raw_metric`.

    Arguments
    ---------
    predict : torch.Tensor
        Estimate, ``[time]`` or ``[batch, time]``.
    target : torch.Tensor
        Clean reference, same shape.
    lengths : torch.Tensor, optional
        Relative lengths ``[batch]`` (batched call only).
    sample_rate : int
        Unused; accepted for a uniform signature.

    Returns
    -------
    float or torch.Tensor
        One score, or ``[batch]`` scores.

    Example
    -------
    >>> x = torch.sin(torch.arange(1000.0) * 0.1)
    >>> sisdr_metric(0.5 * x, x) > 60
    True
    """
    return _metric_for_stats(
        lambda ref, est, _sr: sisdr(ref, est), predict, target, lengths, sample_rate
    )
