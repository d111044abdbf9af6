#!/usr/bin/env python3
"""Training throughput of FSCE on this machine.

Runs full training steps (front end, FSCE forward, L_mag + L_RI, backward,
Adam update) on random 1 s excerpts and prints seconds of audio trained per
second of wall time and of process CPU time, for the demo width and the
published width.

Usage::

    python benchmarks/bench_training.py                # 2 threads, batch 8 x 1 s
    python benchmarks/bench_training.py --threads 1 --steps 10

Authors
 * speechbrain-fsce developers
"""

import argparse
import statistics
import sys
import time

import torch
from bench_speed import CONFIGS as SPEED_CONFIGS  # one home for the benchmarked configurations

CONFIGS = {
    "demo width": SPEED_CONFIGS["demo"],
    "published width": SPEED_CONFIGS["published (non-causal)"],
}


def train_steps(enhancer, loss_fn, batch, seconds, steps, warmup=2):
    """Per-step wall and CPU seconds of ``steps`` training steps (after ``warmup``)."""
    rate = enhancer.front_end.sample_rate
    gen = torch.Generator().manual_seed(0)
    noisy = torch.randn(batch, int(seconds * rate), generator=gen) * 0.1
    clean = noisy * 0.5
    lens = torch.ones(batch)
    opt = torch.optim.Adam(enhancer.parameters(), lr=1e-4)
    enhancer.train()
    walls, cpus = [], []
    for i in range(warmup + steps):
        wall, cpu = time.perf_counter(), time.process_time()
        output, _, scale = enhancer(noisy, lens, return_spectra=True)
        target = enhancer.target_spectrum(clean, scale)
        loss, _ = loss_fn(output, target, lens)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return walls, cpus


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0, help="excerpt length")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from speechbrain_fsce import FSCE, FSCEEnhancer
    from speechbrain_fsce.losses import FSCELoss

    print(
        f"threads={args.threads}, batch {args.batch} x {args.seconds:g} s, "
        f"median of {args.steps} steps after 2 warm-up steps\n"
    )
    print(
        "| configuration | parameters | s/step wall | s/step CPU | audio s per wall s | audio s per CPU s |"
    )
    print("|---|---|---|---|---|---|")
    for name, cfg in CONFIGS.items():
        torch.manual_seed(0)
        enhancer = FSCEEnhancer(FSCE(**cfg))
        params = sum(p.numel() for p in enhancer.parameters())
        walls, cpus = train_steps(enhancer, FSCELoss(), args.batch, args.seconds, args.steps)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        audio = args.batch * args.seconds
        print(
            f"| {name} | {params:,} | {wall:.3f} | {cpu:.3f} | {audio / wall:.1f} | {audio / cpu:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
