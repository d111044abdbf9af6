"""The enhancement entry points (FSCEEnhancement, fsce-enhance) on malformed
input: a generated (fuzz) set of bad and extreme files, options and tensors
(issue 10, deliverable 8).

For every input: either a clear error (one line naming the file) or a valid,
finite output of the right length; inputs are never modified; no partial or
hidden files are left behind.
"""

import hashlib
import math
import os
import struct

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.cli import enhance_main
from speechbrain_fsce.inference import FSCEEnhancement, export_model
from tests.unittests.tiny_models import SMALL, calibrated

RNG = np.random.default_rng(1234)


def _wav_bytes(data, rate, subtype):
    path = "/dev/shm" if os.path.isdir("/dev/shm") else None
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".wav", dir=path) as f:
        sf.write(f.name, data, rate, subtype=subtype, format="WAV")
        return open(f.name, "rb").read()


def make_fuzz_inputs(root):
    """Writes the fuzz corpus into ``root``; returns the file paths."""
    root.mkdir(parents=True, exist_ok=True)
    files = {}

    def put(name, payload):
        (root / name).write_bytes(payload)
        files[name] = root / name

    speech = (0.1 * RNG.standard_normal(800)).astype(np.float32)
    pcm = _wav_bytes(speech, 16000, "PCM_16")
    for cut in range(0, 61):  # every header offset, and into the data
        put(f"trunc_wav_{cut:03d}.wav", pcm[:cut])
    flac_path = root / "tmp.flac"
    sf.write(str(flac_path), speech, 16000, format="FLAC")
    flac = flac_path.read_bytes()
    flac_path.unlink()
    for cut in range(0, min(len(flac), 120), 6):
        put(f"trunc_flac_{cut:03d}.flac", flac[:cut])
    for k, size in enumerate((1, 3, 44, 100, 1000, 5000)):
        for ext in (".wav", ".flac", ".mp3", ".ogg"):
            put(f"random_{k}{ext}", RNG.integers(0, 256, size, dtype=np.uint8).tobytes())
    # Header fields set to odd values (channels, rate, bits, data size).
    for field, fmt, values in (
        (22, "<H", (0, 3, 65535)),
        (24, "<I", (0, 1, 7, 4_000_000_000)),
        (34, "<H", (0, 7, 64)),
        (40, "<I", (0, 3, 0xFFFFFFFF)),
    ):
        for value in values:
            raw = bytearray(pcm)
            raw[field : field + struct.calcsize(fmt)] = struct.pack(fmt, value)
            put(f"header_{field}_{value}.wav", bytes(raw))
    # Extreme but readable signals.
    extremes = {
        "huge_1e20.wav": (speech * 1e20, 16000, "FLOAT"),
        "max_float.wav": (np.full(800, 3.0e38, dtype=np.float32), 16000, "FLOAT"),
        "tiny_1e-30.wav": (speech * 1e-30, 16000, "FLOAT"),
        "inf_inside.wav": (np.where(np.arange(800) == 400, np.inf, speech), 16000, "FLOAT"),
        "dc_full_scale.wav": (np.ones(800), 16000, "PCM_16"),
        "square_full_scale.wav": (np.sign(np.sin(np.arange(1600) * 0.3)), 16000, "PCM_16"),
        "one_sample.wav": (np.array([0.5]), 16000, "PCM_16"),
        "rate_1hz.wav": (0.1 * RNG.standard_normal(3), 1, "PCM_16"),
        "rate_4khz.wav": (0.1 * RNG.standard_normal(400), 4000, "PCM_16"),
        "rate_44101.wav": (0.1 * RNG.standard_normal(2000), 44101, "PCM_16"),
        "rate_384k.wav": (0.1 * RNG.standard_normal(9000), 384000, "PCM_24"),
        "many_channels.wav": (0.1 * RNG.standard_normal((800, 16)), 16000, "PCM_16"),
    }
    for name, (data, rate, subtype) in extremes.items():
        sf.write(str(root / name), data, rate, subtype=subtype)
        files[name] = root / name
    return files


