"""A model folder is data (issue 17): nothing in it runs, every size is bounded.

``speechbrain_fsce.model_folder`` reads ``model.json`` (plain JSON, every
key known and checked) and ``enhancer.ckpt`` (size-bounded, weights only);
``hyperparams.yaml`` is written for plain SpeechBrain and never read by the
safe loader. Also here: export never replaces what it did not write, and the
one-line errors of issue 17, point 4, that concern model folders, export,
``--init_from`` and resuming.
"""

import io
import json
import os
import pathlib
import resource
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch
from hyperpyyaml import load_hyperpyyaml, resolve_references
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce import model_folder as mf
from speechbrain_fsce.checkpoints import SafeCheckpointer
from speechbrain_fsce.cli import export_main
from speechbrain_fsce.inference import shipped
from speechbrain_fsce.inference.export import export_model
from speechbrain_fsce.inference.pretrained import FSCEEnhancement
from speechbrain_fsce.recipe import run_recipe
from tests.unittests.tiny_models import SMALL, calibrated

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Outputs of the shipped models through SpeechBrain's own loader (trusted=True, the
#: folder's hyperparams.yaml); made again whenever the models are re-shipped.
REFERENCE = pathlib.Path(__file__).resolve().parent / "reference" / "shipped_outputs.npz"
RECIPE_YAML = ROOT / "recipes" / "TIMIT" / "hparams" / "fsce.yaml"

#: The payload of issue 17: a !ref joins harmless strings into a Python tag.
COMPOSED_REF = """
p_open: "("
p_body: '!!python/object/apply:os.system ["touch {marker}"]'
p_close: ",)"
p_payload: !ref <p_open><p_body><p_close>
"""


@pytest.fixture(scope="module")
def enhancer():
    torch.manual_seed(0)
    return FSCEEnhancer(calibrated(FSCE(**SMALL))).eval()


@pytest.fixture(scope="module")
def folder(enhancer, tmp_path_factory):
    return export_model(tmp_path_factory.mktemp("mf") / "model", enhancer, SMALL)


def _copy(folder, dst):
    dst.mkdir(parents=True)
    for name in os.listdir(folder):
        (dst / name).write_bytes((folder / name).read_bytes())
    return dst


def _doc(folder):
    return json.loads((folder / "model.json").read_text())


def _write_doc(folder, doc):
    (folder / "model.json").write_text(json.dumps(doc))


def _one_line(err):
    text = str(err.value) if hasattr(err, "value") else str(err)
    assert "\n" not in text and len(text) < 600, text
    return text


# ---------------------------------------------------------------------------
# Nothing in a folder runs.
# ---------------------------------------------------------------------------


