"""Speech-like test signals; they live in :mod:`speechbrain_fsce.testing`
so that the package's doctests run from an installed copy too.

Authors
 * speechbrain-fsce developers
"""

from speechbrain_fsce.testing import speech_like  # noqa: F401
