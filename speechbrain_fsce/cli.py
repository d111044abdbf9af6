"""Console entry points: ``fsce-enhance``, ``fsce-export`` and ``fsce-prepare``.

``fsce-enhance <files or folders...> -o <out dir>`` enhances audio files
with the non-causal model shipped with the package (``--model causal``: the
causal one; ``--model <model folder>``: any exported model; see
:mod:`speechbrain_fsce.inference.shipped`). Files of any length, rate and
channel count are read (constant memory, see
:mod:`speechbrain_fsce.inference.chunked`). Outputs are mono WAV files
named like their inputs (extension ``.wav``), folders keep their structure,
and each file is written under a temporary name and renamed when complete.

Data is never lost: an input is never overwritten, whatever the options (a
path naming an input through a symbolic or hard link counts as the input),
and an existing file is never replaced, except an earlier enhanced file of
this package (its WAV comment says so) with ``--overwrite``: an original
recording in the output folder is kept even then. An output folder inside an
input folder is not read as input; ``-o`` naming an input folder itself is
a usage error. The unfinished ``.partial`` files of a killed run (SIGKILL)
in the output folders are removed by the next run.
Folders are walked with :func:`speechbrain_fsce.dataio.audio.walk_files`
(symbolic-link loops are harmless, each file is enhanced once); files that
do not have an audio name are listed in a note, never skipped silently.

A file that fails (missing, empty, corrupt, not audio, NaN/Inf samples) is
reported with its reason at the end while the others are still written;
the exit status is then 1. Usage errors (bad options, an unusable model
folder or device) exit with status 2. Every error is one line naming the
file or option; ``--debug`` adds Python tracebacks. SIGINT/SIGTERM stop the
run, remove the file being written and exit with 130/143 and a one-line
message. Model folders are read as data (no code from them runs; see
:mod:`speechbrain_fsce.model_folder`) unless ``--unsafe-load`` is given.

Input shorter than one STFT frame is enhanced (zero-padded by the centred
STFT, same length out); silence comes out as near-zero silence.

``--score`` prints, on stdout, one line per written file with the DNSMOS
SIG / BAK / OVRL / P.808 of the input and of its output, then their averages
over the files (:func:`speechbrain_fsce.metrics.dnsmos`; no clean reference;
needs the ``dnsmos`` extra, a one-line error otherwise; a file shorter than
0.25 s scores n/a).

``fsce-export --save_folder <run>/save --output <model folder>`` writes the
best checkpoint of a training run as a model folder, with the architecture
given by ``--overrides '{"causal": true}'`` or read (as data) from the run's
``--hparams <run>/hyperparams.yaml``. ``--output`` must be new, empty, or,
with ``--overwrite``, an earlier model folder; a folder holding anything
else (a training run, a model card) is never replaced. ``fsce-export
--model <model folder or shipped name> --onnx <folder>`` writes a model's
ONNX graphs; ``fsce-export --upgrade <model folder>`` adds the
``model.json`` of a folder written by an older version.

``fsce-prepare`` (also ``python -m speechbrain_fsce.dataio.folders``)
prepares the noise protocol from folders of speech and noise
(:func:`~speechbrain_fsce.dataio.folders.prepare_folders`);
``python -m speechbrain_fsce.dataio.timit`` from TIMIT. Their parsers
(:func:`protocol_parser`) live here, in the command layer.

Authors
 * speechbrain-fsce developers
"""

import argparse
import contextlib
import errno
import json
import logging
import math
import os
import pathlib
import signal
import sys
import traceback
import warnings

from speechbrain_fsce.dataio.audio import AUDIO_EXTENSIONS, file_identity, walk_files

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class Interrupted(BaseException):
    """Raised in the main thread when SIGTERM arrives (like KeyboardInterrupt).

    A ``BaseException``, so that ``except Exception`` clauses on the way
    cannot swallow it.

    Arguments
    ---------
    signum : int
        The signal number.

    Example
    -------
    >>> Interrupted(15).signum
    15
    """

    def __init__(self, signum):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(message, prog="fsce"):
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(minimum, strict):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
        if (
            value != value
            or value in (float("inf"), float("-inf"))
            or value < minimum
            or (strict and value == minimum)
        ):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {minimum:g} seconds, got {text}"
            )
        return value

    return parse