def _python(code, cwd):
    """Runs ``code`` in a fresh interpreter (HyperPyYAML runs such payloads only in
    the first load of a process, so an in-process test could miss one)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return proc


def _hostile_folder(folder, dst, marker):
    bad = _copy(folder, dst)
    with open(bad / "hyperparams.yaml", "a") as f:
        f.write(COMPOSED_REF.format(marker=marker))
    return bad


#: The entry points that load a model folder, each run in a fresh interpreter
#: (~7 s of CPU each): the Python API in the fast suite, the command line
#: (also checked in-process by test_cli.py) slow.
ENTRY_POINTS = {
    "api": lambda bad, wav: (
        "from speechbrain_fsce import FSCE, FSCEEnhancer;"
        "from speechbrain_fsce.inference import FSCEEnhancement;"
        "from speechbrain_fsce.inference.shipped import init_from_model;"
        f"FSCEEnhancement.from_hparams(source={bad!r});"
        f"small = {SMALL!r};"
        f"init_from_model(FSCEEnhancer(FSCE(**small)), {bad!r}, small)"
    ),
    "cli --model": lambda bad, wav: (
        "from speechbrain_fsce.cli import enhance_main;"
        f"enhance_main(['--model', {bad!r}, {wav!r}, '-o', 'out', '--no-progress'])"
    ),
    "cli by name": lambda bad, wav: (  # not the folder named noncausal in the working directory
        "from speechbrain_fsce.cli import enhance_main;"
        f"enhance_main([{wav!r}, '-o', 'out', '--no-progress'])"
    ),
}


@pytest.mark.parametrize(
    "entry",
    [
        "api",
        *(pytest.param(name, marks=pytest.mark.slow) for name in ("cli --model", "cli by name")),
    ],
)
def test_composed_ref_payload_runs_nothing(folder, tmp_path, entry):
    """Issue 17: ``!ref <p_open><p_body><p_close>`` composes a Python tag that the old
    text checks let through; no entry point runs it now."""
    marker = tmp_path / "marker"
    bad = _hostile_folder(folder, tmp_path / "bad", marker)
    wav = tmp_path / "in" / "a.wav"
    wav.parent.mkdir()
    sf.write(wav, np.zeros(1600, dtype=np.float32), 16000)
    _copy(bad, tmp_path / "noncausal")  # in the working directory of a run with no --model
    code = ENTRY_POINTS[entry](str(bad), str(wav))
    proc = _python(code, tmp_path)
    assert not marker.exists(), code
    assert proc.returncode == 0, proc.stderr[-2000:]
    if entry != "api":
        assert (tmp_path / "out" / "a.wav").is_file()


def test_trusted_is_the_only_way_to_run_a_folders_yaml(folder, tmp_path):
    """trusted=True (--unsafe-load) still loads an ordinary folder, model.json or not,
    and it is the explicit opt-in that runs the YAML."""
    legacy = _copy(folder, tmp_path / "legacy")
    (legacy / "model.json").unlink()
    safe = FSCEEnhancement.from_hparams(source=str(folder))
    for source in (folder, legacy):
        trusted = FSCEEnhancement.from_hparams(source=str(source), trusted=True)
        x = torch.randn(1, 2000) * 0.1
        assert torch.equal(trusted.enhance_batch(x), safe.enhance_batch(x))
    marker = tmp_path / "marker"
    bad = _hostile_folder(folder, tmp_path / "bad", marker)
    code = (
        "from speechbrain_fsce.inference import FSCEEnhancement;"
        f"FSCEEnhancement.from_hparams(source={str(bad)!r}, trusted=True)"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert marker.exists()  # the user's explicit choice


def test_hyperparams_yaml_still_builds_the_same_model_in_plain_speechbrain(folder, enhancer):
    with open(folder / "hyperparams.yaml") as f:
        hp = load_hyperpyyaml(f)
    rebuilt = hp["enhancer"]
    rebuilt.load_state_dict(torch.load(folder / "enhancer.ckpt", weights_only=True))
    x = torch.randn(1, 3000) * 0.1
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), enhancer(x))


def test_python_construction_equals_the_yamls():
    """build_enhancer (plain Python) initialises exactly as fsce_model.yaml does."""
    arch = mf.complete_architecture({**SMALL, "causal": True, "activation": "ELU"})
    torch.manual_seed(3)
    ours = mf.build_enhancer(arch).state_dict()
    torch.manual_seed(3)
    theirs = load_hyperpyyaml(io.StringIO(mf.render_hparams(arch)))["enhancer"].state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_architecture_keys_are_the_model_yamls():
    assert list(mf.ARCHITECTURE) == list(mf.architecture_keys())


# ---------------------------------------------------------------------------
# model.json: every key known, every value checked, sizes bounded.
# ---------------------------------------------------------------------------


def test_huge_layer_config_is_refused_fast(folder, tmp_path):
    bad = _copy(folder, tmp_path / "bad")
    doc = _doc(bad)
    for changes, message in (
        ({"channels": 60000}, "channels: expected a whole number from 1 to 1024, got 60000"),
        ({"n_fft": 10**9}, "n_fft: expected a whole number"),
        ({"dilations": [1] * 1000}, "dilations: expected a list of 1 to 32"),
        ({"num_tcm_modules": 16, "dilations": [1] * 30}, "S-TCM blocks"),
        ({"dilations": [1024] * 20}, "receptive field"),
        # Every value in its range, the whole too large: counted, never allocated.
        ({"channels": 1024, "inner_channels": 1024, "tcm_hidden_channels": 2048}, "parameters"),
    ):
        _write_doc(bad, {**doc, "architecture": {**doc["architecture"], **changes}})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        with pytest.raises(ValueError, match=message) as err:
            FSCEEnhancement.from_hparams(source=str(bad))
        assert time.perf_counter() - start < 10, changes
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
        assert str(bad / "model.json") in _one_line(err)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["architecture"].update(chanels=8),
            r"unknown architecture key\(s\) \['chanels'\]",
        ),
        (lambda d: d.update(extra=1), "its keys must be format, version, architecture"),
        (lambda d: d["architecture"].pop("eps"), r"missing architecture key\(s\) \['eps'\]"),
        (lambda d: d.update(version=2), "this speechbrain-fsce reads version 1"),
        (lambda d: d.update(format="x"), "format is 'x'"),
        (lambda d: d["architecture"].update(channels=True), "channels: expected a whole number"),
        (lambda d: d["architecture"].update(channels=8.0), "channels: expected a whole number"),
        (lambda d: d["architecture"].update(causal=1), "causal: expected true or false"),
        (lambda d: d["architecture"].update(activation="os.system"), "activation: expected one of"),
        (lambda d: d["architecture"].update(window="!!python"), "window: expected one of"),
        (lambda d: d["architecture"].update(kernel_sizes=[[2, 5, 1]]), "kernel_sizes"),
        (lambda d: d["architecture"].update(hop_length=40), "hop_length 40 ms is longer"),
        (lambda d: d["architecture"].update(freq_stride=3), "not a valid FSCE architecture"),
    ],
)
def test_unknown_keys_and_bad_values_are_refused(folder, tmp_path, edit, message):
    bad = _copy(folder, tmp_path / "bad")
    doc = _doc(bad)
    edit(doc)
    _write_doc(bad, doc)
    with pytest.raises(ValueError, match=message) as err:
        FSCEEnhancement.from_hparams(source=str(bad))
    _one_line(err)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"format": 1, "format": 2}', "duplicate key 'format'"),
        ('{"a": NaN}', "NaN is not a number"),
        ("[" * 50000, "not readable JSON"),
        ('{"a": 1', "not readable JSON"),
        (" " * (mf.MAX_JSON_BYTES + 1), "bytes"),
    ],
)
def test_unreadable_model_json_is_one_line(folder, tmp_path, text, message):
    bad = _copy(folder, tmp_path / "bad")
    (bad / "model.json").write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        FSCEEnhancement.from_hparams(source=str(bad))
    _one_line(err)


def test_legacy_folder_is_named_and_upgraded(folder, tmp_path, capsys):
    legacy = _copy(folder, tmp_path / "legacy")
    (legacy / "model.json").unlink()
    with pytest.raises(ValueError, match="fsce-export --upgrade") as err:
        FSCEEnhancement.from_hparams(source=str(legacy))
    _one_line(err)
    assert export_main(["--upgrade", str(legacy)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert _doc(legacy) == _doc(folder)
    # An edited hyperparams.yaml says more than its plain values: not upgraded.
    edited = _copy(folder, tmp_path / "edited")
    (edited / "model.json").unlink()
    with open(edited / "hyperparams.yaml", "a") as f:
        f.write(COMPOSED_REF.format(marker=tmp_path / "marker"))
    assert export_main(["--upgrade", str(edited)]) == 2
    assert "not the hyperparams.yaml an export writes" in capsys.readouterr().err
    assert not (edited / "model.json").exists() and not (tmp_path / "marker").exists()


# ---------------------------------------------------------------------------
# enhancer.ckpt: bounded before it is unpacked, tensors only.
# ---------------------------------------------------------------------------


def _zip_bomb(path, megabytes=256):
    """Adds a member that deflates ``megabytes`` of zeros into ~0.1% of that."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data/bomb", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(chunk)


