"""The n-gram LM at competition scale: counting cost, test CER against transcripts counted, decode speed.

    python bench/lm_scale.py count [--sizes 20000,100000,600000]          # (a) time, peak RSS, size
    python bench/lm_scale.py cer CHECKPOINT --dataset D [--sizes 20000,100000,0]  # (b) CER curve
    python bench/lm_scale.py speed CHECKPOINT --dataset D [--old_rev 31f9668]     # decode: old vs new
    python bench/lm_scale.py count --smoke --results /tmp/l.json           # CI: 300 transcripts, new LM only

Texts come from tools/korean_text.py's grammar (about 57,900 distinct sentences of ~12 syllables):
  grammar  one sentence per transcript: large N repeats sentences (600k draws: ~46k distinct);
  long     one sentence, or two joined (2 in 3): ~20 syllables a transcript, 73% distinct;
  words    the grammar's words at their frequency in random order, ~20 syllables: all distinct and
           far more distinct n-grams than real speech has, the worst case for memory and pruning.
Each count runs in a child process, so its peak RSS is its own (Python, torch and the texts
included). `cer` decodes the corpus's test set with LMs counted from the first N of a pool of
training-side sentences (never a test sentence: korean_text.is_test_sentence; validation sentences
taken out too), fusion weights tuned on the validation split for each LM (a grid one step wider
than modules/transcribe/fusion.py's) and at the fixed defaults 0.8 / 2.0. `speed` decodes
the same acoustic outputs with the decoder and LM of `--old_rev` (20,000 transcripts, its default)
and with today's (all transcripts; and the pruned worst case of `count`, whose text is off-domain). Everything lands in bench/results/lm_scale.json.
"""
import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))
RESULTS = os.path.join(ROOT, "bench", "results", "lm_scale.json")
SCRATCH = os.environ.get("LM_SCALE_SCRATCH", "/tmp/lm_scale")
TEST_SHARE = 0.2  # tools/make_corpus.py's --test-sentence-share default


def draw_texts(kind: str, n: int, seed: int = 0, test_side: bool = False) -> list:
    """The first n of a seeded stream of label texts from the grammar, drawn on the training side
    (cached under SCRATCH: the 20k and 100k sets are the start of the 600k one, drawn first)."""
    path = os.path.join(SCRATCH, f"texts_{kind}_{seed}.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            texts = f.read().split("\n")
        if len(texts) >= n:
            return texts[:n]
    if kind == "words":  # words of grammar sentences, at their frequency, in random order
        rng = np.random.default_rng(seed)
        words = " ".join(draw_texts("grammar", 600000, seed)).split(" ")
        picks = iter(rng.integers(0, len(words), 20 * n).tolist())
        texts = []
        for _ in range(n):
            text = []
            while sum(len(w) for w in text) < 20:
                text.append(words[next(picks)])
            texts.append(" ".join(text))
        return save_texts(path, texts)[:n]
    from korean_text import SentenceGenerator
    gen, rng = SentenceGenerator(), np.random.default_rng(seed)
    texts = []
    for _ in range(n):  # the same seed gives the same first texts whatever n
        text = gen.draw_split(rng, test=test_side, test_share=TEST_SHARE).label
        if kind == "long" and rng.random() < 2 / 3:
            text += " " + gen.draw_split(rng, test=test_side, test_share=TEST_SHARE).label
        texts.append(text)
    return save_texts(path, texts)[:n]


def save_texts(path: str, texts: list) -> list:
    os.makedirs(SCRATCH, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(texts))
    os.replace(path + ".tmp", path)
    return texts


def update_results(section: str, value) -> None:
    """Replace one section of the results file (RESULTS, or --results)."""
    results = json.load(open(RESULTS)) if os.path.exists(RESULTS) else {}
    results[section] = value
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS + ".tmp", "w") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    os.replace(RESULTS + ".tmp", RESULTS)


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    return {"cpu": model, "cores": os.cpu_count(), "load_average": os.getloadavg()}


