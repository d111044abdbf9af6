"""The one streamer (HopStreamer) and the streaming level: tracked on line (StreamLevel), in
both streamers and both examples.

The level tests stream with the shipped causal model (committed package data,
no network): a trained model is level-sensitive (quiet input is treated as
noise, loud input is not), which is what a wrong level breaks; a tiny random
model would hardly notice. The reference is the same model at the right fixed
level, i.e. what offline level normalisation gives.
"""

import os
import runpy

import numpy as np
import pytest
import torch

from speechbrain_fsce import FSCE, FSCEEnhancer
from speechbrain_fsce.inference import shipped
from speechbrain_fsce.inference.onnx_runtime import OnnxStreamer
from speechbrain_fsce.inference.stream_level import HopStreamer, StreamLevel, check_scale
from speechbrain_fsce.inference.streaming import FSCEStreamer
from speechbrain_fsce.testing import speech_like
from tests.unittests.tiny_models import SMALL, calibrated

RATE = 16000
HOP = 160
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "recipes", "examples")
TOLERANCE_DB = 2.0  # measured: within 0.6 dB of the right fixed level


def noisy_speech(seconds, rms, seed, snr=20.0):
    """Speech-like signal at ``rms`` plus white noise ``snr`` dB below (float64)."""
    x = speech_like(seconds, seed=seed).astype(np.float64)
    x *= rms / np.sqrt(np.mean(x**2))
    noise = np.random.default_rng(seed).standard_normal(x.shape[0])
    return x + noise * rms * 10 ** (-snr / 20)


def db(x):
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-30)


def rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def stream(streamer, x, piece=HOP):
    """Streams ``x`` (numpy ``[T]`` or ``[B, T]``); the output lined up with it (numpy)."""
    torch_in = isinstance(streamer, FSCEStreamer)
    pieces = []
    for i in range(0, x.shape[-1], piece):
        p = x[..., i : i + piece].astype(np.float32)
        pieces.append(streamer.process(torch.from_numpy(p) if torch_in else p))
    pieces.append(streamer.flush())
    out = np.concatenate([np.asarray(p) for p in pieces], axis=-1)
    return out[..., streamer.latency_samples :]


@pytest.fixture(scope="module")
def shipped_onnx():
    return str(shipped.onnx_folder("causal"))


@pytest.fixture(scope="module")
def shipped_torch():
    from speechbrain_fsce.inference import FSCEEnhancement

    return FSCEEnhancement.from_hparams(source="causal").mods.enhancer


def _streamers(backend, shipped_onnx, shipped_torch):
    """(adaptive streamer, fixed-level streamer factory) of the shipped causal model."""
    if backend == "onnx":
        return OnnxStreamer(shipped_onnx), lambda scale: OnnxStreamer(shipped_onnx, scale=scale)
    return FSCEStreamer(shipped_torch), lambda scale: FSCEStreamer(shipped_torch, scale=scale)


# ---- the level at work: silence first, level steps ---------------------------


