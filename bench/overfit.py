"""Can each model learn? Every model in MODELS memorises the same 64 utterances, or it has a bug.

    python bench/overfit.py                          # every model, 15 min each, bench/results/overfit.json
    python bench/overfit.py --models conformer --budget-minutes 5 --extra "--lr 1e-3"
    python bench/overfit.py --smoke --out /tmp/o     # CI (tests/test_bench_smoke.py): tiny models, < 60 s

A model that cannot memorise 64 utterances has a bug (front end, masks, initialisation,
learning rate, the decoder's end of sentence...), whatever its CER on held-out data says.

Each model trains on ALL the utterances of a small generated corpus (tools/make_corpus.py
--train-utts 64, cached under bench/cache/) with the kit's own building blocks: main.py's
options and the transcription recipe's `build` (so the model's recipe: its learning rate, warmup, batches,
dropout), the Trainer, the recognizer's decoders. No validation split: after every epoch the
training utterances themselves are decoded (greedy CTC; for the attention model also its own
beam search and joint CTC/attention decoding) and training stops once every decoder's CER is
below --target (0.05) or at the budget. SpecAugment and speed perturbation are off (they make
memorising slower and are beside the point); dropout stays as the model's recipe has it.

Prints per model the optimizer updates, epochs and minutes to reach the target (or the CER at
the budget) and writes OUT/overfit.json with the machine (CPU model, AVX-512, load).
Minutes count training only (evaluation excluded). The learning-rate schedule is main.py's
default, over --epochs (100) by updates; the budget only stops training, so on a shared,
loaded machine the updates to the target stay the same and only the minutes grow.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from modules.transcribe.decoding import SEQUENCE_DECODERS, DecoderConfig  # noqa: E402
from modules.transcribe.models import MODELS  # noqa: E402

# The recipe minus augmentation, no language model (decoding is scored without one), no held-out split.
RECIPE = ["--specaugment", "off", "--speed_perturb", "off", "--decoder", "greedy", "--lm_order", "0",
          "--valid_fraction", "0", "--no_tune_lm"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=str, default=",".join(MODELS), help="comma-separated, from: " + ", ".join(MODELS))
    common.add_run_arguments(p, budget_minutes=15.0, budget_help="training minutes per model", work=None)
    p.add_argument("--target", type=float, default=0.05, help="training-set CER to reach")
    p.add_argument("--utterances", type=int, default=64, help="the corpus generated: this many training utterances")
    p.add_argument("--epochs", type=int, default=100, help="the learning-rate schedule's length (main.py's default)")
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    p.add_argument("--smoke", action="store_true", help="CI: 6 utterances, tiny models, a few epochs")
    a = p.parse_args(argv)
    if a.smoke:
        a.utterances, a.budget_minutes, a.epochs = min(a.utterances, 6), min(a.budget_minutes, 0.15), 3
    return common.finish_run_arguments(a)


log = common.logger("overfit")


def make_corpus(a) -> str:
    """`--corpus`, or a generated corpus of `--utterances` training utterances (the test split is unused)."""
    if a.corpus:
        return os.path.abspath(a.corpus)
    return common.generated_corpus(a.cache, f"overfit{a.utterances}_seed{a.seed}",
                                   ["--train-utts", str(a.utterances), "--test-utts", "1"], a.seed, log, quiet=True)


def machine() -> dict:
    model, flags = platform.processor(), ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "Flags":
                flags = value
    except OSError:
        pass
    return {"cpu": model, "avx512": "avx512f" in flags.split(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}


def decoders_for(recognizer) -> dict:
    """name -> DecoderConfig scored on the training set: greedy CTC, and the model's own searches."""
    out = {"greedy": DecoderConfig(decoder="greedy")}
    if recognizer.model.has_decoder:
        for name in SEQUENCE_DECODERS:
            out[name] = DecoderConfig(decoder=name, beam_width=4)
    return out


