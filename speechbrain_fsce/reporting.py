"""Evaluation reports: per-SNR tables, spectrograms and a listening page.

The tables hold every metric of ``REPORTED_METRICS``: the paper's raw
narrow-band PESQ, wide-band PESQ, STOI, SI-SDR, and the measures that
VoiceBank-DEMAND results are published with (CSIG, CBAK, COVL, SSNR; see
:mod:`speechbrain_fsce.metrics`), and the non-intrusive DNSMOS SIG, BAK,
OVRL and P.808 when they were computed (the ``dnsmos`` extra; their columns
are left out otherwise). Each row counts the utterances PESQ could not score
(``pesq_failed``); averages are over the scored ones.

Everything here writes files atomically (temporary name, then rename), so an
interrupted evaluation never leaves a half-written report.

Authors
 * speechbrain-fsce developers
"""

import html
import json
import pathlib

import numpy as np

from speechbrain_fsce.fileio import atomic_path, atomic_write
from speechbrain_fsce.metrics import DNSMOS_NAMES, summarize_by_snr

#: The reported metrics (of :data:`~speechbrain_fsce.metrics.METRIC_NAMES`),
#: in table order, with their column titles. ``pesq_nb`` (the MOS-mapped form
#: of ``pesq_nb_raw``) is computed but not reported.
METRIC_TITLES = {
    "pesq_nb_raw": "PESQ-NB raw (paper)",
    "pesq_wb": "PESQ-WB",
    "stoi": "STOI",
    "sisdr": "SI-SDR (dB)",
    "csig": "CSIG",
    "cbak": "CBAK",
    "covl": "COVL",
    "ssnr": "SSNR (dB)",
    "dnsmos_sig": "DNSMOS SIG",
    "dnsmos_bak": "DNSMOS BAK",
    "dnsmos_ovrl": "DNSMOS OVRL",
    "dnsmos_p808": "DNSMOS P.808",
}
REPORTED_METRICS = tuple(METRIC_TITLES)
_DB_METRICS = ("sisdr", "ssnr")  # shown with 2 decimals, the others with 3


def write_atomic(path, data, mode="w"):
    """Writes ``data`` to ``path`` atomically (:func:`speechbrain_fsce.fileio.atomic_write`)."""
    atomic_write(path, data)


def results_table(records, snrs=(-5, 0, 5, 10)):
    """Summarises per-utterance metrics as ``{"noisy"|"enhanced": {snr|"avg": {...}}}``.

    Arguments
    ---------
    records : list of dict
        Each ``{"snr": int, "noisy": {metric: value}, "enhanced": {...}}``.
    snrs : tuple
        SNRs to report (each gets a row even when empty).

    Returns
    -------
    dict
        Means per condition and SNR of the metrics in ``REPORTED_METRICS``
        that the records hold (nan-aware: over the items each metric could
        score); ``"n"`` counts the items behind each row and
        ``"pesq_failed"`` those PESQ could not score.

    Example
    -------
    >>> recs = [{"snr": 0, "noisy": {"stoi": 0.5}, "enhanced": {"stoi": 0.7}},
    ...         {"snr": 5, "noisy": {"stoi": 0.7}, "enhanced": {"stoi": 0.9}}]
    >>> table = results_table(recs, snrs=(0, 5))
    >>> round(table["enhanced"]["avg"]["stoi"], 3), table["noisy"]["0"]["stoi"]
    (0.8, 0.5)
    >>> table["noisy"]["avg"]["n"], table["noisy"]["avg"]["pesq_failed"]
    (2, 0)
    """
    table = {}
    for condition in ("noisy", "enhanced"):
        summary = summarize_by_snr([(r["snr"], r[condition]) for r in records], snrs=list(snrs))
        table[condition] = {
            key: {m: float(row[m]) for m in REPORTED_METRICS if m in row}
            | {"n": row["n"]["items"], "pesq_failed": row["n"]["pesq_failed"]}
            for key, row in summary.items()
        }
    return table


def _columns(table):
    """The reported metrics to show: the DNSMOS ones only where computed."""
    rows = [row for condition in table.values() for row in condition.values()]
    return [
        m
        for m in REPORTED_METRICS
        if m not in DNSMOS_NAMES or any(not np.isnan(row.get(m, np.nan)) for row in rows)
    ]


def _pesq_note(table):
    """A sentence on the utterances PESQ could not score ("" when none)."""
    failed = {c: table[c].get("avg", {}).get("pesq_failed", 0) for c in ("noisy", "enhanced")}
    if not any(failed.values()):
        return ""
    return (
        f"PESQ could not score {failed['noisy']} noisy and {failed['enhanced']} enhanced "
        "utterance(s); PESQ and composite means are over the scored ones."
    )


def _fmt(value, metric):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.2f}" if metric in _DB_METRICS else f"{value:.3f}"


