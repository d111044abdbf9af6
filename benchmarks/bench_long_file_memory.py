#!/usr/bin/env python3
"""Peak memory of enhancing a long file with ``enhance_file_chunked``.

Generates a long noisy file (default 10 minutes, written block by block),
enhances it in constant memory with the published FSCE configuration (random
weights unless ``--model`` gives a model folder: memory and time do not
depend on the weights), and prints the peak resident set size of the
process (``getrusage``), which must stay under 2 GB.

Usage::

    python benchmarks/bench_long_file_memory.py                 # 10 min, 16 kHz mono
    python benchmarks/bench_long_file_memory.py --rate 44100 --channels 2 --minutes 10
    python benchmarks/bench_long_file_memory.py --model path/to/model_folder

Authors
 * speechbrain-fsce developers
"""

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
import torch


def peak_rss_mb():
    """Peak resident set size of this process in MB (Linux: ru_maxrss is KB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def write_noisy_file(path, minutes, rate, channels, seed=0):
    """A long harmonic-plus-noise signal, written in 10 s blocks."""
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * rate)
    block = 10 * rate
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, subtype="PCM_16") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / rate
            f0 = 120 + 20 * np.sin(2 * np.pi * 0.3 * t)
            phase = 2 * np.pi * np.cumsum(f0) / rate
            voiced = sum(np.sin(k * phase) / k for k in range(1, 15)) * (
                0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
            )
            x = 0.1 * voiced + 0.03 * rng.standard_normal(n)
            f.write(np.repeat(x[:, None], channels, axis=1))
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate", type=int, default=16000, help="sampling rate of the generated file"
    )
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument(
        "--model", default=None, help="model folder (default: published config, random weights)"
    )
    parser.add_argument(
        "--causal", action="store_true", help="random causal model (streamed) instead of non-causal"
    )
    parser.add_argument("--chunk-seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--limit-mb", type=float, default=2048.0, help="fail (exit 1) above this peak RSS"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    from speechbrain_fsce import FSCE, FSCEEnhancer
    from speechbrain_fsce.inference.chunked import ChunkPlan, enhance_file_chunked

    if args.model:
        from speechbrain_fsce.inference import FSCEEnhancement

        enhancer = FSCEEnhancement.from_hparams(source=args.model).mods.enhancer
    else:
        torch.manual_seed(0)
        enhancer = FSCEEnhancer(FSCE(causal=args.causal)).eval()
    causal = enhancer.model.causal
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "long.wav"), os.path.join(tmp, "long_enhanced.wav")
        samples = write_noisy_file(src, args.minutes, args.rate, args.channels)
        base = peak_rss_mb()
        start = time.perf_counter()
        info = enhance_file_chunked(enhancer, src, dst, chunk_seconds=args.chunk_seconds)
        elapsed = time.perf_counter() - start
        peak = peak_rss_mb()
        out_frames = sf.info(dst).frames
    seconds = samples / args.rate
    plan = ChunkPlan(enhancer, args.chunk_seconds)
    print(
        f"file: {args.minutes:g} min, {args.rate} Hz, {args.channels} channel(s) ({samples} samples)"
    )
    print(
        f"model: {'causal (streamed)' if causal else 'non-causal'}, "
        f"{sum(p.numel() for p in enhancer.parameters())} parameters, {args.threads} thread(s)"
    )
    if not causal:
        print(
            f"chunks: {plan.chunk / 16000:g} s + 2 x {plan.context / 16000:g} s context, "
            f"{plan.crossfade / 16000:g} s cross-fade"
        )
    print(f"output: {out_frames} samples at {info['output_rate']} Hz")
    print(f"time: {elapsed:.1f} s (real-time factor {elapsed / seconds:.3f})")
    print(f"peak RSS before enhancing: {base:.0f} MB")
    print(f"peak RSS: {peak:.0f} MB (limit {args.limit_mb:.0f} MB)")
    return 0 if peak < args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
