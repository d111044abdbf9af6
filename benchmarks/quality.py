#!/usr/bin/env python3
"""Quality of FSCE, its ablations, SpeechBrain's enhancers and a classical one,
and of the pretrained enhancers a user already has.

One command trains every system at the same budget -- the same training
utterances, noise, SNRs, excerpts and batches in the same order (drawn from
``(seed, step)`` only), the same number of updates, batch size and excerpt
length, the same STFT where a system has one -- and scores each on the
unseen test split of the benchmark corpus (``make benchmark-corpus``) at
every SNR of its manifest (-5/0/5/10 dB, and 20 dB or clean input where the
corpus has them)::

    python benchmarks/quality.py                       # the whole table
    python benchmarks/quality.py --systems fsce,noisy  # some systems
    python benchmarks/quality.py --steps 2000          # a longer budget

Pretrained rows (:data:`PRETRAINED`) are scored as they come, on the same
test mixtures, not trained: the packaged peers ``rnnoise``, ``dtln``,
``gtcrn``, ``dfn3`` (:func:`quality_systems.packaged_systems`; they need the
``peers`` extra, ``pip install -e '.[peers]'``) and the models shipped in
the package, ``shipped_noncausal`` and ``shipped_causal``, loaded as
``fsce-enhance`` loads them::

    python benchmarks/quality.py --systems noisy,rnnoise,dtln,gtcrn,dfn3,shipped_noncausal,shipped_causal

Every trained system trains in its own folder under ``--work`` with a
checkpoint every ``--ckpt_every`` updates (an interrupted run resumes where
it stopped; a finished system is only re-scored if its scores are missing
or were made on other test mixtures). Each row also records what it is,
its parameter count (None where unknown) and its real-time factor on one
thread (:func:`measure_rtf`). Writes ``quality.json`` (``{system:
{"-5"|"0"|...|"clean"|"avg": {metric: value}, "snrs", "groups",
"noise_types", "description", "parameters", "rtf", "steps", ...}}``: per
SNR, per corpus group and per noise type), ``quality.md`` and
``quality.png`` into ``--output``; FSCE systems are also exported as model
folders (``<work>/<system>/model``).

Authors
 * speechbrain-fsce developers
"""

import argparse
import copy
import hashlib
import json
import math
import os
import shlex
import statistics
import sys
import time
from multiprocessing import get_context

import numpy as np
import soundfile as sf
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedData

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_systems import (  # noqa: E402
    PEERS_INSTALL,
    PackagedEnhancer,
    System,
    packaged_systems,
    peer_systems,
)

from speechbrain_fsce.dataio.folders import load_prepared  # noqa: E402
from speechbrain_fsce.dataio.mixing import OnTheFlyMixer  # noqa: E402
from speechbrain_fsce.fileio import atomic_path, atomic_write  # noqa: E402
from speechbrain_fsce.metrics import EnhancementStats, dnsmos_available  # noqa: E402

#: FSCE's base configuration in the table: the demo configuration's width
#: (half the published channels, two S-TCM modules), outputs that start at
#: the noisy input. The published width trains ~2.3x slower per update on
#: these CPUs (benchmarks/RESULTS.md), i.e. too few updates in the budget.
FSCE_BASE = {
    "channels": 32,
    "inner_channels": 16,
    "tcm_hidden_channels": 32,
    "num_tcm_modules": 2,
    "magnitude_output": "mask",
    "complex_output": "residual",
}

#: FSCE systems: overrides of FSCE_BASE (the README's ablations).
FSCE_SYSTEMS = {
    "fsce": {},
    "magnitude_only": {"branches": "magnitude"},
    "complex_only": {"branches": "complex"},
    "no_collaboration": {"collaborate": False},
    "plain_conv": {"block": "conv"},
    "fsce_causal": {"causal": True},
}

#: Table order.
SYSTEMS = (
    "noisy",
    "classical",
    "fsce",
    "fsce_causal",
    "magnitude_only",
    "complex_only",
    "no_collaboration",
    "plain_conv",
    "metricgan_generator",
    "cnn_transformer",
    "enhance_resnet",
)

#: Shipped-model rows: row name -> shipped model name
#: (:data:`speechbrain_fsce.inference.shipped.SHIPPED_MODELS`).
SHIPPED_ROWS = {"shipped_noncausal": "noncausal", "shipped_causal": "causal"}

#: Rows scored as they come (not trained), after :data:`SYSTEMS` in the table:
#: the packaged peers (the ``peers`` extra), then the shipped models. Not in
#: the default ``--systems``.
PRETRAINED = (*packaged_systems(), *SHIPPED_ROWS)

#: What each row of :data:`SYSTEMS` is (the packaged peers and the shipped
#: models describe themselves).
DESCRIPTIONS = {
    "noisy": "unprocessed input",
    "classical": "MMSE-STSA with minimum-statistics noise (no training)",
    "fsce": "FSCE, demo width, trained here",
    "fsce_causal": "causal FSCE, demo width, trained here",
    "magnitude_only": "FSCE ablation: magnitude branch only, trained here",
    "complex_only": "FSCE ablation: complex branch only, trained here",
    "no_collaboration": "FSCE ablation: branches without collaboration, trained here",
    "plain_conv": "FSCE ablation: plain convolutions, trained here",
    "metricgan_generator": "SpeechBrain MetricGAN+ generator (MSE only), trained here",
    "cnn_transformer": "SpeechBrain CNN-Transformer mask, trained here",
    "enhance_resnet": "SpeechBrain EnhanceResnet (quarter width), trained here",
}

#: Learning rate of every trained system (Adam, gradients clipped at 5):
#: one value for all. The peers' recipes use 1e-4 to 5e-4 over tens of
#: epochs; at a budget of a few hundred updates that leaves them far from
#: converged, so every system gets the same, larger step.
LR = 1e-3

#: Peers built narrower than their recipes, with the reason.
NARROWED = {
    # 21.1 M parameters, 24 s per update on one core at the recipe width:
    # the whole table's budget for this one system. A quarter of its
    # channels (1.36 M parameters, 2.7 s per update).
    "enhance_resnet": {"channel_counts": (32, 32, 64, 64, 128, 128), "dense_nodes": 256},
}

