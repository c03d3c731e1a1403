"""Every registered model: shapes, gradients, output lengths, batch invariance, that it can learn;
the attention model's searches."""
import pytest
import torch

from data_corpora import one_torch_thread  # noqa: F401 (autouse fixture: tiny steps crawl with 2 spinning threads)
from modules.transcribe.decoding import attention_beam_search
from modules.transcribe.models import MODELS, build_model

# Small enough to run in a second on 2 cores; each model's own code paths all run.
TINY = {
    "deepspeech2": dict(conv_channels=4, rnn_hidden=16, rnn_layers=2),
    "conformer": dict(d_model=32, heads=2, layers=2, conv_kernel=5, conv_channels=4),
    "attention": dict(d_model=32, heads=2, layers=1, conv_kernel=5, conv_channels=4, decoder_layers=1),
}
N_MELS, VOCAB = 40, 11


def awake(model):
    """Random weights everywhere: the residual branches that start at zero (conformer blocks) would
    leave their masks untested and give every utterance a near-identical encoding."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model


def tiny(name):
    torch.manual_seed(0)
    return build_model(name, N_MELS, VOCAB, **TINY.get(name, {}))


def test_every_model_has_a_tiny_config():
    assert set(TINY) >= set(MODELS), "add a tiny configuration for each new model"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward_shapes_and_lengths(name):
    model = tiny(name)
    lengths = torch.tensor([97, 60, 31])
    feats = torch.randn(3, 97, N_MELS)
    log_probs, out_lengths = model(feats, lengths)
    assert log_probs.shape[0] == 3 and log_probs.shape[2] == VOCAB
    assert out_lengths.tolist() == model.output_lengths(lengths).tolist()
    assert log_probs.shape[1] == int(out_lengths.max())
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, log_probs.shape[1]), atol=1e-4)
    loss = log_probs[0, : out_lengths[0]].sum()
    if model.has_decoder:  # attention models: the decoder's parameters learn from its loss
        _, _, memory = model(feats, lengths, return_encoding=True)
        loss = loss + model.decoder_loss(memory, out_lengths, torch.tensor([1, 2, 3, 4, 5]), torch.tensor([2, 2, 1]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_file_decodes_the_same_alone_and_in_a_padded_batch(name):
    model = awake(tiny(name).eval())
    g = torch.Generator().manual_seed(1)
    short = torch.randn(1, 45, N_MELS, generator=g)
    batch = torch.zeros(3, 120, N_MELS)
    batch[0] = torch.randn(120, N_MELS, generator=g)
    batch[1, :45] = short[0]
    batch[2, :80] = torch.randn(80, N_MELS, generator=g)
    with torch.no_grad():
        alone, alone_len = model(short, torch.tensor([45]))
        together, lengths = model(batch, torch.tensor([120, 45, 80]))
    n = int(alone_len[0])
    assert int(lengths[1]) == n
    assert torch.allclose(alone[0, :n], together[1, :n], atol=1e-4)
    assert torch.equal(alone[0, :n].argmax(-1), together[1, :n].argmax(-1))


def test_conformer_sizes_and_explicit_dims():
    small = build_model("conformer", N_MELS, VOCAB, size="small")
    medium = build_model("conformer", N_MELS, VOCAB, size="medium")
    assert small.config.d_model < medium.config.d_model and small.config.layers < medium.config.layers
    custom = build_model("conformer", N_MELS, VOCAB, size="medium", d_model=64, layers=3)
    assert (custom.config.d_model, custom.config.layers, custom.config.heads) == (64, 3, medium.config.heads)
    with pytest.raises(ValueError, match="size"):
        build_model("conformer", N_MELS, VOCAB, size="huge")


def test_attention_decoder_loss_trains_and_beam_search_returns_units():
    torch.manual_seed(0)
    model = tiny("attention")
    feats, lengths = torch.randn(2, 80, N_MELS), torch.tensor([80, 50])
    targets, target_lengths = torch.tensor([3, 4, 5, 6, 3, 7, 8]), torch.tensor([4, 3])
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(30):  # the decoder alone can memorise two transcripts
        _, out_lengths, memory = model(feats, lengths, return_encoding=True)
        loss = model.decoder_loss(memory, out_lengths, targets, target_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        _, out_lengths, memory = model(feats, lengths, return_encoding=True)
        hyps = attention_beam_search(model, memory, out_lengths, beam_width=3)
    assert hyps == [[3, 4, 5, 6], [3, 7, 8]]
    # Batch invariance of the decoder path: the second file alone decodes the same.
    with torch.no_grad():
        _, out_lengths, memory = model(feats[1:, :50], lengths[1:], return_encoding=True)
        assert attention_beam_search(model, memory, out_lengths, beam_width=3) == [hyps[1]]


def _attention_batch(seed=0, eos_bias=0.0):
    """A seeded random attention model and its encoding (memory, lengths) of five random
    utterances of different lengths."""
    model = awake(tiny("attention").eval())
    with torch.no_grad():
        model.out.bias[0] += eos_bias  # SOS_EOS: how soon a random decoder ends its hypotheses
        g = torch.Generator().manual_seed(seed)
        lengths = torch.tensor([150, 121, 97, 64, 30])
        _, out_lengths, memory = model(torch.randn(5, 150, N_MELS, generator=g), lengths, return_encoding=True)
    return model, memory, out_lengths


def _greedy(model, memory, lengths, b):
    """Step-by-step greedy decoding of utterance b of the encoding: argmax until <eos> or the bound."""
    n = int(lengths[b])
    tokens = [0]
    for _ in range(min(n, model.config.max_target_length)):
        logits = model.decoder_logits(torch.tensor([tokens]), memory[b:b + 1, :n], lengths[b:b + 1])
        unit = int(logits[0, -1].argmax())
        if unit == 0:
            break
        tokens.append(unit)
    return tokens[1:]


def test_attention_incremental_decoder_step_equals_the_full_decoder():
    from modules.transcribe.models.frontend import length_mask
    model, memory, lengths = _attention_batch()
    tokens = torch.randint(1, VOCAB, (5, 12), generator=torch.Generator().manual_seed(2))
    tokens[:, 0] = 0
    with torch.no_grad():
        full = model.decoder_logits(tokens, memory, lengths)  # the whole prefix at once, causal mask
        memory_kv, mask = model.memory_keys_values(memory), length_mask(lengths, memory.size(1))
        cache = [None] * model.config.decoder_layers
        for t in range(tokens.size(1)):
            step = model.decoder_step(tokens[:, t], t, cache, memory_kv, mask)
            assert torch.allclose(step, full[:, t], atol=1e-5), t
    assert cache[0][0].shape[2] == tokens.size(1)  # one cached key per position


@pytest.mark.parametrize("beam_width", [1, 4])
@pytest.mark.parametrize("eos_bias", [-10.0, 0.0])
def test_batched_attention_beam_search_equals_one_utterance_at_a_time(beam_width, eos_bias):
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "bench", "attention_decode_speed.py")
    spec = importlib.util.spec_from_file_location("attention_decode_speed", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # holds the pre-batching per-utterance search, the reference

    model, memory, lengths = _attention_batch(eos_bias=eos_bias)
    bounds = lengths.tolist()
    batched = attention_beam_search(model, memory, lengths, beam_width, length_penalty=1.0)
    reference = bench.per_utterance_beam_search(model, memory, lengths, beam_width, 1.0)
    one_by_one = []
    for b, n in enumerate(bounds):  # each utterance alone: its own memory, no padding
        one_by_one += attention_beam_search(model, memory[b:b + 1, :n], lengths[b:b + 1], beam_width, length_penalty=1.0)
    assert batched == one_by_one == reference
    hyp_lengths = [len(h) for h in batched]
    assert len(set(hyp_lengths)) > 1
    if eos_bias > -10:  # some hypotheses end by <eos> before their bound, while others are still open
        assert all(hyp_lengths) and any(h < n for h, n in zip(hyp_lengths, bounds)), (hyp_lengths, bounds)
    else:  # a decoder that never ends: every utterance runs to its own bound (the fallback path)
        assert hyp_lengths == bounds
    if beam_width == 1:
        assert batched == [_greedy(model, memory, lengths, b) for b in range(len(bounds))]


def test_attention_beam_search_is_better_with_a_wider_beam_and_respects_the_target_bound():
    model, memory, lengths = _attention_batch(eos_bias=0.5)

    def score(b, units):  # length-normalised log P of units + <eos> for utterance b
        n = int(lengths[b])
        tokens = torch.tensor([[0] + units])
        with torch.no_grad():
            log_probs = model.decoder_logits(tokens, memory[b:b + 1, :n], lengths[b:b + 1])[0].log_softmax(-1)
        return float(log_probs.gather(1, torch.tensor(units + [0])[:, None]).sum()) / (len(units) + 1)

    narrow, wide = attention_beam_search(model, memory, lengths, 1), attention_beam_search(model, memory, lengths, 8)
    assert any(w != n for w, n in zip(wide, narrow))
    for b in range(len(wide)):
        assert score(b, wide[b]) >= score(b, narrow[b]) - 1e-5
    model.config.max_target_length = 3
    assert all(len(h) <= 3 for h in attention_beam_search(model, memory, lengths, 4))


def test_attention_beam_search_reads_an_encoding_made_under_autocast():
    model = tiny("attention").eval()
    lengths = torch.tensor([60, 40])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # as validation runs with --amp
        _, out_lengths, memory = model(torch.randn(2, 60, N_MELS, generator=torch.Generator().manual_seed(4)),
                                       lengths, return_encoding=True)
    assert memory.dtype == torch.bfloat16  # float32 decoder weights: the search must cast
    hyps = attention_beam_search(model, memory, out_lengths, 4)
    bounds = model.output_lengths(lengths).tolist()
    assert len(hyps) == 2 and all(len(h) <= n and all(0 < u < VOCAB for u in h) for h, n in zip(hyps, bounds))


def _collapse(path):
    """CTC's best-path rule: merge repeats, drop blanks (id 0)."""
    out, last = [], None
    for u in path:
        if u != last and u != 0:
            out.append(u)
        last = u
    return out