def _output_name(path):
    """Output file name: the input's name, with ``.wav`` as its extension."""
    p = pathlib.Path(path)
    return p.name if p.suffix.lower() == ".wav" else p.stem + ".wav"


def plan_outputs(inputs, output_dir, overwrite=False, notes=None):
    """Pairs every input file with its output path.

    Files are used as given (whatever their extension); folders are walked
    recursively for audio files with
    :func:`~speechbrain_fsce.dataio.audio.walk_files` (hidden entries and
    the output folder are skipped, links are followed without loops, each
    real file once) and their relative structure is kept under
    ``output_dir``. An output that would replace an input (by path, or the
    same file through a link: :func:`~speechbrain_fsce.dataio.audio.file_identity`),
    an existing file without ``overwrite``, and with it any existing file
    that is not an earlier enhanced file
    (:func:`~speechbrain_fsce.inference.chunked.is_enhanced_output`) are
    refused; an input folder that is ``output_dir`` itself is refused.

    Arguments
    ---------
    inputs : list of str
        Files and folders.
    output_dir : str
        Output folder.
    overwrite : bool
        Allow replacing earlier enhanced files (never inputs, never files
        that are not enhanced outputs of this package).
    notes : list, optional
        Receives one line per folder holding files without an audio name.

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
    from speechbrain_fsce.inference.chunked import is_enhanced_output

    jobs, errors, claimed = [], [], {}
    candidates = []
    for item in inputs:
        if os.path.isdir(item) and same_folder(item, output_dir):
            errors.append((item, f"is the output folder (-o {output_dir}); {_OWN_FOLDER_HINT}"))
        elif os.path.isdir(item):
            found = walk_files(item, exclude=[output_dir])
            audio = [f for f in found if f.lower().endswith(AUDIO_EXTENSIONS)]
            other = [f for f in found if not f.lower().endswith(AUDIO_EXTENSIONS)]
            if other and notes is not None:
                notes.append(
                    f"{item}: ignored {len(other)} file(s) without an audio extension "
                    f"(e.g. {other[0]}); pass such files by name to enhance them anyway"
                )
            if not audio:
                errors.append((item, f"folder holds no audio file ({', '.join(AUDIO_EXTENSIONS)})"))
            for f in audio:
                rel = os.path.relpath(f, item)
                candidates.append(
                    (f, os.path.join(output_dir, os.path.dirname(rel), _output_name(f)))
                )
        elif os.path.isfile(item):
            candidates.append((item, os.path.join(output_dir, _output_name(item))))
        else:
            errors.append((item, "no such file or folder"))
    inputs_real = {os.path.realpath(f) for f, _ in candidates}
    inputs_ids = {file_identity(f) for f, _ in candidates} - {None}
    for f, out in candidates:
        out_real = os.path.realpath(out)
        if (
            os.path.realpath(os.path.dirname(out)) == os.path.realpath(os.path.dirname(f))
            or out_real in inputs_real
            or file_identity(out) in inputs_ids
        ):
            errors.append(
                (f, f"refusing to write into the input's own location ({out}); choose another -o")
            )
        elif out_real in claimed:
            errors.append((f, f"output {out} would also be written for {claimed[out_real]}"))
        elif os.path.lexists(out) and not overwrite:
            errors.append(
                (f, f"output {out} exists already; not replaced (pass --overwrite to replace it)")
            )
        elif os.path.lexists(out) and not is_enhanced_output(out):
            errors.append(
                (
                    f,
                    f"output {out} exists and is not an earlier enhanced file; not replaced, "
                    "even with --overwrite (choose another -o)",
                )
            )
        else:
            claimed[out_real] = f
            jobs.append((f, out))
    return jobs, errors


_OWN_FOLDER_HINT = (
    "the enhanced files would be written among its recordings, under their names: "
    "choose another output folder (one inside it, e.g. -o <folder>/enhanced, is fine)"
)


def same_folder(a, b):
    """Whether two paths name one folder (real path, or same device and inode).

    Arguments
    ---------
    a, b : str
        Paths.

    Returns
    -------
    bool

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> os.symlink(tmp, tmp / "link")
    >>> same_folder(str(tmp), str(tmp / "link")), same_folder(str(tmp), str(tmp / "new"))
    (True, False)
    """
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    ident = file_identity(a)
    return ident is not None and ident == file_identity(b)


def _threads(n):
    import torch

    if n:
        torch.set_num_threads(n)


def _enhance_parser():
    parser = _Parser(
        prog="fsce-enhance",
        description=(
            "Enhance noisy speech with FSCE: the shipped non-causal model, or "
            "--model causal, or a model folder. Any sampling rate "
            "and channel count is read (mixed to mono, resampled to the model "
            "rate); files of any length are processed in constant memory."
        ),
    )
    parser.add_argument(
        "inputs", nargs="+", help="audio files and/or folders (searched recursively)"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="a shipped model, noncausal (default) or causal, or a model folder "
        "(hyperparams.yaml + enhancer.ckpt)",
    )
    parser.add_argument(
        "-o", "--output", required=True, help="output folder (never an input's own folder)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace earlier enhanced files in the output folder (never inputs, never "
        "files that fsce-enhance did not write)",
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default: cpu)"
    )
    parser.add_argument(
        "--keep-rate", action="store_true", help="write at each input's rate (default: model rate)"
    )
    parser.add_argument(
        "--subtype",
        default="FLOAT",
        help="output WAV subtype: FLOAT (default, no clipping), PCM_16, PCM_24",
    )
    # The chunking of non-causal models, in seconds: > 0 (chunk) or >= 0.
    for flag, strict, default, text in (
        ("--chunk-seconds", True, 10.0, "chunk length for non-causal models (default 10)"),
        (
            "--context-seconds",
            False,
            None,
            "context on each side of a chunk (default: the receptive field, exact)",
        ),
        ("--crossfade-seconds", False, 0.25, "cross-fade between chunks (default 0.25)"),
    ):
        parser.add_argument(flag, type=_seconds(0, strict), default=default, help=text)
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads (default: torch's choice)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--unsafe-load",
        action="store_true",
        help="load the model folder with SpeechBrain's loader, which runs code from its "
        "hyperparams.yaml and checkpoint: only for folders from a source you trust",
    )
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="run the enhancer in torch (default) or in onnxruntime (needs the onnx extra; CPU "
        "only): the model folder's onnx/ export when it records the folder's weights "
        "(weights_sha256) in the current format, else one exported for this run",
    )
    parser.add_argument(
        "--score",
        action="store_true",
        help="print DNSMOS SIG/BAK/OVRL/P.808 of each input and its output, and their "
        "averages (no clean reference needed; needs the dnsmos extra)",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks of errors")
    return parser


#: Columns of ``fsce-enhance --score``: DNSMOS score and its title.
_SCORE_COLUMNS = (("sig", "SIG"), ("bak", "BAK"), ("ovrl", "OVRL"), ("p808", "P.808"))


def _score_line(name, before, after):
    """``name: DNSMOS noisy -> enhanced: SIG 2.10 -> 3.00, ...`` (n/a for nan)."""

    def fmt(value):
        return "n/a" if math.isnan(value) else f"{value:.2f}"

    cells = ", ".join(f"{t} {fmt(before[k])} -> {fmt(after[k])}" for k, t in _SCORE_COLUMNS)
    return f"{name}: DNSMOS input -> enhanced: {cells}"


def _score_file(src, dst, scores):
    """Prints the DNSMOS of ``src`` and ``dst`` (read at 16 kHz, mono) and
    appends the pair to ``scores``; a file it cannot score gets a note."""
    from speechbrain_fsce.dataio.audio import load_audio
    from speechbrain_fsce.metrics import DNSMOS_RATE, dnsmos

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # too short: nan, printed as n/a
            pair = [dnsmos(load_audio(f, DNSMOS_RATE), DNSMOS_RATE) for f in (src, dst)]
    except Exception as err:  # scoring is auxiliary (onnxruntime raises its own types)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"{src}: DNSMOS not computed: {reason}", flush=True)
        return
    scores.append(pair)
    print(_score_line(src, *pair), flush=True)


def _score_average(scores):
    """The ``--score`` summary line: nan-ignoring means over the scored files."""

    def mean(values):
        finite = [v for v in values if not math.isnan(v)]
        return sum(finite) / len(finite) if finite else float("nan")

    means = [{k: mean([p[i][k] for p in scores]) for k, _ in _SCORE_COLUMNS} for i in (0, 1)]
    return _score_line(f"average over {len(scores)} file(s)", *means)


@contextlib.contextmanager
def _signals_as_exceptions():
    """SIGTERM raises :class:`Interrupted` (SIGINT already raises KeyboardInterrupt)."""

    def handler(signum, frame):
        raise Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _disk_full(err, path):
    """Whether a write error means the output's file system is full."""
    if isinstance(err, OSError) and err.errno in (
        errno.ENOSPC,
        getattr(errno, "EDQUOT", errno.ENOSPC),
    ):
        return True
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
    except OSError:
        return False
    return "System error" in str(err) and st.f_bavail * st.f_frsize < (1 << 20)