METRICS = ("pesq_nb_raw", "pesq_wb", "stoi", "sisdr", "dnsmos_ovrl")
#: SNR columns always present (others appear when the manifest has them).
SNRS = ("-5", "0", "5", "10")
#: Column of the mixtures with an infinite SNR (clean input: noisy == clean).
CLEAN = "clean"


class FSCESystem(System):
    """FSCE (or an ablation) behind the harness interface.

    Trained by the recipes' :class:`~speechbrain_fsce.brain.FSCEBrain`
    (:meth:`brain`): its forward pass, loss and SpeechBrain's step.

    Arguments
    ---------
    overrides : dict
        Keys of ``hparams/fsce_model.yaml``.
    loss_weights : dict, optional
        ``mag_weight``, ``ri_weight``, ``fused_weight`` of
        :class:`~speechbrain_fsce.losses.FSCELoss` (default 1, 1, 0).
    """

    def __init__(self, overrides, loss_weights=None):
        from speechbrain_fsce.inference.export import build_enhancer
        from speechbrain_fsce.losses import FSCELoss

        super().__init__()
        self.overrides = dict(overrides)
        self.enhancer = build_enhancer(self.overrides)
        # The recipes' loss (hparams/fsce_training.yaml): L_mag + L_RI.
        weights = {"mag_weight": 1.0, "ri_weight": 1.0, "fused_weight": 0.0}
        weights.update(loss_weights or {})
        self.criterion = FSCELoss(**weights)

    def enhance(self, noisy, lengths=None):
        """Enhanced waveforms ``[batch, samples]``."""
        return self.enhancer(noisy, lengths)

    def brain(self, opt_class=None, run_opts=None):
        """The recipes' ``FSCEBrain`` on this enhancer and loss (see :meth:`System.brain`)."""
        from speechbrain_fsce.brain import FSCEBrain

        return FSCEBrain(
            modules={"enhancer": self.enhancer},
            opt_class=opt_class,
            hparams={"loss": self.criterion, "dnsmos_stages": []},
            run_opts=run_opts,
        )


class ModelFolderSystem(System):
    """An already trained FSCE model folder (or shipped name), scored as is.

    Arguments
    ---------
    source : str
        A model folder or a shipped model name (``noncausal``, ``causal``).
    """

    trainable = False

    def __init__(self, source):
        from speechbrain_fsce.inference.pretrained import FSCEEnhancement

        super().__init__()
        self.enhancer = FSCEEnhancement.from_hparams(source=source).mods.enhancer

    def enhance(self, noisy, lengths=None):
        """Enhanced waveforms ``[batch, samples]``."""
        return self.enhancer(noisy, lengths)


class ShippedModelSystem(ModelFolderSystem):
    """A model shipped in the package, loaded as ``fsce-enhance`` loads it.

    ``FSCEEnhancement.from_hparams(source=str(resolve_model(name)))``: the
    folder under ``speechbrain_fsce/pretrained_models/`` (a local model
    folder of that name in the working directory would win, as it does for
    ``fsce-enhance``; :attr:`folder` says which was used). Its network
    enhances each whole test mixture (``fsce-enhance`` runs long files in
    10 s chunks with, by default, their exact context: the same output).

    Arguments
    ---------
    name : str
        ``noncausal`` or ``causal``.
    """

    def __init__(self, name):
        from speechbrain_fsce.inference.shipped import resolve_model

        self.folder = str(resolve_model(name))
        super().__init__(self.folder)
        self.name = name

    @property
    def description(self):
        """One line: which shipped model, from where."""
        return f"shipped model `{self.name}` (package data), as fsce-enhance loads it"


#: Extra rows: ``--folders name=DIR`` (set by :func:`main`).
FOLDERS = {}

#: Extra FSCE rows: ``--variant 'name={"lr": 0.002, "fused_weight": 1}'``,
#: changes from the ``fsce`` row (architecture keys, loss weights, lr).
VARIANTS = {}
LOSS_KEYS = ("mag_weight", "ri_weight", "fused_weight")


def _lr(name):
    return VARIANTS.get(name, {}).get("lr", LR)


def _variant_configuration(name):
    spec = VARIANTS[name]
    return {**FSCE_BASE, **{k: v for k, v in spec.items() if k != "lr" and k not in LOSS_KEYS}}


def make_system(name):
    """A fresh system by table name."""
    if name in FOLDERS:
        return ModelFolderSystem(FOLDERS[name])
    if name in SHIPPED_ROWS:
        return ShippedModelSystem(SHIPPED_ROWS[name])
    if name in packaged_systems():
        return packaged_systems()[name]()
    if name in VARIANTS:
        loss = {k: v for k, v in VARIANTS[name].items() if k in LOSS_KEYS}
        return FSCESystem(_variant_configuration(name), loss)
    if name in FSCE_SYSTEMS:
        return FSCESystem({**FSCE_BASE, **FSCE_SYSTEMS[name]})
    peers = peer_systems()
    if name not in peers:
        raise ValueError(f"unknown system {name!r}; choose from {', '.join(SYSTEMS + PRETRAINED)}")
    return peers[name](**NARROWED.get(name, {}))


# ---------------------------------------------------------------------------
# Data: the same batches for every system
# ---------------------------------------------------------------------------


class TrainBatches:
    """Training batch number ``step``, a function of ``(seed, step)`` only.

    Utterances drawn uniformly with replacement from the training manifest,
    a random excerpt of each, noise from the training noise at an integer
    SNR in [-5, 15] dB (the recipes' :class:`OnTheFlyMixer`).

    Arguments
    ---------
    prepared : str
        The prepared corpus folder.
    batch_size : int
        Utterances per batch.
    excerpt_seconds : float
        Excerpt length; shorter utterances are zero-padded (relative lengths).
    seed : int
        Seed of all draws.
    """

    def __init__(self, prepared, batch_size, excerpt_seconds, seed):
        self.items = sorted(load_prepared(prepared, "train").values(), key=lambda v: v["clean_wav"])
        self.mixer = OnTheFlyMixer(os.path.join(prepared, "noise_train.wav"), -5, 15, seed=seed)
        self.batch_size = batch_size
        self.length = int(excerpt_seconds * 16000)
        self.seed = seed

    def __call__(self, step):
        """``(noisy, clean, lengths)`` of update ``step``."""
        rng = np.random.default_rng([self.seed, 7, step])
        self.mixer.set_epoch(step)
        noisy = torch.zeros(self.batch_size, self.length)
        clean = torch.zeros(self.batch_size, self.length)
        lengths = torch.ones(self.batch_size)
        for b, k in enumerate(rng.integers(0, len(self.items), self.batch_size)):
            signal = torch.from_numpy(sf.read(self.items[k]["clean_wav"], dtype="float32")[0])
            excerpt = self.mixer.excerpt(signal, self.length)
            mixed, _ = self.mixer(excerpt)
            n = len(excerpt)
            clean[b, :n], noisy[b, :n] = excerpt, mixed
            lengths[b] = n / self.length
        return noisy, clean, lengths