def test_ctc_prefix_scores_match_brute_force_over_every_alignment():
    import itertools
    import math
    from modules.transcribe.decoding import CTCPrefixScorer
    g = torch.Generator().manual_seed(5)
    t_len, vocab = 5, 4
    log_probs = torch.randn(1, t_len, vocab, generator=g).log_softmax(-1)
    paths = [(p, float(sum(log_probs[0, t, u] for t, u in enumerate(p))))
             for p in itertools.product(range(vocab), repeat=t_len)]

    def brute(prefix, whole):
        total = [lp for p, lp in paths if (_collapse(p) == prefix if whole else _collapse(p)[:len(prefix)] == prefix)]
        return torch.tensor(total).logsumexp(0).item() if total else -math.inf

    for y in ([2], [1, 1], [3, 1, 2], [2, 2, 2]):  # repeats need a blank between them
        scorer = CTCPrefixScorer(log_probs, torch.tensor([t_len]), beam=1)
        total = 0.0
        for step, unit in enumerate(y):  # extend one unit at a time, as the beam search does
            last = torch.tensor([[y[step - 1] if step else 0]])
            candidates = torch.tensor([[[unit, 0]]])  # the next unit, and <eos> after the prefix so far
            delta = scorer.score(last, candidates, step)
            assert math.isclose(total + delta[0, 0, 1].item(), brute(y[:step], whole=True), abs_tol=1e-4)
            total += delta[0, 0, 0].item()
            assert math.isclose(total, brute(y[:step + 1], whole=False), abs_tol=1e-4), (y, step)
            scorer.select(torch.tensor([0]), torch.tensor([[0]]))
        whole = -torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), torch.tensor([y]), torch.tensor([t_len]),
                                              torch.tensor([len(y)]), reduction="sum").item()
        end = scorer.score(torch.tensor([[y[-1]]]), torch.tensor([[[0]]]), len(y))
        assert math.isclose(total + end[0, 0, 0].item(), whole, abs_tol=1e-4)


