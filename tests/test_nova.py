"""NOVA, the platform of the 2023 competition (NSML renamed): the kit binds it, nsml_local serves it
under both names from one implementation, and the 2023 data (idx_* files, WAV header or raw PCM)
is read by content."""
import functools
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SAMPLE_2023 = os.path.join(REPO, "sample_dataset_2023")
sys.path.insert(0, os.path.join(HERE, "fixtures"))
import nsml_testkit as kit  # noqa: E402

nova = functools.partial(kit.nsml, program="nova")


def python(code, home, *args):
    """Run a snippet in a fresh process that sees nsml_local as a session does (PYTHONPATH); in this
    process `nova` stays unimported, so tests that stub the platform in sys.modules are not affected."""
    return subprocess.run([sys.executable, "-c", code, *args], env=kit.cli_env(home), capture_output=True,
                          text=True, timeout=60)


def make_2023(root):
    """The 2022 fixture dataset with every even-indexed file rewritten as WAV, still without extension."""
    kit.make_2022(root)
    for folder in ("train/train_data", "test/test_data"):
        for i, name in enumerate(sorted(os.listdir(os.path.join(root, folder)))):
            if i % 2 == 0:
                path = os.path.join(root, folder, name)
                kit.write_wav(path, np.fromfile(path, dtype="<i2"))
    return root


# -- the module under two names ------------------------------------------------------------------

