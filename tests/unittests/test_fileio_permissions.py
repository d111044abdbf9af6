"""fileio and the writers built on it (save_wav, write_atomic, export_model):
files and folders get normal permissions (0o666 / 0o777 minus the umask), not
temporary-file ones, and a failed write leaves nothing (issue 10, finding 10)."""

import os

import numpy as np
import pytest

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.dataio.audio import save_wav
from speechbrain_fsce.fileio import atomic_path
from speechbrain_fsce.inference.export import export_model
from speechbrain_fsce.reporting import write_atomic
from tests.unittests.tiny_models import SMALL


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return path.stat().st_mode & 0o777


def test_outputs_get_umask_permissions(tmp_path, umask):
    folder = export_model(tmp_path / "model", FSCEEnhancer(FSCE(**SMALL)), SMALL)
    assert _mode(folder) == 0o777 & ~umask
    assert {_mode(p) for p in folder.iterdir()} == {0o666 & ~umask}
    save_wav(str(tmp_path / "a.wav"), np.zeros(10))
    write_atomic(tmp_path / "results.md", "x")
    for name in ("a.wav", "results.md"):
        assert _mode(tmp_path / name) == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            open(tmp, "w").write("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["x.txt"]
    with pytest.raises(FileExistsError, match="not replaced"):
        save_wav(str(target), np.zeros(3), overwrite=False)
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["x.txt"]