def memorise(name: str, corpus: str, a) -> dict:
    """Train model `name` on every utterance of `corpus` until each decoder's training CER < target."""
    from modules.transcribe import parse_options, recipe  # what `python main.py <argv>` builds
    argv = ["--model", name, *RECIPE, "--epochs", str(a.epochs), *(common.SMOKE_MODELS[name] if a.smoke else []),
            *a.extra.split()]
    trainer = recipe.build(parse_options(argv), corpus, torch.device("cpu"))
    utts = trainer.train_utts
    decoders = decoders_for(trainer.recognizer)
    reached = {d: None for d in decoders}  # decoder -> {"updates", "epochs", "minutes"} when CER < target
    curve, eval_seconds = [], 0.0
    load_before = os.getloadavg()

    def on_epoch_end(m):
        nonlocal eval_seconds
        start = time.time()
        train_minutes = m["minutes"] - eval_seconds / 60  # the Trainer's clock includes our evaluations
        point = {"epoch": m["epoch"], "updates": trainer.step, "train_minutes": round(train_minutes, 3),
                 "train_loss": round(m["train_loss"], 4), "lr": m["lr"]}
        greedy = trainer.evaluate(decoders["greedy"], utts=utts)["val_cer"]
        point["greedy"] = round(greedy, 4)
        # The sequence searches are slow while the decoder cannot stop yet: score them once CTC is close.
        close = greedy < 4 * a.target or a.smoke or m["epoch"] % 10 == 0
        for d in decoders:
            if d != "greedy" and close:
                point[d] = round(trainer.evaluate(decoders[d], utts=utts)["val_cer"], 4)
        for d in decoders:
            if reached[d] is None and point.get(d, 1.0) < a.target:
                reached[d] = {"updates": trainer.step, "epochs": m["epoch"], "minutes": round(train_minutes, 2)}
        curve.append(point)
        eval_seconds += time.time() - start
        log(f"{name}: " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in point.items()))
        return all(r is not None for r in reached.values()) or train_minutes >= a.budget_minutes

    trainer.fit(on_epoch_end)
    last = curve[-1] if curve else {}
    final = {d: last.get(d) for d in decoders}
    for d in decoders:  # the searches may not have been scored at the last epoch
        if final[d] is None:
            final[d] = round(trainer.evaluate(decoders[d], utts=utts)["val_cer"], 4)
    return {"reached": reached, "final_cer": final, "epochs": trainer.epoch, "updates": trainer.step,
            "train_minutes": last.get("train_minutes"), "eval_minutes": round(eval_seconds / 60, 2),
            "batches_per_epoch": len(trainer.train_sampler), "utterances": len(utts),
            "parameters": sum(p.numel() for p in trainer.recognizer.model.parameters()),
            "lr": trainer.config.lr, "warmup_fraction": trainer.config.warmup_fraction,
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "argv": ["--dataset_path", corpus, *argv], "curve": curve}


def table(results: dict, target: float) -> str:
    lines = [f"| model | decoder | updates | epochs | minutes to CER < {target:g} | CER at the end |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        for d, hit in r["reached"].items():
            when = (f"{hit['updates']} | {hit['epochs']} | {hit['minutes']:.1f}" if hit else
                    f"not in {r['updates']} | not in {r['epochs']} | not in {r['train_minutes']:.1f}")
            lines.append(f"| {name} | {d} | {when} | {r['final_cer'][d]:.3f} |")
    return "\n".join(lines)


def main_cli(argv=None):
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    names = [n.strip() for n in a.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f"unknown models {unknown}; choose from: {', '.join(MODELS)}")
    os.makedirs(a.out, exist_ok=True)
    home = os.path.join(a.out, "overfit_nsml_home")  # main.py's local nsml writes nothing here, but keep it out of ~
    os.environ.setdefault("NSML_LOCAL_HOME", home)
    corpus = make_corpus(a)
    results = {}
    for name in names:
        log(f"{name}: memorising {corpus} for at most {a.budget_minutes:g} min")
        results[name] = memorise(name, corpus, a)
    report = {"settings": {"budget_minutes": a.budget_minutes, "target_cer": a.target, "utterances": a.utterances,
                           "epochs": a.epochs, "extra": a.extra, "smoke": a.smoke, "corpus": corpus,
                           "augmentation": "SpecAugment off, speed perturbation off, dropout as the model's default"},
              "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "models": results}
    path = os.path.join(a.out, "overfit.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    print(table(results, a.target), flush=True)
    log(f"wrote {path}")
    return report


if __name__ == "__main__":
    main_cli()
