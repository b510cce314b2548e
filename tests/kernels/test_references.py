"""The kernels' PyTorch references against naive oracles, and backend dispatch.

fftconv: torch.fft and block convolutions vs the fp64 tap-by-tap sum. selective_scan: chunked
parallel scan vs the sequential loop (outputs, final states and every gradient). causal_conv1d:
F.conv1d vs a naive loop, state carried across chunks, step-by-step inference.
"""

from __future__ import annotations

import importlib
import types

import pytest
import torch

from genossm.kernels import (
    BackendUnavailableError,
    causal_conv1d,
    causal_conv1d_step,
    direct_causal_conv,
    fftconv,
    fftconv_chunked,
    fftconv_ref,
    resolve_backend,
    selective_scan,
    selective_scan_chunked,
    selective_scan_ref,
)
from genossm.kernels.fftconv.reference import fast_fft_size
from tensor_checks import assert_close

# The subpackages share their names with the functions the package exports, so attribute access
# (genossm.kernels.fftconv) gives the function: fetch the modules from the import system instead.
fftconv_module = importlib.import_module("genossm.kernels.fftconv")
scan_module = importlib.import_module("genossm.kernels.selective_scan")
conv_module = importlib.import_module("genossm.kernels.causal_conv1d")

# relative L2 error allowed per compute dtype
TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-11}



