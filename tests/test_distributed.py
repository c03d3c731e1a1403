"""DDP: two CPU processes on gloo train like one process with the same global batch,
and only rank 0 reports and saves.

Runs main.py itself (single process, then `torchrun --nproc_per_node 2`) on a tiny
dataset, with a recording `nsml` module in front of the real one.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCES = ["가나 다라", "마바 사아", "자차 카타", "파하 가나", "다라 마바", "사아 자차"]

RECORDING_NSML = '''
import json, os
DATASET_PATH = os.environ["TEST_DATASET"]; DATASET_NAME = "t"; HAS_DATASET = True; IS_ON_NSML = False
GPU_NUM = 0; SESSION_NAME = "t/t/1"
_bound = {}
def _log(**record):
    with open(os.path.join(os.environ["TEST_LOG_DIR"], "calls-rank%s.jsonl" % os.environ.get("RANK", "single")), "a") as f:
        f.write(json.dumps(record) + "\\n")
def bind(save=None, load=None, infer=None, **kwargs): _bound.update(save=save, load=load, infer=infer)
def save(checkpoint=None, save_fn=None):
    _log(call="save", checkpoint=str(checkpoint))
    folder = os.path.join(os.environ["TEST_LOG_DIR"], "ckpt-%s" % os.environ.get("RANK", "single"), str(checkpoint))
    os.makedirs(folder, exist_ok=True)
    (save_fn or _bound["save"])(folder)
def report(summary=False, scope=None, step=None, **kwargs): _log(call="report", step=step, **kwargs)
def paused(scope=None): raise SystemExit("not used in this test")
'''


def make_dataset(root):
    data = os.path.join(root, "train", "train_data")
    os.makedirs(data)
    rng = np.random.default_rng(0)
    rows = ["filename,text"]
    for i in range(16):  # all exactly 1 s, so batches are the same however the sampler groups them
        name = f"utt{i:03d}"
        t = np.arange(16000) / 16000
        tone = np.sin(2 * np.pi * (200 + 40 * (i % 6)) * t) + 0.1 * rng.standard_normal(16000)
        (tone * 3000).astype("<i2").tofile(os.path.join(data, name))
        rows.append(f"{name},{SENTENCES[i % 6]}")
    with open(os.path.join(root, "train", "train_label"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env):
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def reports(log_dir, rank):
    path = os.path.join(log_dir, f"calls-rank{rank}.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_two_gloo_processes_match_one_process_and_only_rank0_saves(tmp_path):
    make_dataset(str(tmp_path / "ds"))
    (tmp_path / "stub" / "nsml").mkdir(parents=True)
    (tmp_path / "stub" / "nsml" / "__init__.py").write_text(RECORDING_NSML)
    options = ["--model", "deepspeech2", "--rnn_hidden", "16", "--rnn_layers", "1", "--epochs", "3",
               "--no_specaugment", "--decoder", "greedy", "--valid_fraction", "0.3", "--lr", "3e-3"]
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "stub"), TEST_DATASET=str(tmp_path / "ds"),
               OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")

    single_dir = tmp_path / "single"
    single_dir.mkdir()
    run([sys.executable, "main.py", *options, "--batch_seconds", "4"], dict(env, TEST_LOG_DIR=str(single_dir)))
    ddp_dir = tmp_path / "ddp"
    ddp_dir.mkdir()
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         "main.py", *options, "--batch_seconds", "2"], dict(env, TEST_LOG_DIR=str(ddp_dir)))

    single = [r for r in reports(single_dir, "single") if r["call"] == "report"]
    rank0 = reports(ddp_dir, 0)
    assert reports(ddp_dir, 1) == [], "rank 1 must neither report nor save"
    assert [r["checkpoint"] for r in rank0 if r["call"] == "save"][:2] == ["1", "best"]
    ddp = [r for r in rank0 if r["call"] == "report"]
    assert len(single) == len(ddp) == 3
    # Same global batches and weights; only BatchNorm statistics (2 vs 4 files) differ.
    for a, b in zip(single, ddp):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.01)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=0.01)
    assert single[-1]["train_loss"] < single[0]["train_loss"]  # it does train


SKIP_SCRIPT = '''
import datetime, json, os, sys
import torch, torch.distributed as dist
from modules.training import LoopConfig, Trainer

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=30))
rank = dist.get_rank()


class Loader(list):
    class batch_sampler:
        @staticmethod
        def set_epoch(epoch):
            pass


class LinearTrainer(Trainer):
    def loss(self, batch):
        x, y = batch["x"], batch["y"]
        return ((self.net(x).squeeze(-1) - y) ** 2).mean(), len(y)


torch.manual_seed(0)
batches = Loader({"indices": [0, 1], "x": torch.randn(2, 3), "y": torch.randn(2)} for _ in range(4))
if rank == 1:
    batches[1] = None  # every item of this rank's second batch failed to load
trainer = LinearTrainer(torch.nn.Linear(3, 1), LoopConfig(epochs=1, heap_limit_mib=0), torch.device("cpu"), batches)
trainer.train_epoch()
weights = [p.detach().flatten().tolist() for p in trainer.model.parameters()]
with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as f:
    json.dump({"steps": trainer.step, "weights": weights}, f)
dist.barrier()
dist.destroy_process_group()
'''


def test_ranks_skip_a_batch_together_when_one_rank_fails_to_load_it(tmp_path):
    script = tmp_path / "skip.py"
    script.write_text(SKIP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         str(script), str(tmp_path)], env)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["steps"] == ranks[1]["steps"] == 3, "both ranks skip the failed batch, and only it"
    assert ranks[0]["weights"] == ranks[1]["weights"]
