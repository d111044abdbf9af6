#!/usr/bin/env python3
"""Speed and size of FSCE on this machine: parameters, GFLOP per second of
audio, and the real-time factor (RTF = compute seconds / audio seconds) of
the waveform enhancer, for the published and the demo configurations.

    python benchmarks/bench_speed.py [--threads 1] [--seconds 10] [--repeats 3]

Prints a Markdown table of measured numbers.
"""

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from speechbrain_fsce import FSCE, FSCEEnhancer

CONFIGS = {
    "published (non-causal)": {},
    "published, causal": {"causal": True},
    "demo": dict(channels=32, inner_channels=16, tcm_hidden_channels=32, num_tcm_modules=2,
                 magnitude_output="mask", complex_output="residual"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wav = torch.randn(1, int(16000 * args.seconds)) * 0.1
    print(f"threads={args.threads}, audio={args.seconds:.0f} s, median of {args.repeats} runs\n")
    print("| configuration | parameters | GFLOP / s of audio | RTF |")
    print("|---|---|---|---|")
    for name, cfg in CONFIGS.items():
        enhancer = FSCEEnhancer(FSCE(**cfg)).eval()
        params = sum(p.numel() for p in enhancer.parameters())
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            enhancer.model(torch.randn(1, 100, 161, 2))
        gflops = counter.get_total_flops() / 1e9
        times = []
        with torch.inference_mode():
            enhancer(wav[:, :16000])  # warm-up
            for _ in range(args.repeats):
                start = time.perf_counter()
                enhancer(wav)
                times.append(time.perf_counter() - start)
        rtf = statistics.median(times) / args.seconds
        print(f"| {name} | {params:,} | {gflops:.2f} | {rtf:.3f} |")


if __name__ == "__main__":
    main()