def test_zip_bomb_checkpoint_is_refused_before_decompression(folder, tmp_path, monkeypatch):
    bad = _copy(folder, tmp_path / "bad")
    _zip_bomb(bad / "enhancer.ckpt")
    assert (bad / "enhancer.ckpt").stat().st_size < 2 << 20  # small on disk

    def no_unpacking(*args, **kwargs):
        raise AssertionError("torch.load reached a zip bomb")

    monkeypatch.setattr(torch, "load", no_unpacking)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="refused before unpacking") as err:
        FSCEEnhancement.from_hparams(source=str(bad))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB
    assert "enhancer.ckpt" in _one_line(err)


def test_oversized_checkpoint_file_is_refused(folder, tmp_path):
    bad = _copy(folder, tmp_path / "bad")
    with open(bad / "enhancer.ckpt", "ab") as f:
        f.write(bytes(3 << 20))
    with pytest.raises(ValueError, match="a checkpoint of this model can take; refused") as err:
        FSCEEnhancement.from_hparams(source=str(bad))
    _one_line(err)


def test_weights_are_compared_by_value_and_dtype(folder, tmp_path):
    bad = _copy(folder, tmp_path / "bad")
    state = torch.load(bad / "enhancer.ckpt", weights_only=True)
    key = "model.mag_head.weight"
    state[key] = state[key].double()
    torch.save(state, bad / "enhancer.ckpt")
    with pytest.raises(ValueError, match="another dtype") as err:
        FSCEEnhancement.from_hparams(source=str(bad))
    _one_line(err)
    state[key] = state[key].float() * float("nan")
    torch.save(state, bad / "enhancer.ckpt")
    with pytest.raises(ValueError, match="NaN or Inf values") as err:
        FSCEEnhancement.from_hparams(source=str(bad))
    _one_line(err)


