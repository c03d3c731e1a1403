"""CER and speed of the decoders on one checkpoint's validation split (the dev data).

    python bench/decode_speed.py CHECKPOINT_DIR_OR_FILE --dataset DATASET [--out bench/decode_speed.txt]
    python bench/decode_speed.py --smoke     # CI: a tiny model trained for a moment on 24 sample utterances

The acoustic model runs once; its log-probabilities are then decoded greedily, by CTC prefix
beam search without and with the checkpoint's language model (several weights), so the
figures compare decoders only. Seconds per utterance are decoding time alone, and the
greedy decoder in the same run is the reference (the machine is shared). The validation
utterances are those the checkpoint's training held out (recorded in it), or the recipe's
seeded split for checkpoints that did not record them.
"""
import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from modules.checkpoint import CHECKPOINT_FILE, read_checkpoint  # noqa: E402
from modules.metrics import cer  # noqa: E402
from modules.samplers import DurationBatchSampler  # noqa: E402
from modules.transcribe.corpus import read_training_set  # noqa: E402
from modules.transcribe.dataset import SpeechDataset, collate  # noqa: E402
from modules.transcribe.recognizer import SpeechRecognizer  # noqa: E402
from modules.transcribe.split import split_by_names, split_by_sentence  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", nargs="?", help="a checkpoint folder (or its model.pt) of --task transcribe")
    p.add_argument("--dataset", help="the dataset it was trained on")
    p.add_argument("--valid_fraction", type=float, default=0.2, help="the split of checkpoints that recorded none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default bench/decode_speed.txt (smoke: bench/results/smoke/)")
    p.add_argument("--smoke", action="store_true", help="CI: train a tiny checkpoint on sample data and decode it")
    a = p.parse_args(argv)
    if not a.smoke and not (a.checkpoint and a.dataset):
        p.error("CHECKPOINT and --dataset are required (or --smoke)")
    a.out = a.out or os.path.join(common.ROOT, *(["bench", "results", "smoke"] if a.smoke else ["bench"]),
                                  "decode_speed.txt")
    return a


def validation_outputs(folder: str, dataset: str, valid_fraction: float, seed: int):
    """(recognizer, [(log_probs, lengths)] of each validation batch, their reference texts)."""
    task, state = read_checkpoint(folder)
    if task != "transcribe":
        raise SystemExit(f"{folder}: a {task} checkpoint; decode_speed needs a transcribe one")
    rec = SpeechRecognizer.from_state_dict(state["recognizer"], torch.device("cpu"))
    utts = read_training_set(dataset, rec.text_config)
    valid_files = (state.get("trainer") or {}).get("valid_files")
    if valid_files:  # the utterances this checkpoint's training held out
        _, valid = split_by_names(utts, valid_files)
    else:
        _, valid = split_by_sentence(utts, valid_fraction, seed)  # the recipe's seeded split
    if not valid:
        raise SystemExit(f"{dataset}: no validation utterance for {folder}")
    loader = torch.utils.data.DataLoader(SpeechDataset(valid, rec.tokenizer), collate_fn=collate,
                                         batch_sampler=DurationBatchSampler([u.duration for u in valid], 200.0,
                                                                            shuffle=False))
    outputs, refs = [], []
    with torch.no_grad():
        for batch in loader:
            outputs.append(rec.forward(batch["waves"], batch["wave_lengths"]))
            refs += [valid[i].text for i in batch["indices"]]
    return rec, outputs, refs


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="decode_speed_") as scratch:
        if args.smoke:
            args.dataset = common.tiny_corpus(os.path.join(scratch, "corpus"))
            args.checkpoint = common.tiny_checkpoint("transcribe", args.dataset, os.path.join(scratch, "checkpoints"))
        path = args.checkpoint
        folder = os.path.dirname(path) if os.path.basename(path) == CHECKPOINT_FILE else path
        rec, outputs, refs = validation_outputs(folder, args.dataset, args.valid_fraction, args.seed)
    return compare_decoders(rec, outputs, refs, folder, args.out)


def compare_decoders(rec, outputs, refs, folder, out):
    base = rec.decoder_config
    configs = [("greedy", replace(base, decoder="greedy"))]
    for width in (4, 8, 16):
        configs.append((f"beam {width}, no LM", replace(base, decoder="beam", beam_width=width, lm_weight=0.0)))
    if rec.lm is not None:
        for weight in (0.3, 0.5, 0.8):
            for bonus in (0.5, 1.0):
                configs.append((f"beam 8, LM weight {weight} bonus {bonus}",
                                replace(base, decoder="beam", beam_width=8, lm_weight=weight, lm_bonus=bonus)))
    lines = [f"{folder}: {rec.model_name}, {len(refs)} validation utterances, "
             f"checkpoint decoder {base.decoder} beam {base.beam_width} lm_weight {base.lm_weight}"]
    print(lines[0])
    greedy_time = None
    for name, config in configs:
        start = time.perf_counter()
        hyps = [t for log_probs, lengths in outputs for t in rec.decode(log_probs, lengths, decoder=config)]
        elapsed = max(time.perf_counter() - start, 1e-9)
        greedy_time = greedy_time or elapsed
        lines.append(f"{name:34s} CER {cer(hyps, refs):.4f}  {1000 * elapsed / len(refs):7.2f} ms/utt  "
                     f"x{elapsed / greedy_time:.1f} greedy's time")
        print(lines[-1], flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


if __name__ == "__main__":
    main()