def _log_to_stderr(prog, debug):
    """Warnings of the package (e.g. a truncated input) as one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prog}: %(levelname)s: %(message)s"))
    root = logging.getLogger("speechbrain_fsce")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    return lambda: root.removeHandler(handler)


def enhance_main(argv=None):
    """``fsce-enhance``: enhances audio files with a shipped model or a model folder.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 all written, 1 some inputs failed (the others are
        written), 2 usage error or unusable model, 130/143 interrupted by
        SIGINT/SIGTERM.

    Example
    -------
    >>> enhance_main(["--model", "no/such/model", "x.wav", "-o", "out"])
    2
    """
    args = _enhance_parser().parse_args(argv)
    prog = "fsce-enhance"
    unlog = _log_to_stderr(prog, args.debug)
    try:
        return _enhance(args, prog)
    finally:
        unlog()


def _enhance(args, prog):
    """Runs ``fsce-enhance`` on parsed arguments: check, load, plan, enhance, report.

    Each step returns an exit status when it stops the run (a one-line
    message already printed), so the first failing step decides.
    """
    _threads(args.threads)
    failed = _check_options(args, prog)
    if failed is not None:
        return failed
    model = _load_model(args, prog)
    if isinstance(model, int):
        return model
    jobs, errors = _plan_jobs(args, prog)
    outcome = _enhance_jobs(model, jobs, errors, args, prog)
    if isinstance(outcome, int):
        return outcome
    return _report(args, prog, *outcome, errors)


def _check_options(args, prog):
    """Usage checks made before a model is loaded; an exit status, or None when all pass.

    ``--score`` needs the DNSMOS extra, ``--subtype`` must be a WAV subtype,
    ``-o`` must be a folder (or new) and no input folder itself, and
    ``--device`` must be usable.
    """
    import soundfile as sf

    from speechbrain_fsce.model_folder import check_device

    if args.score:
        from speechbrain_fsce.metrics import dnsmos_available

        try:
            dnsmos_available(require=True)
        except ImportError as err:
            return _fail(f"--score: {err}", prog)
    if args.subtype.upper() not in sf.available_subtypes("WAV"):
        return _fail(
            f"--subtype {args.subtype!r} is not a WAV subtype ({', '.join(sorted(sf.available_subtypes('WAV')))})",
            prog,
        )
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        return _fail(f"-o {args.output}: exists and is not a folder", prog)
    for item in args.inputs:
        if os.path.isdir(item) and same_folder(item, args.output):
            return _fail(f"-o {args.output} is the input folder {item}: {_OWN_FOLDER_HINT}", prog)
    try:
        check_device(args.device)
    except ValueError as err:
        return _fail(f"--device: {err}", prog)
    return None


def _load_model(args, prog):
    """The ``FSCEEnhancement`` of ``--model`` on ``--device`` (an exit status if it cannot be had).

    Any failure to load is a usage problem, said in one line. With
    ``--backend onnx`` the whole enhancer (analysis, network, synthesis)
    runs in onnxruntime: the model folder's own ``onnx/`` export when it
    belongs to the folder's weights and is of the current format, else one
    exported for this run (:func:`~speechbrain_fsce.inference.onnx_export.onnx_enhancer`).
    """
    try:
        from speechbrain_fsce.inference.pretrained import FSCEEnhancement
        from speechbrain_fsce.inference.shipped import resolve_model

        source = str(resolve_model(args.model))  # None: the shipped non-causal model
        model = FSCEEnhancement.from_hparams(
            source=source,
            run_opts={"device": args.device},
            trusted=args.unsafe_load,
        )
    except Exception as err:  # any failure to load is a usage problem, reported in one line
        if args.debug:
            traceback.print_exc()
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return _fail(f"cannot load model {args.model or 'noncausal'}: {first}", prog)
    if args.backend == "onnx":
        if not str(args.device).startswith("cpu"):
            return _fail(
                "--backend onnx runs on the CPU; drop --device or use --backend torch", prog
            )
        try:
            from speechbrain_fsce.inference.onnx_export import onnx_enhancer
            from speechbrain_fsce.model_folder import ONNX_FOLDER

            model.mods.enhancer = onnx_enhancer(
                model.mods.enhancer,
                threads=args.threads or 1,
                shipped=os.path.join(source, ONNX_FOLDER),  # its own export, when it has one
            )
        except ImportError as err:
            return _fail(
                f"--backend onnx needs the onnx extra (pip install 'speechbrain_fsce[onnx]'): {err}",
                prog,
            )
    return model


def _plan_jobs(args, prog):
    """``(jobs, errors)`` of :func:`plan_outputs`, its notes printed; a killed run's
    ``.partial`` files removed from the output folders.
    """
    from speechbrain_fsce.fileio import remove_partials

    notes = []
    jobs, errors = plan_outputs(args.inputs, args.output, overwrite=args.overwrite, notes=notes)
    for note in notes:
        print(f"{prog}: note: {note}", file=sys.stderr)
    for folder in sorted({os.path.dirname(os.path.abspath(dst)) for _, dst in jobs}):
        remove_partials(folder)  # what a killed run (SIGKILL) left where we write
    return jobs, errors


def _enhance_jobs(model, jobs, errors, args, prog):
    """Enhances (and with ``--score`` scores) each ``(src, dst)`` job.

    A file that fails is added to ``errors`` and the others go on. Returns
    ``(written, scores)``, or an exit status when the run stops: the disk is
    full (1) or SIGINT / SIGTERM arrived (128 + signal; the file being
    written is removed).
    """
    from tqdm import tqdm

    written, scores = 0, []
    bar = tqdm(jobs, unit="file", disable=args.no_progress or not jobs, desc=prog)
    try:
        with _signals_as_exceptions():
            for src, dst in bar:
                try:
                    model.enhance_long_file(
                        src,
                        dst,
                        chunk_seconds=args.chunk_seconds,
                        context_seconds=args.context_seconds,
                        crossfade_seconds=args.crossfade_seconds,
                        keep_rate=args.keep_rate,
                        subtype=args.subtype.upper(),
                        progress=not args.no_progress,
                        overwrite=args.overwrite,
                    )
                    written += 1
                    if args.score:
                        _score_file(src, dst, scores)
                except (ValueError, OSError, RuntimeError) as err:
                    if args.debug:
                        traceback.print_exc()
                    if _disk_full(err, dst):
                        bar.close()
                        print(
                            f"{prog}: error: no space left on device while writing {dst} "
                            f"(partial output removed; {written} file(s) written)",
                            file=sys.stderr,
                        )
                        return EXIT_SOME_FAILED
                    # AudioError (a ValueError) already names the file; others do not.
                    reason = getattr(err, "reason", None) or str(err)
                    errors.append((src, (reason.strip().splitlines() or [type(err).__name__])[0]))
    except (KeyboardInterrupt, Interrupted) as err:
        bar.close()
        if args.debug:
            traceback.print_exc()
        signum = getattr(err, "signum", signal.SIGINT)
        print(
            f"{prog}: interrupted by {signal.Signals(signum).name}: {written} file(s) written, "
            "the file being written was removed",
            file=sys.stderr,
        )
        return 128 + int(signum)
    bar.close()
    return written, scores


def _report(args, prog, written, scores, errors):
    """Prints the score averages (stdout), the count written and the failed inputs
    (stderr); the exit status: 0, or 1 when an input failed.
    """
    if scores:
        print(_score_average(scores), flush=True)
    print(f"{prog}: {written} file(s) written to {args.output}", file=sys.stderr)
    if errors:
        print(f"{prog}: {len(errors)} input(s) failed:", file=sys.stderr)
        for src, reason in errors:
            print(f"  {src}: {reason}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def export_main(argv=None):
    """``fsce-export``: writes a model folder from a training run.

    ``argv`` and the exit status as :func:`enhance_main`; the status is 0 on
    success, 2 on error.

    Example
    -------
    >>> export_main(["--save_folder", "no/such/save", "--output", "model"])
    2
    """
    parser = _Parser(
        prog="fsce-export",
        description=(
            "Export FSCE weights as a model folder (hyperparams.yaml + "
            "enhancer.ckpt) for FSCEEnhancement.from_hparams and fsce-enhance."
        ),
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--save_folder", help="training run's checkpoint folder (CKPT+* sub-folders)")
    src.add_argument("--ckpt", help="a single enhancer.ckpt / model.ckpt file instead")
    src.add_argument(
        "--model",
        help="an existing model folder or a shipped model (noncausal, causal); "
        "with --onnx: export it to ONNX",
    )
    src.add_argument(
        "--upgrade",
        metavar="MODEL_FOLDER",
        help="add model.json to a model folder written by an older speechbrain-fsce "
        "(its hyperparams.yaml is read as data, never run)",
    )
    parser.add_argument(
        "--output",
        help="model folder to write: new or empty (an earlier model folder only with "
        "--overwrite; a folder holding anything else is never replaced)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier model folder at --output"
    )
    parser.add_argument(
        "--onnx",
        default=None,
        help="also write ONNX graphs + fsce_onnx.json to this folder (needs the onnx extra)",
    )
    parser.add_argument(
        "--unsafe-load",
        action="store_true",
        help="with --model: load it with SpeechBrain's loader, which runs code from its "
        "hyperparams.yaml and checkpoint: only for folders from a source you trust",
    )
    arch = parser.add_mutually_exclusive_group()
    arch.add_argument(
        "--overrides", default=None, help="architecture values as JSON, e.g. '{\"causal\": true}'"
    )
    arch.add_argument(
        "--hparams",
        default=None,
        help="training run's hyperparams.yaml (or a model folder's model.json) to read "
        "the architecture from",
    )
    parser.add_argument(
        "--max_key",
        default="pesq_nb_raw",
        help="checkpoint meta key to maximise (default pesq_nb_raw)",
    )
    parser.add_argument("--min_key", default=None, help="checkpoint meta key to minimise instead")
    args = parser.parse_args(argv)
    prog = "fsce-export"
    if args.upgrade is not None:
        if args.output is not None or args.onnx is not None:
            return _fail("--upgrade changes a folder in place: no --output or --onnx", prog)
        from speechbrain_fsce.model_folder import upgrade

        try:
            written = upgrade(args.upgrade)
        except (ValueError, OSError) as err:
            return _fail(_one_line(err), prog)
        print(
            f"{prog}: {'wrote' if written else 'already has'} "
            f"{os.path.join(args.upgrade, 'model.json')}"
        )
        return EXIT_OK
    if args.model is not None:
        if args.onnx is None or args.output is not None:
            return _fail(
                "--model exports an existing model folder to ONNX: give --onnx DIR (and no --output)",
                prog,
            )
        return _export_onnx(args.model, args.onnx, trusted=args.unsafe_load)
    if args.output is None:
        return _fail("--output is required with --save_folder or --ckpt", prog)

    from speechbrain_fsce.inference.export import export_best, export_model, overrides_from_hparams

    try:
        if args.overrides is not None:
            try:
                overrides = json.loads(args.overrides)
            except json.JSONDecodeError as err:
                return _fail(f"--overrides is not valid JSON ({err})", prog)
            if not isinstance(overrides, dict):
                return _fail("--overrides must be a JSON object", prog)
        elif args.hparams is not None:
            overrides = overrides_from_hparams(args.hparams)
        else:
            overrides = {}
        if args.ckpt:
            folder = export_model(args.output, args.ckpt, overrides, overwrite=args.overwrite)
            chosen = f"{args.ckpt}"
        else:
            result = export_best(
                args.save_folder,
                args.output,
                overrides,
                max_key=args.max_key,
                min_key=args.min_key,
                overwrite=args.overwrite,
            )
            folder = result["folder"]
            chosen = f"{result['checkpoint']} {result['meta']}"
    except (ValueError, OSError) as err:
        return _fail(_one_line(err), prog)
    print(f"{prog}: wrote {folder} from {chosen}")
    if overrides:
        from speechbrain_fsce.model_folder import architecture_from

        print(f"{prog}: architecture {json.dumps(architecture_from(overrides))}")
    if args.onnx is not None:
        return _export_onnx(folder, args.onnx)
    return EXIT_OK


def _one_line(err):
    """First line of an error's message (its type when it has none)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _export_onnx(model_folder, onnx_folder, trusted=False):
    """Loads a model folder (as data) and writes its ONNX graphs; returns an exit status."""
    try:
        from speechbrain_fsce.inference.onnx_export import export_onnx
        from speechbrain_fsce.inference.pretrained import FSCEEnhancement

        model = FSCEEnhancement.from_hparams(source=str(model_folder), trusted=trusted)
        config = export_onnx(model.mods.enhancer, onnx_folder)
    except ImportError as err:
        return _fail(
            f"--onnx needs the onnx extra (pip install 'speechbrain_fsce[onnx]'): {err}",
            "fsce-export",
        )
    except (ValueError, OSError, RuntimeError) as err:
        return _fail(f"cannot export {model_folder} to ONNX: {_one_line(err)}", "fsce-export")
    graphs = [g for g in (config["offline_graph"], config["stream_graph"]) if g]
    print(
        f"fsce-export: wrote {', '.join(graphs)} and fsce_onnx.json to {onnx_folder}"
        + ("" if config["stream_graph"] else " (not causal: no streaming graph)")
    )
    return EXIT_OK


