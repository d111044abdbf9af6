"""Builds the small, licence-clean demo corpus shipped with speechbrain-fsce.

Run ``make demo-corpus`` (``python -m tools.corpora.demo_corpus`` from the
repository root) to regenerate ``speechbrain_fsce/dataio/demo_corpus``, the
corpus the package ships (or ``--output_folder X`` to write elsewhere).
Everything comes from Debian packages and a fixed seed:

* **Speech**: the project's own sentences
  (:data:`tools.corpora.sentences.SENTENCES`) read by synthetic
  voices (``flite``, ``espeak-ng``, ``festival``) at several pitches and
  rates. Training and test voices are disjoint, and so are their sentences.
  Each utterance is trimmed of leading/trailing silence and set to -26 dBFS.
* **Noise**: CC0 clips only (``sonic-pi-samples``, per-file licences from its
  copyright file; ``openttd-opensfx``, per-clip licences read from the clip
  descriptions inside ``opensfx.cat``), generated white/pink/brown noise and
  babble summed from the corpus' own voices. Training and test noise types
  are disjoint.

Layout written (the demo recipe depends on it)::

    <output_folder>/clean/{train,test}/<voice_id>/<utt_id>.flac
    <output_folder>/noise/{train,test}/<noise_type>_<n>.flac
    <output_folder>/SOURCES.md        origins, licences, regeneration command
    <output_folder>/transcripts.tsv   text of every clean utterance

All audio is 16 kHz mono 16-bit FLAC. The script installs the Debian packages
it needs when run as root with ``apt-get``; otherwise it names the missing
packages and exits with status 2. The synthetic audio depends on the engine
versions, which SOURCES.md records.

The helpers (silence trimming, levels, coloured noise, babble, the Debian
package checks, the ``opensfx.cat`` reader, licence parsing) live in
:mod:`tools.corpora.common`, shared with :mod:`tools.corpora.benchmark_corpus`.

Authors
 * speechbrain-fsce developers
"""

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

from speechbrain_fsce.dataio.audio import read_audio_native
from speechbrain_fsce.resources import demo_corpus_folder
from tools.corpora.common import (
    SAMPLE_RATE,
    SONIC_PI_SAMPLES,
    MissingPackagesError,
    colored_noise,
    decode_wav_bytes,
    disk_bytes,
    ensure_packages,
    fit_length,
    mix_babble,
    package_version,
    read_opensfx,
    segment_starts,
    set_level,
    sonic_pi_licences,
    to_16k,
    trim_silence,
    write_flac,
)
from tools.corpora.sentences import SENTENCES

#: Level of every clean utterance (RMS over the trimmed utterance), the
#: usual active speech level; quieter files also compress better.
SPEECH_DBFS = -26.0

#: Level of every noise file. Mixing rescales noise to the wanted SNR, so
#: this only sets headroom and file size.
NOISE_DBFS = -30.0

#: Package folder holding the committed corpus (shipped with the package).
DEFAULT_OUTPUT = str(demo_corpus_folder())

#: Size cap of the committed corpus (bytes, files rounded up to 4 KiB blocks).
MAX_BYTES = 15 * 1024 * 1024

#: Debian packages the demo corpus is built from.
DEMO_PACKAGES = (
    "flite",
    "espeak-ng",
    "festival",
    "festvox-kdlpc16k",
    "festvox-us-slt-hts",
    "sonic-pi-samples",
    "openttd-opensfx",
)

#: Run from the repository root (``make demo-corpus`` runs it).
REGENERATE_COMMAND = "python -m tools.corpora.demo_corpus"


