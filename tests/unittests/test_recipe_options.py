"""The recipe refuses options it would ignore, misspelt ones included."""

import importlib.util
import pathlib

import pytest
from hyperpyyaml import load_hyperpyyaml

from speechbrain_fsce.inference.export import architecture_from

RECIPE = pathlib.Path(__file__).resolve().parents[2] / "recipes" / "TIMIT"


@pytest.fixture(scope="module")
def train():
    spec = importlib.util.spec_from_file_location("fsce_recipe_train", RECIPE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hparams(**overrides):
    with open(RECIPE / "hparams" / "fsce.yaml", encoding="utf-8") as f:
        return load_hyperpyyaml(f, overrides)


def test_default_is_the_demo_corpus(train):
    args = train.resolve_corpus(_hparams(), "fsce.yaml")
    assert args["corpus"] == "folders" and args["data_folder"].endswith("clean/train")


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"corpus": "timit"}, "corpus: timit needs --data_folder and --noise_folder"),
        ({"corpus": "timit", "data_folder": "/t"}, "needs --noise_folder"),
        ({"data_folder": "/data/TIMIT"}, "corpus: demo does not use data_folder"),
        (
            {
                "corpus": "folders",
                "data_folder": "/d",
                "noise_folder": "/n",
                "core_test_only": True,
            },
            "corpus: folders does not use core_test_only",
        ),
        (
            {
                "corpus": "timit",
                "data_folder": "/t",
                "noise_folder": "/n",
                "clean_test_folder": "/c",
            },
            "corpus: timit does not use clean_test_folder",
        ),
        ({"corpus": "voicebank"}, "not one of demo, timit, folders"),
    ],
)
def test_ignored_or_missing_data_options_are_errors(train, overrides, error):
    with pytest.raises(ValueError, match=error):
        train.resolve_corpus(_hparams(**overrides), "fsce.yaml")


def test_timit_and_folders_get_their_own_options(train):
    timit = train.resolve_corpus(
        _hparams(corpus="timit", data_folder="/t", noise_folder="/n", core_test_only=True), "x"
    )
    assert timit["corpus"] == "timit" and timit["core_test_only"] is True
    assert "clean_test_folder" not in timit
    folders = train.resolve_corpus(
        _hparams(corpus="folders", data_folder="/d", noise_folder="/n", clean_test_folder="/c"), "x"
    )
    assert folders["clean_test_folder"] == "/c" and "core_test_only" not in folders


def test_misnamed_options_are_errors():
    with pytest.raises(KeyError, match="valid_speakers"):  # top level: HyperPyYAML refuses it
        _hparams(valid_speakers=0.2)
    # Inside the !include-d model block HyperPyYAML would add it silently;
    # the recipe checks the block.
    hp = _hparams(fsce={"chanels": 8})
    with pytest.raises(ValueError, match="unknown architecture key.*chanels"):
        architecture_from(hp["fsce"], what="fsce")


def test_fsce_override_reaches_the_model():
    hp = _hparams(fsce={"causal": True, "channels": 8, "inner_channels": 4})
    model = hp["enhancer"].model
    assert model.causal and hp["fsce"]["channels"] == 8
    assert architecture_from(hp["fsce"])["causal"] is True


def test_ablation_one_liners_build_the_ablated_models():
    # The one-line overrides documented in fsce.yaml and the README.
    for override, check in (
        ("{fsce: {branches: magnitude}}", lambda m: m.branches == "magnitude"),
        ("{fsce: {branches: complex}}", lambda m: m.branches == "complex"),
        ("{fsce: {collaborate: False}}", lambda m: not m.collaborate),
        ("{fsce: {block: conv}}", lambda m: not m.collaborate),
    ):
        with open(RECIPE / "hparams" / "fsce.yaml", encoding="utf-8") as f:
            hp = load_hyperpyyaml(f, override)
        assert check(hp["enhancer"].model), override
