#!/usr/bin/env python3
"""Quality of FSCE, its ablations, SpeechBrain's enhancers and a classical one.

One command trains every system at the same budget -- the same training
utterances, noise, SNRs, excerpts and batches in the same order (drawn from
``(seed, step)`` only), the same number of updates, batch size and excerpt
length, the same STFT where a system has one -- and scores each on the
unseen test split of the benchmark corpus (``make benchmark-corpus``) at
-5/0/5/10 dB::

    python benchmarks/quality.py                       # the whole table
    python benchmarks/quality.py --systems fsce,noisy  # some systems
    python benchmarks/quality.py --steps 2000          # a longer budget

Every system trains in its own folder under ``--work`` with a checkpoint
every ``--ckpt_every`` updates (an interrupted run resumes where it
stopped; a finished system is only re-scored if its scores are missing).
Writes ``quality.json`` (``{system: {"-5"|"0"|"5"|"10"|"avg": {metric:
value}, "train_seconds", "train_cpu_seconds", "parameters", "steps", ...}}``),
``quality.md`` and ``quality.png`` into ``--output``; FSCE systems are also
exported as model folders (``<work>/<system>/model``).

Authors
 * speechbrain-fsce developers
"""

import argparse
import json
import math
import os
import shlex
import sys
import time
from multiprocessing import get_context

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_systems import System, peer_systems  # noqa: E402

from speechbrain_fsce.dataio.folders import load_prepared  # noqa: E402
from speechbrain_fsce.dataio.mixing import OnTheFlyMixer  # noqa: E402
from speechbrain_fsce.fileio import atomic_path, atomic_write  # noqa: E402

#: FSCE's base configuration in the table: the demo configuration's width
#: (half the published channels, two S-TCM modules), outputs that start at
#: the noisy input. The published width trains ~2.3x slower per update on
#: these CPUs (benchmarks/RESULTS.md), i.e. too few updates in the budget.
FSCE_BASE = {
    "channels": 32,
    "inner_channels": 16,
    "tcm_hidden_channels": 32,
    "num_tcm_modules": 2,
    "magnitude_output": "mask",
    "complex_output": "residual",
}

#: FSCE systems: overrides of FSCE_BASE (the README's ablations).
FSCE_SYSTEMS = {
    "fsce": {},
    "magnitude_only": {"branches": "magnitude"},
    "complex_only": {"branches": "complex"},
    "no_collaboration": {"collaborate": False},
    "plain_conv": {"block": "conv"},
    "fsce_causal": {"causal": True},
}

#: Table order.
SYSTEMS = (
    "noisy",
    "classical",
    "fsce",
    "fsce_causal",
    "magnitude_only",
    "complex_only",
    "no_collaboration",
    "plain_conv",
    "metricgan_generator",
    "cnn_transformer",
    "enhance_resnet",
)

#: Learning rate of every trained system (Adam, gradients clipped at 5):
#: one value for all. The peers' recipes use 1e-4 to 5e-4 over tens of
#: epochs; at a budget of a few hundred updates that leaves them far from
#: converged, so every system gets the same, larger step.
LR = 1e-3

#: Peers built narrower than their recipes, with the reason.
NARROWED = {
    # 21.1 M parameters, 24 s per update on one core at the recipe width:
    # the whole table's budget for this one system. A quarter of its
    # channels (1.36 M parameters, 2.7 s per update).
    "enhance_resnet": {"channel_counts": (32, 32, 64, 64, 128, 128), "dense_nodes": 256},
}

METRICS = ("pesq_nb_raw", "pesq_wb", "stoi", "sisdr", "dnsmos_ovrl")
SNRS = ("-5", "0", "5", "10")


class FSCESystem(System):
    """FSCE (or an ablation) behind the harness interface.

    Arguments
    ---------
    overrides : dict
        Keys of ``hparams/fsce_model.yaml``.
    loss_weights : dict, optional
        ``mag_weight``, ``ri_weight``, ``fused_weight`` of
        :class:`~speechbrain_fsce.losses.FSCELoss` (default 1, 1, 0).
    """

    def __init__(self, overrides, loss_weights=None):
        from speechbrain_fsce.inference.export import build_enhancer
        from speechbrain_fsce.losses import FSCELoss

        super().__init__()
        self.overrides = dict(overrides)
        self.enhancer = build_enhancer(self.overrides)
        # The recipes' loss (hparams/fsce_training.yaml): L_mag + L_RI.
        weights = {"mag_weight": 1.0, "ri_weight": 1.0, "fused_weight": 0.0}
        weights.update(loss_weights or {})
        self.criterion = FSCELoss(**weights)

    def enhance(self, noisy, lengths=None):
        """Enhanced waveforms ``[batch, samples]``."""
        return self.enhancer(noisy, lengths)

    def loss(self, noisy, clean, lengths=None):
        """The recipe's training loss on a batch."""
        output, _, scale = self.enhancer(noisy, lengths, return_spectra=True)
        target = self.enhancer.target_spectrum(clean, scale)
        loss, _ = self.criterion(output, target, lengths, front_end=self.enhancer.front_end)
        return loss


