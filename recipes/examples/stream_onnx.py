#!/usr/bin/env python3
"""Streams a WAV file through an exported causal FSCE graph, with no torch.

Needs only numpy, soundfile and onnxruntime (plus
``speechbrain_fsce/inference/onnx_runtime.py``, which imports neither torch
nor SpeechBrain). By default it runs the ONNX export shipped inside the causal
model folder of the package (``pretrained_models/causal/onnx/``)::

    python recipes/examples/stream_onnx.py noisy.wav -o enhanced.wav

For another causal model, export it first and pass the folder::

    fsce-export --model path/to/causal_model --onnx exported/
    python recipes/examples/stream_onnx.py --onnx exported/ noisy.wav -o enhanced.wav

The file (at the model's sample rate; mono, or its channels are averaged) is
fed one hop (10 ms) at a time, as a live stream would be; the per-hop time is
printed and the enhanced stream is written with its one-hop delay removed.
Level: by default the RMS of the first second is the fixed input level;
``--scale`` sets it.

Authors
 * speechbrain-fsce developers
"""

import argparse
import statistics
import sys
import time

import numpy as np
import soundfile as sf

from speechbrain_fsce.inference.onnx_runtime import OnnxStreamer
from speechbrain_fsce.inference.shipped import STREAMING_MODEL, onnx_folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="noisy WAV at the model's sample rate")
    parser.add_argument(
        "--onnx",
        default=None,
        help="folder written by fsce-export --onnx (causal model), or a model folder or "
        f"shipped name with an onnx/ sub-folder (default: the shipped {STREAMING_MODEL!r} model)",
    )
    parser.add_argument("-o", "--output", required=True, help="enhanced WAV")
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="fixed input level (default: RMS of the first second)",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        onnx = str(onnx_folder(args.onnx))  # None: the shipped causal model's onnx/
        noisy, rate = sf.read(args.input, dtype="float32", always_2d=True)
        noisy = noisy.mean(axis=1)
        streamer = OnnxStreamer(onnx, scale=1.0, threads=args.threads)
        if rate != streamer.sample_rate:
            raise ValueError(
                f"{args.input} is at {rate} Hz; the model needs {streamer.sample_rate} Hz"
            )
        scale = args.scale
        if scale is None:
            head = noisy[:rate].astype(np.float64)
            scale = (
                float(np.sqrt(np.mean(head**2))) + 1e-8
                if streamer.config["normalize_level"]
                else 1.0
            )
        streamer = OnnxStreamer(onnx, scale=scale, threads=args.threads)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    hop = streamer.hop_samples
    times, pieces = [], []
    for i in range(0, noisy.shape[0], hop):
        start = time.thread_time()
        pieces.append(streamer.process(noisy[i : i + hop]))
        times.append(time.thread_time() - start)
    pieces.append(streamer.flush())
    enhanced = np.concatenate(pieces)[streamer.latency_samples :]
    sf.write(args.output, enhanced, rate, subtype="FLOAT")
    ms = sorted(t * 1000 for t in times)
    p99 = ms[min(len(ms) - 1, int(np.ceil(0.99 * len(ms))) - 1)]
    print(
        f"streamed {noisy.shape[0] / rate:.2f} s in {len(ms)} hops of {hop / rate * 1000:g} ms (level {scale:.4g})"
    )
    print(f"per-hop CPU time: median {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms")
    print(
        f"algorithmic latency {streamer.config['algorithmic_latency_ms']:g} ms; wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
