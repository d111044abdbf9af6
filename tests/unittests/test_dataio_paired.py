"""Paired corpora (VoiceBank-DEMAND layout): matching, checks, resampling,
validation speakers, manifests and same-span training excerpts."""

import json
import os
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce.dataio.audio import load_audio
from speechbrain_fsce.dataio.paired import PairedExcerpts, match_pairs, prepare_paired
from tests.integration.recipe_utils import REPO, make_voicebank_corpus

sys.path.insert(0, str(REPO / "recipes" / "Voicebank"))
from voicebank_prepare import prepare_voicebank  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_voicebank_corpus(tmp_path_factory.mktemp("vb"))


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_voicebank_manifests(corpus, tmp_path):
    resampled = tmp_path / "copies"
    out = prepare_voicebank(str(corpus), str(tmp_path / "prep"), resampled_folder=str(resampled))
    train, valid, test = (_load(out[k]) for k in ("train", "valid", "test"))
    assert sorted(train) == ["p227_001", "p227_002", "p228_001", "p228_002"]
    assert sorted(valid) == ["p226_001", "p226_002", "p287_001", "p287_002"]  # SpeechBrain's
    assert sorted(test) == ["p232_001", "p232_002", "p257_001", "p257_002"]
    item = test["p232_001"]
    assert item["noisy_wav"] == "{resampled_root}/noisy_testset_wav_16k/p232_001.wav"
    assert item["clean_wav"] == "{resampled_root}/clean_testset_wav_16k/p232_001.wav"
    assert item["length"] == pytest.approx(1.2, abs=1e-3) and item["speaker"] == "p232"
    assert abs(item["snr"] - 5) <= 1  # measured from the pair (16-bit files)
    # The copies are the reader's 16 kHz version of the 48 kHz originals.
    copy = str(resampled / "clean_testset_wav_16k" / "p232_001.wav")
    assert sf.info(copy).samplerate == 16000
    original = load_audio(str(corpus / "clean_testset_wav" / "p232_001.wav"), 16000)
    assert torch.equal(load_audio(copy, 16000), original)
    # Copies are written once: a new preparation reuses them.
    stamp = os.stat(copy).st_mtime_ns
    again = prepare_voicebank(str(corpus), str(tmp_path / "prep2"), resampled_folder=str(resampled))
    assert os.stat(copy).st_mtime_ns == stamp
    assert _load(again["test"]) == test


def test_16k_folders_are_used_in_place(tmp_path):
    corpus = make_voicebank_corpus(tmp_path / "vb", rate=16000, seconds=0.6)
    for folder in list(corpus.iterdir()):  # SpeechBrain's download_vctk names
        folder.rename(folder.with_name(folder.name + "_16k"))
    out = prepare_voicebank(str(corpus), str(tmp_path / "prep"))
    item = _load(out["train"])["p227_001"]
    assert item["noisy_wav"] == "{data_root}/noisy_trainset_28spk_wav_16k/p227_001.wav"
    assert out["data_root"] == str(corpus)
    assert not (tmp_path / "prep" / "resampled").exists()


def test_missing_voicebank_folder_is_named(tmp_path):
    (tmp_path / "clean_trainset_28spk_wav").mkdir()
    with pytest.raises(FileNotFoundError, match="noisy_trainset_28spk_wav"):
        prepare_voicebank(str(tmp_path), str(tmp_path / "prep"))


def _pairs(root, names, rate=16000, lengths=None):
    for kind in ("noisy", "clean"):
        (root / kind).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        n = int(0.5 * rate)
        rng = np.random.default_rng(i)
        sig = rng.standard_normal(n) * 0.1
        noise = rng.standard_normal(n) * 0.03  # noisy == clean is refused
        sf.write(str(root / "noisy" / name), sig + noise, rate)
        sf.write(str(root / "clean" / name), sig[: (lengths or {}).get(name, n)], rate)
    return str(root / "noisy"), str(root / "clean")


def test_unmatched_files_are_listed(tmp_path):
    noisy, clean = _pairs(tmp_path, ["a_1.wav", "a_2.wav", "b_1.wav"])
    os.remove(os.path.join(clean, "a_2.wav"))
    sf.write(os.path.join(clean, "c_9.wav"), np.ones(800) * 0.1, 16000)
    with pytest.raises(
        ValueError,
        match=r"1 noisy file\(s\) without a partner.*a_2\.wav"
        r".*1 clean file\(s\) without a partner.*c_9\.wav",
    ):
        match_pairs(noisy, clean)


