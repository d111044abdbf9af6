"""Every public class and function of the package has a docstring; classes
have an Example section (SpeechBrain style) so doctests cover them."""

import importlib
import inspect
import pkgutil

import pytest

import speechbrain_fsce

SKIP_MODULES = {"speechbrain_fsce.hparams"}


def _modules():
    for info in pkgutil.walk_packages(speechbrain_fsce.__path__, "speechbrain_fsce."):
        if info.name in SKIP_MODULES or info.name.endswith("__main__"):
            continue
        yield info.name


def _public_members(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield name, obj


@pytest.mark.parametrize("module_name", sorted(_modules()))
def test_public_api_documented(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    missing, no_example = [], []
    for name, obj in _public_members(module):
        if not inspect.getdoc(obj):
            missing.append(name)
        if (
            inspect.isclass(obj)
            and not issubclass(obj, BaseException)
            and "Example" not in (obj.__doc__ or "")
            and not _is_plain_record(obj)
        ):
            no_example.append(name)
    assert not missing, f"{module_name}: undocumented {missing}"
    assert not no_example, f"{module_name}: classes without an Example: {no_example}"


def _is_plain_record(cls):
    """NamedTuples and dataclasses describe fields, not behaviour."""
    return hasattr(cls, "_fields") or hasattr(cls, "__dataclass_fields__")