def generator(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------- fftconv


def fftconv_inputs(L, Lk, *, with_D, with_gates, dtype=torch.float32, batch=2, H=3, seed=0):
    g = generator(seed)
    u = torch.randn(batch, H, L, generator=g, dtype=dtype)
    k = torch.randn(H, Lk, generator=g, dtype=dtype) / max(Lk, 1) ** 0.5
    D = torch.randn(H, generator=g, dtype=dtype) if with_D else None
    pre = torch.randn(batch, H, L, generator=g, dtype=dtype) if with_gates else None
    post = torch.randn(batch, H, L, generator=g, dtype=dtype) if with_gates else None
    return u, k, D, pre, post


@pytest.mark.parametrize("L", [1, 2, 7, 63, 64, 100, 257], ids=lambda v: f"L{v}")
@pytest.mark.parametrize("filter_kind", ["full", "short"])
@pytest.mark.parametrize("extras", ["plain", "D", "gates", "D+gates"])
def test_fftconv_ref_matches_direct_convolution(L, filter_kind, extras):
    Lk = L if filter_kind == "full" else max(1, L // 3)
    inputs = fftconv_inputs(L, Lk, with_D="D" in extras, with_gates="gates" in extras)
    expected = direct_causal_conv(*inputs)
    actual = fftconv_ref(*inputs)
    assert actual.shape == (2, 3, L) and actual.dtype == torch.float32
    assert_close(actual, expected, TOLERANCE[torch.float32], "fftconv_ref")


@pytest.mark.parametrize("L", [1, 5, 12], ids=lambda v: f"L{v}")
def test_fftconv_ref_gradcheck_fp64(L):
    inputs = fftconv_inputs(L, max(1, L - 2), with_D=True, with_gates=True, dtype=torch.float64)
    u, k, D, pre, post = inputs
    for t in (u, k, D, pre, post):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(fftconv_ref, (u, k, D, pre, post))


def test_fftconv_ref_gradients_match_direct_fp32():
    inputs = fftconv_inputs(100, 40, with_D=True, with_gates=True)
    inputs64 = [t.double().requires_grad_(True) for t in inputs]
    inputs32 = [t.clone().requires_grad_(True) for t in inputs]
    grad_out = torch.randn(2, 3, 100, generator=generator(1))
    direct_causal_conv(*inputs64).backward(grad_out.double())
    fftconv_ref(*inputs32).backward(grad_out)
    for name, a, b in zip(("u", "k", "D", "pregate", "postgate"), inputs32, inputs64):
        assert_close(a.grad, b.grad, 1e-4, f"grad {name}")


@pytest.mark.parametrize("L", [1, 2, 100, 257], ids=lambda v: f"L{v}")
@pytest.mark.parametrize("chunk_size", [1, 7, 16, 64, 1000], ids=lambda v: f"chunk{v}")
def test_fftconv_chunked_equals_ref(L, chunk_size):
    Lk = max(1, L // 2) if chunk_size == 7 else L  # one case with a filter shorter than the input
    inputs = fftconv_inputs(L, Lk, with_D=True, with_gates=True, dtype=torch.float64)
    assert_close(fftconv_chunked(*inputs, chunk_size=chunk_size), fftconv_ref(*inputs), 1e-12, "chunked")


def test_fftconv_chunked_gradients_equal_ref():
    inputs = fftconv_inputs(50, 30, with_D=True, with_gates=True, dtype=torch.float64)
    grads = []
    for conv in (fftconv_ref, lambda *a: fftconv_chunked(*a, chunk_size=8)):
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        conv(*leaves).square().sum().backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        assert_close(a, b, 1e-12, "chunked grad")


def test_fftconv_keeps_input_dtype_and_truncates_long_filters():
    u, k, _, _, _ = fftconv_inputs(20, 20, with_D=False, with_gates=False)
    long_k = torch.cat([k, torch.randn(3, 15, generator=generator(3))], dim=-1)  # taps past L
    assert_close(fftconv_ref(u, long_k), fftconv_ref(u, k), 1e-6, "long filter")
    y = fftconv(u.bfloat16(), k, backend="reference")
    assert y.dtype == torch.bfloat16
    assert_close(y.float(), fftconv_ref(u.bfloat16().float(), k), 1e-2, "bf16")


def test_fast_fft_size_is_smallest_5_smooth_size():
    def is_smooth(n):
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1

    for n in range(1, 400):
        expected = next(m for m in range(n, 2 * n + 2) if is_smooth(m))
        assert fast_fft_size(n) == expected, n


# --------------------------------------------------------------------------- selective scan


def scan_inputs(L, *, N=4, H=4, G=1, time_invariant=False, z=True, D=True, delta_bias=True,
                initial_state=False, dtype=torch.float32, batch=2, seed=0, n_states=None):
    """Scan arguments by name; time_invariant: False, True (B and C), "B" or "C"."""
    g = generator(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    inputs = dict(
        u=randn(batch, H, L),
        delta=randn(batch, H, L) * 0.5,
        A=-(torch.rand(H, N, generator=g, dtype=dtype) * 3 + 0.1),
        B=randn(H, N) if time_invariant in (True, "B") else randn(batch, G, N, L),
        C=randn(H, N) if time_invariant in (True, "C") else randn(batch, G, N, L),
        D=randn(H) if D else None,
        z=randn(batch, H, L) if z else None,
        delta_bias=randn(H) * 0.3 if delta_bias else None,
        initial_state=randn(n_states or batch, H, N) if initial_state else None,
    )
    if dtype == torch.float32:  # state and A are fp32 in every case (mamba_ssm's contract)
        inputs["A"] = inputs["A"].float()
    return inputs


SCAN_CASES = {
    "fp32-L1-N1": dict(L=1, N=1),
    "fp32-L7-N16": dict(L=7, N=16),
    "fp32-L63-groups2": dict(L=63, G=2),
    "fp32-L130-N16-init": dict(L=130, N=16, initial_state=True),
    "fp32-L100-time-invariant": dict(L=100, time_invariant=True),
    "fp32-L40-fixed-C-groups2": dict(L=40, time_invariant="C", G=2),
    "fp64-L41-fixed-B": dict(L=41, time_invariant="B", initial_state=True, dtype=torch.float64),
    "fp32-L65-bare": dict(L=65, z=False, D=False, delta_bias=False, softplus=False),
    "fp64-L1": dict(L=1, dtype=torch.float64),
    "fp64-L63-groups4-init": dict(L=63, H=8, G=4, initial_state=True, dtype=torch.float64),
    "fp64-L97-time-invariant-N1": dict(L=97, N=1, time_invariant=True, dtype=torch.float64),
    "fp64-L50-no-z": dict(L=50, z=False, initial_state=True, dtype=torch.float64),
}


BOTH_SCANS = [selective_scan_ref, selective_scan_chunked]


def as_leaves(inputs):
    """Fresh copies that record gradients (None stays None)."""
    return {n: None if t is None else t.clone().requires_grad_(True) for n, t in inputs.items()}


def run_scan(scan, inputs, softplus=True, **kwargs):
    return scan(**inputs, delta_softplus=softplus, return_last_state=True, **kwargs)


@pytest.mark.parametrize("case", list(SCAN_CASES), ids=str)
def test_selective_scan_chunked_matches_sequential(case):
    params = dict(SCAN_CASES[case])
    softplus = params.pop("softplus", True)
    dtype = params.get("dtype", torch.float32)
    inputs = scan_inputs(**params)
    grad_names = [name for name, t in inputs.items() if t is not None]
    results = []
    for scan, kwargs in ((selective_scan_ref, {}), (selective_scan_chunked, {"chunk_size": 16})):
        leaves = as_leaves(inputs)
        y, last = run_scan(scan, leaves, softplus, **kwargs)
        weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
        ((y * weights).sum() + last.square().sum()).backward()
        results.append((y, last, {n: leaves[n].grad for n in grad_names}))
    (y_ref, last_ref, grads_ref), (y, last, grads) = results
    tol = TOLERANCE[dtype]
    assert y.dtype == dtype and last.dtype == dtype and last.shape == last_ref.shape
    assert_close(y, y_ref, tol, "y")
    assert_close(last, last_ref, tol, "last_state")
    for name in grad_names:
        assert_close(grads[name], grads_ref[name], 10 * tol, f"grad {name}")


@pytest.mark.parametrize("scan", BOTH_SCANS, ids=["sequential", "chunked"])
def test_selective_scan_groups_map_consecutive_channels(scan):
    """Channel h reads B/C group h // (H // G), as mamba_ssm: like giving each channel its copy."""
    inputs = scan_inputs(20, H=6, G=3, N=2, dtype=torch.float64)
    per_channel = dict(inputs)
    for name in ("B", "C"):
        per_channel[name] = inputs[name].repeat_interleave(2, dim=1)  # (B, H, N, L): G = H
    y_grouped, last_grouped = run_scan(scan, inputs)
    y_expanded, last_expanded = run_scan(scan, per_channel)
    assert torch.equal(y_grouped, y_expanded) and torch.equal(last_grouped, last_expanded)
    # and channel 0 really ignores group 1: changing group 1 leaves channels 0 and 1 untouched
    changed = dict(inputs)
    changed["B"] = inputs["B"].clone()
    changed["B"][:, 1] += 1.0
    y_changed = run_scan(scan, changed)[0]
    assert torch.equal(y_changed[:, :2], y_grouped[:, :2])
    assert not torch.equal(y_changed[:, 2:4], y_grouped[:, 2:4])


def test_selective_scan_chunked_gradcheck_fp64():
    inputs = scan_inputs(9, N=2, H=2, initial_state=True, dtype=torch.float64, batch=1)
    names = list(inputs)
    leaves = [inputs[n].requires_grad_(True) for n in names]

    def scan(*tensors):
        y, last = selective_scan_chunked(
            **dict(zip(names, tensors)), delta_softplus=True, return_last_state=True, chunk_size=4
        )
        return y, last

    assert torch.autograd.gradcheck(scan, leaves)


@pytest.mark.parametrize("scan", BOTH_SCANS, ids=["sequential", "chunked"])
@pytest.mark.parametrize("split", [1, 37, 99], ids=lambda v: f"split{v}")
def test_selective_scan_split_in_two_equals_one_pass(scan, split):
    L = 100
    inputs = scan_inputs(L, N=8, initial_state=True, dtype=torch.float64)
    y_full, last_full = run_scan(scan, inputs)

    def part(sl):
        out = dict(inputs)
        for name in ("u", "delta", "z"):
            out[name] = inputs[name][..., sl]
        for name in ("B", "C"):
            out[name] = inputs[name][..., sl]
        return out

    first = part(slice(0, split))
    y1, state = run_scan(scan, first)
    second = part(slice(split, L))
    second["initial_state"] = state
    y2, last = run_scan(scan, second)
    assert_close(torch.cat([y1, y2], dim=-1), y_full, 1e-12, "y")
    assert_close(last, last_full, 1e-12, "last_state")


@pytest.mark.parametrize("with_initial_state", [False, True], ids=["zero-start", "initial-states"])
def test_selective_scan_cu_seqlens_resets_state_at_boundaries(with_initial_state):
    bounds = [0, 10, 10, 33, 57]  # includes an empty sequence
    L, n_seqs = bounds[-1], len(bounds) - 1
    inputs = scan_inputs(
        L, N=4, batch=1, dtype=torch.float64, initial_state=with_initial_state, n_states=n_seqs
    )
    cu_seqlens = torch.tensor(bounds, dtype=torch.int32)
    y_ref, last_ref = run_scan(selective_scan_ref, inputs, cu_seqlens=cu_seqlens)
    y, last = run_scan(selective_scan_chunked, inputs, cu_seqlens=cu_seqlens, chunk_size=8)
    assert last.shape == (n_seqs, 4, 4)
    assert_close(y, y_ref, 1e-12, "y")
    assert_close(last, last_ref, 1e-12, "last_state")
    # each sequence alone, as its own batch, gives the same numbers
    for seq, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        alone = dict(inputs)
        for name in ("u", "delta", "z", "B", "C"):
            alone[name] = inputs[name][..., start:end]
        alone["initial_state"] = inputs["initial_state"][seq : seq + 1] if with_initial_state else None
        y_alone, last_alone = run_scan(selective_scan_ref, alone)
        assert torch.allclose(y[..., start:end], y_alone, rtol=0, atol=1e-12), f"sequence {seq}"
        assert torch.allclose(last[seq : seq + 1], last_alone, rtol=0, atol=1e-12), f"last state {seq}"
    # the empty sequence ends where it starts
    expected_empty = inputs["initial_state"][1] if with_initial_state else torch.zeros(4, 4).double()
    assert torch.equal(last[1], expected_empty)


def test_selective_scan_cu_seqlens_gradients_match_sequential():
    cu_seqlens = torch.tensor([0, 20, 21, 45])
    inputs = scan_inputs(45, N=3, batch=1, dtype=torch.float64)
    grads = []
    for scan, kwargs in ((selective_scan_ref, {}), (selective_scan_chunked, {"chunk_size": 8})):
        leaves = as_leaves(inputs)
        y, last = run_scan(scan, leaves, cu_seqlens=cu_seqlens, **kwargs)
        (y.sin().sum() + last.sum()).backward()
        grads.append({n: t.grad for n, t in leaves.items() if t is not None})
    for name in grads[0]:
        assert_close(grads[1][name], grads[0][name], 1e-11, f"grad {name}")


def test_selective_scan_chunked_survives_steep_decay():
    """delta * A of -100s inside one chunk: the masked segment sums must not overflow."""
    inputs = scan_inputs(64, N=4, z=False, delta_bias=False)
    inputs["A"] = torch.full((4, 4), -80.0)
    inputs["delta"] = inputs["delta"].abs() * 10
    leaves = as_leaves(inputs)
    y, last = run_scan(selective_scan_chunked, leaves, softplus=False, chunk_size=64)
    (y.sum() + last.sum()).backward()
    y_ref, last_ref = run_scan(selective_scan_ref, inputs, softplus=False)
    assert_close(y, y_ref, 1e-5, "y")
    for name, t in leaves.items():
        if t is not None:
            assert torch.isfinite(t.grad).all(), name


def test_selective_scan_rejects_bad_shapes():
    inputs = scan_inputs(10, batch=2)
    with pytest.raises(ValueError, match="batch of 1"):
        selective_scan_chunked(**inputs, cu_seqlens=torch.tensor([0, 5, 10]))
    inputs = scan_inputs(10, batch=1, H=4, G=1)
    inputs["B"] = torch.randn(1, 3, 4, 10)
    with pytest.raises(ValueError, match="G dividing"):
        selective_scan_ref(**inputs)
    inputs = scan_inputs(10, batch=1)
    with pytest.raises(ValueError, match="from 0 to L=10"):
        selective_scan_ref(**inputs, cu_seqlens=torch.tensor([0, 6, 4, 10]))


def test_selective_scan_public_returns_y_or_pair_in_input_dtype():
    inputs = scan_inputs(33, N=2)
    y = selective_scan(**inputs, delta_softplus=True, backend="reference")
    y_pair, last = selective_scan(**inputs, delta_softplus=True, return_last_state=True)
    assert torch.equal(y, y_pair) and last.shape == (2, 4, 2)
    half = {n: t if t is None or n == "A" else t.bfloat16() for n, t in inputs.items()}
    assert selective_scan(**half, backend="reference").dtype == torch.bfloat16


# ---------------------------------------------------------------------------- causal conv1d


def naive_causal_conv1d(x, weight, bias, activation, initial_state):
    batch, H, L = x.shape
    W = weight.shape[1]
    history = torch.zeros(batch, H, W - 1) if initial_state is None else initial_state
    padded = torch.cat([history.double(), x.double()], dim=-1)
    y = torch.zeros(batch, H, L, dtype=torch.float64)
    for t in range(L):
        for w in range(W):
            y[:, :, t] += weight[:, w].double() * padded[:, :, t + w]
        if bias is not None:
            y[:, :, t] += bias.double()
    return torch.nn.functional.silu(y) if activation == "silu" else y


def conv_inputs(L, W, *, batch=2, H=3, with_bias=True, with_state=False, dtype=torch.float32, seed=0):
    g = generator(seed)
    x = torch.randn(batch, H, L, generator=g, dtype=dtype)
    weight = torch.randn(H, W, generator=g, dtype=dtype)
    bias = torch.randn(H, generator=g, dtype=dtype) if with_bias else None
    state = torch.randn(batch, H, W - 1, generator=g, dtype=dtype) if with_state else None
    return x, weight, bias, state


@pytest.mark.parametrize("W", [2, 3, 4], ids=lambda v: f"W{v}")
@pytest.mark.parametrize("L", [1, 2, 7, 33], ids=lambda v: f"L{v}")
@pytest.mark.parametrize("activation", [None, "silu"], ids=["linear", "silu"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-start", "initial-state"])
def test_causal_conv1d_matches_naive_loop(W, L, activation, with_state):
    x, weight, bias, state = conv_inputs(L, W, with_bias=W != 3, with_state=with_state)
    y, final = causal_conv1d(x, weight, bias, activation, state, return_final_state=True)
    assert_close(y, naive_causal_conv1d(x, weight, bias, activation, state), 1e-6, "y")
    history = torch.zeros(2, 3, W - 1) if state is None else state
    expected_final = torch.cat([history, x], dim=-1)[..., -(W - 1):]
    assert torch.equal(final, expected_final)


@pytest.mark.parametrize("W", [2, 4], ids=lambda v: f"W{v}")
@pytest.mark.parametrize(
    "chunks",
    [(1, 1, 1, 9), (5, 7), (2, 10)],
    ids=lambda c: "chunks" + "-".join(map(str, c)),
)
def test_causal_conv1d_state_carries_across_chunks(W, chunks):
    x, weight, bias, state = conv_inputs(sum(chunks), W, with_state=True)
    y_full, final_full = causal_conv1d(x, weight, bias, "silu", state, return_final_state=True)
    pieces, start = [], 0
    for length in chunks:
        piece = x[..., start : start + length]
        y, state = causal_conv1d(piece, weight, bias, "silu", state, return_final_state=True)
        pieces.append(y)
        start += length
    assert_close(torch.cat(pieces, dim=-1), y_full, 1e-6, "y")
    assert torch.equal(state, final_full)


@pytest.mark.parametrize("W", [2, 3, 4], ids=lambda v: f"W{v}")
def test_causal_conv1d_step_by_step_equals_full_pass(W):
    x, weight, bias, state = conv_inputs(12, W, with_state=True)
    y_full, final_full = causal_conv1d(x, weight, bias, "silu", state, return_final_state=True)
    outputs = []
    for t in range(x.shape[-1]):
        y_t, state = causal_conv1d_step(x[:, :, t], state, weight, bias, "silu")
        outputs.append(y_t)
    assert_close(torch.stack(outputs, dim=-1), y_full, 1e-6, "y")
    assert torch.equal(state, final_full)


def test_causal_conv1d_gradcheck_fp64():
    x, weight, bias, state = conv_inputs(6, 4, dtype=torch.float64, with_state=True)
    leaves = [t.requires_grad_(True) for t in (x, weight, bias, state)]

    def conv(x, weight, bias, state):
        return causal_conv1d(x, weight, bias, "silu", state, return_final_state=True)

    assert torch.autograd.gradcheck(conv, leaves)


def test_causal_conv1d_rejects_bad_arguments():
    x, weight, bias, _ = conv_inputs(5, 4)
    with pytest.raises(ValueError, match="W in 2..4"):
        causal_conv1d(x, torch.randn(3, 5))
    with pytest.raises(ValueError, match="activation"):
        causal_conv1d(x, weight, bias, "relu")


# -------------------------------------------------------------------------------- dispatch


CUDA_LIKE = types.SimpleNamespace(is_cuda=True)  # resolve_backend only asks the tensor is_cuda


def test_resolve_backend_auto_prefers_triton_on_cuda_only(monkeypatch):
    monkeypatch.delenv("GENOSSM_KERNELS", raising=False)
    cpu = torch.zeros(1)
    assert resolve_backend(None, cpu, True) == "reference"
    assert resolve_backend("auto", CUDA_LIKE, True) == "triton"
    assert resolve_backend(None, CUDA_LIKE, False) == "reference"
    assert resolve_backend("triton", cpu, True) == "triton"  # interpreter runs on CPU tensors
    assert resolve_backend("reference", CUDA_LIKE, True) == "reference"


def test_resolve_backend_reads_env_var_and_argument_wins(monkeypatch):
    monkeypatch.setenv("GENOSSM_KERNELS", "reference")
    assert resolve_backend(None, CUDA_LIKE, True) == "reference"
    monkeypatch.setenv("GENOSSM_KERNELS", "Triton")
    assert resolve_backend(None, torch.zeros(1), True) == "triton"
    assert resolve_backend("reference", torch.zeros(1), True) == "reference"
    monkeypatch.setenv("GENOSSM_KERNELS", "cuda")
    with pytest.raises(ValueError, match="GENOSSM_KERNELS"):
        resolve_backend(None, torch.zeros(1), True)
    with pytest.raises(ValueError, match="unknown kernel backend 'fast'"):
        resolve_backend("fast", torch.zeros(1), True)


def call_fftconv(**kwargs):
    return fftconv(*fftconv_inputs(8, 8, with_D=True, with_gates=False)[:3], **kwargs)


def call_selective_scan(**kwargs):
    return selective_scan(**scan_inputs(8), **kwargs)


def call_causal_conv1d(**kwargs):
    return causal_conv1d(*conv_inputs(8, 4)[:3], **kwargs)


# op -> (its module, the fast path's attribute there, a call of the public function)
OPS = {
    "fftconv": (fftconv_module, "fftconv_triton", call_fftconv),
    "selective_scan": (scan_module, "selective_scan_triton", call_selective_scan),
    "causal_conv1d": (conv_module, "causal_conv1d_triton", call_causal_conv1d),
}


@pytest.mark.parametrize("op", list(OPS), ids=str)
def test_forced_triton_without_fast_path_raises_with_reason(op, monkeypatch):
    module, attribute, call = OPS[op]
    monkeypatch.setattr(module, attribute, None)
    monkeypatch.setattr(module, "TRITON_IMPORT_ERROR", "ModuleNotFoundError: No module named 'triton'")
    with pytest.raises(BackendUnavailableError, match=f"{op}: .*No module named 'triton'"):
        call(backend="triton")
    monkeypatch.setenv("GENOSSM_KERNELS", "triton")
    with pytest.raises(BackendUnavailableError, match="GENOSSM_KERNELS"):
        call()
    monkeypatch.setenv("GENOSSM_KERNELS", "auto")
    assert call().shape[-1] == 8  # auto falls back to the reference


@pytest.mark.parametrize("op", list(OPS), ids=str)
def test_dispatch_calls_fast_path_only_when_chosen(op, monkeypatch):
    module, attribute, call = OPS[op]
    calls = []

    def fake_fast_path(*args):
        calls.append(len(args))
        return torch.zeros(1)

    monkeypatch.delenv("GENOSSM_KERNELS", raising=False)
    monkeypatch.setattr(module, attribute, fake_fast_path)
    call()  # CPU tensors in auto mode: reference
    assert calls == []
    assert call(backend="triton").shape == (1,)
    expected_args = {"fftconv": 5, "selective_scan": 12, "causal_conv1d": 6}[op]
    assert calls == [expected_args]  # the public signature minus `backend`