# ---------------------------------------------------------------------------
# Voices
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Voice:
    """A synthetic voice: an engine, a voice and its pitch/rate settings.

    Arguments
    ---------
    voice_id : str
        Folder name of the voice (the speaker label).
    engine : str
        ``"flite"``, ``"espeak-ng"`` or ``"festival"``.
    options : tuple of str
        Engine command-line options selecting voice, pitch and rate.
    description : str
        Human-readable description for SOURCES.md.

    Example
    -------
    >>> v = Voice("flite_slt", "flite", ("-voice", "slt"), "US female")
    >>> v.command("Hello there.", "out.wav")
    ['flite', '-voice', 'slt', '-t', 'Hello there.', '-o', 'out.wav']
    """

    voice_id: str
    engine: str
    options: tuple
    description: str

    def command(self, text, wav_path, text_path=None):
        """The command line that writes ``text`` spoken to ``wav_path``."""
        if self.engine == "flite":
            return ["flite", *self.options, "-t", text, "-o", wav_path]
        if self.engine == "espeak-ng":
            return ["espeak-ng", *self.options, "-w", wav_path, text]
        if self.engine == "festival":
            evals = []
            for expr in self.options:
                evals += ["-eval", expr]
            return ["text2wave", *evals, text_path, "-o", wav_path]
        raise ValueError(f"unknown engine {self.engine}")


def _flite(voice, f0=None, stretch=None):
    opts = ["-voice", voice]
    if f0 is not None:
        opts += ["--setf", f"int_f0_target_mean={f0}"]
    if stretch is not None:
        opts += ["--setf", f"duration_stretch={stretch}"]
    return tuple(opts)


def _espeak(variant, pitch, speed):
    return ("-v", variant, "-p", str(pitch), "-s", str(speed))


#: Training voices. All flite ``slt``/``rms``/``kal16`` variants and the
#: festival HTS ``slt`` voice are here, so no test voice shares a speaker.
TRAIN_VOICES = (
    Voice("flite_slt", "flite", _flite("slt"), "flite slt (US female)"),
    Voice(
        "flite_slt_f215",
        "flite",
        _flite("slt", 215, 0.92),
        "flite slt, mean F0 215 Hz, 8% faster",
    ),
    Voice("flite_rms", "flite", _flite("rms"), "flite rms (US male)"),
    Voice("flite_rms_slow", "flite", _flite("rms", None, 1.15), "flite rms, 15% slower"),
    Voice("flite_kal16", "flite", _flite("kal16"), "flite kal16 (US male, diphone)"),
    Voice(
        "flite_kal16_f135",
        "flite",
        _flite("kal16", 135, 1.05),
        "flite kal16, mean F0 135 Hz, 5% slower",
    ),
    Voice(
        "espeak_enus_m3",
        "espeak-ng",
        _espeak("en-us+m3", 45, 160),
        "espeak-ng en-us, variant m3, pitch 45, 160 wpm",
    ),
    Voice(
        "espeak_engb_f3",
        "espeak-ng",
        _espeak("en-gb+f3", 60, 150),
        "espeak-ng en-gb, variant f3, pitch 60, 150 wpm",
    ),
    Voice(
        "espeak_rp_m1",
        "espeak-ng",
        _espeak("en-gb-x-rp+m1", 35, 170),
        "espeak-ng en-gb-x-rp, variant m1, pitch 35, 170 wpm",
    ),
    Voice(
        "espeak_enus_f2",
        "espeak-ng",
        _espeak("en-us+f2", 70, 145),
        "espeak-ng en-us, variant f2, pitch 70, 145 wpm",
    ),
    Voice(
        "festival_slt_hts",
        "festival",
        ("(voice_cmu_us_slt_arctic_hts)",),
        "festival cmu_us_slt_arctic_hts (US female, HTS)",
    ),
)

#: Test voices: speakers and variants that no training voice uses.
TEST_VOICES = (
    Voice("flite_awb", "flite", _flite("awb"), "flite awb (Scottish English male)"),
    Voice(
        "festival_ked",
        "festival",
        ("(voice_ked_diphone)",),
        "festival ked_diphone (US male, diphone)",
    ),
    Voice(
        "espeak_scot_f4",
        "espeak-ng",
        _espeak("en-gb-scotland+f4", 55, 155),
        "espeak-ng en-gb-scotland, variant f4, pitch 55, 155 wpm",
    ),
    Voice(
        "espeak_carib_m7",
        "espeak-ng",
        _espeak("en-029+m7", 40, 165),
        "espeak-ng en-029 (Caribbean), variant m7, pitch 40, 165 wpm",
    ),
    Voice(
        "espeak_nyc_f5",
        "espeak-ng",
        _espeak("en-us-nyc+f5", 65, 150),
        "espeak-ng en-us-nyc, variant f5, pitch 65, 150 wpm",
    ),
)