def test_import_nova_is_the_nsml_module_with_its_submodules(tmp_path):
    done = python(
        "import nova, nsml\n"
        "from nova import DATASET_PATH\n"
        "from nova.constants import DATASET_PATH as CONSTANT\n"
        "import nova.environment, nova.session\n"
        "assert nova is nsml\n"
        "assert nova.constants is nsml.constants and nova.session is sys.modules['nsml.session']\n"
        "assert nova.environment.context() is nsml.environment.context()  # one session, one state\n"
        "assert DATASET_PATH == CONSTANT == nsml.DATASET_PATH\n"
        "print('ok')\n".replace("import nova, nsml", "import sys, nova, nsml"), tmp_path / "home")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_program_names_itself_after_how_it_was_called(tmp_path):
    expected = {"/venv/bin/nova": "nova", "/src/nsml_local/nova/__main__.py": "nova",  # python -m nova
                "/src/nsml_local/nsml/__main__.py": "nsml", "/venv/bin/nsml": "nsml", "pytest": "nsml"}
    done = python("import json, sys\nfrom nsml.platforms import program_name\n"
                  "print(json.dumps({a: program_name(a) for a in json.loads(sys.argv[1])}))", tmp_path / "home",
                  json.dumps(list(expected)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


def test_nova_cli_help_and_errors_say_nova_and_nsml_ones_say_nsml(tmp_path):
    home = tmp_path / "home"
    usage = nova(home, "run", "--help")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: nova run")
    for flag in ("-e ENTRY", "-g GPUS", "-c CPUS", "--memory MEMORY"):
        assert flag in usage.stdout
    assert nova(home, "logs", "nope").last_stderr_line.startswith("nova: error: no session 'nope'")
    assert kit.nsml(home, "logs", "nope").last_stderr_line.startswith("nsml: error: no session 'nope'")


# -- the contract through `nova`, with an entry shaped like the 2023 baseline --------------------

@pytest.fixture(scope="module")
def w23(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("w23")
    home = tmp / "home"
    data = make_2023(str(tmp / "Tr1Ko"))
    code = kit.make_code(str(tmp / "code"), "nova_entry_main.py", [("nova_package.txt", "libsndfile1\n")])
    assert nova(home, "dataset", "push", "Tr1Ko", data).returncode == 0
    run = nova(home, "run", "-d", "Tr1Ko", "-e", "main.py", "-g", "2", "-c", "16", "--memory", "160G",
               "-a", "--num_epochs 2", cwd=code)
    assert run.returncode == 0, run
    return {"home": home, "code": code, "data": data, "session": "local/Tr1Ko/1", "run": run}


def test_nova_run_accepts_the_2023_resources_and_the_entry_sees_them(w23):
    run = w23["run"]
    assert run.stdout.splitlines()[0] == "Session local/Tr1Ko/1 started"
    assert "nova.GPU_NUM=2" in run.stdout
    assert "Warning" not in run.stderr  # nova_package.txt is there; no setup.py
    meta = json.load(open(os.path.join(w23["home"], "sessions", "local", "Tr1Ko", "1", "session.json")))
    assert (meta["gpus"], meta["cpus"], meta["memory"]) == (2, 16, "160G")
    assert meta["env"]["OMP_NUM_THREADS"] == "16"


def test_nova_model_ls_submit_t_submit_and_board(w23):
    home, session = w23["home"], w23["session"]
    listing = nova(home, "model", "ls", session)
    assert sorted(line.split()[0] for line in listing.stdout.splitlines()[1:]) == ["0", "1"]
    assert "train_loss=0.5" in listing.stdout

    small = nova(home, "submit", "-t", session, "1")
    assert small.returncode == 0, small
    assert "10 of 12 test items (-t: test submit)" in small.stdout
    full = nova(home, "submit", session, "1")
    assert full.returncode == 0, full
    assert "loading checkpoint '1' of local/Tr1Ko/1" in full.stdout
    # As the 2022 fixture scores (test_nsml_local_cli): 11 of 12 right, 4 errors in 71 characters;
    # a WAV header read as samples would not change the nearest length, a header-less read would crash.
    assert float(full.last_stdout_line.split()[1]) == pytest.approx(4 / 71)

    # One home for both names: the nova sessions are nsml sessions, the board is the same board.
    board = kit.nsml(home, "dataset", "board", "Tr1Ko").stdout.splitlines()
    assert board[2].split()[:4] == ["1", session, "1", "%.4f" % (4 / 71)]
    assert nova(home, "dataset", "board", "Tr1Ko").stdout.splitlines() == board
    assert kit.nsml(home, "ps", "-a", "-q").stdout.split() == ["local/Tr1Ko/3", "local/Tr1Ko/2", session]


def test_nova_run_warns_about_an_upload_written_for_nsml(tmp_path, w23):
    code = kit.make_code(str(tmp_path / "code"), "nova_entry_main.py",
                         [("nsml_package.txt", "libsndfile1\nffmpeg\n"),
                          ("setup.py", "#nsml: pytorch/pytorch:2.7.0-cuda12.8-cudnn9-runtime\n")])
    run = nova(tmp_path / "home", "run", "-d", w23["data"], "-a", "--num_epochs 1", cwd=code)
    assert run.returncode == 0, run
    assert "nsml_package.txt lists apt packages (libsndfile1, ffmpeg) but there is no nova_package.txt" \
        in run.stderr
    assert "setup.py's first line names the image for NSML" in run.stderr and "#!nova: IMAGE" in run.stderr
    same = kit.nsml(tmp_path / "home", "run", "-d", w23["data"], "-a", "--num_epochs 1", cwd=code)
    assert same.returncode == 0 and "Warning" not in same.stderr  # written for nsml, run by nsml


# -- main.py: which platform it binds ------------------------------------------------------------

def fake_platform(name):
    module = types.ModuleType(name)
    module.bind = module.paused = module.save = module.report = lambda *a, **k: None
    return module


def test_main_binds_nova_first_or_the_one_kit_platform_names(monkeypatch):
    fakes = {name: fake_platform(name) for name in ("nova", "nsml")}
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "main", raising=False)
    monkeypatch.delenv("KIT_PLATFORM", raising=False)
    import main

    assert (main.PLATFORM_NAME, main.nsml) == ("nova", fakes["nova"])
    monkeypatch.setenv("KIT_PLATFORM", "nsml")
    assert main.import_platform() == ("nsml", fakes["nsml"])
    monkeypatch.setenv("KIT_PLATFORM", "NOVA")
    assert main.import_platform() == ("nova", fakes["nova"])
    monkeypatch.setenv("KIT_PLATFORM", "sagemaker")
    with pytest.raises(SystemExit, match="KIT_PLATFORM='sagemaker': expected one of nova, nsml"):
        main.import_platform()
    # A `nova` that is not the platform (OpenStack's package has that name too) is passed over.
    monkeypatch.delenv("KIT_PLATFORM")
    monkeypatch.setitem(sys.modules, "nova", types.ModuleType("nova"))
    assert main.import_platform() == ("nsml", fakes["nsml"])


# -- the 2023 data -------------------------------------------------------------------------------

def test_an_idx_file_with_a_wav_header_and_a_raw_one_load_the_same(tmp_path):
    from modules.audio import load_audio, usable_duration, usable_durations
    samples = (np.sin(np.arange(8000) / 7.0) * 12000).astype("<i2")
    kit.write_wav(str(tmp_path / "idx_000000"), samples)
    kit.write_pcm(str(tmp_path / "idx_000001"), samples)
    wav, raw = load_audio(str(tmp_path / "idx_000000")), load_audio(str(tmp_path / "idx_000001"))
    assert len(wav) == len(raw) == 8000
    np.testing.assert_array_equal(wav, raw)  # the 44 header bytes are not read as samples
    for name in ("idx_000000", "idx_000001"):
        assert usable_duration(str(tmp_path / name)) == (0.5, None)
    durations, reasons = usable_durations([str(tmp_path / "idx_000000"), str(tmp_path / "idx_000001")])
    assert list(durations) == [0.5, 0.5] and reasons == {}


def test_sample_dataset_2023_mixes_wav_and_raw_files_and_reads_by_content():
    from modules.audio import load_audio
    from modules.transcribe.corpus import read_training_set
    utterances = read_training_set(SAMPLE_2023)
    assert len(utterances) == 22
    headers = [open(u.path, "rb").read(4) == b"RIFF" for u in utterances]
    assert 0 < sum(headers) < len(headers)  # both kinds, no extensions
    assert all("." not in os.path.basename(u.path) for u in utterances)
    for u in utterances[:4]:
        assert u.duration == pytest.approx(len(load_audio(u.path)) / 16000)


# -- the kit itself through `nova run` -----------------------------------------------------------

def test_kit_main_trains_and_submits_through_nova_run(tmp_path):
    home = tmp_path / "home"
    run = nova(home, "run", "-d", SAMPLE_2023, "-a", "--epochs 1 --rnn_hidden 32 --rnn_layers 1",
               cwd=REPO, timeout=900)
    assert run.returncode == 0, run
    session = run.stdout.splitlines()[0].split()[1]
    assert session == "local/sample_dataset_2023/1"
    assert "setup.py's first line names the image for NSML" in run.stderr  # the kit's is `#nsml:`
    listing = nova(home, "model", "ls", session).stdout
    assert {"1", "best"} <= {line.split()[0] for line in listing.splitlines()[1:]}
    small = nova(home, "submit", "-t", session, "best", cwd=REPO, timeout=600)
    assert small.returncode == 0, small
    assert small.last_stdout_line.startswith("CER: ")


def test_torchaudio_standin_frames_like_kaldi_and_puts_a_tone_in_its_mel_band(tmp_path):
    """tools/torchaudio_standin lets the official baselines run without torchaudio (docs/platforms.md)."""
    done = subprocess.run([sys.executable, "-c", (
        "import math, librosa, torch, torchaudio\n"
        "assert 'torchaudio_standin' in torchaudio.__file__\n"
        "tone = torch.sin(2 * math.pi * 1000 * torch.arange(16000) / 16000)[None]\n"
        "feats = torchaudio.compliance.kaldi.fbank(tone, num_mel_bins=80, frame_length=20, frame_shift=10,"
        " window_type='hamming')\n"
        "centres = librosa.mel_frequencies(82, fmin=20, fmax=8000, htk=True)[1:-1]\n"
        "print(tuple(feats.shape), round(float(centres[int(feats.mean(0).argmax())])))\n")],
        env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "tools", "torchaudio_standin")),
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shape, centre = done.stdout.split(")")
    assert shape + ")" == "(99, 80)"  # Kaldi's snip_edges: 1 + (16000 - 320) // 160 frames
    assert abs(int(centre) - 1000) < 40
