"""SpeechBrain ``Brain`` that trains and evaluates FSCE.

Batches carry ``noisy_sig`` and ``clean_sig`` (``PaddedData``), plus ``snr``
for the test set. Training minimises ``FSCELoss`` (L_mag + L_RI); validation
scores the enhanced speech with the paper's raw narrow-band PESQ, wide-band
PESQ, STOI, SI-SDR and the composite measures (every ``valid_every_n_epochs``
epochs; the loss every epoch); the test stage also scores the noisy input per
SNR, adds DNSMOS when the ``dnsmos`` extra is installed, and writes enhanced
wavs, spectrograms, ``results.{md,json}`` and ``index.html``.

Authors
 * speechbrain-fsce developers
"""

import logging
import pathlib
import time

import numpy as np
import speechbrain as sb
import torch
from speechbrain.utils.distributed import if_main_process

from speechbrain_fsce.checkpoints import SafeCheckpointer, TrainingLock
from speechbrain_fsce.dataio.audio import save_wav
from speechbrain_fsce.dataio.mixing import as_snr
from speechbrain_fsce.metrics import DNSMOS_NAMES, EnhancementStats, dnsmos_available
from speechbrain_fsce.reporting import (
    REPORTED_METRICS,
    plot_spectrograms,
    write_listening_page,
    write_results,
)

logger = logging.getLogger(__name__)


def _rank():
    """This process's rank in a multi-process run (0 otherwise)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def close_distributed():
    """Destroys the default process group, if this process joined one.

    Call it once at the end of a multi-process run. Left to interpreter
    shutdown, Gloo's worker threads can still hold tensors when Python is torn
    down, and the process then aborts (SIGABRT) after all its work is done.

    Returns
    -------
    bool
        Whether a process group was destroyed.

    Example
    -------
    >>> close_distributed()  # a single-process run: nothing to close
    False
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
        return True
    return False


def level_jitter(batch_size, max_db, device=None):
    """Random level gains, ``[batch_size, 1]``, uniform in dB within ``±max_db``.

    Example
    -------
    >>> torch.manual_seed(0) is not None
    True
    >>> gains = level_jitter(1000, 6.0)
    >>> gains.shape, bool(gains.min() >= 10 ** (-6 / 20)), bool(gains.max() <= 10 ** (6 / 20))
    (torch.Size([1000, 1]), True, True)
    >>> bool(level_jitter(3, 0.0).eq(1).all())
    True
    """
    db = (torch.rand(batch_size, 1, device=device) * 2 - 1) * max_db
    return 10 ** (db / 20)


