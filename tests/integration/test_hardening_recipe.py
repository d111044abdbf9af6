"""Issue 10 through the recipe: silent stretches in training speech with
short excerpts (finding 11) and a training data error (finding 8)."""

import numpy as np
import soundfile as sf

from tests.integration.recipe_utils import make_corpus, recipe_args, run_recipe


def test_recipe_survives_silences_and_reports_data_errors_in_one_line(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", seconds=0.6)
    train = sorted((corpus / "clean" / "train").rglob("*.wav"))
    for path in train:  # long digital silences around each utterance
        x, rate = sf.read(str(path), dtype="float32")
        silence = np.zeros(3 * rate, dtype=np.float32)
        sf.write(str(path), np.concatenate([silence, x, silence]), rate)
    output = tmp_path / "run"
    args = ["--train_chunk_seconds=0.1", "--export_model=False"]
    proc = run_recipe(recipe_args(corpus, output, extra=args + ["--number_of_epochs=1"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (output / "train_log.txt").read_text()
    assert "silent_redrawn" in log  # counted and reported with the epoch

    # A training file that went missing after preparation: one clear line.
    train[0].unlink()
    proc = run_recipe(recipe_args(corpus, output, extra=args + ["--number_of_epochs=3"]))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and train[0].name in last and "no such file" in last
