"""Named sets of command-line defaults: `python main.py --preset NAME [options]`.

A preset only changes argparse defaults, so any option given on the command line
still wins, and every setting of a preset is a plain option that can be used alone.

baseline2022 trains the way the 2022 official baseline did (KoSpeech's DeepSpeech2
recipe), so bench/run_suite.py can compare it with the kit inside one harness:
  - features: 80-bin log-mel with a 20 ms window, 10 ms hop (the kit: 25 ms window);
  - model: KoSpeech's conv front end, kernels (41, 11) and (21, 11) over (frequency, time),
    strides (2, 2) and (2, 1), 32 channels, Hardtanh, so time stride 2 (20 ms output frames),
    then 3 bidirectional GRU layers of 1024;
  - batches of 128 utterances by count, no duration bucketing;
  - the training list doubled: each epoch sees every utterance once clean and once as
    a SpecAugment copy, whatever the budget (the kit turns SpecAugment off for short ones);
  - Adam, peak LR 1e-4, tri-stage schedule: warmup from lr/100 (KoSpeech's init_lr 1e-6),
    hold to half-way, exponential decay to 0.05 x peak (KoSpeech's final_lr_scale);
    KoSpeech's weight decay 1e-5 (an L2 term under Adam);
  - greedy CTC decoding WITHOUT merging repeated characters (the baseline's bug), no LM;
  - inference one file at a time.
Everything else (warmup length, gradient clipping, SpecAugment masks, validation split,
text units) is the kit's default: the KoSpeech warmup of 400 steps would never end
within the budgets the suite compares at on a CPU, so warmup is the kit's 8% of training.
"""

PRESETS = {
    "baseline2022": {
        "win_ms": 20.0,
        "conv_kernels": "41x11,21x11",
        "conv_strides": "2x2,2x1",
        "time_stride": 2,
        "rnn_hidden": 1024,
        "rnn_layers": 3,
        "batch_utterances": 128,
        "specaugment_copies": True,
        "specaugment": "on",
        "optimizer": "adam",
        "lr": 1e-4,
        "weight_decay": 1e-5,
        "lr_schedule": "tri_stage",
        "decoder": "greedy",
        "lm_order": 0,
        "no_merge_repeats": True,
        "infer_batch_seconds": 0.0,
        "unit": "char",
        "speed_perturb": "off",
    },
}


def apply_preset(parser, name: str):
    """Make preset `name`'s settings the parser's defaults (command-line options still win)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from: {', '.join(sorted(PRESETS))}")
    known = {a.dest for a in parser._actions}
    unknown = set(PRESETS[name]) - known
    if unknown:  # a renamed option must not silently drop out of a preset
        raise ValueError(f"preset {name!r} sets options main.py does not have: {sorted(unknown)}")
    parser.set_defaults(**PRESETS[name])
