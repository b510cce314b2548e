"""Hyena and Mamba DNA language models: configs, causality, RC symmetry, exact chunked and
recurrent inference, gradients. Tiny models built in-test; CPU reference kernels."""

from __future__ import annotations

import pytest
import torch

from genossm.errors import InputError
from genossm.models.blocks import Block
from genossm.models.config import ModelConfig, available_model_configs, load_model_config
from genossm.models.hyena import HyenaOperator
from genossm.models.lm import build_model, count_parameters
from genossm.models.mamba import MambaMixer
from genossm.models.rc import complement_permutation, rc_average
from genossm.tokenizer import reverse_complement_tokens

TOL = dict(rtol=1e-4, atol=1e-5)


def tiny_config(kind: str, **changes) -> ModelConfig:
    base = {
        "hyena": dict(arch="hyena", d_model=16, n_layers=2, max_length=32, hyena={"filter_order": 16}),
        "mamba": dict(arch="mamba", d_model=16, n_layers=2, max_length=32, mamba={"d_state": 4}),
        "bimamba": dict(arch="mamba", d_model=16, n_layers=2, max_length=32, bidirectional=True,
                        objective="masked", mamba={"d_state": 4}),
        "rc": dict(arch="mamba", d_model=8, n_layers=2, max_length=32, bidirectional=True,
                   objective="masked", rc_equivariant=True, mamba={"d_state": 4}),
    }[kind]
    base.update(changes)
    return ModelConfig(**base)


def tiny_model(kind: str, seed: int = 0, **changes):
    torch.manual_seed(seed)
    model = build_model(tiny_config(kind, **changes)).eval()
    # Larger embeddings than the 0.02 init so differences show in the logits, not just rounding.
    with torch.no_grad():
        model.embedding.weight.normal_(0, 1.0)
    return model


def random_tokens(batch: int, length: int, seed: int = 1, vocab: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, length), generator=generator)


# ---------------------------------------------------------------------------------- config
def test_config_round_trip_and_defaults():
    config = tiny_config("hyena")
    assert config.norm == "layernorm" and config.mlp_ratio == 4
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert "mamba" not in config.to_dict()
    mamba = tiny_config("mamba")
    assert mamba.norm == "rmsnorm" and mamba.mlp_ratio == 0
    assert ModelConfig.from_dict(mamba.to_dict()) == mamba


@pytest.mark.parametrize(
    "changes, phrase",
    [
        (dict(arch="mamba", rc_equivariant=True), "rc_equivariant requires bidirectional"),
        (dict(arch="mamba", bidirectional=True), "causal (next-base) objective cannot be bidirectional"),
        (dict(arch="hyena", bidirectional=True, objective="masked"), "Mamba only"),
        (dict(arch="mamba", objective="masked"), "masked objective needs a bidirectional"),
        (dict(arch="transformer"), "arch must be one of"),
        (dict(d_model=0), "d_model must be a positive integer"),
        (dict(vocab_size=4), "smaller than the tokenizer"),
        (dict(hyena={"short_filter_width": 7}), "short_filter_width"),
        (dict(hyena={"orderr": 3}), "unknown field(s) orderr"),
    ],
    ids=["rc-needs-bidir", "causal-bidir", "hyena-bidir", "masked-unidir", "bad-arch", "zero-width",
         "small-vocab", "conv-width", "typo-in-section"],
)
def test_config_validation_errors(changes, phrase):
    with pytest.raises(InputError, match="model config") as info:
        ModelConfig(**changes)
    assert phrase in str(info.value)