class ModelFolderSystem(System):
    """An already trained FSCE model folder (or shipped name), scored as is.

    Arguments
    ---------
    source : str
        A model folder or a shipped model name (``noncausal``, ``causal``).
    """

    trainable = False

    def __init__(self, source):
        from speechbrain_fsce.inference.pretrained import FSCEEnhancement

        super().__init__()
        self.enhancer = FSCEEnhancement.from_hparams(source=source).mods.enhancer

    def enhance(self, noisy, lengths=None):
        """Enhanced waveforms ``[batch, samples]``."""
        return self.enhancer(noisy, lengths)


#: Extra rows: ``--folders name=DIR`` (set by :func:`main`).
FOLDERS = {}

#: Extra FSCE rows: ``--variant 'name={"lr": 0.002, "fused_weight": 1}'``,
#: changes from the ``fsce`` row (architecture keys, loss weights, lr).
VARIANTS = {}
LOSS_KEYS = ("mag_weight", "ri_weight", "fused_weight")


def _lr(name):
    return VARIANTS.get(name, {}).get("lr", LR)


def _variant_configuration(name):
    spec = VARIANTS[name]
    return {**FSCE_BASE, **{k: v for k, v in spec.items() if k != "lr" and k not in LOSS_KEYS}}


def make_system(name):
    """A fresh system by table name."""
    if name in FOLDERS:
        return ModelFolderSystem(FOLDERS[name])
    if name in VARIANTS:
        loss = {k: v for k, v in VARIANTS[name].items() if k in LOSS_KEYS}
        return FSCESystem(_variant_configuration(name), loss)
    if name in FSCE_SYSTEMS:
        return FSCESystem({**FSCE_BASE, **FSCE_SYSTEMS[name]})
    peers = peer_systems()
    if name not in peers:
        raise ValueError(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    return peers[name](**NARROWED.get(name, {}))


# ---------------------------------------------------------------------------
# Data: the same batches for every system
# ---------------------------------------------------------------------------


class TrainBatches:
    """Training batch number ``step``, a function of ``(seed, step)`` only.

    Utterances drawn uniformly with replacement from the training manifest,
    a random excerpt of each, noise from the training noise at an integer
    SNR in [-5, 15] dB (the recipes' :class:`OnTheFlyMixer`).

    Arguments
    ---------
    prepared : str
        The prepared corpus folder.
    batch_size : int
        Utterances per batch.
    excerpt_seconds : float
        Excerpt length; shorter utterances are zero-padded (relative lengths).
    seed : int
        Seed of all draws.
    """

    def __init__(self, prepared, batch_size, excerpt_seconds, seed):
        self.items = sorted(load_prepared(prepared, "train").values(), key=lambda v: v["clean_wav"])
        self.mixer = OnTheFlyMixer(os.path.join(prepared, "noise_train.wav"), -5, 15, seed=seed)
        self.batch_size = batch_size
        self.length = int(excerpt_seconds * 16000)
        self.seed = seed

    def __call__(self, step):
        """``(noisy, clean, lengths)`` of update ``step``."""
        rng = np.random.default_rng([self.seed, 7, step])
        self.mixer.set_epoch(step)
        noisy = torch.zeros(self.batch_size, self.length)
        clean = torch.zeros(self.batch_size, self.length)
        lengths = torch.ones(self.batch_size)
        for b, k in enumerate(rng.integers(0, len(self.items), self.batch_size)):
            signal = torch.from_numpy(sf.read(self.items[k]["clean_wav"], dtype="float32")[0])
            excerpt = self.mixer.excerpt(signal, self.length)
            mixed, _ = self.mixer(excerpt)
            n = len(excerpt)
            clean[b, :n], noisy[b, :n] = excerpt, mixed
            lengths[b] = n / self.length
        return noisy, clean, lengths


# ---------------------------------------------------------------------------
# Training (resumable) and scoring
# ---------------------------------------------------------------------------


def train(system, folder, batches, steps, ckpt_every, log, lr=LR, device="cpu"):
    """Trains ``system`` to ``steps`` updates, resuming from ``folder``.

    Returns ``{"steps", "train_seconds", "train_cpu_seconds", "final_loss"}``.
    """
    ckpt = os.path.join(folder, "train.ckpt")
    opt = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=lr)
    state = {"step": 0, "wall": 0.0, "cpu": 0.0, "losses": []}
    if os.path.isfile(ckpt):
        saved = torch.load(ckpt, weights_only=True, map_location=device)
        system.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        log(f"resumed at update {state['step']}")
        if state["step"] > steps:
            raise SystemExit(
                f"{folder}: trained for {state['step']} updates already, more than "
                f"--steps {steps}; use another --work folder"
            )
    if state["step"] >= steps:
        return state
    system.train()
    wall0, cpu0, base = time.time(), time.process_time(), dict(state)
    for step in range(state["step"], steps):
        noisy, clean, lengths = (t.to(device) for t in batches(step))
        loss = system.loss(noisy, clean, lengths)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at update {step}")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(system.parameters(), 5.0)
        opt.step()
        state["losses"].append(loss.item())
        state["step"] = step + 1
        state["wall"] = base["wall"] + time.time() - wall0
        state["cpu"] = base["cpu"] + time.process_time() - cpu0
        if state["step"] % ckpt_every == 0 or state["step"] == steps:
            with atomic_path(ckpt) as tmp:
                torch.save(
                    {"model": system.state_dict(), "opt": opt.state_dict(), "state": state}, tmp
                )
            recent = np.mean(state["losses"][-ckpt_every:])
            log(f"update {state['step']}/{steps}: loss {recent:.4f}, {state['wall']:.0f} s")
    return state


