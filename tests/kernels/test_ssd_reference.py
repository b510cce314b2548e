"""Mamba-2's SSD: the attention form and the chunked PyTorch algorithm against the sequential
recurrence (outputs, final states and every gradient), on odd sizes, chunk boundaries, grouped
B/C, initial states and packed sequences with an empty one."""

from __future__ import annotations

import sys

import pytest
import torch

from genossm.kernels import BackendUnavailableError, ssd, ssd_chunked, ssd_quadratic, ssd_ref
from tensor_checks import assert_close

# relative L2 error allowed per compute dtype (outputs and gradients)
TOLERANCE = {torch.float32: 3e-5, torch.float64: 1e-10}
GRAD_NAMES = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")


def chunked(chunk_size):
    def run(*args):
        return ssd_chunked(*args, chunk_size=chunk_size)
    run.__name__ = f"chunked{chunk_size}"
    return run


IMPLEMENTATIONS = {"quadratic": ssd_quadratic, "chunked16": chunked(16), "chunked5": chunked(5)}


def ssd_inputs(L, *, batch=2, H=3, P=4, G=1, N=5, D_shape="H", with_z=True, initial=True,
               sequences=None, dtype=torch.float64, seed=0):
    """Random inputs as a dict of leaf tensors (gradients on), in the public argument order."""
    g = torch.Generator().manual_seed(seed)
    # parameters and states stay fp32 under half-precision inputs, as in the model
    param_dtype = torch.float64 if dtype == torch.float64 else torch.float32

    def randn(*shape, scale=1.0, to=dtype):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(to)

    rows = batch if sequences is None else sequences
    inputs = {
        "x": randn(batch, L, H, P),
        "dt": randn(batch, L, H, scale=0.5),
        "A": (-torch.rand(H, generator=g, dtype=torch.float64) * 2 - 0.1).to(param_dtype),
        "B": randn(batch, L, G, N, scale=0.5),
        "C": randn(batch, L, G, N, scale=0.5),
        "D": None if D_shape is None else randn(*((H,) if D_shape == "H" else (H, P)), to=param_dtype),
        "z": randn(batch, L, H, P) if with_z else None,
        "dt_bias": randn(H, scale=0.5, to=param_dtype),
        "initial_states": randn(rows, H, P, N, to=param_dtype) if initial else None,
    }
    for t in inputs.values():
        if t is not None:
            t.requires_grad_(True)
    return inputs


def run(implementation, inputs, cu_seqlens=None):
    i = inputs
    return implementation(i["x"], i["dt"], i["A"], i["B"], i["C"], i["D"], i["z"], i["dt_bias"], True,
                          i["initial_states"], True, cu_seqlens)


def outputs_and_grads(implementation, inputs, cu_seqlens=None, seed=1):
    y, final = run(implementation, inputs, cu_seqlens)
    g = torch.Generator().manual_seed(seed)
    dy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.dtype)
    dfinal = torch.randn(final.shape, generator=g, dtype=torch.float64).to(final.dtype)
    leaves = [inputs[name] for name in GRAD_NAMES if inputs[name] is not None]
    grads = torch.autograd.grad((y * dy).sum() + (final * dfinal).sum(), leaves, allow_unused=True)
    names = [name for name in GRAD_NAMES if inputs[name] is not None]
    return y, final, dict(zip(names, grads))


def check_against_oracle(implementation, inputs, cu_seqlens=None, tol=None):
    tol = TOLERANCE[inputs["x"].dtype] if tol is None else tol
    y, final, grads = outputs_and_grads(implementation, inputs, cu_seqlens)
    y_ref, final_ref, grads_ref = outputs_and_grads(ssd_ref, inputs, cu_seqlens)
    assert y.dtype == inputs["x"].dtype and y.shape == inputs["x"].shape
    assert_close(y, y_ref, tol, "y")
    assert_close(final, final_ref, tol, "final_states")
    for name, expected in grads_ref.items():
        actual = grads[name]
        if expected is None:  # e.g. nothing reaches an input at L = 0
            continue
        assert_close(actual, expected, tol, f"d{name}", floor=1e-12)


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS), ids=str)
@pytest.mark.parametrize("L", [1, 5, 15, 16, 17, 37], ids=lambda v: f"L{v}")
def test_matches_recurrence(implementation, L):
    check_against_oracle(IMPLEMENTATIONS[implementation], ssd_inputs(L))


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS), ids=str)
@pytest.mark.parametrize(
    "options",
    [dict(H=4, G=2), dict(H=6, G=3, P=2, N=3), dict(D_shape="HP"), dict(D_shape=None, with_z=False),
     dict(initial=False), dict(batch=1, H=1, P=1, N=1)],
    ids=["G2", "G3-P2-N3", "D-HP", "no-D-no-z", "no-initial", "all-1"],
)
def test_options_match_recurrence(implementation, options):
    check_against_oracle(IMPLEMENTATIONS[implementation], ssd_inputs(21, **options))


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS), ids=str)
@pytest.mark.parametrize("initial", [True, False], ids=["initial", "zero-start"])
def test_packed_sequences_with_an_empty_one(implementation, initial):
    cu_seqlens = torch.tensor([0, 5, 5, 21, 37, 38])  # lengths 5, 0, 16, 16, 1
    inputs = ssd_inputs(38, batch=1, H=4, G=2, sequences=5, initial=initial)
    check_against_oracle(IMPLEMENTATIONS[implementation], inputs, cu_seqlens)


