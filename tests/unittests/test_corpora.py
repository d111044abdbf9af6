"""Checks of the committed demo corpus and of the corpus builders' helpers.

The demo corpus tests read the committed files (about 250 small FLACs, a
second or two). The benchmark builder is tested through its pure helpers on
generated arrays; anything that needs the Debian packages is marked slow.

Authors
 * speechbrain-fsce developers
"""

import collections
import csv
import json
import os
import re
import struct

import numpy as np
import pytest
import soundfile as sf

from speechbrain_fsce.testing import speech_like
from tools.corpora import benchmark_corpus as bench
from tools.corpora import common
from tools.corpora import demo_corpus as demo
from tools.corpora.sentences import SENTENCES

CORPUS = demo.DEFAULT_OUTPUT
SR = 16000


def _files(*parts):
    root = os.path.join(CORPUS, *parts)
    out = []
    for dirpath, _, names in os.walk(root):
        out += [os.path.join(dirpath, n) for n in names]
    return sorted(out)


def _voices(split):
    return sorted(os.listdir(os.path.join(CORPUS, "clean", split)))


def _noise_types(split):
    return {demo.noise_type_of(p) for p in _files("noise", split)}


@pytest.fixture(scope="module")
def audio():
    """``{relative path: (signal, soundfile info)}`` of every corpus file."""
    data = {}
    for path in _files("clean") + _files("noise"):
        rel = os.path.relpath(path, CORPUS).replace(os.sep, "/")
        data[rel] = (sf.read(path, dtype="float64")[0], sf.info(path))
    return data


