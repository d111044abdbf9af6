#!/usr/bin/env python3
"""Streams a WAV file through an exported causal FSCE graph, with no torch.

Needs only numpy, soundfile and onnxruntime (plus
``speechbrain_fsce/inference/onnx_runtime.py`` and ``stream_level.py``, which
import neither torch nor SpeechBrain: the graphs hold all the signal
arithmetic, these files only drive them hop by hop). By default it runs the ONNX export shipped inside the causal
model folder of the package (``pretrained_models/causal/onnx/``)::

    python recipes/examples/stream_onnx.py noisy.wav -o enhanced.wav

For another causal model, export it first and pass the folder::

    fsce-export --model path/to/causal_model --onnx exported/
    python recipes/examples/stream_onnx.py --onnx exported/ noisy.wav -o enhanced.wav

The file (at the model's sample rate; mono, or its channels are averaged) is
fed one hop (10 ms) at a time, as a live stream would be; the per-hop time is
printed and the enhanced stream is written with its one-hop delay removed.
Level: by default it is tracked on line, as ``stream_wav.py`` does (a running
RMS of the speech-active hops, 1 s time constant, ``--time-constant``;
``speechbrain_fsce/inference/stream_level.py``, numpy only); ``--scale``
fixes it by hand. The output must not be the input file (refused before
anything is written).

Authors
 * speechbrain-fsce developers
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import soundfile as sf

from speechbrain_fsce.inference.onnx_runtime import OnnxStreamer
from speechbrain_fsce.inference.shipped import STREAMING_MODEL, onnx_folder


def same_file(a, b):
    """Whether two paths name one file: the same path, a symbolic or a hard link."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


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
        help="fixed input level, the input's RMS (default: tracked on line)",
    )
    parser.add_argument(
        "--time-constant",
        type=float,
        default=1.0,
        help="seconds of speech the tracked level averages over (default: 1.0)",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if same_file(args.input, args.output):
        print(
            f"error: the output {args.output} is the input file; write elsewhere", file=sys.stderr
        )
        return 2
    try:
        onnx = str(onnx_folder(args.onnx))  # None: the shipped causal model's onnx/
        noisy, rate = sf.read(args.input, dtype="float32", always_2d=True)
        noisy = noisy.mean(axis=1)
        streamer = OnnxStreamer(
            onnx, scale=args.scale, threads=args.threads, time_constant=args.time_constant
        )
        if rate != streamer.sample_rate:
            raise ValueError(
                f"{args.input} is at {rate} Hz; the model needs {streamer.sample_rate} Hz"
            )
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
    if streamer.scale is None:
        level = f"level tracked on line, {args.time_constant:g} s time constant"
    else:
        level = f"fixed level {streamer.scale:.4g}"
    print(
        f"streamed {noisy.shape[0] / rate:.2f} s in {len(ms)} hops of {hop / rate * 1000:g} ms ({level})"
    )
    print(f"per-hop CPU time: median {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms")
    print(
        f"algorithmic latency {streamer.config['algorithmic_latency_ms']:g} ms; wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
