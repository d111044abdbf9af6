"""dataio.audio (load_audio, read_blocks) at odd sampling rates (no small
common factor with the model rate): read in bounded memory and resampled
correctly (issue 10, finding 6)."""

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

CHILD = r"""
import json, resource, sys
import numpy as np, torch
from speechbrain_fsce.dataio.audio import load_audio, read_blocks
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
torch.zeros(1000).sum()
before = peak()
whole = load_audio(sys.argv[1], 16000)
blocks = torch.cat(list(read_blocks(sys.argv[1], 16000, block_seconds=0.1)))
print(json.dumps({"before": before, "after": peak(), "n": len(whole),
                  "blocks_equal": bool(torch.allclose(whole, blocks, atol=1e-5)),
                  "out": whole.tolist()}))
"""

LIMIT = 3 << 30  # the old code needed 12.4 GB for 0.45 s at 44,101 Hz


def _limit():
    resource.setrlimit(resource.RLIMIT_DATA, (LIMIT, LIMIT))


@pytest.mark.parametrize("rate", [44101, 22049])
def test_odd_rate_in_bounded_memory(tmp_path, rate):
    t = np.arange(int(0.45 * rate)) / rate
    path = tmp_path / f"tone{rate}.wav"
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 1000 * t), rate, subtype="FLOAT")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        preexec_fn=_limit,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["after"] - out["before"] < 200 << 20  # < 200 MB above the imports
    assert out["n"] == int(np.ceil(len(t) * 16000 / rate)) and out["blocks_equal"]
    y = np.array(out["out"])
    ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(y)) / 16000)
    assert np.abs(y - ref)[200:-200].max() < 2e-3  # the same 1 kHz tone at 16 kHz