# ---------------------------------------------------------------------------- (a) counting
def count_child(kind: str, n: int, order: int, unit: str, impl: str, old_rev: str) -> dict:
    """In a fresh process: split into units as main.py does, count, save; time and peak RSS."""
    import torch

    from modules.transcribe.tokenizers import TOKENIZERS
    texts = draw_texts(kind, n)
    split = TOKENIZERS[unit].split
    start = time.perf_counter()
    lm_texts = ["".join(split(t)) for t in texts]
    split_s = time.perf_counter() - start
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    LM = old_lm_module(old_rev).CharNgramLM if impl == "old" else __import__("modules.transcribe.lm", fromlist=["x"]).CharNgramLM
    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731 (user + system seconds)
    start, cpu_start = time.perf_counter(), cpu()
    lm = LM.train(lm_texts, order=order, **({"max_texts": len(lm_texts) + 1} if impl == "old" else {}))
    train_s, train_cpu_s = time.perf_counter() - start, cpu() - cpu_start
    buffer = io.BytesIO()
    start = time.perf_counter()
    torch.save(lm.state_dict(), buffer)
    save_s = time.perf_counter() - start
    buffer.seek(0)
    start = time.perf_counter()
    LM.from_state_dict(torch.load(buffer, weights_only=True))
    load_s = time.perf_counter() - start
    n_ngrams = lm.num_ngrams() if hasattr(lm, "num_ngrams") else sum(
        len(nxt) for table in lm.counts for nxt in table.values())
    return {"texts": kind, "n": n, "distinct": len(set(texts)), "units": unit, "order": order, "impl": impl,
            "mean_units": float(np.mean([len(t) for t in lm_texts])), "split_s": round(split_s, 2),
            "train_s": round(train_s, 2), "train_cpu_s": round(train_cpu_s, 2), "save_s": round(save_s, 2),
            "load_s": round(load_s, 2),
            "saved_mb": round(buffer.getbuffer().nbytes / 2 ** 20, 1), "ngrams": n_ngrams,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_before_train_mib": round(rss_before)}


def old_lm_module(rev: str):
    """modules/lm.py and modules/decoding.py as of git revision `rev`, imported as package `old_kit`."""
    folder = os.path.join(SCRATCH, f"old_{rev}")
    package = os.path.join(folder, "old_kit")
    if not os.path.exists(os.path.join(package, "decoding.py")):
        os.makedirs(package, exist_ok=True)
        for name in ("lm.py", "decoding.py"):
            source = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:modules/{name}"], check=True,
                                    capture_output=True, text=True).stdout
            with open(os.path.join(package, name), "w") as f:
                f.write(source)
        open(os.path.join(package, "__init__.py"), "w").close()
    sys.path.insert(0, folder)
    import old_kit.decoding  # noqa: F401
    import old_kit.lm
    return old_kit.lm


def run_count(args):
    rows = []
    for kind in args.kinds.split(","):
        for n in map(int, args.sizes.split(",")):
            for impl in (["new", "old"] if n <= args.old_up_to else ["new"]):
                command = [sys.executable, os.path.abspath(__file__), "_count_child", kind, str(n), str(args.order),
                           args.unit, impl, args.old_rev]
                out = subprocess.run(command, capture_output=True, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "2"})
                if out.returncode:
                    sys.exit(out.stderr)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                rows[-1]["load_average"] = os.getloadavg()[0]
                print(json.dumps(rows[-1]), flush=True)
    key = lambda row: (row["texts"], row["n"], row["units"], row["order"], row["impl"])  # noqa: E731
    previous = json.load(open(RESULTS)).get("count", {}).get("rows", []) if os.path.exists(RESULTS) else []
    fresh = {key(row) for row in rows}
    update_results("count", {"machine": machine(), "rows": [r for r in previous if key(r) not in fresh] + rows})


# ---------------------------------------------------------------------------- acoustic outputs
def acoustic_outputs(checkpoint: str, dataset: str):
    """The recognizer, and (log-probs, lengths, references) batches for the validation split
    (as main.py split it) and the test set, the acoustic model run once."""
    import torch

    from modules.checkpoint import read_checkpoint
    from modules.samplers import DurationBatchSampler
    from modules.text import read_label_records
    from modules.transcribe.normalize import TextConfig, normalize_text
    from modules.transcribe.corpus import Utterance, read_training_set
    from modules.transcribe.dataset import SpeechDataset, collate
    from modules.transcribe.recognizer import SpeechRecognizer
    from modules.transcribe.split import split_by_sentence
    torch.set_num_threads(1)
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    state = read_checkpoint(folder)[1]["recognizer"]
    rec = SpeechRecognizer.from_state_dict(state, torch.device("cpu"))
    text_config = TextConfig(**state["text_config"])
    _, valid = split_by_sentence(read_training_set(dataset, text_config), 0.2, 0)
    test_dir = os.path.join(dataset, "test")
    test = [Utterance(os.path.join(test_dir, "test_data", name), normalize_text(text, text_config),
                      os.path.getsize(os.path.join(test_dir, "test_data", name)) / 32000)
            for name, text in sorted((r["filename"], r["text"])
                                     for r in read_label_records(os.path.join(test_dir, "test_label")))]
    out = {}
    for split, utts in (("valid", valid), ("test", test)):
        loader = torch.utils.data.DataLoader(SpeechDataset(utts, rec.tokenizer), collate_fn=collate,
                                             batch_sampler=DurationBatchSampler([u.duration for u in utts], 200.0,
                                                                                shuffle=False))
        batches = []
        with torch.no_grad():
            for batch in loader:
                log_probs, lengths = rec.forward(batch["waves"], batch["wave_lengths"])
                batches.append((log_probs, lengths, [utts[i].text for i in batch["indices"]]))
        out[split] = batches
    return rec, out, valid


