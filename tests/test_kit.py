"""The kit end to end: it learns, it decodes batch-invariantly, and main.py goes through
the local NSML exactly as a participant's session would (run, model ls, submit, fork)."""
import csv
import os
import re
import subprocess
import sys

import pytest
import torch

from modules.checkpoint import read_checkpoint
from modules.features import FeatureConfig
from modules.metrics import cer
from modules.text import read_label_records
from modules.transcribe.corpus import read_training_set
from modules.transcribe.inference import transcribe_files
from modules.transcribe.normalize import TextConfig
from modules.transcribe.recognizer import SpeechRecognizer
from modules.transcribe.tokenizers import build_tokenizer
from modules.transcribe.trainer import NO_AUGMENTATION, SpeechTrainer, TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "sample_dataset")
TINY_MODEL = ["--rnn_hidden", "64", "--rnn_layers", "1"]


def small_recognizer(texts, seed=0):
    torch.manual_seed(seed)
    return SpeechRecognizer.create("deepspeech2", build_tokenizer("char", texts), FeatureConfig(), TextConfig(),
                                   torch.device("cpu"), rnn_hidden=128, rnn_layers=2)


def test_model_overfits_a_handful_of_utterances():
    utts = read_training_set(SAMPLE)[:6]
    rec = small_recognizer([u.text for u in utts])
    before = cer(transcribe_files(rec, [u.path for u in utts], progress=False), [u.text for u in utts])
    trainer = SpeechTrainer(rec, TrainConfig(**NO_AUGMENTATION, epochs=150, lr=3e-3, specaugment=False, batch_seconds=200,
                                       warmup_fraction=0.03), utts, utts)
    trainer.fit(lambda metrics: metrics["val_cer"] < 0.05)  # stop as soon as it has memorised them
    after = cer(transcribe_files(rec, [u.path for u in utts], progress=False), [u.text for u in utts])
    assert before > 0.8
    assert after < 0.1, f"CER on its own training utterances is still {after:.3f}"


def test_a_file_decodes_the_same_alone_and_in_a_batch():
    utts = read_training_set(SAMPLE)[:5]
    rec = small_recognizer([u.text for u in utts])
    rec.model.eval()
    from modules.audio import load_audio

    waves = [torch.from_numpy(load_audio(u.path)) for u in utts]
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    with torch.no_grad():
        batched, out_lengths = rec.forward(batch, lengths)
        for i, w in enumerate(waves):
            alone, n = rec.forward(w[None], lengths[i:i + 1])
            assert int(n) == int(out_lengths[i])
            assert torch.allclose(alone[0, :n], batched[i, :n], atol=1e-4)


def test_main_help_shows_the_reserved_arguments():
    out = subprocess.run([sys.executable, "main.py", "--help"], cwd=REPO, capture_output=True, text=True, check=True)
    for arg in ("--mode", "--iteration", "--pause"):
        assert arg in out.stdout


def nsml(*args, home, check=True):
    env = dict(os.environ, NSML_LOCAL_HOME=str(home), PYTHONPATH=os.path.join(REPO, "nsml_local"))
    proc = subprocess.run([sys.executable, "-m", "nsml", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"nsml {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def session_dir(home, session):
    return os.path.join(str(home), "sessions", *session.split("/"))


def read_predictions(home, session):
    with open(os.path.join(session_dir(home, session), "prediction.txt"), encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def test_run_model_ls_submit_and_fork_through_local_nsml(tmp_path):
    home = tmp_path / "home"
    run = nsml("run", "-d", SAMPLE, "-a", " ".join(["--epochs", "2", *TINY_MODEL]), home=home)
    session = run.stdout.splitlines()[0].split()[1]
    assert session == "local/sample_dataset/1"
    assert "epoch   2" in run.stdout

    listing = nsml("model", "ls", session, home=home).stdout
    for checkpoint in ("1", "2", "best"):
        assert any(line.split()[0] == checkpoint for line in listing.splitlines()[1:])
    assert "val_cer=" in listing

    # After training, the LM fusion weights are chosen on validation data and saved with 'best'.
    tuned = re.search(r"\[lm\] fusion tuned .*: lm_weight ([0-9.]+), lm_bonus ([0-9.]+)", run.stdout)
    assert tuned, run.stdout[-2000:]
    _, best = read_checkpoint(os.path.join(session_dir(home, session), "checkpoints", "best", "model"))
    assert (best["recognizer"]["decoder"]["lm_weight"], best["recognizer"]["decoder"]["lm_bonus"]) == \
        (float(tuned.group(1)), float(tuned.group(2)))

    first = nsml("submit", session, "best", home=home)
    assert first.stdout.strip().splitlines()[-1].startswith("CER: ")
    test_files = sorted(os.listdir(os.path.join(SAMPLE, "test", "test_data")))
    submit_session = f"local/sample_dataset/{int(session.rsplit('/', 1)[1]) + 1}"
    predictions = read_predictions(home, submit_session)
    assert [name for name, _ in predictions] == test_files  # one record per file, sorted

    # The same checkpoint loaded by another process gives the same transcripts...
    second = nsml("submit", session, "best", home=home)
    assert read_predictions(home, f"local/sample_dataset/{int(session.rsplit('/', 1)[1]) + 2}") == predictions
    assert second.stdout.strip().splitlines()[-1] == first.stdout.strip().splitlines()[-1]

    # ...and the printed CER is the competition metric over those transcripts.
    refs = {r["filename"]: r["text"] for r in read_label_records(os.path.join(SAMPLE, "test", "test_label"))}
    expected = cer([t for _, t in predictions], [refs[n] for n, _ in predictions])
    assert float(first.stdout.strip().splitlines()[-1].split()[1]) == pytest.approx(expected, abs=1e-4)

    # A fork resumes from the checkpoint's epoch and keeps training.
    fork = nsml("fork", "-c", "1", session, home=home)
    assert "[resume] from epoch 1" in fork.stdout
    assert "epoch   2/" in fork.stdout and "epoch   1/" not in fork.stdout
