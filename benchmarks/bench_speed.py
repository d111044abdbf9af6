#!/usr/bin/env python3
"""Speed and size of FSCE on this machine: parameters, GFLOP per second of
audio, and the real-time factor (RTF = compute seconds / audio seconds) of
the whole waveform enhancer (front end + network), for the published and
the demo configurations.

    python benchmarks/bench_speed.py [--threads 1] [--seconds 10] [--repeats 3] [--backend torch|onnx|both]

``--backend onnx`` runs the whole enhancer in onnxruntime: the offline graph
``fsce_offline.onnx`` (level, STFT as a matrix product, network, overlap-add;
exported with :func:`~speechbrain_fsce.inference.onnx_export.export_onnx`,
BatchNorms folded). RTF is reported from wall time and from the
process's CPU time (the wall time includes pre-emption on a shared machine).
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
    "demo": dict(
        channels=32,
        inner_channels=16,
        tcm_hidden_channels=32,
        num_tcm_modules=2,
        magnitude_output="mask",
        complex_output="residual",
    ),
}


def rtf(enhancer, wav, seconds, repeats):
    """Median wall and CPU RTF of enhancing ``wav`` ``repeats`` times (after a warm-up)."""
    walls, cpus = [], []
    with torch.inference_mode():
        enhancer(wav[:, :16000])  # warm-up
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            enhancer(wav)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return statistics.median(walls) / seconds, statistics.median(cpus) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=("torch", "onnx", "both"), default="both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wav = torch.randn(1, int(16000 * args.seconds)) * 0.1
    backends = ["torch", "onnx"] if args.backend == "both" else [args.backend]
    print(f"threads={args.threads}, audio={args.seconds:g} s, median of {args.repeats} runs\n")
    print("| configuration | backend | parameters | GFLOP / s of audio | RTF (wall) | RTF (CPU) |")
    print("|---|---|---|---|---|---|")
    for name, cfg in CONFIGS.items():
        torch.manual_seed(0)
        enhancer = FSCEEnhancer(FSCE(**cfg)).eval()
        params = sum(p.numel() for p in enhancer.parameters())
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            enhancer.model(torch.randn(1, 100, 161, 2))
        gflops = counter.get_total_flops() / 1e9
        for backend in backends:
            runner = enhancer
            if backend == "onnx":
                from speechbrain_fsce.inference.onnx_export import onnx_enhancer

                runner = onnx_enhancer(enhancer, threads=args.threads)
            wall, cpu = rtf(runner, wav, args.seconds, args.repeats)
            print(f"| {name} | {backend} | {params:,} | {gflops:.2f} | {wall:.3f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
