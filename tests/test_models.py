"""Every registered model: shapes, gradients, output lengths, and batch invariance."""
import pytest
import torch

from modules.models import MODELS, build_model

# Small enough to run in a second on 2 cores; each model's own code paths all run.
TINY = {
    "deepspeech2": dict(conv_channels=4, rnn_hidden=16, rnn_layers=2),
    "conformer": dict(d_model=32, heads=2, layers=2, conv_kernel=5, conv_channels=4),
    "attention": dict(d_model=32, heads=2, layers=1, conv_kernel=5, conv_channels=4, decoder_layers=1),
}
N_MELS, VOCAB = 40, 11


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
    if hasattr(model, "decoder_loss"):  # attention models: the decoder's parameters learn from its loss
        loss = loss + model.decoder_loss(torch.tensor([1, 2, 3, 4, 5]), torch.tensor([2, 2, 1]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_file_decodes_the_same_alone_and_in_a_padded_batch(name):
    model = tiny(name).eval()
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
        model(feats, lengths)
        loss = model.decoder_loss(targets, target_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        model(feats, lengths)
        hyps = model.beam_search(beam_width=3)
    assert hyps == [[3, 4, 5, 6], [3, 7, 8]]
    # Batch invariance of the decoder path: the second file alone decodes the same.
    with torch.no_grad():
        model(feats[1:, :50], lengths[1:])
        assert model.beam_search(beam_width=3) == [hyps[1]]
