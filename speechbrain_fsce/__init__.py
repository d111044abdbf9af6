"""speechbrain-fsce: FSCE two-branch collaborative speech enhancement for SpeechBrain.

Authors
 * speechbrain-fsce developers
"""

from speechbrain_fsce.models import FSCE, FSCEEnhancer, FSCEOutput
from speechbrain_fsce.processing import SpectralFrontEnd

__version__ = "0.1.0"
__all__ = ["FSCE", "FSCEEnhancer", "FSCEOutput", "SpectralFrontEnd"]