def scored_test_items(prepared, utterances, seed):
    """The scored test mixtures: ``utterances`` clean test files x every SNR."""
    manifest = load_prepared(prepared, "test")
    clean_ids = sorted({v["clean_id"] for v in manifest.values()})
    if utterances and utterances < len(clean_ids):
        rng = np.random.default_rng([seed, 11])
        clean_ids = sorted(rng.choice(clean_ids, utterances, replace=False).tolist())
    keep = set(clean_ids)
    return {k: v for k, v in sorted(manifest.items()) if v["clean_id"] in keep}


def _score_one(job):
    from speechbrain_fsce import metrics

    clean, enhanced, with_dnsmos = job
    # The table's metrics only (compute_all adds the composite measures).
    out = {
        "pesq_nb_raw": metrics.pesq_nb_raw(clean, enhanced, 16000),
        "pesq_wb": metrics.pesq_wb(clean, enhanced, 16000),
        "stoi": metrics.stoi(clean, enhanced, 16000),
        "sisdr": metrics.sisdr(clean, enhanced),
    }
    out["dnsmos_ovrl"] = None  # not computed for this clip
    if with_dnsmos and metrics.dnsmos_available():
        out["dnsmos_ovrl"] = float(metrics.dnsmos(enhanced, 16000)["ovrl"])
    return out


def enhance_and_score(system, items, n_jobs, dnsmos_utterances, log, device="cpu"):
    """Per-mixture scores of ``system`` on ``items``.

    DNSMOS (~0.5-2 s per clip here, against ~0.3 s for all the intrusive
    metrics together) is computed on the mixtures of the first
    ``dnsmos_utterances`` clean files only.
    """
    system.eval()
    jobs, keys = [], []
    dnsmos_ids = sorted({v["clean_id"] for v in items.values()})[:dnsmos_utterances]
    with torch.no_grad():
        for key, item in items.items():
            noisy = torch.from_numpy(sf.read(item["noisy_wav"], dtype="float32")[0])
            clean = sf.read(item["clean_wav"], dtype="float32")[0]
            enhanced = system.enhance(noisy[None].to(device))[0].cpu().numpy()
            jobs.append((clean, enhanced.astype(np.float32), item["clean_id"] in dnsmos_ids))
            keys.append(key)
    log(f"enhanced {len(jobs)} test mixtures; scoring")
    if n_jobs > 1:
        with get_context("spawn").Pool(n_jobs) as pool:
            scores = pool.map(_score_one, jobs, chunksize=4)
    else:
        scores = [_score_one(j) for j in jobs]
    return {k: {"snr": items[k]["snr"], **s} for k, s in zip(keys, scores)}


