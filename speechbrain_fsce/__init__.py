"""speechbrain-fsce: FSCE two-branch collaborative speech enhancement for SpeechBrain.

The names below are imported on first use, so that torch-free modules (such
as :mod:`speechbrain_fsce.inference.onnx_runtime`) can be imported where
torch is not installed.

Authors
 * speechbrain-fsce developers
"""

import importlib

__version__ = "0.1.0"
_EXPORTS = {
    "FSCE": "speechbrain_fsce.models",
    "FSCEEnhancer": "speechbrain_fsce.models",
    "FSCEOutput": "speechbrain_fsce.models",
    "SpectralFrontEnd": "speechbrain_fsce.processing",
}
__all__ = sorted(_EXPORTS)


def lazy_exports(package, exports):
    """A module ``__getattr__`` that imports each exported name on first use.

    Arguments
    ---------
    package : str
        The package's name (for the error message).
    exports : dict
        Exported name -> module that defines it.

    Returns
    -------
    callable

    Example
    -------
    >>> getattr_ = lazy_exports("pkg", {"sqrt": "math"})
    >>> getattr_("sqrt")(4.0)
    2.0
    """

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


__getattr__ = lazy_exports(__name__, _EXPORTS)
