"""Helpers of the recipe integration tests: a tiny generated corpus and runs."""

import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import scipy.signal
import soundfile as sf

from tests.unittests.speechlike import speech_like

REPO = pathlib.Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "TIMIT"
TINY_MODEL = "{channels: 8, inner_channels: 4, tcm_hidden_channels: 8, num_tcm_modules: 1, dilations: [1, 2]}"
#: The options of the shared run (conftest.py's ``trained_run``) beyond recipe_args's.
TRAINED_RUN = ("--lr=0.003",)
#: An architecture that is not TINY_MODEL's (4 channels, not 8): conftest.py's ``other_model``.
OTHER_MODEL = dict(
    channels=4, inner_channels=4, tcm_hidden_channels=8, num_tcm_modules=1, dilations=[1, 2]
)


def make_corpus(root, speakers=4, utts=3, test_speakers=2, seconds=1.5):
    """Clean speech per speaker folder + two noise folders, as 16 kHz wavs."""
    root = pathlib.Path(root)
    rng = np.random.default_rng(0)
    for split, n_spk, offset in (("train", speakers, 0), ("test", test_speakers, 100)):
        for s in range(n_spk):
            folder = root / "clean" / split / f"spk{s + offset}"
            folder.mkdir(parents=True, exist_ok=True)
            for u in range(utts):
                sig = speech_like(seconds, seed=1000 * (s + offset) + u, f0=90 + 25 * s)
                sf.write(folder / f"u{u}.wav", sig, 16000)
    for split, colour in (("train", 0.0), ("test", 0.97)):
        folder = root / "noise" / split
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(2):
            white = rng.standard_normal(16000 * 3)
            noise = np.copy(white)
            for i in range(1, len(noise)):  # a first-order colour for variety
                noise[i] = white[i] + colour * noise[i - 1]
            sf.write(folder / f"n{k}.wav", (0.1 * noise / noise.std()).astype(np.float32), 16000)
    return root


def recipe_args(corpus, output, hparams="hparams/fsce.yaml", extra=()):
    """Command-line arguments of a tiny, fast recipe run (``extra`` overrides)."""
    options = {
        "output_folder": output,
        "corpus": "folders",
        "data_folder": corpus / "clean" / "train",
        "clean_test_folder": corpus / "clean" / "test",
        "noise_folder": corpus / "noise" / "train",
        "test_noise_folder": corpus / "noise" / "test",
        "fsce": TINY_MODEL,
        "number_of_epochs": 2,
        "batch_size": 2,
        "listening_per_snr": 1,
        # DNSMOS costs ~1 s per test clip; test_valid_schedule_recipe.py checks it.
        "dnsmos_stages": "[]",
        # Scoring in the process: two workers cost ~8 s CPU per run to start;
        # parallel scoring is test_metrics.py's and the VoiceBank run's.
        "metric_n_jobs": 1,
    }
    for arg in extra:
        key, value = arg[2:].split("=", 1)
        options[key] = value
    return [hparams] + [f"--{k}={v}" for k, v in options.items()]


def make_voicebank_corpus(root, rate=48000, seconds=1.2, snr=5.0):
    """VoiceBank-DEMAND's four folders with 2 pairs per speaker at ``rate``:
    p226, p287 (validation), p227, p228 (training), p232, p257 (test)."""
    root = pathlib.Path(root)
    rng = np.random.default_rng(1)
    for split, speakers in (
        ("trainset_28spk", ("p226", "p227", "p228", "p287")),
        ("testset", ("p232", "p257")),
    ):
        for s, spk in enumerate(speakers):
            for u in (1, 2):
                clean = speech_like(seconds, 16000, seed=100 * s + u, f0=100 + 20 * s)
                clean = scipy.signal.resample_poly(
                    clean, rate, 16000
                )  # fast: synthesised at 16 kHz
                noise = rng.standard_normal(len(clean))
                noise *= np.sqrt(np.sum(clean**2.0) / np.sum(noise**2) / 10 ** (snr / 10))
                for kind, sig in (("clean", clean), ("noisy", clean + noise)):
                    folder = root / f"{kind}_{split}_wav"
                    folder.mkdir(parents=True, exist_ok=True)
                    sf.write(
                        folder / f"{spk}_{u:03d}.wav",
                        sig.astype(np.float32),
                        rate,
                        subtype="PCM_16",
                    )
    return root


def run_recipe(args, launcher=None, timeout=600, recipe=RECIPE):
    """Runs train.py in the recipe folder; returns the completed process.

    The run has its own process group: on a timeout the whole group is
    killed (torchrun's workers included), so nothing is left running."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = (launcher or [sys.executable]) + ["train.py", *args]
    with subprocess.Popen(
        cmd,
        cwd=recipe,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def make_prepared(root, **corpus_options):
    """A tiny generated corpus prepared as the folders protocol prepares it."""
    from speechbrain_fsce.dataio.folders import prepare_folders

    root = pathlib.Path(root)
    corpus = make_corpus(root / "corpus", **corpus_options)
    prepare_folders(
        corpus / "clean" / "train",
        root / "prepared",
        corpus / "noise" / "train",
        test_noise_folder=corpus / "noise" / "test",
        clean_test_folder=corpus / "clean" / "test",
        valid_ratio=0.3,
        split_by="file",
        progress=False,
    )
    return root / "prepared"


def manifest_clean_files(manifest_path, roots):
    """Real paths of a manifest's clean files (``{data_root}``-style roots filled in)."""
    import json

    with open(manifest_path) as f:
        manifest = json.load(f)
    return [os.path.realpath(e["clean_wav"].format_map(roots)) for e in manifest.values()]
