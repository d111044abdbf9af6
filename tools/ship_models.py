"""Copies trained models into the package as its shipped models, with model cards.

``python -m tools.ship_models --work results/quality
--quality benchmarks/results/quality.json --command "..."`` takes the FSCE model folders
that ``benchmarks/quality.py`` exported (``<work>/fsce/model``,
``<work>/fsce_causal/model``: ``model.json``, ``hyperparams.yaml``,
``enhancer.ckpt``; a folder exported before ``model.json`` existed gets it
from :func:`speechbrain_fsce.model_folder.upgrade`), checks that they load
with the package's loader (as data), adds the causal model's ONNX export (``onnx/``), writes a
``README.md`` model card from the measured rows of ``quality.json`` and
places them under ``speechbrain_fsce/pretrained_models/{noncausal,causal}``
(each folder replaced whole, atomically). A one-off builder: it lives
outside the installed package.

Authors
 * speechbrain-fsce developers
"""

import argparse
import json
import os
import shutil
import sys

#: Shipped name -> the quality.py system whose trained weights it is.
SHIPPED = {"noncausal": "fsce", "causal": "fsce_causal"}

#: Largest model folder allowed in the package (bytes).
MAX_BYTES = 15 * 1024 * 1024

METRIC_LABELS = (
    ("pesq_nb_raw", "PESQ-NB raw"),
    ("pesq_wb", "PESQ-WB"),
    ("stoi", "STOI"),
    ("sisdr", "SI-SDR (dB)"),
    ("dnsmos_ovrl", "DNSMOS OVRL"),
)


def _fmt(value):
    return "-" if value is None else f"{value:.3f}"


def score_table(rows, names):
    """Markdown table of the given ``quality.json`` rows, per SNR and average.

    Arguments
    ---------
    rows : dict
        ``quality.json`` content.
    names : list of str
        Rows to show, in order (missing ones are skipped).

    Returns
    -------
    str

    Example
    -------
    >>> cell = {m: 1.0 for m, _ in METRIC_LABELS}
    >>> row = {k: cell for k in ("-5", "0", "5", "10", "avg")}
    >>> print(score_table({"noisy": row}, ["noisy"]).splitlines()[2])
    | noisy | -5 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |
    """
    lines = [
        "| system | SNR (dB) | " + " | ".join(label for _, label in METRIC_LABELS) + " |",
        "|---|---|" + "---|" * len(METRIC_LABELS),
    ]
    for name in names:
        if name not in rows:
            continue
        for snr in ("-5", "0", "5", "10", "avg"):
            cells = " | ".join(_fmt(rows[name][snr][m]) for m, _ in METRIC_LABELS)
            lines.append(f"| {name} | {snr} | {cells} |")
    return "\n".join(lines)


