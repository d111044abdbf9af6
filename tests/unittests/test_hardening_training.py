"""Issue 10, findings 4, 9 and 11: a kill during a checkpoint save, two
trainings in one folder, and silent stretches in training speech."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.brain import FSCEBrain
from speechbrain_fsce.checkpoints import LOCK_NAME, TrainingLockError
from speechbrain_fsce.dataio.audio import save_wav
from speechbrain_fsce.dataio.mixing import OnTheFlyMixer, compute_snr
from tests.unittests.tiny_models import SMALL


def _brain(save, counter=None):
    torch.manual_seed(0)
    enhancer = FSCEEnhancer(FSCE(**SMALL))
    counter = counter or EpochCounter(10)
    ckpter = Checkpointer(save, {"enhancer": enhancer, "counter": counter})
    return FSCEBrain(modules={"enhancer": enhancer}, hparams={}, checkpointer=ckpter), counter


def test_kill_during_checkpoint_save_does_not_block_resuming(tmp_path):
    """Finding 4: a 0-byte enhancer.ckpt left by a kill made every rerun die (EOFError)."""
    save = tmp_path / "save"
    brain, counter = _brain(save)
    counter.current = 1
    brain.checkpointer.save_checkpoint(meta={"epoch": 1})
    # A save killed half-way through (a child process SIGKILLs itself while
    # writing the enhancer's file): nothing incomplete may appear as CKPT+.
    code = (
        "import os, signal, sys, torch\n"
        "from speechbrain.utils.checkpoints import Checkpointer\n"
        "from speechbrain_fsce.brain import FSCEBrain\n"
        "from speechbrain_fsce.checkpoints import SafeCheckpointer\n"
        "class Dying(torch.nn.Linear):\n"
        "    def state_dict(self, *a, **k):\n"
        "        open(sys.argv[2], 'w').close()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "ck = SafeCheckpointer(sys.argv[1], {'zzz': Dying(2, 2)})\n"
        "ck.save_checkpoint(meta={'epoch': 2})\n"
    )
    started = tmp_path / "started"
    res = subprocess.run([sys.executable, "-c", code, str(save), str(started)], timeout=120)
    assert res.returncode == -9 and started.exists()
    assert len([p for p in save.iterdir() if p.name.startswith("CKPT+")]) == 1
    # The state an older version left behind: CKPT.yaml and a 0-byte file.
    legacy = save / "CKPT+9999-12-31+23-59-59+00"
    legacy.mkdir()
    (legacy / "CKPT.yaml").write_text("end-of-epoch: true\nepoch: 3\nunixtime: 9999999999.0\n")
    (legacy / "enhancer.ckpt").write_bytes(b"")
    (legacy / "counter.ckpt").write_text("3")

    again, counter2 = _brain(save)
    ckpt = again.checkpointer.recover_if_possible()
    assert ckpt is not None and ckpt.meta["epoch"] == 1 and counter2.current == 1
    assert (save / (".invalid-" + legacy.name)).is_dir()
    # Saving again works and the run goes on.
    assert again.checkpointer.save_checkpoint(meta={"epoch": 2}).path.parent == save


def test_second_training_in_the_same_folder_is_refused(tmp_path):
    """Finding 9: two trainings in one output folder both ran."""
    save = tmp_path / "save"
    save.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (save / LOCK_NAME).write_text(f"{other.pid} {socket.gethostname()}\n")
        with pytest.raises(
            TrainingLockError, match=f"in use by another training \\(pid {other.pid}"
        ):
            _brain(save)
    finally:
        other.kill()
        other.wait()
    brain, _ = _brain(save)  # the lock of a dead process is stale: replaced
    assert (save / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    brain.training_lock.release()
    assert not (save / LOCK_NAME).exists()


def _speech_with_silences(rng, seconds=4.0, speech=0.3):
    """Mostly digital silence with two short bursts of 'speech'."""
    x = np.zeros(int(16000 * seconds), dtype=np.float32)
    n = int(16000 * speech)
    for start in (int(16000 * 0.5), int(16000 * 3.0)):
        x[start : start + n] = 0.1 * rng.standard_normal(n)
    return torch.from_numpy(x)


def test_silent_excerpts_are_redrawn_counted_and_replayed_on_resume(tmp_path, caplog):
    """Finding 11: a random excerpt of pure digital silence crashed training
    (ValueError in mix_at_snr), again at the same step after resuming."""
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.wav"
    save_wav(str(noise), rng.standard_normal(16000 * 3) * 0.1)
    files = [_speech_with_silences(rng) for _ in range(6)]
    mixer = OnTheFlyMixer(str(noise), seed=3)
    length = 1600  # 0.1 s excerpts: most land in silence

    def epoch(e):
        mixer.set_epoch(e)
        out = []
        for clean in files:
            piece = mixer.excerpt(clean, length)
            noisy, snr = mixer(piece)
            assert torch.isfinite(noisy).all() and piece.pow(2).sum() > 0
            assert abs(compute_snr(piece, noisy - piece) - snr) < 1e-3
            out.append(noisy)
        return out, mixer.pop_stats()

    runs = {e: epoch(e) for e in (1, 2, 3)}
    assert sum(stats["redrawn"] for _, stats in runs.values()) > 0
    assert all(stats["excerpts"] == len(files) for _, stats in runs.values())
    # Resuming at epoch 2 replays exactly the same (successful) draws.
    replay, stats = epoch(2)
    assert stats == runs[2][1] and all(torch.equal(a, b) for a, b in zip(replay, runs[2][0]))
    # All draws silent: the documented fallback is the loudest excerpt.
    only_one_burst = torch.zeros(16000 * 20)
    only_one_burst[5000:5400] = 0.2
    mixer.set_epoch(4)
    piece = mixer.excerpt(only_one_burst, 1600)
    assert piece.abs().max() == pytest.approx(0.2) and mixer.pop_stats()["loudest"] in (0, 1)
    # A clean signal with no energy at all still mixes (counted, finite).
    noisy, _ = mixer(torch.zeros(800))
    assert (
        torch.isfinite(noisy).all() and noisy.abs().max() > 0 and mixer.pop_stats()["silent"] == 1
    )


def test_brain_reports_silent_redraws_per_epoch(tmp_path, caplog):
    rng = np.random.default_rng(1)
    noise = tmp_path / "noise.wav"
    save_wav(str(noise), rng.standard_normal(16000) * 0.1)
    brain, _ = _brain(tmp_path / "save")
    brain.train_mixer = OnTheFlyMixer(str(noise), seed=1)
    brain.on_stage_start(__import__("speechbrain").Stage.TRAIN, epoch=1)
    for _ in range(5):
        brain.train_mixer.excerpt(_speech_with_silences(rng), 1600)
    stats = {}
    with caplog.at_level(logging.WARNING, logger="speechbrain_fsce.brain"):
        brain._report_silent_excerpts(stats, 1)
    assert (
        stats.get("silent_redrawn", 0) > 0 and "silent training excerpt(s) redrawn" in caplog.text
    )
    brain.training_lock.release()


class _Broken(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        from speechbrain_fsce.dataio.audio import load_audio

        return load_audio(f"/no/such/dir/utt{i}.wav")


def test_data_error_in_a_loader_worker_stays_one_clear_line():
    """Finding 8: training data errors arrived at the end of a long traceback."""
    from speechbrain_fsce.dataio.audio import AudioError

    loader = torch.utils.data.DataLoader(_Broken(), num_workers=1)
    with pytest.raises(AudioError) as err:
        next(iter(loader))
    assert str(err.value) == "/no/such/dir/utt0.wav: no such file"


def test_stale_lock_removal_never_removes_a_fresh_lock(tmp_path):
    """Review finding: two processes both saw a stale lock; the slower one
    removed the lock the faster one had just taken, and both trained."""
    import socket

    from speechbrain_fsce.checkpoints import TrainingLock

    path = tmp_path / LOCK_NAME
    stale = "999999999 " + socket.gethostname() + "\n"
    path.write_text(stale)
    slow = TrainingLock(tmp_path)
    # The fast process replaced the stale lock after the slow one read it.
    fresh = f"{os.getpid()} {socket.gethostname()}\n"
    path.write_text(fresh)
    slow._remove_stale(stale)
    assert path.read_text() == fresh  # the fresh lock survives
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]  # nothing left aside
    slow._remove_stale(fresh)  # the content it read: removed
    assert not path.exists()
