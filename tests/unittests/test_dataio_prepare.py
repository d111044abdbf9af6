"""Tests of the corpus preparations (TIMIT, folders) and their contract."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from speechbrain_fsce.dataio import (
    mixing,
    prepare_corpus,
    prepare_folders,
    prepare_timit,
)
from speechbrain_fsce.dataio.mixing import compute_snr, noise_segment
from speechbrain_fsce.dataio.timit import CORE_TEST_SPEAKERS
from tests.unittests.speechlike import speech_like

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TRAIN_SPEAKERS = {
    "DR1": ["FAAA0", "MBBB0", "MCCC0", "FDDD0"],
    "DR2": ["MEEE0", "FFFF0", "MGGG0"],
}
TEST_SPEAKERS = {"DR1": ["MDAB0", "MTST0"], "DR2": ["MTAS1", "FTST1"]}
SENTENCES = ["SA1", "SA2", "SI{}", "SX{}", "SX{}1"]


def make_fake_timit(root, upper=True, riff_copies=False):
    """Tiny TIMIT: NIST-SPHERE speech-like files, 3 SI/SX + 2 SA each."""
    seed = 0
    for split, speakers in [("TRAIN", TRAIN_SPEAKERS), ("TEST", TEST_SPEAKERS)]:
        for dr, spks in speakers.items():
            for spk in spks:
                for k, sent in enumerate(SENTENCES):
                    name = sent.format(100 + seed) + ".WAV"
                    parts = [split, dr, spk, name]
                    if not upper:
                        parts = [p.lower() for p in parts]
                    path = os.path.join(root, *parts)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    f0 = 110.0 if spk.startswith("M") else 210.0
                    x = speech_like(0.4 + 0.05 * k, 16000, seed=seed, f0=f0)
                    sf.write(path, x, 16000, format="NIST", subtype="PCM_16")
                    if riff_copies:
                        sf.write(path + ".wav", x, 16000, subtype="PCM_16")
                    # TIMIT's transcription files sit beside the audio.
                    with open(os.path.splitext(path)[0] + (".PHN" if upper else ".phn"), "w") as f:
                        f.write("0 100 h#\n")
                    seed += 1
    return root


def make_noise(root):
    """Training noise at other rates/channels and an unseen test noise."""
    rng = np.random.default_rng(0)
    train = os.path.join(root, "noise_train")
    test = os.path.join(root, "noise_test")
    os.makedirs(train), os.makedirs(test)
    sf.write(os.path.join(train, "white8k.wav"), 0.1 * rng.standard_normal(8000), 8000)
    brown = np.cumsum(rng.standard_normal((22050, 2)), axis=0)
    sf.write(
        os.path.join(train, "brown_stereo.flac"),
        0.9 * brown / np.abs(brown).max(),
        22050,
    )
    sf.write(os.path.join(train, "silence.wav"), np.zeros(16000), 16000)  # skipped
    t = np.arange(44100) / 44100
    hum = 0.2 * np.sin(2 * np.pi * 100 * t) + 0.05 * rng.standard_normal(44100)
    sf.write(os.path.join(test, "hum44k.wav"), hum, 44100)
    return train, test


@pytest.fixture(scope="module")
def timit_prepared(tmp_path_factory):
    base = tmp_path_factory.mktemp("timit")
    data = make_fake_timit(str(base / "TIMIT"), upper=True)
    noise_train, noise_test = make_noise(str(base))
    save = str(base / "prep")
    out = prepare_timit(
        data,
        save,
        noise_train,
        noise_test,
        valid_speakers=["FDDD0", "MGGG0"],
        progress=False,
    )
    return {
        "data": data,
        "save": save,
        "out": out,
        "noise": (noise_train, noise_test),
        "base": base,
    }


def load(path):
    with open(path) as f:
        return json.load(f)


def snapshot(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            st = os.stat(os.path.join(root, name))
            out[os.path.join(root, name)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def test_fake_timit_is_nist(timit_prepared):
    path = os.path.join(timit_prepared["data"], "TRAIN", "DR1", "FAAA0", "SI102.WAV")
    assert sf.info(path).format == "NIST"


def test_timit_manifests(timit_prepared):
    out, data, save = (
        timit_prepared["out"],
        timit_prepared["data"],
        timit_prepared["save"],
    )
    assert out["data_root"] == os.path.abspath(data) and out["mix_root"] == os.path.abspath(save)
    roots = {"data_root": out["data_root"], "mix_root": out["mix_root"]}
    train, valid, test = load(out["train"]), load(out["valid"]), load(out["test"])

    # 7 train speakers - 2 held out = 5 speakers x 3 sentences (SA excluded).
    assert len(train) == 15 and len(valid) == 6 and len(test) == 4 * 3 * 4
    assert "dr1_faaa0_si102" in train
    assert not any("_sa" in k for k in list(train) + list(valid) + list(test))
    for utt_id, e in train.items():
        assert set(e) == {"clean_wav", "length", "speaker"}
        assert e["clean_wav"].startswith("{data_root}/TRAIN/DR")
        assert e["clean_wav"].endswith(".WAV")
        path = e["clean_wav"].format_map(roots)
        assert os.path.isfile(path)
        assert e["length"] == pytest.approx(sf.info(path).frames / 16000)
        assert utt_id.startswith("dr") and e["speaker"] == utt_id.split("_")[1]
    train_spk = {e["speaker"] for e in train.values()}
    valid_spk = {e["clean_id"].split("_")[1] for e in valid.values()}
    assert valid_spk == {"fddd0", "mggg0"} and not train_spk & valid_spk

    for mix_id, e in valid.items():
        assert set(e) == {
            "noisy_wav",
            "clean_wav",
            "length",
            "snr",
            "clean_id",
            "noise_source",
            "noise_offset",
        }
        assert isinstance(e["snr"], int) and -5 <= e["snr"] <= 15
        assert e["noise_source"] == "noise_train.wav"
        assert e["noisy_wav"] == "{mix_root}/mixtures/valid/" + mix_id + ".wav"
        assert e["clean_wav"].startswith("{data_root}/TRAIN/")
    by_clean = {}
    for e in test.values():
        by_clean.setdefault(e["clean_id"], []).append(e["snr"])
        assert e["noise_source"] == "noise_test.wav"
        assert e["clean_wav"].startswith("{data_root}/TEST/")
    assert all(sorted(s) == [-5, 0, 5, 10] for s in by_clean.values())
    assert {k.split("_")[1] for k in by_clean} == {"mdab0", "mtst0", "mtas1", "ftst1"}


def test_timit_noise_files(timit_prepared):
    out = timit_prepared["out"]
    tr, sr_tr = sf.read(out["noise_train"], dtype="float32")
    te, sr_te = sf.read(out["noise_test"], dtype="float32")
    assert sr_tr == sr_te == 16000 and tr.ndim == te.ndim == 1
    # 1 s at 8 kHz + 1 s at 22.05 kHz, both resampled; the silent file skipped.
    assert len(tr) == 16000 + 16000
    # Test noise = training noise followed by the unseen 1 s at 44.1 kHz.
    assert len(te) == len(tr) + 16000 and np.array_equal(te[: len(tr)], tr)
    sources = load(os.path.splitext(out["noise_test"])[0] + ".sources.json")
    assert [os.path.basename(f["path"]) for f in sources["files"]] == [
        "brown_stereo.flac",
        "white8k.wav",
        "hum44k.wav",
    ]


def check_every_mixture(manifest_path, roots, noise_folder):
    """Measured SNR within 0.05 dB of the label; noise really from the offset."""
    manifest = load(manifest_path)
    noises = {}
    for e in manifest.values():
        noisy = sf.read(e["noisy_wav"].format_map(roots), dtype="float64")[0]
        clean = sf.read(e["clean_wav"].format_map(roots), dtype="float64")[0]
        assert len(noisy) == len(clean) == round(e["length"] * 16000)
        added = noisy - clean
        assert abs(compute_snr(clean, added) - e["snr"]) < 0.05
        if e["noise_source"] not in noises:
            noises[e["noise_source"]] = sf.read(os.path.join(noise_folder, e["noise_source"]))[0]
        seg = noise_segment(noises[e["noise_source"]], e["noise_offset"], len(clean))
        assert np.corrcoef(added, seg)[0, 1] > 0.99999
    return len(manifest)


def test_timit_every_mixture_has_its_snr(timit_prepared):
    out = timit_prepared["out"]
    roots = {"data_root": out["data_root"], "mix_root": out["mix_root"]}
    assert check_every_mixture(out["valid"], roots, out["mix_root"]) == 6
    assert check_every_mixture(out["test"], roots, out["mix_root"]) == 48


def test_manifests_load_in_speechbrain(timit_prepared):
    import speechbrain as sb

    out = timit_prepared["out"]
    roots = {"data_root": out["data_root"], "mix_root": out["mix_root"]}
    ds = sb.dataio.dataset.DynamicItemDataset.from_json(out["test"], replacements=roots)
    ds.set_output_keys(["id", "noisy_wav", "clean_wav", "snr"])
    item = ds[0]
    noisy = sb.dataio.dataio.read_audio(item["noisy_wav"])
    clean = sb.dataio.dataio.read_audio(item["clean_wav"])
    assert abs(compute_snr(clean.numpy(), (noisy - clean).numpy()) - item["snr"]) < 0.05
    train = sb.dataio.dataset.DynamicItemDataset.from_json(out["train"], replacements=roots)
    assert len(train) == 15


def test_timit_second_run_rewrites_nothing(timit_prepared):
    save = timit_prepared["save"]
    before = snapshot(save)
    out = prepare_timit(
        timit_prepared["data"],
        save,
        *timit_prepared["noise"],
        valid_speakers=["FDDD0", "MGGG0"],
        progress=False,
    )
    assert snapshot(save) == before
    assert out == timit_prepared["out"]


def test_timit_lower_case_layout_riff_copies_and_core_test(tmp_path):
    make_fake_timit(str(tmp_path / "corpus" / "timit"), upper=False, riff_copies=True)
    noise_train, _ = make_noise(str(tmp_path))
    # data_folder one level above the corpus, no test noise, core test only.
    out = prepare_corpus(
        "timit",
        str(tmp_path / "corpus"),
        str(tmp_path / "prep"),
        noise_train,
        core_test_only=True,
        valid_speakers=1,
        progress=False,
    )
    train, valid, test = load(out["train"]), load(out["valid"]), load(out["test"])
    e = train[min(train)]
    assert e["clean_wav"].startswith("{data_root}/timit/train/dr")
    assert e["clean_wav"].endswith(".wav") and not e["clean_wav"].endswith(".wav.wav")
    # valid_speakers=1: one speaker per dialect region.
    assert len({e["clean_id"].split("_")[:2][1] for e in valid.values()}) == 2
    assert len(train) + len(valid) == 7 * 3
    core = {e["clean_id"].split("_")[1] for e in test.values()}
    assert core == {"mdab0", "mtas1"} and core <= set(CORE_TEST_SPEAKERS)
    assert {e["noise_source"] for e in test.values()} == {"noise_test.wav"}
    assert np.array_equal(sf.read(out["noise_test"])[0], sf.read(out["noise_train"])[0])
    roots = {"data_root": out["data_root"], "mix_root": out["mix_root"]}
    check_every_mixture(out["test"], roots, out["mix_root"])


def test_timit_missing_corpus_message(tmp_path):
    noise_train, _ = make_noise(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--data_folder") as err:
        prepare_timit(str(tmp_path / "nowhere"), str(tmp_path / "prep"), noise_train)
    assert "TRAIN/DR1/FCJF0/SI1027.WAV" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no TRAIN and TEST"):
        prepare_timit(str(tmp_path / "empty"), str(tmp_path / "prep"), noise_train)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    data = make_fake_timit(str(tmp_path / "TIMIT"))
    noise_train, noise_test = make_noise(str(tmp_path))
    outs = []
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        outs.append(
            prepare_timit(
                data,
                str(tmp_path / name),
                noise_train,
                noise_test,
                seed=seed,
                progress=False,
            )
        )

    def files(out):
        root = out["mix_root"]
        found = {}
        for dirpath, _, names in os.walk(root):
            for n in names:
                if (
                    n.endswith((".wav", ".json"))
                    and not n.endswith(".sources.json")
                    and n != ".plan.json"
                ):
                    if n == "prepare_options.json":
                        continue
                    with open(os.path.join(dirpath, n), "rb") as f:
                        found[os.path.relpath(os.path.join(dirpath, n), root)] = f.read()
        return found

    a, b, c = files(outs[0]), files(outs[1]), files(outs[2])
    assert len(a) > 50 and a == b
    assert a["test.json"] != c["test.json"]


def test_prepare_killed_midway_then_resumed(tmp_path, monkeypatch):
    data = make_fake_timit(str(tmp_path / "TIMIT"))
    noise_train, noise_test = make_noise(str(tmp_path))
    save = str(tmp_path / "prep")
    real_save, count = mixing.save_wav, [0]

    def dying_save(path, *args, **kwargs):
        count[0] += 1
        if count[0] > 20:  # dies during the test mixtures
            raise KeyboardInterrupt("killed")
        real_save(path, *args, **kwargs)

    monkeypatch.setattr(mixing, "save_wav", dying_save)
    with pytest.raises(KeyboardInterrupt):
        prepare_timit(data, save, noise_train, noise_test, progress=False)
    roots = {"data_root": os.path.abspath(data), "mix_root": os.path.abspath(save)}
    assert not os.path.exists(os.path.join(save, "prepare_options.json"))
    assert not os.path.exists(os.path.join(save, "test.json"))
    for name in ("train.json", "valid.json", "test.json"):  # whatever exists is whole
        path = os.path.join(save, name)
        if os.path.exists(path):
            for e in load(path).values():
                for key in ("clean_wav", "noisy_wav"):
                    if key in e:
                        sf.info(e[key].format_map(roots))
    monkeypatch.setattr(mixing, "save_wav", real_save)
    out = prepare_timit(data, save, noise_train, noise_test, progress=False)
    assert check_every_mixture(out["test"], roots, save) == 48
    assert check_every_mixture(out["valid"], roots, save) > 0
    assert len(load(out["train"])) > 0


def test_changed_options_reprepare(tmp_path):
    data = make_fake_timit(str(tmp_path / "TIMIT"))
    noise_train, noise_test = make_noise(str(tmp_path))
    save = str(tmp_path / "prep")
    out1 = prepare_timit(data, save, noise_train, noise_test, seed=1, progress=False)
    test1 = load(out1["test"])
    out2 = prepare_timit(data, save, noise_train, noise_test, seed=2, progress=False)
    test2 = load(out2["test"])
    assert [e["noise_offset"] for e in test1.values()] != [
        e["noise_offset"] for e in test2.values()
    ]
    roots = {"data_root": out2["data_root"], "mix_root": out2["mix_root"]}
    check_every_mixture(out2["test"], roots, save)


def write_folder_corpus(root, speakers=("ann", "bob", "cid", "dan", "eve"), per_speaker=3):
    seed = 100
    for spk in speakers:
        for k in range(per_speaker):
            path = os.path.join(root, spk, f"{spk}_{k}.wav")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            sf.write(path, speech_like(0.4, 16000, seed=seed), 16000, subtype="PCM_16")
            seed += 1
    return root


def test_folders_split_by_speaker_with_bad_inputs(tmp_path, caplog):
    clean = write_folder_corpus(str(tmp_path / "clean"))
    # Bad or unusual inputs among the clean files.
    with open(os.path.join(clean, "ann", "notes.wav"), "w") as f:
        f.write("not audio")
    sf.write(os.path.join(clean, "bob", "silent.wav"), np.zeros(8000), 16000)
    sf.write(os.path.join(clean, "cid", "short.wav"), speech_like(0.4)[:100], 16000)
    x44 = speech_like(0.5, 44100, seed=9)
    sf.write(os.path.join(clean, "dan", "stereo44k.wav"), np.stack([x44, x44], 1), 44100)
    sf.write(os.path.join(clean, "eve", "e.ogg"), speech_like(0.5, 16000, seed=8), 16000)
    noise_train, noise_test = make_noise(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        out = prepare_folders(
            clean,
            str(tmp_path / "prep"),
            noise_train,
            noise_test,
            valid_ratio=0.2,
            test_ratio=0.2,
            progress=False,
        )
    summary = [r.getMessage() for r in caplog.records if "clean speech files" in r.getMessage()]
    assert len(summary) == 1
    assert "skipped 3 of 20" in summary[0] and "1 silent" in summary[0]
    assert "1 too short" in summary[0] and "1 unreadable" in summary[0]

    roots = {"data_root": out["data_root"], "mix_root": out["mix_root"]}
    train, valid, test = load(out["train"]), load(out["valid"]), load(out["test"])
    every = (
        list(train)
        + [e["clean_id"] for e in valid.values()]
        + [e["clean_id"] for e in test.values()]
    )
    assert not any(k.endswith(("notes", "silent", "short")) for k in every)
    assert len(set(every)) == 17

    def spk(k):
        return k.split("_")[0]

    sets = [
        {spk(k) for k in train},
        {spk(e["clean_id"]) for e in valid.values()},
        {spk(e["clean_id"]) for e in test.values()},
    ]
    assert [len(s) for s in sets] == [3, 1, 1]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert all(e["speaker"] == spk(k) for k, e in train.items())

    # The 44.1 kHz stereo file and the OGG one are referenced through 16 kHz copies.
    refs = {k: e["clean_wav"] for k, e in train.items()}
    refs.update({e["clean_id"]: e["clean_wav"] for m in (valid, test) for e in m.values()})
    assert refs["dan_stereo44k"] == "{mix_root}/clean16k/dan/stereo44k.wav.wav"
    assert refs["eve_e"] == "{mix_root}/clean16k/eve/e.ogg.wav"
    assert refs["ann_ann_0"] == "{data_root}/ann/ann_0.wav"
    info = sf.info(refs["dan_stereo44k"].format_map(roots))
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 8000)
    check_every_mixture(out["test"], roots, out["mix_root"])
    check_every_mixture(out["valid"], roots, out["mix_root"])


def test_folders_split_by_file_and_separate_test_folder(tmp_path):
    clean = str(tmp_path / "clean")
    os.makedirs(clean)
    for k in range(10):  # no speaker sub-folders
        sf.write(os.path.join(clean, f"f{k}.wav"), speech_like(0.3, seed=k), 16000)
    test_clean = write_folder_corpus(str(tmp_path / "test_clean"), speakers=("zed",), per_speaker=2)
    noise_train, noise_test = make_noise(str(tmp_path))
    out = prepare_folders(
        clean,
        str(tmp_path / "prep"),
        noise_train,
        noise_test,
        clean_test_folder=test_clean,
        progress=False,
    )
    train, valid, test = load(out["train"]), load(out["valid"]), load(out["test"])
    assert len(train) == 9 and len(valid) == 1 and len(test) == 2 * 4
    assert all(e["speaker"] == k for k, e in train.items())  # own id without a speaker
    assert all(e["clean_wav"].startswith("{mix_root}/clean16k_test/zed/") for e in test.values())
    roots = {"data_root": out["data_root"], "mix_root": out["mix_root"]}
    check_every_mixture(out["test"], roots, out["mix_root"])


def test_folders_errors(tmp_path):
    noise_train, _ = make_noise(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no audio"):
        prepare_folders(str(tmp_path / "empty"), str(tmp_path / "p"), noise_train)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_folders(str(tmp_path / "missing"), str(tmp_path / "p"), noise_train)
    clean = write_folder_corpus(str(tmp_path / "clean"), speakers=("a", "b"))
    with pytest.raises(FileNotFoundError, match="noise folder"):
        prepare_folders(clean, str(tmp_path / "p"), str(tmp_path / "no_noise"))
    with pytest.raises(ValueError, match="too few"):
        prepare_folders(clean, str(tmp_path / "p"), noise_train, split_by="speaker")
    with pytest.raises(ValueError, match="Unknown corpus"):
        prepare_corpus("voicebank", clean, str(tmp_path / "p"), noise_train)


def test_folders_cli(tmp_path):
    clean = write_folder_corpus(str(tmp_path / "clean"), speakers=("a", "b", "c"), per_speaker=1)
    noise_train, noise_test = make_noise(str(tmp_path))
    save = str(tmp_path / "prep")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(
        [sys.executable, "-m", "speechbrain_fsce.dataio.folders", "--clean_folder", clean,
         "--noise_folder", noise_train, "--test_noise_folder", noise_test,
         "--save_folder", save, "--no_progress"],
        check=False, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["train"] == os.path.join(save, "train.json")
    assert len(load(out["test"])) == 4 and len(load(out["valid"])) == 1
