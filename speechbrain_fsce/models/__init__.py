"""FSCE network and its waveform-level wrapper."""

from speechbrain_fsce.models.fsce import FSCE, Decoder, Encoder, FSCEOutput

__all__ = ["FSCE", "FSCEOutput", "Encoder", "Decoder"]
from speechbrain_fsce.models.enhancer import FSCEEnhancer  # noqa: E402

__all__ += ["FSCEEnhancer"]
