"""Mamba-2 (SSD) language models: configs, causality, RC symmetry, exact chunked and recurrent
inference, gradients, checkpoints, and the mixer against mamba_ssm's Mamba2 equations written out.
Tiny models built in-test; CPU reference kernels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genossm.errors import InputError
from genossm.models.blocks import Block
from genossm.models.checkpoint import load_model, save_model
from genossm.models.config import ModelConfig, load_model_config
from genossm.models.lm import build_model, count_parameters
from genossm.models.mamba2 import Mamba2Mixer
from genossm.models.rc import complement_permutation
from genossm.tokenizer import reverse_complement_tokens

TOL = dict(rtol=1e-4, atol=1e-5)
# 4 heads of 8 channels in 2 groups, chunks of 8 positions: the 37-token inputs below cross chunk
# boundaries and every head shares B/C with one other head.
SSD = {"d_state": 8, "headdim": 8, "ngroups": 2, "chunk_size": 8}


def tiny_config(kind: str, **changes) -> ModelConfig:
    base = {
        "causal": dict(arch="mamba2", d_model=16, n_layers=2, max_length=32, mamba2=dict(SSD)),
        "bidirectional": dict(arch="mamba2", d_model=16, n_layers=2, max_length=32, bidirectional=True,
                              objective="masked", mamba2=dict(SSD)),
        "rc": dict(arch="mamba2", d_model=8, n_layers=2, max_length=32, bidirectional=True,
                   objective="masked", rc_equivariant=True, mamba2=dict(SSD, ngroups=1)),
    }[kind]
    base.update(changes)
    return ModelConfig(**base)


def tiny_model(kind: str, seed: int = 0, **changes):
    torch.manual_seed(seed)
    model = build_model(tiny_config(kind, **changes)).eval()
    with torch.no_grad():  # larger than the 0.02 init so differences show in the logits
        model.embedding.weight.normal_(0, 1.0)
    return model


def random_tokens(batch: int, length: int, seed: int = 1, vocab: int = 5) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------- configs
def test_shipped_configs_and_parameter_counts():
    tiny = load_model_config("tiny-mamba2")
    assert tiny.arch == "mamba2" and tiny.mamba2.d_state == 64
    assert 0.4e6 < count_parameters(build_model(tiny)) < 0.6e6
    big, peer = load_model_config("mamba2-1m"), load_model_config("mamba-1m")
    assert big.mamba2.nheads(big.d_model) == 8 and big.mamba2.d_state == 128
    # counted from the shapes, without building the 7M-parameter models
    ratio = count_parameters(build_model(big.__class__.from_dict(dict(big.to_dict(), n_layers=1)))) * 15
    assert abs(ratio / 7.01e6 - 1) < 0.02, ratio
    assert peer.n_layers == 16


def test_config_round_trip_keeps_only_its_section():
    config = tiny_config("causal")
    data = config.to_dict()
    assert "mamba2" in data and "mamba" not in data and "hyena" not in data
    assert ModelConfig.from_dict(data) == config
    assert "mamba2" not in ModelConfig(arch="mamba").to_dict()


@pytest.mark.parametrize(
    "change, message",
    [(dict(mamba2=dict(SSD, headdim=5)), "multiple of mamba2.headdim"),
     (dict(mamba2=dict(SSD, ngroups=3)), "must divide"),
     (dict(mamba2=dict(SSD, d_conv=5)), "d_conv"),
     (dict(mamba2=dict(SSD, chunk_size=0)), "chunk_size")],
    ids=["headdim", "ngroups", "d_conv", "chunk_size"],
)
def test_bad_configs_name_the_field(change, message):
    with pytest.raises(InputError, match=message):
        tiny_config("causal", **change)


# ---------------------------------------------------------------------------------- behaviour
def test_causal_model_does_not_see_the_future():
    model = tiny_model("causal")
    tokens = random_tokens(2, 37)
    changed = tokens.clone()
    changed[:, 20:] = (changed[:, 20:] + 1) % 4
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :20], b[:, :20], rtol=0, atol=0)
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_bidirectional_model_sees_both_sides():
    model = tiny_model("bidirectional")
    tokens = random_tokens(1, 37)
    changed = tokens.clone()
    changed[:, 30] = (changed[:, 30] + 1) % 4
    with torch.no_grad():
        assert not torch.allclose(model(tokens)[:, :30], model(changed)[:, :30])


def test_rc_equivariant_model():
    model = tiny_model("rc")
    tokens = random_tokens(2, 37)
    complement = complement_permutation(model.config.vocab_size)
    with torch.no_grad():
        logits, emb = model(tokens, return_embeddings=True)
        rc_logits, rc_emb = model(reverse_complement_tokens(tokens), return_embeddings=True)
    torch.testing.assert_close(rc_logits, logits.flip(1)[..., complement], **TOL)
    torch.testing.assert_close(rc_emb, emb.flip(1), **TOL)


# ---------------------------------------------------------------------------------- exact inference
@pytest.mark.parametrize("kind", ["causal", "bidirectional", "rc"])
@pytest.mark.parametrize("chunk_size", [3, 8, 64], ids=lambda c: f"chunk{c}")
def test_forward_chunked_equals_full_pass(kind, chunk_size):
    model = tiny_model(kind)
    tokens = random_tokens(2, 37)
    with torch.no_grad():
        logits, emb = model(tokens, return_embeddings=True)
        chunk_logits, chunk_emb = model.forward_chunked(tokens, chunk_size, return_embeddings=True)
    torch.testing.assert_close(chunk_logits, logits, **TOL)
    torch.testing.assert_close(chunk_emb, emb, **TOL)


def test_step_by_step_equals_full_pass():
    model = tiny_model("causal")
    tokens = random_tokens(2, 13)
    with torch.no_grad():
        logits, emb = model(tokens, return_embeddings=True)
        state = model.allocate_inference_state(2)
        for t in range(tokens.shape[1]):
            step_logits, step_emb, state = model.step(tokens[:, t], state)
            torch.testing.assert_close(step_logits, logits[:, t], **TOL)
            torch.testing.assert_close(step_emb, emb[:, t], **TOL)


@pytest.mark.parametrize("split", [1, 8, 17, 36])
def test_forward_with_state_split_equals_full_pass(split):
    model = tiny_model("causal")
    tokens = random_tokens(3, 37)
    with torch.no_grad():
        logits, emb = model(tokens, return_embeddings=True)
        first_logits, _, prefix = model.forward_with_state(tokens[:, :split])
        saved = prefix.clone()
        rest_logits, rest_emb, _ = model.forward_with_state(tokens[:, split:], prefix)
        again, _, _ = model.forward_with_state(tokens[:, split:], prefix)
        repeated, _, _ = model.forward_with_state(tokens[:1, split:].expand(2, -1),
                                                  model.forward_with_state(tokens[:1, :split])[2].repeat(2))
    torch.testing.assert_close(torch.cat([first_logits, rest_logits], 1), logits, **TOL)
    torch.testing.assert_close(rest_emb, emb[:, split:], **TOL)
    torch.testing.assert_close(repeated, logits[:1, split:].expand(2, -1, -1), **TOL)
    assert torch.equal(again, rest_logits)
    for kept, copy in zip(prefix.layers, saved.layers):  # the prefix state was not modified
        assert torch.equal(kept.ssm, copy.ssm) and torch.equal(kept.conv, copy.conv)
    assert prefix.layers[0].ssm.shape == (3, 4, 8, 8)  # (B, H, P, N)


def test_recurrent_methods_refuse_the_bidirectional_model():
    with pytest.raises(InputError, match="needs a causal Mamba or Mamba-2"):
        tiny_model("bidirectional").allocate_inference_state(1)
    assert tiny_model("causal").supports_recurrent_state
    assert not tiny_model("causal").supports_suffix_cache


# ---------------------------------------------------------------------------------- training, files
def test_gradients_reach_every_parameter_with_checkpointing():
    model = tiny_model("bidirectional", checkpointing=True).train()
    model(random_tokens(2, 19)).logsumexp(-1).mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    no_decay = {name.rsplit(".", 1)[-1] for name, p in model.named_parameters()
                if getattr(p, "_optim", {}).get("weight_decay") == 0.0}
    assert no_decay == {"A_log", "D", "dt_bias"}


@pytest.mark.parametrize("kind", ["causal", "bidirectional"])
def test_block_gradcheck_float64(kind):
    config = tiny_config(kind, d_model=4, mamba2={"d_state": 2, "headdim": 2, "chunk_size": 4})
    torch.manual_seed(0)
    block = Block(config, Mamba2Mixer(config)).double()
    x = torch.randn(1, 7, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_checkpoint_round_trip(tmp_path):
    model = tiny_model("causal")
    save_model(model, tmp_path / "m2")
    loaded = load_model(tmp_path / "m2")
    tokens = random_tokens(1, 21)
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens), model(tokens), rtol=0, atol=0)


# ---------------------------------------------------------------------------------- written-out formulas
def test_mixer_matches_mamba2_equations():
    """The causal mixer against mamba_ssm's `Mamba2.step` equations, position by position."""
    config = tiny_config("causal")
    torch.manual_seed(0)
    mixer = Mamba2Mixer(config).double()
    h = torch.randn(2, 11, 16, dtype=torch.float64)
    ssd = mixer.forward_ssd
    H, P, G, N = 4, 8, 2, 8
    d_inner, conv_dim = 32, 32 + 2 * G * N
    zxbcdt = h @ mixer.in_proj.weight.t()  # (B, L, d_in_proj)
    z, xBC, dt = zxbcdt.split([d_inner, conv_dim, H], dim=-1)
    width = ssd.conv_weight.shape[1]
    padded = F.pad(xBC, (0, 0, width - 1, 0))
    conv = sum(padded[:, k:k + 11] * ssd.conv_weight[:, k] for k in range(width)) + ssd.conv_bias
    xBC = F.silu(conv)
    x, B, C = xBC.split([d_inner, G * N, G * N], dim=-1)
    x = x.reshape(2, 11, H, P)
    B = B.reshape(2, 11, G, N).repeat_interleave(H // G, dim=2)  # head h reads group h // 2
    C = C.reshape(2, 11, G, N).repeat_interleave(H // G, dim=2)
    dt = F.softplus(dt + ssd.dt_bias)  # (B, L, H)
    A = -torch.exp(ssd.A_log)
    state = torch.zeros(2, H, P, N, dtype=torch.float64)
    ys = []
    for t in range(11):
        dA = torch.exp(dt[:, t] * A)  # (B, H)
        state = state * dA[..., None, None] + (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]) + ssd.D[:, None] * x[:, t])
    y = torch.stack(ys, 1).reshape(2, 11, d_inner)
    gated = (y * F.silu(z)).reshape(2, 11, G, d_inner // G)  # RMS per group of d_inner / G
    normed = gated * torch.rsqrt(gated.pow(2).mean(-1, keepdim=True) + config.norm_eps)
    expected = (normed.reshape(2, 11, d_inner) * mixer.norm.weight) @ mixer.out_proj.weight.t()
    with torch.no_grad():
        torch.testing.assert_close(mixer(h), expected, rtol=1e-10, atol=1e-12)