def decode_cer(rec, batches, config, lm=None):
    from modules.metrics import cer
    rec.lm = lm
    hyps, refs = [], []
    for log_probs, lengths, texts in batches:
        hyps += rec.decode(log_probs, lengths, decoder=config)
        refs += texts
    return cer(hyps, refs)


def tune(rec, batches, lm, grid=((0.0, 0.4, 0.8, 1.2, 1.6, 2.4), (0.0, 1.0, 2.0, 3.0, 4.0, 6.0))):
    """The lowest validation CER over a fusion grid (modules/transcribe/fusion.py's, and one step past its
    upper edges), on acoustic outputs computed once."""
    best = None
    for w in grid[0]:
        for b in (grid[1] if w > 0 else (0.0,)):
            c = decode_cer(rec, batches, replace(rec.decoder_config, decoder="beam", lm_weight=w, lm_bonus=b), lm)
            if best is None or c < best[0] - 1e-12:
                best = (c, w, b)
    return best


def run_cer(args):
    from modules.transcribe.normalize import normalize_text
    from modules.transcribe.lm import CharNgramLM
    rec, outputs, valid = acoustic_outputs(args.checkpoint, args.dataset)
    checkpoint_lm = rec.lm
    held_out = {u.text for u in valid}  # tuning on validation sentences the LM had seen would flatter it
    pool = [t for t in (normalize_text(t, rec.text_config) for t in draw_texts("grammar", args.pool, seed=1))
            if t not in held_out]
    split = rec.tokenizer.split
    pool_units = ["".join(split(t)) for t in pool]
    order = rec.lm.order if rec.lm is not None else 10
    base = replace(rec.decoder_config, decoder="beam")
    rows = [{"lm": "none (greedy)", "test_cer": decode_cer(rec, outputs["test"], replace(base, decoder="greedy"))},
            {"lm": "none (beam 8)", "test_cer": decode_cer(rec, outputs["test"], replace(base, lm_weight=0.0))}]
    lms = [("checkpoint's (its training transcripts)", checkpoint_lm, None)]
    for n in map(int, args.sizes.split(",")):
        n = n or len(pool_units)
        start = time.perf_counter()
        lms.append((f"{n} pool transcripts", CharNgramLM.train(pool_units[:n], order=order), n))
        lms[-1] += (time.perf_counter() - start,)
    for name, lm, n, *seconds in lms:
        if lm is None:
            continue
        fixed = replace(base, lm_weight=0.8, lm_bonus=2.0)
        valid_cer, w, b = tune(rec, outputs["valid"], lm)
        row = {"lm": name, "transcripts": n, "distinct": len(set(pool_units[:n])) if n else None,
               "ngrams": lm.num_ngrams() if hasattr(lm, "num_ngrams") else None,
               "train_s": round(seconds[0], 1) if seconds else None,
               "test_cer_fixed_0.8_2.0": decode_cer(rec, outputs["test"], fixed, lm),
               "tuned_weight": w, "tuned_bonus": b, "valid_cer_tuned": valid_cer,
               "test_cer_tuned": decode_cer(rec, outputs["test"], replace(base, lm_weight=w, lm_bonus=b), lm)}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    test_sentences = {t for _, _, texts in outputs["test"] for t in texts}
    update_results("cer", {"machine": machine(), "checkpoint": args.checkpoint, "dataset": args.dataset,
                           "test_utterances": sum(len(t) for _, _, t in outputs["test"]),
                           "valid_utterances": len(valid), "pool": len(pool_units),
                           "pool_drawn": args.pool, "pool_less_validation_sentences": args.pool - len(pool),
                           "test_sentences_in_pool": len(test_sentences & set(pool)), "rows": rows})
    for row in rows:
        print(row)


