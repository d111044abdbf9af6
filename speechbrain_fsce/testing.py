"""Deterministic speech-like test signals (for tests and doctests).

PESQ refuses references in which its voice activity detector finds no
utterance (pure tones, white noise, silence), and STOI drops frames 40 dB
below the loudest one, so metric and enhancement tests need something that
looks like speech to both: a harmonic (voiced) source whose f0 drifts like
intonation, coloured by three formant resonances that move from syllable to
syllable, under a syllable-rate envelope with real pauses between words.

Each harmonic is weighted by the formant envelope evaluated at its own
instantaneous frequency, which gives moving formants without filter states.

Authors
 * speechbrain-fsce developers
"""

import numpy as np

# Formant ranges (Hz) for F1, F2, F3 and their bandwidths, adult-male-like.
_FORMANT_LOW = np.array([300.0, 900.0, 2300.0])
_FORMANT_HIGH = np.array([800.0, 2200.0, 3000.0])
_BANDWIDTH = np.array([80.0, 120.0, 180.0])


def _formant_gain(freq, formants):
    """Spectral envelope: sum of resonance peaks times a -6 dB/octave tilt.

    freq is [H, T] (Hz), formants is [3, T]; returns [H, T].
    """
    gain = np.zeros_like(freq)
    for i in range(3):
        half_bw = _BANDWIDTH[i] / 2.0
        gain += (1.0 / (i + 1)) / (1.0 + ((freq - formants[i]) / half_bw) ** 2)
    # Glottal roll-off, plus a floor so that valleys are not exactly empty.
    return (gain + 0.01) * (100.0 / np.maximum(freq, 100.0))


def speech_like(seconds=2.0, sample_rate=16000, seed=0, f0=120.0):
    """Returns a deterministic speech-like waveform.

    Arguments
    ---------
    seconds : float
        Duration of the signal.
    sample_rate : int
        Sampling rate in Hz.
    seed : int
        Seed of the random syllable, pitch and formant pattern.
    f0 : float
        Mean fundamental frequency in Hz.

    Returns
    -------
    numpy.ndarray
        Float32 signal of ``round(seconds * sample_rate)`` samples, peak 0.5.

    Example
    -------
    >>> x = speech_like(1.0, 16000, seed=3)
    >>> x.shape, x.dtype, round(float(abs(x).max()), 3)
    ((16000,), dtype('float32'), 0.5)
    >>> bool((speech_like(seed=1) == speech_like(seed=1)).all())
    True
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate

    # Syllables of 120-260 ms; words of 2-4 syllables separated by 80-250 ms
    # pauses; 150 ms of leading silence as in a recorded utterance.
    env = np.zeros(n)
    knots_t, knots_f = [0.0], [rng.uniform(_FORMANT_LOW, _FORMANT_HIGH)]
    pos = 0.15
    while pos < seconds:
        for _ in range(rng.integers(2, 5)):
            dur = rng.uniform(0.12, 0.26)
            start, stop = int(pos * sample_rate), int((pos + dur) * sample_rate)
            stop = min(stop, n)
            if stop > start:
                # Raised-sine syllable with a random stress level.
                env[start:stop] = rng.uniform(0.4, 1.0) * np.sin(
                    np.pi * np.arange(stop - start) / (stop - start)
                )
            knots_t.append(pos + dur / 2)
            knots_f.append(rng.uniform(_FORMANT_LOW, _FORMANT_HIGH))
            pos += dur
        pos += rng.uniform(0.08, 0.25)
    knots_t.append(max(seconds, pos))
    knots_f.append(knots_f[-1])
    knots_f = np.array(knots_f)
    formants = np.stack([np.interp(t, knots_t, knots_f[:, i]) for i in range(3)])

    # Intonation: slow declination plus a few random pitch movements.
    n_knots = max(2, int(seconds * 3))
    pitch = (
        np.interp(
            t,
            np.linspace(0.0, seconds, n_knots),
            rng.uniform(0.85, 1.15, n_knots),
        )
        * f0
        * (1.0 - 0.1 * t / max(seconds, 1e-9))
    )
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate

    n_harm = int(0.45 * sample_rate / (0.85 * f0 * 0.9))
    k = np.arange(1, n_harm + 1)[:, None]
    freq = k * pitch[None, :]
    gain = _formant_gain(freq, formants)
    gain[freq > 0.45 * sample_rate] = 0.0  # no aliasing
    voiced = (gain * np.sin(k * phase[None, :])).sum(axis=0)

    # A little breath noise so that pauses are quiet rather than digital zero.
    x = voiced * env + 1e-3 * rng.standard_normal(n) * voiced.std()
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)
