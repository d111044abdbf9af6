"""fsce-enhance / fsce-export on good and bad inputs (any format, any rate)."""

import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.cli import enhance_main, export_main
from speechbrain_fsce.inference import FSCEEnhancement, export_model
from tests.unittests.tiny_models import SMALL, calibrated


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(0)
    enhancer = FSCEEnhancer(calibrated(FSCE(**SMALL)))
    return str(export_model(tmp_path_factory.mktemp("cli") / "model", enhancer, SMALL))


RNG = np.random.default_rng(0)
#: name -> (rate, data, subtype) of inputs that must be enhanced.
GOOD = {
    "a16k.wav": (16000, RNG.standard_normal(16000) * 0.1, "PCM_16"),
    "sub/b8k_u8.wav": (8000, RNG.standard_normal(4000) * 0.1, "PCM_U8"),
    "sub/deeper/c44k_stereo_24.wav": (44100, RNG.standard_normal((22050, 2)) * 0.1, "PCM_24"),
    "d48k_stereo.flac": (48000, RNG.standard_normal((24000, 2)) * 0.1, "PCM_16"),
    "e48k_float.wav": (48000, RNG.standard_normal(24000) * 0.1, "FLOAT"),
    "short100.wav": (16000, RNG.standard_normal(100) * 0.1, "PCM_16"),
    "silence.wav": (16000, np.zeros(8000), "PCM_16"),
}


def make_inputs(root):
    for name, (rate, data, subtype) in GOOD.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), data, rate, subtype=subtype)
    sf.write(str(root / "empty.wav"), np.zeros(0), 16000)
    nan = np.zeros(4000)
    nan[100] = np.nan
    sf.write(str(root / "nan.wav"), nan, 16000, subtype="FLOAT")
    corrupt = root / "corrupt.wav"
    sf.write(str(corrupt), np.zeros(4000), 16000)
    raw = bytearray(corrupt.read_bytes())
    raw[8:16] = b"JUNKJUNK"
    corrupt.write_bytes(bytes(raw))
    (root / "text.wav").write_text("not audio at all\n")
    (root / "readme.txt").write_text("ignored: not an audio name\n")
    return {
        "empty.wav": "empty file",
        "nan.wav": "NaN or Inf",
        "corrupt.wav": "unreadable",
        "text.wav": "unreadable",
    }


def out_name(name):
    p = pathlib.PurePosixPath(name)
    return str(p.with_suffix(".wav"))


