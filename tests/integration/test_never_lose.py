"""Issue 17: nothing a user owns is lost; folder mistakes are one line.

fsce-enhance never replaces an input (by path or through a hard link) nor a
file it did not write, even with --overwrite; ``-o`` naming the input
folder, a 252-character file name, what a SIGKILL leaves; a second training
in a running run's folder; ``--clean_test_folder`` = ``--data_folder``.
"""

import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.checkpoints import LOCK_NAME, TrainingLockError
from speechbrain_fsce.cli import enhance_main
from speechbrain_fsce.fileio import _host_id, atomic_write
from speechbrain_fsce.inference import export_model
from speechbrain_fsce.inference.chunked import is_enhanced_output
from tests.integration.recipe_utils import REPO, make_corpus, recipe_args, run_recipe
from tests.unittests.tiny_models import SMALL, calibrated

RNG = np.random.default_rng(17)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(0)
    enhancer = FSCEEnhancer(calibrated(FSCE(**SMALL)))
    return str(export_model(tmp_path_factory.mktemp("never_lose") / "model", enhancer, SMALL))


def _wav(path, seconds=0.25):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), RNG.standard_normal(int(16000 * seconds)) * 0.1, 16000)
    return path


def _enhance(model_folder, *args):
    return enhance_main(["--model", model_folder, "--no-progress", *map(str, args)])


def test_overwrite_never_replaces_a_recording_inside_the_input(model_folder, tmp_path, capsys):
    """`fsce-enhance in -o in/sub --overwrite` replaced the original in/sub/a.wav."""
    root = tmp_path / "in"
    _wav(root / "a.wav")
    original = _wav(root / "sub" / "a.wav").read_bytes()  # a recording, also an input
    assert _enhance(model_folder, root, "-o", root / "sub", "--overwrite") == 1
    err = capsys.readouterr().err
    assert "is not an earlier enhanced file; not replaced, even with --overwrite" in err
    assert (root / "sub" / "a.wav").read_bytes() == original
    # Its own earlier outputs are replaced with --overwrite (and only with it).
    out = tmp_path / "in" / "enhanced"
    assert _enhance(model_folder, root / "a.wav", "-o", out) == 0
    assert is_enhanced_output(out / "a.wav")
    assert _enhance(model_folder, root / "a.wav", "-o", out) == 1
    assert _enhance(model_folder, root / "a.wav", "-o", out, "--overwrite") == 0


def test_a_hard_link_of_an_input_is_an_input(model_folder, tmp_path, capsys):
    """An output path that is the input under another name is never written."""
    src = _wav(tmp_path / "in" / "a.wav")
    (tmp_path / "out").mkdir()
    os.link(src, tmp_path / "out" / "a.wav")
    before = src.read_bytes()
    assert _enhance(model_folder, src, "-o", tmp_path / "out", "--overwrite") == 1
    assert "refusing to write into the input's own location" in capsys.readouterr().err
    assert src.read_bytes() == before
    assert os.path.samefile(src, tmp_path / "out" / "a.wav")  # the link is untouched too


def test_output_folder_that_is_the_input_folder_says_so(model_folder, tmp_path, capsys):
    """`-o in` with `in` the input folder said "folder holds no audio file"."""
    _wav(tmp_path / "in" / "a.wav")
    os.symlink(tmp_path / "in", tmp_path / "alias")
    for output in (tmp_path / "in", tmp_path / "alias"):
        assert _enhance(model_folder, tmp_path / "in", "-o", output) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "holds no audio" not in err
        assert f"-o {output} is the input folder" in err and "choose another output" in err


def test_a_252_character_name_is_written(tmp_path):
    """The temporary name (.<name>.<random>.partial) went past NAME_MAX."""
    name = "x" * 248 + ".wav"
    atomic_write(tmp_path / name, "data")
    assert [p.name for p in tmp_path.iterdir()] == [name]
    multibyte = "é" * 125 + ".wav"  # 254 bytes in UTF-8
    atomic_write(tmp_path / multibyte, "data", overwrite=False)
    assert (tmp_path / multibyte).read_text() == "data"


