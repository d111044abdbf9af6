"""Signal processing front end of FSCE."""

from speechbrain_fsce.processing.spectral import SpectralFrontEnd

__all__ = ["SpectralFrontEnd"]
