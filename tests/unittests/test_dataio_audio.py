"""Tests of robust audio reading, scanning and writing (dataio.audio)."""

import logging
import os
import time

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from speechbrain_fsce.dataio.audio import (
    AudioError,
    find_audio_files,
    load_audio,
    probe_audio,
    save_wav,
    scan_audio,
)


def tone(seconds=0.5, sample_rate=16000, f0=150.0):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    env = np.sin(np.pi * t / t[-1])
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    return (0.3 * env * x).astype(np.float32)


def test_load_audio_resamples_and_mixes_down(tmp_path):
    x = tone(1.0, 44100)
    stereo = np.stack([x, 0.5 * x], axis=1)
    path = tmp_path / "stereo44k.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    y = load_audio(str(path), 16000)
    assert y.dtype == torch.float32 and y.dim() == 1
    assert len(y) == 16000
    # Same tone, resampled directly: the mono mix is the average level.
    ref = torchaudio.functional.resample(torch.as_tensor(0.75 * x), 44100, 16000)
    assert torch.allclose(y, ref, atol=1e-5)


def test_load_audio_reads_nist_sphere(tmp_path):
    x = tone(0.5)
    path = tmp_path / "SI1027.WAV"
    sf.write(path, x, 16000, format="NIST", subtype="PCM_16")
    assert sf.info(str(path)).format == "NIST"
    y = load_audio(str(path))
    assert np.abs(y.numpy() - x).max() < 1.0 / 32768 + 1e-7


@pytest.mark.parametrize(
    "content,reason",
    [(b"this is a text file, not audio", "unreadable"), (None, "no such file")],
)
def test_load_audio_raises_audio_error(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError) as err:
        load_audio(str(path))
    assert isinstance(err.value, ValueError)
    assert err.value.reason.startswith(reason)
    assert str(path) in str(err.value)


def test_load_audio_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        load_audio(str(path))


def test_find_audio_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_audio_files(str(tmp_path / "missing"), what="noise")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio here")
    with pytest.raises(FileNotFoundError, match="holds no audio"):
        find_audio_files(str(tmp_path / "empty"), what="noise")


def test_scan_skips_bad_files_with_one_summary(tmp_path, caplog):
    folder = tmp_path / "mixed"
    folder.mkdir()
    sf.write(folder / "good.wav", tone(0.5), 16000)
    sf.write(folder / "good_ogg.ogg", tone(0.5, 22050), 22050)
    (folder / "text.wav").write_text("not audio at all")
    sf.write(folder / "silent.flac", np.zeros(8000), 16000)
    sf.write(folder / "short.wav", tone(0.5)[:200], 16000)  # < one 320 frame
    # 44.1 kHz: 800 native samples are 291 at 16 kHz, still too short.
    sf.write(folder / "short44k.wav", tone(0.5, 44100)[:800], 44100)
    (folder / "notes.txt").write_text("ignored: not an audio name")
    with caplog.at_level(logging.WARNING):
        kept, skipped = scan_audio(str(folder), what="noise", progress=False)
    assert sorted(os.path.basename(i.path) for i in kept) == [
        "good.wav",
        "good_ogg.ogg",
    ]
    kinds = sorted(r.split(" ")[0] for r in skipped.values())
    assert kinds == ["silent", "too", "too", "unreadable"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert "skipped 4 of 6 noise files" in msg
    assert "1 silent" in msg and "2 too short" in msg and "1 unreadable" in msg


def test_scan_all_bad_raises(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(8000), 16000)
    with pytest.raises(FileNotFoundError, match="None of the 1"):
        scan_audio(str(tmp_path), progress=False)


def test_probe_reports_native_properties(tmp_path):
    x = tone(0.5, 22050)
    sf.write(tmp_path / "a.flac", np.stack([x, x], 1), 22050)
    info = probe_audio(str(tmp_path / "a.flac"))
    assert (info.sample_rate, info.channels, info.format) == (22050, 2, "FLAC")
    assert info.frames == len(x)
    assert not info.is_reference_ready(16000)
    assert info.frames_at(16000) == len(load_audio(str(tmp_path / "a.flac")))


def test_save_wav_is_exact_atomic_and_reproducible(tmp_path):
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 3
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    save_wav(str(a), x, 16000)
    time.sleep(1.05)  # libsndfile's PEAK chunk would carry a new time stamp
    save_wav(str(b), x, 16000)
    assert a.read_bytes() == b.read_bytes()
    y, sr = sf.read(str(a), dtype="float32")
    assert sr == 16000 and np.array_equal(y, x)  # no clipping above 1.0
    assert not list(tmp_path.glob("*.partial"))
