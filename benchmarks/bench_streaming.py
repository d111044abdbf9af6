#!/usr/bin/env python3
"""Per-hop time of streaming a causal FSCE model, 10 ms at a time.

Streams a generated noisy signal one hop at a time through
:class:`~speechbrain_fsce.inference.streaming.FSCEStreamer` (``--backend
torch``) or through the exported ONNX step graph driven by
:class:`~speechbrain_fsce.inference.onnx_runtime.OnnxStreamer` (``--backend onnx``),
with the published-width causal model (random weights unless ``--model``
gives a causal model folder: compute time does not depend on the weights).
Each hop counts the whole path: the streamer's framing and level, and the
step (STFT frame, network, overlap-add; inside the graph for ``onnx``).

For every hop it records wall time and the CPU time of the calling thread
(``time.thread_time``): on a shared machine the wall time includes
pre-emption by other processes, the CPU time does not. ``--paced`` waits
for the next 10 ms tick between hops, as a live stream does (caches cool
down between hops), instead of running hops back to back.

Usage::

    python benchmarks/bench_streaming.py                          # torch, 10 s, 1 thread
    python benchmarks/bench_streaming.py --backend onnx --paced
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
    """``q``-th percentile (nearest rank) of already sorted values.

    Example
    -------
    >>> percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 99)
    (2, 4)
    """
    index = min(len(sorted_values) - 1, max(0, int(np.ceil(q / 100 * len(sorted_values))) - 1))
    return sorted_values[index]


def time_hops(process, signal, hop, warmup=20, paced_seconds=None):
    """Calls ``process`` on each hop of ``signal``.

    Returns per-hop wall seconds, per-hop thread CPU seconds (warm-up hops
    dropped) and the outputs.
    """
    walls, cpus, outs = [], [], []
    next_tick = time.perf_counter()
    for i in range(0, signal.shape[0] - hop + 1, hop):
        if paced_seconds:
            next_tick += paced_seconds
            delay = next_tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        piece = signal[i : i + hop]
        wall, cpu = time.perf_counter(), time.thread_time()
        outs.append(process(piece))
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return walls[warmup:], cpus[warmup:], outs


def summary(name, seconds, hop_ms):
    """One Markdown row: median, p90, p99, max (ms) and share over the hop."""
    ms = sorted(t * 1000 for t in seconds)
    late = sum(t > hop_ms for t in ms) / len(ms)
    return (
        f"| {name} | {statistics.median(ms):.2f} | {percentile(ms, 90):.2f} | "
        f"{percentile(ms, 99):.2f} | {ms[-1]:.2f} | {late:.1%} |"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--model",
        default=None,
        help="causal model folder (default: published width, random weights)",
    )
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads (1 is usually fastest per hop)"
    )
    parser.add_argument(
        "--paced", action="store_true", help="one hop every 10 ms, as a live stream"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    from speechbrain_fsce import FSCE, FSCEEnhancer

    if args.model:
        from speechbrain_fsce.inference import FSCEEnhancement

        enhancer = FSCEEnhancement.from_hparams(source=args.model).mods.enhancer
    else:
        torch.manual_seed(0)
        enhancer = FSCEEnhancer(FSCE(causal=True))
    enhancer = enhancer.eval()
    rate = enhancer.front_end.sample_rate
    hop = enhancer.front_end.hop_samples
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal(int(args.seconds * rate)) * 0.1).astype(np.float32)
    if args.backend == "torch":
        from speechbrain_fsce.inference.streaming import FSCEStreamer

        streamer = FSCEStreamer(enhancer)
        signal = torch.from_numpy(signal)
    else:
        import tempfile

        from speechbrain_fsce.inference.onnx_export import export_onnx
        from speechbrain_fsce.inference.onnx_runtime import OnnxStreamer

        folder = tempfile.mkdtemp()
        export_onnx(enhancer, folder)
        streamer = OnnxStreamer(folder, threads=args.threads)
    walls, cpus, _ = time_hops(
        streamer.process, signal, hop, paced_seconds=hop / rate if args.paced else None
    )
    params = sum(p.numel() for p in enhancer.parameters())
    hop_ms = hop / rate * 1000
    print(
        f"model: causal FSCE, {params:,} parameters; backend {args.backend}, "
        f"{args.threads} thread(s), {'paced at one hop per 10 ms' if args.paced else 'hops back to back'}; "
        f"{len(walls)} hops timed"
    )
    print("\n| per-hop time (ms) | median | p90 | p99 | max | over the hop |")
    print("|---|---|---|---|---|---|")
    print(summary("CPU (thread)", cpus, hop_ms))
    print(summary("wall", walls, hop_ms))
    print(f"\nalgorithmic latency: {2 * hop / rate * 1000:g} ms (one window)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