# ---------------------------------------------------------------------------- decode speed
def run_speed(args):
    import torch  # noqa: F401

    from modules.metrics import cer
    from modules.transcribe.normalize import normalize_text
    from modules.transcribe.decoding import DecoderConfig, decode_batch
    from modules.transcribe.lm import CharNgramLM
    old = old_lm_module(args.old_rev)
    import old_kit.decoding as old_decoding
    rec, outputs, _ = acoustic_outputs(args.checkpoint, args.dataset)
    batches = outputs["valid"] + outputs["test"]
    refs = [t for _, _, texts in batches for t in texts]
    pool = draw_texts("grammar", args.pool, seed=1)
    pool_units = ["".join(rec.tokenizer.split(normalize_text(t, rec.text_config))) for t in pool]
    order = rec.lm.order if rec.lm is not None else 10
    config = DecoderConfig(decoder="beam", lm_weight=0.8, lm_bonus=2.0)
    units = rec.tokenizer.units
    candidates = {
        f"old decoder + LM ({args.old_rev}, its default: 20000 transcripts)":
            (old_decoding.decode_batch, lambda: old.CharNgramLM.train(pool_units, order=order, max_texts=20000)),
        "new decoder + LM of the same 20000 transcripts":
            (decode_batch, lambda: CharNgramLM.train(pool_units[:20000], order=order)),
        f"new decoder + LM of all {len(pool_units)} transcripts":
            (decode_batch, lambda: CharNgramLM.train(pool_units, order=order)),
        "new decoder + LM of 600000 shuffled-word transcripts (pruned to max_ngrams)":
            (decode_batch, lambda: CharNgramLM.train(["".join(rec.tokenizer.split(t))
                                                      for t in draw_texts("words", 600000)], order=order)),
    }
    models = {name: (decode, make()) for name, (decode, make) in candidates.items()}
    rows = {name: [] for name in models}
    hyps_of = {}
    for repeat in range(args.repeats):  # interleaved, so that load changes hit every candidate alike
        for name, (decode, lm) in models.items():
            fresh = type(lm).from_state_dict(lm.state_dict())  # empty caches: every repeat starts cold
            start = time.perf_counter()
            hyps = [rec.tokenizer.decode(ids) for log_probs, lengths, _ in batches
                    for ids in decode(log_probs, lengths, config, lm=fresh, units=units)]
            rows[name].append(time.perf_counter() - start)
            hyps_of[name] = hyps
    reference = min(rows[next(iter(rows))])
    result = {"machine": machine(), "utterances": len(refs), "repeats": args.repeats,
              "config": "beam 8, top-k 8, lm_weight 0.8, lm_bonus 2.0", "rows": []}
    for name, times in rows.items():
        result["rows"].append({"decoder": name, "ms_per_utt_min": round(1000 * min(times) / len(refs), 2),
                               "ms_per_utt_all": [round(1000 * t / len(refs), 2) for t in times],
                               "x_old": round(min(times) / reference, 3), "cer": cer(hyps_of[name], refs)})
        print(result["rows"][-1], flush=True)
    update_results("decode_speed", result)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_count_child":
        kind, n, order, unit, impl, old_rev = sys.argv[2:8]
        print(json.dumps(count_child(kind, int(n), int(order), unit, impl, old_rev)))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True)
    c = sub.add_parser("count")
    c.add_argument("--sizes", default="20000,100000,600000")
    c.add_argument("--kinds", default="long,grammar,words")
    c.add_argument("--order", type=int, default=10)
    c.add_argument("--unit", default="jamo")
    c.add_argument("--old_up_to", type=int, default=20000, help="also time the old counting up to this size")
    c.add_argument("--old_rev", default="31f9668")
    c.add_argument("--smoke", action="store_true", help="CI: 300 grammar transcripts, order 4, today's LM only")
    for name in ("cer", "speed"):
        s = sub.add_parser(name)
        s.add_argument("checkpoint")
        s.add_argument("--dataset", required=True)
        s.add_argument("--pool", type=int, default=600000)
        s.add_argument("--old_rev", default="31f9668")
        s.add_argument("--repeats", type=int, default=3)
    sub.choices["cer"].add_argument("--sizes", default="20000,100000,0", help="0 = the whole pool")
    for s in sub.choices.values():
        s.add_argument("--results", default=RESULTS, help="JSON file whose section this stage replaces")
    args = p.parse_args()
    if getattr(args, "smoke", False):
        args.sizes, args.kinds, args.order, args.old_up_to = "300", "grammar", 4, 0
        if args.results == RESULTS:  # smoke figures never land in the committed results
            args.results = os.path.join(ROOT, "bench", "results", "smoke", "lm_scale.json")
    globals()["RESULTS"] = args.results
    {"count": run_count, "cer": run_cer, "speed": run_speed}[args.stage](args)


if __name__ == "__main__":
    main()