def prepare_main(argv=None):
    """``fsce-prepare``: same as ``python -m speechbrain_fsce.dataio.folders``.

    ``argv`` and the exit status as :func:`enhance_main`: 0 on success, 2
    when the folders are missing or unusable.

    Example
    -------
    >>> prepare_main(["--clean_folder", "no/such/clean", "--noise_folder", "no/such/noise",
    ...               "--save_folder", str(getfixture("tmp_path"))])
    2
    """
    return _preparation_command(_prepare_folders, argv, "fsce-prepare")


def prepare_timit_main(argv=None):
    """``python -m speechbrain_fsce.dataio.timit`` (``recipes/TIMIT/timit_prepare.py``):
    :func:`prepare_main` for TIMIT (``--data_folder`` instead of ``--clean_folder``).

    >>> prepare_timit_main(["--data_folder", "no/such/timit", "--noise_folder", "no/such/noise",
    ...                     "--save_folder", str(getfixture("tmp_path"))])
    2
    """
    return _preparation_command(_prepare_timit, argv, "python -m speechbrain_fsce.dataio.timit")


def _preparation_command(prepare, argv, prog):
    """Runs ``prepare(argv)``; an exit status (a missing or unusable folder: one line, 2)."""
    try:
        prepare(argv)
    except (FileNotFoundError, ValueError) as err:
        return _fail(str(err), prog)
    return EXIT_OK


