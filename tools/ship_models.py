"""Copies trained models into the package as its shipped models, with model cards.

The shipped models are trained by the recipe (``recipes/TIMIT/hparams/shipped.yaml``
and ``shipped_causal.yaml``) and exported from their best checkpoint
(``fsce-export --save_folder <run>/save --hparams <the yaml> --output <folder>``).
This tool takes those model folders and their run folders::

    python -m tools.ship_models \
        --model noncausal=results/shipped_stage2/1234/export \
        --model causal=results/shipped_causal_stage2/1234/export_epoch6 \
        --run noncausal=results/shipped_stage2/1234 --run causal=results/shipped_causal_stage2/1234 \
        --cpu_seconds noncausal=3912 --cpu_seconds causal=3908 \
        --earlier noncausal=3200:4612 --earlier causal=3200:4598 \
        --quality benchmarks/results/quality.json

checks that each loads with the package's loader (as data), adds each
model's ONNX export (``onnx/``), writes a ``README.md`` model card (training
facts read from the run folder: updates of the exported checkpoint, the
training speech; scores from ``quality.json``'s ``shipped_*`` rows beside the
packaged peers, per SNR and per test group) and places them under
``speechbrain_fsce/pretrained_models/{noncausal,causal}`` (each folder
replaced whole, atomically). Run it again after ``benchmarks/quality.py``
has scored the shipped rows, to put the scores in the cards. A one-off
builder: it lives outside the installed package.

Authors
 * speechbrain-fsce developers
"""

import argparse
import json
import os
import shutil
import sys

#: Shipped name -> its recipe yaml (recipes/TIMIT/hparams/) and quality.py row.
SHIPPED = {
    "noncausal": ("shipped.yaml", "shipped_noncausal"),
    "causal": ("shipped_causal.yaml", "shipped_causal"),
}

#: Rows shown beside a shipped model in its card.
PEERS = ("noisy", "rnnoise", "dtln", "gtcrn", "dfn3")

#: Updates of the models shipped before the recipe trained them (the
#: ``benchmarks/results/long`` rows, 1,200 updates by quality.py), from
#: which the recipe runs started (``init_from``).
EARLIER_UPDATES = 1200

#: Largest model folder allowed in the package (bytes).
MAX_BYTES = 15 * 1024 * 1024

METRIC_LABELS = (
    ("pesq_wb", "PESQ-WB"),
    ("stoi", "STOI"),
    ("sisdr", "SI-SDR (dB)"),
    ("pesq_nb_raw", "PESQ-NB raw"),
    ("dnsmos_ovrl", "DNSMOS OVRL"),
)


def _fmt(value):
    return "-" if value is None else f"{value:.3f}"


