"""Inference with FSCE: pretrained model folders, export, long files, streaming.

Authors
 * speechbrain-fsce developers
"""

from speechbrain_fsce.inference.chunked import enhance_chunked, enhance_file_chunked
from speechbrain_fsce.inference.export import export_best, export_model
from speechbrain_fsce.inference.frontend import EnhancementFrontEnd
from speechbrain_fsce.inference.pretrained import FSCEEnhancement
from speechbrain_fsce.inference.streaming import FSCEStreamer

__all__ = [
    "FSCEEnhancement",
    "EnhancementFrontEnd",
    "FSCEStreamer",
    "enhance_chunked",
    "enhance_file_chunked",
    "export_model",
    "export_best",
]
