"""What a model does to clean speech, and where the damage comes from.

For each model folder, on clean clips given as input (nothing to remove):

* PESQ-WB, STOI and SI-SDR of the output against the input itself;
* the same with the input's own magnitude and the model's phase (if this
  scores high, the damage is in the magnitude estimate, not the phase);
* the magnitude branch's gain (estimate / input, in the compressed domain the
  network works in) over the strongest time-frequency bins (within 20 dB of
  the clip's loudest) and over the weak ones (40 dB below it or more); an
  ideal model keeps 1.0 in both;
* the same gain with the level the network sees raised or lowered
  (``--gains``): a model that is robust to the input level keeps it steady.

::

    python benchmarks/clean_input.py --models noncausal causal \\
        --clips "speechbrain_fsce/dataio/demo_corpus/clean/test/*/*.flac" --max_clips 9

Authors
 * speechbrain-fsce developers
"""

import argparse
import glob
import os
import shlex
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from speechbrain_fsce.dataio.audio import load_audio  # noqa: E402
from speechbrain_fsce.metrics import pesq_wb, sisdr, stoi  # noqa: E402


def bin_gains(noisy_spec, magnitude, strong_db=20.0, weak_db=40.0):
    """Median gain of the magnitude estimate over strong and weak bins.

    Arguments
    ---------
    noisy_spec : torch.Tensor
        The network's input ``[T, F, 2]`` (compressed domain).
    magnitude : torch.Tensor
        The magnitude branch's estimate ``[T, F]`` (compressed domain).
    strong_db, weak_db : float
        Bins within ``strong_db`` of the loudest are strong; bins ``weak_db``
        or more below it are weak (levels of the decompressed magnitude).

    Returns
    -------
    (float, float)
        Median gain over strong bins and over weak bins.

    Example
    -------
    >>> spec = torch.rand(50, 161, 2) + 0.1
    >>> mag = spec.pow(2).sum(-1).sqrt()
    >>> bin_gains(spec, 0.5 * mag)[0]
    0.5
    """
    compressed = noisy_spec.pow(2).sum(-1).sqrt()
    gain = (magnitude / compressed.clamp_min(1e-8)).numpy()
    # The front end compresses |X| with power 0.5 (checked by the caller):
    # |X| = compressed^2, its level 20 log10 |X|.
    level = 40.0 * np.log10(compressed.clamp_min(1e-8).numpy())
    top = level.max()
    strong = level > top - strong_db
    weak = level < top - weak_db
    pick = lambda mask: float(np.median(gain[mask])) if mask.any() else float("nan")  # noqa: E731
    return round(pick(strong), 6), round(pick(weak), 6)


def analyse(enhancer, clip, gains=(1.0,)):
    """Scores and bin gains of one clean clip through one model (eval mode)."""
    x = clip.unsqueeze(0)
    ref = clip.numpy()
    out = {}
    with torch.no_grad():
        output, spec, scale = enhancer.enhance_spectrum(x)
        y = enhancer.enhanced_waveform(output, scale, x.shape[-1])[0].numpy()
        out["pesq_wb"] = pesq_wb(ref, y)
        out["stoi"] = stoi(ref, y)
        out["sisdr"] = sisdr(ref, y)
        phase_src = output.complex if output.complex is not None else spec
        unit = phase_src / phase_src.pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-8)
        own_mag = spec.pow(2).sum(-1, keepdim=True).sqrt()
        y2 = enhancer.front_end.synthesize(own_mag * unit, scale, x.shape[-1])[0].numpy()
        out["pesq_wb_input_mag"] = pesq_wb(ref, y2)
        out["sisdr_input_mag"] = sisdr(ref, y2)
        for g in gains:
            o, s, _ = enhancer.enhance_spectrum(x, scale=scale * g)
            if o.magnitude is None:
                continue
            strong, weak = bin_gains(s[0], o.magnitude[0])
            out[f"gain_strong@{g:g}"] = strong
            out[f"gain_weak@{g:g}"] = weak
    return out


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="shipped names or folders")
    parser.add_argument("--clips", required=True, help="glob of clean clips")
    parser.add_argument("--max_clips", type=int, default=9)
    parser.add_argument("--gains", type=float, nargs="+", default=[0.25, 1.0, 4.0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from speechbrain_fsce.inference import FSCEEnhancement
    from speechbrain_fsce.inference.shipped import resolve_model

    clips = sorted(glob.glob(args.clips, recursive=True))[: args.max_clips]
    if not clips:
        parser.error(f"no clip matches {args.clips!r}")
    print(f"Command: `{shlex.join(['python', 'benchmarks/clean_input.py', *sys.argv[1:]])}`")
    print(f"{len(clips)} clean clips; gains are the level the network sees divided by the usual")
    header = None
    for name in args.models:
        enhancer = FSCEEnhancement.from_hparams(source=resolve_model(name)).mods.enhancer.eval()
        if enhancer.front_end.compression != 0.5:
            parser.error(f"{name}: bin levels assume compression 0.5")
        rows = [analyse(enhancer, load_audio(c), args.gains) for c in clips]
        keys = list(rows[0])
        if header is None:
            header = keys
            print("| model | " + " | ".join(keys) + " |")
            print("|---" * (len(keys) + 1) + "|")
        means = [np.nanmean([r[k] for r in rows]) for k in header]
        print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
