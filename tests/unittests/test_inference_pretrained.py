"""FSCEEnhancement: loading model folders strictly and in place, bad input."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.dataio.audio import AudioError, load_audio
from speechbrain_fsce.inference import FSCEEnhancement, export_model
from tests.unittests.tiny_models import SMALL, calibrated


@pytest.fixture(scope="module")
def enhancer():
    torch.manual_seed(0)
    return FSCEEnhancer(calibrated(FSCE(**SMALL))).eval()


@pytest.fixture(scope="module")
def folder(enhancer, tmp_path_factory):
    return export_model(tmp_path_factory.mktemp("fsce") / "model", enhancer, SMALL)


@pytest.fixture(scope="module")
def model(folder):
    return FSCEEnhancement.from_hparams(source=str(folder))


def test_loads_in_place_without_side_effects(folder, enhancer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(folder))
    loaded = FSCEEnhancement.from_hparams(source=str(folder))
    assert os.listdir(tmp_path) == []  # nothing collected into the cwd
    assert sorted(os.listdir(folder)) == before  # no links or copies added
    assert not any(p.requires_grad for p in loaded.parameters())
    x = torch.randn(2, 5000) * 0.1
    with torch.no_grad():
        expected = enhancer(x)
    assert torch.allclose(loaded.enhance_batch(x), expected, atol=1e-6)
    assert loaded(x).shape == x.shape and loaded.sample_rate == 16000


def test_relative_source_and_moved_folder(folder, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in os.listdir(folder):
        (moved / name).write_bytes((folder / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    loaded = FSCEEnhancement.from_hparams(source="elsewhere")
    assert loaded.enhance_batch(torch.randn(1, 2000)).shape == (1, 2000)


def _copy_folder(folder, dst):
    dst.mkdir()
    for name in os.listdir(folder):
        (dst / name).write_bytes((folder / name).read_bytes())
    return dst


def test_missing_checkpoint_key_is_an_error(folder, tmp_path):
    bad = _copy_folder(folder, tmp_path / "bad")
    state = torch.load(bad / "enhancer.ckpt")
    state.pop("model.mag_head.weight")
    torch.save(state, bad / "enhancer.ckpt")
    with pytest.raises(ValueError, match=r"1 missing key\(s\) \['model.mag_head.weight'\]"):
        FSCEEnhancement.from_hparams(source=str(bad))


def test_unexpected_checkpoint_key_is_an_error(folder, tmp_path):
    bad = _copy_folder(folder, tmp_path / "bad")
    state = torch.load(bad / "enhancer.ckpt")
    state["model.extra.weight"] = torch.zeros(3)
    torch.save(state, bad / "enhancer.ckpt")
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['model.extra.weight'\]"):
        FSCEEnhancement.from_hparams(source=str(bad))


def test_wrong_shapes_and_incomplete_folders_are_clear_errors(folder, tmp_path):
    bad = _copy_folder(folder, tmp_path / "bad")
    text = (bad / "hyperparams.yaml").read_text()
    assert "\nchannels: 8\n" in text
    (bad / "hyperparams.yaml").write_text(text.replace("\nchannels: 8\n", "\nchannels: 16\n"))
    with pytest.raises(ValueError, match="does not fit"):
        FSCEEnhancement.from_hparams(source=str(bad))
    os.remove(bad / "enhancer.ckpt")
    with pytest.raises(FileNotFoundError, match=r"not an FSCE model folder \(missing enhancer.ckpt\)"):
        FSCEEnhancement.from_hparams(source=str(bad))
    # A path that does not exist is not mistaken for a HuggingFace id.
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        FSCEEnhancement.from_hparams(source=str(tmp_path / "missing"))


def test_enhance_batch_lengths_and_guards(model):
    x = torch.randn(2, 4000) * 0.1
    out = model.enhance_batch(x, lengths=torch.tensor([1.0, 0.5]))
    assert out.shape == x.shape
    assert out[1, 2000:].abs().max() == 0 and out[1, :2000].abs().max() > 1e-3
    # The padded signal is enhanced as if it were alone (level from valid part;
    # the network's receptive field makes the last frames differ a little).
    alone = model.enhance_batch(x[1:, :2000])
    assert torch.allclose(out[1, :1000], alone[0, :1000], atol=1e-4)
    assert model.enhance_batch(torch.randn(300)).shape == (300,)
    assert model.enhance_batch(torch.zeros(1, 0)).shape == (1, 0)
    bad = x.clone()
    bad[0, 7] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.enhance_batch(bad)
    with pytest.raises(ValueError, match="expected waveforms"):
        model.enhance_batch(torch.zeros(1, 1, 10))


@pytest.mark.parametrize(
    "rate,channels,subtype",
    [(16000, 1, "PCM_16"), (8000, 1, "PCM_U8"), (44100, 2, "PCM_24"), (48000, 2, "FLOAT"), (16000, 1, "DOUBLE")],
)
def test_enhance_file_any_format(model, tmp_path, rate, channels, subtype):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((rate // 2, channels)) * 0.1
    src = str(tmp_path / "in.wav")
    sf.write(src, data, rate, subtype=subtype)
    out_path = tmp_path / "out" / "enhanced.wav"
    enhanced = model.enhance_file(src, output_filename=str(out_path))
    assert enhanced.shape == (8000,)  # half a second at 16 kHz
    assert torch.isfinite(enhanced).all() and enhanced.abs().max() > 1e-3
    written, sr = sf.read(str(out_path), dtype="float32")
    assert sr == 16000 and np.allclose(written, enhanced.numpy())
    assert os.listdir(tmp_path / "out") == ["enhanced.wav"]  # no temporary left
    # Same as enhancing the mono 16 kHz version of the file.
    assert torch.allclose(enhanced, model.enhance_batch(load_audio(src)), atol=1e-6)


def test_short_and_silent_files(model, tmp_path):
    short = str(tmp_path / "short.wav")
    sf.write(short, np.random.default_rng(1).standard_normal(100) * 0.1, 16000)
    out = model.enhance_file(short)
    # Shorter than one frame: enhanced from the zero-padded frames, same length.
    assert out.shape == (100,) and torch.isfinite(out).all() and out.abs().max() > 0
    silent = str(tmp_path / "silent.wav")
    sf.write(silent, np.zeros(16000), 16000)
    out = model.enhance_file(silent)
    assert torch.isfinite(out).all() and out.abs().max() < 1e-6


def _bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0), 16000)
    nan = tmp_path / "nan.wav"
    x = np.zeros(1000)
    x[10] = np.nan
    sf.write(str(nan), x, 16000, subtype="FLOAT")
    inf = tmp_path / "inf.wav"
    x[10] = np.inf
    sf.write(str(inf), x, 16000, subtype="FLOAT")
    corrupt = tmp_path / "corrupt.wav"
    sf.write(str(corrupt), np.zeros(1000), 16000)
    raw = bytearray(corrupt.read_bytes())
    raw[8:16] = b"JUNKJUNK"  # RIFF header intact, WAVE/fmt destroyed
    corrupt.write_bytes(bytes(raw))
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    return {
        "empty": (empty, "empty file"),
        "nan": (nan, "NaN or Inf"),
        "inf": (inf, "NaN or Inf"),
        "corrupt": (corrupt, "unreadable or not audio"),
        "text": (text, "unreadable or not audio"),
        "missing": (tmp_path / "missing.wav", "no such file"),
    }


@pytest.mark.parametrize("kind", ["empty", "nan", "inf", "corrupt", "text", "missing"])
def test_bad_files_raise_errors_naming_the_file(model, tmp_path, kind):
    path, reason = _bad_files(tmp_path)[kind]
    with pytest.raises(AudioError, match=reason) as err:
        model.enhance_file(str(path), output_filename=str(tmp_path / "out.wav"))
    assert str(path) in str(err.value)
    assert not (tmp_path / "out.wav").exists()


def test_refuses_to_overwrite_input(model, tmp_path):
    src = str(tmp_path / "x.wav")
    sf.write(src, np.random.default_rng(2).standard_normal(4000) * 0.1, 16000)
    before = open(src, "rb").read()
    with pytest.raises(ValueError, match="refusing to overwrite"):
        model.enhance_file(src, output_filename=src)
    assert open(src, "rb").read() == before
