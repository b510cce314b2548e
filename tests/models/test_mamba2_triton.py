"""Mamba-2 models on the Triton SSD path (the default on CUDA) against the PyTorch reference path:
logits, recurrent states and every parameter's gradient. On CPU the kernels run in the Triton
interpreter (conftest.py), forced with GENOSSM_KERNELS=triton; on a GPU both paths run there
(compiled Triton takes no CPU tensors). Tiny models built in-test."""

from __future__ import annotations

import pytest
import torch

from genossm.kernels.ssd import ssd_triton
from kernel_paths import logits_and_grads, tiny_model, tokens
from tensor_checks import assert_close

# 4 heads of 16 channels in 2 groups, d_state 16; chunks of 8 in the config run as 16 in the
# kernels, so the 37-token inputs cross chunk boundaries on both paths
SSD = {"d_state": 16, "headdim": 16, "ngroups": 2, "chunk_size": 8}


def tiny_mamba2(bidirectional: bool):
    return tiny_model(arch="mamba2", d_model=32, n_layers=1, max_length=64, mamba2=dict(SSD),
                      bidirectional=bidirectional, objective="masked" if bidirectional else "causal")


@pytest.mark.parametrize("bidirectional", [False, True], ids=["causal", "bidirectional"])
def test_model_gradients_match_between_triton_and_reference(monkeypatch, bidirectional):
    assert ssd_triton is not None
    model = tiny_mamba2(bidirectional)
    inputs = tokens(37, seed=1)
    monkeypatch.setenv("GENOSSM_KERNELS", "reference")
    expected_logits, expected_grads = logits_and_grads(model, inputs)
    monkeypatch.setenv("GENOSSM_KERNELS", "triton")
    logits, grads = logits_and_grads(model, inputs)
    assert_close(logits, expected_logits, 1e-5, "logits")
    for name, want in expected_grads.items():
        assert_close(grads[name], want, 1e-4, f"d {name}", floor=1e-6)


def test_forward_with_state_on_triton_equals_the_reference(monkeypatch):
    """Prefix states (initial and final SSD states) through the kernels, as `genossm score` uses them."""
    model = tiny_mamba2(False).eval()
    inputs = tokens(41, seed=3)
    results = {}
    for backend in ("reference", "triton"):
        monkeypatch.setenv("GENOSSM_KERNELS", backend)
        with torch.no_grad():
            _, _, state = model.forward_with_state(inputs[:, :19], None)
            logits, _, state = model.forward_with_state(inputs[:, 19:], state)
        results[backend] = (logits, state.layers[-1].ssm)
    assert_close(results["triton"][0], results["reference"][0], 1e-5, "logits after the prefix")
    assert_close(results["triton"][1], results["reference"][1], 1e-5, "final SSD state")
