"""Does a `kill -9` during a save ever lose a checkpoint? A bounded loop of SIGKILLs at random times.

    python bench/kill_during_save.py                    # 12 kills, at most 120 s, 30 MB checkpoints
    python bench/kill_during_save.py --kills 50 --max-seconds 300
    python bench/kill_during_save.py --smoke --out /tmp/k   # CI (tests/test_bench_smoke.py): 3 kills, < 30 s

A child process saves checkpoints the way a training run does: through nsml_local's
`checkpoints.save` (a fresh store folder, then an atomic symlink swap) with the kit's
`write_checkpoint` (blobs, model.pt, manifest.json) as the save function, alternating epoch
checkpoints '1', '2', ... with 'best', each holding the step it was saved at and a >1 MB byte
blob (hard-linked between saves, as the LM is). After each save returns, the child appends the
name and step to a journal (fsynced): what the run was told is saved. The parent kills the
child with SIGKILL after a random delay, then checks the session, and starts the next child
on the same session (so later saves replace 'best' over a killed one's leftovers).

Reports (printed, and OUT/kill_during_save.json): kills, saves reported by the journal,
checkpoints listed, loadable (read_checkpoint verifies every file's sha256), lost (reported
saved but missing, unloadable, or older than reported), and store folders left behind.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "nsml_local")]

import torch  # noqa: E402

from modules.checkpoint import read_checkpoint, write_checkpoint  # noqa: E402
from nsml import checkpoints  # noqa: E402  (nsml_local's)

JOURNAL = "journal.txt"


def child(session_dir: str, state_mb: float, max_seconds: float) -> None:
    """Save checkpoints until killed (or `max_seconds`, so an orphan never runs on)."""
    weights = torch.randn(max(1, int(state_mb * (1 << 20) / 4)))
    lm = os.urandom((1 << 20) + 17)  # over BLOB_MIN_BYTES: a blob file, hard-linked after its first save
    # steps go on from the killed run's, so a newer save always holds a higher step
    step = max(read_journal(session_dir).values(), default=0)
    journal = open(os.path.join(session_dir, JOURNAL), "a")
    print("ready", flush=True)  # the kill's delay counts from here, not from the imports
    start = time.time()
    while time.time() - start < max_seconds:
        step += 1
        for name in (str(step), "best"):
            weights[0] = step  # each save's content differs
            state = {"weights": weights, "lm": lm, "step": step}
            checkpoints.save(session_dir, name, lambda d: write_checkpoint(d, "transcribe", state), {})
            journal.write(f"{name} {step}\n")
            journal.flush()
            os.fsync(journal.fileno())


def read_journal(session_dir: str) -> dict:
    """name -> the step of its last save reported done."""
    reported = {}
    path = os.path.join(session_dir, JOURNAL)
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and line.endswith("\n"):  # a line cut by the kill is not a report
                    reported[parts[0]] = max(reported.get(parts[0], 0), int(parts[1]))
    return reported


def check(session_dir: str) -> dict:
    """Checkpoints listed, loadable and lost against what the journal says was saved."""
    reported = read_journal(session_dir)
    listed = checkpoints.names(session_dir)
    loadable, errors = {}, []
    for name in listed:
        try:
            _, state = read_checkpoint(checkpoints.locate(session_dir, "bench", name))
            loadable[name] = int(state["step"])
        except Exception as e:  # what a submit of this checkpoint would meet
            errors.append(f"{name}: {type(e).__name__}: {e}")
    lost = sorted(n for n, step in reported.items() if loadable.get(n, -1) < step)
    store = os.path.join(session_dir, "checkpoints", ".store")
    used = {os.path.realpath(os.path.join(session_dir, "checkpoints", n)) for n in listed}
    leftovers = [e for e in os.listdir(store) if os.path.realpath(os.path.join(store, e)) not in used] \
        if os.path.isdir(store) else []
    return {"reported": len(reported), "listed": len(listed), "loadable": len(loadable), "lost": lost,
            "errors": errors, "leftover_stores": len(leftovers)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=12)
    p.add_argument("--max-seconds", type=float, default=120.0, help="stop starting kills after this long")
    p.add_argument("--state-mb", type=float, default=30.0, help="size of each checkpoint's weights")
    p.add_argument("--max-delay", type=float, default=2.0, help="a kill comes 0.05 s to this after the start")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="3 kills, 2 MB checkpoints, at most 30 s")
    p.add_argument("--out", default=None, help="folder for kill_during_save.json")
    p.add_argument("--keep", action="store_true", help="keep the session folder (removed by default: "
                                                       "a default run leaves ~0.4 GB of checkpoints)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.state_mb, args.max_seconds)
        return {}
    if args.smoke:
        args.kills, args.max_seconds, args.state_mb, args.max_delay = 3, 30.0, 2.0, 1.0
    rng = random.Random(args.seed)
    session_dir = tempfile.mkdtemp(prefix="kill_during_save-")
    rounds, start = [], time.time()
    while len(rounds) < args.kills and time.time() - start < args.max_seconds:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", session_dir,
                                 "--state-mb", str(args.state_mb), "--max-seconds", str(args.max_seconds)],
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # "ready" (or '' if it died)
        delay = rng.uniform(0.05, args.max_delay)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        result = check(session_dir)
        rounds.append(dict(result, delay_s=round(delay, 3)))
        print(f"kill {len(rounds):2d} after {delay:.2f} s: {result['reported']} names reported saved, "
              f"{result['listed']} listed, {result['loadable']} loadable, lost {result['lost'] or 'none'}, "
              f"{result['leftover_stores']} leftover store folders", flush=True)
    last = rounds[-1] if rounds else {}
    summary = {"kills": len(rounds), "seconds": round(time.time() - start, 1), "state_mb": args.state_mb,
               "listed": last.get("listed", 0), "loadable": last.get("loadable", 0),
               "lost": sorted({n for r in rounds for n in r["lost"]}),
               "unloadable": sorted({e for r in rounds for e in r["errors"]}),
               "max_leftover_stores": max((r["leftover_stores"] for r in rounds), default=0),
               "session_dir": session_dir if args.keep else None, "rounds": rounds}
    print(f"{summary['kills']} kills in {summary['seconds']} s: {summary['listed']} checkpoints listed, "
          f"{summary['loadable']} loadable, {len(summary['lost'])} lost, {len(summary['unloadable'])} unloadable")
    if not args.keep:
        shutil.rmtree(session_dir, ignore_errors=True)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "kill_during_save.json"), "w") as f:
            json.dump(summary, f, indent=1)
    return summary


if __name__ == "__main__":
    main()
