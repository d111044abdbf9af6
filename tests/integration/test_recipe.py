"""Tiny end-to-end runs of recipes/TIMIT/train.py on a generated corpus."""

import json
import re

import pytest
import soundfile as sf

from tests.integration.recipe_utils import make_corpus, recipe_args, run_recipe

EPOCH_LINE = re.compile(r"^epoch: (\d+), .* valid loss: ([0-9.e+-]+)", re.M)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _check_run(proc):
    assert proc.returncode == 0, proc.stderr[-4000:]


def _epochs(output):
    return [
        (int(e), float(v)) for e, v in EPOCH_LINE.findall((output / "train_log.txt").read_text())
    ]


@pytest.fixture(scope="module")
def main_run(corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "fsce"
    proc = run_recipe(recipe_args(corpus, output, extra=["--lr=0.003"]))
    _check_run(proc)
    return output, proc


def test_main_recipe_trains_and_reports(main_run):
    output, _ = main_run
    epochs = _epochs(output)
    assert [e for e, _ in epochs] == [1, 2]
    assert epochs[1][1] < epochs[0][1], "validation loss did not fall"
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


def test_listening_page_references_existing_files(main_run):
    output, _ = main_run
    page = (output / "index.html").read_text()
    refs = re.findall(r'(?:src)="([^"]+)"', page)
    audio = [r for r in refs if r.endswith(".wav")]
    images = [r for r in refs if r.endswith(".png")]
    assert len(audio) == 3 * 4 and len(images) == 4  # 1 sample per SNR
    for ref in refs:
        assert not ref.startswith(("/", "http")), ref  # opens from disk
        assert (output / ref).is_file(), ref


def test_model_folder_exported(main_run):
    output, _ = main_run
    assert (output / "model" / "hyperparams.yaml").is_file()
    assert (output / "model" / "enhancer.ckpt").is_file()


def test_causal_recipe(corpus, tmp_path):
    output = tmp_path / "causal"
    proc = run_recipe(
        recipe_args(corpus, output, "hparams/fsce_causal.yaml", extra=["--export_model=False"])
    )
    _check_run(proc)
    assert [e for e, _ in _epochs(output)] == [1, 2]
    assert (output / "results.json").is_file()


def test_resume_continues_at_next_epoch(corpus, tmp_path):
    output = tmp_path / "resume"
    first = run_recipe(
        recipe_args(corpus, output, extra=["--number_of_epochs=1", "--export_model=False"])
    )
    _check_run(first)
    assert [e for e, _ in _epochs(output)] == [1]
    second = run_recipe(
        recipe_args(corpus, output, extra=["--number_of_epochs=2", "--export_model=False"])
    )
    _check_run(second)
    log = second.stdout + second.stderr
    assert "Going into epoch 2" in log and "Going into epoch 1" not in log
    assert [e for e, _ in _epochs(output)] == [1, 2]
    # The resumed epoch 2 is the uninterrupted run's epoch 2: weights,
    # optimizer, schedule and noise draws were all restored.
    straight = tmp_path / "straight"
    _check_run(run_recipe(recipe_args(corpus, straight, extra=["--export_model=False"])))
    resumed_loss, straight_loss = _epochs(output)[1][1], _epochs(straight)[1][1]
    assert abs(resumed_loss - straight_loss) <= 1e-3 * straight_loss


def test_torchrun_two_processes(corpus, tmp_path):
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    output = tmp_path / "ddp"
    proc = run_recipe(
        recipe_args(corpus, output, extra=["--distributed_backend=gloo"]),
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
