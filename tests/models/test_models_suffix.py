"""Causal Hyena suffix reuse: `forward_suffix` from a reference's `prefix_cache` equals the full pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genossm.errors import InputError
from genossm.infer.score.scorer import VariantScorer
from genossm.infer.score.tiles import TileLayout, allele_pair
from genossm.models.config import ModelConfig
from genossm.models.lm import build_model
from infer_helpers import tiny_model

WINDOW = 48


def hyena_model(order: int, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(arch="hyena", d_model=16, n_layers=2, max_length=64, mlp_ratio=2,
                         hyena={"order": order, "filter_order": 16})
    model = build_model(config).eval()
    with torch.no_grad():  # larger gates than the init's so that a changed base reaches far
        for block in model.blocks:
            block.mixer.in_proj.weight.mul_(20)
    return model


def alt_windows(reference: torch.Tensor, rng: np.random.Generator):
    """(alt window (W,), first difference p) pairs: SNV-like and indel-like (whole suffix new),
    p = 0 and p = W - 1 included."""
    cases = []
    for p, kind in [(0, "snv"), (WINDOW - 1, "snv"), (0, "indel"), (WINDOW - 1, "indel"),
                    (int(rng.integers(1, WINDOW - 1)), "snv"), (int(rng.integers(1, WINDOW - 1)), "indel"),
                    (int(rng.integers(1, WINDOW - 1)), "snv")]:
        alt = reference.clone()
        if kind == "snv":
            alt[p] = (alt[p] + int(rng.integers(1, 4))) % 4
        else:
            alt[p:] = torch.from_numpy(rng.integers(0, 5, WINDOW - p))  # N (4) included
            alt[p] = (reference[p] + 1) % 4
        cases.append((alt, p))
    return cases


def assert_close_relative(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5):
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("order", [2, 3])
@torch.no_grad()
def test_forward_suffix_equals_full_pass(order):
    model = hyena_model(order)
    rng = np.random.default_rng(order)
    references = torch.from_numpy(rng.integers(0, 4, (2, WINDOW)))  # (2, W): two cached windows
    logits, hidden, cache = model.prefix_cache(references)
    full_logits, full_hidden = model(references, return_embeddings=True)
    assert_close_relative(logits, full_logits)
    assert_close_relative(hidden, full_hidden)

    cases = [(alt, p, row) for row in (0, 1) for alt, p in alt_windows(references[row], rng)]
    longest = max(WINDOW - p for _, p, _ in cases)
    suffixes = torch.from_numpy(rng.integers(0, 5, (len(cases), longest)))  # right padding: random tokens
    for i, (alt, p, _) in enumerate(cases):
        suffixes[i, :WINDOW - p] = alt[p:]
    starts = [p for _, p, _ in cases]
    rows = [row for _, _, row in cases]
    suffix_logits, suffix_hidden = model.forward_suffix(cache, suffixes, starts, rows)
    assert suffix_logits.shape == (len(cases), longest, model.config.vocab_size)

    expected_logits, expected_hidden = model(torch.stack([alt for alt, _, _ in cases]), return_embeddings=True)
    for i, (_, p, _) in enumerate(cases):
        assert_close_relative(suffix_logits[i, :WINDOW - p], expected_logits[i, p:])
        assert_close_relative(suffix_hidden[i, :WINDOW - p], expected_hidden[i, p:])
    # The alt windows really differ from their references after p (the test is not vacuous).
    ref_logits = logits[rows]
    assert max((expected_logits[i, p:] - ref_logits[i, p:]).abs().max().item()
               for i, (_, p, _) in enumerate(cases)) > 1e-2


@torch.no_grad()
def test_one_cached_window_serves_every_suffix():
    model = hyena_model(2)
    reference = torch.from_numpy(np.random.default_rng(5).integers(0, 4, (1, WINDOW)))
    _, hidden, cache = model.prefix_cache(reference)
    starts = [3, 20]
    suffixes = torch.stack([reference[0, 3:], torch.cat([reference[0, 20:], reference[0, :17]])])
    _, suffix_hidden = model.forward_suffix(cache, suffixes, starts)  # rows default to the one window
    assert_close_relative(suffix_hidden[0], hidden[0, 3:])
    assert_close_relative(suffix_hidden[1, :WINDOW - 20], hidden[0, 20:])


def test_suffix_cache_is_for_causal_hyena_only():
    assert hyena_model(2).supports_suffix_cache
    mamba = tiny_model("mamba")
    assert not mamba.supports_suffix_cache
    with pytest.raises(InputError, match="causal Hyena"):
        mamba.prefix_cache(torch.zeros(1, 8, dtype=torch.long))
    model = hyena_model(2)
    _, _, cache = model.prefix_cache(torch.zeros(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="starts must lie"):
        model.forward_suffix(cache, torch.zeros(1, 2, dtype=torch.long), [8])


def test_scorer_runs_hyena_alt_windows_as_suffixes():
    model = tiny_model("hyena")
    scorer = VariantScorer(model, both_strands=False)
    assert scorer.reuse_prefix_state
    calls = []
    original = model.forward_suffix

    def counting(cache, tokens, starts, rows=None):
        calls.append(tokens.shape)
        return original(cache, tokens, starts, rows)

    model.forward_suffix = counting
    rng = np.random.default_rng(3)
    window = 64
    tile = rng.integers(0, 4, window + 8).astype(np.uint8)
    pairs = [allele_pair(tile, offset, 1, np.array([(tile[offset] + 1) % 4], dtype=np.uint8), window)
             for offset in range(TileLayout(window).margin, 40, 3)]
    full = VariantScorer(model, both_strands=False, reuse_prefix_state=False).score(pairs)
    fast = scorer.score(pairs)
    assert calls and all(shape[1] < window for shape in calls)
    np.testing.assert_allclose([s.llr for s in fast], [s.llr for s in full], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose([s.embdist for s in fast], [s.embdist for s in full], atol=1e-6, rtol=1e-5)
