"""Corpus builders: the committed demo corpus and the benchmark corpus.

* :mod:`tools.corpora.demo_corpus` rebuilds ``speechbrain_fsce/dataio/demo_corpus``
  (``make demo-corpus``);
* :mod:`tools.corpora.benchmark_corpus` builds ``data/benchmark``
  (``make benchmark-corpus``);
* :mod:`tools.corpora.common` holds what both share (Debian packages, signal
  helpers, noise licences); :mod:`tools.corpora.sentences` the project's
  sentences read by the demo voices.
"""
