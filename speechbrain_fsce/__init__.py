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


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'speechbrain_fsce' has no attribute {name!r}")
