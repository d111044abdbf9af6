#!/usr/bin/env python3
"""Trains and evaluates FSCE with the paper's TIMIT + noise protocol.

With no data arguments (``corpus: demo``) it trains on the embedded demo
corpus that ships with the package; point it at TIMIT (or any folder of clean
speech) and noise:

    python train.py hparams/fsce.yaml                        # demo corpus
    python train.py hparams/fsce.yaml --corpus=timit --data_folder=/data/TIMIT \\
        --noise_folder=/data/noise/train --test_noise_folder=/data/noise/test
    python train.py hparams/fsce.yaml --corpus=folders --data_folder=/data/clean \\
        --noise_folder=/data/noise/train --test_noise_folder=/data/noise/test

Fine-tuning: --init_from=<shipped model name (noncausal, causal) or model
folder> starts a fresh run from that model's weights (same architecture: a
mismatch names the differing keys and the --fsce="{...}" that matches it;
resuming a checkpoint in output_folder wins over --init_from).

Several processes: torchrun --nproc_per_node=2 train.py hparams/fsce.yaml
(add --distributed_backend=gloo on CPU).

Authors
 * speechbrain-fsce developers
"""

import logging
import os
import pathlib

import speechbrain as sb
from speechbrain.augment.time_domain import SpeedPerturb
from speechbrain.utils.distributed import run_on_main

from speechbrain_fsce.dataio import OnTheFlyMixer, load_audio, prepare_corpus
from speechbrain_fsce.dataio.folders import output_paths
from speechbrain_fsce.recipe import (
    fixed_pair_pipeline,
    run_recipe,
    start_experiment,
    train_and_evaluate,
)
from speechbrain_fsce.resources import demo_corpus_folder

logger = logging.getLogger(__name__)

#: Data options and the corpora they apply to (anything else must stay unset).
CORPUS_OPTIONS = {
    "data_folder": ("timit", "folders"),
    "noise_folder": ("timit", "folders"),
    "test_noise_folder": ("timit", "folders"),
    "clean_test_folder": ("folders",),
    "valid_split_by": ("folders",),
    "core_test_only": ("timit",),
}


def resolve_corpus(hparams, hparams_file):
    """Arguments of ``prepare_corpus`` for ``corpus`` (demo | timit | folders).

    An option set for a corpus that does not use it, or a folder missing for
    one that needs it, is an error rather than silently ignored.
    """
    corpus = hparams["corpus"]
    if corpus not in ("demo", "timit", "folders"):
        raise ValueError(f"corpus: {corpus!r} is not one of demo, timit, folders")
    ignored = [k for k, used_by in CORPUS_OPTIONS.items() if hparams[k] and corpus not in used_by]
    if ignored:
        raise ValueError(
            f"corpus: {corpus} does not use {', '.join(ignored)}; unset "
            f"{'it' if len(ignored) == 1 else 'them'} or choose the corpus that does "
            f"(--corpus=timit or --corpus=folders with a --data_folder)"
        )
    if corpus == "demo":
        demo = demo_corpus_folder()
        logger.info(
            "corpus: demo: training on the embedded demo corpus (%s). "
            "For TIMIT run: python train.py %s --corpus=timit --data_folder=/path/to/TIMIT "
            "--noise_folder=/path/to/noise/train --test_noise_folder=/path/to/noise/test "
            "(or --corpus=folders for any folder of clean speech).",
            demo,
            hparams_file,
        )
        return dict(
            corpus="folders",
            data_folder=str(demo / "clean" / "train"),
            noise_folder=str(demo / "noise" / "train"),
            test_noise_folder=str(demo / "noise" / "test"),
            clean_test_folder=str(demo / "clean" / "test"),
        )
    missing = [k for k in ("data_folder", "noise_folder") if hparams[k] is None]
    if missing:
        raise ValueError(f"corpus: {corpus} needs --{' and --'.join(missing)}")
    args = dict(
        corpus=corpus,
        data_folder=hparams["data_folder"],
        noise_folder=hparams["noise_folder"],
        test_noise_folder=hparams["test_noise_folder"],
    )
    if corpus == "folders":
        args["clean_test_folder"] = hparams["clean_test_folder"]
        if hparams["valid_split_by"]:
            args["split_by"] = hparams["valid_split_by"]
    else:
        args["core_test_only"] = hparams["core_test_only"]
    return args