def test_a_252_character_file_name_is_enhanced(model_folder, tmp_path, capsys):
    """The temporary name (.name.<random>.partial) passed NAME_MAX and failed."""
    name = "n" * 248 + ".wav"
    src = _wav(tmp_path / "in" / name)
    assert _enhance(model_folder, src, "-o", tmp_path / "out") == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [name]


def test_partial_files_of_a_sigkilled_run_are_removed_by_the_next(model_folder, tmp_path):
    """A SIGKILL leaves the temporary file (nothing can remove it then); the
    next run writing into that folder removes it, never a live run's."""
    out = tmp_path / "out"
    code = (
        "import os, signal, sys\n"
        "from speechbrain_fsce.fileio import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    open(tmp, 'wb').write(b'RIFF half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(out / "a.wav")], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in out.iterdir()]
    assert len(left) == 1 and left[0].endswith(".partial")
    live = out / f".b.wav.{os.getpid()}-{_host_id()}.abcdefgh.partial"
    live.write_bytes(b"being written")  # a live process's (this one's): kept
    assert _enhance(model_folder, _wav(tmp_path / "a.wav"), "-o", out) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.wav", live.name])


def _tiny_run_yaml(tmp_path):
    run = tmp_path / "run"
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"output_folder: {run}\nsave_folder: !ref <output_folder>/save\nfsce: {{channels: 8}}\n"
    )
    return path, run


def test_second_training_changes_nothing_in_a_running_run_folder(tmp_path):
    """It rewrote hyperparams.yaml (and prepared/) before reaching the lock."""
    from speechbrain_fsce.recipe import start_experiment

    yaml_path, run = _tiny_run_yaml(tmp_path)
    (run / "save").mkdir(parents=True)
    (run / "hyperparams.yaml").write_text("the running training's\n")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (run / "save" / LOCK_NAME).write_text(f"{other.pid} {socket.gethostname()}\n")
        before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
        with pytest.raises(TrainingLockError, match=f"pid {other.pid}"):
            start_experiment([str(yaml_path)])
    finally:
        other.kill()
        other.wait()
    assert (run / "hyperparams.yaml").read_text() == "the running training's\n"
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before


def test_a_new_run_takes_the_lock_first_and_removes_dead_partials(tmp_path):
    """The lock is taken (and the dead run's .partial files removed) before
    SpeechBrain writes hyperparams.yaml; it is released at exit."""
    yaml_path, run = _tiny_run_yaml(tmp_path)
    dead = run / "enhanced" / ".x.wav.abc12345.partial"  # no live owner
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"half")
    live = run / "enhanced" / f".y.wav.{os.getpid()}-{_host_id()}.abcdefgh.partial"
    live.write_bytes(b"being written")
    code = (
        "import os, sys\n"
        "import speechbrain as sb\n"
        "from speechbrain_fsce.recipe import start_experiment\n"
        "real = sb.create_experiment_directory\n"
        "def checked(**kw):\n"
        "    assert os.path.exists(os.path.join(sys.argv[2], 'save', '.training.lock'))\n"
        "    assert not os.path.exists(os.path.join(sys.argv[2], 'hyperparams.yaml'))\n"
        "    real(**kw)\n"
        "sb.create_experiment_directory = checked\n"
        "start_experiment([sys.argv[1]])\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", code, str(yaml_path), str(run)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "hyperparams.yaml").is_file() and not dead.exists() and live.exists()
    assert not (run / "save" / LOCK_NAME).exists()


# nested is slow (a second recipe run, ~5 s CPU); FolderError's cases: test_data_checks.py
@pytest.mark.parametrize("nested", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_clean_test_folder_inside_data_folder_is_one_line(tmp_path, nested):
    """--clean_test_folder = --data_folder went on to a traceback."""
    corpus = make_corpus(tmp_path / "corpus", speakers=2, utts=1, test_speakers=1, seconds=0.5)
    data = corpus / "clean" / "train"
    test = data / "spk0" if nested else data
    args = recipe_args(corpus, tmp_path / "run", extra=[f"--clean_test_folder={test}"])
    proc = run_recipe(args, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: clean ")
    assert ("lies inside" if nested else "are the same folder") in last and str(test) in last
    assert not (tmp_path / "run" / "prepared" / "train.json").exists()