class TrainBatch:
    """A training batch as the Brains read it: ``noisy_sig`` and ``clean_sig``.

    Arguments
    ---------
    noisy, clean : torch.Tensor
        ``[batch, samples]``.
    lengths : torch.Tensor
        Relative lengths ``[batch]``.

    Example
    -------
    >>> batch = TrainBatch(torch.zeros(2, 8), torch.ones(2, 8), torch.ones(2)).to("cpu")
    >>> noisy, lengths = batch.noisy_sig
    >>> noisy.shape, batch.clean_sig.data.sum().item()
    (torch.Size([2, 8]), 16.0)
    """

    def __init__(self, noisy, clean, lengths):
        self.noisy_sig = PaddedData(noisy, lengths)
        self.clean_sig = PaddedData(clean, lengths)

    def to(self, device):
        """The same batch on ``device``."""
        lengths = self.noisy_sig.lengths.to(device)
        return TrainBatch(self.noisy_sig.data.to(device), self.clean_sig.data.to(device), lengths)


# ---------------------------------------------------------------------------
# Training (resumable) and scoring
# ---------------------------------------------------------------------------


def train(system, folder, batches, steps, ckpt_every, log, lr=LR, device="cpu"):
    """Trains ``system`` to ``steps`` updates, resuming from ``folder``.

    Every update is SpeechBrain's ``Brain.fit_batch`` of the system's Brain
    (:meth:`~quality_systems.System.brain`; for FSCE rows the recipes'
    :class:`~speechbrain_fsce.brain.FSCEBrain`): forward, loss, backward,
    gradients clipped at norm 5, one Adam step.

    Returns ``{"steps", "train_seconds", "train_cpu_seconds", "final_loss"}``.
    """
    ckpt = os.path.join(folder, "train.ckpt")
    brain = system.brain(
        lambda params: torch.optim.Adam(params, lr=lr),
        {"device": str(device), "max_grad_norm": 5.0, "nonfinite_patience": 0},
    )
    brain.init_optimizers()
    opt = brain.optimizer
    state = {"step": 0, "wall": 0.0, "cpu": 0.0, "losses": []}
    if os.path.isfile(ckpt):
        saved = torch.load(ckpt, weights_only=True, map_location=device)
        system.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        log(f"resumed at update {state['step']}")
        if state["step"] > steps:
            raise SystemExit(
                f"{folder}: trained for {state['step']} updates already, more than "
                f"--steps {steps}; use another --work folder"
            )
    if state["step"] >= steps:
        return state
    system.train()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.nonfinite_count = 0  # as Brain.fit sets it for an epoch
    wall0, cpu0, base = time.time(), time.process_time(), dict(state)
    for step in range(state["step"], steps):
        try:
            loss = brain.fit_batch(TrainBatch(*batches(step)))
        except ValueError as err:
            if brain.nonfinite_count:  # the Brain stops at the first non-finite loss
                raise FloatingPointError(f"non-finite loss at update {step}") from err
            raise
        state["losses"].append(loss.item())
        state["step"] = step + 1
        state["wall"] = base["wall"] + time.time() - wall0
        state["cpu"] = base["cpu"] + time.process_time() - cpu0
        if state["step"] % ckpt_every == 0 or state["step"] == steps:
            with atomic_path(ckpt) as tmp:
                torch.save(
                    {"model": system.state_dict(), "opt": opt.state_dict(), "state": state}, tmp
                )
            recent = np.mean(state["losses"][-ckpt_every:])
            log(f"update {state['step']}/{steps}: loss {recent:.4f}, {state['wall']:.0f} s")
    return state


def snr_key(snr):
    """Column of an SNR: ``"clean"`` when infinite (clean input), else as written.

    Example
    -------
    >>> snr_key(-5), snr_key(10.0), snr_key(2.5), snr_key(float("inf"))
    ('-5', '10', '2.5', 'clean')
    """
    value = float(snr)
    if math.isinf(value) and value > 0:
        return CLEAN
    return str(int(value)) if value == int(value) else str(value)


def _snr_order(key):
    return math.inf if key == CLEAN else float(key)


def _noise_type_of():
    """``tools/corpora/benchmark_corpus.py``'s mixture-to-noise-type rule."""
    try:
        from tools.corpora.benchmark_corpus import _mixture_group
    except ImportError:  # run as a script: the repository root is not on sys.path
        sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from tools.corpora.benchmark_corpus import _mixture_group
    return _mixture_group


def mixture_labels(prepared, keys):
    """Corpus group and noise type of test mixtures.

    The group is the manifest's ``"group"`` (``"all"`` where absent). The
    noise type is the manifest's ``"noise_type"`` where present, else the
    type of the noise file the mixture was cut from, as
    ``tools/corpora/benchmark_corpus.py`` (``noisy_scores``) derives it from
    ``noise_test.sources.json`` and the mixture's ``noise_offset`` (the
    file name up to its first ``_``; ``"?"`` where unknown), and None for
    clean input (infinite SNR).

    Arguments
    ---------
    prepared : str
        The prepared corpus folder.
    keys : iterable of str
        Test mixture ids.

    Returns
    -------
    dict
        ``{key: {"group": str, "noise_type": str or None}}``.
    """
    manifest = load_prepared(prepared, "test")
    sources_path = os.path.join(prepared, "noise_test.sources.json")
    sources = None
    if os.path.isfile(sources_path):
        with open(sources_path, encoding="utf-8") as f:
            sources = json.load(f)["files"]
    noise_type_of = None
    labels = {}
    for key in keys:
        item = manifest[key]
        if snr_key(item["snr"]) == CLEAN:
            noise_type = None
        elif item.get("noise_type") is not None:
            noise_type = str(item["noise_type"])
        elif sources is not None and "noise_offset" in item:
            noise_type_of = noise_type_of or _noise_type_of()
            noise_type = noise_type_of(item, "test", sources)
        else:
            noise_type = "?"
        labels[key] = {"group": str(item.get("group") or "all"), "noise_type": noise_type}
    return labels


