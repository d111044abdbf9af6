"""The steps every FSCE recipe shares (``recipes/*/train.py``).

A recipe's ``train.py`` keeps what is its own (data preparation and the
training pipeline of its corpus) and calls these for the rest::

    def main(argv):
        hparams, run_opts, architecture = start_experiment(argv)
        ...prepare data, build {"train", "valid", "test"} datasets...
        train_and_evaluate(hparams, run_opts, datasets, architecture, reseeded=sampler_of_draws)

    if __name__ == "__main__":
        run_recipe(main)

The recipe hparams read here are listed in :data:`HPARAMS` (plus what
:class:`~speechbrain_fsce.brain.FSCEBrain` reads).

Authors
 * speechbrain-fsce developers
"""

import logging
import os
import random
import shutil
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import if_main_process

from speechbrain_fsce.brain import FSCEBrain, close_distributed
from speechbrain_fsce.checkpoints import TrainingLock, TrainingLockError
from speechbrain_fsce.dataio.audio import AudioError, FolderError, load_audio
from speechbrain_fsce.fileio import remove_partials
from speechbrain_fsce.inference.shipped import init_from_model
from speechbrain_fsce.model_folder import ModelFolderError

logger = logging.getLogger(__name__)

#: Every recipe hparam these steps read.
HPARAMS = (
    "fsce",
    "output_folder",
    "seed",
    "epoch_size",
    "use_tensorboard",
    "tensorboard_logs",
    "modules",
    "opt_class",
    "checkpointer",
    "train_dataloader_opts",
    "valid_dataloader_opts",
    "test_dataloader_opts",
    "export_model",
    "save_folder",
    "model_folder",
    "valid_max_utterances",
    "init_from",
)


def lock_folder(hparams):
    """The folder whose training lock guards a run: the checkpointer's.

    The same folder :class:`~speechbrain_fsce.brain.FSCEBrain` locks, so the
    Brain of the process that took it in :func:`start_experiment` keeps it.

    Arguments
    ---------
    hparams : dict
        The loaded hyperparameters.

    Returns
    -------
    str

    Example
    -------
    >>> lock_folder({"save_folder": "results/x/save"})
    'results/x/save'
    """
    folder = getattr(hparams.get("checkpointer"), "checkpoints_dir", None)
    return str(folder or hparams.get("save_folder") or hparams["output_folder"])


def start_experiment(argv):
    """Parses the command line, loads the yaml, joins DDP, locks and makes the folder.

    The training lock (:class:`~speechbrain_fsce.checkpoints.TrainingLock`)
    is taken before anything in the run folder is written: a second training
    started in a running run's folder stops with one line and changes
    nothing there (not its ``hyperparams.yaml``, not its ``prepared/``).
    Then the unfinished ``.partial`` files and folders a killed run left in
    the run folder are removed.

    Arguments
    ---------
    argv : list of str
        ``hparams.yaml`` then SpeechBrain options and ``--key=value``
        overrides.

    Returns
    -------
    hparams : dict
        The loaded hyperparameters (a misnamed top-level key raises).
    run_opts : dict
        SpeechBrain's run options.
    architecture : dict
        The ``fsce`` block checked against the model's arguments (a
        misnamed ``--fsce`` key raises), for the exported model folder.
    """
    from speechbrain_fsce.model_folder import architecture_from  # the schema, below inference

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    architecture = architecture_from(hparams["fsce"], what="fsce")
    sb.utils.distributed.ddp_init_group(run_opts)
    if if_main_process():
        # Before create_experiment_directory, which writes hyperparams.yaml.
        TrainingLock(lock_folder(hparams)).acquire()  # released at exit
        removed = remove_partials(hparams["output_folder"], recursive=True)
        if removed:
            logger.info("Removed %d unfinished file(s) of a killed run", removed)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    # SpeechBrain copies the calling file (this one); keep the recipe's too.
    script = getattr(sys.modules["__main__"], "__file__", None)
    if script and if_main_process():
        shutil.copy(script, hparams["output_folder"])
    return hparams, run_opts, architecture


def fixed_pair_pipeline(sample_rate):
    """Dynamic item: ``noisy_wav`` + ``clean_wav`` -> ``noisy_sig``, ``clean_sig``.

    Both files are read at ``sample_rate`` and cut to the shorter one.

    Arguments
    ---------
    sample_rate : int
        Rate the signals are read at.

    Returns
    -------
    speechbrain.utils.data_pipeline.GeneratorDynamicItem

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(str(tmp / "n.wav"), np.zeros(1600), 16000)
    >>> sf.write(str(tmp / "c.wav"), np.zeros(1500), 16000)
    >>> noisy, clean = fixed_pair_pipeline(16000).func(str(tmp / "n.wav"), str(tmp / "c.wav"))
    >>> noisy.shape, clean.shape
    (torch.Size([1500]), torch.Size([1500]))
    """

    @sb.utils.data_pipeline.takes("noisy_wav", "clean_wav")
    @sb.utils.data_pipeline.provides("noisy_sig", "clean_sig")
    def pipeline(noisy_wav, clean_wav):
        noisy, clean = load_audio(noisy_wav, sample_rate), load_audio(clean_wav, sample_rate)
        n = min(len(noisy), len(clean))
        yield noisy[:n]
        yield clean[:n]

    return pipeline


