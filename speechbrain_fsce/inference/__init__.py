"""Inference with FSCE: pretrained model folders, export, long files, streaming, ONNX.

The names below are imported on first use (see ``speechbrain_fsce``), so
that :mod:`speechbrain_fsce.inference.onnx_runtime` works without torch.

Authors
 * speechbrain-fsce developers
"""

from speechbrain_fsce import lazy_exports

_EXPORTS = {
    "enhance_chunked": "speechbrain_fsce.inference.chunked",
    "enhance_file_chunked": "speechbrain_fsce.inference.chunked",
    "export_model": "speechbrain_fsce.inference.export",
    "export_best": "speechbrain_fsce.inference.export",
    "EnhancementFrontEnd": "speechbrain_fsce.inference.frontend",
    "FSCEEnhancement": "speechbrain_fsce.inference.pretrained",
    "FSCEStreamer": "speechbrain_fsce.inference.streaming",
    "export_onnx": "speechbrain_fsce.inference.onnx_export",
    "OnnxStreamer": "speechbrain_fsce.inference.onnx_runtime",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
