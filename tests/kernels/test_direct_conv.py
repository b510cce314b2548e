"""Triton causal conv1d against the F.conv1d reference: outputs, final states, every gradient.

On CPU the kernels run under TRITON_INTERPRET=1 (set by conftest.py) on tiny shapes; the `cuda`
tests repeat the checks at real shapes.
"""

from __future__ import annotations

import pytest
import torch

from genossm.kernels.causal_conv1d import causal_conv1d, causal_conv1d_ref
from genossm.kernels.causal_conv1d.direct_conv import causal_conv1d_triton
from tensor_checks import assert_close, relative_error

# relative L2 error allowed, by input dtype: (outputs, gradients)
TOLERANCE = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (1e-2, 1e-2)}

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# the tiny cases run in the interpreter on CPU (CI), compiled on a GPU where there is one
TINY_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def make_inputs(batch, H, L, W, dtype, with_bias, with_state, device=TINY_DEVICE, seed=0):
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype).requires_grad_()

    return dict(
        x=rand(batch, H, L),
        weight=rand(H, W),
        bias=rand(H) if with_bias else None,
        initial_state=rand(batch, H, W - 1) if with_state else None,
    )




def run_and_grad(conv, tensors, activation, seed=1):
    y, final_state = conv(**tensors, activation=activation, return_final_state=True)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    loss = sum((o.float() * torch.randn(o.shape, generator=gen).to(o.device)).sum()
               for o in (y, final_state))
    leaves = {k: v for k, v in tensors.items() if v is not None}
    return (y, final_state), dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))


def check(tensors, activation, dtype):
    out_tol, grad_tol = TOLERANCE[dtype]
    outputs, grads = run_and_grad(causal_conv1d_triton, tensors, activation)
    expected_outputs, expected_grads = run_and_grad(causal_conv1d_ref, tensors, activation)
    for got, want in zip(outputs, expected_outputs):
        assert got.dtype == want.dtype and relative_error(got, want) < out_tol
    for name, want in expected_grads.items():
        assert grads[name].dtype == want.dtype, name
        err = relative_error(grads[name], want)
        assert err < grad_tol, f"d{name}: relative error {err:.2e}"


@pytest.mark.parametrize(
    "batch,H,L,W,activation,with_bias,with_state",
    [
        (2, 3, 33, 4, "silu", True, True),
        (1, 5, 7, 3, None, False, True),
        (2, 2, 1, 4, "silu", True, True),  # L < W - 1: the final state reaches into the initial one
        (1, 3, 600, 2, "silu", False, False),  # two time tiles
    ],
    ids=["W4_silu_bias_state", "W3_plain_state", "length1_W4", "W2_two_tiles"],
)
def test_triton_conv_matches_reference(batch, H, L, W, activation, with_bias, with_state):
    tensors = make_inputs(batch, H, L, W, torch.float32, with_bias, with_state)
    check(tensors, activation, torch.float32)


def test_triton_conv_bf16():
    tensors = make_inputs(1, 4, 17, 4, torch.bfloat16, True, True)
    check(tensors, "silu", torch.bfloat16)


def test_dispatch_reaches_triton_backend():
    tensors = make_inputs(1, 2, 9, 4, torch.float32, True, False)
    got = causal_conv1d(**tensors, activation="silu", backend="triton")
    assert_close(got, causal_conv1d_ref(**tensors, activation="silu"), 1e-6)


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_real_shapes_match_reference(dtype):
    tensors = make_inputs(4, 1536, 4099, 4, dtype, True, True, device="cuda")
    check(tensors, "silu", dtype)


@cuda
def test_gpu_long_sequence_matches_reference():
    tensors = make_inputs(1, 64, 1 << 20, 4, torch.bfloat16, True, False, device="cuda")
    check(tensors, "silu", torch.bfloat16)