def fixed_subset(data, count, seed):
    """A fixed random subset of ``count`` items of a dataset (all when ``count`` is None).

    The same ``seed`` and dataset give the same items in every run and
    process; they keep the dataset's order (a length-sorted validation set
    stays sorted).

    Arguments
    ---------
    data : speechbrain.dataio.dataset.DynamicItemDataset
        The dataset (its ids are drawn, nothing is loaded).
    count : int or None
        How many items to keep; None, 0 or more than there are: all.
    seed : int
        Seed of the draw.

    Returns
    -------
    speechbrain.dataio.dataset.DynamicItemDataset

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset({f"u{i}": {"x": i} for i in range(10)})
    >>> subset = fixed_subset(data, 3, seed=1)
    >>> len(subset), subset.data_ids == fixed_subset(data, 3, seed=1).data_ids
    (3, True)
    >>> len(fixed_subset(data, None, seed=1))
    10
    """
    if not count or count >= len(data):
        return data
    keep = set(random.Random(seed).sample(sorted(data.data_ids), int(count)))
    return data.filtered_sorted(key_test={"id": lambda utt_id: utt_id in keep})


def train_and_evaluate(hparams, run_opts, datasets, architecture, reseeded=None):
    """Trains with :class:`FSCEBrain`, tests the best checkpoint, exports it.

    "Best" is the Brain's ``best_metric`` (the checkpoint kept during
    training, the one tested and the one exported are the same).

    With ``init_from`` (a shipped model name or a model folder of the same
    architecture) a fresh training starts from that model's weights; a
    checkpoint to resume wins over it (see
    :func:`~speechbrain_fsce.inference.shipped.init_from_model`).

    Validation uses the fixed random subset of ``valid_max_utterances``
    items (:func:`fixed_subset`; null: all), drawn with ``seed``.

    Arguments
    ---------
    hparams : dict
        The recipe's hyperparameters.
    run_opts : dict
        SpeechBrain's run options.
    datasets : dict
        ``train``, ``valid`` and ``test`` datasets (``noisy_sig``,
        ``clean_sig``; ``snr`` for test).
    architecture : dict
        Returned by :func:`start_experiment`.
    reseeded : object, optional
        The training pipeline's random draws (``set_epoch(epoch, rank)``),
        restarted by the Brain every epoch.

    Returns
    -------
    FSCEBrain
        The trained Brain (``test_table`` holds the test results).
    """
    train_loader_kwargs = dict(hparams["train_dataloader_opts"])
    valid_set = fixed_subset(
        datasets["valid"], hparams.get("valid_max_utterances"), hparams["seed"]
    )
    if len(valid_set) < len(datasets["valid"]):
        logger.info(
            "Validating on a fixed subset of %d of the %d validation mixtures "
            "(valid_max_utterances)",
            len(valid_set),
            len(datasets["valid"]),
        )
    sampler = None
    if hparams["epoch_size"]:
        # Fixed-size epochs drawn with replacement: comparable epochs on any corpus.
        sampler = sb.dataio.sampler.ReproducibleRandomSampler(
            datasets["train"],
            seed=hparams["seed"],
            replacement=True,
            num_samples=hparams["epoch_size"],
        )
        train_loader_kwargs["sampler"] = sampler
        train_loader_kwargs.pop("shuffle", None)

    if hparams["use_tensorboard"]:
        from speechbrain.utils.train_logger import TensorboardLogger

        hparams["tensorboard_logger"] = TensorboardLogger(save_dir=hparams["tensorboard_logs"])
    brain = FSCEBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    if hparams.get("init_from"):  # a fresh start from a model's weights; resuming wins
        init_from_model(
            brain.enhancer, hparams["init_from"], architecture, checkpointer=brain.checkpointer
        )
    brain.train_mixer = reseeded  # reseeded per epoch and process by the Brain
    if sampler is not None and not brain.distributed_launch:
        brain.train_sampler = sampler  # so that Brain calls set_epoch: new draws each epoch
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        valid_set,
        train_loader_kwargs=train_loader_kwargs,
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    brain.evaluate(
        datasets["test"],
        max_key=brain.best_metric,
        test_loader_kwargs=hparams["test_dataloader_opts"],
    )

    if if_main_process() and hparams["export_model"]:
        from speechbrain_fsce.inference.export import export_best

        exported = export_best(  # the run's own model folder: an earlier export is replaced
            hparams["save_folder"],
            hparams["model_folder"],
            architecture,
            max_key=brain.best_metric,
            overwrite=True,
        )
        logger.info(
            "Pretrained-model folder written to %s (from %s)",
            exported["folder"],
            exported["checkpoint"],
        )
    return brain


def run_recipe(main, argv=None):
    """Runs a recipe's ``main(argv)`` as its ``__main__``.

    A user's data or folder problem (unreadable audio, a missing folder,
    folders that mix roles such as ``--clean_test_folder`` =
    ``--data_folder``, a training already running in the folder, a refused
    model folder or checkpoint, weights that do not fit the architecture)
    ends the process with one line,
    ``train.py: error: ...`` (``FSCE_TRACEBACK=1`` shows the traceback), and
    the process group of a multi-process run is closed before exit.

    Arguments
    ---------
    main : callable
        The recipe's ``main(argv)``.
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Example
    -------
    >>> def main(argv):
    ...     raise FileNotFoundError(f"no such folder: {argv[0]}")
    >>> run_recipe(main, ["/data/VB"])
    Traceback (most recent call last):
    SystemExit: train.py: error: no such folder: /data/VB
    """
    try:
        main(sys.argv[1:] if argv is None else argv)
    except (
        AudioError,
        FileNotFoundError,
        FolderError,
        TrainingLockError,
        ModelFolderError,
    ) as err:
        if os.environ.get("FSCE_TRACEBACK"):
            raise
        sys.exit(f"train.py: error: {err}")
    finally:
        close_distributed()  # before shutdown, or Gloo may abort the process