def test_load_model_config_by_name_and_path(tmp_path):
    assert {"tiny", "tiny-mamba", "hyena-1m", "mamba-small", "mamba-1m"} <= set(available_model_configs())
    assert load_model_config("tiny").arch == "hyena"
    path = tmp_path / "mine.yaml"
    path.write_text("arch: mamba\nd_model: 32\nn_layers: 1\nmamba: {d_state: 8}\n")
    assert load_model_config(path).mamba.d_state == 8
    path.write_text("arch: mamba\nd_modle: 32\n")
    with pytest.raises(InputError, match="unknown field\\(s\\) d_modle") as info:
        load_model_config(path)
    assert str(path) in str(info.value)
    path.write_text("arch: [mamba\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_model_config(path)
    with pytest.raises(InputError, match="shipped configs: .*tiny"):
        load_model_config("no-such-model")


def test_shipped_parameter_counts():
    counts = {name: count_parameters(build_model(load_model_config(name)))
              for name in ("tiny", "tiny-mamba", "hyena-1m", "mamba-small", "mamba-1m")}
    assert counts["tiny"] == pytest.approx(0.5e6, rel=0.1)
    assert counts["tiny-mamba"] == pytest.approx(0.5e6, rel=0.1)
    assert counts["hyena-1m"] == pytest.approx(6.55e6, rel=0.1)  # HyenaDNA large-1m
    assert counts["mamba-small"] == pytest.approx(7.73e6, rel=0.1)  # Caduceus 131k
    assert counts["mamba-1m"] == pytest.approx(counts["hyena-1m"], rel=0.1)


# ---------------------------------------------------------------------------------- causality
@pytest.mark.parametrize("kind", ["hyena", "mamba"])
def test_causal_models_never_look_ahead(kind):
    model = tiny_model(kind)
    tokens = random_tokens(2, 40)
    changed = tokens.clone()
    changed[:, 23:] = (changed[:, 23:] + 1) % 4
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    assert torch.equal(before[:, :23], after[:, :23])
    assert not torch.allclose(before[:, 23:], after[:, 23:])


def test_bidirectional_model_sees_both_sides():
    model = tiny_model("bimamba")
    tokens = random_tokens(1, 30)
    changed = tokens.clone()
    changed[:, 25] = (changed[:, 25] + 1) % 4
    with torch.no_grad():
        assert not torch.allclose(model(tokens)[:, :20], model(changed)[:, :20])


# ---------------------------------------------------------------------------------- RC symmetry
def test_rc_equivariant_model_is_exactly_equivariant():
    model = tiny_model("rc")
    tokens = random_tokens(2, 29)
    complement = complement_permutation(model.config.vocab_size)
    with torch.no_grad():
        logits, emb = model(tokens, return_embeddings=True)
        rc_logits, rc_emb = model(reverse_complement_tokens(tokens), return_embeddings=True)
    assert emb.shape == (2, 29, model.config.d_model)
    torch.testing.assert_close(rc_logits, logits.flip(1)[..., complement], **TOL)
    torch.testing.assert_close(rc_emb, emb.flip(1), **TOL)
    # The symmetry is not trivial: the output at a position depends on which strand is read.
    assert not torch.allclose(logits, logits.flip(1)[..., complement], atol=1e-3)


def test_bidirectional_model_without_rc_sharing_is_not_equivariant():
    model = tiny_model("bimamba")
    tokens = random_tokens(1, 29)
    complement = complement_permutation(model.config.vocab_size)
    with torch.no_grad():
        logits, rc_logits = model(tokens), model(reverse_complement_tokens(tokens))
    assert not torch.allclose(rc_logits, logits.flip(1)[..., complement], atol=1e-3)


@pytest.mark.parametrize("kind", ["hyena", "bimamba"])
def test_rc_average_is_strand_symmetric(kind):
    model = tiny_model(kind)
    tokens = random_tokens(2, 21)
    complement = complement_permutation(model.config.vocab_size)
    with torch.no_grad():
        plain = rc_average(model, tokens)
        swapped = rc_average(model, reverse_complement_tokens(tokens))
        chunked = rc_average(model, tokens, chunk_size=8)
    torch.testing.assert_close(swapped.log_probs, plain.log_probs.flip(1)[..., complement], **TOL)
    torch.testing.assert_close(swapped.embeddings, plain.embeddings.flip(1), **TOL)
    torch.testing.assert_close(chunked.log_probs, plain.log_probs, **TOL)
    assert torch.isfinite(plain.log_probs).all()
    if kind == "hyena":
        # Causal: position 0 has only the reverse strand's prediction, P(x_0 | x_>0).
        with torch.no_grad():
            reverse_logits = model(reverse_complement_tokens(tokens))
        expected = torch.log_softmax(reverse_logits[:, -2], -1)[..., complement]
        torch.testing.assert_close(plain.log_probs[:, 0], expected, **TOL)


# ---------------------------------------------------------------------------------- chunked / recurrent
@pytest.mark.parametrize("kind", ["hyena", "mamba", "bimamba", "rc"])
@pytest.mark.parametrize("chunk_size", [3, 7, 64], ids=lambda c: f"chunk{c}")
def test_forward_chunked_equals_full_pass(kind, chunk_size):
    model = tiny_model(kind)
    tokens = random_tokens(2, 37)
    with torch.no_grad():
        logits, emb = model(tokens, return_embeddings=True)
        chunk_logits, chunk_emb = model.forward_chunked(tokens, chunk_size, return_embeddings=True)
    torch.testing.assert_close(chunk_logits, logits, **TOL)
    torch.testing.assert_close(chunk_emb, emb, **TOL)


def test_mamba_step_by_step_equals_full_pass():
    model = tiny_model("mamba")
    tokens = random_tokens(2, 13)
    with torch.no_grad():
        logits, emb = model(tokens, return_embeddings=True)
        state = model.allocate_inference_state(2)
        for t in range(tokens.shape[1]):
            step_logits, step_emb, state = model.step(tokens[:, t], state)
            torch.testing.assert_close(step_logits, logits[:, t], **TOL)
            torch.testing.assert_close(step_emb, emb[:, t], **TOL)


@pytest.mark.parametrize("split", [1, 6, 17, 30])
def test_mamba_forward_with_state_split_equals_full_pass(split):
    model = tiny_model("mamba")
    tokens = random_tokens(3, 31)
    with torch.no_grad():
        logits, emb = model(tokens, return_embeddings=True)
        first_logits, _, prefix = model.forward_with_state(tokens[:, :split])
        saved = prefix.clone()
        rest_logits, rest_emb, _ = model.forward_with_state(tokens[:, split:], prefix)
        # The prefix state is reusable: running a continuation again gives the same numbers.
        again, _, _ = model.forward_with_state(tokens[:, split:], prefix)
    torch.testing.assert_close(torch.cat([first_logits, rest_logits], 1), logits, **TOL)
    torch.testing.assert_close(rest_emb, emb[:, split:], **TOL)
    assert torch.equal(again, rest_logits)
    for kept, copy in zip(prefix.layers, saved.layers):
        assert torch.equal(kept.ssm, copy.ssm) and torch.equal(kept.conv, copy.conv)


def test_mamba_state_repeat_scores_many_continuations():
    model = tiny_model("mamba")
    prefix_tokens = random_tokens(1, 12)
    suffixes = random_tokens(4, 6, seed=5)
    with torch.no_grad():
        _, _, prefix = model.forward_with_state(prefix_tokens)
        logits, _, _ = model.forward_with_state(suffixes, prefix.repeat(4))
        full = model(torch.cat([prefix_tokens.expand(4, -1), suffixes], dim=1))
    torch.testing.assert_close(logits, full[:, 12:], **TOL)


def test_recurrent_methods_refuse_non_causal_models():
    for kind in ("hyena", "bimamba"):
        with pytest.raises(InputError, match="needs a causal Mamba"):
            tiny_model(kind).allocate_inference_state(1)


# ---------------------------------------------------------------------------------- lengths
@pytest.mark.parametrize("kind", ["hyena", "mamba", "rc"])
def test_runs_at_eight_times_max_length(kind):
    model = tiny_model(kind, max_length=16)
    tokens = random_tokens(1, 8 * 16)
    with torch.no_grad():
        logits = model(tokens)
        chunked = model.forward_chunked(tokens, 50)
    assert logits.shape == (1, 128, model.config.vocab_size)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(chunked, logits, **TOL)


def test_hyena_filter_is_a_prefix_at_any_length():
    torch.manual_seed(0)
    operator = HyenaOperator(tiny_config("hyena"))
    with torch.no_grad():
        long = operator.filter(200)
        short = operator.filter(33)
        pieces = operator.filter(200, chunk_size=64)
    torch.testing.assert_close(long[:, :33], short, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(pieces, long, rtol=1e-6, atol=1e-7)
    # The decay window makes late taps small but not zero.
    assert long[:, -1].abs().max() < long[:, 0].abs().max()


def test_hyena_higher_order_operator():
    model = tiny_model("hyena", hyena={"order": 3, "filter_order": 8})
    tokens = random_tokens(1, 25)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_chunked(tokens, 6), model(tokens), **TOL)


def test_length_one_and_gradient_checkpointing():
    model = tiny_model("hyena", checkpointing=True).train()
    tokens = random_tokens(2, 1)
    assert model(tokens).shape == (2, 1, model.config.vocab_size)
    tokens = random_tokens(2, 20)
    loss = model(tokens).logsumexp(-1).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("kind", ["hyena", "mamba", "bimamba"])
def test_block_gradcheck_float64(kind):
    config = tiny_config(kind, d_model=4, hyena={"filter_order": 4}, mamba={"d_state": 2})
    torch.manual_seed(0)
    mixer = HyenaOperator(config) if kind == "hyena" else MambaMixer(config)
    block = Block(config, mixer).double()
    x = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


# ---------------------------------------------------------------------------------- written-out formulas
def test_mamba_mixer_matches_mamba_ssm_equations():
    """The mixer against mamba_ssm's `Mamba.step` equations, written out here position by position."""
    config = tiny_config("mamba", d_model=8, mamba={"d_state": 3})
    torch.manual_seed(0)
    mixer = MambaMixer(config).double()
    h = torch.randn(2, 9, 8, dtype=torch.float64)
    ssm = mixer.forward_ssm
    xz = h @ mixer.in_proj.weight.t()  # (B, L, 2 Di)
    x, z = xz.chunk(2, dim=-1)
    width = ssm.conv_weight.shape[1]
    padded = torch.nn.functional.pad(x, (0, 0, width - 1, 0))  # causal: zeros before position 0
    A = -torch.exp(ssm.A_log)  # (Di, N)
    state = torch.zeros(2, x.shape[-1], A.shape[1], dtype=torch.float64)
    outputs = []
    for t in range(h.shape[1]):
        window = padded[:, t:t + width]  # (B, W, Di)
        x_t = torch.nn.functional.silu((window * ssm.conv_weight.t()).sum(1) + ssm.conv_bias)  # (B, Di)
        dt, B, C = (x_t @ ssm.x_proj.weight.t()).split([ssm.dt_rank, ssm.d_state, ssm.d_state], dim=-1)
        dt = torch.nn.functional.softplus(dt @ ssm.dt_proj.weight.t() + ssm.dt_proj.bias)  # (B, Di)
        state = state * torch.exp(dt[..., None] * A) + (dt * x_t)[..., None] * B[:, None, :]
        y = (state * C[:, None, :]).sum(-1) + ssm.D * x_t
        outputs.append((y * torch.nn.functional.silu(z[:, t])) @ mixer.out_proj.weight.t())
    expected = torch.stack(outputs, dim=1)  # (B, L, d)
    with torch.no_grad():
        torch.testing.assert_close(mixer(h), expected, rtol=1e-9, atol=1e-10)


def test_hyena_operator_matches_hyenadna_equations():
    """Order 2: y = out_proj(x0 * (k * (x1 * v) + D * x1 * v)), with the convolutions written out."""
    torch.manual_seed(0)
    operator = HyenaOperator(tiny_config("hyena", d_model=4, hyena={"filter_order": 8})).double()
    u = torch.randn(1, 7, 4, dtype=torch.float64)
    L, d = 7, 4
    projected = u @ operator.in_proj.weight.t() + operator.in_proj.bias  # (1, L, 3d)
    padded = torch.nn.functional.pad(projected, (0, 0, 2, 0))
    weight = operator.short_conv_weight  # (3d, 3)
    short = sum(padded[:, j:j + L] * weight[:, j] for j in range(3)) + operator.short_conv_bias
    x0, x1, v = short.split(d, dim=-1)  # (1, L, d) each
    with torch.no_grad():
        k = operator.filter(L)  # (d, L), float64 in a float64 model
    gated = x1 * v
    conv = torch.stack([sum(k[:, s] * gated[:, t - s] for s in range(t + 1)) for t in range(L)], dim=1)
    y = x0 * (conv + operator.filter_bias * gated)
    expected = y @ operator.out_proj.weight.t() + operator.out_proj.bias
    with torch.no_grad():
        torch.testing.assert_close(operator(u), expected, rtol=1e-9, atol=1e-10)