def _hashes(paths):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _expected_length(path):
    info = sf.info(str(path))
    return math.ceil(info.frames * 16000 / info.samplerate)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(0)
    return str(
        export_model(
            tmp_path_factory.mktemp("fuzz") / "model",
            FSCEEnhancer(calibrated(FSCE(**SMALL))),
            SMALL,
        )
    )


def _no_leftovers(folder):
    leftovers = [
        p for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".partial")
    ]
    assert not leftovers, leftovers


def test_fuzz_api(model_folder, tmp_path):
    model = FSCEEnhancement.from_hparams(source=model_folder)
    files = make_fuzz_inputs(tmp_path / "in")
    before = _hashes(files.values())
    out_dir = tmp_path / "out"
    outcomes = {"ok": 0, "error": 0}
    for name, path in files.items():
        out = out_dir / (name + ".wav")
        try:
            y = model.enhance_file(str(path), str(out))
        except ValueError as err:  # AudioError is a ValueError
            message = str(err)
            assert name in message and "\n" not in message, message
            assert not out.exists()
            outcomes["error"] += 1
            continue
        assert torch.isfinite(y).all() and y.shape == (_expected_length(path),), name
        written, rate = sf.read(str(out), dtype="float32")
        assert rate == 16000 and np.all(np.isfinite(written)) and len(written) == len(y)
        outcomes["ok"] += 1
    assert outcomes["ok"] >= 8 and outcomes["error"] >= 60, outcomes
    assert _hashes(files.values()) == before
    _no_leftovers(tmp_path)


def test_fuzz_cli(model_folder, tmp_path, capsys):
    files = make_fuzz_inputs(tmp_path / "in")
    before = _hashes(files.values())
    out = tmp_path / "out"
    rc = enhance_main(
        ["--model", model_folder, str(tmp_path / "in"), "-o", str(out), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    failed = {line.strip().split(":")[0] for line in err.splitlines() if line.startswith("  ")}
    written = {p.name for p in out.rglob("*.wav")}
    for name, path in files.items():
        out_name = os.path.splitext(name)[0] + ".wav"
        assert (str(path) in failed) != (out_name in written), name  # exactly one outcome
        if out_name in written:
            y, rate = sf.read(str(out / out_name), dtype="float32")
            assert rate == 16000 and np.all(np.isfinite(y)) and len(y) == _expected_length(path)
    assert _hashes(files.values()) == before
    _no_leftovers(tmp_path)


@pytest.mark.parametrize(
    "options",
    [
        ["--chunk-seconds", "1e-9"],
        ["--context-seconds", "1e9"],
        ["--crossfade-seconds", "1e9"],
        ["--chunk-seconds", "-1"],
        ["--threads", "0"],
        ["--subtype", "PCM_S8"],
        ["--context-seconds", "inf"],
    ],
)
def test_fuzz_cli_options(model_folder, tmp_path, capsys, options):
    src = tmp_path / "a.wav"
    sf.write(str(src), 0.1 * RNG.standard_normal(5000), 16000)
    before = _hashes([src])
    try:
        rc = enhance_main(
            [
                "--model",
                model_folder,
                str(src),
                "-o",
                str(tmp_path / "o"),
                "--no-progress",
                *options,
            ]
        )
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc in (0, 2) and "Traceback" not in err
    if rc == 2:
        assert len(err.strip().splitlines()) == 1 and options[0] in err
    else:
        y, _ = sf.read(str(tmp_path / "o" / "a.wav"), dtype="float32")
        assert len(y) == 5000 and np.all(np.isfinite(y))
    assert _hashes([src]) == before
    _no_leftovers(tmp_path)


@pytest.mark.parametrize(
    "noisy, lengths",
    [
        (torch.full((1, 800), 1e20), None),
        (torch.full((1, 800), -float("inf")), None),
        (torch.randn(2, 800), torch.tensor([float("inf"), 1.0])),
        (torch.randn(2, 800), torch.tensor([0.0, 1.0])),
        (torch.randn(2, 800), torch.ones(2, 1)),
        (torch.randn(1, 1, 800), None),
    ],
)
def test_fuzz_enhance_batch(model_folder, noisy, lengths):
    model = FSCEEnhancement.from_hparams(source=model_folder)
    with pytest.raises(ValueError):
        model.enhance_batch(noisy, lengths)
