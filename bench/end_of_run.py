"""How long the end of a training run takes: LM fusion tuning and the final beam + LM decode of validation.

    python bench/end_of_run.py                       # bench/results/end_of_run.json
    python bench/end_of_run.py --sample 200 -- --model conformer --size medium --device cuda
    python bench/end_of_run.py --smoke --out F.json  # CI (tests/test_bench_smoke.py): tiny model and data

After `trainer.fit`, rank 0 tunes the LM fusion weights (fusion.py: one acoustic pass over at
most FusionGrid.max_utterances validation utterances, then a beam search per grid point) and
beam-decodes the validation split once more with the chosen weights (recipe.py), while under
torchrun the other ranks wait. Both scale with the number of validation utterances, so each is
timed on a sample of generated utterances (lengths 1.5-12 s, mean about 6.75 s: 1000 h with a 20%
split is about 120k utterances of 6 s) and projected to 1k / 10k / 100k utterances:

    tuning(N) = tuning seconds per sampled utterance x min(N, FusionGrid.max_utterances)
    decode(N) = decode seconds per sampled utterance x N

Any option of this version that caps the validation utterances (a name with "valid" and "max"
or "cap") is listed with its default, and the projection at the cap is given beside the
uncapped one. The weights are untrained: a beam search over near-uniform outputs prunes least,
so the projection errs slow. Figures measured on a shared machine are labelled with its load.
"""
import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from measure import build_trainer, machine, synchronize, synthetic_corpus  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
SMOKE_MODEL = ["--model", "deepspeech2", "--rnn_hidden", "32", "--rnn_layers", "1", "--batch_seconds", "4"]


def cap_options(options) -> dict:
    """This version's options that cap validation utterances, with their values."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if "valid" in f.name and ("max" in f.name or "cap" in f.name)
            and isinstance(getattr(options, f.name), int) and not isinstance(getattr(options, f.name), bool)}


def end_of_run(main_argv: list, sample: int, sizes=SIZES) -> dict:
    from modules.transcribe.fusion import FusionGrid, tune_lm_fusion
    trainer, options = build_trainer(main_argv + ["--decoder", "beam"])
    rec = trainer.recognizer
    if rec.lm is None:
        raise SystemExit("no LM was built (this configuration does not decode with beam + LM)")
    utts = trainer.valid_utts[:sample]
    start = time.perf_counter()
    grid = tune_lm_fusion(rec, utts)
    synchronize(trainer.device)
    tuning = time.perf_counter() - start
    start = time.perf_counter()
    trainer.evaluate(decoder=rec.decoder_config, utts=utts)
    synchronize(trainer.device)
    decode = time.perf_counter() - start
    tuning_per, decode_per = tuning / len(utts), decode / len(utts)
    cap = FusionGrid.max_utterances

    def projected(n):
        return {"tuning_seconds": tuning_per * min(n, cap), "decode_seconds": decode_per * n,
                "total_seconds": tuning_per * min(n, cap) + decode_per * n}

    caps = cap_options(options)
    return {"sample_utterances": len(utts), "sample_audio_seconds": sum(u.duration for u in utts),
            "tuning_seconds": tuning, "grid_points": len(grid), "tuning_max_utterances": cap,
            "decode_seconds": decode, "decode_seconds_per_utterance": decode_per,
            "projected": {str(n): projected(n) for n in sizes},
            "cap_options": caps,
            "projected_at_cap": {name: projected(value) for name, value in caps.items() if value > 0},
            "device": str(trainer.device), "model": rec.model_name,
            "beam_width": rec.decoder_config.beam_width}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)  # main.py options follow `--`
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny model and sample (CI)")
    p.add_argument("--sample", type=int, default=None, help="validation utterances timed (100; smoke 4)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "end_of_run.json"))
    a, main_args = p.parse_args(argv[:split]), argv[split + 1:]
    sample = a.sample or (4 if a.smoke else 100)
    with tempfile.TemporaryDirectory(prefix="end_of_run_") as work:
        # the recipe validates on 20%: a corpus whose validation split holds the sample
        lengths = (1, 3) if a.smoke else (1.5, 12.0)
        corpus = synthetic_corpus(work, sample * sum(lengths) / 2 / 0.2 * 1.3, test_utterances=2,
                                  min_seconds=lengths[0], max_seconds=lengths[1], unique_waves=8 if a.smoke else 128)
        if a.smoke:
            main_args = SMOKE_MODEL + ["--device", "cpu"] + main_args
        main_args = ["--dataset_path", work] + main_args
        result = end_of_run(main_args, sample)
    result.update(main_args=main_args[2:], corpus={k: corpus[k] for k in ("train", "min_seconds", "max_seconds")},
                  machine=machine(), smoke=a.smoke)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print("| validation utterances | LM tuning | final decode | end of run |\n|---|---|---|---|")
    for n, t in result["projected"].items():
        print(f"| {int(n):,} | {t['tuning_seconds']:.0f} s | {t['decode_seconds']:.0f} s | "
              f"{t['total_seconds'] / 60:.1f} min |")
    print(f"from {result['sample_utterances']} utterances ({result['sample_audio_seconds']:.0f} s of audio) on "
          f"{result['device']}: tuning {result['tuning_seconds']:.1f} s over {result['grid_points']} grid points, "
          f"decode {result['decode_seconds']:.1f} s; caps in this version: {result['cap_options'] or 'none'}; "
          f"written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