def synthesize(voice, text, workdir):
    """Speaks ``text`` with ``voice`` and returns 16 kHz float32 audio.

    Arguments
    ---------
    voice : Voice
        The voice.
    text : str
        The sentence.
    workdir : str
        Folder for temporary files.

    Returns
    -------
    numpy.ndarray
        ``[samples]`` signal at 16 kHz, untrimmed, engine level.
    """
    wav = os.path.join(workdir, "tts.wav")
    txt = os.path.join(workdir, "tts.txt")
    with open(txt, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    subprocess.run(
        voice.command(text, wav, txt),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    signal, sr = read_audio_native(wav)
    os.remove(wav)
    return to_16k(signal, sr)


def split_sentences(sentences=SENTENCES, test_every=5):
    """Splits sentence indices by position: every ``test_every``-th is test.

    Arguments
    ---------
    sentences : sequence of str
        The sentence list.
    test_every : int
        Period of test sentences.

    Returns
    -------
    (list of int, list of int)
        Train and test sentence indices (disjoint).

    Example
    -------
    >>> split_sentences(["s"] * 10, test_every=5)
    ([0, 1, 2, 3, 5, 6, 7, 8], [4, 9])
    """
    test = [i for i in range(len(sentences)) if i % test_every == test_every - 1]
    train = [i for i in range(len(sentences)) if i % test_every != test_every - 1]
    return train, test


# ---------------------------------------------------------------------------
# Noise plan
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClipSource:
    """A CC0 recording turned into one or more noise files.

    Arguments
    ---------
    noise_type : str
        Type name (file prefix); types never span both splits.
    package : str
        ``"sonic-pi-samples"`` or ``"openttd-opensfx"``.
    name : str
        Sample file name (Sonic Pi) or clip title (OpenSFX).
    segments : int
        Number of separate segments cut from it.

    Example
    -------
    >>> ClipSource("hum", "sonic-pi-samples", "ambi_glass_hum.flac").segments
    1
    """

    noise_type: str
    package: str
    name: str
    segments: int = 1


_SP, _OS = "sonic-pi-samples", "openttd-opensfx"

#: Recorded training noise (all CC0, checked again at build time).
TRAIN_CLIPS = (
    ClipSource("hum", _SP, "ambi_glass_hum.flac"),
    ClipSource("hum", _SP, "ambi_haunted_hum.flac"),
    ClipSource("hum", _SP, "ambi_soft_buzz.flac"),
    ClipSource("drone", _SP, "ambi_drone.flac"),
    ClipSource("drone", _SP, "ambi_lunar_land.flac"),
    ClipSource("drone", _SP, "ambi_dark_woosh.flac"),
    ClipSource("vinyl", _SP, "vinyl_hiss.flac", segments=2),
    ClipSource("vinyl", _SP, "vinyl_rewind.flac"),
    ClipSource("drums", _SP, "loop_amen_full.flac"),
    ClipSource("drums", _SP, "loop_compus.flac"),
    ClipSource("drums", _SP, "loop_garzul.flac"),
    ClipSource("drums", _SP, "loop_mika.flac"),
    ClipSource("engine", _OS, "Truck/old bus start, pull away"),
    ClipSource("engine", _OS, "Truck/old bus start, pull away with horn"),
    ClipSource("engine", _OS, "Modern jet take off"),
    ClipSource("engine", _OS, "Toyland: Propeller plane take off"),
    ClipSource("crash", _OS, "Lumber mill: Crashing tree"),
    ClipSource("crash", _OS, "Lumber mill: Falling tree"),
    ClipSource("crash", _OS, "Train/ship breakdown"),
    ClipSource("crash", _OS, "Splat (building docks/canals/river)"),
    ClipSource("bell", _OS, "Level crossing"),
    ClipSource("bell", _SP, "perc_bell.flac"),
    ClipSource("bell", _SP, "elec_chime.flac"),
)

#: Recorded test noise, of types absent from training (all CC0).
TEST_CLIPS = (
    ClipSource("animal", _OS, "Sheep"),
    ClipSource("animal", _OS, "Cow"),
    ClipSource("animal", _OS, "Tropical: Lion roar"),
    ClipSource("animal", _OS, "Tropical: Monkeys"),
    ClipSource("animal", _OS, "Tropical: Bird (1)"),
    ClipSource("animal", _OS, "Tropical: Bird (2)"),
    ClipSource("tabla", _SP, "loop_tabla.flac", segments=2),
    ClipSource("tabla", _SP, "tabla_ghe6.flac"),
)

#: Generated noise: (split, type, spectral exponent, files).
GENERATED_NOISE = (
    ("train", "white", 0.0, 3),
    ("train", "pink", 1.0, 3),
    ("test", "brown", 2.0, 3),
)

#: Babble: (split, type, talkers, files). Training "chatter" sums training
#: voices; test "babble" sums test voices (sentences not in the clean set).
BABBLE_NOISE = (
    ("train", "chatter", 3, 3),
    ("test", "babble", 5, 3),
)

#: Seconds per noise file in each split.
NOISE_SECONDS = {"train": 3.0, "test": 4.0}


def noise_type_of(filename):
    """The noise type of a ``<noise_type>_<n>.flac`` file name.

    Arguments
    ---------
    filename : str
        File name or path.

    Returns
    -------
    str

    Example
    -------
    >>> noise_type_of("noise/test/animal_3.flac")
    'animal'
    """
    stem = os.path.splitext(os.path.basename(filename))[0]
    return stem.rsplit("_", 1)[0]


# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------


def _synthesize_split(voices, sentence_ids, target_seconds, min_s, max_s, workdir, rng):
    """Round-robin over voices until the split holds ``target_seconds``.

    Returns the kept utterances ``[(voice, sentence index, signal)]`` and the
    sentence indices left unused.
    """
    pool = [int(i) for i in rng.permutation(sentence_ids)]
    kept, total, turn, tries = [], 0.0, 0, {}
    while pool and total < target_seconds:
        voice = voices[turn % len(voices)]
        turn += 1
        sid = pool.pop(0)
        raw = synthesize(voice, SENTENCES[sid], workdir)
        speech = trim_silence(raw, SAMPLE_RATE)
        seconds = len(speech) / SAMPLE_RATE
        if not min_s <= seconds <= max_s:
            # Too long or short for this voice: another voice (faster or
            # slower) may fit, so the sentence goes back once.
            tries[sid] = tries.get(sid, 0) + 1
            if tries[sid] < 2:
                pool.append(sid)
            continue
        kept.append((voice, sid, set_level(speech, SPEECH_DBFS)))
        total += seconds
    return kept, pool


def _babble_pool(voices, sentence_ids, count, workdir):
    """Utterances (trimmed, levelled) for babble, cycling through voices."""
    utts = []
    for k, sid in enumerate(sentence_ids[:count]):
        voice = voices[k % len(voices)]
        speech = trim_silence(synthesize(voice, SENTENCES[sid], workdir), SAMPLE_RATE)
        utts.append((voice, sid, set_level(speech, SPEECH_DBFS)))
    return utts


def _load_clip(source, opensfx, sonic_licences):
    """Loads one CC0 source at 16 kHz; returns (signal, origin, licence)."""
    if source.package == _OS:
        matches = [c for c in opensfx if c.title == source.name]
        if len(matches) != 1:
            raise RuntimeError(f"OpenSFX clip '{source.name}' not found exactly once")
        clip = matches[0]
        if not clip.is_cc0:
            raise RuntimeError(f"OpenSFX clip '{source.name}' is not CC0: {clip.licence}")
        signal, sr = decode_wav_bytes(clip.wav)
        origin = (
            f"openttd-opensfx {package_version(_OS)}: clip {clip.index} of "
            f"opensfx.cat ({clip.filename}), described as: {clip.description}"
        )
        return to_16k(signal, sr), origin, "CC0-1.0"
    meta = sonic_licences.get(source.name)
    if meta is None or meta["license"] != "CC0":
        raise RuntimeError(f"Sonic Pi sample {source.name} is not listed as CC0")
    signal, sr = read_audio_native(os.path.join(SONIC_PI_SAMPLES, source.name))
    origin = (
        f"sonic-pi-samples {package_version(_SP)}: {SONIC_PI_SAMPLES}/{source.name} "
        f"(Copyright: {meta['copyright']}; Source: {meta['source']})"
    )
    return to_16k(signal, sr), origin, "CC0-1.0"


def build_demo_corpus(
    output_folder=DEFAULT_OUTPUT,
    seed=1234,
    train_seconds=480.0,
    test_seconds=160.0,
    max_bytes=MAX_BYTES,
    install=True,
):
    """Builds the demo corpus into ``output_folder`` (replacing its audio).

    Arguments
    ---------
    output_folder : str
        Destination; its ``clean/``, ``noise/``, ``SOURCES.md`` and
        ``transcripts.tsv`` are replaced, nothing else is touched.
    seed : int
        Seed for sentence order, noise segments and generated noise.
    train_seconds : float
        Training speech to synthesize (stops at the first utterance past it).
    test_seconds : float
        Test speech to synthesize.
    max_bytes : int
        Size cap (4 KiB blocks); exceeding it raises ``RuntimeError``.
    install : bool
        Install missing Debian packages with apt when running as root.

    Returns
    -------
    dict
        Summary: seconds per split, voices, noise types, size in bytes.
    """
    ensure_packages(DEMO_PACKAGES, install=install)
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    output_folder = os.path.abspath(output_folder)
    os.makedirs(output_folder, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=".build_", dir=output_folder)
    workdir = tempfile.mkdtemp(prefix="fsce_tts_")
    try:
        summary = _build_into(stage, workdir, rng, train_seconds, test_seconds)
        for name in ("clean", "noise", "SOURCES.md", "transcripts.tsv"):
            dest = os.path.join(output_folder, name)
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            elif os.path.exists(dest):
                os.remove(dest)
            os.replace(os.path.join(stage, name), dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    files = [
        os.path.join(root, f)
        for root, _, names in os.walk(output_folder)
        for f in names
        if not root.startswith(os.path.join(output_folder, ".build_"))
    ]
    summary["bytes"] = disk_bytes(files)
    if summary["bytes"] > max_bytes:
        raise RuntimeError(
            f"demo corpus is {summary['bytes'] / 2**20:.2f} MiB, over the "
            f"{max_bytes / 2**20:.2f} MiB cap: lower --train_seconds"
        )
    return summary


def _build_into(stage, workdir, rng, train_seconds, test_seconds):
    """Writes corpus files under ``stage``; returns the summary dict."""
    train_ids, test_ids = split_sentences()
    print("Synthesizing test speech ...", flush=True)
    test_utts, test_left = _synthesize_split(
        TEST_VOICES, test_ids, test_seconds, 2.0, 5.0, workdir, rng
    )
    print("Synthesizing training speech ...", flush=True)
    train_utts, train_left = _synthesize_split(
        TRAIN_VOICES, train_ids, train_seconds, 1.5, 8.0, workdir, rng
    )

    transcripts = ["path\tvoice_id\tsentence_index\ttext"]
    voice_rows = []
    seconds = {"train": 0.0, "test": 0.0}
    for split, utts, voices in (
        ("train", train_utts, TRAIN_VOICES),
        ("test", test_utts, TEST_VOICES),
    ):
        for voice in voices:
            mine = [(sid, sig) for v, sid, sig in utts if v is voice]
            dur = sum(len(s) for _, s in mine) / SAMPLE_RATE
            voice_rows.append((split, voice, len(mine), dur))
            seconds[split] += dur
            for sid, sig in mine:
                rel = f"clean/{split}/{voice.voice_id}/{voice.voice_id}_{sid:03d}.flac"
                write_flac(os.path.join(stage, rel), sig)
                transcripts.append(f"{rel}\t{voice.voice_id}\t{sid}\t{SENTENCES[sid]}")

    print("Preparing noise ...", flush=True)
    noise_rows = []  # (split, file, type, origin, licence)
    counters = {}

    def add_noise(split, noise_type, signal, origin, licence):
        n = counters.get((split, noise_type), 0) + 1
        counters[(split, noise_type)] = n
        rel = f"noise/{split}/{noise_type}_{n}.flac"
        write_flac(os.path.join(stage, rel), set_level(signal, NOISE_DBFS))
        noise_rows.append((split, rel, noise_type, origin, licence))

    # Generated coloured noise.
    for split, noise_type, exponent, count in GENERATED_NOISE:
        length = int(NOISE_SECONDS[split] * SAMPLE_RATE)
        for _ in range(count):
            noise = colored_noise(length, exponent, rng)
            add_noise(
                split,
                noise_type,
                noise,
                f"generated: Gaussian noise with 1/f^{exponent:g} power spectrum (numpy, seeded)",
                "generated for this project",
            )

    # Babble from the corpus' own voices, sentences unused by clean speech.
    pools = {
        "train": (TRAIN_VOICES, train_left),
        "test": (TEST_VOICES, test_left + train_left[len(train_left) // 2 :]),
    }
    for split, noise_type, talkers, count in BABBLE_NOISE:
        voices, left = pools[split]
        utts = _babble_pool(voices, left, talkers * count + 2, workdir)
        length = int(NOISE_SECONDS[split] * SAMPLE_RATE)
        for _ in range(count):
            babble, used = mix_babble([u[2] for u in utts], length, rng, talkers)
            names = ", ".join(f"{utts[i][0].voice_id} #{utts[i][1]}" for i in used)
            add_noise(
                split,
                noise_type,
                babble,
                f"generated: sum of {talkers} {split} voices reading project "
                f"sentences not in the clean set ({names})",
                "generated for this project",
            )

    # CC0 recordings.
    opensfx = read_opensfx()
    sonic_licences = sonic_pi_licences()
    for split, sources in (("train", TRAIN_CLIPS), ("test", TEST_CLIPS)):
        length = int(NOISE_SECONDS[split] * SAMPLE_RATE)
        for source in sources:
            signal, origin, licence = _load_clip(source, opensfx, sonic_licences)
            signal = trim_silence(signal, SAMPLE_RATE, threshold_db=-50.0, margin=0.02)
            for start in segment_starts(len(signal), length, source.segments):
                piece = fit_length(signal, length, start=start)
                where = (
                    f"{start / SAMPLE_RATE:.2f}-{(start + length) / SAMPLE_RATE:.2f} s"
                    if len(signal) >= length
                    else f"looped ({len(signal) / SAMPLE_RATE:.2f} s clip)"
                )
                add_noise(
                    split,
                    source.noise_type,
                    piece,
                    f"{origin}; after trimming silence, {where}",
                    licence,
                )

    with open(os.path.join(stage, "transcripts.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(transcripts) + "\n")
    with open(os.path.join(stage, "SOURCES.md"), "w", encoding="utf-8") as f:
        f.write(_sources_markdown(voice_rows, noise_rows, seconds))

    types = {
        split: sorted({row[2] for row in noise_rows if row[0] == split})
        for split in ("train", "test")
    }
    return {
        "seconds": seconds,
        "utterances": {
            "train": len(train_utts),
            "test": len(test_utts),
        },
        "voices": {
            "train": [v.voice_id for v in TRAIN_VOICES],
            "test": [v.voice_id for v in TEST_VOICES],
        },
        "noise_types": types,
        "noise_files": {s: sum(1 for r in noise_rows if r[0] == s) for s in ("train", "test")},
    }


def _sources_markdown(voice_rows, noise_rows, seconds):
    """The SOURCES.md text (origins and licences of every file)."""
    versions = {p: package_version(p) for p in DEMO_PACKAGES}
    lines = [
        "# Demo corpus: sources and licences",
        "",
        (
            "Generated by `tools/corpora/demo_corpus.py`. Regenerate "
            "(deterministic, seed 1234; needs the Debian packages below, which it "
            "installs when run as root) from the repository root with:"
        ),
        "",
        "```",
        REGENERATE_COMMAND,
        "```",
        "",
        (
            "All files are 16 kHz mono 16-bit FLAC. Identical bytes need the same "
            "package versions as listed here."
        ),
        "",
        "| Debian package | version |",
        "|---|---|",
    ]
    lines += [f"| {p} | {v} |" for p, v in versions.items()]
    lines += [
        "",
        "## Speech (`clean/`)",
        "",
        (
            "Synthetic speech only; no recording of a person is included. The "
            "text is the project's own: every sentence was written for "
            "speechbrain-fsce (`tools/corpora/sentences.py`) and none "
            "is copied from a corpus or prompt list. Test sentences (every fifth "
            "of the list) are never read by a training voice. The output of the "
            "engines is not covered by the engines' own licences; it is "
            "distributed with this project under the project's terms. Each "
            "utterance was trimmed of leading/trailing silence (keeping 0.1 s) "
            f"and set to {SPEECH_DBFS:g} dBFS RMS (peaks kept below 0.99). "
            "Texts per file: `transcripts.tsv`."
        ),
        "",
        (
            f"Training speech: {seconds['train'] / 60:.2f} min; test speech: "
            f"{seconds['test'] / 60:.2f} min. Test voices are disjoint from "
            "training voices (no shared speaker: all flite slt/rms/kal16 variants "
            "and the festival slt voice are training voices)."
        ),
        "",
        "| split | voice_id | engine | options | utterances | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for split, voice, count, dur in voice_rows:
        opts = " ".join(voice.options)
        lines.append(
            f"| {split} | {voice.voice_id} | {voice.engine} "
            f"{versions.get(voice.engine, package_version(voice.engine))} | "
            f"`{opts}` ({voice.description}) | {count} | {dur:.1f} |"
        )
    lines += [
        "",
        "## Noise (`noise/`)",
        "",
        (
            "Only CC0 recordings and generated signals. Licences were checked per "
            "file at build time: Sonic Pi samples against the per-file list in "
            "`/usr/share/doc/sonic-pi-samples/copyright` (files only covered by "
            "its `Files: *` entry are not used); OpenSFX clips against the "
            "licence stated in each clip's own description inside "
            "`opensfx.cat` (clips marked CC-BY or CC-BY-SA are not used). "
            "Generated noise: white, pink (1/f) and brown (1/f^2) Gaussian noise "
            "shaped in the frequency domain (flat below 20 Hz) from a seeded "
            "numpy generator; `chatter` (train) sums 3 training voices, `babble` "
            "(test) sums 5 test voices, each reading project sentences that are "
            "not in the clean set, at equal level with random offsets. Recorded "
            "clips were trimmed of silence, cut or looped (20 ms cross-fade) to "
            f"{NOISE_SECONDS['train']:g} s (train) / {NOISE_SECONDS['test']:g} s "
            f"(test) and set to {NOISE_DBFS:g} dBFS RMS. Training and test noise "
            "types are disjoint."
        ),
        "",
        "| file | type | origin | licence |",
        "|---|---|---|---|",
    ]
    for _, rel, noise_type, origin, licence in noise_rows:
        lines.append(f"| `{rel}` | {noise_type} | {origin} | {licence} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_folder", default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--train_seconds", type=float, default=480.0)
    parser.add_argument("--test_seconds", type=float, default=160.0)
    parser.add_argument(
        "--no_install",
        action="store_true",
        help="never call apt-get; only report missing packages",
    )
    args = parser.parse_args(argv)
    try:
        summary = build_demo_corpus(
            args.output_folder,
            seed=args.seed,
            train_seconds=args.train_seconds,
            test_seconds=args.test_seconds,
            install=not args.no_install,
        )
    except MissingPackagesError as err:
        print(str(err), file=sys.stderr)
        return 2
    for split in ("train", "test"):
        print(
            f"{split}: {summary['seconds'][split] / 60:.2f} min of speech in "
            f"{summary['utterances'][split]} utterances, "
            f"{len(summary['voices'][split])} voices "
            f"({', '.join(summary['voices'][split])}); "
            f"{summary['noise_files'][split]} noise files of types "
            f"{', '.join(summary['noise_types'][split])}"
        )
    print(f"total size {summary['bytes'] / 2**20:.2f} MiB (4 KiB blocks) in {args.output_folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