def test_length_and_rate_checks(tmp_path):
    noisy, clean = _pairs(tmp_path / "len", ["a_1.wav", "b_1.wav"], lengths={"a_1.wav": 4000})
    with pytest.raises(ValueError, match="a_1.wav: 0.500 s long but its clean reference"):
        prepare_paired(
            noisy, clean, str(tmp_path / "t.json"), str(tmp_path / "v.json"), valid_speakers=["b"]
        )
    noisy, clean = _pairs(tmp_path / "rate", ["a_1.wav", "b_1.wav"])
    sf.write(os.path.join(clean, "a_1.wav"), np.ones(4000) * 0.1, 8000)
    with pytest.raises(ValueError, match="sampled at 16000 Hz but its clean reference"):
        prepare_paired(
            noisy, clean, str(tmp_path / "t.json"), str(tmp_path / "v.json"), valid_speakers=["b"]
        )
    # Within the tolerance: both cut to the shorter.
    noisy, clean = _pairs(tmp_path / "ok", ["a_1.wav", "b_1.wav"], lengths={"a_1.wav": 7990})
    out = prepare_paired(
        noisy, clean, str(tmp_path / "ok.json"), str(tmp_path / "okv.json"), valid_speakers=["b"]
    )
    assert _load(out["train"])["a_1"]["length"] == pytest.approx(7990 / 16000)


def test_validation_speakers_must_exist(tmp_path):
    noisy, clean = _pairs(tmp_path, ["a_1.wav", "b_1.wav"])
    with pytest.raises(
        ValueError, match=r"Validation speaker\(s\) \['p226', 'p287'\] have no file"
    ):
        prepare_paired(noisy, clean, str(tmp_path / "t.json"), str(tmp_path / "v.json"))
    out = prepare_paired(
        noisy, clean, str(tmp_path / "t.json"), str(tmp_path / "v.json"), valid_speakers=1
    )
    assert list(_load(out["valid"])) == ["a_1"] and list(_load(out["train"])) == ["b_1"]


def test_excerpts_share_a_span_and_follow_seed_and_epoch():
    noisy = torch.arange(1000.0)
    clean = noisy + 0.5
    excerpts = PairedExcerpts(length=100, seed=3)
    starts = []
    for epoch in (1, 2, 1):
        excerpts.set_epoch(epoch)
        n, c = excerpts("p227_001", noisy, clean)
        assert len(n) == len(c) == 100 and torch.equal(c - n, torch.full((100,), 0.5))
        starts.append(int(n[0]))
    assert starts[0] == starts[2] != starts[1]  # per epoch, reproducible
    other = PairedExcerpts(length=100, seed=4)
    other.set_epoch(1)
    assert int(other("p227_001", noisy, clean)[0][0]) != starts[0]  # per seed
    excerpts.set_epoch(1)
    assert int(excerpts("p227_002", noisy, clean)[0][0]) != starts[0]  # per utterance
    short = PairedExcerpts(length=5000, seed=3)("x", noisy, clean[:900])
    assert len(short[0]) == len(short[1]) == 900  # cut to the shorter, whole


def test_noisy_and_clean_copies_never_collide(tmp_path):
    """Same-named files in same-named sub-folders get separate resampled copies."""
    rng = np.random.default_rng(7)
    for kind in ("noisy", "clean"):
        for spk in ("p1", "p2"):
            (tmp_path / kind / "wav" / spk).mkdir(parents=True)
    for spk in ("p1", "p2"):
        clean = rng.standard_normal(24000) * 0.1
        noise = rng.standard_normal(24000) * 0.1
        sf.write(str(tmp_path / "clean" / "wav" / spk / f"{spk}_001.wav"), clean, 48000)
        sf.write(str(tmp_path / "noisy" / "wav" / spk / f"{spk}_001.wav"), clean + noise, 48000)
    out = prepare_paired(
        str(tmp_path / "noisy"),
        str(tmp_path / "clean"),
        str(tmp_path / "train.json"),
        str(tmp_path / "valid.json"),
        resampled_root=str(tmp_path / "copies"),
        valid_speakers=["p2"],
    )
    train = _load(out["train"])
    assert len(train) == 1  # p1 trains, p2 validates
    item = next(iter(train.values()))
    assert item["noisy_wav"] != item["clean_wav"]
    noisy = load_audio(
        item["noisy_wav"].replace("{resampled_root}", str(tmp_path / "copies")), 16000
    )
    clean = load_audio(
        item["clean_wav"].replace("{resampled_root}", str(tmp_path / "copies")), 16000
    )
    assert (noisy - clean).abs().max() > 0.05