def test_joint_decoding_follows_a_confident_ctc_head_and_stops():
    """A random decoder, a CTC head sure of 3 3 5 7 (and of 4 2 in a shorter, padded utterance):
    joint decoding with most weight on CTC returns exactly those, <eos> included, batched or alone."""
    model, memory, lengths = _attention_batch(eos_bias=-2.0)
    memory, lengths = memory[:2], torch.tensor([9, 6])
    paths = [[3, 0, 3, 5, 5, 0, 7, 0, 0], [4, 4, 0, 2, 0, 0, 1, 1, 1]]  # the second's last 3 frames are padding
    ctc = torch.full((2, 9, VOCAB), -20.0)
    for b, path in enumerate(paths):
        ctc[b, torch.arange(9), torch.tensor(path)] = 0.0
    ctc = ctc.log_softmax(-1)
    hyps = attention_beam_search(model, memory, lengths, beam_width=8, ctc_log_probs=ctc, ctc_weight=0.9)
    assert hyps == [[3, 3, 5, 7], [4, 2]]
    alone = attention_beam_search(model, memory[1:, :6], lengths[1:], beam_width=8, ctc_log_probs=ctc[1:, :6], ctc_weight=0.9)
    assert alone == [[4, 2]]
    plain = attention_beam_search(model, memory, lengths, beam_width=8)
    assert plain != hyps  # the random decoder alone says something else


