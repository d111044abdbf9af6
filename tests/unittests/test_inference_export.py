"""Model-folder export: self-contained YAML, strict weights, atomic writes."""

import io
import json
import os
import pathlib

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml, resolve_references
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.cli import export_main
from speechbrain_fsce.inference.export import (
    architecture_from,
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
    with pytest.raises(ValueError, match="unknown architecture key.*chanels"):
        render_hparams({"chanels": 8})
    assert "dilations" in architecture_keys()


def test_export_writes_model_folder_that_rebuilds_the_same_module(tmp_path):
    enh = small_enhancer(causal=True)
    folder = export_model(tmp_path / "model", enh, {**SMALL, "causal": True})
    assert sorted(os.listdir(folder)) == ["enhancer.ckpt", "hyperparams.yaml", "model.json"]
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


def test_export_replaces_an_export_only_with_overwrite_and_never_other_folders(tmp_path):
    enh = small_enhancer()
    export_model(tmp_path / "model", enh, SMALL)
    with pytest.raises(FileExistsError, match="earlier model folder; pass --overwrite"):
        export_model(tmp_path / "model", enh, SMALL)
    export_model(tmp_path / "model", enh, SMALL, overwrite=True)
    expected = ["enhancer.ckpt", "hyperparams.yaml", "model.json"]
    assert sorted(os.listdir(tmp_path / "model")) == expected
    # A file the export did not write (a model card someone added) is never replaced.
    (tmp_path / "model" / "README.md").write_text("mine")
    with pytest.raises(FileExistsError, match="README.md"):
        export_model(tmp_path / "model", enh, SMALL, overwrite=True)
    assert (tmp_path / "model" / "README.md").read_text() == "mine"
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "data.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="export does not write"):
        export_model(tmp_path / "precious", enh, SMALL, overwrite=True)
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


RECIPE_YAML = (
    pathlib.Path(__file__).resolve().parents[2] / "recipes" / "TIMIT" / "hparams" / "fsce.yaml"
)


def _saved_run_yaml(tmp_path, overrides):
    """A run's hyperparams.yaml exactly as SpeechBrain saves it (resolved)."""
    run_yaml = tmp_path / "hyperparams.yaml"
    with open(RECIPE_YAML, encoding="utf-8") as f:
        run_yaml.write_text(resolve_references(f, overrides).getvalue())
    return run_yaml


def test_overrides_from_training_yaml(tmp_path):
    arch = {**SMALL, "causal": True, "kernel_sizes": [[2, 5], [2, 3]], "mask_max": 1.5}
    run_yaml = _saved_run_yaml(tmp_path, {"fsce": arch, "batch_size": 2})
    found = overrides_from_hparams(run_yaml)
    assert set(found) == set(architecture_keys())  # the whole fsce: block, nothing else
    assert {k: found[k] for k in arch} == arch
    assert found["activation"] == "PReLU"  # plain data: the name of a torch.nn class
    # Only the fsce: block is read: a same-named key elsewhere is not a candidate.
    decoy = tmp_path / "decoy.yaml"
    decoy.write_text("channels: 99\nfsce:\n  channels: 8\nother:\n  causal: true\n")
    assert overrides_from_hparams(decoy) == {"channels": 8}
    for text, error in (
        ("fsce:\n  causal: !ref <other>\n", "unresolved reference"),
        ("fsce:\n  chanels: 8\n", "unknown architecture key.*chanels"),
        ("fsce:\n  seed: 1\n", "unknown architecture key.*seed"),
        ("fsce:\n  model: !new:x.Y\n", "none of the architecture keys"),
        ("causal: true\nchannels: 8\n", "no `fsce:` block"),  # no guessing at the top level
        ("seed: [1\n", "not a readable YAML"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=error):
            overrides_from_hparams(bad)


def test_model_folder_yaml_reads_back_its_architecture(tmp_path):
    arch = {**SMALL, "causal": True, "tcm_kernel_size": 3}
    torch.manual_seed(0)
    folder = export_model(tmp_path / "model", FSCEEnhancer(FSCE(**arch)), arch)
    found = overrides_from_hparams(folder / "hyperparams.yaml")
    assert {k: found[k] for k in arch} == arch


def test_every_constructor_argument_is_exported(tmp_path):
    arch = {
        **SMALL,
        "kernel_sizes": [[3, 5], [2, 4]],
        "freq_stride": 4,
        "tcm_kernel_size": 3,
        "mask_max": 1.5,
        "magnitude_output": "mask",
        "complex_output": "residual",
        "collaborate": False,
        "activation": torch.nn.ELU,
        "eps": 1e-6,
    }
    assert set(arch) - set(architecture_keys()) == set()
    torch.manual_seed(0)
    enh = FSCEEnhancer(FSCE(**arch))
    folder = export_model(tmp_path / "model", enh, arch)
    assert overrides_from_hparams(folder / "model.json")["activation"] == "ELU"
    with open(folder / "hyperparams.yaml") as f:
        model = load_hyperpyyaml(f)["enhancer"].model
    assert repr(model) == repr(enh.model)  # kernels, strides, activation class
    assert (model.mask_max, model.eps, model.collaborate) == (1.5, 1e-6, False)
    assert [list(k) for k in model.kernel_sizes] == arch["kernel_sizes"]


def test_recipe_fsce_block_defaults_to_published_model():
    with open(RECIPE_YAML, encoding="utf-8") as f:
        hp = load_hyperpyyaml(f, {"fsce": {"causal": False}})
    found = architecture_from(hp["fsce"], what="fsce")
    defaults = architecture_keys()
    assert found == defaults
    with pytest.raises(ValueError, match="unknown architecture key.*chanels"):
        architecture_from({**hp["fsce"], "chanels": 8})


def test_export_cli(tmp_path, capsys):
    save = _training_run(tmp_path)
    assert (
        export_main(
            [
                "--save_folder",
                str(save),
                "--output",
                str(tmp_path / "m"),
                "--overrides",
                json.dumps(SMALL),
            ]
        )
        == 0
    )
    assert "pesq_nb_raw" in capsys.readouterr().out
    run_yaml = tmp_path / "hyperparams.yaml"
    run_yaml.write_text(json.dumps({"fsce": SMALL}))  # JSON is YAML
    assert (
        export_main(
            [
                "--save_folder",
                str(save),
                "--output",
                str(tmp_path / "m2"),
                "--hparams",
                str(run_yaml),
            ]
        )
        == 0
    )
    assert (tmp_path / "m2" / "enhancer.ckpt").is_file()
    # Wrong architecture, bad JSON: one-line errors and status 2.
    assert export_main(["--save_folder", str(save), "--output", str(tmp_path / "m3")]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert (
        export_main(
            [
                "--save_folder",
                str(save),
                "--output",
                str(tmp_path / "m3"),
                "--overrides",
                "{causal: true",
            ]
        )
        == 2
    )
    assert "not valid JSON" in capsys.readouterr().err