# torch is slow (the published width streams at ~14 ms per hop); the fast
# suite has the torch backend = onnx backend under a tracked level below.
@pytest.mark.parametrize("backend", ["onnx", pytest.param("torch", marks=pytest.mark.slow)])
def test_silence_then_speech_stream_level(backend, shipped_onnx, request):
    """1 s of digital silence, then speech: output at the level the right scale gives.

    Before: FSCEStreamer / OnnxStreamer divided by a fixed 1.0 (-16 dB), the
    examples by the RMS of the first second (1e-8: +12 dB, peaks of 1.4).
    """
    enhancer = request.getfixturevalue("shipped_torch") if backend == "torch" else None
    speech = noisy_speech(1.5 if backend == "torch" else 2.5, 0.05, seed=3)
    x = np.concatenate([np.zeros(RATE), speech])
    adaptive, fixed = _streamers(backend, shipped_onnx, enhancer)
    y = stream(adaptive, x)
    ref = stream(fixed(rms(speech)), speech)  # the speech alone at its own RMS
    after = slice(RATE + RATE // 2, None)  # from 0.5 s after the onset
    assert abs(db(y[after]) - db(ref[RATE // 2 :])) <= TOLERANCE_DB
    assert abs(db(y[after]) - db(x[after])) <= 6.0  # the model itself removes ~2-3 dB here
    assert np.abs(y).max() <= 1.0
    assert rms(y[:RATE]) < 1e-3  # the silent second stays silent


# -20 dB is slow: StreamLevel's own test steps both ways in the fast suite.
@pytest.mark.parametrize("step_db", [20.0, pytest.param(-20.0, marks=pytest.mark.slow)])
def test_mid_stream_level_change(step_db, shipped_onnx):
    """The level steps by +-20 dB after 3 s: from 1 s after the step, output at the new level."""
    low, high = (0.005, 0.05) if step_db > 0 else (0.05, 0.005)
    first = noisy_speech(3.0, low, seed=4)
    second = noisy_speech(3.0, high, seed=5)
    x = np.concatenate([first, second])
    y = stream(OnnxStreamer(shipped_onnx), x)
    for part, segment in ((slice(0, 3 * RATE), first), (slice(3 * RATE, None), second)):
        ref = stream(OnnxStreamer(shipped_onnx, scale=rms(segment)), segment)
        out = y[part][RATE:]  # 1 s after the start / the step
        assert abs(db(out) - db(ref[RATE:])) <= TOLERANCE_DB, (step_db, db(out), db(ref[RATE:]))
    assert np.abs(y).max() <= 1.0


def test_fixed_scale_is_still_offline_causal_enhancement(shipped_onnx):
    """A fixed scale streams exactly as before (chunked enhancement relies on it)."""
    x = noisy_speech(1.0, 0.05, seed=6)
    scale = rms(x)
    a = stream(OnnxStreamer(shipped_onnx, scale=scale), x)
    b = stream(OnnxStreamer(shipped_onnx, scale=scale), x, piece=1000)
    assert np.array_equal(a, b)
    assert OnnxStreamer(shipped_onnx, scale=scale).level == scale


# ---- StreamLevel itself -------------------------------------------------------


def _levels(x, **options):
    level = StreamLevel(HOP, RATE, **options)
    return np.array([level.update(x[None, i : i + HOP])[0] for i in range(0, len(x), HOP)])


def test_stream_level_silence_first_hop_pauses_and_bounded_gain():
    level = StreamLevel(HOP, RATE)
    assert level.level is None
    silence = np.zeros((2, HOP))
    assert np.array_equal(level.update(silence), [1e-4, 1e-4])  # the floor: gain <= 1e4
    assert np.array_equal(level.update(silence + 1e-5), [1e-4, 1e-4])  # dither: not speech
    hop = np.stack([np.full(HOP, 0.05), np.full(HOP, 0.2)])
    np.testing.assert_allclose(level.update(hop), [0.05, 0.2])  # the first active hop
    for _ in range(100):  # a 1 s pause (noise 40 dB down) moves it by less than 1 dB
        out = level.update(hop * 0.01)
    assert np.all(np.abs(20 * np.log10(out / [0.05, 0.2])) < 1.0)
    with pytest.raises(ValueError, match="batch size changed"):
        level.update(np.zeros((3, HOP)))
    level.reset()
    assert level.level is None


def test_stream_level_bounded_rise_and_steps():
    x = noisy_speech(8.0, 0.01, seed=7)
    before = _levels(x)
    click = x.copy()
    click[4 * RATE : 4 * RATE + HOP] = 0.99  # one hop 40 dB above the speech
    after = _levels(click)
    jump = 20 * np.log10(after[4 * RATE // HOP] / before[4 * RATE // HOP])
    assert 0 < jump <= 3.1
    for factor in (10.0, 0.1):  # +-20 dB at 3 s: within 3 dB of the new RMS after 2.5 s
        y = x.copy()
        y[3 * RATE :] *= factor
        levels = _levels(y)[int(5.5 * RATE) // HOP :]
        assert np.all(np.abs(20 * np.log10(levels / rms(y[3 * RATE :]))) <= 3.0)
    # Steady speech keeps the level within 3 dB of its RMS once settled.
    assert np.all(np.abs(20 * np.log10(before[2 * RATE // HOP :] / rms(x))) <= 3.0)


@pytest.mark.parametrize(
    "option, value",
    [("time_constant", 0.0), ("time_constant", float("nan")), ("floor", -1.0), ("gate_db", "x")],
)
def test_stream_level_refuses_bad_options(option, value):
    with pytest.raises(ValueError, match=option):
        StreamLevel(HOP, RATE, **{option: value})


# ---- both backends, any piece size, any batch --------------------------------


def test_tracked_level_same_for_any_piece_size_batch_and_backend(tmp_path):
    torch.manual_seed(0)
    enhancer = FSCEEnhancer(calibrated(FSCE(causal=True, **SMALL))).eval()
    x = np.stack(
        [
            np.concatenate([np.zeros(RATE // 4), noisy_speech(0.5, 0.05, seed=8)]),
            noisy_speech(0.75, 0.002, seed=9),
        ]
    )
    ref = stream(FSCEStreamer(enhancer), x)
    assert ref.shape == x.shape and np.abs(ref).max() > 1e-3
    for piece in (100, x.shape[1]):
        assert np.abs(stream(FSCEStreamer(enhancer), x, piece) - ref).max() <= 1e-6
    for row in range(2):  # each signal of a batch has its own level
        alone = stream(FSCEStreamer(enhancer), x[row])
        assert np.abs(alone - ref[row]).max() <= 1e-5
    streamer = FSCEStreamer(enhancer, backend="onnx")
    assert np.abs(stream(streamer, x) - ref).max() <= 1e-4
    # A fixed level differs: the tracked one is really used.
    assert np.abs(stream(FSCEStreamer(enhancer, scale=1.0), x) - ref).max() > 1e-3


# ---- bad scale -----------------------------------------------------------------


BAD_SCALES = [1e30, 1e-30, 0.0, -1.0, float("nan"), float("inf"), "loud"]


@pytest.mark.parametrize("scale", BAD_SCALES)
def test_bad_scale_is_a_clear_error(scale, shipped_onnx):
    torch.manual_seed(0)
    enhancer = FSCEEnhancer(FSCE(causal=True, **SMALL))
    with pytest.raises(ValueError, match="scale must be a finite positive level in"):
        FSCEStreamer(enhancer, scale=scale)
    with pytest.raises(ValueError, match="scale must be a finite positive level in"):
        OnnxStreamer(shipped_onnx, scale=scale)
    assert check_scale(1e-8) == 1e-8  # a silent file's offline level (RMS 0 + eps) is fine


def _example(name):
    return runpy.run_path(os.path.join(EXAMPLES, name), run_name="example")["main"]


@pytest.mark.parametrize("name", ["stream_onnx.py", "stream_wav.py"])
@pytest.mark.parametrize("scale", ["1e30", "0", "-1", "nan"])
def test_examples_refuse_a_bad_scale(name, scale, tmp_path, capsys):
    import soundfile as sf

    noisy = tmp_path / "noisy.wav"
    sf.write(noisy, noisy_speech(0.5, 0.05, seed=1).astype(np.float32), RATE)
    out = tmp_path / "out.wav"
    assert _example(name)([str(noisy), "-o", str(out), f"--scale={scale}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "scale must be a finite positive level" in err
    assert not out.exists()


# ---- the examples never write over their input ----------------------------------


@pytest.mark.parametrize("name", ["stream_onnx.py", "stream_wav.py"])
@pytest.mark.parametrize("how", ["same path", "other spelling", "hard link", "symbolic link"])
def test_examples_refuse_output_equal_to_input(name, how, tmp_path, capsys, monkeypatch):
    import soundfile as sf

    noisy = tmp_path / "noisy.wav"
    sf.write(noisy, noisy_speech(0.5, 0.05, seed=2).astype(np.float32), RATE)
    content = noisy.read_bytes()
    monkeypatch.chdir(tmp_path)
    output = {"same path": str(noisy), "other spelling": "./sub/../noisy.wav"}.get(how)
    (tmp_path / "sub").mkdir()
    if how == "hard link":
        os.link(noisy, tmp_path / "sub" / "linked.wav")
        output = str(tmp_path / "sub" / "linked.wav")
    elif how == "symbolic link":
        os.symlink(noisy, tmp_path / "sub" / "linked.wav")
        output = str(tmp_path / "sub" / "linked.wav")
    assert _example(name)([str(noisy), "-o", output]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is the input file" in err
    assert noisy.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["noisy.wav", "sub"]


def test_stream_onnx_example_tracks_the_level_by_default(tmp_path, capsys):
    """The torch-free example with no --scale: silence first, output at the right level."""
    import soundfile as sf

    speech = noisy_speech(2.5, 0.05, seed=3)
    x = np.concatenate([np.zeros(RATE), speech]).astype(np.float32)
    sf.write(tmp_path / "noisy.wav", x, RATE, subtype="FLOAT")
    out = tmp_path / "out.wav"
    assert _example("stream_onnx.py")([str(tmp_path / "noisy.wav"), "-o", str(out)]) == 0
    assert "level tracked on line" in capsys.readouterr().out
    y = sf.read(out, dtype="float32")[0]
    ref = stream(OnnxStreamer(str(shipped.onnx_folder("causal")), scale=rms(speech)), speech)
    assert abs(db(y[RATE + RATE // 2 :]) - db(ref[RATE // 2 :])) <= TOLERANCE_DB
    assert np.abs(y).max() <= 1.0


class _Delay:
    """A step that gives back each hop, divided by its level and multiplied back, one hop later."""

    def init_state(self, batch):
        return np.zeros((batch, 160), np.float32)

    def step(self, hop, scale, state):
        return state, (hop / scale) * scale


@pytest.mark.parametrize("piece", [1, 159, 160, 333, 5000])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_hop_streamer_frames_buffers_and_flushes_any_piece(piece, scale):
    """One hop of delay, the first hop out is silence, flush cuts to the signal's length."""
    x = np.random.default_rng(0).standard_normal((2, 1234)).astype(np.float32)
    streamer = HopStreamer(_Delay(), 160, 16000, scale=scale)
    parts = [streamer.process(x[:, i : i + piece]) for i in range(0, x.shape[1], piece)]
    assert streamer.samples_in == 1234
    parts.append(streamer.flush())
    y = np.concatenate(parts, axis=1)
    assert y.shape == (2, 1234 + 160)
    assert np.all(y[:, :160] == 0)
    np.testing.assert_allclose(y[:, 160:], x, atol=1e-6)
    assert streamer.samples_out == 0 and streamer.flush().shape == (0,)  # reset


def test_hop_streamer_refuses_bad_input():
    streamer = HopStreamer(_Delay(), 160, 16000)
    with pytest.raises(ValueError, match="NaN or Inf"):
        streamer.process(np.full(160, np.inf, np.float32))
    streamer.process(np.zeros((2, 160), np.float32))
    with pytest.raises(ValueError, match="batch size changed"):
        streamer.process(np.zeros((3, 160), np.float32))
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        streamer.process(np.zeros((1, 1, 160), np.float32))
