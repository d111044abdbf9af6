#!/usr/bin/env python3
"""Per-hop time of the network's stream step, one or more versions side by side.

Times :meth:`FSCE.forward_step <speechbrain_fsce.models.FSCE.forward_step>`
alone (no STFT, no streamer) on one frame a hop, at the published width,
causal, BatchNorm folded as the streamer and the export fold it (random
weights: compute time does not depend on them). Each SOURCE, a directory
holding a ``speechbrain_fsce`` package (a checkout, or an extracted
``git archive <rev> speechbrain_fsce``), runs in its own worker process, and
the hops are interleaved across the workers (A B B A A B ...), so that the
load of a shared machine hits every version alike. Per hop it records the
CPU time of the worker's thread (``time.thread_time``).

Usage::

    python benchmarks/bench_network_step.py                  # this checkout
    mkdir -p /tmp/before && git archive <rev> speechbrain_fsce | tar -x -C /tmp/before
    python benchmarks/bench_network_step.py /tmp/before .     # before vs now

Authors
 * speechbrain-fsce developers
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np


def worker(hops, fold, threads, out_path):
    """Steps the network on stdin's cue ("step"), answers each hop's CPU seconds."""
    import time

    import torch

    from speechbrain_fsce import FSCE
    from speechbrain_fsce.models.folding import fold_batchnorm

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = FSCE(causal=True).eval()
    model = fold_batchnorm(model) if fold else model
    x = torch.randn(1, hops, 161, 2, generator=torch.Generator().manual_seed(1))
    outs = []
    with torch.inference_mode():
        state = model.init_state(1)
        print("ready", flush=True)
        for t in range(hops):
            sys.stdin.readline()
            start = time.thread_time()
            out, state = model.forward_step(x[:, t : t + 1], state)
            print(time.thread_time() - start, flush=True)
            outs.append(out.enhanced)
    np.save(out_path, torch.cat(outs, 1).numpy())


def row(name, seconds, enhanced, reference):
    """One Markdown row: median, p10, p90, p99 (ms) and the output difference."""
    ms = sorted(1000 * s for s in seconds)
    pick = [ms[min(len(ms) - 1, int(q * len(ms)))] for q in (0.1, 0.9, 0.99)]
    diff = float(np.abs(enhanced - reference).max())
    return (
        f"| {name} | {statistics.median(ms):.2f} | {pick[0]:.2f} | {pick[1]:.2f} | "
        f"{pick[2]:.2f} | {diff:.1e} |"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", default=["."], help="directories with the package")
    parser.add_argument("--hops", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-fold", action="store_true", help="keep the BatchNorms")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.hops, not args.no_fold, args.threads, args.worker)

    with tempfile.TemporaryDirectory() as tmp:
        procs, outs = [], []
        for i, source in enumerate(args.sources):
            outs.append(os.path.join(tmp, f"{i}.npy"))
            env = dict(os.environ, PYTHONPATH=os.path.abspath(source), OMP_NUM_THREADS="1")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", outs[-1]]
            cmd += ["--hops", str(args.hops), "--threads", str(args.threads)]
            cmd += ["--no-fold"] if args.no_fold else []
            proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            assert proc.stdout.readline().strip() == "ready"
            procs.append(proc)
        times = [[] for _ in procs]
        for t in range(args.hops):
            order = range(len(procs)) if t % 2 else reversed(range(len(procs)))
            for i in order:
                procs[i].stdin.write("step\n")
                procs[i].stdin.flush()
                times[i].append(float(procs[i].stdout.readline()))
        for proc in procs:
            proc.stdin.close()
            proc.wait()
        reference = np.load(outs[0])
        print("| source | median ms | p10 | p90 | p99 | max abs diff vs first |")
        print("|---|---|---|---|---|---|")
        for source, seconds, out in zip(args.sources, times, outs):
            print(row(source, seconds[args.warmup :], np.load(out), reference))


if __name__ == "__main__":
    main()
