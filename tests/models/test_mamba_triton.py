"""Mamba models on the Triton selective scan (the default on CUDA) against the PyTorch reference
path: logits and every parameter's gradient, with the sequential-time backward forced
(`bwd_kernel="seq!"`; it is the default for 16-bit inputs, which CPU tests do not run) and with the
chunk backward. On CPU the kernels run in the Triton interpreter (conftest.py), forced with
GENOSSM_KERNELS=triton; on a GPU both paths run there."""

from __future__ import annotations

import pytest

from genossm.kernels.selective_scan import chunk_scan
from genossm.kernels.selective_scan.chunk_scan import scan_config
from kernel_paths import logits_and_grads, tiny_model, tokens
from tensor_checks import assert_close

VARIANTS = {
    "causal": dict(),
    "bidirectional_rc": dict(bidirectional=True, rc_equivariant=True, objective="masked"),
}


@pytest.mark.parametrize("variant, backward", [
    ("causal", "seq!"), ("causal", "chunk"), ("bidirectional_rc", "seq!")])
def test_model_gradients_match_between_triton_and_reference(monkeypatch, variant, backward):
    calls = []
    original = chunk_scan._seq_scan_backward
    monkeypatch.setattr(chunk_scan, "_seq_scan_backward",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    model = tiny_model(arch="mamba", d_model=16, n_layers=1, max_length=64, **VARIANTS[variant])
    inputs = tokens(37, seed=1)
    monkeypatch.setenv("GENOSSM_KERNELS", "reference")
    expected_logits, expected_grads = logits_and_grads(model, inputs)
    monkeypatch.setenv("GENOSSM_KERNELS", "triton")
    with scan_config(bwd_kernel=backward):
        logits, grads = logits_and_grads(model, inputs)
    assert bool(calls) == (backward == "seq!"), "the backward asked for did not run"
    assert_close(logits, expected_logits, 1e-5, "logits")
    assert expected_grads.keys() == grads.keys()
    for name, want in expected_grads.items():
        assert_close(grads[name], want, 1e-4, f"d {name}", floor=1e-6)