def summarize(per_item):
    """Means per SNR and over all, over the clips each metric could score."""
    table = {}
    groups = {snr: [v for v in per_item.values() if str(v["snr"]) == snr] for snr in SNRS}
    groups["avg"] = list(per_item.values())
    for snr, rows in groups.items():
        cell = {}
        for m in METRICS:
            tried = [r[m] for r in rows if r[m] is not None]
            values = [v for v in tried if math.isfinite(v)]
            cell[m] = float(np.mean(values)) if values else None
            if len(values) < len(tried):  # e.g. PESQ found no utterance
                cell[f"{m}_unscored"] = len(tried) - len(values)
            if m == "dnsmos_ovrl":
                cell["dnsmos_n"] = len(values)
        cell["n"] = len(rows)
        table[snr] = cell
    return table


def system_config(name, args):
    """What a system's training and scores depend on, besides ``--steps``.

    Stored as ``config.json`` in its work folder; a later run with other
    values is refused rather than resumed or re-used.
    """
    return json.loads(
        json.dumps(
            {
                "batch_size": args.batch_size,
                "excerpt_seconds": args.excerpt_seconds,
                "seed": args.seed,
                "lr": _lr(name),
                "variant": VARIANTS.get(name),
                "configuration": (
                    {**FSCE_BASE, **FSCE_SYSTEMS[name]}
                    if name in FSCE_SYSTEMS
                    else NARROWED.get(name)
                ),
                "source": os.path.abspath(FOLDERS[name]) if name in FOLDERS else None,
                "test_utterances": args.test_utterances,
                "dnsmos_utterances": args.dnsmos_utterances,
                "prepared": args.prepared,
            }
        )
    )


