"""Folder walks (walk_files, find_audio_files) and the preparations that use
them (prepare_folders, prepare_timit) with symbolic links: loops end, a
linked folder counts once, and a validation or test file never gets into
training (issue 10, finding 5)."""

import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from speechbrain_fsce.dataio.audio import find_audio_files, walk_files
from speechbrain_fsce.dataio.folders import prepare_folders
from speechbrain_fsce.dataio.timit import prepare_timit
from tests.integration.recipe_utils import manifest_clean_files

RNG = np.random.default_rng(0)


def _speech(path, seconds=0.3):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), 0.1 * RNG.standard_normal(int(16000 * seconds)), 16000)


def _noise(folder):
    _speech(folder / "n.wav", 2.0)
    return str(folder)


def test_walk_files_survives_two_loop_links(tmp_path):
    root = tmp_path / "clean"
    for spk in ("a", "b"):
        _speech(root / spk / "x.wav")
    os.symlink("../b", root / "a" / "to_b")
    os.symlink("../a", root / "b" / "to_a")
    os.symlink(".", root / "current")
    # In a child process with a time limit: the old walk never finished.
    code = (
        "import sys; from speechbrain_fsce.dataio.audio import find_audio_files as f; "
        "print(len(f(sys.argv[1])))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and res.stdout.strip() == "2", res.stderr[-500:]
    assert [os.path.relpath(p, root) for p in walk_files(str(root))] == ["a/x.wav", "b/x.wav"]


def test_walk_files_keeps_links_to_outside_folders_once(tmp_path):
    outside = tmp_path / "elsewhere"
    _speech(outside / "y.wav")
    root = tmp_path / "clean"
    _speech(root / "a" / "x.wav")
    os.symlink(str(outside), root / "b")
    os.symlink(str(outside), root / "c")  # the same folder twice
    found = [os.path.relpath(p, root) for p in find_audio_files(str(root))]
    assert found == ["a/x.wav", "b/y.wav"]


def test_prepare_folders_with_current_link_counts_each_file_once(tmp_path):
    clean = tmp_path / "clean"
    for spk in range(5):
        for k in range(3):
            _speech(clean / f"spk{spk}" / f"{k}.wav")
    os.symlink(".", clean / "current")
    out = prepare_folders(
        str(clean),
        str(tmp_path / "prep"),
        _noise(tmp_path / "noise"),
        valid_ratio=0.2,
        test_ratio=0.2,
        progress=False,
    )
    roots = {"data_root": out["data_root"], "mix_root": str(tmp_path / "prep")}
    train = manifest_clean_files(out["train"], roots)
    valid = manifest_clean_files(out["valid"], roots)
    test = set(manifest_clean_files(out["test"], roots))
    assert len(train) == len(set(train)) and len(valid) == len(set(valid))
    assert len(train) + len(valid) + len(test) == 15
    assert not set(train) & (set(valid) | test)


def test_prepare_folders_link_to_test_folder_stays_out_of_training(tmp_path):
    clean, clean_test = tmp_path / "clean", tmp_path / "clean_test"
    for spk in range(4):
        for k in range(2):
            _speech(clean / f"spk{spk}" / f"{k}.wav")
    for k in range(3):
        _speech(clean_test / "tspk" / f"{k}.wav")
    os.symlink(str(clean_test / "tspk"), clean / "tspk")
    out = prepare_folders(
        str(clean),
        str(tmp_path / "prep"),
        _noise(tmp_path / "noise"),
        clean_test_folder=str(clean_test),
        valid_ratio=0.25,
        progress=False,
    )
    roots = {"data_root": out["data_root"], "mix_root": str(tmp_path / "prep")}
    train = set(manifest_clean_files(out["train"], roots)) | set(
        manifest_clean_files(out["valid"], roots)
    )
    assert len(train) == 8
    assert not any(str(clean_test) in p for p in train)


def test_prepare_timit_link_to_test_speaker_stays_out_of_training(tmp_path):
    timit = tmp_path / "TIMIT"
    for split, dialect, spk in (
        ("TRAIN", "DR1", "FAAA0"),
        ("TRAIN", "DR1", "MBBB0"),
        ("TRAIN", "DR2", "MCCC0"),
        ("TEST", "DR1", "FDDD0"),
    ):
        for sent in ("SI100", "SX200"):
            _speech(timit / split / dialect / spk / f"{sent}.WAV")
    os.symlink("../../TEST/DR1/FDDD0", timit / "TRAIN" / "DR1" / "FDDD0")
    os.symlink(".", timit / "TRAIN" / "DR1" / "FAAA0" / "again")
    out = prepare_timit(
        str(timit),
        str(tmp_path / "prep"),
        _noise(tmp_path / "noise"),
        valid_speakers=["MCCC0"],
        progress=False,
    )
    roots = {"data_root": out["data_root"], "mix_root": str(tmp_path / "prep")}
    train = manifest_clean_files(out["train"], roots)
    test = set(manifest_clean_files(out["test"], roots))
    assert len(train) == 4 and len(test) == 2
    assert not set(train) & test
