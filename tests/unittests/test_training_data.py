"""Training data: silent training excerpts are redrawn, counted, replayed on
resume and reported per epoch by the Brain (OnTheFlyMixer, FSCEBrain); a data
error in a loader worker stays one line (issue 10, findings 8 and 11)."""

import logging

import numpy as np
import pytest
import torch

from speechbrain_fsce.dataio.audio import save_wav
from speechbrain_fsce.dataio.mixing import OnTheFlyMixer, compute_snr
from tests.unittests.tiny_models import tiny_brain


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
    brain, _ = tiny_brain(tmp_path / "save")
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
