"""Where the package's shared files live (model YAMLs, the demo corpus).

Authors
 * speechbrain-fsce developers
"""

import pathlib
from importlib import resources


def hparams_file(name="fsce_model.yaml"):
    """Path of a YAML from the top-level ``hparams/`` folder.

    Works from a source checkout and from an installed package (where the
    folder ships as ``speechbrain_fsce.hparams``).

    Example
    -------
    >>> hparams_file().name
    'fsce_model.yaml'
    >>> hparams_file().exists()
    True
    """
    checkout = pathlib.Path(__file__).resolve().parents[1] / "hparams" / name
    if checkout.exists():
        return checkout
    path = pathlib.Path(str(resources.files("speechbrain_fsce.hparams") / name))
    if not path.exists():
        raise FileNotFoundError(f"No packaged hparams file named {name!r}")
    return path


def demo_corpus_folder():
    """Folder of the embedded demo corpus (``clean/``, ``noise/``, ``SOURCES.md``).

    Example
    -------
    >>> demo_corpus_folder().name
    'demo_corpus'
    """
    return pathlib.Path(__file__).resolve().parent / "dataio" / "demo_corpus"
