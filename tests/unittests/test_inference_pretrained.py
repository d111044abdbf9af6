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
    text = (bad / "model.json").read_text()
    assert '"channels": 8,' in text
    (bad / "model.json").write_text(text.replace('"channels": 8,', '"channels": 16,'))
    with pytest.raises(ValueError, match="does not fit"):
        FSCEEnhancement.from_hparams(source=str(bad))
    os.remove(bad / "enhancer.ckpt")
    with pytest.raises(ValueError, match=r"not an FSCE model folder \(missing enhancer.ckpt\)"):
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
    [
        (16000, 1, "PCM_16"),
        (8000, 1, "PCM_U8"),
        (44100, 2, "PCM_24"),
        (48000, 2, "FLOAT"),
        (16000, 1, "DOUBLE"),
    ],
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


# ---------------------------------------------------------------------------
# Safe loading (issue 10, finding 1): nothing in a model folder runs code.
# ---------------------------------------------------------------------------


class _Payload:
    """Pickles into a call of os.system (what a hostile checkpoint holds)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _with_yaml_line(folder, dst, line):
    bad = _copy_folder(folder, dst)
    text = (bad / "hyperparams.yaml").read_text()
    (bad / "hyperparams.yaml").write_text(text + "\n" + line + "\n")
    return bad


@pytest.mark.parametrize(
    "line",
    [
        'evil: !apply:os.system ["touch {marker}"]',
        'evil: !new:subprocess.Popen [["touch", "{marker}"]]',
        "evil: !name:os.system",
        'evil: !!python/object/apply:os.system ["touch {marker}"]',
        "evil: !ref <enhancer.__class__>",
        "evil: !include:{marker}.yaml",
        'enhancer: !apply:os.system ["touch {marker}"]',
    ],
)
def test_hostile_yaml_runs_nothing(folder, tmp_path, line):
    """The safe loader reads model.json; hyperparams.yaml (for plain SpeechBrain) is never run."""
    marker = tmp_path / "marker"
    bad = _with_yaml_line(folder, tmp_path / "bad", line.format(marker=marker))
    loaded = FSCEEnhancement.from_hparams(source=str(bad))
    assert loaded.enhance_batch(torch.randn(1, 2000) * 0.1).shape == (1, 2000)
    assert not marker.exists()


@pytest.mark.parametrize("force_unsafe", [False, True])
def test_pickle_payload_in_checkpoint_runs_nothing(folder, tmp_path, monkeypatch, force_unsafe):
    if force_unsafe:  # must not matter: weights_only=True is passed explicitly
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "marker"
    bad = _copy_folder(folder, tmp_path / "bad")
    state = torch.load(bad / "enhancer.ckpt")
    state["evil"] = _Payload(marker)
    torch.save(state, bad / "enhancer.ckpt")
    with pytest.raises(ValueError, match="pickled Python objects besides tensors, refused") as err:
        FSCEEnhancement.from_hparams(source=str(bad))
    assert "enhancer.ckpt" in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file \\(0 bytes\\)"), (bytes(range(256)) * 8, "not a torch checkpoint")],
)
def test_damaged_checkpoint_is_one_clear_line(folder, tmp_path, content, reason):
    bad = _copy_folder(folder, tmp_path / "bad")
    (bad / "enhancer.ckpt").write_bytes(content)
    with pytest.raises(ValueError, match=reason) as err:
        FSCEEnhancement.from_hparams(source=str(bad))
    assert "\n" not in str(err.value) and "weights_only=False" not in str(err.value)


def test_architecture_mismatch_is_one_line(enhancer, tmp_path):
    wide = dict(SMALL, channels=SMALL["channels"] * 2)
    folder = export_model(tmp_path / "wide", FSCEEnhancer(FSCE(**wide)), wide)
    text = (folder / "model.json").read_text()
    (folder / "model.json").write_text(
        text.replace(f'"channels": {wide["channels"]},', f'"channels": {SMALL["channels"]},', 1)
    )
    with pytest.raises(ValueError, match="of another shape") as err:
        FSCEEnhancement.from_hparams(source=str(folder))
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


def test_trusted_loading_still_works(folder):
    loaded = FSCEEnhancement.from_hparams(source=str(folder), trusted=True)
    assert loaded.enhance_batch(torch.randn(1, 2000)).shape == (1, 2000)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_is_a_clear_error(folder):
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        FSCEEnhancement.from_hparams(source=str(folder), run_opts={"device": "cuda"})


# ---------------------------------------------------------------------------
# Silent wrong results (issue 10, finding 7): clear errors instead.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lengths, match",
    [
        ([float("nan"), 1.0], "relative"),
        ([-0.5, 1.0], "relative"),
        ([1.5, 1.0], "relative"),
        ([1.0], "one value per waveform"),
        ([1.0, 1.0, 1.0], "one value per waveform"),
    ],
)
def test_enhance_batch_rejects_bad_lengths(model, lengths, match):
    with pytest.raises(ValueError, match=match):
        model.enhance_batch(torch.randn(2, 3000) * 0.1, lengths=torch.tensor(lengths))


def test_extreme_input_level_is_an_error_and_writes_nothing(model, tmp_path):
    loud = tmp_path / "loud.wav"
    sf.write(
        str(loud), np.random.default_rng(0).standard_normal(8000) * 1e20, 16000, subtype="FLOAT"
    )
    out = tmp_path / "out.wav"
    with pytest.raises(ValueError, match="NaN or Inf") as err:
        model.enhance_file(str(loud), str(out))
    assert "loud.wav" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loud.wav"]


@pytest.mark.parametrize(
    "lines",
    [
        # HyperPyYAML turns "(...)" scalars into tuples through PyYAML's full loader.
        ['y: (!!python/object/apply:os.system ["touch {marker}"],)'],
        ['y: "(!!python/object/apply:os.system [\\"touch {marker}\\"],)"'],
        ['y: !tuple (!!python/object/apply:os.system ["touch {marker}"],)'],
        ['c: "!!python/object/apply:os.system [touch {marker}]"', "y: !ref (<c>,)"],
        # A reference resolving to a string that is resolved again.
        ['p: "<enhancer.__class__>"', "q: !ref <p>"],
        ['p: "<enhancer>"', "q: !ref <p>"],
        # Huge powers and string repetition.
        ['p: "9**9**9**9"', "q: !ref <p> + 0"],
        ["p: x", "q: !ref <p> * 300000000"],
        # Alias expansion ("billion laughs").
        [
            "l0: &l0 [x, x, x, x, x, x, x, x, x, x]",
            "l1: &l1 [*l0, *l0, *l0, *l0, *l0]",
            "l2: [*l1, *l1]",
        ],
    ],
)
def test_indirect_payloads_run_nothing(folder, tmp_path, lines):
    """Payloads that got past the old text checks of hyperparams.yaml: not read at all now."""
    marker = tmp_path / "marker"
    bad = _copy_folder(folder, tmp_path / "bad")
    text = (bad / "hyperparams.yaml").read_text()
    (bad / "hyperparams.yaml").write_text(
        text + "\n" + "\n".join(lines).format(marker=marker) + "\n"
    )
    loaded = FSCEEnhancement.from_hparams(source=str(bad))
    assert loaded.enhance_batch(torch.randn(1, 2000) * 0.1).shape == (1, 2000)
    assert not marker.exists()