def score_table(rows, names, columns=None, where=None):
    """Markdown table of ``quality.json`` rows: one line per system and column.

    Arguments
    ---------
    rows : dict
        ``quality.json`` content.
    names : list of str
        Rows to show, in order (missing ones are skipped).
    columns : list of str, optional
        SNR columns (default: the row's own ``snrs`` and ``avg``).
    where : str, optional
        ``"groups:<group>"`` shows that test group's cells instead.

    Returns
    -------
    str

    Example
    -------
    >>> cell = {m: 1.0 for m, _ in METRIC_LABELS}
    >>> row = {k: cell for k in ("-5", "clean", "avg")} | {"snrs": ["-5", "clean"]}
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
        row = rows[name]
        if where:
            kind, key = where.split(":", 1)
            row = row.get(kind, {}).get(key)
            if row is None:
                continue
        cols = columns or [*rows[name].get("snrs", []), "avg"]
        for snr in cols:
            if snr not in row:
                continue
            cells = " | ".join(_fmt(row[snr].get(m)) for m, _ in METRIC_LABELS)
            lines.append(f"| {name} | {snr} | {cells} |")
    return "\n".join(lines)


#: The folder the recipe runs from (its relative paths start there).
RECIPE_DIR = os.path.join("recipes", "TIMIT")

#: Top-level scalar values of a run's ``hyperparams.yaml`` that the card states.
RECIPE_KEYS = (
    "lr",
    "fused_weight",
    "train_snr_low",
    "train_snr_high",
    "train_clean_share",
    "train_level_jitter_db",
    "batch_size",
    "train_chunk_seconds",
    "prepared_folder",
)


def recipe_values(run):
    """The :data:`RECIPE_KEYS` values of ``<run>/hyperparams.yaml`` (the yaml the run used).

    SpeechBrain saves the yaml with the command-line overrides applied; the
    values are read as text (the file has object tags), as floats where
    they are numbers.

    Example
    -------
    >>> run = getfixture("tmp_path")
    >>> _ = (run / "hyperparams.yaml").write_text("lr: 0.0003   # note\\nfused_weight: 1.0\\n")
    >>> values = recipe_values(str(run))
    >>> values["lr"], values["fused_weight"], values["train_level_jitter_db"]
    (0.0003, 1.0, None)
    """
    import re

    with open(os.path.join(run, "hyperparams.yaml"), encoding="utf-8") as f:
        text = f.read()
    values = {}
    for key in RECIPE_KEYS:
        match = re.search(rf"^{key}:\s*([^\s#]+)", text, flags=re.M)
        value = match.group(1) if match else None
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        values[key] = value
    return values


def run_facts(run, model_folder):
    """Training facts of a recipe run: updates of the exported weights, speech.

    The exported checkpoint is found by its weights (the ``CKPT+*`` folder of
    ``<run>/save`` whose ``enhancer.ckpt`` equals the model folder's).
    """
    import collections
    import filecmp
    import glob

    import yaml

    facts = {"updates": None, "epoch_end": None, "valid_pesq_nb_raw": None, "best_of_run": None}
    scores = {}
    for ckpt in sorted(glob.glob(os.path.join(run, "save", "CKPT+*"))):
        with open(os.path.join(ckpt, "CKPT.yaml"), encoding="utf-8") as f:
            meta = yaml.safe_load(f) or {}
        scores[ckpt] = meta.get("pesq_nb_raw", float("-inf"))
        if filecmp.cmp(
            os.path.join(ckpt, "enhancer.ckpt"),
            os.path.join(model_folder, "enhancer.ckpt"),
            shallow=False,
        ):
            with open(os.path.join(ckpt, "brain.ckpt"), encoding="utf-8") as f:
                brain = yaml.safe_load(f)  # SpeechBrain's Brain state: plain YAML
            facts["updates"] = int(brain["optimizer_step"])
            facts["epoch_end"] = bool(meta.get("end-of-epoch"))
            facts["valid_pesq_nb_raw"] = scores[ckpt]
    if facts["valid_pesq_nb_raw"] is not None:
        facts["best_of_run"] = facts["valid_pesq_nb_raw"] >= max(scores.values())
    facts |= recipe_values(run)
    prepared = os.path.join(run, "prepared")
    if not os.path.isfile(os.path.join(prepared, "train.json")):  # run with --prepared_folder
        prepared = os.path.normpath(os.path.join(RECIPE_DIR, facts["prepared_folder"]))
    with open(os.path.join(prepared, "train.json"), encoding="utf-8") as f:
        train = json.load(f)
    speakers = collections.Counter(v["clean_wav"].split("/")[1] for v in train.values())
    seconds = sum(v["length"] for v in train.values())
    facts["train_files"] = len(train)
    facts["train_minutes"] = seconds / 60
    facts["voices"] = {
        "Czech game dialogue": sum(n for s, n in speakers.items() if s.startswith("cs_")),
        "spoken letters (18 languages)": sum(n for s, n in speakers.items() if s.startswith("kl_")),
        **{
            f"prompt voice {s}": n
            for s, n in sorted(speakers.items())
            if s.split("_")[0] in ("en", "es", "it", "ru", "fr")
        },
    }
    return facts


def model_card(name, yaml_name, system, config, parameters, facts, cpu_seconds, rows, sources):
    """The ``README.md`` of a shipped model folder."""
    causal = name == "causal"
    arch = ", ".join(f"{k}={v}" for k, v in config.items())
    updates = facts["updates"]
    earlier, earlier_cpu = facts.get("earlier_updates", 0), facts.get("earlier_cpu_seconds")
    total = "unknown" if updates is None else f"{earlier + updates:,}"
    v = {k: facts[k] for k in RECIPE_KEYS if facts.get(k) is not None}  # read from the run
    clean_share = v.get("train_clean_share") or 0
    jitter = v.get("train_level_jitter_db") or 0
    if facts.get("best_of_run"):
        chosen = "the checkpoint with the best validation PESQ-NB raw, what `fsce-export` picks"
    elif facts.get("valid_pesq_nb_raw") is not None:
        chosen = (
            f"a checkpoint other than the best by validation PESQ-NB raw"
            f" ({facts['valid_pesq_nb_raw']:.3f}), chosen by the A/B on the"
            " validation split in `benchmarks/RESULTS.md`;"
            " `fsce-export --ckpt <run>/save/CKPT+.../enhancer.ckpt` exports it"
        )
    else:
        chosen = "checkpoint not found in the run's save/ folder"
    jitter_text = (
        f"\n  Each excerpt reaches the network at its own level times a random gain within"
        f" +-{jitter:g} dB (so that a level a stream tracks late does no harm)."
        if jitter
        else ""
    )
    loss = "the paper's L_mag + L_RI (mean squared error on compressed spectra)"
    if v.get("fused_weight"):
        loss += f", plus {v['fused_weight']:g} x the same error on the fused output"
    voices = "; ".join(f"{k}: {v} files" for k, v in facts["voices"].items())
    cpu = "not recorded" if cpu_seconds is None else f"{cpu_seconds / 3600:.2f} CPU hours"
    if cpu_seconds is not None and earlier_cpu is not None:
        cpu += (
            f" ({(cpu_seconds + earlier_cpu) / 3600:.2f} with the earlier recipe runs it continues)"
        )
    if rows and system in rows:
        groups = sorted(rows[system].get("groups", {}))
        scores = [
            "Test split of the benchmark corpus (voices never heard in training:",
            "cs_real = a Czech male game voice, fr_real = a Canadian French female",
            "prompt voice, en_tts = three synthetic English voices (flite); unseen",
            "noise types beside the training ones; -5..20 dB and the clean input",
            "itself). `avg` = every noisy mixture; `clean` = clean input, scored",
            "against itself. Made by the command at the top of",
            "`benchmarks/results/quality.md`; the packaged peers are the pretrained",
            "enhancers a user could install instead.",
            "",
            score_table(rows, [*PEERS, system]),
        ]
        for group in groups:
            scores += [
                "",
                f"Group `{group}`:",
                "",
                score_table(rows, [*PEERS, system], where=f"groups:{group}"),
            ]
    else:
        scores = ["Not scored yet (run `benchmarks/quality.py` with the shipped rows)."]
    scores = "\n".join(scores)
    return f"""# FSCE `{name}` model (speechbrain-fsce)

{"Causal (zero look-ahead): for streaming and ONNX." if causal else "Non-causal: best quality for files."}
FSCE (Tai et al., arXiv:2110.05713), two collaborating branches (magnitude
and complex). Load it with `FSCEEnhancement.from_hparams(source="{name}")`
or `fsce-enhance noisy.wav -o out/{" --model causal" if causal else ""}`.

## Configuration
{arch}; {parameters:,} parameters
(published width: 3,214,992). 16 kHz, 20 ms Hann window, 10 ms hop.
The `onnx/` folder holds its ONNX export (`fsce-export --onnx`): {"the offline graph and the 10 ms streaming step" if causal else "the offline graph"}.

## Training
- Command (from `recipes/TIMIT`, after `make benchmark-corpus`):
  `python train.py hparams/{yaml_name}` (resumable: run it again to train further).
- Data: the benchmark corpus's training speech, {facts["train_files"]} files,
  {facts["train_minutes"]:.0f} min ({voices}), mixed on the fly with noise
  (machines, vehicles, music samples, white/pink noise, babble) at
  {v.get("train_snr_low", -5):g}..{v.get("train_snr_high", 25):g} dB,
  {100 * clean_share:.0f} % of the excerpts left clean (so that clean speech is left alone).{jitter_text}
  Sources and licences below.
- Loss: {loss}.
  Adam, lr {v.get("lr", 0.001):g} halved on validation plateaus, gradients clipped at 5;
  batches of {v.get("batch_size", 8):g} random {v.get("train_chunk_seconds", 1.0):g} s excerpts.
- Updates: {total} in all: {earlier:,} of the weights this run started from
  (`init_from`: the model shipped before it; its history, {EARLIER_UPDATES:,} updates by
  quality.py and then the earlier recipe runs, is in `benchmarks/RESULTS.md`),
  then {updates if updates is not None else "?"} by this run ({chosen}).
- Training time of this recipe run: {cpu}; one torch thread, a 2-core
  machine shared with other jobs.

## Test scores
{scores}

## Fine-tuning
`python train.py hparams/{yaml_name} --init_from={name} ...` continues from
these weights; another recipe yaml needs this architecture
(`--fsce="{{{arch.replace("=", ": ")}}}"`; the error names any difference).

## Known limits
- CPU-sized: about 0.59 M parameters, far below the published width and its
  training on TIMIT; trained for hours, not days.
- Test voices: one Czech, one French, three synthetic English; no real
  rooms or reverberation in training or test.
- Trained at 16 kHz; other rates are resampled by the tools.
- Licence: trained on GPL-2+ and CC-BY-SA-3.0 audio (below); whether such
  terms reach trained weights is unsettled, so treat the weights as under
  the most restrictive of them (GPL-2+).

## Data sources and licences
{sources}
"""


def ship(models, runs, cpu_seconds, quality=None, corpus="data/benchmark", root=None, earlier=None):
    """Builds the shipped folders; returns their paths."""
    import torch

    from speechbrain_fsce.fileio import atomic_folder
    from speechbrain_fsce.inference.onnx_export import export_onnx
    from speechbrain_fsce.inference.pretrained import FSCEEnhancement
    from speechbrain_fsce.inference.shipped import shipped_models_root
    from speechbrain_fsce.model_folder import CKPT_NAME, HPARAMS_NAME, MODEL_JSON, upgrade

    root = root or shipped_models_root()
    rows = None
    if quality and os.path.isfile(quality):
        with open(quality, encoding="utf-8") as f:
            rows = json.load(f)
    sources_path = os.path.join(corpus, "SOURCES.md")
    sources = "See the benchmark corpus's SOURCES.md (`make benchmark-corpus`)."
    if os.path.isfile(sources_path):
        with open(sources_path, encoding="utf-8") as f:
            sources = "\n".join(f.read().splitlines()[2:])
    out = []
    for name, src in models.items():
        yaml_name, system = SHIPPED[name]
        facts = run_facts(runs[name], src)
        facts["earlier_updates"], facts["earlier_cpu_seconds"] = (earlier or {}).get(
            name, (EARLIER_UPDATES, None)
        )
        dest = os.path.join(root, name)
        with atomic_folder(dest) as tmp:  # replaces an earlier folder only when complete
            for f in (HPARAMS_NAME, CKPT_NAME, MODEL_JSON):
                if f != MODEL_JSON or os.path.isfile(os.path.join(src, f)):
                    shutil.copy(os.path.join(src, f), os.path.join(tmp, f))
            upgrade(tmp)  # model.json of a folder exported before it existed (checked)
            enhancer = FSCEEnhancement.from_hparams(source=tmp).mods.enhancer
            with open(os.path.join(tmp, MODEL_JSON), encoding="utf-8") as f:
                config = json.load(f)["architecture"]
            keys = ("channels", "inner_channels", "tcm_hidden_channels", "num_tcm_modules")
            shown = {k: config[k] for k in keys if k in config}
            shown |= {k: config[k] for k in ("magnitude_output", "complex_output") if k in config}
            parameters = sum(p.numel() for p in enhancer.parameters())
            # Both ship their ONNX graphs (offline; the causal one also the
            # step), so `fsce-enhance --backend onnx` runs them without exporting.
            export_onnx(enhancer.to(torch.device("cpu")), os.path.join(tmp, "onnx"))
            card = model_card(
                name,
                yaml_name,
                system,
                shown,
                parameters,
                facts,
                cpu_seconds.get(name),
                rows,
                sources,
            )
            with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
                f.write(card)
            size = sum(
                os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tmp) for f in files
            )
            if size > MAX_BYTES:
                raise SystemExit(f"{dest}: {size} bytes, over the {MAX_BYTES} allowed")
        print(f"{dest}: {size / 1e6:.1f} MB, {facts['updates']} recipe updates")
        out.append(dest)
    return out


def _updates_and_seconds(text):
    updates, _, seconds = text.partition(":")
    return int(updates), float(seconds) if seconds else None


def _pairs(values, parser, flag, convert=str):
    out = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep or name not in SHIPPED:
            parser.error(f"{flag} takes noncausal=... or causal=..., got {value!r}")
        out[name] = convert(rest)
    return out


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="name=model_folder")
    parser.add_argument("--run", action="append", required=True, help="name=recipe run folder")
    parser.add_argument("--cpu_seconds", action="append", help="name=CPU seconds of the run")
    parser.add_argument(
        "--earlier",
        action="append",
        help="name=UPDATES:CPU_SECONDS of the weights the run started from (init_from), "
        f"all earlier training together (default: {EARLIER_UPDATES} updates, CPU not recorded)",
    )
    parser.add_argument("--quality", default="benchmarks/results/quality.json")
    parser.add_argument("--corpus", default="data/benchmark", help="for its SOURCES.md")
    args = parser.parse_args(argv)
    models = _pairs(args.model, parser, "--model")
    runs = _pairs(args.run, parser, "--run")
    if set(runs) != set(models):
        parser.error("give a --run for every --model")
    cpu = _pairs(args.cpu_seconds, parser, "--cpu_seconds", float)
    earlier = _pairs(args.earlier, parser, "--earlier", _updates_and_seconds)
    ship(models, runs, cpu, quality=args.quality, corpus=args.corpus, earlier=earlier)
    return 0


if __name__ == "__main__":
    sys.exit(main())
