"""TIMIT data preparation for the FSCE recipe.

A thin wrapper, as SpeechBrain recipes keep a ``<corpus>_prepare.py`` beside
``train.py``; the implementation lives in
:mod:`speechbrain_fsce.dataio.timit` (the command line in
:func:`speechbrain_fsce.cli.prepare_timit_main`). Run it alone with::

    python timit_prepare.py --data_folder /path/to/TIMIT \
        --noise_folder /path/to/noise --test_noise_folder /path/to/unseen \
        --save_folder results/prep

Authors
 * speechbrain-fsce developers
"""

import sys

from speechbrain_fsce.cli import prepare_timit_main as main
from speechbrain_fsce.dataio.timit import (  # noqa: F401
    CORE_TEST_SPEAKERS,
    prepare_timit,
)

if __name__ == "__main__":
    sys.exit(main())
