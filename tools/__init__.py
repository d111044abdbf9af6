"""Developer tools of speechbrain-fsce (not part of the installed package).

Run them from the repository root, e.g. ``python -m tools.corpora.demo_corpus``.
"""