def protocol_parser(prog, description):
    """Command-line parser with the options of every noise-protocol preparation.

    A corpus's command (:func:`prepare_main` for folders,
    :func:`prepare_timit_main` for TIMIT) adds its own options and runs
    through :func:`run_preparation`.

    Arguments
    ---------
    prog : str
        Program name shown in usage lines.
    description : str
        What the command prepares.

    Returns
    -------
    argparse.ArgumentParser
        With ``--noise_folder``, ``--save_folder``, ``--test_noise_folder``,
        ``--seed`` and ``--no_progress``.

    Example
    -------
    >>> parser = protocol_parser("prep", "demo")
    >>> args = parser.parse_args(["--noise_folder", "n", "--save_folder", "s"])
    >>> args.noise_folder, args.save_folder, args.test_noise_folder, args.seed, args.no_progress
    ('n', 's', None, 1234, False)
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--noise_folder", required=True, help="training/validation noise")
    parser.add_argument("--save_folder", required=True, help="where manifests and mixtures go")
    parser.add_argument("--test_noise_folder", default=None, help="unseen noise added for the test")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    return parser


def run_preparation(parser, prepare, argv=None):
    """Parses ``argv``, logs to stderr (if nothing else does), prepares and
    prints the returned paths as JSON.

    Errors of ``prepare`` propagate (``fsce-prepare`` turns them into a
    one-line message and exit status 2).

    Arguments
    ---------
    parser : argparse.ArgumentParser
        From :func:`protocol_parser`, with the corpus's own options.
    prepare : callable
        ``prepare(args) -> dict`` of paths.
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        What ``prepare`` returned.

    Example
    -------
    >>> parser = protocol_parser("prep", "demo")
    >>> argv = ["--noise_folder", "n", "--save_folder", "s"]
    >>> out = run_preparation(parser, lambda args: {"save": args.save_folder}, argv)
    {
      "save": "s"
    }
    """
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = prepare(args)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return out


def _prepare_folders(argv=None):
    """Parses ``argv``, runs :func:`~speechbrain_fsce.dataio.folders.prepare_folders`;
    what it returned (also printed as JSON)."""
    from speechbrain_fsce.dataio.folders import prepare_folders

    parser = protocol_parser(
        "python -m speechbrain_fsce.dataio.folders",
        "Prepare the FSCE noise protocol (train.json with clean speech, "
        "noise_train.wav / noise_test.wav, fixed valid/test mixtures at "
        "exact SNRs) from any folders of clean speech and noise.",
    )
    parser.add_argument(
        "--clean_folder", required=True, help="clean speech (speaker sub-folders optional)"
    )
    parser.add_argument("--clean_test_folder", default=None, help="separate clean test speech")
    parser.add_argument("--valid_ratio", type=float, default=0.1)
    parser.add_argument("--test_ratio", type=float, default=0.1)
    parser.add_argument("--split_by", choices=["auto", "speaker", "file"], default="auto")
    return run_preparation(
        parser,
        lambda args: prepare_folders(
            args.clean_folder,
            args.save_folder,
            args.noise_folder,
            test_noise_folder=args.test_noise_folder,
            clean_test_folder=args.clean_test_folder,
            valid_ratio=args.valid_ratio,
            test_ratio=args.test_ratio,
            split_by=args.split_by,
            seed=args.seed,
            progress=not args.no_progress,
        ),
        argv,
    )


def _prepare_timit(argv=None):
    """Parses ``argv``, runs :func:`~speechbrain_fsce.dataio.timit.prepare_timit`;
    what it returned (also printed as JSON)."""
    from speechbrain_fsce.dataio.timit import prepare_timit

    parser = protocol_parser(
        "python -m speechbrain_fsce.dataio.timit", "Prepare TIMIT with the FSCE noise protocol."
    )
    parser.add_argument("--data_folder", required=True, help="TIMIT root (TRAIN/ and TEST/)")
    parser.add_argument(
        "--valid_speakers",
        type=float,
        default=0.1,
        help="share (<1) or count per dialect region (>=1)",
    )
    parser.add_argument("--core_test_only", action="store_true")

    def prepare(args):
        valid = args.valid_speakers
        return prepare_timit(
            args.data_folder,
            args.save_folder,
            args.noise_folder,
            test_noise_folder=args.test_noise_folder,
            valid_speakers=int(valid) if valid >= 1 else valid,
            core_test_only=args.core_test_only,
            seed=args.seed,
            progress=not args.no_progress,
        )

    return run_preparation(parser, prepare, argv)
