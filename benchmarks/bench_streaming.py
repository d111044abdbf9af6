#!/usr/bin/env python3
"""Per-hop compute time of streaming a causal FSCE model.

Streams a generated noisy signal 10 ms (one hop) at a time through
:class:`~speechbrain_fsce.inference.streaming.FSCEStreamer` with the
published-width causal model (random weights unless ``--model`` gives a
causal model folder: compute time does not depend on the weights) and
prints the median, 90th and 99th percentile and maximum compute time per
hop. Real time needs the per-hop time to stay below the hop (10 ms); the
algorithmic latency is one window (20 ms).

Usage::

    python benchmarks/bench_streaming.py                  # 10 s, 1 thread
    python benchmarks/bench_streaming.py --seconds 30 --threads 2
    python benchmarks/bench_streaming.py --model path/to/causal_model_folder

Authors
 * speechbrain-fsce developers
"""

import argparse
import statistics
import sys
import time

import numpy as np
import torch


def percentile(sorted_values, q):
    """``q``-th percentile (nearest rank) of already sorted values."""
    index = min(len(sorted_values) - 1, max(0, int(np.ceil(q / 100 * len(sorted_values))) - 1))
    return sorted_values[index]


def time_hops(streamer, signal, warmup=20):
    """Streams ``signal`` hop by hop; returns per-hop seconds (after warm-up) and the output."""
    hop = streamer.hop_samples
    times, outs = [], []
    for i in range(0, signal.shape[0] - hop + 1, hop):
        piece = signal[i : i + hop]
        start = time.perf_counter()
        outs.append(streamer.process(piece))
        times.append(time.perf_counter() - start)
    outs.append(streamer.flush())
    return times[warmup:], torch.cat(outs)


def report(times, hop_seconds):
    """Lines summarising per-hop compute times."""
    ms = sorted(t * 1000 for t in times)
    return [
        f"hops timed: {len(ms)} (hop {hop_seconds * 1000:g} ms)",
        f"per-hop compute: median {statistics.median(ms):.2f} ms, p90 {percentile(ms, 90):.2f} ms, "
        f"p99 {percentile(ms, 99):.2f} ms, max {ms[-1]:.2f} ms",
        f"real-time factor (median / hop): {statistics.median(ms) / (hop_seconds * 1000):.2f}; "
        f"hops over budget: {sum(t > hop_seconds * 1000 for t in ms) / len(ms):.1%}",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", default=None, help="causal model folder (default: published width, random weights)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is usually fastest per hop)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    from speechbrain_fsce import FSCE, FSCEEnhancer
    from speechbrain_fsce.inference.streaming import FSCEStreamer

    if args.model:
        from speechbrain_fsce.inference import FSCEEnhancement

        enhancer = FSCEEnhancement.from_hparams(source=args.model).mods.enhancer
    else:
        torch.manual_seed(0)
        enhancer = FSCEEnhancer(FSCE(causal=True))
    enhancer = enhancer.to(args.device).eval()
    rate = enhancer.front_end.sample_rate
    rng = np.random.default_rng(0)
    signal = torch.tensor(rng.standard_normal(int(args.seconds * rate)) * 0.1, dtype=torch.float32)
    streamer = FSCEStreamer(enhancer)
    times, _ = time_hops(streamer, signal)
    params = sum(p.numel() for p in enhancer.parameters())
    print(f"model: causal FSCE, {params} parameters; device {args.device}, {args.threads} thread(s)")
    for line in report(times, streamer.hop_samples / rate):
        print(line)
    print(f"algorithmic latency: {(streamer.hop_samples + streamer.latency_samples) / rate * 1000:g} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
