"""Tiny end-to-end runs of recipes/TIMIT/train.py on a generated corpus.

The fast suite trains one run (``trained_run``, tests/integration/conftest.py)
and resumes another; the causal yaml, two processes (torchrun) and a corpus
of silences are ``slow`` (pytest --runslow).
"""

import json
import re

import numpy as np
import pytest
import soundfile as sf

from tests.integration.recipe_utils import TRAINED_RUN, make_corpus, recipe_args, run_recipe

EPOCH_LINE = re.compile(r"^epoch: (\d+), .* valid loss: ([0-9.e+-]+)", re.M)
VALID_SISDR = re.compile(r"^epoch: \d+, .* valid sisdr: ([0-9.e+-]+)", re.M)


def _check_run(proc):
    assert proc.returncode == 0, proc.stderr[-4000:]


def _epochs(output):
    return [
        (int(e), float(v)) for e, v in EPOCH_LINE.findall((output / "train_log.txt").read_text())
    ]


def test_main_recipe_trains_and_reports(trained_run):
    output = trained_run
    epochs = _epochs(output)
    assert [e for e, _ in epochs] == [1, 2]
    assert epochs[1][1] < epochs[0][1], "validation loss did not fall"
    sisdr = [float(v) for v in VALID_SISDR.findall((output / "train_log.txt").read_text())]
    assert len(sisdr) == 2 and sisdr[1] > sisdr[0], "validation SI-SDR did not rise"
    results = json.loads((output / "results.json").read_text())
    for condition in ("noisy", "enhanced"):
        assert set(results[condition]) == {"-5", "0", "5", "10", "avg"}
        for row in results[condition].values():
            assert {"pesq_nb_raw", "pesq_wb", "stoi", "sisdr"} <= set(row)
    # The noisy input's SI-SDR follows the mixing SNR: the protocol is right.
    for snr in (-5, 0, 5, 10):
        assert abs(results["noisy"][str(snr)]["sisdr"] - snr) < 0.5
    assert "| avg |" in (output / "results.md").read_text()
    test_manifest = json.loads((output / "prepared" / "test.json").read_text())
    enhanced = sorted(p.stem for p in (output / "enhanced").glob("*.wav"))
    assert enhanced == sorted(test_manifest)
    info = sf.info(str(next((output / "enhanced").glob("*.wav"))))
    assert info.samplerate == 16000 and info.channels == 1


def test_listening_page_references_existing_files(trained_run):
    output = trained_run
    page = (output / "index.html").read_text()
    refs = re.findall(r'(?:src)="([^"]+)"', page)
    audio = [r for r in refs if r.endswith(".wav")]
    images = [r for r in refs if r.endswith(".png")]
    assert len(audio) == 3 * 4 and len(images) == 4  # 1 sample per SNR
    for ref in refs:
        assert not ref.startswith(("/", "http")), ref  # opens from disk
        assert (output / ref).is_file(), ref


def test_model_folder_exported(trained_run):
    model = trained_run / "model"
    assert (model / "hyperparams.yaml").is_file() and (model / "model.json").is_file()
    assert (model / "enhancer.ckpt").is_file()


@pytest.mark.slow
def test_causal_recipe(recipe_corpus, tmp_path):
    output = tmp_path / "causal"
    proc = run_recipe(
        recipe_args(
            recipe_corpus, output, "hparams/fsce_causal.yaml", extra=["--export_model=False"]
        )
    )
    _check_run(proc)
    assert [e for e, _ in _epochs(output)] == [1, 2]
    assert (output / "results.json").is_file()


def test_resume_continues_at_next_epoch_and_wins_over_init_from(
    recipe_corpus, trained_run, other_model, tmp_path
):
    output = tmp_path / "resume"
    extra = [*TRAINED_RUN, "--export_model=False"]
    first = run_recipe(recipe_args(recipe_corpus, output, extra=extra + ["--number_of_epochs=1"]))
    _check_run(first)
    assert [e for e, _ in _epochs(output)] == [1]
    # The rerun names a model folder of another architecture in --init_from:
    # the checkpoint is resumed and the folder not read (it would not fit).
    extra += [f"--init_from={other_model}", "--number_of_epochs=2"]
    second = run_recipe(recipe_args(recipe_corpus, output, extra=extra))
    _check_run(second)
    log = second.stdout + second.stderr
    assert "Going into epoch 2" in log and "Going into epoch 1" not in log
    assert f"init_from: {other_model} not used: resuming from the checkpoint" in log
    assert [e for e, _ in _epochs(output)] == [1, 2]
    # The resumed epoch 2 is the uninterrupted run's epoch 2 (trained_run, the
    # same options): weights, optimizer, schedule and noise draws were all restored.
    resumed_loss, straight_loss = _epochs(output)[1][1], _epochs(trained_run)[1][1]
    assert abs(resumed_loss - straight_loss) <= 1e-3 * straight_loss


@pytest.mark.slow
def test_torchrun_two_processes(recipe_corpus, tmp_path):
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    output = tmp_path / "ddp"
    proc = run_recipe(
        recipe_args(recipe_corpus, output, extra=["--distributed_backend=gloo"]),
        launcher=[str(torchrun), "--standalone", "--nproc_per_node=2"],
    )
    _check_run(proc)
    assert (output / "model" / "enhancer.ckpt").is_file()
    # Every epoch logged once (main process only), every report written.
    assert [e for e, _ in _epochs(output)] == [1, 2]
    assert (output / "results.json").is_file() and (output / "index.html").is_file()
    ckpts = list((output / "save").glob("CKPT+*"))
    assert 1 <= len(ckpts) <= 2  # the best and the latest are kept
    test_manifest = json.loads((output / "prepared" / "test.json").read_text())
    assert len(list((output / "enhanced").glob("*.wav"))) == len(test_manifest)


@pytest.mark.slow
def test_recipe_survives_silences_and_reports_data_errors_in_one_line(tmp_path):
    """Silent stretches in training speech with short excerpts are redrawn and
    counted; a training file gone after preparation is one line, no traceback."""
    corpus = make_corpus(tmp_path / "corpus", seconds=0.6)
    train = sorted((corpus / "clean" / "train").rglob("*.wav"))
    for path in train:  # long digital silences around each utterance
        x, rate = sf.read(str(path), dtype="float32")
        silence = np.zeros(3 * rate, dtype=np.float32)
        sf.write(str(path), np.concatenate([silence, x, silence]), rate)
    output = tmp_path / "run"
    args = ["--train_chunk_seconds=0.1", "--export_model=False"]
    proc = run_recipe(recipe_args(corpus, output, extra=args + ["--number_of_epochs=1"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (output / "train_log.txt").read_text()
    assert "silent_redrawn" in log  # counted and reported with the epoch

    # A training file that went missing after preparation: one clear line.
    train[0].unlink()
    proc = run_recipe(recipe_args(corpus, output, extra=args + ["--number_of_epochs=3"]))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and train[0].name in last and "no such file" in last
