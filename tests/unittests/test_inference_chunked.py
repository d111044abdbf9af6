"""Chunked enhancement of long signals and files: agreement and bounded memory."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.dataio.audio import AudioError, load_audio
from speechbrain_fsce.inference import chunked
from speechbrain_fsce.inference.chunked import (
    ChunkPlan,
    StreamingResampler,
    enhance_chunked,
    enhance_file_chunked,
    read_blocks,
)
from speechbrain_fsce.metrics import sisdr
from tests.unittests.tiny_models import SMALL, calibrated

TOLERANCE = 1e-5  # chunked = whole-signal enhancement up to float32 rounding


def make_enhancer(causal=False, seed=0, device="cpu"):
    torch.manual_seed(seed)
    return FSCEEnhancer(calibrated(FSCE(causal=causal, **SMALL))).to(device).eval()


def whole(enhancer, x):
    with torch.no_grad():
        return enhancer(x.unsqueeze(0))[0]


@pytest.mark.parametrize(
    "orig,new,block",
    [
        (44100, 16000, 5000),
        (8000, 16000, 999),
        (48000, 16000, 4800),
        (16000, 44100, 1234),
        (22050, 16000, 77),
    ],
)
def test_streaming_resampler_equals_one_call(orig, new, block):
    torch.manual_seed(0)
    x = torch.randn(orig // 2 + 13)
    rs = StreamingResampler(orig, new)
    y = torch.cat([rs.push(x[i : i + block]) for i in range(0, x.shape[0], block)] + [rs.flush()])
    ref = torchaudio.functional.resample(x, orig, new)
    assert y.shape == ref.shape
    assert (y - ref).abs().max() < 1e-5


def test_chunk_plan_defaults_cover_the_receptive_field():
    plan = ChunkPlan(FSCEEnhancer(FSCE()), chunk_seconds=20)
    # 388 past / 378 future frames + 2 STFT frames, + half the cross-fade.
    assert plan.context >= 390 * 160 + plan.crossfade // 2
    assert plan.chunk == 20 * 16000 and plan.chunk % 160 == 0 and plan.context % 160 == 0


@pytest.mark.parametrize("chunk_seconds,crossfade_seconds", [(0.5, 0.25), (0.33, 0.1), (0.2, 0.0)])
def test_chunked_matches_whole_noncausal(chunk_seconds, crossfade_seconds, device):
    enhancer = make_enhancer(device=device)
    torch.manual_seed(1)
    x = (torch.randn(3 * 16000 + 77) * 0.2).to(device)  # many chunks, not whole hops
    ref = whole(enhancer, x)
    y = enhance_chunked(
        enhancer, x, chunk_seconds=chunk_seconds, crossfade_seconds=crossfade_seconds
    )
    assert y.shape == ref.shape
    assert ref.abs().max() > 0.05
    assert (y - ref).abs().max() <= TOLERANCE


@pytest.mark.parametrize("frames_short", [8, 2])
def test_short_context_is_an_approximation(frames_short):
    """Less context than the receptive field is cheaper but not exact (the default keeps one spare frame)."""
    enhancer = make_enhancer()
    torch.manual_seed(1)
    x = torch.randn(2 * 16000) * 0.2
    ref = whole(enhancer, x)
    exact = ChunkPlan(enhancer, chunk_seconds=0.25, crossfade_seconds=0.04).context
    short = (exact - frames_short * 160) / 16000
    approx = enhance_chunked(
        enhancer, x, chunk_seconds=0.25, context_seconds=short, crossfade_seconds=0.04
    )
    assert (approx - ref).abs().max() > TOLERANCE  # the equality tests above would notice
    assert torch.isfinite(approx).all()


def test_chunked_matches_whole_causal(device):
    enhancer = make_enhancer(causal=True, device=device)
    torch.manual_seed(2)
    x = (torch.randn(2 * 16000 + 5) * 0.2).to(device)
    ref = whole(enhancer, x)
    y = enhance_chunked(enhancer, x, chunk_seconds=0.3)
    assert y.shape == ref.shape and ref.abs().max() > 0.01
    assert (y - ref).abs().max() <= TOLERANCE


def test_segments_stay_bounded(monkeypatch):
    """Memory is bounded: no segment is longer than chunk + 2 * context."""
    enhancer = make_enhancer()
    seen = []
    original = chunked._enhance_segment

    def spy(enh, seg, scale):
        seen.append(seg.shape[0])
        return original(enh, seg, scale)

    monkeypatch.setattr(chunked, "_enhance_segment", spy)
    plan = ChunkPlan(enhancer, chunk_seconds=0.25)
    x = torch.randn(5 * 16000) * 0.1
    enhance_chunked(enhancer, x, chunk_seconds=0.25)
    assert len(seen) >= 15
    assert max(seen) <= plan.chunk + 2 * plan.context


def test_file_blocks_equal_load_audio(tmp_path):
    path = str(tmp_path / "x.wav")
    rng = np.random.default_rng(0)
    sf.write(path, rng.standard_normal((44100 + 11, 2)) * 0.1, 44100, subtype="PCM_24")
    blocks = list(read_blocks(path, 16000, block_seconds=0.13))
    ref = load_audio(path, 16000)
    assert torch.allclose(torch.cat(blocks), ref, atol=1e-5)
    scale = float(FSCEEnhancer(FSCE(**SMALL)).front_end.level(blocks))
    assert sum(b.shape[0] for b in blocks) == ref.shape[0]
    assert abs(scale - float(ref.pow(2).mean().sqrt())) < 1e-6


@pytest.mark.parametrize("causal", [False, True])
def test_file_chunked_matches_whole_file(tmp_path, causal):
    enhancer = make_enhancer(causal=causal)
    path = str(tmp_path / "in.wav")
    rng = np.random.default_rng(1)
    sf.write(path, rng.standard_normal((48000 * 2, 2)) * 0.1, 48000)
    ref = whole(enhancer, load_audio(path, 16000))
    out = str(tmp_path / "out.wav")
    info = enhance_file_chunked(enhancer, path, out, chunk_seconds=0.4, block_seconds=0.37)
    y, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and info["output_samples"] == y.shape[0] == ref.shape[0]
    assert sisdr(ref, y) >= 40.0
    # --keep-rate: back at 48 kHz with the input's length.
    info = enhance_file_chunked(enhancer, path, out, chunk_seconds=0.4, keep_rate=True)
    assert sf.info(out).samplerate == 48000 and sf.info(out).frames == 48000 * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.wav"]


def test_file_chunked_bad_inputs(tmp_path):
    enhancer = make_enhancer()
    nan = tmp_path / "nan.wav"
    x = np.zeros(40000)
    x[30000] = np.nan  # found in the middle of the file, after blocks were read
    sf.write(str(nan), x, 16000, subtype="FLOAT")
    out = tmp_path / "out.wav"
    with pytest.raises(AudioError, match="nan.wav: contains NaN or Inf"):
        enhance_file_chunked(enhancer, str(nan), str(out), block_seconds=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.wav"]  # no partial output
    with pytest.raises(AudioError, match="no such file"):
        enhance_file_chunked(enhancer, str(tmp_path / "missing.wav"), str(out))
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(8000), 16000)
    enhance_file_chunked(enhancer, str(silent), str(out))
    y, _ = sf.read(str(out))
    assert np.all(np.isfinite(y)) and np.abs(y).max() < 1e-6
    with pytest.raises(AudioError, match="refusing to overwrite"):
        enhance_file_chunked(enhancer, str(silent), str(silent))