def model_card(name, system, rows, sources, command, table="benchmarks/results/quality.md"):
    """The ``README.md`` of a shipped model folder."""
    causal = name == "causal"
    row = rows[system]
    arch = ", ".join(f"{k}={v}" for k, v in row["configuration"].items())
    return f"""# FSCE `{name}` model (speechbrain-fsce)

{"Causal (zero look-ahead): for streaming and ONNX." if causal else "Non-causal: best quality for files."}
FSCE (Tai et al., arXiv:2110.05713), two collaborating branches (magnitude
and complex). Load it with `FSCEEnhancement.from_hparams(source="{name}")`
or `fsce-enhance noisy.wav -o out/{" --model causal" if causal else ""}`.

## Configuration
{arch}; {row["parameters"]:,} parameters
(published width: 3,214,992). 16 kHz, 20 ms Hann window, 10 ms hop.
{"The `onnx/` folder holds its ONNX export (`fsce-export --onnx`)." if causal else ""}

## Training
- Data: the benchmark corpus built by `make benchmark-corpus` (real speech
  from Debian packages: Czech game dialogue, English telephone prompts,
  spoken letters in 18 languages; 111 min after the audit), noise from
  machines, vehicles, music samples, white/pink noise and babble, mixed on
  the fly at -5..15 dB. Sources and licences below.
- {row["steps"]} updates of {row["batch_size"]} random {row["excerpt_seconds"]:g} s excerpts (Adam, lr {row["lr"]}, gradients
  clipped at 5), loss L_mag + L_RI on compressed spectra: the `{system}` row
  of `{table}`, trained on the same batches as every other system there.
- Training time: {row["train_seconds"]:.0f} s wall, {row["train_cpu_seconds"]:.0f} s CPU
  ({row["threads"]} torch thread(s), on a 2-core machine shared with other jobs).
- Command: `{command}`

## Test scores
The corpus's test split: {row["avg"]["n"]} mixtures of a voice never heard in training
(cs_big_fish) with unseen noise types (animals, keyboard typing, brown
noise, Dutch babble) plus the training types, at -5/0/5/10 dB. DNSMOS over
the mixtures of the first test files (`--dnsmos_utterances`).

{score_table(rows, ["noisy", system, "demo_model"])}

`{system}` is this model{"; `demo_model` is the model `make demo` trains on 8 minutes of synthetic voices, for comparison" if "demo_model" in rows else ""}.

## Fine-tuning
`python train.py hparams/fsce{"_causal" if causal else ""}.yaml --init_from={name} --fsce="{{{arch.replace("=", ": ")}}}" ...`
(the recipe's architecture must be this model's; the error names any
difference).

## Known limits
- Small CPU budget: far from converged, far below published FSCE results
  (which were trained for many epochs on TIMIT at full width).
- One test voice (Czech, male); no test on other languages or real rooms.
- Trained at 16 kHz; other rates are resampled by the tools.
- Licence: trained on GPL-2+ and CC-BY-SA-3.0 audio (below); whether such
  terms reach trained weights is unsettled, so treat the weights as under
  the most restrictive of them (GPL-2+).

## Data sources and licences
{sources}
"""


def ship(work, quality, command, corpus="data/benchmark", root=None):
    """Builds both shipped folders; returns their paths."""
    import torch

    from speechbrain_fsce.fileio import atomic_folder
    from speechbrain_fsce.inference.onnx_export import export_onnx
    from speechbrain_fsce.inference.pretrained import FSCEEnhancement
    from speechbrain_fsce.inference.shipped import shipped_models_root
    from speechbrain_fsce.model_folder import CKPT_NAME, HPARAMS_NAME, MODEL_JSON, upgrade

    root = root or shipped_models_root()
    with open(quality, encoding="utf-8") as f:
        rows = json.load(f)
    sources_path = os.path.join(corpus, "SOURCES.md")
    sources = "See the benchmark corpus's SOURCES.md (`make benchmark-corpus`)."
    if os.path.isfile(sources_path):
        with open(sources_path, encoding="utf-8") as f:
            sources = "\n".join(f.read().splitlines()[2:])
    out = []
    for name, system in SHIPPED.items():
        src = os.path.join(work, system, "model")
        if system not in rows:
            raise SystemExit(f"{quality}: no row {system!r} (run benchmarks/quality.py first)")
        dest = os.path.join(root, name)
        with atomic_folder(dest) as tmp:  # replaces an earlier folder only when complete
            for f in (HPARAMS_NAME, CKPT_NAME, MODEL_JSON):
                if f != MODEL_JSON or os.path.isfile(os.path.join(src, f)):
                    shutil.copy(os.path.join(src, f), os.path.join(tmp, f))
            upgrade(tmp)  # model.json of a folder exported before it existed (checked)
            enhancer = FSCEEnhancement.from_hparams(source=tmp).mods.enhancer
            if name == "causal":
                export_onnx(enhancer.to(torch.device("cpu")), os.path.join(tmp, "onnx"))
            with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
                table = os.path.join(os.path.dirname(quality), "quality.md")
                f.write(model_card(name, system, rows, sources, command, table))
            size = sum(
                os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tmp) for f in files
            )
            if size > MAX_BYTES:
                raise SystemExit(f"{dest}: {size} bytes, over the {MAX_BYTES} allowed")
        print(f"{dest}: {size / 1e6:.1f} MB")
        out.append(dest)
    return out


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="results/quality")
    parser.add_argument("--quality", default="benchmarks/results/quality.json")
    parser.add_argument("--corpus", default="data/benchmark", help="for its SOURCES.md")
    parser.add_argument(
        "--command",
        required=True,
        help="the benchmarks/quality.py command that trained the models (for the cards)",
    )
    args = parser.parse_args(argv)
    ship(args.work, args.quality, args.command, corpus=args.corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