class FSCEBrain(sb.Brain):
    """Trains the ``enhancer`` module (an :class:`FSCEEnhancer`).

    Hyperparameters it reads (:attr:`HPARAMS`, besides SpeechBrain's run
    options): ``loss`` (an ``FSCELoss``), ``lr_annealing`` (SpeechBrain
    ``ReduceLROnPlateau``), ``epoch_counter``, ``train_logger``,
    ``sample_rate``, ``test_snrs``, ``enhanced_folder``, ``report_folder``,
    ``listening_per_snr`` and optionally ``time_budget_minutes``, ``metric_n_jobs``
    (parallel workers scoring validation and test, default 1) and
    ``tensorboard_logger``, and ``best_metric``: the validation metric (one
    of ``REPORTED_METRICS``, default ``pesq_nb_raw``) whose maximum selects
    the checkpoint kept, tested and exported. Also optional:
    ``valid_every_n_epochs`` (default 1): validation metrics are computed on
    epochs divisible by it and on the last epoch (the one ``number_of_epochs``
    or the time budget ends on); the validation loss, which anneals the
    learning rate, every epoch. A checkpoint of an epoch without metrics
    gets ``-inf`` for ``best_metric``, so it never wins while a scored one
    exists. ``dnsmos_stages`` (default ``["test"]``): the stages (``valid``,
    ``test``) whose scores include DNSMOS, when the ``dnsmos`` extra is
    installed (skipped with one warning otherwise). Every stage with metrics
    reports ``pesq_failed``, the utterances PESQ could not score; the
    means are over the scored ones. ``train_level_jitter_db`` (default 0):
    in training, the level the network sees is the excerpt's own times a
    random gain, uniform in dB within plus or minus this many dB, per
    excerpt, so that the model behaves alike at any input level (the
    tracked level of a stream lags a level change). Anything else in a recipe's yaml is the
    recipe's.

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> from speechbrain_fsce.losses import FSCELoss
    >>> tiny = FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8, num_tcm_modules=1)
    >>> brain = FSCEBrain(modules={"enhancer": FSCEEnhancer(tiny)}, hparams={"loss": FSCELoss()})
    >>> batch = PaddedBatch([{"id": "a", "noisy_sig": torch.randn(8000), "clean_sig": torch.randn(8000)}])
    >>> brain.on_stage_start(sb.Stage.TRAIN)
    >>> loss = brain.compute_objectives(brain.compute_forward(batch, sb.Stage.TRAIN), batch, sb.Stage.TRAIN)
    >>> loss.dim(), sorted(brain.loss_terms)
    (0, ['mag', 'ri'])
    """

    #: Every hparam this Brain reads (a consistency test keeps it exact).
    HPARAMS = (
        "loss",
        "lr_annealing",
        "epoch_counter",
        "train_logger",
        "sample_rate",
        "test_snrs",
        "enhanced_folder",
        "report_folder",
        "listening_per_snr",
        "time_budget_minutes",
        "tensorboard_logger",
        "metric_n_jobs",
        "best_metric",
        "valid_every_n_epochs",
        "dnsmos_stages",
        "train_level_jitter_db",
    )

    def __init__(self, *args, checkpointer=None, **kwargs):
        # Atomic saves; recovery skips an incomplete checkpoint (a kill mid-save).
        super().__init__(*args, checkpointer=SafeCheckpointer.like(checkpointer), **kwargs)
        # One training per checkpoint folder: a second one stops with a clear error.
        self.training_lock = None
        if self.checkpointer is not None and if_main_process():
            self.training_lock = TrainingLock(self.checkpointer.checkpoints_dir).acquire()
        self.best_metric = getattr(self.hparams, "best_metric", "pesq_nb_raw")
        if self.best_metric not in REPORTED_METRICS:
            raise ValueError(
                f"best_metric: {self.best_metric!r} is not one of {', '.join(REPORTED_METRICS)}"
            )
        self.valid_every_n_epochs = int(getattr(self.hparams, "valid_every_n_epochs", 1) or 1)
        if self.valid_every_n_epochs < 1:
            raise ValueError(f"valid_every_n_epochs: {self.valid_every_n_epochs} is not >= 1")
        self.dnsmos_stages = self._dnsmos_stages()
        self.level_jitter_db = float(getattr(self.hparams, "train_level_jitter_db", 0) or 0)
        if self.level_jitter_db < 0:
            raise ValueError(f"train_level_jitter_db: {self.level_jitter_db} is not >= 0")

    def _dnsmos_stages(self):
        """The stages scored with DNSMOS: ``dnsmos_stages`` if speechmos is installed."""
        stages = set(getattr(self.hparams, "dnsmos_stages", ("test",)) or ())
        if not stages <= {"valid", "test"}:
            raise ValueError(f"dnsmos_stages: {sorted(stages)} must be a subset of [valid, test]")
        if self.best_metric in DNSMOS_NAMES:
            if "valid" not in stages:
                raise ValueError(f"best_metric: {self.best_metric} needs valid in dnsmos_stages")
            dnsmos_available(require=True)  # or the one-line ImportError: what to install
        if stages and not dnsmos_available():
            logger.warning(
                "DNSMOS skipped (dnsmos_stages: %s): pip install speechbrain-fsce[dnsmos]",
                sorted(stages),
            )
            return set()
        return stages

    def compute_forward(self, batch, stage):
        """Runs FSCE on the noisy batch; returns what the objectives need."""
        batch = batch.to(self.device)
        noisy, lens = batch.noisy_sig
        clean, _ = batch.clean_sig
        scale = None
        if stage == sb.Stage.TRAIN and self.level_jitter_db:
            scale = self.enhancer.front_end.level(noisy, lens) * level_jitter(
                noisy.shape[0], self.level_jitter_db, noisy.device
            )
        output, _, scale = self.modules.enhancer(noisy, lens, return_spectra=True, scale=scale)
        target = self.enhancer.target_spectrum(clean, scale)
        return output, target, scale

    @property
    def enhancer(self):
        """The :class:`FSCEEnhancer`, unwrapped from DistributedDataParallel."""
        module = self.modules.enhancer
        return getattr(module, "module", module)

    def _wrap_distributed(self):
        """As SpeechBrain's, but keeps plain BatchNorm on CPU (gloo).

        SpeechBrain converts every BatchNorm to SyncBatchNorm, which only runs
        on GPUs; on CPU each process keeps its own batch statistics.
        """
        if self.distributed_launch and str(self.device).startswith("cpu"):
            for name, module in self.modules.items():
                if any(p.requires_grad for p in module.parameters()):
                    self.modules[name] = torch.nn.parallel.DistributedDataParallel(
                        module, find_unused_parameters=self.find_unused_parameters
                    )
            return
        super()._wrap_distributed()

    def compute_objectives(self, predictions, batch, stage):
        """``L_mag + L_RI``; scores the enhanced waveforms outside training.

        The waveforms scored are those ``FSCEEnhancer.forward`` returns
        (:meth:`~speechbrain_fsce.models.FSCEEnhancer.enhanced_waveform` of
        the same network output).
        """
        output, target, scale = predictions
        noisy, lens = batch.noisy_sig
        loss, terms = self.hparams.loss(output, target, lens, front_end=self.enhancer.front_end)
        for name, value in terms.items():
            self.loss_terms.setdefault(name, []).append(value.item())
        if stage != sb.Stage.TRAIN and self.scoring:
            enhanced = self.enhancer.enhanced_waveform(output, scale, noisy.shape[-1])
            self._score(batch, enhanced.detach(), stage)
        return loss

    def _score(self, batch, enhanced, stage):
        """Queues the batch for scoring (``EnhancementStats``, in parallel)."""
        noisy, lens = batch.noisy_sig
        clean, _ = batch.clean_sig
        self.enhanced_stats.append(batch.id, predict=enhanced, target=clean, lengths=lens)
        if stage != sb.Stage.TEST:
            return
        self.noisy_stats.append(batch.id, predict=noisy, target=clean, lengths=lens)
        for i, utt_id in enumerate(batch.id):
            n = int(round(lens[i].item() * noisy.shape[-1]))
            self.snrs[utt_id] = as_snr(float(batch.snr[i]))
            self._save_test_outputs(
                utt_id,
                self.snrs[utt_id],
                *(x[i, :n].cpu().numpy() for x in (noisy, enhanced, clean)),
            )

    @property
    def records(self):
        """This stage's per-utterance scores: ``{"id", "enhanced"}``, plus
        ``"noisy"`` and ``"snr"`` in the test stage."""
        noisy = self.noisy_stats.by_id()
        return [
            {"id": utt_id, "enhanced": scores}
            | ({"noisy": noisy[utt_id], "snr": self.snrs[utt_id]} if utt_id in noisy else {})
            for utt_id, scores in self.enhanced_stats.by_id().items()
        ]

    def _save_test_outputs(self, utt_id, snr, noisy, enhanced, clean):
        """Enhanced wav for every test item; a few listening samples per SNR."""
        if not if_main_process():
            return
        sr = self.hparams.sample_rate
        save_wav(pathlib.Path(self.hparams.enhanced_folder) / f"{utt_id}.wav", enhanced, sr)
        per_snr = sum(1 for s in self.listening if s["snr"] == snr)
        if per_snr >= self.hparams.listening_per_snr:
            return
        folder = pathlib.Path(self.hparams.report_folder)
        sample = {"id": utt_id, "snr": snr}
        for kind, sig in (("noisy", noisy), ("enhanced", enhanced), ("clean", clean)):
            rel = f"samples/{utt_id}_{kind}.wav"
            save_wav(folder / rel, sig, sr)
            sample[kind] = rel
        sample["spectrogram"] = f"samples/{utt_id}.png"
        plot_spectrograms(
            folder / sample["spectrogram"],
            {f"noisy ({snr} dB)": noisy, "enhanced": enhanced, "clean": clean},
            sr,
        )
        self.listening.append(sample)

    def on_fit_start(self):
        """Remembers when training started (for the optional time budget)."""
        super().on_fit_start()  # recovers the latest checkpoint, if any
        self.fit_start_time = time.time()
        self._first_epoch = self.hparams.epoch_counter.current + 1
        self._longest_valid = 0.0

    def scores_epoch(self, epoch):
        """Whether validation computes metrics after ``epoch`` (else the loss only).

        True on epochs divisible by ``valid_every_n_epochs`` and on the last
        one (``number_of_epochs``, or the one the time budget stops after:
        this call makes that decision).

        Arguments
        ---------
        epoch : int
            The epoch being validated.

        Returns
        -------
        bool
        """
        counter = getattr(self.hparams, "epoch_counter", None)
        if self._check_time_budget(epoch) or counter is None or epoch >= counter.limit:
            return True
        return epoch % self.valid_every_n_epochs == 0

    def on_stage_start(self, stage, epoch=None):
        """Fresh accumulators for each stage; per-epoch noise draws for training."""
        mixer = getattr(self, "train_mixer", None)
        if stage == sb.Stage.TRAIN and mixer is not None:
            mixer.set_epoch(epoch, _rank())
        self.scoring = stage == sb.Stage.TEST or (
            stage == sb.Stage.VALID and self.scores_epoch(epoch)
        )
        if stage != sb.Stage.TRAIN:
            jobs = getattr(self.hparams, "metric_n_jobs", 1)
            name = "valid" if stage == sb.Stage.VALID else "test"
            dnsmos = name in getattr(self, "dnsmos_stages", ())
            self.enhanced_stats = EnhancementStats(self.hparams.sample_rate, jobs, dnsmos)
            self.noisy_stats = EnhancementStats(self.hparams.sample_rate, jobs, dnsmos)
            self.snrs = {}
        self.loss_terms = {}
        self.listening = []
        self.stage_start_time = time.time()

    def _summary(self):
        """Means of the reported metrics (over the scored utterances) and ``pesq_failed``."""
        if not self.scoring:
            return {}
        means = self.enhanced_stats.summarize()
        summary = {metric: means[metric] for metric in REPORTED_METRICS if metric in means}
        summary["pesq_failed"] = self.enhanced_stats.pesq_failed
        return summary

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs, anneals the learning rate, checkpoints, writes test reports."""
        terms = {f"loss_{k}": float(np.mean(v)) for k, v in self.loss_terms.items()}
        stage_stats = {"loss": stage_loss, **terms}
        if stage == sb.Stage.TRAIN:
            self._report_silent_excerpts(stage_stats, epoch)
            self.train_stats = stage_stats
            self.train_seconds = time.time() - self.stage_start_time
            return
        stage_stats.update(self._summary())
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing([self.optimizer], epoch, stage_loss)
            for logger_name in ("train_logger", "tensorboard_logger"):
                if hasattr(self.hparams, logger_name):
                    getattr(self.hparams, logger_name).log_stats(
                        stats_meta={"epoch": epoch, "lr": old_lr},
                        train_stats=self.train_stats,
                        valid_stats=stage_stats,
                    )
            # An epoch without metrics, or whose best_metric PESQ could not
            # score at all, must not win the "best" selection (-inf, not a
            # missing key: a missing one leaves no checkpoint to test).
            meta = dict(stage_stats)
            meta.setdefault(self.best_metric, float("-inf"))
            self.checkpointer.save_and_keep_only(
                meta=meta, max_keys=[self.best_metric], num_to_keep=1
            )
            if self.scoring:
                self._longest_valid = max(
                    getattr(self, "_longest_valid", 0.0), time.time() - self.stage_start_time
                )
            self._log_progress(epoch)
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stage_stats,
            )
            if if_main_process():
                self._write_test_reports()

    def _log_progress(self, epoch):
        """Logs the epochs done and left, with an estimate of the training time left.

        The number of epochs (and of updates per epoch) is fixed by the
        recipe; the estimate is the mean time per epoch so far (training
        and validation) times the epochs left. SpeechBrain's progress bar
        shows the current epoch's own ETA.
        """
        counter = getattr(self.hparams, "epoch_counter", None)
        start = getattr(self, "fit_start_time", None)
        if counter is None or start is None or not if_main_process():
            return
        elapsed = time.time() - start
        done = max(1, epoch - getattr(self, "_first_epoch", 1) + 1)
        left = max(0, counter.limit - epoch)
        logger.info(
            "Epoch %d of %d done (%.1f min so far); about %.1f min of training left",
            epoch,
            counter.limit,
            elapsed / 60,
            left * elapsed / done / 60,
        )

    def _report_silent_excerpts(self, stage_stats, epoch):
        """Adds the epoch's silent-excerpt redraws (if any) to the train stats."""
        mixer = getattr(self, "train_mixer", None)
        if mixer is None or not hasattr(mixer, "pop_stats"):
            return
        stats = mixer.pop_stats()
        if stats["redrawn"] or stats["loudest"] or stats["silent"]:
            stage_stats.update(silent_redrawn=stats["redrawn"], silent_loudest=stats["loudest"])
            logger.warning(
                "Epoch %s: %d silent training excerpt(s) redrawn, %d replaced by the "
                "loudest excerpt of their file, %d silent utterance(s) (of %d excerpts)",
                epoch,
                stats["redrawn"],
                stats["loudest"],
                stats["silent"],
                stats["excerpts"],
            )

    def _check_time_budget(self, epoch):
        """Stops after this epoch when the next one would overrun the budget.

        Decided when validation starts (so that the last epoch is scored),
        counting this validation as long as the longest scored one so far.
        Returns whether training stops after ``epoch``.
        """
        budget = getattr(self.hparams, "time_budget_minutes", None)
        if not budget:
            return False
        elapsed = time.time() - self.fit_start_time + getattr(self, "_longest_valid", 0.0)
        per_epoch = elapsed / max(1, epoch - self._first_epoch + 1)
        stop = torch.tensor(float(elapsed + per_epoch > budget * 60))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(stop, src=0)  # every process stops together
        if stop.item():
            logger.info(
                "Time budget of %.1f min reached after epoch %d (%.1f min): stopping.",
                budget,
                epoch,
                elapsed / 60,
            )
            self.hparams.epoch_counter.limit = epoch
        return bool(stop.item())

    def _write_test_reports(self):
        folder = pathlib.Path(self.hparams.report_folder)
        table = write_results(folder, self.records, snrs=tuple(self.hparams.test_snrs))
        write_listening_page(folder, self.listening, table)
        logger.info("Test results per SNR:\n%s", (folder / "results.md").read_text())
        self.test_table = table
