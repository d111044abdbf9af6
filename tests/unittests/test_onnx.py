"""ONNX export: offline and streaming graphs equal the torch model; torch-free runtime."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.inference.onnx_export import OnnxEnhancer, export_onnx, onnx_enhancer
from speechbrain_fsce.inference.onnx_runtime import OnnxStreamer, enhance_offline
from speechbrain_fsce.inference.streaming import FSCEStreamer
from tests.unittests.tiny_models import SMALL, calibrated

TOLERANCE = 1e-4
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_enhancer(causal, seed=0):
    torch.manual_seed(seed)
    return FSCEEnhancer(calibrated(FSCE(causal=causal, **SMALL))).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One causal and one non-causal export (export takes seconds)."""
    out = {}
    for causal in (True, False):
        folder = str(tmp_path_factory.mktemp("causal" if causal else "noncausal"))
        enhancer = tiny_enhancer(causal)
        export_onnx(enhancer, folder)
        out[causal] = (enhancer, folder)
    return out


@pytest.mark.parametrize("causal", [True, False])
def test_offline_graph_equals_torch(exported, causal):
    """Waveforms in, waveforms out: batch, any length, own level or a given one."""
    enhancer, folder = exported[causal]
    files = sorted(os.listdir(folder))
    assert files == (
        ["fsce_offline.onnx", "fsce_onnx.json", "fsce_stream.onnx"]
        if causal
        else ["fsce_offline.onnx", "fsce_onnx.json"]
    )
    torch.manual_seed(1)
    x = torch.randn(2, 9000) * torch.tensor([[0.2], [0.02]])  # not the traced shape
    onnx = OnnxEnhancer(folder, enhancer.front_end)
    with torch.no_grad():
        ref = enhancer(x)
        assert ref.abs().max() > 0.01
        assert (onnx(x) - ref).abs().max() <= TOLERANCE
        scale = torch.tensor([[0.05], [0.3]])
        ref = enhancer(x[:, :4801], scale=scale)
        assert (onnx(x[:, :4801], scale=scale) - ref).abs().max() <= TOLERANCE
        lengths = torch.tensor([1.0, 0.5])
        ref = enhancer(x, lengths)
        assert (onnx(x, lengths) - ref).abs().max() <= TOLERANCE


@pytest.mark.parametrize("causal", [True, False])
def test_numpy_offline_and_onnx_enhancer_equal_torch_waveform(exported, causal):
    enhancer, folder = exported[causal]
    torch.manual_seed(2)
    x = torch.randn(16000 + 77) * 0.2
    with torch.no_grad():
        ref = enhancer(x)
    assert (torch.from_numpy(enhance_offline(folder, x.numpy())) - ref).abs().max() <= TOLERANCE
    with torch.no_grad():
        y = onnx_enhancer(enhancer)(x)
    assert (y - ref).abs().max() <= TOLERANCE


def test_stream_graph_equals_torch_offline_causal(exported):
    enhancer, folder = exported[True]
    config = json.load(open(os.path.join(folder, "fsce_onnx.json")))
    names = [s["name"] for s in config["state"]]
    assert (
        names
        == list(enhancer.init_state(1))
        == ["input.previous_hop", "output.overlap"] + [n for n in enhancer.model.state_names()]
    )
    torch.manual_seed(3)
    x = torch.randn(2, 320 * 160 + 93) * 0.3  # > 300 hops, batch 2, not whole hops
    scale = 0.3
    with torch.no_grad():
        ref = enhancer(x, scale=torch.full((2, 1), scale))
    streamer = OnnxStreamer(folder, scale=scale)
    pieces = [streamer.process(x[:, i : i + 160].numpy()) for i in range(0, x.shape[1], 160)]
    y = np.concatenate(pieces + [streamer.flush()], axis=1)[:, streamer.latency_samples :]
    assert y.shape == tuple(x.shape)
    assert ref.abs().max() > 0.05
    assert np.abs(y - ref.numpy()).max() <= TOLERANCE


def test_onnx_only_example_runs_without_torch_and_equals_torch_streamer(exported, tmp_path):
    enhancer, folder = exported[True]
    rng = np.random.default_rng(4)
    noisy = (rng.standard_normal(16000 * 2 + 51) * 0.1).astype(np.float32)
    sf.write(tmp_path / "noisy.wav", noisy, 16000, subtype="FLOAT")
    out = tmp_path / "enhanced.wav"
    example = os.path.join(ROOT, "recipes", "examples", "stream_onnx.py")
    blocked = (
        "import sys, runpy; sys.modules['torch'] = None; sys.modules['speechbrain'] = None; "
        f"sys.argv = [{example!r}, '--onnx', {folder!r}, {str(tmp_path / 'noisy.wav')!r}, "
        f"'-o', {str(out)!r}, '--scale', '0.1']; runpy.run_path({example!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "per-hop CPU time" in result.stdout
    y, rate = sf.read(out, dtype="float32")
    streamer = FSCEStreamer(enhancer, scale=0.1)
    x = torch.from_numpy(noisy)
    ref = torch.cat(
        [streamer.process(x[i : i + 160]) for i in range(0, x.shape[0], 160)] + [streamer.flush()]
    )
    ref = ref[streamer.latency_samples :].numpy()
    assert rate == 16000 and y.shape == ref.shape == noisy.shape
    assert np.abs(ref).max() > 0.02
    assert np.abs(y - ref).max() <= TOLERANCE


def test_runtime_refuses_bad_input(exported, tmp_path):
    _, folder = exported[False]
    with pytest.raises(ValueError, match="not causal"):
        OnnxStreamer(folder)
    with pytest.raises(FileNotFoundError, match="fsce-export --onnx"):
        OnnxStreamer(str(tmp_path))
    with pytest.raises(ValueError, match="finite positive"):
        OnnxStreamer(exported[True][1], scale=0.0)
    streamer = OnnxStreamer(exported[True][1])
    with pytest.raises(ValueError, match="NaN or Inf"):
        streamer.process(np.full(160, np.nan, np.float32))


def test_fsce_streamer_onnx_backend_equals_torch_backend(exported):
    enhancer, _ = exported[True]
    torch.manual_seed(6)
    x = torch.randn(3000) * 0.2
    outs = {}
    for backend in ("torch", "onnx"):
        streamer = FSCEStreamer(enhancer, scale=0.2, backend=backend)
        parts = [streamer.process(x[i : i + 160]) for i in range(0, 3000, 160)]
        assert streamer.samples_in == 3000
        outs[backend] = torch.cat(parts + [streamer.flush()])
    assert outs["torch"].shape == outs["onnx"].shape == (3000 + 160,)
    assert outs["torch"].abs().max() > 0.02
    assert (outs["torch"] - outs["onnx"]).abs().max() <= TOLERANCE
    with pytest.raises(ValueError, match="backend must be"):
        FSCEStreamer(enhancer, backend="tensorrt")
