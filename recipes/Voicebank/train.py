#!/usr/bin/env python3
"""Trains and evaluates FSCE on VoiceBank-DEMAND (fixed noisy/clean pairs).

    python train.py hparams/fsce.yaml --data_folder=/data/VoiceBank-DEMAND

``data_folder`` holds clean_trainset_28spk_wav, noisy_trainset_28spk_wav,
clean_testset_wav and noisy_testset_wav (48 kHz, or 16 kHz copies with a
``_16k`` suffix). Training takes random excerpts of the same span of each
noisy file and its clean reference; validation (speakers p226, p287) and
test use whole files. The Brain, the test report (``results.md``/``.json``
with PESQ, STOI, SI-SDR, CSIG, CBAK, COVL, SSNR) and the model export are
the TIMIT recipe's (:mod:`speechbrain_fsce.recipe`).

Several processes: torchrun --nproc_per_node=2 train.py hparams/fsce.yaml ...

Authors
 * speechbrain-fsce developers
"""

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main
from voicebank_prepare import prepare_voicebank

from speechbrain_fsce.dataio import load_audio
from speechbrain_fsce.dataio.paired import PairedExcerpts
from speechbrain_fsce.recipe import (
    fixed_pair_pipeline,
    run_recipe,
    start_experiment,
    train_and_evaluate,
)


def dataio_prep(hparams, paths):
    """Train (same-span random excerpts of each pair), valid and test datasets."""
    sr = hparams["sample_rate"]
    seconds = hparams["train_chunk_seconds"]
    excerpts = PairedExcerpts(int(seconds * sr) if seconds else None, seed=hparams["seed"])

    @sb.utils.data_pipeline.takes("id", "noisy_wav", "clean_wav")
    @sb.utils.data_pipeline.provides("noisy_sig", "clean_sig")
    def train_pipeline(utt_id, noisy_wav, clean_wav):
        noisy, clean = excerpts(utt_id, load_audio(noisy_wav, sr), load_audio(clean_wav, sr))
        yield noisy
        yield clean

    replacements = {k: paths[k] for k in ("data_root", "resampled_root")}
    datasets = {}
    for split, keys in (("train", []), ("valid", []), ("test", ["snr"])):
        data = sb.dataio.dataset.DynamicItemDataset.from_json(paths[split], replacements)
        data.add_dynamic_item(train_pipeline if split == "train" else fixed_pair_pipeline(sr))
        data.set_output_keys(["id", "noisy_sig", "clean_sig", *keys])
        datasets[split] = data if split == "train" else data.filtered_sorted(sort_key="length")
    return datasets, excerpts


def main(argv):
    hparams, run_opts, architecture = start_experiment(argv)
    prep = dict(
        data_folder=hparams["data_folder"],
        save_folder=hparams["prepared_folder"],
        resampled_folder=hparams["resampled_folder"],
        valid_speakers=hparams["valid_speakers"],
    )
    run_on_main(prepare_voicebank, kwargs=dict(prep, skip_prep=hparams["skip_prep"]))
    paths = prepare_voicebank(**prep, skip_prep=True)
    datasets, excerpts = dataio_prep(hparams, paths)
    train_and_evaluate(hparams, run_opts, datasets, architecture, reseeded=excerpts)


if __name__ == "__main__":
    run_recipe(main)  # data errors in one line; closes the process group