@pytest.fixture(scope="module")
def sources():
    with open(os.path.join(CORPUS, "SOURCES.md"), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------------------
# The committed demo corpus
# ---------------------------------------------------------------------------


def test_layout():
    for sub in ("clean/train", "clean/test", "noise/train", "noise/test"):
        assert os.path.isdir(os.path.join(CORPUS, sub)), sub
    assert os.path.isfile(os.path.join(CORPUS, "SOURCES.md"))
    for split in ("train", "test"):
        voices = _voices(split)
        assert len(voices) >= 4
        for voice in voices:
            folder = os.path.join(CORPUS, "clean", split, voice)
            assert os.path.isdir(folder)
            names = os.listdir(folder)
            assert names and all(n.endswith(".flac") for n in names), voice
        for path in _files("noise", split):
            assert re.fullmatch(r"[a-z]+_\d+\.flac", os.path.basename(path)), path
    # Nothing but the documented files at the top level.
    assert set(os.listdir(CORPUS)) <= {
        "clean",
        "noise",
        "SOURCES.md",
        "transcripts.tsv",
    }


def test_all_files_16k_mono_flac(audio):
    assert len(audio) > 150
    for rel, (signal, info) in audio.items():
        assert (info.format, info.subtype) == ("FLAC", "PCM_16"), rel
        assert (info.samplerate, info.channels) == (SR, 1), rel
        assert signal.ndim == 1


def test_size_within_budget():
    files = _files()
    assert common.disk_bytes(files) <= demo.MAX_BYTES == 15 * 2**20
    assert sum(os.path.getsize(p) for p in files) <= 15 * 2**20


def test_train_and_test_voices_disjoint():
    train, test = set(_voices("train")), set(_voices("test"))
    assert train and test and not train & test

    # Also no underlying speaker shared: the engine voice name (flite_slt
    # and flite_slt_f215 are one speaker) never appears on both sides.
    def speakers(voices):
        return {"_".join(v.split("_")[:2]) for v in voices}

    assert not speakers(train) & speakers(test)
    assert train == {v.voice_id for v in demo.TRAIN_VOICES}
    assert test == {v.voice_id for v in demo.TEST_VOICES}


def test_train_and_test_noise_types_disjoint():
    train, test = _noise_types("train"), _noise_types("test")
    assert len(train) >= 5 and len(test) >= 3
    assert not train & test


def test_test_sentences_unseen_in_training():
    with open(os.path.join(CORPUS, "transcripts.tsv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    listed = {r["path"] for r in rows}
    on_disk = {os.path.relpath(p, CORPUS).replace(os.sep, "/") for p in _files("clean")}
    assert listed == on_disk
    by_split = collections.defaultdict(set)
    for r in rows:
        assert SENTENCES[int(r["sentence_index"])] == r["text"]
        assert r["path"].split("/")[2] == r["voice_id"]
        by_split[r["path"].split("/")[1]].add(r["text"])
    assert not by_split["train"] & by_split["test"]


def test_sources_cover_every_file(sources):
    assert demo.REGENERATE_COMMAND in sources
    assert "written for speechbrain-fsce" in sources
    for split in ("train", "test"):
        for voice in _voices(split):
            count = len(os.listdir(os.path.join(CORPUS, "clean", split, voice)))
            row = re.search(
                rf"^\| {split} \| {re.escape(voice)} \|.*\| (\d+) \| [\d.]+ \|$",
                sources,
                re.MULTILINE,
            )
            assert row, voice
            assert int(row.group(1)) == count, voice
    rows = dict(re.findall(r"^\| `(noise/[^`]+)` \|.*\| ([^|]+) \|$", sources, re.MULTILINE))
    on_disk = {os.path.relpath(p, CORPUS).replace(os.sep, "/") for p in _files("noise")}
    assert set(rows) == on_disk
    # Licence-clean: only CC0 recordings and generated signals.
    assert set(rows.values()) <= {"CC0-1.0", "generated for this project"}
    assert "CC-BY" not in "".join(rows.values())


def test_durations(audio):
    seconds = collections.Counter()
    for rel, (signal, _) in audio.items():
        kind, split = rel.split("/")[:2]
        dur = len(signal) / SR
        seconds[(kind, split)] += dur
        if kind == "clean":
            assert 1.5 <= dur <= 8.0, rel
            if split == "test":
                assert 2.0 <= dur <= 5.0, rel
        else:
            assert 2.0 <= dur <= 10.0, rel
    assert seconds[("clean", "train")] >= 7 * 60
    assert seconds[("clean", "test")] >= 2 * 60
    noise_minutes = (seconds[("noise", "train")] + seconds[("noise", "test")]) / 60
    assert 2.0 <= noise_minutes <= 5.0


def test_no_silent_files(audio):
    for rel, (signal, _) in audio.items():
        assert common.rms_dbfs(signal) > -40.0, rel
        energy = common.frame_energy_db(signal, 320)
        # Trimmed speech is mostly active; noise files are never mostly empty.
        active = np.mean(energy > energy.max() - 40.0)
        assert active > (0.6 if rel.startswith("clean") else 0.3), rel
        # Not trimmed to the bone either: leading silence is short.
        start, _ = common.active_span(signal, SR, margin=0.0)
        if rel.startswith("clean"):
            assert start < 0.3 * SR, rel


def test_sentences_are_original_list():
    assert len(SENTENCES) >= 300
    assert len(set(SENTENCES)) == len(SENTENCES)
    for s in SENTENCES:
        assert 5 <= len(s.split()) <= 15, s
    train, test = demo.split_sentences()
    assert not set(train) & set(test) and len(train) + len(test) == len(SENTENCES)


# ---------------------------------------------------------------------------
# Helpers of the demo builder
# ---------------------------------------------------------------------------


def test_trim_and_level():
    x = np.zeros(3 * SR)
    x[SR : 2 * SR] = 0.2 * speech_like(1.0, SR, seed=1)
    y = common.trim_silence(x, SR, margin=0.1)
    assert 0.8 * SR < len(y) <= 1.2 * SR
    z = common.set_level(y, -26.0)
    assert abs(common.rms_dbfs(z) + 26.0) < 0.01
    assert np.abs(common.set_level(np.r_[1.0, np.zeros(99)], 0.0)).max() <= 0.99


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_colored_noise_slope(exponent):
    x = common.colored_noise(8 * SR, exponent, np.random.default_rng(1))
    f = np.fft.rfftfreq(len(x), 1 / SR)
    p = np.abs(np.fft.rfft(x)) ** 2
    sel = (f > 100) & (f < 6000)
    slope = np.polyfit(np.log10(f[sel]), np.log10(p[sel]), 1)[0]
    assert abs(slope + exponent) < 0.15


def test_fit_length_loops_and_cuts():
    x = np.sin(np.arange(1000) / 7.0)
    looped = common.fit_length(x, 4500)
    assert len(looped) == 4500
    assert np.abs(np.diff(looped)).max() < 0.5  # cross-faded seams, no click
    assert np.allclose(common.fit_length(np.arange(100.0), 10, start=95), np.arange(90, 100))


def test_mix_babble_uses_distinct_talkers():
    utts = [speech_like(1.0, SR, seed=k) for k in range(6)]
    babble, used = common.mix_babble(utts, 2 * SR, np.random.default_rng(0), 4)
    assert len(set(used)) == 4 and len(babble) == 2 * SR
    with pytest.raises(ValueError):
        common.mix_babble(utts[:2], SR, np.random.default_rng(0), 3)


def _cat_entry(description, wav, name, pad=b"\0"):
    d, n = description.encode() + b"\0", name.encode() + b"\0"
    return bytes([len(d)]) + d + wav + pad + bytes([len(n)]) + n


def _wav_bytes(signal, rate):
    import io

    buf = io.BytesIO()
    sf.write(buf, signal, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_parse_opensfx_container():
    clips = [
        ('"Cow". Original by A. License: Creative Commons Zero 1.0.', 0.1),
        (
            '"Wind". Original by B. License: Creative Commons Attribution 3.0 Unported.',
            0.2,
        ),
    ]
    entries = [
        _cat_entry(desc, _wav_bytes(np.full(441, amp), 44100), f"src/wav/osfx_{i:02d}.wav")
        for i, (desc, amp) in enumerate(clips)
    ]
    header_len = 8 * len(entries)
    header, offset = b"", header_len
    for e, (desc, _) in zip(entries, clips):
        wav_len = len(e) - (len(desc) + 2) - 1 - (1 + len("src/wav/osfx_00.wav") + 1)
        header += struct.pack("<II", offset | 0x80000000, wav_len)
        offset += len(e)
    parsed = common.parse_opensfx_cat(header + b"".join(entries))
    assert [c.title for c in parsed] == ["Cow", "Wind"]
    assert [c.is_cc0 for c in parsed] == [True, False]
    assert parsed[1].licence == "Creative Commons Attribution 3.0 Unported"
    assert [c.filename for c in parsed] == [
        "src/wav/osfx_00.wav",
        "src/wav/osfx_01.wav",
    ]
    signal, rate = common.decode_wav_bytes(parsed[0].wav)
    assert rate == 44100 and len(signal) == 441 and abs(signal.mean() - 0.1) < 1e-3


def test_dep5_only_listed_files_count_as_cc0(tmp_path):
    text = (
        "Files: *\nCopyright: 2016 S\nLicense: MIT\n\n"
        "Files: etc/samples/a.flac\nCopyright: 2013 A\nSource: http://x/1\nLicense: CC0\n\n"
        "Files: etc/samples/b.flac\n etc/samples/c.flac\nCopyright: 2012 B\nLicense: CC-BY-SA-4.0\n"
    )
    path = tmp_path / "copyright"
    path.write_text(text)
    lic = common.sonic_pi_licences(str(path))
    assert lic["a.flac"]["license"] == "CC0"
    assert lic["c.flac"]["license"] == "CC-BY-SA-4.0"
    assert "d.flac" not in lic  # only under Files: * (MIT): never CC0


def test_missing_packages_reported(monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEMO_PACKAGES", ("no-such-package-fsce-x",))
    assert demo.main(["--no_install", "--output_folder", "/nonexistent/x"]) == 2
    assert "no-such-package-fsce-x" in capsys.readouterr().err
    monkeypatch.setattr(bench, "TOOL_PACKAGES", ("no-such-package-fsce-y",))
    assert bench.main(["--no_install", "--output_folder", "/tmp/fsce-unused"]) == 2
    assert "apt-get install -y no-such-package-fsce-y" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Helpers of the benchmark builder
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, level, speaker",
    [
        ("vit-m-hlava.ogg", "city", "small_fish"),
        ("vit-v-proc.ogg", "city", "big_fish"),
        ("m-hraje.ogg", "rush", "small_fish"),
        ("kecas-v.ogg", "fdto", "big_fish"),
        ("vit-hs-klid1.ogg", "city", "city_hs"),
        ("k1-pap-kruty.ogg", "cabin2", "cabin2_pap"),
        ("dr-3-stakovou.ogg", "viking2", "viking2_3"),
        ("b2-10.ogg", "gods", "gods_b2"),
        ("help3.ogg", "briefcase", "briefcase_help"),
    ],
)
def test_fillets_speaker(name, level, speaker):
    assert bench.fillets_speaker(name, level) == speaker


def test_beeps_and_silence_detected():
    t = np.arange(SR // 2) / SR
    beep = 0.3 * np.sin(2 * np.pi * 1000 * t)
    two_tone = (
        0.3
        * np.r_[
            np.sin(2 * np.pi * 440 * t[: SR // 4]),
            np.sin(2 * np.pi * 620 * t[: SR // 4]),
        ]
    )
    for tone in (beep, two_tone, np.r_[beep, beep]):
        assert bench.is_tonal(tone, SR)
        assert bench.speech_rejection(np.r_[tone, tone], SR) == "tonal"
    rng = np.random.default_rng(0)
    for seed in range(4):
        voiced = speech_like(2.0, SR, seed=seed)
        assert not bench.is_tonal(voiced, SR)
        # Natural speech also has unvoiced, wide-band energy (fricatives,
        # breath): the voiced-only synthetic signal alone is band-limited.
        speech = voiced + 0.03 * rng.standard_normal(len(voiced)) * (np.abs(voiced) > 0.01)
        assert bench.speech_rejection(common.trim_silence(speech, SR), SR) is None
    muffled = np.convolve(speech, np.ones(16) / 16, mode="same")  # low-passed: ~1 kHz
    assert bench.speech_rejection(common.trim_silence(muffled, SR), SR) == "band-limited"
    dither = 1e-5 * rng.standard_normal(2 * SR)  # like asterisk's silence files
    assert bench.speech_rejection(common.trim_silence(dither, SR, -45.0), SR) == "silent"
    assert bench.speech_rejection(speech_like(0.3, SR, seed=1), SR) == "too short"


def test_choose_test_subset():
    files = [f"x/{i:03d}.ogg" for i in range(50)]
    chosen, rest = bench.choose_test_subset(files[::-1], 12, seed=7)
    assert len(chosen) == 12 and len(rest) == 38
    assert sorted(chosen + rest) == files
    assert bench.choose_test_subset(files, 12, seed=7) == (chosen, rest)
    assert bench.choose_test_subset(files, 12, seed=8)[0] != chosen
    assert bench.choose_test_subset(files[:5], 12, seed=7)[0] == files[:5]


def test_split_assignment_of_noise():
    assert bench.opensfx_noise_type("Cow") == ("test", "animal")
    assert bench.opensfx_noise_type("Tropical: Bird (2)") == ("test", "animal")
    for title in ("Helicopter", "Ferry horn", "Jackhammer", "Applause", "Wind"):
        split, noise_type = bench.opensfx_noise_type(title)
        assert split == "train" and noise_type != "animal"
    held_out = {"animal", "keyboard", "brown", "babble-test"}
    assert {t for t, _, _ in bench.GENERATED["train"]}.isdisjoint(held_out)
    assert set(bench.KLETTRES_HELD_OUT) >= {"nl"}


def test_keyboard_typing_is_sparse_clicks():
    rng = np.random.default_rng(0)
    press = [np.hanning(400) * (k + 1) / 10 for k in range(4)]
    release = [0.5 * p for p in press]
    x = bench.keyboard_typing(press, release, 3 * SR, rng)
    assert x.shape == (3 * SR,)
    energy = common.frame_energy_db(x, 160)
    active = np.mean(energy > energy.max() - 30)
    assert 0.05 < active < 0.8  # clicks with gaps, not continuous noise


def test_corpus_summary(tmp_path):
    for split, spk, n in (("train", "a", 2), ("train", "b", 1), ("test", "c", 1)):
        for k in range(n):
            common.write_flac(
                str(tmp_path / "clean" / split / spk / f"{k}.flac"), 0.1 * np.ones(SR)
            )
    common.write_flac(str(tmp_path / "noise" / "test" / "animal_x.flac"), 0.1 * np.ones(SR))
    s = bench.corpus_summary(str(tmp_path))
    assert s["train"]["speakers"] == ["a", "b"] and s["train"]["files"] == 3
    assert abs(s["train"]["minutes"] - 3 / 60) < 1e-9
    assert s["test"]["noise_types"] == ["animal"] and s["train"]["noise_types"] == []


# ---------------------------------------------------------------------------
# Slow: need the Debian packages
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_corpus_regenerates_identically(tmp_path):
    if common.missing_packages(demo.DEMO_PACKAGES):
        pytest.skip("needs " + " ".join(demo.DEMO_PACKAGES))
    demo.build_demo_corpus(str(tmp_path), install=False)
    committed = [os.path.relpath(p, CORPUS) for p in _files()]
    rebuilt = sorted(
        os.path.relpath(os.path.join(d, n), tmp_path)
        for d, _, names in os.walk(tmp_path)
        for n in names
    )
    assert rebuilt == committed
    for rel in committed:
        with (
            open(os.path.join(CORPUS, rel), "rb") as a,
            open(tmp_path / rel, "rb") as b,
        ):
            assert a.read() == b.read(), rel


@pytest.mark.slow
def test_real_opensfx_licences():
    if common.missing_packages(["openttd-opensfx"]):
        pytest.skip("needs openttd-opensfx")
    clips = common.read_opensfx()
    titles = {c.title: c for c in clips}
    for source in demo.TRAIN_CLIPS + demo.TEST_CLIPS:
        if source.package == "openttd-opensfx":
            assert titles[source.name].is_cc0, source.name
    assert not titles["Wind"].is_cc0  # CC-BY: must never be picked


def test_noisy_scores_per_source_and_noise_type(tmp_path):
    from tests.integration.recipe_utils import make_prepared

    prepared = make_prepared(tmp_path, speakers=3, utts=2, test_speakers=1)
    table = bench.noisy_scores(str(prepared), n_jobs=1, progress=False)
    # Validation: one group per source (the speaker folder's prefix).
    assert sum(cell["n"] for cell in table["valid"].values()) == len(
        json.loads((prepared / "valid.json").read_text())
    )
    # Test: noise types of both noise folders (file-name prefixes), per SNR.
    assert set(table["test"]) == {"n0", "n1", "all"}
    everything = table["test"]["all"]
    assert everything["all"]["n"] == len(json.loads((prepared / "test.json").read_text()))
    assert set(everything) == {"-5", "0", "5", "10", "all"}
    assert everything["-5"]["stoi"] < everything["10"]["stoi"]
    assert everything["-5"]["pesq_failed"] == 0
