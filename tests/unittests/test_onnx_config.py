"""fsce_onnx.json is checked value by value: a tampered file is a one-line error naming the key."""

import json
import math
import os
import runpy
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.inference import shipped
from speechbrain_fsce.inference.onnx_export import export_onnx
from speechbrain_fsce.inference.onnx_runtime import (
    CONFIG_NAME,
    OnnxStreamer,
    enhance_offline,
    load_config,
)
from tests.unittests.tiny_models import SMALL

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("export")
    export_onnx(FSCEEnhancer(FSCE(causal=True, **SMALL)).eval(), str(folder))
    return folder


def _tampered(exported, tmp_path, change):
    folder = tmp_path / "tampered"
    shutil.copytree(exported, folder)
    config = json.loads((folder / CONFIG_NAME).read_text())
    change(config)
    (folder / CONFIG_NAME).write_text(json.dumps(config))  # NaN / Infinity as JSON allows
    return folder


def _set(key, value):
    def change(config):
        config[key] = value

    return change


def _drop_weights_sha256(config):
    del config["weights_sha256"]


def _set_state_initial(value):
    def change(config):
        config["state"][0]["initial"] = value

    return change


def _state_initial(config):
    config["state"][0]["initial"] = math.inf


def _state_shape(config):
    config["state"][0]["shape"] = [1, 10**6, 10**6]


def _drop_eps(config):
    del config["eps"]


TAMPERED = {  # the three, then the rest of the file
    "eps -1": ("eps", _set("eps", -1)),
    "state initial NaN": ("state[0].initial", _set_state_initial(math.nan)),
    "compression 0": ("compression", _set("compression", 0)),
    "eps NaN": ("eps", _set("eps", math.nan)),
    "eps missing": ("eps", _drop_eps),
    "compression 2": ("compression", _set("compression", 2.0)),
    "hop 0": ("hop_samples", _set("hop_samples", 0)),
    "hop float": ("hop_samples", _set("hop_samples", 160.5)),
    "n_fft": ("n_fft", _set("n_fft", 512)),
    "num_freqs": ("num_freqs", _set("num_freqs", 3)),
    "sample rate text": ("sample_rate", _set("sample_rate", "16000")),
    "sample rate 0": ("sample_rate", _set("sample_rate", 0)),
    "weights_sha256 missing": ("weights_sha256", _drop_weights_sha256),
    "graphs_sha256 short": ("graphs_sha256", _set("graphs_sha256", {"fsce_offline.onnx": "ab"})),
    "earlier format": ("fsce-export --onnx", _set("format", "speechbrain-fsce onnx 1")),
    "graph outside": ("stream_graph", _set("stream_graph", "../elsewhere.onnx")),
    "latency": ("latency_samples", _set("latency_samples", -5)),
    "normalize_level": ("normalize_level", _set("normalize_level", "yes")),
    "state initial inf": ("state[0].initial", _state_initial),
    "state shape huge": ("state[0].shape", _state_shape),
    "unknown key": ("unknown key(s) extra", _set("extra", 1)),
    "format": ("format", _set("format", "other 2")),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_config_is_a_one_line_error_naming_the_key(case, exported, tmp_path):
    key, change = TAMPERED[case]
    folder = _tampered(exported, tmp_path, change)
    for load in (
        lambda: load_config(str(folder)),
        lambda: OnnxStreamer(str(folder)),
        lambda: enhance_offline(str(folder), np.zeros(1600, np.float32)),
    ):
        with pytest.raises(ValueError) as err:
            load()
        message = str(err.value)
        assert "\n" not in message and key in message and CONFIG_NAME in message, message


def test_untouched_exports_pass(exported):
    config = load_config(str(exported))
    assert config["state"][0]["name"] == "input.previous_hop"
    load_config(str(shipped.onnx_folder("causal")))  # the shipped export


def test_not_json_is_a_one_line_error(exported, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(exported, folder)
    (folder / CONFIG_NAME).write_bytes(b"{\x00not json")
    with pytest.raises(ValueError, match="is not a JSON file written by fsce-export --onnx"):
        load_config(str(folder))


@pytest.mark.parametrize("case", ["eps -1", "state initial NaN", "earlier format"])
def test_stream_onnx_example_stops_on_a_tampered_config(case, exported, tmp_path, capsys):
    """Before format checks: 132,800 NaN samples written with exit 0 (eps, window), a
    ZeroDivisionError; an export of an earlier format asks to be exported again."""
    key, change = TAMPERED[case]
    folder = _tampered(exported, tmp_path, change)
    noisy, out = tmp_path / "noisy.wav", tmp_path / "out.wav"
    sf.write(noisy, np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1, 16000)
    main = runpy.run_path(os.path.join(ROOT, "recipes", "examples", "stream_onnx.py"))["main"]
    assert main(["--onnx", str(folder), str(noisy), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
    assert not out.exists()
