"""``fsce-enhance --score``: DNSMOS of each input and its output, and averages."""

import re
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.cli import enhance_main
from speechbrain_fsce.dataio.audio import load_audio
from speechbrain_fsce.inference import export_model
from speechbrain_fsce.metrics import dnsmos
from speechbrain_fsce.testing import speech_like
from tests.unittests.tiny_models import SMALL, calibrated

pytest.importorskip("speechmos", reason="needs the dnsmos extra")

TITLES = ("SIG", "BAK", "OVRL", "P.808")
LINE = re.compile(
    r"^(?P<name>.+): DNSMOS input -> enhanced: "
    + ", ".join(
        rf"{re.escape(t)} (?P<b{i}>[0-9.]+) -> (?P<a{i}>[0-9.]+)" for i, t in enumerate(TITLES)
    )
    + "$"
)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(0)
    enhancer = FSCEEnhancer(calibrated(FSCE(**SMALL)))
    return str(export_model(tmp_path_factory.mktemp("score") / "model", enhancer, SMALL))


def _inputs(folder):
    """Two noisy files, 16 kHz and 8 kHz (2.4 s: one DNSMOS window each)."""
    rng = np.random.default_rng(0)
    paths = []
    for name, rate in (("a16k.wav", 16000), ("b8k.wav", 8000)):
        clean = speech_like(2.4, sample_rate=rate, seed=rate)
        noisy = clean + 0.05 * rng.standard_normal(len(clean))
        sf.write(str(folder / name), noisy.astype(np.float32), rate)
        paths.append(str(folder / name))
    return paths


def _parse(line):
    match = LINE.match(line)
    assert match, line
    before = [float(match[f"b{i}"]) for i in range(4)]
    after = [float(match[f"a{i}"]) for i in range(4)]
    return match["name"], before, after


def test_score_prints_dnsmos_before_after_and_the_average(model_folder, tmp_path, capsys):
    inputs = _inputs(tmp_path)
    out = tmp_path / "out"
    argv = ["--model", model_folder, *inputs, "-o", str(out), "--score", "--no-progress"]
    assert enhance_main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3, lines  # one per file, then the average
    rows = [_parse(line) for line in lines]
    assert [name for name, _, _ in rows[:2]] == inputs
    for src, (_, before, after) in zip(inputs, rows[:2]):
        expected = dnsmos(load_audio(src, 16000), 16000)  # the input, read at 16 kHz
        assert before == pytest.approx(
            [expected[k] for k in ("sig", "bak", "ovrl", "p808")], abs=0.006
        )
        assert all(1.0 <= v <= 5.0 for v in before + after)
    name, before, after = rows[2]
    assert name == "average over 2 file(s)"
    assert before == pytest.approx([(x + y) / 2 for x, y in zip(rows[0][1], rows[1][1])], abs=0.006)
    assert after == pytest.approx([(x + y) / 2 for x, y in zip(rows[0][2], rows[1][2])], abs=0.006)
    assert sorted(p.name for p in out.iterdir()) == ["a16k.wav", "b8k.wav"]


def test_score_without_speechmos_is_a_one_line_usage_error(
    model_folder, tmp_path, monkeypatch, capsys
):
    for name in ("speechmos", "speechmos.dnsmos"):
        monkeypatch.setitem(sys.modules, name, None)
    inputs = _inputs(tmp_path)
    out = tmp_path / "out"
    assert enhance_main(["--model", model_folder, *inputs, "-o", str(out), "--score"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install speechbrain-fsce[dnsmos]" in err[0], err
    assert err[0].startswith("fsce-enhance: error: --score:")
    assert not out.exists()  # nothing enhanced