def _synthetic_utterances(n_utts=4, vocab=VOCAB, seed=0):
    """Features in which every unit is a fixed random spectrum held for 12-20 frames, after 5-15
    frames of near-silence: a transcript the models can only learn by aligning it to the sound."""
    g = torch.Generator().manual_seed(seed)
    spectra = torch.randn(vocab, N_MELS, generator=g)
    feats, lengths, targets = [], [], []
    for _ in range(n_utts):
        units = torch.randint(1, vocab, (int(torch.randint(3, 7, (), generator=g)),), generator=g).tolist()
        frames = []
        for u in units:
            frames.append(0.1 * torch.randn(int(torch.randint(5, 16, (), generator=g)), N_MELS, generator=g))
            frames.append(spectra[u] + 0.3 * torch.randn(int(torch.randint(12, 21, (), generator=g)), N_MELS,
                                                           generator=g))
        x = torch.cat(frames)
        feats.append(x)
        lengths.append(len(x))
        targets.append(units)
    padded = torch.zeros(n_utts, max(lengths), N_MELS)
    for i, x in enumerate(feats):
        padded[i, :len(x)] = x
    return padded, torch.tensor(lengths), targets


def _memorise(model, feats, lengths, targets, steps, lr=2e-3, warmup=10):
    """AdamW with linear warmup (the Trainer's optimizer, clipping and loss) on one batch."""
    from modules.transcribe.decoding import ctc_greedy_decode
    flat, target_lengths = torch.tensor(sum(targets, [])), torch.tensor([len(t) for t in targets])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        log_probs, out_lengths = model(feats, lengths)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), flat, out_lengths, target_lengths,
                                            zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    model.eval()
    with torch.no_grad():
        return ctc_greedy_decode(*model(feats, lengths))


def test_a_deep_conformer_memorises_four_utterances():
    """Six blocks, as conformer small has: with randomly initialised residual branches the
    features were buried under six LayerNorm(x + noise) and CTC stayed on the blank plateau."""
    torch.manual_seed(0)
    model = build_model("conformer", N_MELS, VOCAB, d_model=32, heads=2, layers=6, conv_kernel=5, conv_channels=4,
                        dropout=0.0)
    feats, lengths, targets = _synthetic_utterances()
    assert _memorise(model, feats, lengths, targets, steps=80) == targets
