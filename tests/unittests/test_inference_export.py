"""Model-folder export: self-contained YAML, strict weights, atomic writes."""

import io
import json
import os

import pytest
import torch
import yaml
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.cli import export_main
from speechbrain_fsce.inference.export import (
    architecture_keys,
    export_best,
    export_model,
    find_best_checkpoint,
    overrides_from_hparams,
    render_hparams,
)
from tests.unittests.tiny_models import SMALL


def small_enhancer(**extra):
    torch.manual_seed(0)
    return FSCEEnhancer(FSCE(**SMALL, **extra))


def test_rendered_yaml_is_self_contained_and_applies_overrides():
    text = render_hparams({**SMALL, "causal": True, "branches": "magnitude"})
    assert "!include" not in text and "!PLACEHOLDER" not in text
    hp = load_hyperpyyaml(io.StringIO(text))
    model = hp["enhancer"].model
    assert model.causal and model.branches == "magnitude"
    assert hp["modules"]["enhancer"] is hp["enhancer"]
    assert hp["pretrainer"].loadables["enhancer"] is hp["enhancer"]
    # No `paths`: the folder is found through `source`, wherever it is.
    assert hp["pretrainer"].paths == {}
    # The objects still refer to the top-level keys, so load-time overrides work.
    hp = load_hyperpyyaml(io.StringIO(text), {"causal": False, "normalize_level": False})
    assert not hp["enhancer"].model.causal and not hp["enhancer"].front_end.normalize_level


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="Unknown model override.*chanels"):
        render_hparams({"chanels": 8})
    assert "dilations" in architecture_keys()


def test_export_writes_model_folder_that_rebuilds_the_same_module(tmp_path):
    enh = small_enhancer(causal=True)
    folder = export_model(tmp_path / "model", enh, {**SMALL, "causal": True})
    assert sorted(os.listdir(folder)) == ["enhancer.ckpt", "hyperparams.yaml"]
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary left over
    with open(folder / "hyperparams.yaml") as f:
        hp = load_hyperpyyaml(f)
    rebuilt = hp["enhancer"]
    rebuilt.load_state_dict(torch.load(folder / "enhancer.ckpt"), strict=True)
    x = torch.randn(1, 3000)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), enh.eval()(x))


def test_export_accepts_bare_network_checkpoint(tmp_path):
    enh = small_enhancer()
    torch.save(enh.model.state_dict(), tmp_path / "model.ckpt")
    folder = export_model(tmp_path / "out", tmp_path / "model.ckpt", SMALL)
    state = torch.load(folder / "enhancer.ckpt")
    assert all(k.startswith("model.") for k in state)


def test_export_rejects_wrong_architecture(tmp_path):
    enh = small_enhancer()
    with pytest.raises(ValueError, match="does not fit"):
        export_model(tmp_path / "a", enh, {**SMALL, "channels": 16})  # shapes differ
    with pytest.raises(ValueError, match="missing key"):
        export_model(tmp_path / "b", enh, {**SMALL, "num_tcm_modules": 2})  # keys differ
    assert not any(p.name in ("a", "b") for p in tmp_path.iterdir())


def test_export_replaces_an_export_but_not_other_folders(tmp_path):
    enh = small_enhancer()
    export_model(tmp_path / "model", enh, SMALL)
    (tmp_path / "model" / "README.md").write_text("old")
    export_model(tmp_path / "model", enh, SMALL)
    assert sorted(os.listdir(tmp_path / "model")) == ["enhancer.ckpt", "hyperparams.yaml"]
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "data.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a model folder"):
        export_model(tmp_path / "precious", enh, SMALL)
    assert (tmp_path / "precious" / "data.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "precious"]


def _training_run(tmp_path, name="enhancer"):
    """A Checkpointer folder with three checkpoints of different weights."""
    enh = small_enhancer()
    ckpter = Checkpointer(tmp_path / "save", {name: enh})
    for pesq in (1.5, 2.5, 2.0):
        with torch.no_grad():  # mark the weights so the test can tell them apart
            enh.model.mag_head.bias.fill_(pesq)
        ckpter.save_checkpoint(meta={"pesq_nb_raw": pesq, "loss": 3 - pesq})
    return tmp_path / "save"


def test_export_best_picks_the_max_key(tmp_path):
    save = _training_run(tmp_path)
    out = export_best(save, tmp_path / "model", SMALL)
    assert out["meta"]["pesq_nb_raw"] == 2.5
    state = torch.load(out["folder"] / "enhancer.ckpt")
    assert state["model.mag_head.bias"].item() == 2.5
    out = export_best(save, tmp_path / "model2", SMALL, min_key="loss")
    assert out["meta"]["pesq_nb_raw"] == 2.5


def test_export_best_reads_model_ckpt_name(tmp_path):
    save = _training_run(tmp_path, name="model")
    _, path = find_best_checkpoint(save)
    assert path.name == "model.ckpt"
    assert export_best(save, tmp_path / "m", SMALL)["meta"]["pesq_nb_raw"] == 2.5


def test_export_best_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint folder"):
        export_best(tmp_path / "nothing", tmp_path / "m")
    assert not (tmp_path / "nothing").exists()
    save = _training_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint with meta key 'pesq_wb'"):
        export_best(save, tmp_path / "m", SMALL, max_key="pesq_wb")


def test_overrides_from_training_yaml(tmp_path):
    run_yaml = tmp_path / "hyperparams.yaml"
    # Shaped like a resolved SpeechBrain run YAML: top-level keys, objects, an
    # included model section.
    run_yaml.write_text(
        "seed: 3\n__set_seed: !apply:torch.manual_seed [3]\ndata_folder: /data\n"
        "causal: true\nchannels: 8\n"
        "fsce: &id1 !new:speechbrain_fsce.models.FSCE\n  channels: 99\n  inner_channels: 4\n"
        "  dilations: [1, 2]\n"
        "compute_stft: !new:speechbrain.processing.features.STFT\n  sample_rate: 16000\n"
        "modules:\n  model: *id1\n"
    )
    assert overrides_from_hparams(run_yaml) == {
        "sample_rate": 16000, "causal": True, "channels": 8, "inner_channels": 4, "dilations": [1, 2],
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("causal: !ref <other>\n")
    with pytest.raises(ValueError, match="unresolved reference"):
        overrides_from_hparams(bad)
    (tmp_path / "none.yaml").write_text("seed: 1\n")
    with pytest.raises(ValueError, match="none of the architecture keys"):
        overrides_from_hparams(tmp_path / "none.yaml")


def test_export_cli(tmp_path, capsys):
    save = _training_run(tmp_path)
    assert export_main(["--save_folder", str(save), "--output", str(tmp_path / "m"),
                        "--overrides", json.dumps(SMALL)]) == 0
    assert "pesq_nb_raw" in capsys.readouterr().out
    run_yaml = tmp_path / "hyperparams.yaml"
    run_yaml.write_text(yaml.safe_dump(SMALL))
    assert export_main(["--save_folder", str(save), "--output", str(tmp_path / "m2"),
                        "--hparams", str(run_yaml)]) == 0
    assert (tmp_path / "m2" / "enhancer.ckpt").is_file()
    # Wrong architecture, bad JSON: one-line errors and status 2.
    assert export_main(["--save_folder", str(save), "--output", str(tmp_path / "m3")]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert export_main(["--save_folder", str(save), "--output", str(tmp_path / "m3"),
                        "--overrides", "{causal: true"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
