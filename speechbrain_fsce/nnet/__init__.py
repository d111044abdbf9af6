"""Building blocks of FSCE: collaborative expert blocks and the S-TCM."""

from speechbrain_fsce.nnet.ceb import CEB, PlainConvBlock
from speechbrain_fsce.nnet.stcm import STCM, GatedDilatedBlock

__all__ = ["CEB", "PlainConvBlock", "STCM", "GatedDilatedBlock"]
