"""SafeCheckpointer and TrainingLock (speechbrain_fsce.checkpoints): a kill
during a checkpoint save never blocks resuming; a second training in the same
folder is refused, a stale lock replaced, a fresh one never removed (issue 10,
findings 4 and 9)."""

import os
import subprocess
import sys

import pytest

from speechbrain_fsce.checkpoints import LOCK_NAME, TrainingLockError
from tests.unittests.tiny_models import tiny_brain


def test_kill_during_checkpoint_save_does_not_block_resuming(tmp_path):
    """Finding 4: a 0-byte enhancer.ckpt left by a kill made every rerun die (EOFError)."""
    save = tmp_path / "save"
    brain, counter = tiny_brain(save)
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

    again, counter2 = tiny_brain(save)
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
            tiny_brain(save)
    finally:
        other.kill()
        other.wait()
    brain, _ = tiny_brain(save)  # the lock of a dead process is stale: replaced
    assert (save / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    brain.training_lock.release()
    assert not (save / LOCK_NAME).exists()


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
