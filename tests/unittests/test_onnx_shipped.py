"""A model folder's own ONNX export (``onnx/``) is run when it belongs to the folder's weights."""

import json
import logging
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.cli import enhance_main
from speechbrain_fsce.inference import FSCEEnhancement, export_model, onnx_export
from speechbrain_fsce.inference.onnx_export import (
    export_onnx,
    onnx_enhancer,
    shipped_export_mismatch,
    weights_sha256,
)
from speechbrain_fsce.inference.onnx_runtime import CONFIG_NAME, load_config
from tests.unittests.tiny_models import SMALL, calibrated


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A causal tiny model folder with its ONNX export in ``onnx/``."""
    torch.manual_seed(3)
    config = {**SMALL, "causal": True}
    model = tmp_path_factory.mktemp("shipped") / "model"
    export_model(model, FSCEEnhancer(calibrated(FSCE(**config))), config)
    enhancer = FSCEEnhancement.from_hparams(source=str(model)).mods.enhancer
    export_onnx(enhancer, str(model / "onnx"))
    return model


@pytest.fixture
def loaded(folder):
    return FSCEEnhancement.from_hparams(source=str(folder)).mods.enhancer


def _copy(folder, tmp_path, change=None):
    """A copy of the model folder whose fsce_onnx.json went through ``change``."""
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    if change is not None:
        path = copy / "onnx" / CONFIG_NAME
        config = json.loads(path.read_text())
        change(config)
        path.write_text(json.dumps(config))
    return copy


def _no_export(*args, **kwargs):
    raise AssertionError("exported although the folder's own export fits")


def test_export_records_the_weights_and_graphs(folder, loaded):
    config = load_config(str(folder / "onnx"))
    assert config["weights_sha256"] == weights_sha256(loaded.model)
    assert set(config["graphs_sha256"]) == {"fsce_offline.onnx", "fsce_stream.onnx"}
    assert shipped_export_mismatch(loaded, str(folder / "onnx")) is None


def test_weights_sha256_ignores_device_and_sees_one_value(loaded):
    other = FSCE(causal=True, **SMALL)
    other.load_state_dict(loaded.model.state_dict())
    assert weights_sha256(other) == weights_sha256(loaded.model)
    with torch.no_grad():
        next(other.parameters()).view(-1)[0] += 1e-6
    assert weights_sha256(other) != weights_sha256(loaded.model)


def test_a_fitting_export_is_run_without_exporting(folder, loaded, monkeypatch):
    expected = onnx_enhancer(loaded)  # exported afresh
    monkeypatch.setattr(onnx_export, "export_onnx", _no_export)
    used = onnx_enhancer(loaded, shipped=str(folder / "onnx"))
    x = torch.randn(1, 16000) * 0.1
    with torch.no_grad():
        assert torch.equal(used(x), expected(x))


def test_a_non_causal_folder_runs_its_own_offline_graph(tmp_path, monkeypatch):
    torch.manual_seed(4)
    config = {**SMALL, "causal": False}
    model = tmp_path / "model"
    export_model(model, FSCEEnhancer(calibrated(FSCE(**config))), config)
    loaded = FSCEEnhancement.from_hparams(source=str(model)).mods.enhancer
    export_onnx(loaded, str(model / "onnx"))
    assert load_config(str(model / "onnx"))["stream_graph"] is None
    expected = onnx_enhancer(loaded)
    monkeypatch.setattr(onnx_export, "export_onnx", _no_export)
    used = onnx_enhancer(loaded, shipped=str(model / "onnx"))
    x = torch.randn(1, 16000) * 0.1
    with torch.no_grad():
        assert torch.equal(used(x), expected(x))
        assert torch.allclose(used(x), loaded(x), atol=1e-4)


def _earlier_format(config):
    config["format"] = "speechbrain-fsce onnx 1"


def _other_weights(config):
    config["weights_sha256"] = "0" * 64


def _other_receptive_field(config):
    config["receptive_field_frames"] = [config["receptive_field_frames"][0] + 1, 0]


MISFITS = [
    (_earlier_format, "earlier version"),
    (_other_weights, "other weights"),
    (_other_receptive_field, "another architecture"),
]


@pytest.mark.parametrize("change, reason", MISFITS)
def test_an_export_that_does_not_fit_is_named(folder, loaded, tmp_path, change, reason):
    copy = _copy(folder, tmp_path, change)
    assert reason in shipped_export_mismatch(loaded, str(copy / "onnx"))


# Two exports (~13 s of CPU) per case: one case in the fast suite, the others slow.
@pytest.mark.parametrize(
    "change, reason",
    [MISFITS[1], *(pytest.param(*misfit, marks=pytest.mark.slow) for misfit in MISFITS[::2])],
)
def test_an_export_that_does_not_fit_is_replaced_by_a_fresh_one(
    folder, loaded, tmp_path, change, reason, caplog
):
    copy = _copy(folder, tmp_path, change)
    assert reason in shipped_export_mismatch(loaded, str(copy / "onnx"))
    with caplog.at_level(logging.WARNING, logger=onnx_export.__name__):
        enhancer = onnx_enhancer(loaded, shipped=str(copy / "onnx"))
    assert reason in caplog.text and "exporting the network for this run" in caplog.text
    x = torch.randn(1, 4000) * 0.1
    with torch.no_grad():
        assert torch.equal(enhancer(x), onnx_enhancer(loaded)(x))


def test_a_changed_graph_file_is_not_run(folder, loaded, tmp_path):
    copy = _copy(folder, tmp_path)
    with open(copy / "onnx" / "fsce_offline.onnx", "ab") as f:
        f.write(b"\0")
    assert "fsce_offline.onnx" in shipped_export_mismatch(loaded, str(copy / "onnx"))


def test_a_folder_without_onnx_falls_back_quietly(loaded, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger=onnx_export.__name__):
        onnx_enhancer(loaded, shipped=str(tmp_path / "onnx"))
    assert "no ONNX export" in caplog.text


@pytest.mark.parametrize(
    "key, value",
    [
        ("weights_sha256", "ABC"),
        ("weights_sha256", 12),
        ("graphs_sha256", {"fsce_offline.onnx": "0" * 64}),  # the stream graph is missing
        ("graphs_sha256", ["0" * 64]),
    ],
)
def test_bad_hashes_are_a_one_line_error_naming_the_key(folder, tmp_path, key, value):
    def change(config):
        config[key] = value

    copy = _copy(folder, tmp_path, change)
    with pytest.raises(ValueError, match=f"{key} must be") as err:
        load_config(str(copy / "onnx"))
    assert "\n" not in str(err.value)


def test_fsce_enhance_runs_the_folders_export(folder, tmp_path, monkeypatch):
    """fsce-enhance --backend onnx: same output as torch, no export when onnx/ fits."""
    sf.write(
        str(tmp_path / "x.wav"),
        np.random.default_rng(0).standard_normal(16000 + 37) * 0.1,
        16000,
        subtype="FLOAT",
    )
    outs = {}
    for backend in ("torch", "onnx"):
        if backend == "onnx":
            monkeypatch.setattr(onnx_export, "export_onnx", _no_export)
        argv = ["--model", str(folder), str(tmp_path / "x.wav"), "-o", str(tmp_path / backend)]
        assert enhance_main(argv + ["--backend", backend, "--no-progress"]) == 0
        outs[backend], _ = sf.read(str(tmp_path / backend / "x.wav"), dtype="float32")
    assert np.abs(outs["torch"]).max() > 0.01
    assert np.abs(outs["onnx"] - outs["torch"]).max() <= 1e-4