def run_system(name, args):
    """Trains (if needed) and scores one system; returns its quality.json entry."""
    FOLDERS.update(getattr(args, "folder_rows", {}))  # in a spawned worker
    VARIANTS.update(getattr(args, "variant_rows", {}))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    folder = os.path.join(args.work, name)
    os.makedirs(folder, exist_ok=True)

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {name}: {msg}"
        print(line, flush=True)
        with open(os.path.join(folder, "log.txt"), "a", encoding="utf-8") as f:
            f.write(line + "\n")

    device = torch.device(getattr(args, "device", "cpu"))
    system = make_system(name).to(device)
    parameters = sum(p.numel() for p in system.parameters())
    config = system_config(name, args)
    config_path = os.path.join(folder, "config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved != config:
            changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
            raise SystemExit(
                f"{folder} was trained or scored with other settings ({', '.join(changed)}); "
                "use another --work folder or remove it"
            )
    else:
        atomic_write(config_path, json.dumps(config, indent=1))
    state = {"step": 0, "wall": 0.0, "cpu": 0.0, "losses": []}
    if system.trainable:
        batches = TrainBatches(args.prepared, args.batch_size, args.excerpt_seconds, args.seed)
        state = train(
            system, folder, batches, args.steps, args.ckpt_every, log, lr=_lr(name), device=device
        )
    scores_path = os.path.join(
        folder, f"scores_{args.steps}_{args.test_utterances}_{args.dnsmos_utterances}.json"
    )
    if os.path.isfile(scores_path):
        with open(scores_path, encoding="utf-8") as f:
            per_item = json.load(f)
    else:
        items = scored_test_items(args.prepared, args.test_utterances, args.seed)
        per_item = enhance_and_score(
            system, items, args.score_jobs, args.dnsmos_utterances, log, device=device
        )
        atomic_write(scores_path, json.dumps(per_item))
    if (name in FSCE_SYSTEMS or name in VARIANTS) and name not in FOLDERS:
        from speechbrain_fsce.inference.export import export_model

        export_model(os.path.join(folder, "model"), system.enhancer, system.overrides)
    entry = summarize(per_item)
    entry["scores_file"] = os.path.abspath(scores_path)
    entry.update(
        parameters=parameters,
        steps=state["step"],
        train_seconds=round(state["wall"], 1),
        train_cpu_seconds=round(state["cpu"], 1),
        final_loss=float(np.mean(state["losses"][-50:])) if state["losses"] else None,
        lr=_lr(name) if system.trainable else None,
        configuration=(
            {**FSCE_BASE, **FSCE_SYSTEMS[name]}
            if name in FSCE_SYSTEMS
            else _variant_configuration(name)
            if name in VARIANTS
            else NARROWED.get(name, {})
        ),
        loss_weights={k: v for k, v in VARIANTS.get(name, {}).items() if k in LOSS_KEYS} or None,
        source=FOLDERS.get(name),
        batch_size=args.batch_size,
        excerpt_seconds=args.excerpt_seconds,
        seed=args.seed,
        threads=args.threads,
        command=getattr(args, "command", None),
    )
    log(
        "avg "
        + ", ".join(f"{m} {entry['avg'][m]:.3f}" for m in METRICS if entry["avg"][m] is not None)
    )
    return name, entry


def _run_system(job):
    name, args = job
    return run_system(name, args)


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------

LABELS = {
    "pesq_nb_raw": "PESQ-NB raw",
    "pesq_wb": "PESQ-WB",
    "stoi": "STOI",
    "sisdr": "SI-SDR (dB)",
    "dnsmos_ovrl": "DNSMOS OVRL",
}


def paired_differences(results, reference="fsce", metrics=("pesq_wb", "stoi"), draws=2000):
    """Mean difference of every row from ``reference`` on the same mixtures.

    Returns ``{row: {metric: (mean, low, high)}}`` with a 95 % bootstrap
    interval over mixtures (paired: the same mixtures are drawn for both),
    for the rows whose per-mixture scores (``scores_file``) are readable.
    """
    per_item = {}
    for name, e in results.items():
        path = e.get("scores_file")
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                per_item[name] = json.load(f)
    if reference not in per_item:
        return {}
    out = {}
    rng = np.random.default_rng(0)
    for name, items in per_item.items():
        if name == reference:
            continue
        keys = sorted(set(items) & set(per_item[reference]))
        if not keys:
            continue
        cell = {}
        for m in metrics:
            pairs = [(items[k][m], per_item[reference][k][m]) for k in keys]
            diff = np.array([a - b for a, b in pairs if a is not None and b is not None])
            diff = diff[np.isfinite(diff)]
            if len(diff) == 0:
                continue
            boot = rng.choice(diff, (draws, len(diff))).mean(axis=1)
            cell[m] = (float(diff.mean()), *map(float, np.percentile(boot, [2.5, 97.5])))
        out[name] = cell
    return out


def markdown(results):
    """The table of ``quality.json`` in markdown, with the commands that made it."""

    def f(v, m):
        if v is None:
            return "-"
        return f"{v:.2f}" if m in ("sisdr",) else f"{v:.3f}"

    lines = [
        "# Quality at equal budget (benchmark corpus, unseen speaker and noise types)",
        "",
        "Made by (each row records its command in quality.json):",
        "",
        *[f"- `{c}`" for c in dict.fromkeys(e.get("command", "?") for e in results.values())],
        "",
        "Every trained system: the same updates on the same batches (see the "
        "command's --steps, --batch_size, --excerpt_seconds, --seed), Adam at "
        f"lr {LR:g} (variants below may set another), gradients clipped at 5. "
        "PESQ, STOI and SI-SDR over every scored test mixture; DNSMOS OVRL over "
        "the mixtures of the first --dnsmos_utterances test files. Narrowed peers: "
        + ", ".join(f"{k} {v}" for k, v in NARROWED.items())
        + ".",
        "",
        "Averages over -5/0/5/10 dB:",
        "",
        "| system | " + " | ".join(LABELS[m] for m in METRICS) + " | parameters | updates "
        "| train wall s | train CPU s |",
        "|---|" + "---|" * (len(METRICS) + 4),
    ]
    for name, e in results.items():
        lines.append(
            f"| {name} | "
            + " | ".join(f(e["avg"][m], m) for m in METRICS)
            + f" | {e['parameters']:,} | {e['steps']} | {e['train_seconds']:.0f} "
            f"| {e['train_cpu_seconds']:.0f} |"
        )
    for m in METRICS:
        lines += ["", f"{LABELS[m]} per SNR:", "", "| system | " + " | ".join(SNRS) + " |"]
        lines.append("|---|" + "---|" * len(SNRS))
        for name, e in results.items():
            lines.append(f"| {name} | " + " | ".join(f(e[s][m], m) for s in SNRS) + " |")
    variants = {n: e for n, e in results.items() if e.get("loss_weights") or n not in SYSTEMS}
    if variants:
        lines += ["", "Rows beyond the systems (FSCE variants, model folders):", ""]
        for name, e in variants.items():
            what = e.get("source") or {
                "lr": e.get("lr"),
                "loss weights": e.get("loss_weights"),
                "configuration": e.get("configuration"),
            }
            lines.append(f"- `{name}`: {what}")
    paired = paired_differences(results)
    if paired:
        lines += [
            "",
            "Difference from `fsce` on the same mixtures (mean, and 95 % bootstrap "
            "interval over mixtures; an interval that holds 0 is no measured difference; "
            "the mixtures of one utterance are correlated, so the intervals are if anything "
            "too narrow):",
            "",
            "| system | PESQ-WB | STOI |",
            "|---|---|---|",
        ]
        for name, cell in paired.items():
            text = [
                f"{cell[m][0]:+.3f} [{cell[m][1]:+.3f}, {cell[m][2]:+.3f}]" if m in cell else "-"
                for m in ("pesq_wb", "stoi")
            ]
            lines.append(f"| {name} | " + " | ".join(text) + " |")
    unscored = {
        name: {k: v for k, v in e["avg"].items() if k.endswith("_unscored")}
        for name, e in results.items()
    }
    unscored = {k: v for k, v in unscored.items() if v}
    if unscored:
        lines += ["", f"Clips a metric could not score (left out of its mean): {unscored}"]
    return "\n".join(lines) + "\n"


def plot(results, path):
    """Bar chart: one panel per metric, one bar per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 4.5))
    for ax, m in zip(axes, METRICS):
        values = [results[n]["avg"][m] if results[n]["avg"][m] is not None else 0 for n in names]
        colors = [
            "0.6" if n == "noisy" else ("C0" if n.startswith("fsce") else "C1") for n in names
        ]
        ax.bar(range(len(names)), values, color=colors)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=70, ha="right", fontsize=8)
        ax.set_title(LABELS[m])
        low = min(values)
        ax.set_ylim(min(0, low) if m == "sisdr" else 0.9 * low, max(values) * 1.05 + 1e-9)
    fig.suptitle("Equal budget, average over -5/0/5/10 dB (grey: noisy, blue: FSCE family)")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepared", default="data/benchmark/prepared")
    parser.add_argument("--work", default="results/quality")
    parser.add_argument("--output", default="benchmarks/results")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="extra FSCE row: name={json of changes from fsce: architecture keys, "
        "mag_weight/ri_weight/fused_weight, lr} (repeatable)",
    )
    parser.add_argument(
        "--folders",
        default="",
        help="extra rows scored as they are: name=model_folder_or_shipped_name,...",
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--excerpt_seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--ckpt_every", type=int, default=25)
    parser.add_argument("--test_utterances", type=int, default=100)
    parser.add_argument("--dnsmos_utterances", type=int, default=25)
    parser.add_argument("--jobs", type=int, default=2, help="systems trained at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per system")
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device of training and enhancement (default: cuda when present)",
    )
    parser.add_argument("--score_jobs", type=int, default=1, help="scoring processes per system")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/quality.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    args.folder_rows = dict(kv.split("=", 1) for kv in args.folders.split(",") if kv.strip())
    FOLDERS.update(args.folder_rows)
    args.variant_rows = {}
    for text in args.variant:
        name, _, spec = text.partition("=")
        try:
            args.variant_rows[name.strip()] = dict(json.loads(spec))
        except (ValueError, TypeError):
            parser.error(f"--variant {text!r}: expected name={{json object}}")
    VARIANTS.update(args.variant_rows)
    names += [n for n in (*args.folder_rows, *args.variant_rows) if n not in names]
    for n in [n for n in names if n not in FOLDERS and n not in VARIANTS]:
        if n not in SYSTEMS:
            parser.error(f"unknown system {n!r}; choose from {', '.join(SYSTEMS)}")
    if not os.path.isfile(os.path.join(args.prepared, "test.json")):
        parser.error(f"{args.prepared}: no prepared corpus (run `make benchmark-corpus`)")
    args.prepared = os.path.abspath(args.prepared)

    # Longest first, so that two workers finish together.
    first = ("fsce", "fsce_causal", "enhance_resnet", "no_collaboration", "complex_only")
    jobs = [
        (n, args)
        for n in sorted(names, key=lambda n: (n not in first, first.index(n) if n in first else 0))
    ]
    if args.jobs > 1:
        with get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
            done = dict(pool.imap_unordered(_run_system, jobs))
    else:
        done = dict(run_system(n, args) for n in names)

    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "quality.json")
    results = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    results.update(done)
    order = [n for n in SYSTEMS if n in results] + sorted(set(results) - set(SYSTEMS))
    results = {n: results[n] for n in order}
    atomic_write(path, json.dumps(results, indent=1))
    atomic_write(os.path.join(args.output, "quality.md"), markdown(results))
    plot(results, os.path.join(args.output, "quality.png"))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
