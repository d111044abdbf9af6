"""FSCEBrain: test outputs are written by the main process only."""

import json

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce import brain as brain_module
from speechbrain_fsce.brain import FSCEBrain
from speechbrain_fsce.losses import FSCELoss
from speechbrain_fsce.metrics import DNSMOS_NAMES, dnsmos_available
from tests.unittests.speechlike import speech_like
from tests.unittests.tiny_models import SMALL


class _Counter:
    current = 1


class _Logger:
    def log_stats(self, **kwargs):
        pass


def _test_stage(tmp_path, main_process, monkeypatch, **options):
    monkeypatch.setattr(brain_module, "if_main_process", lambda: main_process)
    hparams = dict(
        **options,
        loss=FSCELoss(),
        sample_rate=16000,
        test_snrs=[0],
        listening_per_snr=1,
        enhanced_folder=str(tmp_path / "enhanced"),
        report_folder=str(tmp_path),
        epoch_counter=_Counter(),
        train_logger=_Logger(),
    )
    brain = FSCEBrain(modules={"enhancer": FSCEEnhancer(FSCE(**SMALL))}, hparams=hparams)
    clean = torch.from_numpy(speech_like(1.0, seed=3))
    batch = PaddedBatch(
        [
            {
                "id": "u1",
                "noisy_sig": clean + 0.05 * torch.randn_like(clean),
                "clean_sig": clean,
                "snr": 0,
            }
        ]
    )
    brain.modules.eval()
    brain.on_stage_start(sb.Stage.TEST)
    with torch.no_grad():
        loss = brain.compute_objectives(
            brain.compute_forward(batch, sb.Stage.TEST), batch, sb.Stage.TEST
        )
    brain.on_stage_end(sb.Stage.TEST, loss.item())
    return brain


def test_main_process_writes_every_test_output(tmp_path, monkeypatch):
    _test_stage(tmp_path, True, monkeypatch, dnsmos_stages=[])
    for name in (
        "results.json",
        "results.md",
        "index.html",
        "enhanced/u1.wav",
        "samples/u1_noisy.wav",
        "samples/u1.png",
    ):
        assert (tmp_path / name).is_file(), name
    row = json.loads((tmp_path / "results.json").read_text())["enhanced"]["avg"]
    assert row["n"] == 1 and not any(name in row for name in DNSMOS_NAMES)  # dnsmos_stages: []


@pytest.mark.slow  # DNSMOS of 2 clips: ~6 s CPU (EnhancementStats' DNSMOS: test_dnsmos.py)
def test_the_test_stage_scores_dnsmos_by_default(tmp_path, monkeypatch):
    _test_stage(tmp_path, True, monkeypatch)  # dnsmos_stages: [test], the default
    row = json.loads((tmp_path / "results.json").read_text())["enhanced"]["avg"]
    if dnsmos_available():
        assert all(1.0 <= row[f"dnsmos_{k}"] <= 5.0 for k in ("sig", "bak", "ovrl", "p808"))
    else:
        assert not any(name in row for name in DNSMOS_NAMES)


def test_other_processes_write_nothing(tmp_path, monkeypatch):
    # No DNSMOS (~7 s of CPU): what is tested is that nothing is written.
    brain = _test_stage(tmp_path, False, monkeypatch, dnsmos_stages=[])
    assert list(tmp_path.iterdir()) == []
    assert len(brain.records) == 1  # it still scored the item


def test_close_distributed_destroys_the_process_group(tmp_path):
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        torch.distributed.broadcast(torch.zeros(1), src=0)
        assert brain_module.close_distributed() is True
        assert not torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert brain_module.close_distributed() is False


def test_scored_waveforms_are_the_enhancers_output(monkeypatch):
    """Validation scores what FSCEEnhancer.forward returns (the one waveform path)."""
    enhancer = FSCEEnhancer(FSCE(**SMALL)).eval()
    brain = FSCEBrain(
        modules={"enhancer": enhancer}, hparams={"loss": FSCELoss(), "sample_rate": 16000}
    )
    seen = []
    monkeypatch.setattr(brain, "_score", lambda batch, enhanced, stage: seen.append(enhanced))
    noisy = torch.randn(2, 8000) * 0.1
    batch = PaddedBatch(
        [{"id": str(i), "noisy_sig": noisy[i], "clean_sig": noisy[i]} for i in range(2)]
    )
    brain.on_stage_start(sb.Stage.VALID)
    brain.scoring = True
    with torch.no_grad():
        brain.compute_objectives(
            brain.compute_forward(batch, sb.Stage.VALID), batch, sb.Stage.VALID
        )
        assert torch.equal(seen[0], enhancer(noisy))


def _level_batch():
    clean = torch.from_numpy(speech_like(0.5, seed=4))
    noisy = clean + 0.05 * torch.randn_like(clean)
    return PaddedBatch([{"id": "a", "noisy_sig": noisy, "clean_sig": clean}] * 4)


def test_level_jitter_scales_training_excerpts_only():
    torch.manual_seed(0)
    brain = FSCEBrain(
        modules={"enhancer": FSCEEnhancer(FSCE(**SMALL))},
        hparams={"loss": FSCELoss(), "train_level_jitter_db": 12.0},
    )
    batch = _level_batch()
    level = brain.enhancer.front_end.level(*batch.noisy_sig)
    *_, train_scale = brain.compute_forward(batch, sb.Stage.TRAIN)
    gain_db = 20 * torch.log10(train_scale / level)
    assert gain_db.abs().max() <= 12.0 + 1e-4 and gain_db.std() > 1.0  # one gain per excerpt
    *_, valid_scale = brain.compute_forward(batch, sb.Stage.VALID)
    assert torch.allclose(valid_scale, level)
    # The target follows the scale: the clean excerpt, divided by it.
    output, target, scale = brain.compute_forward(batch, sb.Stage.TRAIN)
    expected = brain.enhancer.target_spectrum(batch.clean_sig[0], scale)
    assert torch.allclose(target, expected)


def test_level_jitter_off_by_default_and_never_negative():
    brain = FSCEBrain(
        modules={"enhancer": FSCEEnhancer(FSCE(**SMALL))}, hparams={"loss": FSCELoss()}
    )
    batch = _level_batch()
    *_, scale = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert torch.allclose(scale, brain.enhancer.front_end.level(*batch.noisy_sig))
    with pytest.raises(ValueError, match="train_level_jitter_db"):
        FSCEBrain(
            modules={"enhancer": FSCEEnhancer(FSCE(**SMALL))},
            hparams={"loss": FSCELoss(), "train_level_jitter_db": -1},
        )
