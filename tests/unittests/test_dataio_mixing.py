"""Tests of the noise protocol primitives (dataio.mixing)."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce.dataio import mixing
from speechbrain_fsce.dataio.audio import save_wav
from speechbrain_fsce.dataio.mixing import (
    OnTheFlyMixer,
    build_noise_wav,
    compute_snr,
    mix_at_snr,
    noise_segment,
    random_segment,
    write_fixed_mixtures,
)
from tests.unittests.speechlike import speech_like


@pytest.mark.parametrize("snr", [-5, 0, 7, 15, 30])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mix_at_snr_is_exact(snr, dtype):
    rng = np.random.default_rng(snr + 100)
    clean = speech_like(1.0, seed=snr + 10).astype(dtype)
    noise = (rng.standard_normal(len(clean)) * rng.uniform(0.01, 3)).astype(dtype)
    noisy, added = mix_at_snr(clean, noise, snr)
    assert noisy.dtype == dtype and added.dtype == dtype
    tol = 1e-9 if dtype == np.float64 else 1e-4
    assert abs(compute_snr(clean, added) - snr) < tol
    assert abs(compute_snr(clean, noisy.astype(np.float64) - clean) - snr) < tol
    # The added noise is the given noise, scaled.
    ratio = added.astype(np.float64) / noise
    assert np.allclose(ratio, ratio[0], rtol=1e-5)


def test_mix_at_snr_torch_and_errors():
    clean = torch.from_numpy(speech_like(0.5, seed=3))
    noise = torch.randn(len(clean), generator=torch.Generator().manual_seed(0))
    noisy, _ = mix_at_snr(clean, noise, 3)
    assert isinstance(noisy, torch.Tensor) and noisy.dtype == torch.float32
    assert abs(compute_snr(clean.numpy(), (noisy - clean).numpy()) - 3) < 1e-3
    with pytest.raises(ValueError, match="energy"):
        mix_at_snr(clean, torch.zeros_like(clean), 0)
    with pytest.raises(ValueError, match="equal length"):
        mix_at_snr(clean, noise[:-1], 0)


def test_random_segment_fits_or_wraps():
    noise = np.arange(1, 1001, dtype=np.float64)
    rng = np.random.default_rng(0)
    offsets = []
    for _ in range(200):
        seg, off = random_segment(noise, 300, rng)
        assert 0 <= off <= 700 and np.array_equal(seg, noise[off : off + 300])
        offsets.append(off)
    assert len(set(offsets)) > 100  # really random
    seg, off = random_segment(noise, 2500, rng)
    assert np.array_equal(seg, noise_segment(noise, off, 2500))
    assert np.array_equal(seg[: 1000 - off], noise[off:])
    assert np.array_equal(seg[1000 - off : 2000 - off], noise)


def test_random_segment_redraws_silent_segments():
    noise = np.zeros(100000)
    noise[40000:40100] = 1.0  # 99.9 % digital silence
    rng = np.random.default_rng(1)
    for _ in range(20):
        seg, off = random_segment(noise, 500, rng)
        assert np.sum(seg**2) > 0 and 39501 <= off < 40100
    seg, off = random_segment(noise[39000:40050], 5000, rng)  # wraps
    assert np.sum(seg**2) > 0
    with pytest.raises(ValueError, match="energy"):
        random_segment(np.zeros(1000), 100, rng)


@pytest.fixture
def noise_wav(tmp_path):
    rng = np.random.default_rng(7)
    # Coloured noise with level changes, like concatenated noise types.
    x = np.concatenate(
        [
            rng.standard_normal(16000) * 0.05,
            np.cumsum(rng.standard_normal(16000)) * 0.01,
        ]
    )
    path = tmp_path / "noise_train.wav"
    save_wav(str(path), x.astype(np.float32))
    return str(path)


def test_on_the_fly_mixer_snr_and_determinism(noise_wav):
    clean = torch.from_numpy(speech_like(1.5, seed=5))
    mixer = OnTheFlyMixer(noise_wav, snr_low=-5, snr_high=15, seed=11)
    snrs, outs = [], []
    for _ in range(200):
        noisy, snr = mixer(clean)
        assert isinstance(snr, int) and -5 <= snr <= 15
        measured = compute_snr(clean.numpy(), noisy.numpy().astype(np.float64) - clean.numpy())
        assert abs(measured - snr) < 0.05
        snrs.append(snr)
        outs.append(noisy)
    assert set(snrs) == set(range(-5, 16))  # every integer SNR occurs
    assert not torch.equal(outs[0], outs[1])
    again = OnTheFlyMixer(noise_wav, seed=11)
    for k in range(5):
        noisy, snr = again(clean)
        assert snr == snrs[k] and torch.equal(noisy, outs[k])
    other = OnTheFlyMixer(noise_wav, seed=12)
    assert not all(torch.equal(other(clean)[0], outs[k]) for k in range(3))


def test_on_the_fly_mixer_noise_really_comes_from_the_file(noise_wav):
    noise = sf.read(noise_wav, dtype="float32")[0]
    clean = torch.from_numpy(speech_like(0.5, seed=1))
    mixer = OnTheFlyMixer(noise_wav, seed=3)
    snr, offset = mixer.draw(len(clean))
    fresh = OnTheFlyMixer(noise_wav, seed=3)
    noisy, snr2 = fresh(clean)
    added = (noisy - clean).numpy().astype(np.float64)
    seg = noise_segment(noise, offset, len(clean)).astype(np.float64)
    assert snr2 == snr
    assert abs(np.corrcoef(added, seg)[0, 1] - 1) < 1e-6


class _Clean(torch.utils.data.Dataset):
    def __init__(self, mixer):
        self.mixer = mixer
        self.clean = torch.from_numpy(speech_like(0.3, seed=2))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        noisy, _ = self.mixer(self.clean)
        return noisy


def test_on_the_fly_mixer_workers_and_epochs_differ(noise_wav):
    mixer = OnTheFlyMixer(noise_wav, seed=5)
    loader = torch.utils.data.DataLoader(
        _Clean(mixer), batch_size=1, num_workers=2, multiprocessing_context="fork"
    )
    mixer.set_epoch(1)
    epoch1 = [b[0] for b in loader]
    mixer.set_epoch(2)
    epoch2 = [b[0] for b in loader]
    # Workers 0 and 1 serve items 0 and 1: they must not draw the same noise.
    assert not torch.equal(epoch1[0], epoch1[1])
    assert not torch.equal(epoch1[0], epoch2[0])
    mixer.set_epoch(1)  # what a run resumed at epoch 1 draws
    replay = [b[0] for b in loader]
    assert all(torch.equal(a, b) for a, b in zip(epoch1, replay))


def test_on_the_fly_mixer_ranks_differ_and_resume_replays(noise_wav):
    clean = torch.from_numpy(speech_like(1.0, seed=2))
    draws = {}
    for epoch, rank in ((3, 0), (3, 1), (4, 0)):
        mixer = OnTheFlyMixer(noise_wav, seed=7)
        mixer.set_epoch(epoch, rank)
        draws[epoch, rank] = [mixer(clean)[0] for _ in range(3)] + [mixer.excerpt(clean, 4000)]
    assert not torch.equal(draws[3, 0][0], draws[3, 1][0])
    assert not torch.equal(draws[3, 0][0], draws[4, 0][0])
    fresh = OnTheFlyMixer(noise_wav, seed=7)
    fresh.set_epoch(4, 0)  # a new process resuming at epoch 4
    again = [fresh(clean)[0] for _ in range(3)] + [fresh.excerpt(clean, 4000)]
    assert all(torch.equal(a, b) for a, b in zip(draws[4, 0], again))
    assert len(again[-1]) == 4000


def test_on_the_fly_mixer_in_speechbrain_pipeline(noise_wav, tmp_path):
    import speechbrain as sb

    clean_path = tmp_path / "c.wav"
    save_wav(str(clean_path), speech_like(0.5, seed=4))
    data = {"u1": {"clean_wav": str(clean_path)}, "u2": {"clean_wav": str(clean_path)}}
    mixer = OnTheFlyMixer(noise_wav, seed=0)

    @sb.utils.data_pipeline.takes("clean_wav")
    @sb.utils.data_pipeline.provides("clean_sig", "noisy_sig", "snr")
    def pipeline(clean_wav):
        clean = sb.dataio.dataio.read_audio(clean_wav)
        yield clean
        noisy, snr = mixer(clean)
        yield noisy
        yield snr

    ds = sb.dataio.dataset.DynamicItemDataset(
        data,
        dynamic_items=[pipeline],
        output_keys=["id", "clean_sig", "noisy_sig", "snr"],
    )
    item = ds[0]
    measured = compute_snr(
        item["clean_sig"].numpy(), (item["noisy_sig"] - item["clean_sig"]).numpy()
    )
    assert abs(measured - item["snr"]) < 0.05


def test_build_noise_wav_concatenates_and_skips(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    sf.write(a / "x8k.wav", np.full(8000, 0.1), 8000, subtype="FLOAT")
    sf.write(a / "y.flac", np.stack([np.full(441, 0.2)] * 2, 1), 44100)  # too short
    sf.write(
        b / "z.wav",
        np.stack([np.full(1600, 0.3), np.full(1600, 0.1)], 1),
        16000,
        subtype="FLOAT",
    )
    out = tmp_path / "noise_test.wav"
    rec = build_noise_wav([str(a), str(b)], str(out), progress=False)
    x, sr = sf.read(str(out), dtype="float32")
    assert sr == 16000 and x.ndim == 1 and len(x) == 16000 + 1600 == rec["samples"]
    assert [os.path.basename(f["path"]) for f in rec["files"]] == ["x8k.wav", "z.wav"]
    assert np.allclose(x[16000:], 0.2, atol=1e-6)  # stereo averaged
    stamp = os.stat(out).st_mtime_ns
    build_noise_wav([str(a), str(b)], str(out), progress=False)
    assert os.stat(out).st_mtime_ns == stamp  # unchanged inputs: not rewritten


def _fixed_setup(tmp_path, n=6):
    data = tmp_path / "corpus"
    utts = {}
    for i in range(n):
        path = data / f"spk{i % 2}" / f"u{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, speech_like(0.3 + 0.1 * i, seed=i), 16000, subtype="PCM_16")
        utts[f"u{i}"] = "{data_root}/" + f"spk{i % 2}/u{i}.wav"
    mix_root = tmp_path / "save"
    noise = mix_root / "noise_test.wav"
    save_wav(str(noise), np.random.default_rng(0).standard_normal(12000) * 0.1)
    roots = {"data_root": str(data), "mix_root": str(mix_root)}
    return (
        utts,
        str(noise),
        str(mix_root / "mixtures" / "test"),
        str(mix_root / "test.json"),
        roots,
    )


def _check_manifest_points_at_files(manifest_path, roots):
    if not os.path.isfile(manifest_path):
        return 0
    with open(manifest_path) as f:
        manifest = json.load(f)
    for entry in manifest.values():
        noisy = entry["noisy_wav"].format_map(roots)
        info = sf.info(noisy)
        assert info.frames == round(entry["length"] * 16000)
    return len(manifest)


def test_fixed_mixtures_exact_snr_and_offsets(tmp_path):
    utts, noise, out, manifest_path, roots = _fixed_setup(tmp_path)
    manifest = write_fixed_mixtures(
        utts, noise, out, manifest_path, roots, snrs=[-5, 0, 5, 10], progress=False
    )
    assert len(manifest) == 24
    noise_sig = sf.read(noise, dtype="float32")[0]
    for mix_id, e in manifest.items():
        assert mix_id == f"{e['clean_id']}_snr{e['snr']}"
        assert e["noise_source"] == "noise_test.wav"
        noisy = sf.read(e["noisy_wav"].format_map(roots), dtype="float64")[0]
        clean = sf.read(e["clean_wav"].format_map(roots), dtype="float64")[0]
        added = noisy - clean
        assert abs(compute_snr(clean, added) - e["snr"]) < 0.05
        seg = noise_segment(noise_sig, e["noise_offset"], len(clean)).astype(np.float64)
        assert abs(np.corrcoef(added, seg)[0, 1] - 1) < 1e-6


def test_fixed_mixtures_random_snrs_are_seeded(tmp_path):
    utts, noise, out, manifest_path, roots = _fixed_setup(tmp_path, n=12)
    m1 = write_fixed_mixtures(utts, noise, out, manifest_path, roots, seed=3, progress=False)
    assert len(m1) == 12
    snrs = [e["snr"] for e in m1.values()]
    assert all(isinstance(s, int) and -5 <= s <= 15 for s in snrs)
    assert len(set(snrs)) > 3
    m2 = write_fixed_mixtures(utts, noise, out, manifest_path, roots, seed=4, progress=False)
    assert [e["snr"] for e in m2.values()] != snrs or [e["noise_offset"] for e in m2.values()] != [
        e["noise_offset"] for e in m1.values()
    ]
    # The re-plan replaced the files: none from the seed-3 plan is left over.
    assert sorted(os.listdir(out)) == sorted([".plan.json"] + [k + ".wav" for k in m2])


def _snapshot(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            st = os.stat(os.path.join(root, name))
            out[os.path.join(root, name)] = (st.st_ino, st.st_mtime_ns)
    return out


def test_fixed_mixtures_rerun_is_noop_and_bytes_reproducible(tmp_path):
    utts, noise, out, manifest_path, roots = _fixed_setup(tmp_path)
    write_fixed_mixtures(utts, noise, out, manifest_path, roots, snrs=[0, 5], progress=False)
    before = _snapshot(roots["mix_root"])
    write_fixed_mixtures(utts, noise, out, manifest_path, roots, snrs=[0, 5], progress=False)
    assert _snapshot(roots["mix_root"]) == before
    # Same seed elsewhere: byte-identical wavs and manifest.
    out2, manifest2 = (
        str(tmp_path / "save" / "again"),
        str(tmp_path / "save" / "again.json"),
    )
    write_fixed_mixtures(utts, noise, out2, manifest2, roots, snrs=[0, 5], progress=False)
    for name in os.listdir(out):
        if name.endswith(".wav"):
            with (
                open(os.path.join(out, name), "rb") as f1,
                open(os.path.join(out2, name), "rb") as f2,
            ):
                assert f1.read() == f2.read()


def test_fixed_mixtures_killed_midway_then_resumed(tmp_path, monkeypatch):
    utts, noise, out, manifest_path, roots = _fixed_setup(tmp_path)
    real_save, calls = mixing.save_wav, []

    def dying_save(path, *args, **kwargs):
        if len(calls) == 7:
            # Die half-way through a file, as a kill would.
            with open(path + ".partial", "wb") as f:
                f.write(b"RIFF")
            raise KeyboardInterrupt("killed")
        calls.append(path)
        real_save(path, *args, **kwargs)

    monkeypatch.setattr(mixing, "save_wav", dying_save)
    with pytest.raises(KeyboardInterrupt):
        write_fixed_mixtures(
            utts, noise, out, manifest_path, roots, snrs=[-5, 0, 5, 10], progress=False
        )
    assert not os.path.exists(manifest_path)
    written = _snapshot(out)
    assert len([p for p in written if p.endswith(".wav")]) == 7
    monkeypatch.setattr(mixing, "save_wav", real_save)
    manifest = write_fixed_mixtures(
        utts, noise, out, manifest_path, roots, snrs=[-5, 0, 5, 10], progress=False
    )
    assert _check_manifest_points_at_files(manifest_path, roots) == 24 == len(manifest)
    after = _snapshot(out)
    for path in calls:  # files finished before the kill were kept, not rewritten
        assert after[path] == written[path]
    assert not [p for p in after if p.endswith(".partial")]
    # The resumed result equals an uninterrupted run.
    ref_out = str(tmp_path / "save" / "ref")
    write_fixed_mixtures(
        utts,
        noise,
        ref_out,
        str(tmp_path / "ref.json"),
        roots,
        snrs=[-5, 0, 5, 10],
        progress=False,
    )
    for name in manifest:
        with (
            open(os.path.join(out, name + ".wav"), "rb") as f1,
            open(os.path.join(ref_out, name + ".wav"), "rb") as f2,
        ):
            assert f1.read() == f2.read()


def test_fixed_mixtures_replan_killed_leaves_no_stale_manifest(tmp_path, monkeypatch):
    utts, noise, out, manifest_path, roots = _fixed_setup(tmp_path)
    write_fixed_mixtures(utts, noise, out, manifest_path, roots, seed=1, progress=False)
    assert os.path.isfile(manifest_path)

    def dying_save(path, *args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(mixing, "save_wav", dying_save)
    with pytest.raises(KeyboardInterrupt):
        write_fixed_mixtures(utts, noise, out, manifest_path, roots, seed=2, progress=False)
    # The old manifest would now point at deleted files: it must be gone.
    assert not os.path.exists(manifest_path)


def test_fixed_mixtures_reject_non_16k_reference(tmp_path):
    utts, noise, out, manifest_path, roots = _fixed_setup(tmp_path, n=1)
    sf.write(os.path.join(roots["data_root"], "spk0", "u0.wav"), speech_like(0.3, 8000), 8000)
    with pytest.raises(ValueError, match="16000 Hz"):
        write_fixed_mixtures(utts, noise, out, manifest_path, roots, progress=False)


def test_fixed_mixtures_clean_input_at_infinite_snr(tmp_path):
    utts, noise, out, manifest_path, roots = _fixed_setup(tmp_path)
    manifest = write_fixed_mixtures(
        utts, noise, out, manifest_path, roots, snrs=[0, float("inf")], progress=False
    )
    clean_ids = [m for m in manifest if m.endswith("_snrclean")]
    assert len(clean_ids) == len(utts) and len(manifest) == 2 * len(utts)
    with open(manifest_path) as f:
        stored = json.load(f)  # Infinity round-trips through the JSON
    for mix_id in clean_ids:
        assert stored[mix_id]["snr"] == float("inf")
        noisy = sf.read(stored[mix_id]["noisy_wav"].format_map(roots), dtype="float64")[0]
        clean = sf.read(stored[mix_id]["clean_wav"].format_map(roots), dtype="float64")[0]
        np.testing.assert_allclose(noisy, clean, atol=1e-7)  # float32 file of the clean input


def test_on_the_fly_mixer_clean_share(noise_wav):
    clean = torch.from_numpy(speech_like(1.0, seed=2))
    mixer = OnTheFlyMixer(noise_wav, snr_low=-5, snr_high=25, seed=3, clean_share=0.2)
    draws = [mixer(clean) for _ in range(300)]
    unmixed = [(n, s) for n, s in draws if s == float("inf")]
    assert 35 <= len(unmixed) <= 85  # 20 % of 300 = 60
    assert all(torch.equal(n, clean) for n, _ in unmixed)
    assert {s for _, s in draws if s != float("inf")} == set(range(-5, 26))
    # clean_share=0 keeps the draws of earlier versions (resumed runs replay them).
    plain = OnTheFlyMixer(noise_wav, seed=3)
    same = OnTheFlyMixer(noise_wav, seed=3, clean_share=0.0)
    assert all(torch.equal(plain(clean)[0], same(clean)[0]) for _ in range(5))
    with pytest.raises(ValueError, match="clean_share"):
        OnTheFlyMixer(noise_wav, clean_share=1.0)
