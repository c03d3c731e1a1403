"""CER and speed of the decoders on one checkpoint's validation split (the dev data).

    python bench/decode_speed.py CHECKPOINT_DIR_OR_FILE --dataset DATASET [--out bench/decode_speed.txt]

The acoustic model runs once; its log-probabilities are then decoded greedily, by CTC prefix
beam search without and with the checkpoint's language model (several weights), so the
figures compare decoders only. Seconds per utterance are decoding time alone, and the
greedy decoder in the same run is the reference (the machine is shared).
"""
import argparse
import os
import sys
import time
from dataclasses import replace

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from modules.checkpoint import load_file  # noqa: E402
from modules.metrics import cer  # noqa: E402
from modules.samplers import DurationBatchSampler  # noqa: E402
from modules.text import TextConfig  # noqa: E402
from modules.transcribe.corpus import read_training_set  # noqa: E402
from modules.transcribe.dataset import SpeechDataset, collate  # noqa: E402
from modules.transcribe.recognizer import SpeechRecognizer  # noqa: E402
from modules.transcribe.split import split_by_sentence  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("--dataset", required=True)
    p.add_argument("--valid_fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench/decode_speed.txt")
    args = p.parse_args()
    path = args.checkpoint if os.path.isfile(args.checkpoint) else os.path.join(args.checkpoint, "model.pt")
    state = load_file(path)["recognizer"]
    rec = SpeechRecognizer.from_state_dict(state, torch.device("cpu"))
    utts = read_training_set(args.dataset, TextConfig(**state["text_config"]))
    _, valid = split_by_sentence(utts, args.valid_fraction, args.seed)  # same split as main.py's train()
    loader = torch.utils.data.DataLoader(SpeechDataset(valid, rec.tokenizer), collate_fn=collate,
                                         batch_sampler=DurationBatchSampler([u.duration for u in valid], 200.0,
                                                                            shuffle=False))
    outputs, refs = [], []
    with torch.no_grad():
        for batch in loader:
            outputs.append(rec.forward(batch["waves"], batch["wave_lengths"]))
            refs += [valid[i].text for i in batch["indices"]]
    base = rec.decoder_config
    configs = [("greedy", replace(base, decoder="greedy"))]
    for width in (4, 8, 16):
        configs.append((f"beam {width}, no LM", replace(base, decoder="beam", beam_width=width, lm_weight=0.0)))
    if rec.lm is not None:
        for weight in (0.3, 0.5, 0.8):
            for bonus in (0.5, 1.0):
                configs.append((f"beam 8, LM weight {weight} bonus {bonus}",
                                replace(base, decoder="beam", beam_width=8, lm_weight=weight, lm_bonus=bonus)))
    lines = [f"{path}: {rec.model_name}, {len(refs)} validation utterances, "
             f"checkpoint decoder {base.decoder} beam {base.beam_width} lm_weight {base.lm_weight}"]
    print(lines[0])
    greedy_time = None
    for name, config in configs:
        start = time.time()
        hyps = [t for log_probs, lengths in outputs for t in rec.decode(log_probs, lengths, decoder=config)]
        elapsed = time.time() - start
        greedy_time = greedy_time or elapsed
        lines.append(f"{name:34s} CER {cer(hyps, refs):.4f}  {1000 * elapsed / len(refs):7.2f} ms/utt  "
                     f"x{elapsed / greedy_time:.1f} greedy's time")
        print(lines[-1], flush=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