def scored_test_items(prepared, utterances, seed):
    """The scored test mixtures: ``utterances`` clean test files x every SNR."""
    manifest = load_prepared(prepared, "test")
    clean_ids = sorted({v["clean_id"] for v in manifest.values()})
    if utterances and utterances < len(clean_ids):
        rng = np.random.default_rng([seed, 11])
        clean_ids = sorted(rng.choice(clean_ids, utterances, replace=False).tolist())
    keep = set(clean_ids)
    return {k: v for k, v in sorted(manifest.items()) if v["clean_id"] in keep}


def enhance_and_score(system, items, n_jobs, dnsmos_utterances, log, device="cpu"):
    """Per-mixture scores of ``system`` on ``items``: ``{key: {"snr", metric: value}}``.

    Scored as the recipes score (:class:`~speechbrain_fsce.metrics.EnhancementStats`,
    ``n_jobs`` workers, while the next mixtures are enhanced); the table keeps
    :data:`METRICS`. DNSMOS (~0.5-2 s per clip here, against ~0.3 s for all
    the intrusive metrics together) is computed on the mixtures of the first
    ``dnsmos_utterances`` clean files only (None elsewhere, and without the
    ``dnsmos`` extra).
    """
    system.eval()
    dnsmos_ids = set(sorted({v["clean_id"] for v in items.values()})[:dnsmos_utterances])
    stats = {False: EnhancementStats(16000, n_jobs)}
    if dnsmos_ids and dnsmos_available():
        stats[True] = EnhancementStats(16000, n_jobs, with_dnsmos=True)
    with torch.no_grad():
        for key, item in items.items():
            noisy = torch.from_numpy(sf.read(item["noisy_wav"], dtype="float32")[0])
            clean = torch.from_numpy(sf.read(item["clean_wav"], dtype="float32")[0])
            enhanced = system.enhance(noisy[None].to(device))[0].cpu().numpy()
            enhanced = torch.from_numpy(enhanced.astype(np.float32))
            with_dnsmos = True in stats and item["clean_id"] in dnsmos_ids
            stats[with_dnsmos].append([key], predict=enhanced[None], target=clean[None])
    scores = {}
    for kind in stats.values():
        scores.update(kind.by_id())
    log(f"enhanced and scored {len(scores)} test mixtures")
    per_item = {}
    for key, item in items.items():
        row = {"snr": item["snr"], **{m: scores[key][m] for m in METRICS if m != "dnsmos_ovrl"}}
        dnsmos = scores[key].get("dnsmos_ovrl")
        row["dnsmos_ovrl"] = None if dnsmos is None else float(dnsmos)  # None: not computed
        per_item[key] = row
    return per_item


def _cell(rows):
    """Means of each metric over ``rows``, over the clips it could score."""
    cell = {}
    for m in METRICS:
        tried = [r[m] for r in rows if r.get(m) is not None]
        values = [v for v in tried if math.isfinite(v)]
        cell[m] = float(np.mean(values)) if values else None
        if len(values) < len(tried):  # e.g. PESQ found no utterance, or an infinite SI-SDR
            cell[f"{m}_unscored"] = len(tried) - len(values)
        if m == "dnsmos_ovrl":
            cell["dnsmos_n"] = len(values)
    cell["n"] = len(rows)
    return cell


def _per_snr(rows):
    """``{snr column: cell}`` in SNR order, with ``"avg"`` over the noisy ones."""
    by_snr = {}
    for r in rows:
        by_snr.setdefault(snr_key(r["snr"]), []).append(r)
    table = {key: _cell(by_snr[key]) for key in sorted(by_snr, key=_snr_order)}
    table["avg"] = _cell([r for r in rows if snr_key(r["snr"]) != CLEAN])
    return table


def summarize(per_item):
    """Means per SNR, per group and per noise type, over the clips each metric could score.

    A metric's non-finite values (PESQ finding no utterance, an infinite
    SI-SDR) are left out of its means and counted as ``<metric>_unscored``.

    Arguments
    ---------
    per_item : dict
        ``{mixture: {"snr", metric: value, "group"?, "noise_type"?}}``.

    Returns
    -------
    dict
        ``{snr column: cell}`` for :data:`SNRS` and every other SNR present
        (``"clean"`` for clean input), ``"avg"`` (every mixture with a
        finite SNR), ``"snrs"`` (the SNR columns present, in order),
        ``"groups"`` (``{group: {snr column: cell, "avg": cell}}``; group
        ``"all"`` where the manifest has none) and ``"noise_types"``
        (``{type: {snr column: cell, "avg": cell}}``, noisy mixtures only).
        A cell holds each metric's mean (None: no clip scored), ``n``,
        ``dnsmos_n`` and the ``_unscored`` counts.
    """
    rows = list(per_item.values())
    snrs = sorted({snr_key(r["snr"]) for r in rows}, key=_snr_order)
    table = {snr: _cell([]) for snr in SNRS}
    table.update(_per_snr(rows))
    table = {key: table[key] for key in sorted(set(table) - {"avg"}, key=_snr_order)} | {
        "avg": table["avg"]
    }
    table["snrs"] = snrs
    groups, noise_types = {}, {}
    for r in rows:
        groups.setdefault(r.get("group") or "all", []).append(r)
        if snr_key(r["snr"]) != CLEAN:
            noise_types.setdefault(r.get("noise_type") or "?", []).append(r)
    table["groups"] = {g: _per_snr(groups[g]) for g in sorted(groups)}
    table["noise_types"] = {t: _per_snr(noise_types[t]) for t in sorted(noise_types)}
    return table