def test_packed_equals_separate_calls():
    cu_seqlens = torch.tensor([0, 7, 7, 30])
    inputs = ssd_inputs(30, batch=1, sequences=3)
    y, final = run(chunked(8), inputs, cu_seqlens)
    for index, (start, end) in enumerate([(0, 7), (7, 7), (7, 30)]):
        piece = {k: v for k, v in inputs.items()}
        for name in ("x", "dt", "B", "C", "z"):
            piece[name] = inputs[name][:, start:end]
        piece["initial_states"] = inputs["initial_states"][index:index + 1]
        y_seq, final_seq = run(ssd_ref, piece)
        assert_close(y[:, start:end], y_seq, 1e-12, f"y of sequence {index}") if end > start else None
        assert_close(final[index:index + 1], final_seq, 1e-12, f"final state of sequence {index}")
    # the empty sequence keeps its initial state
    torch.testing.assert_close(final[1], inputs["initial_states"][1], rtol=0, atol=0)


def test_only_empty_sequences():
    inputs = ssd_inputs(0, batch=1, sequences=2)
    y, final = run(chunked(4), inputs, torch.tensor([0, 0, 0]))
    assert y.shape == (1, 0, 3, 4)
    torch.testing.assert_close(final, inputs["initial_states"].detach())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_low_precision_inputs(dtype):
    """Half-precision inputs compute in fp32 and return x's dtype; fp32 states."""
    inputs = ssd_inputs(37, H=4, G=2, dtype=dtype)
    tol = {torch.float32: 3e-5, torch.bfloat16: 1.5e-2, torch.float16: 2e-3}[dtype]
    y, final = run(chunked(16), inputs)
    y_ref, final_ref = run(ssd_ref, inputs)
    assert y.dtype == dtype and final.dtype == torch.float32
    assert_close(y, y_ref, tol, "y")
    assert_close(final, final_ref, 3e-5, "final_states")


def test_chunk_size_does_not_change_the_result():
    inputs = ssd_inputs(50, H=2)
    y16, f16 = run(chunked(16), inputs)
    for size in (1, 3, 64, 128):
        y, f = run(chunked(size), inputs)
        assert_close(y, y16, 1e-12, f"y at chunk size {size}")
        assert_close(f, f16, 1e-12, f"final state at chunk size {size}")


def test_steep_decay_stays_finite():
    """dt * A summed over a chunk far below exp's range: decays underflow to 0, never NaN."""
    inputs = ssd_inputs(40, dtype=torch.float32)
    with torch.no_grad():
        inputs["A"].fill_(-300.0)
    check_against_oracle(chunked(16), inputs, tol=1e-4)


def test_dispatch_reference_backend_and_chunk_size():
    inputs = ssd_inputs(9, dtype=torch.float32)
    i = inputs
    y = ssd(i["x"], i["dt"], i["A"], i["B"], i["C"], i["D"], i["z"], i["dt_bias"], True,
            backend="reference", chunk_size=4)
    assert_close(y, ssd_ref(i["x"], i["dt"], i["A"], i["B"], i["C"], i["D"], i["z"], i["dt_bias"], True),
                 TOLERANCE[torch.float32])


@pytest.mark.parametrize(
    "change, message",
    [(dict(A=torch.zeros(3, 1)), "A must be"), (dict(B=torch.zeros(2, 9, 2, 5)), "G dividing"),
     (dict(dt=torch.zeros(2, 9, 4)), "dt must be"), (dict(initial_states=torch.zeros(1, 3, 4, 5)), "initial_states")],
    ids=["A", "groups", "dt", "initial_states"],
)
def test_shape_errors_name_the_argument(change, message):
    inputs = {k: (v.detach() if v is not None else None) for k, v in ssd_inputs(9, dtype=torch.float32).items()}
    inputs.update(change)
    with pytest.raises(ValueError, match=message):
        run(chunked(4), inputs)


def test_forcing_a_missing_triton_path_names_the_reason(monkeypatch):
    # the package, not the function `genossm.kernels.ssd` that shadows its name
    ssd_package = sys.modules["genossm.kernels.ssd"]
    monkeypatch.setattr(ssd_package, "ssd_triton", None)
    monkeypatch.setattr(ssd_package, "TRITON_IMPORT_ERROR", "ModuleNotFoundError: No module named 'triton'")
    i = ssd_inputs(4, dtype=torch.float32)
    with pytest.raises(BackendUnavailableError, match="ssd: the Triton backend was requested.*triton"):
        ssd(i["x"], i["dt"], i["A"], i["B"], i["C"], backend="triton")
