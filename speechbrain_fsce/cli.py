"""Console entry points: ``fsce-enhance``, ``fsce-export`` and ``fsce-prepare``.

``fsce-enhance --model <model folder> <files or folders...> -o <out dir>``
enhances audio files of any length, rate and channel count (constant memory,
see :mod:`speechbrain_fsce.inference.chunked`). Outputs are mono WAV files
named like their inputs (extension ``.wav``), folders keep their structure,
and each file is written under a temporary name and renamed when complete.
Inputs are never overwritten: an output that would land in its input's own
folder is refused. A file that fails (missing, empty, corrupt, not audio,
NaN/Inf samples) is reported with its reason at the end while the others
are still written; the exit status is then 1. Input shorter than one STFT
frame is enhanced (zero-padded by the centred STFT, same length out);
silence comes out as near-zero silence.

``fsce-export --save_folder <run>/save --output <model folder>`` writes the
best checkpoint of a training run as a model folder, with the architecture
given by ``--overrides '{"causal": true}'`` or read from the run's
``--hparams <run>/hyperparams.yaml``.

``fsce-prepare`` forwards to ``python -m speechbrain_fsce.dataio.folders``.

Authors
 * speechbrain-fsce developers
"""

import argparse
import json
import os
import pathlib
import sys

#: Extensions looked for when a folder is given to fsce-enhance.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".sph", ".aiff", ".aif")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _output_name(path):
    """Output file name: the input's name, with ``.wav`` as its extension."""
    p = pathlib.Path(path)
    return p.name if p.suffix.lower() == ".wav" else p.stem + ".wav"


def plan_outputs(inputs, output_dir):
    """Pairs every input file with its output path.

    Files are used as given (whatever their extension); folders are walked
    recursively for audio files (hidden entries and the output folder are
    skipped) and their relative structure is kept under ``output_dir``.

    Arguments
    ---------
    inputs : list of str
        Files and folders.
    output_dir : str
        Output folder.

    Returns
    -------
    jobs : list of (str, str)
        ``(input file, output file)`` pairs.
    errors : list of (str, str)
        ``(input, reason)`` for inputs that cannot be processed.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "in" / "sub").mkdir(parents=True)
    >>> for name in ("in/a.wav", "in/sub/b.flac", "in/notes.txt"):
    ...     _ = (tmp / name).write_bytes(b"")
    >>> jobs, errors = plan_outputs([str(tmp / "in"), str(tmp / "nope.wav")], str(tmp / "out"))
    >>> [os.path.relpath(o, tmp) for _, o in jobs]
    ['out/a.wav', 'out/sub/b.wav']
    >>> [(os.path.basename(i), r) for i, r in errors]
    [('nope.wav', 'no such file or folder')]
    """
    out_root = os.path.realpath(output_dir)
    jobs, errors, claimed = [], [], {}
    inputs_real = set()
    candidates = []
    for item in inputs:
        if os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item, followlinks=True):
                dirs[:] = sorted(
                    d for d in dirs
                    if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) != out_root
                )
                for name in sorted(files):
                    if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
                        found.append(os.path.join(root, name))
            if not found:
                errors.append((item, f"folder holds no audio file ({', '.join(AUDIO_EXTENSIONS)})"))
            for f in found:
                rel = os.path.relpath(f, item)
                candidates.append((f, os.path.join(output_dir, os.path.dirname(rel), _output_name(f))))
        elif os.path.isfile(item):
            candidates.append((item, os.path.join(output_dir, _output_name(item))))
        else:
            errors.append((item, "no such file or folder"))
    for f, _ in candidates:
        inputs_real.add(os.path.realpath(f))
    for f, out in candidates:
        out_real = os.path.realpath(out)
        if os.path.realpath(os.path.dirname(out)) == os.path.realpath(os.path.dirname(f)) or out_real in inputs_real:
            errors.append((f, f"refusing to write into the input's own location ({out}); choose another -o"))
        elif out_real in claimed:
            errors.append((f, f"output {out} would also be written for {claimed[out_real]}"))
        else:
            claimed[out_real] = f
            jobs.append((f, out))
    return jobs, errors


def _threads(n):
    import torch

    if n:
        torch.set_num_threads(n)