def markdown_table(table):
    """Renders :func:`results_table` output as a Markdown table.

    DNSMOS columns appear only when some row has DNSMOS scores; a line
    under the table counts the utterances PESQ could not score, if any.

    Example
    -------
    >>> t = {"noisy": {"avg": {"stoi": 0.5, "n": 2}}, "enhanced": {"avg": {"stoi": 0.7, "n": 2}}}
    >>> print(markdown_table(t).splitlines()[2])
    | avg | 2 | n/a → n/a | n/a → n/a | 0.500 → 0.700 | n/a → n/a | n/a → n/a | n/a → n/a | n/a → n/a | n/a → n/a |
    """
    columns = _columns(table)
    header = (
        "| SNR (dB) | n | " + " | ".join(f"{METRIC_TITLES[m]} noisy → enh." for m in columns) + " |"
    )
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for key in table["noisy"]:
        noisy, enh = table["noisy"][key], table["enhanced"][key]
        cells = [f"{_fmt(noisy.get(m), m)} → {_fmt(enh.get(m), m)}" for m in columns]
        lines.append(f"| {key} | {noisy.get('n', '')} | " + " | ".join(cells) + " |")
    note = _pesq_note(table)
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")


def write_results(output_folder, records, snrs=(-5, 0, 5, 10), title="FSCE test results"):
    """Writes ``results.json`` and ``results.md``; returns the table."""
    table = results_table(records, snrs)
    folder = pathlib.Path(output_folder)
    write_atomic(folder / "results.json", json.dumps(table, indent=2, allow_nan=True))
    write_atomic(folder / "results.md", f"# {title}\n\n{markdown_table(table)}")
    return table


def plot_spectrograms(path, signals, sample_rate=16000, n_fft=512, hop=128):
    """Saves stacked log-magnitude spectrograms of ``{title: 1-D signal}`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(signals), 1, figsize=(8, 2.2 * len(signals)), sharex=True)
    axes = np.atleast_1d(axes)
    window = np.hanning(n_fft)
    for ax, (name, sig) in zip(axes, signals.items()):
        sig = np.asarray(sig, dtype=np.float64)
        if len(sig) < n_fft:
            sig = np.pad(sig, (0, n_fft - len(sig)))
        frames = np.lib.stride_tricks.sliding_window_view(sig, n_fft)[::hop] * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        db = 10 * np.log10(power.T + 1e-10)
        ax.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=db.max() - 80,
            vmax=db.max(),
            extent=[0, len(sig) / sample_rate, 0, sample_rate / 2000],
        )
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def write_listening_page(output_folder, samples, table, title="FSCE listening samples"):
    """Writes a static ``index.html`` (opens from disk, no server).

    Arguments
    ---------
    output_folder : str
        Folder of the page; every path in ``samples`` is relative to it.
    samples : list of dict
        Each ``{"id", "snr", "noisy", "enhanced", "clean", "spectrogram"}``
        (relative paths of three wavs and a PNG).
    table : dict
        :func:`results_table` output, shown above the players.

    Returns
    -------
    pathlib.Path
        The page's path.
    """
    esc = html.escape
    rows = []
    for s in sorted(samples, key=lambda s: (s["snr"], s["id"])):
        players = "".join(
            f'<td><audio controls preload="none" src="{esc(s[k])}"></audio></td>'
            for k in ("noisy", "enhanced", "clean")
        )
        rows.append(
            f"<tr><td>{esc(str(s['snr']))} dB</td><td>{esc(s['id'])}</td>{players}</tr>"
            f'<tr><td colspan="5"><img src="{esc(s["spectrogram"])}" '
            f'alt="spectrograms of {esc(s["id"])}" width="640"></td></tr>'
        )
    columns = _columns(table)
    table_html = (
        "<table><tr><th>SNR</th><th>n</th>"
        + "".join(f"<th>{esc(METRIC_TITLES[m])}<br>noisy → enhanced</th>" for m in columns)
        + "</tr>"
    )
    for key in table["noisy"]:
        noisy, enh = table["noisy"][key], table["enhanced"][key]
        table_html += (
            f"<tr><td>{esc(key)}</td><td>{noisy.get('n', '')}</td>"
            + "".join(f"<td>{_fmt(noisy.get(m), m)} → {_fmt(enh.get(m), m)}</td>" for m in columns)
            + "</tr>"
        )
    table_html += "</table>"
    if _pesq_note(table):
        table_html += f"<p>{esc(_pesq_note(table))}</p>"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:center}}
img{{max-width:100%;height:auto}}audio{{width:220px}}</style></head>
<body><h1>{esc(title)}</h1>
<h2>Objective scores per SNR</h2>{table_html}
<h2>Listen</h2>
<table><tr><th>SNR</th><th>utterance</th><th>noisy</th><th>enhanced</th><th>clean</th></tr>
{"".join(rows)}</table>
<p>Spectrograms: noisy / enhanced / clean, log magnitude.</p>
</body></html>
"""
    path = pathlib.Path(output_folder) / "index.html"
    write_atomic(path, page)
    return path