# ---------------------------------------------------------------------------
# The shipped models: model.json, and the same output as before.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["noncausal", "causal"])
def test_shipped_models_load_as_data_with_unchanged_output(name, monkeypatch):
    root = shipped.shipped_models_root() / name
    assert (root / "model.json").is_file()
    real_open = open

    def no_yaml(path, *args, **kwargs):
        assert not str(path).endswith("hyperparams.yaml"), "the safe loader read the yaml"
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_yaml)
    model = FSCEEnhancement.from_hparams(source=name)
    monkeypatch.undo()
    reference = np.load(REFERENCE)
    out = model.enhance_batch(torch.from_numpy(reference["noisy"])).numpy()
    assert np.abs(out - reference[name]).max() <= 1e-6


# ---------------------------------------------------------------------------
# Export never replaces what it did not write.
# ---------------------------------------------------------------------------


def _training_run(root, enhancer):
    """A run folder as the recipe leaves it: logs, checkpoints, enhanced audio."""
    root.mkdir()
    (root / "train_log.txt").write_text("epoch: 1, loss: 0.5\n")
    (root / "enhanced").mkdir()
    (root / "enhanced" / "a.wav").write_bytes(b"RIFF")
    Checkpointer(root / "save", {"enhancer": enhancer}).save_checkpoint(meta={"pesq_nb_raw": 2.0})
    return root


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_export_refuses_a_training_run_folder(enhancer, tmp_path, capsys):
    run = _training_run(tmp_path / "run", enhancer)
    before = _tree(run)
    ckpt = next((run / "save").glob("CKPT+*")) / "enhancer.ckpt"
    overrides = json.dumps(SMALL)
    for extra in ([], ["--overwrite"]):
        for source in (["--ckpt", str(ckpt)], ["--save_folder", str(run / "save")]):
            args = [*source, "--overrides", overrides, "--output", str(run), *extra]
            assert export_main(args) == 2
            err = capsys.readouterr().err.strip()
            assert "\n" not in err and "refusing to replace it" in err, err
            assert "train_log.txt" in err
    assert _tree(run) == before
    # An earlier model folder is replaced only with --overwrite.
    out = tmp_path / "model"
    assert export_main(["--ckpt", str(ckpt), "--overrides", overrides, "--output", str(out)]) == 0
    assert export_main(["--ckpt", str(ckpt), "--overrides", overrides, "--output", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    args = ["--ckpt", str(ckpt), "--overrides", overrides, "--output", str(out), "--overwrite"]
    assert export_main(args) == 0


# ---------------------------------------------------------------------------
# One-line errors (issue 17, point 4).
# ---------------------------------------------------------------------------


def test_readme_export_command_with_a_run_yaml(enhancer, tmp_path, capsys):
    """``fsce-export --save_folder … --hparams <run>/hyperparams.yaml`` (the README's):
    the run yaml names its activation as a class; printing it used to raise TypeError."""
    run = _training_run(tmp_path / "run", enhancer)
    with open(RECIPE_YAML, encoding="utf-8") as f:
        (run / "hyperparams.yaml").write_text(resolve_references(f, {"fsce": SMALL}).getvalue())
    args = ["--save_folder", str(run / "save"), "--hparams", str(run / "hyperparams.yaml")]
    assert export_main([*args, "--output", str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert '"activation": "PReLU"' in out
    assert mf.read_architecture(tmp_path / "model") == mf.complete_architecture(SMALL)


def _recipe_error(call):
    """What run_recipe prints for an error ``call`` raises (as ``train.py``)."""
    with pytest.raises(SystemExit) as exit_:
        run_recipe(lambda argv: call(), [])
    message = str(exit_.value.code)
    assert message.startswith("train.py: error: ") and "\n" not in message, message
    return message


def test_init_from_a_non_model_yaml_is_one_line(enhancer, tmp_path):
    fresh = FSCEEnhancer(FSCE(**SMALL))
    # A training run folder (a recipe yaml and a checkpoint, no model.json).
    run = _training_run(tmp_path / "run", enhancer)
    with open(RECIPE_YAML, encoding="utf-8") as f:
        (run / "hyperparams.yaml").write_text(resolve_references(f, {"fsce": SMALL}).getvalue())
    ckpt = next((run / "save").glob("CKPT+*")) / "enhancer.ckpt"
    (run / "enhancer.ckpt").write_bytes(ckpt.read_bytes())
    message = _recipe_error(lambda: shipped.init_from_model(fresh, run, SMALL))
    assert "not an FSCE model folder (missing model.json)" in message
    # The recipe yaml itself.
    message = _recipe_error(lambda: shipped.init_from_model(fresh, RECIPE_YAML, SMALL))
    assert "a file, not a model folder" in message


def test_resuming_with_another_architecture_is_one_line(enhancer, tmp_path):
    """A run folder rerun with another --fsce: the checkpoint does not fit."""
    SafeCheckpointer(tmp_path / "save", {"enhancer": enhancer}).save_checkpoint(meta={"a": 1})
    wider = FSCEEnhancer(FSCE(**dict(SMALL, channels=16)))
    ckpter = SafeCheckpointer(tmp_path / "save", {"enhancer": wider})
    message = _recipe_error(ckpter.recover_if_possible)
    assert "does not fit the enhancer of this run" in message
    assert "another architecture (--fsce)" in message


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_checkpoint_on_resume_is_one_line(enhancer, tmp_path):
    ckpt = SafeCheckpointer(tmp_path / "save", {"enhancer": enhancer}).save_checkpoint(meta={})
    marker = tmp_path / "marker"
    state = dict(enhancer.state_dict(), evil=_Payload(marker))
    torch.save(state, ckpt.path / "enhancer.ckpt")
    fresh = FSCEEnhancer(FSCE(**SMALL))
    ckpter = SafeCheckpointer(tmp_path / "save", {"enhancer": fresh})
    message = _recipe_error(ckpter.recover_if_possible)
    assert "pickled Python objects besides tensors, refused" in message
    assert not marker.exists()
