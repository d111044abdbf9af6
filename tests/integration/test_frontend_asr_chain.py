"""EnhancementFrontEnd in front of Fbank and a classifier, trained by a Brain.

A stand-in for an ASR recipe: two classes of noisy tones, log-mel features
(``speechbrain.lobes.features.Fbank``), mean pooling and a linear layer,
trained for two epochs. Frozen, the enhancer must not change; fine-tuned,
it must.
"""

import io

import numpy as np
import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.lobes.features import Fbank

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.inference import export_model
from speechbrain_fsce.inference.frontend import EnhancementFrontEnd
from tests.unittests.tiny_models import SMALL, calibrated


def small_enhancer(seed=0):
    torch.manual_seed(seed)
    return FSCEEnhancer(calibrated(FSCE(**SMALL)))


def tone_dataset(n=12, seconds=0.5, rate=16000, seed=0):
    """Noisy low (300 Hz) and high (2.5 kHz) tones, labels 0 and 1; varied lengths."""
    rng = np.random.default_rng(seed)
    data = {}
    for i in range(n):
        label = i % 2
        length = int(rate * seconds * rng.uniform(0.7, 1.0))
        t = np.arange(length) / rate
        freq = (300.0 if label == 0 else 2500.0) * rng.uniform(0.9, 1.1)
        x = 0.3 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        x += 0.05 * rng.standard_normal(length)
        data[f"utt{i}"] = {"sig": torch.tensor(x, dtype=torch.float32), "label": label}
    dataset = DynamicItemDataset(data)
    dataset.set_output_keys(["id", "sig", "label"])
    return dataset


class ToneBrain(sb.Brain):
    """Enhance -> Fbank -> mean pool -> linear."""

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        enhanced = self.modules.frontend(wavs, lens)
        feats = self.hparams.fbank(enhanced)
        mask = sb.dataio.dataio.length_to_mask(torch.round(lens * feats.shape[1]), feats.shape[1])
        pooled = (feats * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return torch.log_softmax(self.modules.classifier(pooled / 10), dim=-1)

    def compute_objectives(self, predictions, batch, stage):
        return torch.nn.functional.nll_loss(
            predictions, torch.as_tensor(batch.label).to(predictions.device)
        )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.hparams.losses.append(stage_loss)


def train(frontend, lr):
    torch.manual_seed(0)
    losses = []
    brain = ToneBrain(
        modules={"frontend": frontend, "classifier": torch.nn.Linear(40, 2)},
        opt_class=lambda params: torch.optim.Adam(params, lr=lr),
        hparams={"fbank": Fbank(n_mels=40), "losses": losses},
        run_opts={"device": "cpu"},
    )
    brain.fit(range(2), tone_dataset(), train_loader_kwargs={"batch_size": 3, "shuffle": False})
    return losses


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_frozen_front_end_from_model_folder(tmp_path):
    folder = export_model(tmp_path / "model", small_enhancer(), SMALL)
    # As a recipe would declare it.
    hp = load_hyperpyyaml(
        io.StringIO(
            f"frontend: !new:speechbrain_fsce.inference.frontend.EnhancementFrontEnd\n"
            f"    source: {folder}\n    freeze: True\n"
        )
    )
    frontend = hp["frontend"]
    before = snapshot(frontend.enhancer)
    losses = train(frontend, lr=0.05)
    assert len(losses) == 2 and losses[1] < losses[0]
    after = snapshot(frontend.enhancer)
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included
    assert not frontend.enhancer.training


def test_fine_tuned_front_end_changes():
    frontend = EnhancementFrontEnd(enhancer=small_enhancer(), freeze=False)
    before = snapshot(frontend.enhancer)
    losses = train(frontend, lr=0.01)
    assert len(losses) == 2 and losses[1] < losses[0]
    after = snapshot(frontend.enhancer)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.endswith("weight") and "mag_encoder" in k for k in changed)
    assert any(k.endswith("weight") and "cplx_encoder" in k for k in changed)


def test_front_end_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        EnhancementFrontEnd()
    with pytest.raises(ValueError, match="exactly one"):
        EnhancementFrontEnd(source="x", enhancer=small_enhancer())
