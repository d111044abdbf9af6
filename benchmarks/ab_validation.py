"""A/B of training choices on the validation split (never the test split).

Scores model folders (one per arm of an A/B, e.g. recipe runs that differ in
one hyperparameter) on the same fixed validation mixtures of a prepared
corpus, and on the clean references of those mixtures given as input (the
over-suppression check: a model should leave clean speech alone). Prints and
writes a table with paired differences from the first arm (95 % bootstrap
intervals over utterances)::

    python benchmarks/ab_validation.py --prepared results/shipped/1234/prepared \\
        --arms base=results/ab_base/1234/model clean=results/ab_clean/1234/model \\
        --utterances 150 --output benchmarks/results/ab

Authors
 * speechbrain-fsce developers
"""

import argparse
import json
import os
import shlex
import sys

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from speechbrain_fsce.dataio.audio import load_audio  # noqa: E402
from speechbrain_fsce.dataio.folders import load_prepared  # noqa: E402
from speechbrain_fsce.fileio import atomic_write  # noqa: E402
from speechbrain_fsce.metrics import pesq_wb, sisdr, stoi  # noqa: E402

METRICS = {"pesq_wb": pesq_wb, "stoi": stoi, "sisdr": sisdr}


def choose(manifest, count, seed):
    """A seeded, sorted subset of ``count`` manifest ids (all if fewer).

    Example
    -------
    >>> choose({f"u{i}": {} for i in range(10)}, 3, 0) == choose({f"u{i}": {} for i in range(10)}, 3, 0)
    True
    """
    ids = sorted(manifest)
    if count is None or count >= len(ids):
        return ids
    rng = np.random.default_rng(seed)
    return sorted(ids[i] for i in rng.choice(len(ids), count, replace=False))


def score(reference, estimate):
    """``{metric: value}`` of one pair (nan where a metric cannot score it)."""
    return {name: float(fn(reference, estimate)) for name, fn in METRICS.items()}


def paired_interval(a, b, seed=0, rounds=2000):
    """Mean of ``b - a`` and its 95 % bootstrap interval over finite pairs.

    Example
    -------
    >>> mean, low, high = paired_interval([0.0] * 50, [1.0] * 50)
    >>> mean, low, high
    (1.0, 1.0, 1.0)
    """
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (rounds, len(d)))].mean(1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def load_model(folder):
    """The enhancer of a model folder (loaded as data, eval mode)."""
    from speechbrain_fsce.inference import FSCEEnhancement

    return FSCEEnhancement.from_hparams(source=folder).mods.enhancer.eval()


def evaluate(arms, prepared, utterances, seed, progress=True):
    """Per-arm, per-condition lists of scores on the chosen validation items.

    Returns ``{arm: {"noisy": {metric: [..]}, "clean": {metric: [..]}}}`` plus
    the unprocessed input's scores under ``"input"``.
    """
    manifest = load_prepared(prepared, "valid")
    ids = choose(manifest, utterances, seed)
    pairs = []
    for i in ids:
        item = manifest[i]
        pairs.append((load_audio(item["clean_wav"]), load_audio(item["noisy_wav"])))
    results = {"input": {"noisy": {m: [] for m in METRICS}, "clean": {m: [] for m in METRICS}}}
    for clean, noisy in pairs:
        for m, v in score(clean.numpy(), noisy.numpy()).items():
            results["input"]["noisy"][m].append(v)
    for name, folder in arms.items():
        enhancer = load_model(folder)
        out = results[name] = {c: {m: [] for m in METRICS} for c in ("noisy", "clean")}
        for clean, noisy in tqdm(pairs, desc=name, disable=not progress or None):
            with torch.no_grad():
                for cond, x in (("noisy", noisy), ("clean", clean)):
                    y = enhancer(x.unsqueeze(0))[0]
                    for m, v in score(clean.numpy(), y.numpy()).items():
                        out[cond][m].append(v)
    return results, ids


def report(results, arms, command):
    """Markdown: means per arm and condition, paired differences from the first arm."""
    first = next(iter(arms))
    lines = [
        "# A/B on the validation split",
        "",
        f"Command: `{command}`",
        "",
        "`noisy`: the validation mixtures; `clean`: their clean references as input",
        "(scored against themselves; the input itself scores PESQ-WB 4.64, STOI 1).",
        "",
        "| arm | input | PESQ-WB | STOI | SI-SDR (dB) |",
        "|---|---|---|---|---|",
    ]
    noisy_in = results["input"]["noisy"]
    lines.append(
        "| (unprocessed) | noisy | "
        + " | ".join(f"{np.nanmean(noisy_in[m]):.3f}" for m in METRICS)
        + " |"
    )
    for arm in arms:
        for cond in ("noisy", "clean"):
            vals = results[arm][cond]
            lines.append(
                f"| {arm} | {cond} | "
                + " | ".join(f"{np.nanmean(vals[m]):.3f}" for m in METRICS)
                + " |"
            )
    lines += ["", f"Paired differences from `{first}` (mean [95 % interval]):", ""]
    lines += ["| arm | input | PESQ-WB | STOI | SI-SDR (dB) |", "|---|---|---|---|---|"]
    for arm in list(arms)[1:]:
        for cond in ("noisy", "clean"):
            cells = []
            for m in METRICS:
                mean, low, high = paired_interval(results[first][cond][m], results[arm][cond][m])
                cells.append(f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]")
            lines.append(f"| {arm} | {cond} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepared", required=True, help="prepared folder with valid.json")
    parser.add_argument("--arms", nargs="+", required=True, help="name=model_folder ...")
    parser.add_argument("--utterances", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="benchmarks/results/ab")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    arms = {}
    for spec in args.arms:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not os.path.isdir(folder):
            parser.error(f"--arms takes name=model_folder, got {spec!r}")
        arms[name] = folder
    results, ids = evaluate(arms, args.prepared, args.utterances, args.seed)
    command = shlex.join(["python", "benchmarks/ab_validation.py", *sys.argv[1:]])
    text = report(results, arms, command)
    print(text)
    os.makedirs(args.output, exist_ok=True)
    atomic_write(os.path.join(args.output, "ab.md"), text)
    atomic_write(
        os.path.join(args.output, "ab.json"),
        json.dumps({"command": command, "ids": ids, "arms": arms, "results": results}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
