"""Issue 17, data checks: hard links are links, folders keep their roles,
paired preparation refuses noisy == clean and linked test files, resampled
copies are never stale, quality.py never re-uses scores of another corpus."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce.cli import prepare_main
from speechbrain_fsce.dataio.audio import AudioError, FolderError, load_audio, wav_comment
from speechbrain_fsce.dataio.folders import prepare_folders
from speechbrain_fsce.dataio.paired import COPY_PREFIX, prepare_paired
from speechbrain_fsce.testing import speech_like
from tests.integration.recipe_utils import manifest_clean_files

RNG = np.random.default_rng(17)


def _speech(path, seconds=0.3, rate=16000, seed=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = RNG.integers(1 << 30) if seed is None else seed
    sf.write(str(path), speech_like(seconds, rate, seed=int(seed)), rate)
    return path


def _noise(folder):
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(str(folder / "n.wav"), 0.1 * RNG.standard_normal(32000), 16000)
    return str(folder)


def test_hard_links_of_test_files_stay_out_of_training(tmp_path):
    """Symbolic links were caught; hard links (same inode) went into train.json."""
    clean, clean_test = tmp_path / "clean", tmp_path / "clean_test"
    for spk in range(4):
        for k in range(2):
            _speech(clean / f"spk{spk}" / f"{k}.wav")
    for k in range(3):
        _speech(clean_test / "tspk" / f"{k}.wav")
    (clean / "copied").mkdir()
    for k in range(3):  # "copies" that are the test files themselves
        os.link(clean_test / "tspk" / f"{k}.wav", clean / "copied" / f"{k}.wav")
    out = prepare_folders(
        str(clean),
        str(tmp_path / "prep"),
        _noise(tmp_path / "noise"),
        clean_test_folder=str(clean_test),
        valid_ratio=0.25,
        split_by="file",
        progress=False,
    )
    roots = {"data_root": out["data_root"], "mix_root": str(tmp_path / "prep")}
    used = set(manifest_clean_files(out["train"], roots)) | set(
        manifest_clean_files(out["valid"], roots)
    )
    assert len(used) == 8 and not any("copied" in p for p in used)


@pytest.mark.parametrize("nested", [False, True])
def test_clean_test_folder_must_be_apart_from_the_clean_folder(tmp_path, nested):
    clean = tmp_path / "clean"
    for spk in range(3):
        _speech(clean / f"spk{spk}" / "0.wav")
    test = clean / "spk0" if nested else clean
    with pytest.raises(FolderError, match="lies inside" if nested else "are the same folder"):
        prepare_folders(
            str(clean),
            str(tmp_path / "prep"),
            _noise(tmp_path / "noise"),
            clean_test_folder=str(test),
            progress=False,
        )
    assert not (tmp_path / "prep").exists()  # refused before anything is written


@pytest.mark.parametrize("where", ["same", "inside", "holds"])
def test_fsce_prepare_refuses_the_speech_folder_as_noise(tmp_path, capsys, where):
    """`fsce-prepare --noise_folder <speech folder>` was accepted."""
    speech = tmp_path / "speech"
    for spk in range(3):
        for k in range(4):
            _speech(speech / f"spk{spk}" / f"{k}.wav", seconds=1.0)
    if where == "same":
        noise, clean = speech, speech
    elif where == "inside":
        noise, clean = speech / "spk0", speech
    else:
        noise, clean = speech, speech / "spk1"
    argv = ["--clean_folder", str(clean), "--noise_folder", str(noise)]
    argv += ["--save_folder", str(tmp_path / "prep"), "--no_progress"]
    assert prepare_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fsce-prepare: error: ")
    assert "noise folder" in err and ("same folder" in err or "lies inside" in err)
    assert not (tmp_path / "prep").exists()


def test_save_folder_inside_the_corpus_is_refused(tmp_path):
    clean = tmp_path / "clean"
    for spk in range(3):
        _speech(clean / f"spk{spk}" / "0.wav")
    with pytest.raises(FolderError, match="save folder .* lies inside the clean speech folder"):
        prepare_folders(str(clean), str(clean / "prep"), _noise(tmp_path / "noise"), progress=False)


def _pair(root, name, rate=48000, seed=0, snr=5.0, noisy=None):
    clean = speech_like(0.4, rate, seed=seed)
    if noisy is None:
        noise = np.random.default_rng(seed).standard_normal(len(clean))
        noise *= np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr / 10))
        noisy = clean + noise
    for kind, sig in (("clean", clean), ("noisy", noisy)):
        (root / kind).mkdir(parents=True, exist_ok=True)
        sf.write(str(root / kind / name), sig.astype(np.float32), rate, subtype="FLOAT")
    return root / "noisy" / name, root / "clean" / name


def _paired(root, **kwargs):
    options = dict(valid_speakers=["p2"], resampled_root=str(root / "copies"))
    options.update(kwargs)
    return prepare_paired(
        str(root / "noisy"),
        str(root / "clean"),
        str(root / "prep" / "train.json"),
        str(root / "prep" / "valid.json"),
        **options,
    )


def test_paired_refuses_noisy_equal_to_clean(tmp_path):
    """Noisy == clean was accepted (SNR 0)."""
    _pair(tmp_path, "p1_001.wav", seed=1)
    noisy, clean = _pair(tmp_path, "p2_001.wav", seed=2)
    sf.write(str(noisy), sf.read(str(clean))[0], 48000, subtype="FLOAT")  # no noise at all
    with pytest.raises(AudioError, match="p2_001.wav: holds the same samples as its clean"):
        _paired(tmp_path)
    assert not (tmp_path / "prep" / "train.json").exists()
    # The same folder given as both.
    with pytest.raises(FolderError, match="noisy folder .* and clean folder .* same folder"):
        prepare_paired(
            str(tmp_path / "clean"),
            str(tmp_path / "clean"),
            str(tmp_path / "t.json"),
            str(tmp_path / "v.json"),
            valid_speakers=["p2"],
        )


@pytest.mark.parametrize("link", [os.link, os.symlink])
def test_paired_refuses_test_files_linked_into_training(tmp_path, link):
    for spk in (1, 2):
        _pair(tmp_path / "train", f"p{spk}_001.wav", seed=spk)
    test_noisy, test_clean = _pair(tmp_path / "test", "p9_001.wav", seed=9)
    link(test_noisy, tmp_path / "train" / "noisy" / "p1_002.wav")
    link(test_clean, tmp_path / "train" / "clean" / "p1_002.wav")
    with pytest.raises(FolderError, match="p1_002.wav is the test file .*p9_001.wav"):
        prepare_paired(
            str(tmp_path / "train" / "noisy"),
            str(tmp_path / "train" / "clean"),
            str(tmp_path / "prep" / "train.json"),
            str(tmp_path / "prep" / "valid.json"),
            str(tmp_path / "prep" / "test.json"),
            test_noisy_folder=str(tmp_path / "test" / "noisy"),
            test_clean_folder=str(tmp_path / "test" / "clean"),
            valid_speakers=["p2"],
        )
    # A whole test folder given as (or inside) a training folder.
    with pytest.raises(FolderError, match="same folder"):
        prepare_paired(
            str(tmp_path / "test" / "noisy"),
            str(tmp_path / "test" / "clean"),
            str(tmp_path / "prep" / "train.json"),
            str(tmp_path / "prep" / "valid.json"),
            str(tmp_path / "prep" / "test.json"),
            test_noisy_folder=str(tmp_path / "test" / "noisy"),
            test_clean_folder=str(tmp_path / "test" / "clean"),
        )


def test_paired_remakes_a_stale_resampled_copy(tmp_path):
    """After an original was replaced, its old _16k copy was re-used
    (manifest SNR from the new file, audio from the old)."""
    _pair(tmp_path, "p1_001.wav", seed=1)
    _pair(tmp_path, "p2_001.wav", seed=2)
    _paired(tmp_path)
    copy = tmp_path / "copies" / "clean_16k" / "p1_001.wav"
    assert wav_comment(copy).startswith(COPY_PREFIX)
    stamp = os.stat(copy).st_mtime_ns
    for name in ("train.json", "valid.json"):  # a new preparation: copies re-used
        (tmp_path / "prep" / name).unlink()
    _paired(tmp_path)
    assert os.stat(copy).st_mtime_ns == stamp
    # The original is replaced by another recording of the same length.
    _pair(tmp_path, "p1_001.wav", seed=11)
    for name in ("train.json", "valid.json"):
        (tmp_path / "prep" / name).unlink()
    _paired(tmp_path)
    fresh = load_audio(str(tmp_path / "clean" / "p1_001.wav"), 16000)
    assert torch.equal(load_audio(str(copy), 16000), fresh)


def test_paired_uses_a_copy_made_elsewhere_only_if_it_is_the_same_audio(tmp_path):
    """SpeechBrain's own _16k copies: used if they hold the source's audio;
    never replaced (the preparation did not make them)."""
    _pair(tmp_path, "p1_001.wav", seed=1)
    _pair(tmp_path, "p2_001.wav", seed=2)
    theirs = tmp_path / "copies" / "clean_16k" / "p1_001.wav"
    theirs.parent.mkdir(parents=True)
    same = load_audio(str(tmp_path / "clean" / "p1_001.wav"), 16000).numpy()
    sf.write(str(theirs), same, 16000, subtype="PCM_16")  # another writer, 16-bit
    _paired(tmp_path)
    assert wav_comment(theirs) is None  # used as it is, not rewritten
    for name in ("train.json", "valid.json"):
        (tmp_path / "prep" / name).unlink()
    other = speech_like(0.4, 16000, seed=99)
    sf.write(str(theirs), other, 16000, subtype="PCM_16")
    before = theirs.read_bytes()
    with pytest.raises(AudioError, match="is not a 16000 Hz copy of .* not replaced"):
        _paired(tmp_path)
    assert theirs.read_bytes() == before


def test_folders_remake_a_stale_resampled_clean_copy(tmp_path):
    """The folders protocol's clean16k copies were re-used when the length matched."""
    clean = tmp_path / "clean"
    for spk in range(3):
        _speech(clean / f"spk{spk}" / "0.wav", rate=48000, seed=spk)
    options = dict(valid_ratio=0.34, test_ratio=0.34, split_by="file", progress=False)
    noise = _noise(tmp_path / "noise")
    prepare_folders(str(clean), str(tmp_path / "prep"), noise, **options)
    copy = tmp_path / "prep" / "clean16k" / "spk0" / "0.wav.wav"
    assert copy.is_file()
    _speech(clean / "spk0" / "0.wav", rate=48000, seed=42)  # replaced, same length
    (tmp_path / "prep" / "prepare_options.json").unlink()  # prepared again
    prepare_folders(str(clean), str(tmp_path / "prep"), noise, **options)
    fresh = load_audio(str(clean / "spk0" / "0.wav"), 16000)
    assert torch.equal(load_audio(str(copy), 16000), fresh)


def test_quality_never_reuses_scores_of_a_replaced_prepared_corpus(tmp_path):
    """quality.py keyed its work folder on --prepared's path only."""
    from benchmarks import quality
    from tests.integration.recipe_utils import make_prepared

    prepared = make_prepared(tmp_path / "a", speakers=3, utts=1, test_speakers=1)
    common = ["--prepared", str(prepared), "--work", str(tmp_path / "work")]
    common += ["--output", str(tmp_path / "out"), "--systems", "noisy", "--jobs", "1"]
    common += ["--test_utterances", "1", "--dnsmos_utterances", "0", "--rtf_seconds", "0"]
    assert quality.main(common) == 0
    # The corpus is prepared again in the same folder (here: other options).
    options = prepared / "prepare_options.json"
    options.write_text(json.dumps({**json.loads(options.read_text()), "seed": 4321}))
    with pytest.raises(SystemExit, match="other settings \\(prepared_fingerprint\\)"):
        quality.main(common)