def dataio_prep(hparams, paths):
    """Train (clean + noise mixed on the fly), valid and test (fixed) datasets."""
    replacements = {"data_root": paths["data_root"], "mix_root": paths["mix_root"]}
    sr = hparams["sample_rate"]
    chunk = int(hparams["train_chunk_seconds"] * sr) if hparams["train_chunk_seconds"] else None
    mixer = OnTheFlyMixer(
        paths["noise_train"],
        snr_low=hparams["train_snr_low"],
        snr_high=hparams["train_snr_high"],
        seed=hparams["seed"],
        sample_rate=sr,
        clean_share=hparams["train_clean_share"],
    )
    speeds = hparams["train_speed_perturb"]
    perturb = None
    if speeds:
        # SpeechBrain's own augmentation: resampling changes speed and pitch
        # together, one speed drawn per excerpt (100 = unchanged).
        perturb = SpeedPerturb(orig_freq=sr, speeds=list(speeds))

    @sb.utils.data_pipeline.takes("clean_wav")
    @sb.utils.data_pipeline.provides("clean_sig", "noisy_sig")
    def train_pipeline(clean_wav):
        # A random excerpt per epoch: more, shorter steps per CPU minute.
        clean = load_audio(clean_wav, sr)
        if perturb is not None:
            clean = perturb(clean.unsqueeze(0))[0]
        clean = mixer.excerpt(clean, chunk)
        noisy, _ = mixer(clean)
        yield clean
        yield noisy

    fixed_pipeline = fixed_pair_pipeline(sr)

    datasets = {}
    for split, pipeline, keys in (
        ("train", train_pipeline, ["id", "clean_sig", "noisy_sig"]),
        ("valid", fixed_pipeline, ["id", "noisy_sig", "clean_sig"]),
        ("test", fixed_pipeline, ["id", "noisy_sig", "clean_sig", "snr"]),
    ):
        data = sb.dataio.dataset.DynamicItemDataset.from_json(
            paths[split], replacements=replacements
        )
        data.add_dynamic_item(pipeline)
        data.set_output_keys(keys)
        if split == "test" and hparams.get("test_max_utterances"):
            data = _first_utterances(data, hparams["test_max_utterances"])
        if split != "train":
            data = data.filtered_sorted(sort_key="length")  # less padding
        datasets[split] = data
    return datasets, mixer


def _first_utterances(data, count):
    """Keeps the mixtures (all SNRs) of ``count`` clean test utterances,
    taken in turn from each speaker so that every test voice is scored."""
    with data.output_keys_as(["clean_id", "clean_wav"]):
        ids = {item["clean_id"]: item["clean_wav"] for item in data}
    by_speaker = {}
    for clean_id in sorted(ids):
        by_speaker.setdefault(pathlib.Path(ids[clean_id]).parent.name, []).append(clean_id)
    queues = list(by_speaker.values())
    keep = []
    while len(keep) < count and any(queues):
        for queue in queues:
            if queue and len(keep) < count:
                keep.append(queue.pop(0))
    keep = set(keep)
    return data.filtered_sorted(key_test={"clean_id": lambda c: c in keep})


def main(argv):
    hparams, run_opts, architecture = start_experiment(argv)
    corpus = resolve_corpus(hparams, argv[0])
    if not hparams["skip_prep"]:
        run_on_main(
            prepare_corpus,
            kwargs=dict(
                save_folder=hparams["prepared_folder"],
                seed=hparams["seed"],
                test_snrs=tuple(hparams["test_snrs"]),
                valid_ratio=hparams["valid_ratio"],
                # The paper draws validation SNRs like the training ones.
                valid_snr_range=(hparams["train_snr_low"], hparams["train_snr_high"]),
                **corpus,
            ),
        )
    paths = dict(
        output_paths(hparams["prepared_folder"]), data_root=os.path.abspath(corpus["data_folder"])
    )
    datasets, train_mixer = dataio_prep(hparams, paths)

    train_and_evaluate(hparams, run_opts, datasets, architecture, reseeded=train_mixer)


if __name__ == "__main__":
    run_recipe(main)  # data errors in one line; closes the process group
