#!/usr/bin/env python3
"""Streams a WAV file through a causal FSCE model, 10 ms at a time.

Simulates a live stream: the file is fed to
:class:`speechbrain_fsce.inference.streaming.FSCEStreamer` one hop (160
samples at 16 kHz) at a time, the per-hop compute time is measured, and the
enhanced stream is written out with its one-hop delay removed (so it lines up
with the input). By default the causal model shipped with the package is used;
``--model`` takes another causal model folder (``causal: True`` when it was
trained and exported).

Level: a live stream cannot know its overall level in advance. By default the
streamer tracks it on line (a running RMS of the speech-active hops with a
1 s time constant, ``--time-constant``; see
:mod:`speechbrain_fsce.inference.stream_level`), so a stream that starts with
silence or changes level comes out at the input's level. ``--scale`` fixes
the level by hand instead (the output then equals offline causal enhancement
at that level). The output must not be the input file (refused before
anything is written).

Usage::

    python recipes/examples/stream_wav.py noisy.wav -o enhanced.wav
    python recipes/examples/stream_wav.py --model path/to/causal_model noisy.wav -o enhanced.wav

Authors
 * speechbrain-fsce developers
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

from speechbrain_fsce.inference.shipped import STREAMING_MODEL


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
    parser.add_argument("input", help="noisy audio file (any rate and channel count)")
    parser.add_argument(
        "--model",
        default=STREAMING_MODEL,
        help=f"causal FSCE model folder (default: the shipped {STREAMING_MODEL!r} model)",
    )
    parser.add_argument("-o", "--output", required=True, help="enhanced WAV (model rate, mono)")
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
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="run the network in torch or in onnxruntime (faster; needs the onnx extra)",
    )
    args = parser.parse_args(argv)
    if same_file(args.input, args.output):
        print(
            f"error: the output {args.output} is the input file; write elsewhere", file=sys.stderr
        )
        return 2

    torch.set_num_threads(args.threads)
    from speechbrain_fsce.dataio.audio import load_audio, save_wav
    from speechbrain_fsce.inference import FSCEEnhancement
    from speechbrain_fsce.inference.stream_level import check_scale
    from speechbrain_fsce.inference.streaming import FSCEStreamer

    try:
        if args.scale is not None:
            check_scale(args.scale)  # before the model is loaded
        model = FSCEEnhancement.from_hparams(source=args.model)
        noisy = load_audio(args.input, model.sample_rate)
        streamer = FSCEStreamer(
            model.mods.enhancer,
            scale=args.scale,
            backend=args.backend,
            threads=args.threads,
            time_constant=args.time_constant,
        )
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    hop = streamer.hop_samples
    times, pieces = [], []
    for i in range(0, noisy.shape[0], hop):
        piece = noisy[i : i + hop]
        start = time.perf_counter()
        pieces.append(streamer.process(piece))
        times.append(time.perf_counter() - start)
    pieces.append(streamer.flush())
    enhanced = torch.cat(pieces)[streamer.latency_samples :]
    save_wav(args.output, enhanced, model.sample_rate)

    ms = sorted(t * 1000 for t in times)
    p99 = ms[min(len(ms) - 1, int(np.ceil(0.99 * len(ms))) - 1)]
    if streamer.scale is None:
        level = f"level tracked on line, {args.time_constant:g} s time constant"
    else:
        level = f"fixed level {streamer.scale:.4g}"
    print(
        f"streamed {noisy.shape[0] / model.sample_rate:.2f} s in {len(ms)} hops of {hop / model.sample_rate * 1000:g} ms "
        f"({level})"
    )
    print(f"per-hop compute: median {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms")
    print(
        f"algorithmic latency {(hop + streamer.latency_samples) / model.sample_rate * 1000:g} ms; wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