def enhance_main(argv=None):
    """``fsce-enhance``: enhances audio files with a model folder.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 all written, 1 some inputs failed (the others are
        written), 2 usage error or unusable model.

    Example
    -------
    >>> enhance_main(["--model", "no/such/model", "x.wav", "-o", "out"])
    2
    """
    parser = argparse.ArgumentParser(
        prog="fsce-enhance",
        description=(
            "Enhance noisy speech with an FSCE model folder. Any sampling rate "
            "and channel count is read (mixed to mono, resampled to the model "
            "rate); files of any length are processed in constant memory."
        ),
    )
    parser.add_argument("inputs", nargs="+", help="audio files and/or folders (searched recursively)")
    parser.add_argument("--model", required=True, help="model folder (hyperparams.yaml + enhancer.ckpt)")
    parser.add_argument("-o", "--output", required=True, help="output folder (never an input's own folder)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default: cpu)")
    parser.add_argument("--keep-rate", action="store_true", help="write at each input's rate (default: model rate)")
    parser.add_argument("--subtype", default="FLOAT", help="output WAV subtype: FLOAT (default, no clipping), PCM_16, PCM_24")
    parser.add_argument("--chunk-seconds", type=float, default=10.0, help="chunk length for non-causal models (default 10)")
    parser.add_argument(
        "--context-seconds", type=float, default=None,
        help="context on each side of a chunk (default: the receptive field, exact)",
    )
    parser.add_argument("--crossfade-seconds", type=float, default=0.25, help="cross-fade between chunks (default 0.25)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    import soundfile as sf
    from tqdm import tqdm

    _threads(args.threads)
    if args.subtype.upper() not in sf.available_subtypes("WAV"):
        return _fail(f"--subtype {args.subtype!r} is not a WAV subtype ({', '.join(sorted(sf.available_subtypes('WAV')))})")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        return _fail(f"output {args.output} exists and is not a folder")
    try:
        from speechbrain_fsce.inference.pretrained import FSCEEnhancement

        model = FSCEEnhancement.from_hparams(source=args.model, run_opts={"device": args.device})
    except Exception as err:  # any failure to load is a usage problem, reported in one line
        return _fail(f"cannot load model {args.model}: {err}")

    jobs, errors = plan_outputs(args.inputs, args.output)
    written = 0
    bar = tqdm(jobs, unit="file", disable=args.no_progress or not jobs, desc="fsce-enhance")
    for src, dst in bar:
        try:
            model.enhance_long_file(
                src, dst,
                chunk_seconds=args.chunk_seconds, context_seconds=args.context_seconds,
                crossfade_seconds=args.crossfade_seconds, keep_rate=args.keep_rate,
                subtype=args.subtype.upper(), progress=not args.no_progress,
            )
            written += 1
        except (ValueError, OSError, RuntimeError) as err:
            # AudioError (a ValueError) already names the file; others do not.
            reason = getattr(err, "reason", None) or str(err)
            errors.append((src, reason))
    bar.close()

    print(f"fsce-enhance: {written} file(s) written to {args.output}", file=sys.stderr)
    if errors:
        print(f"fsce-enhance: {len(errors)} input(s) failed:", file=sys.stderr)
        for src, reason in errors:
            print(f"  {src}: {reason}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def export_main(argv=None):
    """``fsce-export``: writes a model folder from a training run.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 on error.

    Example
    -------
    >>> export_main(["--save_folder", "no/such/save", "--output", "model"])
    2
    """
    parser = argparse.ArgumentParser(
        prog="fsce-export",
        description=(
            "Export FSCE weights as a model folder (hyperparams.yaml + "
            "enhancer.ckpt) for FSCEEnhancement.from_hparams and fsce-enhance."
        ),
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--save_folder", help="training run's checkpoint folder (CKPT+* sub-folders)")
    src.add_argument("--ckpt", help="a single enhancer.ckpt / model.ckpt file instead")
    parser.add_argument("--output", required=True, help="model folder to write (an earlier export there is replaced)")
    arch = parser.add_mutually_exclusive_group()
    arch.add_argument("--overrides", default=None, help='architecture values as JSON, e.g. \'{"causal": true}\'')
    arch.add_argument("--hparams", default=None, help="training run's hyperparams.yaml to read the architecture from")
    parser.add_argument("--max_key", default="pesq_nb_raw", help="checkpoint meta key to maximise (default pesq_nb_raw)")
    parser.add_argument("--min_key", default=None, help="checkpoint meta key to minimise instead")
    args = parser.parse_args(argv)

    from speechbrain_fsce.inference.export import export_best, export_model, overrides_from_hparams

    try:
        if args.overrides is not None:
            try:
                overrides = json.loads(args.overrides)
            except json.JSONDecodeError as err:
                return _fail(f"--overrides is not valid JSON ({err})")
            if not isinstance(overrides, dict):
                return _fail("--overrides must be a JSON object")
        elif args.hparams is not None:
            overrides = overrides_from_hparams(args.hparams)
        else:
            overrides = {}
        if args.ckpt:
            folder = export_model(args.output, args.ckpt, overrides)
            chosen = f"{args.ckpt}"
        else:
            result = export_best(args.save_folder, args.output, overrides, max_key=args.max_key, min_key=args.min_key)
            folder = result["folder"]
            chosen = f"{result['checkpoint']} {result['meta']}"
    except (ValueError, OSError) as err:
        return _fail(str(err))
    print(f"fsce-export: wrote {folder} from {chosen}")
    if overrides:
        print(f"fsce-export: architecture {json.dumps(overrides)}")
    return EXIT_OK


def prepare_main(argv=None):
    """``fsce-prepare``: same as ``python -m speechbrain_fsce.dataio.folders``.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 when the folders are missing or unusable.

    Example
    -------
    >>> prepare_main(["--clean_folder", "no/such/clean", "--noise_folder", "no/such/noise",
    ...               "--save_folder", str(getfixture("tmp_path"))])
    2
    """
    from speechbrain_fsce.dataio.folders import main

    try:
        main(argv)
    except (FileNotFoundError, ValueError) as err:
        return _fail(str(err))
    return EXIT_OK

