"""The fftconv fast path (cuFFT + fused Triton passes) against fp64 direct convolution.

On CPU the Triton kernels run under TRITON_INTERPRET=1 (tests/conftest.py) and torch.fft stands in
for cuFFT, so the whole function, forward and every gradient, is checked in CI at small lengths.
GPU tests check real lengths (2^10 .. 2^22) against fp64 torch.fft.
"""

from __future__ import annotations

import os

import pytest
import torch

from genossm.kernels.dispatch import ENV_VAR, resolve_backend
from genossm.kernels.fftconv import fftconv, fftconv_ref
from genossm.kernels.fftconv import fft_conv
from genossm.kernels.fftconv.reference import direct_causal_conv
from genossm.kernels.fftconv.fft_conv import fftconv_triton
from tensor_checks import assert_close

# Small-shape tests run the real kernels where a GPU exists (Triton has no CPU backend outside
# the interpreter, which conftest only turns on without a GPU).
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# Relative L2 error allowed per input dtype (output rounding dominates below fp32).
TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 3e-3, torch.bfloat16: 2e-2}




def make_inputs(B, H, L, Lk, *, dtype, device=DEVICE, skip=True, gates=True, seed=0):
    """Fresh random inputs (never zeros: they hide unwritten outputs), all requiring grad."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape, dt=dtype):
        return torch.randn(*shape, generator=generator).to(device=device, dtype=dt)

    inputs = {
        "u": rand(B, H, L),
        "k": rand(H, Lk, dt=torch.float64 if dtype == torch.float64 else torch.float32),
        "D": rand(H, dt=torch.float64 if dtype == torch.float64 else torch.float32) if skip else None,
        "pregate": rand(B, H, L) if gates else None,
        "postgate": rand(B, H, L) if gates else None,
    }
    for value in inputs.values():
        if value is not None:
            value.requires_grad_(True)
    return inputs


def outputs_and_grads(function, inputs, dy):
    names = [name for name, value in inputs.items() if value is not None]
    y = function(**inputs)
    grads = torch.autograd.grad(y, [inputs[name] for name in names], dy.to(y.dtype))
    return y, dict(zip(names, grads))


def fp64_copy(inputs):
    return {
        name: None if value is None else value.detach().double().requires_grad_(True)
        for name, value in inputs.items()
    }


def assert_matches_direct(inputs, dtype, seed=1):
    B, H, L = inputs["u"].shape
    dy = torch.randn(B, H, L, generator=torch.Generator().manual_seed(seed))
    dy = dy.to(inputs["u"].device)
    y, grads = outputs_and_grads(fftconv_triton, inputs, dy)
    y_ref, grads_ref = outputs_and_grads(direct_causal_conv, fp64_copy(inputs), dy.double())
    tolerance = TOLERANCE[dtype]
    assert y.dtype == inputs["u"].dtype and y.shape == (B, H, L)
    assert_close(y, y_ref, tolerance, "output")
    for name, grad in grads.items():
        assert grad.shape == inputs[name].shape, name
        assert torch.isfinite(grad).all(), name
        # Gradients of reductions (k, D) sum many rounded terms: allow a little more.
        assert_close(grad, grads_ref[name], 4 * tolerance, name)


@pytest.mark.parametrize("L", [1, 7, 31, 64, 100], ids=lambda L: f"L{L}")
@pytest.mark.parametrize(
    "skip,gates", [(True, True), (False, False), (True, False)], ids=["D+gates", "plain", "D"]
)
def test_matches_direct_convolution_fp32(L, skip, gates):
    inputs = make_inputs(2, 3, L, L, dtype=torch.float32, skip=skip, gates=gates)
    assert_matches_direct(inputs, torch.float32)


@pytest.mark.parametrize("L,Lk", [(31, 5), (100, 1), (64, 63)], ids=lambda v: str(v))
def test_filter_shorter_than_sequence(L, Lk):
    inputs = make_inputs(2, 3, L, Lk, dtype=torch.float32)
    assert_matches_direct(inputs, torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_inputs(dtype):
    inputs = make_inputs(2, 3, 100, 100, dtype=dtype)
    assert_matches_direct(inputs, dtype)


def test_filter_longer_than_sequence_is_truncated():
    inputs = make_inputs(1, 2, 20, 33, dtype=torch.float32)
    y, grads = outputs_and_grads(fftconv_triton, inputs, torch.ones(1, 2, 20, device=DEVICE))
    expected = direct_causal_conv(*(v.detach().double() for v in inputs.values()))
    assert_close(y, expected, TOLERANCE[torch.float32])
    assert torch.equal(grads["k"][:, 20:].cpu(), torch.zeros(2, 13)), "taps past L never reach y"


def test_channel_chunks_give_the_same_result(monkeypatch):
    """A tiny budget forces one channel per chunk: chunk offsets and dD partials must line up."""
    inputs = make_inputs(3, 4, 50, 50, dtype=torch.float32, seed=5)
    dy = torch.randn(3, 4, 50, device=DEVICE)
    y_whole, grads_whole = outputs_and_grads(fftconv_triton, inputs, dy)
    monkeypatch.setattr(fft_conv, "CHUNK_BUDGET_BYTES", 1)
    assert len(list(fft_conv._channel_chunks(3, 4, 128, torch.float32))) == 4
    y_chunked, grads_chunked = outputs_and_grads(fftconv_triton, inputs, dy)
    assert_close(y_chunked, y_whole, 1e-6)
    for name in grads_whole:
        assert_close(grads_chunked[name], grads_whole[name], 1e-6, name)


def test_padded_rows_write_zero_tails_once_then_heads_only():
    """Later fills skip the zero tail: it must still be zero, and the heads fully rewritten."""
    x = torch.randn(2, 3, 40, device=DEVICE)
    rows = fft_conv._PaddedRows(2 * 3, 3000, x, torch.float32)
    rows.buffer.fill_(float("nan"))  # poison: every element must be written or already zero
    first = rows.fill(x, None, 2, 0, 3).clone()
    assert torch.equal(first.view(2, 3, -1)[..., :40], x)
    assert torch.count_nonzero(first.view(2, 3, -1)[..., 40:]) == 0
    rows.buffer[:, :40].fill_(float("nan"))
    second = rows.fill(x, None, 2, 1, 2)  # a smaller chunk (channels 1, 2): a prefix of the rows
    assert torch.equal(second.view(2, 2, -1)[..., :40], x[:, 1:])
    assert torch.count_nonzero(second[:, 40:]) == 0


def test_length_over_the_grid_limit_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(fft_conv, "MAX_LENGTH", 16)
    inputs = make_inputs(1, 1, 17, 17, dtype=torch.float32)
    with pytest.raises(ValueError, match="backend='reference'"):
        fftconv_triton(**inputs)


def test_gradcheck_float64():
    inputs = make_inputs(1, 2, 9, 6, dtype=torch.float64)
    names = list(inputs)
    assert torch.autograd.gradcheck(
        lambda *args: fftconv_triton(**dict(zip(names, args))),
        tuple(inputs.values()),
        eps=1e-6,
        atol=1e-7,
    )


def test_non_contiguous_input_and_public_dispatch():
    inputs = make_inputs(2, 3, 40, 40, dtype=torch.float32, seed=3)
    transposed = inputs["u"].detach().transpose(0, 1).contiguous().transpose(0, 1)
    assert not transposed.is_contiguous()
    y = fftconv(transposed, inputs["k"], inputs["D"], backend="triton")
    y_ref = fftconv_ref(transposed, inputs["k"], inputs["D"])
    assert_close(y, y_ref, TOLERANCE[torch.float32])


@needs_cuda
@pytest.mark.parametrize("log2_L", [10, 14, 17, 20, 22], ids=lambda v: f"L2^{v}")
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"]
)
def test_cuda_matches_fp64_fft(log2_L, dtype):
    L = 2**log2_L
    H = 4 if log2_L >= 20 else 16
    inputs = make_inputs(2, H, L, L, dtype=dtype, device="cuda", seed=log2_L)
    dy = torch.randn(2, H, L, device="cuda")
    y, grads = outputs_and_grads(fftconv_triton, inputs, dy)
    y_ref, grads_ref = outputs_and_grads(fftconv_ref, fp64_copy(inputs), dy.double())
    tolerance = TOLERANCE[dtype]
    assert_close(y, y_ref, tolerance)
    for name, grad in grads.items():
        assert_close(grad, grads_ref[name], 4 * tolerance, name)


@needs_cuda
def test_cuda_odd_length_and_dispatch_picks_triton():
    inputs = make_inputs(3, 8, 100_003, 77_777, dtype=torch.bfloat16, device="cuda")
    if os.environ.get(ENV_VAR, "auto") in ("", "auto"):
        assert resolve_backend(None, inputs["u"], fftconv_triton is not None) == "triton"
    y = fftconv(**inputs)  # auto backend on CUDA -> the fast path
    y_ref = fftconv_ref(**fp64_copy(inputs))
    assert_close(y, y_ref, TOLERANCE[torch.bfloat16])