def test_enhance_folder_with_good_and_bad_files(model_folder, tmp_path, capsys):
    bad = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    rc = enhance_main(
        [
            "--model",
            model_folder,
            str(tmp_path / "in"),
            str(tmp_path / "missing.wav"),
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 1  # some inputs failed, the others are written
    err = capsys.readouterr().err
    assert f"{len(GOOD)} file(s) written" in err
    for name, reason in bad.items():
        line = next(line for line in err.splitlines() if name in line)
        assert reason in line, line
    assert "missing.wav: no such file or folder" in err
    assert "Traceback" not in err

    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(out_name(n) for n in GOOD)  # structure kept, nothing partial
    model = FSCEEnhancement.from_hparams(source=model_folder)
    for name, (rate, data, _) in GOOD.items():
        y, sr = sf.read(str(out / out_name(name)), dtype="float32")
        assert sr == 16000 and y.shape == (math.ceil(data.shape[0] * 16000 / rate),)
        assert np.all(np.isfinite(y))
        if name == "silence.wav":
            assert np.abs(y).max() < 1e-6
        else:
            assert np.abs(y).max() > 1e-3
    # Same result as the Python API (whole file in memory).
    ref = model.enhance_file(str(tmp_path / "in" / "sub/deeper/c44k_stereo_24.wav")).numpy()
    y, _ = sf.read(str(out / "sub/deeper/c44k_stereo_24.wav"), dtype="float32")
    assert np.abs(y - ref).max() < 1e-5


def test_keep_rate_and_subtype(model_folder, tmp_path):
    make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    inputs = [
        str(tmp_path / "in" / n)
        for n in ("sub/deeper/c44k_stereo_24.wav", "e48k_float.wav", "sub/b8k_u8.wav")
    ]
    rc = enhance_main(
        [
            "--model",
            model_folder,
            *inputs,
            "-o",
            str(out),
            "--keep-rate",
            "--subtype",
            "PCM_16",
            "--no-progress",
        ]
    )
    assert rc == 0
    for name, rate, frames in (
        ("c44k_stereo_24.wav", 44100, 22050),
        ("e48k_float.wav", 48000, 24000),
        ("b8k_u8.wav", 8000, 4000),
    ):
        info = sf.info(str(out / name))
        assert (info.samplerate, info.frames, info.channels, info.subtype) == (
            rate,
            frames,
            1,
            "PCM_16",
        )


def test_never_overwrites_inputs(model_folder, tmp_path, capsys):
    make_inputs(tmp_path / "in")
    src = tmp_path / "in" / "a16k.wav"
    before = src.read_bytes()
    rc = enhance_main(
        ["--model", model_folder, str(src), "-o", str(tmp_path / "in"), "--no-progress"]
    )
    assert rc == 1 and "refusing to write into the input's own location" in capsys.readouterr().err
    assert src.read_bytes() == before
    # An output folder inside the input folder is not read back as input;
    # a second run replaces its own earlier outputs only with --overwrite.
    run = [
        "--model",
        model_folder,
        str(tmp_path / "in" / "sub"),
        "-o",
        str(tmp_path / "in" / "sub" / "enhanced"),
        "--no-progress",
    ]
    assert enhance_main(run) == 0
    assert enhance_main(run) == 1 and "exists already; not replaced" in capsys.readouterr().err
    assert enhance_main(run + ["--overwrite"]) == 0
    written = sorted(p.name for p in (tmp_path / "in" / "sub" / "enhanced").rglob("*.wav"))
    assert written == ["b8k_u8.wav", "c44k_stereo_24.wav"]


def test_usage_errors(model_folder, tmp_path, capsys):
    make_inputs(tmp_path / "in")
    assert (
        enhance_main(
            ["--model", str(tmp_path / "nomodel"), str(tmp_path / "in"), "-o", str(tmp_path / "o")]
        )
        == 2
    )
    assert "cannot load model" in capsys.readouterr().err
    assert (
        enhance_main(
            [
                "--model",
                model_folder,
                str(tmp_path / "in"),
                "-o",
                str(tmp_path / "o"),
                "--subtype",
                "MP3ISH",
            ]
        )
        == 2
    )
    (tmp_path / "afile").write_text("x")
    assert (
        enhance_main(["--model", model_folder, str(tmp_path / "in"), "-o", str(tmp_path / "afile")])
        == 2
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # a fresh interpreter (~7 s CPU): the installed entry point itself
def test_console_scripts(model_folder, tmp_path):
    bin_dir = os.path.dirname(sys.executable)
    enhance = os.path.join(bin_dir, "fsce-enhance")
    if not os.path.exists(enhance):
        pytest.skip("console scripts not installed (pip install -e .)")
    sf.write(str(tmp_path / "x.wav"), RNG.standard_normal(8000) * 0.1, 16000)
    (tmp_path / "bad.wav").write_text("nope")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [
            enhance,
            "--model",
            model_folder,
            str(tmp_path / "x.wav"),
            str(tmp_path / "bad.wav"),
            "-o",
            str(tmp_path / "out"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 1, res.stderr
    assert "bad.wav: unreadable or not audio" in res.stderr and "Traceback" not in res.stderr
    assert sf.info(str(tmp_path / "out" / "x.wav")).frames == 8000


def test_export_then_enhance(tmp_path):
    torch.manual_seed(1)
    enhancer = FSCEEnhancer(calibrated(FSCE(causal=True, **SMALL)))
    torch.save(enhancer.state_dict(), tmp_path / "enhancer.ckpt")
    rc = export_main(
        [
            "--ckpt",
            str(tmp_path / "enhancer.ckpt"),
            "--output",
            str(tmp_path / "model"),
            "--overrides",
            '{"causal": true, "channels": 8, "inner_channels": 4, '
            '"tcm_hidden_channels": 8, "num_tcm_modules": 1, "dilations": [1, 2]}',
        ]
    )
    assert rc == 0
    sf.write(str(tmp_path / "x.wav"), RNG.standard_normal(8000) * 0.1, 16000)
    assert (
        enhance_main(
            [
                "--model",
                str(tmp_path / "model"),
                str(tmp_path / "x.wav"),
                "-o",
                str(tmp_path / "out"),
                "--no-progress",
            ]
        )
        == 0
    )
    y, _ = sf.read(str(tmp_path / "out" / "x.wav"), dtype="float32")
    with torch.no_grad():
        ref = enhancer.eval()(
            torch.from_numpy(sf.read(str(tmp_path / "x.wav"), dtype="float32")[0])
        )
    assert np.abs(y - ref.numpy()).max() < 1e-4  # the causal model is streamed exactly


# ---------------------------------------------------------------------------
# Hardening (issue 10): lost audio, loops, errors, signals, permissions.
# ---------------------------------------------------------------------------


def _tree_bytes(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_output_inside_input_never_replaces_a_recording(model_folder, tmp_path, capsys):
    """Finding 3: `dir -o dir/sub` overwrote the original dir/sub/a.wav."""
    root = tmp_path / "dir"
    (root / "sub").mkdir(parents=True)
    sf.write(str(root / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    sf.write(str(root / "sub" / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)  # a recording
    before = _tree_bytes(root)
    rc = enhance_main(
        ["--model", model_folder, str(root), "-o", str(root / "sub"), "--no-progress"]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "exists already; not replaced (pass --overwrite" in err and "Traceback" not in err
    assert _tree_bytes(root) == before
    assert not [p for p in root.rglob("*") if p.name.endswith(".partial")]


def test_symlink_loops_in_input_folder(model_folder, tmp_path):
    """Finding 5: `self -> .` enhanced one file 41 times; two loop links hung."""
    root = tmp_path / "in"
    (root / "x").mkdir(parents=True)
    (root / "y").mkdir()
    sf.write(str(root / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    sf.write(str(root / "x" / "b.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    os.symlink(".", root / "self")
    os.symlink("../y", root / "x" / "to_y")
    os.symlink("../x", root / "y" / "to_x")
    out = tmp_path / "out"
    assert enhance_main(["--model", model_folder, str(root), "-o", str(out), "--no-progress"]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a.wav", "x/b.wav"]


def test_compressed_files_in_folder_are_processed_or_reported(model_folder, tmp_path, capsys):
    """Finding 7: .mp3/.opus in an input folder were skipped without a word."""
    root = tmp_path / "in"
    root.mkdir()
    sf.write(str(root / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    (root / "song.mp3").write_bytes(b"ID3" + bytes(200))  # not decodable
    (root / "voice.opus").write_bytes(b"OggS" + bytes(200))
    (root / "notes.txt").write_text("x")
    rc = enhance_main(
        ["--model", model_folder, str(root), "-o", str(tmp_path / "out"), "--no-progress"]
    )
    err = capsys.readouterr().err
    for name in ("song.mp3", "voice.opus"):
        assert name in err or (tmp_path / "out" / (name.split(".")[0] + ".wav")).exists()
    assert "notes.txt" in err and "ignored 1 file(s)" in err
    assert rc == 1


def test_truncated_wav_warns(model_folder, tmp_path, capsys):
    """Finding 7: a truncated data chunk was read without a warning."""
    path = tmp_path / "cut.wav"
    sf.write(str(path), RNG.standard_normal(16000) * 0.1, 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:20000])
    rc = enhance_main(
        ["--model", model_folder, str(path), "-o", str(tmp_path / "out"), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert rc == 0 and "cut.wav: truncated file" in err


@pytest.mark.parametrize(
    "extra, option",
    [
        (["--threads", "-1"], "--threads"),
        (["--threads", "x"], "--threads"),
        (["--chunk-seconds", "0"], "--chunk-seconds"),
        (["--crossfade-seconds", "nan"], "--crossfade-seconds"),
        (["--device", "nonsense"], "--device"),
    ],
)
def test_bad_options_are_one_line_usage_errors(model_folder, tmp_path, capsys, extra, option):
    sf.write(str(tmp_path / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    try:
        rc = enhance_main(
            ["--model", model_folder, str(tmp_path / "a.wav"), "-o", str(tmp_path / "o"), *extra]
        )
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc == 2 and option in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu(model_folder, tmp_path, capsys):
    sf.write(str(tmp_path / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    rc = enhance_main(
        [
            "--model",
            model_folder,
            str(tmp_path / "a.wav"),
            "-o",
            str(tmp_path / "o"),
            "--device",
            "cuda",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--device" in err and "no CUDA GPU" in err and "does not fit" not in err


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (
            lambda p: p.write_bytes(bytes(RNG.integers(0, 256, 3000, dtype=np.uint8))),
            "not a torch checkpoint",
        ),
    ],
)
def test_damaged_model_folder_one_line(model_folder, tmp_path, capsys, damage, reason):
    bad = tmp_path / "model"
    bad.mkdir()
    for name in os.listdir(model_folder):
        (bad / name).write_bytes((pathlib.Path(model_folder) / name).read_bytes())
    damage(bad / "enhancer.ckpt")
    sf.write(str(tmp_path / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    rc = enhance_main(["--model", str(bad), str(tmp_path / "a.wav"), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and reason in err and len(err.strip().splitlines()) == 1
    assert "weights_only" not in err


def test_hostile_model_folder_runs_nothing_unless_unsafe(model_folder, tmp_path, capsys):
    bad = tmp_path / "model"
    bad.mkdir()
    for name in os.listdir(model_folder):
        (bad / name).write_bytes((pathlib.Path(model_folder) / name).read_bytes())
    marker = tmp_path / "marker"
    with open(bad / "hyperparams.yaml", "a") as f:
        f.write(f'\nevil: !apply:os.system ["touch {marker}"]\n')
    sf.write(str(tmp_path / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    # Read as data (model.json): the YAML is not run, the files are enhanced.
    rc = enhance_main(
        ["--model", str(bad), str(tmp_path / "a.wav"), "-o", str(tmp_path / "o"), "--no-progress"]
    )
    assert rc == 0 and not marker.exists()
    # The documented opt-in runs it (a folder the user trusts).
    rc = enhance_main(
        [
            "--model",
            str(bad),
            str(tmp_path / "a.wav"),
            "-o",
            str(tmp_path / "o"),
            "--unsafe-load",
            "--no-progress",
            "--overwrite",
        ]
    )
    assert rc == 0 and marker.exists()


def test_disk_full_is_a_clear_message(model_folder, tmp_path, capsys, monkeypatch):
    import errno

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "in").mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(str(tmp_path / "in" / name), RNG.standard_normal(4000) * 0.1, 16000)
    monkeypatch.setattr(sf.SoundFile, "write", full)
    out = tmp_path / "out"
    rc = enhance_main(
        ["--model", model_folder, str(tmp_path / "in"), "-o", str(out), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "no space left on device while writing" in err and "Traceback" not in err
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_outputs_respect_umask(model_folder, tmp_path):
    """Finding 10: outputs were created 0600 (temporary-file permissions)."""
    sf.write(str(tmp_path / "a.wav"), RNG.standard_normal(4000) * 0.1, 16000)
    old = os.umask(0o022)
    try:
        assert (
            enhance_main(
                [
                    "--model",
                    model_folder,
                    str(tmp_path / "a.wav"),
                    "-o",
                    str(tmp_path / "o"),
                    "--no-progress",
                ]
            )
            == 0
        )
    finally:
        os.umask(old)
    assert (tmp_path / "o" / "a.wav").stat().st_mode & 0o777 == 0o644


# SIGINT is slow (a second ~7 s child): it ends through the same cleanup as SIGTERM.
@pytest.mark.parametrize("sig", ["SIGTERM", pytest.param("SIGINT", marks=pytest.mark.slow)])
def test_signal_removes_partial_file_and_exits_cleanly(model_folder, tmp_path, sig):
    """Finding 8: SIGINT printed a traceback; SIGTERM left a .partial file."""
    import signal
    import time

    long_input = tmp_path / "long.wav"
    sf.write(str(long_input), RNG.standard_normal(16000 * 240).astype(np.float32) * 0.1, 16000)
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = (
        "import sys; from speechbrain_fsce.cli import enhance_main; "
        "sys.exit(enhance_main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--model",
            model_folder,
            str(long_input),
            "-o",
            str(out),
            "--no-progress",
            "--threads",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(pathlib.Path(__file__).parents[2]),
        # As from a terminal: a shell's background job (e.g. `make test &`)
        # starts with SIGINT ignored, which the child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 180  # generous: a loaded machine starts slowly
    while time.time() < deadline and not (out.exists() and any(out.iterdir())):
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, sig), err
    assert f"interrupted by {sig}" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert list(out.iterdir()) == []


# Slow (4 exports, ~13 s CPU): the fast suite has fsce-export --onnx in
# test_shipped.py, fsce-enhance --backend onnx = torch in test_onnx_shipped.py
# and the graphs = torch in test_onnx.py.
@pytest.mark.slow
@pytest.mark.parametrize("causal", [False, True])
def test_onnx_backend_and_export(tmp_path, causal):
    """fsce-export --model --onnx writes the graphs; fsce-enhance --backend onnx = torch."""
    torch.manual_seed(1)
    config = {**SMALL, "causal": causal}
    folder = str(export_model(tmp_path / "model", FSCEEnhancer(calibrated(FSCE(**config))), config))
    assert export_main(["--model", folder, "--onnx", str(tmp_path / "onnx")]) == 0
    expected = {"fsce_offline.onnx", "fsce_onnx.json"} | ({"fsce_stream.onnx"} if causal else set())
    assert set(os.listdir(tmp_path / "onnx")) == expected
    (tmp_path / "in").mkdir()
    sf.write(
        str(tmp_path / "in" / "x.wav"),
        RNG.standard_normal(16000 * 2 + 37) * 0.1,
        16000,
        subtype="FLOAT",
    )
    outs = {}
    for backend in ("torch", "onnx"):
        args = [
            "--model",
            folder,
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / backend),
            "--backend",
            backend,
            "--no-progress",
            "--chunk-seconds",
            "0.5",
        ]
        assert enhance_main(args) == 0
        outs[backend], _ = sf.read(str(tmp_path / backend / "x.wav"), dtype="float32")
    assert np.abs(outs["torch"]).max() > 0.01
    assert np.abs(outs["onnx"] - outs["torch"]).max() <= 1e-4


def test_export_onnx_usage_errors(tmp_path, model_folder):
    assert export_main(["--model", model_folder]) == 2  # nothing to do without --onnx
    assert export_main(["--save_folder", str(tmp_path)]) == 2  # --output missing
    assert (
        enhance_main(
            [
                "--model",
                model_folder,
                str(tmp_path),
                "-o",
                str(tmp_path / "o"),
                "--backend",
                "onnx",
                "--device",
                "cuda:0",
            ]
        )
        == 2
    )