def rtf_audio(items, seconds):
    """``seconds`` of 16 kHz test audio to time the systems on.

    The noisy test mixtures one after another (in manifest order, repeated
    if they are shorter), cut to ``seconds``.

    Arguments
    ---------
    items : dict
        Test mixtures (``scored_test_items``).
    seconds : float
        Length wanted.

    Returns
    -------
    numpy.ndarray
        float32, ``round(seconds * 16000)`` samples.
    """
    wanted = int(round(seconds * 16000))
    signals = [sf.read(item["noisy_wav"], dtype="float32")[0] for item in items.values()]
    total = sum(len(x) for x in signals)
    if total == 0:
        raise ValueError("no test audio to measure the real-time factor on")
    repeated = np.concatenate(signals * (wanted // total + 1))
    return repeated[:wanted].astype(np.float32)


def measure_rtf(system, audio, repeats=3):
    """Real-time factor of ``system`` on ``audio``, on the CPU with one thread.

    Seconds of processing per second of audio, median over ``repeats``
    timed runs after one untimed warm-up on the first second: wall-clock
    (``rtf``) and the process's CPU time (``rtf_cpu``; on a machine shared
    with other work the wall time also counts waiting, the CPU time does
    not), with torch at one thread (the packaged peers' onnxruntime sessions
    are set to one thread; their C runtimes ran on one here: CPU time never
    above wall time). A system on
    another device is timed on a CPU copy. For a packaged peer the
    per-signal start (:meth:`~quality_systems.PackagedEnhancer.open_stream`,
    e.g. DeepFilterNet3 loading its model) is timed apart (``start_seconds``):
    the RTF is the cost per hop of a running stream.

    Arguments
    ---------
    system : quality_systems.System
        The system (in eval mode).
    audio : numpy.ndarray
        1-D 16 kHz float32.
    repeats : int
        Timed runs.

    Returns
    -------
    dict
        ``rtf``, ``rtf_cpu``, ``start_seconds`` (None except for packaged
        peers), ``rtf_seconds`` (audio length), ``rtf_repeats``,
        ``rtf_load`` (the machine's one-minute load average just before).

    Example
    -------
    >>> from quality_systems import NoisyInput
    >>> out = measure_rtf(NoisyInput(), np.zeros(16000, dtype=np.float32), repeats=1)
    >>> out["rtf"] >= 0, out["rtf_seconds"], out["start_seconds"]
    (True, 1.0, None)
    """
    on_cpu = all(t.device.type == "cpu" for t in [*system.parameters(), *system.buffers()])
    if not on_cpu:
        system = copy.deepcopy(system).cpu()
    system.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    walls, cpus, starts = [], [], []
    try:
        with torch.no_grad():
            for run in range(repeats + 1):
                signal = audio[:16000] if run == 0 else audio
                state = None
                if isinstance(system, PackagedEnhancer):
                    wall0 = time.perf_counter()
                    state = system.open_stream()
                    starts.append(time.perf_counter() - wall0)
                wall0, cpu0 = time.perf_counter(), time.process_time()
                if isinstance(system, PackagedEnhancer):
                    system.enhance_signal(signal, state)
                    system.close_stream(state)
                else:
                    system.enhance(torch.from_numpy(signal)[None])
                if run:
                    walls.append(time.perf_counter() - wall0)
                    cpus.append(time.process_time() - cpu0)
    finally:
        torch.set_num_threads(threads)
    seconds = len(audio) / 16000
    return {
        "rtf": statistics.median(walls) / seconds,
        "rtf_cpu": statistics.median(cpus) / seconds,
        "start_seconds": statistics.median(starts[1:]) if starts else None,
        "rtf_seconds": seconds,
        "rtf_repeats": repeats,
        "rtf_load": load,
    }


def describe(name, system):
    """One line: what the row ``name`` is."""
    if name in FOLDERS:
        return f"FSCE model folder {FOLDERS[name]}, not trained here"
    if name in VARIANTS:
        return "FSCE variant (see its configuration), trained here"
    if isinstance(system, PackagedEnhancer):
        return f"{system.description} ({system.distribution} {system.version()})"
    if isinstance(system, ShippedModelSystem):
        return system.description
    return DESCRIPTIONS.get(name, name)


def _weights_digest(folder):
    """SHA-256 of a model folder's ``enhancer.ckpt`` (first 16 hex digits; None if absent).

    Part of a folder row's :func:`system_config`: a folder whose weights were
    replaced (a re-shipped model) is scored again instead of re-using the
    scores of the weights it held before.
    """
    path = os.path.join(folder, "enhancer.ckpt")
    if not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _source(name, system=None):
    """Where a row's weights come from (None: trained here)."""
    if name in FOLDERS:
        return os.path.abspath(FOLDERS[name])
    if isinstance(system, ShippedModelSystem):
        return system.folder
    if isinstance(system, PackagedEnhancer):
        return f"{system.distribution}=={system.version()}"
    return None


def prepared_fingerprint(prepared):
    """A hash of what a prepared corpus holds: its manifests and options.

    ``train.json``, ``valid.json``, ``test.json``, ``prepare_options.json``
    and the noise ``*.sources.json`` (those present): a corpus prepared
    again in the same folder, or another one put in its place, has another
    fingerprint, so its work folders are not re-used.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "test.json").write_text("{}")
    >>> a = prepared_fingerprint(str(tmp))
    >>> _ = (tmp / "test.json").write_text('{"x": {}}')
    >>> len(a), a == prepared_fingerprint(str(tmp))
    (16, False)
    """
    digest = hashlib.sha256()
    for name in (
        "train.json",
        "valid.json",
        "test.json",
        "prepare_options.json",
        "noise_train.sources.json",
        "noise_test.sources.json",
    ):
        path = os.path.join(prepared, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                digest.update(name.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:16]


def system_config(name, args, system=None):
    """What a system's training and scores depend on, besides ``--steps``.

    Stored as ``config.json`` in its work folder; a later run with other
    values (another prepared corpus included, even in the same folder:
    :func:`prepared_fingerprint`) is refused rather than resumed or re-used.
    """
    source = _source(name, system)
    return json.loads(
        json.dumps(
            {
                "batch_size": args.batch_size,
                "excerpt_seconds": args.excerpt_seconds,
                "seed": args.seed,
                "lr": _lr(name),
                "variant": VARIANTS.get(name),
                "configuration": (
                    {**FSCE_BASE, **FSCE_SYSTEMS[name]}
                    if name in FSCE_SYSTEMS
                    else NARROWED.get(name)
                ),
                "source": source,
                "test_utterances": args.test_utterances,
                "dnsmos_utterances": args.dnsmos_utterances,
                "prepared": args.prepared,
                "prepared_fingerprint": prepared_fingerprint(args.prepared),
                # model-folder rows only (other rows' configs stay as they were)
                **(
                    {"weights_sha256": _weights_digest(source)}
                    if name in FOLDERS or isinstance(system, ShippedModelSystem)
                    else {}
                ),
            }
        )
    )


def run_system(name, args):
    """Trains (if needed) and scores one system; returns its quality.json entry."""
    FOLDERS.update(getattr(args, "folder_rows", {}))  # in a spawned worker
    VARIANTS.update(getattr(args, "variant_rows", {}))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    folder = os.path.join(args.work, name)
    os.makedirs(folder, exist_ok=True)

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {name}: {msg}"
        print(line, flush=True)
        with open(os.path.join(folder, "log.txt"), "a", encoding="utf-8") as f:
            f.write(line + "\n")

    device = torch.device(getattr(args, "device", "cpu"))
    system = make_system(name).to(device)
    parameters = system.num_parameters()
    config = system_config(name, args, system)
    config_path = os.path.join(folder, "config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved != config:
            changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
            raise SystemExit(
                f"{folder} was trained or scored with other settings ({', '.join(changed)}); "
                "use another --work folder or remove it"
            )
    else:
        atomic_write(config_path, json.dumps(config, indent=1))
    state = {"step": 0, "wall": 0.0, "cpu": 0.0, "losses": []}
    if system.trainable:
        batches = TrainBatches(args.prepared, args.batch_size, args.excerpt_seconds, args.seed)
        state = train(
            system, folder, batches, args.steps, args.ckpt_every, log, lr=_lr(name), device=device
        )
    scores_path = os.path.join(
        folder, f"scores_{args.steps}_{args.test_utterances}_{args.dnsmos_utterances}.json"
    )
    items = scored_test_items(args.prepared, args.test_utterances, args.seed)
    per_item = None
    if os.path.isfile(scores_path):
        with open(scores_path, encoding="utf-8") as f:
            per_item = json.load(f)
        if set(per_item) != set(items):
            log(f"{scores_path}: scored on other test mixtures; scoring again")
            per_item = None
    if per_item is None:
        per_item = enhance_and_score(
            system, items, args.score_jobs, args.dnsmos_utterances, log, device=device
        )
    labels = mixture_labels(args.prepared, per_item)
    for key, label in labels.items():
        per_item[key].update(label)
    atomic_write(scores_path, json.dumps(per_item))
    rtf = {}
    if getattr(args, "rtf_seconds", 0) > 0:
        rtf = measure_rtf(system, rtf_audio(items, args.rtf_seconds), args.rtf_repeats)
        log(
            f"RTF on one thread: {rtf['rtf']:.4f} wall, {rtf['rtf_cpu']:.4f} CPU "
            f"({rtf['rtf_seconds']:g} s of audio, load {rtf['rtf_load']})"
        )
    if (name in FSCE_SYSTEMS or name in VARIANTS) and name not in FOLDERS:
        import inspect

        from speechbrain_fsce.inference.export import export_model

        # The harness's own export, rewritten after every run (a resumed training
        # changes it); export_model refuses to replace a folder unless told to,
        # where it has that option.
        replace = "overwrite" in inspect.signature(export_model).parameters
        export_model(
            os.path.join(folder, "model"),
            system.enhancer,
            system.overrides,
            **({"overwrite": True} if replace else {}),
        )
    entry = summarize(per_item)
    entry["scores_file"] = os.path.abspath(scores_path)
    entry.update(
        description=describe(name, system),
        trained_here=system.trainable,
        parameters=parameters,
        **rtf,
        steps=state["step"],
        train_seconds=round(state["wall"], 1),
        train_cpu_seconds=round(state["cpu"], 1),
        final_loss=float(np.mean(state["losses"][-50:])) if state["losses"] else None,
        lr=_lr(name) if system.trainable else None,
        configuration=(
            {**FSCE_BASE, **FSCE_SYSTEMS[name]}
            if name in FSCE_SYSTEMS
            else _variant_configuration(name)
            if name in VARIANTS
            else NARROWED.get(name, {})
        ),
        loss_weights={k: v for k, v in VARIANTS.get(name, {}).items() if k in LOSS_KEYS} or None,
        source=_source(name, system),
        batch_size=args.batch_size,
        excerpt_seconds=args.excerpt_seconds,
        seed=args.seed,
        threads=args.threads,
        command=getattr(args, "command", None),
    )
    log(
        "avg "
        + ", ".join(f"{m} {entry['avg'][m]:.3f}" for m in METRICS if entry["avg"][m] is not None)
    )
    return name, entry


def _run_system(job):
    name, args = job
    return run_system(name, args)


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------

LABELS = {
    "pesq_nb_raw": "PESQ-NB raw",
    "pesq_wb": "PESQ-WB",
    "stoi": "STOI",
    "sisdr": "SI-SDR (dB)",
    "dnsmos_ovrl": "DNSMOS OVRL",
}


def paired_differences(results, reference="fsce", metrics=("pesq_wb", "stoi"), draws=2000):
    """Mean difference of every row from ``reference`` on the same mixtures.

    Returns ``{row: {metric: (mean, low, high)}}`` with a 95 % bootstrap
    interval over mixtures (paired: the same mixtures are drawn for both),
    for the rows whose per-mixture scores (``scores_file``) are readable;
    mixtures with noise only (clean input left out, as in ``avg``).
    """
    per_item = {}
    for name, e in results.items():
        path = e.get("scores_file")
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                per_item[name] = json.load(f)
    if reference not in per_item:
        return {}
    out = {}
    rng = np.random.default_rng(0)
    for name, items in per_item.items():
        if name == reference:
            continue
        keys = sorted(set(items) & set(per_item[reference]))
        keys = [k for k in keys if snr_key(items[k]["snr"]) != CLEAN]
        if not keys:
            continue
        cell = {}
        for m in metrics:
            pairs = [(items[k][m], per_item[reference][k][m]) for k in keys]
            diff = np.array([a - b for a, b in pairs if a is not None and b is not None])
            diff = diff[np.isfinite(diff)]
            if len(diff) == 0:
                continue
            boot = rng.choice(diff, (draws, len(diff))).mean(axis=1)
            cell[m] = (float(diff.mean()), *map(float, np.percentile(boot, [2.5, 97.5])))
        out[name] = cell
    return out


def _snr_columns(results):
    """SNR columns of the rows, in SNR order (``"clean"`` last)."""
    keys = {k for e in results.values() for k in e.get("snrs", SNRS)} | set(SNRS)
    return sorted(keys, key=_snr_order)


def _paired_table(results, reference):
    paired = paired_differences(results, reference=reference)
    if not paired:
        return []
    lines = [
        "",
        f"Difference from `{reference}` on the same mixtures (with noise; mean, and 95 % "
        "bootstrap interval over mixtures; an interval that holds 0 is no measured "
        "difference; the mixtures of one utterance are correlated, so the intervals are if "
        "anything too narrow):",
        "",
        "| system | PESQ-WB | STOI |",
        "|---|---|---|",
    ]
    for name, cell in paired.items():
        text = [
            f"{cell[m][0]:+.3f} [{cell[m][1]:+.3f}, {cell[m][2]:+.3f}]" if m in cell else "-"
            for m in ("pesq_wb", "stoi")
        ]
        lines.append(f"| {name} | " + " | ".join(text) + " |")
    return lines


def _breakdown_table(results, key, title):
    """Rows x (groups or noise types): PESQ-WB / STOI / SI-SDR averages."""
    columns = sorted({c for e in results.values() for c in e.get(key, {})})
    if not columns:
        return []

    def cell(e, c):
        avg = e.get(key, {}).get(c, {}).get("avg")
        if not avg or not avg.get("n"):
            return "-"
        parts = [
            "-" if avg[m] is None else (f"{avg[m]:.2f}" if m == "sisdr" else f"{avg[m]:.3f}")
            for m in ("pesq_wb", "stoi", "sisdr")
        ]
        return " / ".join(parts)

    counts = {}
    for e in results.values():
        for c in columns:
            n = e.get(key, {}).get(c, {}).get("avg", {}).get("n")
            if n:
                counts[c] = n
    lines = [
        "",
        f"{title}: PESQ-WB / STOI / SI-SDR (dB), averages over the mixtures with noise "
        "(per SNR in quality.json):",
        "",
        "| system | " + " | ".join(f"{c} (n={counts.get(c, 0)})" for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, e in results.items():
        lines.append(f"| {name} | " + " | ".join(cell(e, c) for c in columns) + " |")
    return lines


def markdown(results):
    """The table of ``quality.json`` in markdown, with the commands that made it."""

    def f(v, m):
        if v is None:
            return "-"
        return f"{v:.2f}" if m in ("sisdr",) else f"{v:.3f}"

    def params(e):
        return "n/a" if e.get("parameters") is None else f"{e['parameters']:,}"

    def rtf(e):
        if e.get("rtf") is None:
            return "-"
        return f"{e['rtf']:.3f} / {e['rtf_cpu']:.3f}"

    def trained(e):
        return e.get("trained_here", e.get("steps", 0) > 0)

    snr_columns = _snr_columns(results)
    noisy_columns = [c for c in snr_columns if c != CLEAN]
    timing = {
        (e.get("rtf_seconds"), e.get("rtf_repeats")) for e in results.values() if e.get("rtf")
    }
    lines = [
        "# Quality at equal budget, and pretrained enhancers "
        "(benchmark corpus, unseen speaker and noise types)",
        "",
        "Made by (each row records its command in quality.json):",
        "",
        *[f"- `{c}`" for c in dict.fromkeys(e.get("command", "?") for e in results.values())],
        "",
        "Every trained system: the same updates on the same batches (see the "
        "command's --steps, --batch_size, --excerpt_seconds, --seed), Adam at "
        f"lr {LR:g} (variants below may set another), gradients clipped at 5. "
        "Pretrained rows (updates `-`) are scored as they come on the same test mixtures: "
        "the packaged peers at their own rates (16 kHz input resampled with soxr to and "
        "from 48 kHz for RNNoise and DeepFilterNet3), their algorithmic delays removed, "
        "the shipped models as fsce-enhance loads them. "
        "PESQ, STOI and SI-SDR over every scored test mixture; DNSMOS OVRL over "
        "the mixtures of the first --dnsmos_utterances test files. Narrowed peers: "
        + ", ".join(f"{k} {v}" for k, v in NARROWED.items())
        + ".",
        "",
        "RTF: seconds of processing per second of audio, on the CPU with one thread, "
        "wall-clock / process CPU time (median of "
        + (
            ", ".join(f"{r} runs on {s:g} s" for s, r in sorted(timing))
            if timing
            else "no measurement"
        )
        + " of test audio; the machine's load average at the time is in quality.json; "
        "a packaged peer's per-stream start, such as DeepFilterNet3 loading its model, "
        "is left out: `start_seconds`).",
        "",
        f"Averages over the mixtures with noise ({', '.join(noisy_columns)} dB):",
        "",
        "| system | what | "
        + " | ".join(LABELS[m] for m in METRICS)
        + " | parameters | RTF 1 thread (wall / CPU) | updates | train wall s | train CPU s |",
        "|---|---|" + "---|" * (len(METRICS) + 5),
    ]
    for name, e in results.items():
        what = e.get("description") or DESCRIPTIONS.get(name, "")
        lines.append(
            f"| {name} | {what} | "
            + " | ".join(f(e["avg"][m], m) for m in METRICS)
            + f" | {params(e)} | {rtf(e)} | "
            + (
                f"{e['steps']} | {e['train_seconds']:.0f} | {e['train_cpu_seconds']:.0f} |"
                if trained(e)
                else "- | - | - |"
            )
        )
    headers = [c + (" (clean input)" if c == CLEAN else "") for c in snr_columns]
    for m in METRICS:
        lines += ["", f"{LABELS[m]} per SNR (dB):", "", "| system | " + " | ".join(headers) + " |"]
        lines.append("|---|" + "---|" * len(snr_columns))
        for name, e in results.items():
            lines.append(
                f"| {name} | "
                + " | ".join(f(e[c][m], m) if c in e else "-" for c in snr_columns)
                + " |"
            )
    if CLEAN in snr_columns:
        lines += [
            "",
            "`clean (clean input)`: mixtures without noise (noisy = clean); `noisy` there "
            "scores the clean signal against itself (SI-SDR at the metric's ceiling, about "
            "100 dB: not a measurement). They are left out of every average above and below.",
        ]
    lines += _breakdown_table(results, "groups", "Per corpus group")
    lines += _breakdown_table(results, "noise_types", "Per noise type")
    variants = {
        n: e
        for n, e in results.items()
        if e.get("loss_weights") or (n not in SYSTEMS and n not in PRETRAINED)
    }
    if variants:
        lines += ["", "Rows beyond the systems (FSCE variants, model folders):", ""]
        for name, e in variants.items():
            what = e.get("source") or {
                "lr": e.get("lr"),
                "loss weights": e.get("loss_weights"),
                "configuration": e.get("configuration"),
            }
            lines.append(f"- `{name}`: {what}")
    pretrained = {n: e for n, e in results.items() if n in PRETRAINED}
    if pretrained:
        lines += ["", "Pretrained rows, where their weights come from:", ""]
        for name, e in pretrained.items():
            start = e.get("start_seconds")
            extra = f"; per-stream start {start:.2f} s" if start and start >= 0.01 else ""
            lines.append(f"- `{name}`: {e.get('source')}{extra}")
    for reference in ("fsce", "shipped_noncausal", "shipped_causal"):
        lines += _paired_table(results, reference)
    unscored = {}
    for name, e in results.items():
        for c in [*snr_columns, "avg"]:
            cell = {k: v for k, v in e.get(c, {}).items() if k.endswith("_unscored")}
            if cell:
                unscored.setdefault(name, {})[c] = cell
    if unscored:
        lines += ["", f"Clips a metric could not score (left out of its mean): {unscored}"]
    return "\n".join(lines) + "\n"


def plot(results, path):
    """Bar chart: one panel per metric, one bar per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 4.5))
    for ax, m in zip(axes, METRICS):
        values = [results[n]["avg"][m] if results[n]["avg"][m] is not None else 0 for n in names]
        colors = [
            "0.6"
            if n == "noisy"
            else "C0"
            if n.startswith("fsce") or n.startswith("shipped")
            else "C2"
            if n in PRETRAINED
            else "C1"
            for n in names
        ]
        ax.bar(range(len(names)), values, color=colors)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=70, ha="right", fontsize=8)
        ax.set_title(LABELS[m])
        low = min(values)
        ax.set_ylim(min(0, low) if m == "sisdr" else 0.9 * low, max(values) * 1.05 + 1e-9)
    fig.suptitle(
        "Average over the mixtures with noise (grey: noisy, blue: FSCE family and shipped "
        "models, green: packaged pretrained peers)"
    )
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepared", default="data/benchmark/prepared")
    parser.add_argument("--work", default="results/quality")
    parser.add_argument("--output", default="benchmarks/results")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help="comma-separated rows (default: every trained system, noisy and classical); "
        f"also the pretrained rows {','.join(PRETRAINED)}",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="extra FSCE row: name={json of changes from fsce: architecture keys, "
        "mag_weight/ri_weight/fused_weight, lr} (repeatable)",
    )
    parser.add_argument(
        "--folders",
        default="",
        help="extra rows scored as they are: name=model_folder_or_shipped_name,...",
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--excerpt_seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--ckpt_every", type=int, default=25)
    parser.add_argument("--test_utterances", type=int, default=100)
    parser.add_argument("--dnsmos_utterances", type=int, default=25)
    parser.add_argument("--jobs", type=int, default=2, help="systems trained at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per system")
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device of training and enhancement (default: cuda when present)",
    )
    parser.add_argument("--score_jobs", type=int, default=1, help="scoring processes per system")
    parser.add_argument(
        "--rtf_seconds",
        type=float,
        default=10.0,
        help="seconds of test audio each system's real-time factor is measured on "
        "(one thread, CPU; 0: not measured)",
    )
    parser.add_argument("--rtf_repeats", type=int, default=3, help="timed runs of the RTF")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/quality.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    args.folder_rows = dict(kv.split("=", 1) for kv in args.folders.split(",") if kv.strip())
    FOLDERS.update(args.folder_rows)
    args.variant_rows = {}
    for text in args.variant:
        name, _, spec = text.partition("=")
        try:
            args.variant_rows[name.strip()] = dict(json.loads(spec))
        except (ValueError, TypeError):
            parser.error(f"--variant {text!r}: expected name={{json object}}")
    VARIANTS.update(args.variant_rows)
    names += [n for n in (*args.folder_rows, *args.variant_rows) if n not in names]
    for n in [n for n in names if n not in FOLDERS and n not in VARIANTS]:
        if n not in SYSTEMS + PRETRAINED:
            parser.error(f"unknown system {n!r}; choose from {', '.join(SYSTEMS + PRETRAINED)}")
        peer = packaged_systems().get(n)
        if peer is not None and not peer.available():
            parser.error(f"{n} needs {peer.distribution} (the peers extra: {PEERS_INSTALL})")
    if args.rtf_repeats < 1:
        parser.error("--rtf_repeats must be at least 1")
    if not os.path.isfile(os.path.join(args.prepared, "test.json")):
        parser.error(f"{args.prepared}: no prepared corpus (run `make benchmark-corpus`)")
    args.prepared = os.path.abspath(args.prepared)

    # Longest first, so that two workers finish together.
    first = ("fsce", "fsce_causal", "enhance_resnet", "no_collaboration", "complex_only")
    jobs = [
        (n, args)
        for n in sorted(names, key=lambda n: (n not in first, first.index(n) if n in first else 0))
    ]
    if args.jobs > 1:
        with get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
            done = dict(pool.imap_unordered(_run_system, jobs))
    else:
        done = dict(run_system(n, args) for n in names)

    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "quality.json")
    results = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    results.update(done)
    known = SYSTEMS + PRETRAINED
    order = [n for n in known if n in results] + sorted(set(results) - set(known))
    results = {n: results[n] for n in order}
    atomic_write(path, json.dumps(results, indent=1))
    atomic_write(os.path.join(args.output, "quality.md"), markdown(results))
    plot(results, os.path.join(args.output, "quality.png"))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
