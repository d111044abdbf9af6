"""Front end and waveform enhancer: round trips and level handling."""

import pytest
import torch

from speechbrain_fsce import FSCEEnhancer, FSCEOutput, SpectralFrontEnd


class Identity(torch.nn.Module):
    def forward(self, x, lengths=None):
        return FSCEOutput(x, None, None)


def test_identity_round_trip_reconstructs_input():
    torch.manual_seed(0)
    wavs = torch.randn(3, 12345) * torch.tensor([[0.01], [1.0], [30.0]])
    for compression in (1.0, 0.5, 0.3):
        enhancer = FSCEEnhancer(Identity(), SpectralFrontEnd(compression=compression))
        out = enhancer(wavs)
        assert out.shape == wavs.shape
        # Relative to each signal's peak: levels differ by 3000x on purpose.
        err = (out - wavs).abs().max(1).values / wavs.abs().max(1).values
        assert (err < 1e-4).all(), (compression, err)


def test_level_normalisation_ignores_padding():
    fe = SpectralFrontEnd()
    wavs = torch.ones(2, 1000)
    wavs[1, 500:] = 100.0  # padding of the second signal
    scale = fe.level(wavs, torch.tensor([1.0, 0.5]))
    assert torch.allclose(scale, torch.ones(2, 1), atol=1e-5)


def test_network_sees_unit_level():
    seen = {}

    class Spy(Identity):
        def forward(self, x, lengths=None):
            seen["x"] = x
            return super().forward(x)

    torch.manual_seed(0)
    wav = torch.randn(1, 16000)
    fe = SpectralFrontEnd(compression=1.0)  # defaults: 20 ms Hann window, 10 ms hop, 320-point FFT
    # Expected: the spectrum of the same signal scaled to unit RMS, computed
    # here with torch.stft directly (centred frames, zero padding).
    unit = wav / wav.pow(2).mean().sqrt()
    ref = torch.stft(
        unit,
        n_fft=320,
        hop_length=160,
        win_length=320,
        window=torch.hann_window(320),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    expected = ref.abs().pow(2).sum()
    for gain in (50.0, 0.01):  # whatever the input level
        FSCEEnhancer(Spy(), fe)(wav * gain)
        energy = seen["x"].pow(2).sum()
        assert torch.isclose(energy, expected, rtol=1e-4), (gain, energy, expected)


def test_compression_roundtrip():
    fe = SpectralFrontEnd(compression=0.5)
    spec = torch.randn(2, 5, 161, 2)
    assert torch.allclose(fe.decompress(fe.compress(spec)), spec, atol=1e-4)
    mag = fe.compress(spec).pow(2).sum(-1).sqrt()
    assert torch.allclose(mag, spec.pow(2).sum(-1).sqrt().sqrt(), atol=1e-4)


def test_enhancer_accepts_1d_and_lengths():
    from speechbrain_fsce import FSCE

    enhancer = FSCEEnhancer(FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8)).eval()
    assert enhancer(torch.randn(4000)).shape == (4000,)
    out = enhancer(torch.randn(2, 4001), torch.tensor([1.0, 0.6]))
    assert out.shape == (2, 4001) and torch.isfinite(out).all()


def test_framed_analysis_and_synthesis_equal_the_stft_path():
    """The framed DFT (the exported graphs' and the stream step's) equals SpeechBrain's STFT."""
    torch.manual_seed(1)
    for fe in (SpectralFrontEnd(), SpectralFrontEnd(window="hamming", compression=0.3)):
        for length in (1, 159, 160, 4321):
            x = torch.randn(2, length) * 0.3
            scale = torch.ones(2, 1)
            spec = fe.analyze(x, scale=scale)[0]
            framed = fe.analyze_frames(fe.frames(x))
            assert framed.shape == spec.shape
            assert (framed - spec).abs().max() <= 1e-5 * max(1.0, float(spec.abs().max()))
            back = fe.overlap_add_frames(fe.synthesize_frames(spec), length)
            assert (back - fe.synthesize(spec, scale, length)).abs().max() <= 1e-5
            assert (back - x).abs().max() <= 1e-5


def test_framed_form_needs_frames_of_two_hops():
    fe = SpectralFrontEnd(win_length=20, hop_length=5)  # n_fft 320, hop 80
    with pytest.raises(ValueError, match="n_fft = 2 \\* hop"):
        fe.analyze_frames(torch.randn(1, 320))
