"""Triton causal conv1d against the F.conv1d reference: outputs, final states, every gradient.

On CPU the kernels run under TRITON_INTERPRET=1 (set by conftest.py) on tiny shapes; the `cuda`
tests repeat the checks at real shapes. Small tiles forced through `conv_config` give several
programs in time and in channels at interpreter-sized shapes.
"""

from __future__ import annotations

import pytest
import torch

from genossm.kernels.causal_conv1d import causal_conv1d, causal_conv1d_ref
from genossm.kernels.causal_conv1d.direct_conv import causal_conv1d_triton, conv_config
from tensor_checks import assert_close, relative_error

# relative L2 error allowed, by input dtype: (outputs, gradients)
TOLERANCE = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (1e-2, 1e-2), torch.float16: (2e-3, 2e-3)}
# tiles small enough that interpreter-sized inputs span several programs in time and channels
SMALL_TILES = dict(fwd_block_h=2, fwd_block_t=16, fwd_vec=8, bwd_block_h=4, bwd_block_t=32, bwd_vec=16)

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
    assert outputs[0].shape == tensors["x"].shape
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
        (1, 3, 600, 2, "silu", False, False),  # padded to 608, inside one default tile
    ],
    ids=["W4_silu_bias_state", "W3_plain_state", "length1_W4", "W2_600"],
)
def test_triton_conv_matches_reference(batch, H, L, W, activation, with_bias, with_state):
    tensors = make_inputs(batch, H, L, W, torch.float32, with_bias, with_state)
    check(tensors, activation, torch.float32)


@pytest.mark.parametrize(
    "batch,H,L,W,activation,with_bias,with_state",
    [
        (2, 5, 37, 4, "silu", True, True),  # odd L (padded to 48), several time tiles, H % BLOCK_H != 0
        (1, 6, 100, 3, "silu", False, True),
        (1, 3, 64, 2, None, True, False),  # L a multiple of every tile: no padding
        (2, 7, 5, 4, None, False, True),  # L < one tile, the state reaches two lines in
        (1, 2, 1, 2, "silu", True, True),
    ],
    ids=["odd_L37_W4", "L100_W3_nobias", "L64_W2_plain", "L5_W4_plain_state", "length1_W2"],
)
def test_small_tiles_match_reference(batch, H, L, W, activation, with_bias, with_state):
    tensors = make_inputs(batch, H, L, W, torch.float32, with_bias, with_state, seed=L)
    with conv_config(**SMALL_TILES):
        check(tensors, activation, torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_conv_half_precision(dtype):
    tensors = make_inputs(1, 4, 17, 4, dtype, True, True)
    check(tensors, "silu", dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("vec", [4, 8, 32])
def test_line_lengths(vec, dtype):
    """Lines shorter than, equal to and longer than one 16-byte load (4 fp32, 8 bf16 positions),
    the longer ones read in several loads and stored the same way."""
    tensors = make_inputs(2, 5, 77, 4, dtype, True, True, seed=vec)
    with conv_config(fwd_block_h=2, fwd_block_t=32, fwd_vec=vec, bwd_block_h=2, bwd_block_t=32,
                     bwd_vec=vec):
        check(tensors, "silu", dtype)


def test_state_chunks_with_small_tiles_equal_one_pass():
    """Chunks of a sequence fed through the final state give the one-pass output."""
    tensors = make_inputs(1, 3, 40, 4, torch.float32, True, True)
    with torch.no_grad(), conv_config(**SMALL_TILES):
        whole, whole_final = causal_conv1d_triton(**tensors, activation="silu", return_final_state=True)
        state, pieces = tensors["initial_state"], []
        for piece in tensors["x"].split([13, 2, 25], dim=-1):
            y, state = causal_conv1d_triton(piece, tensors["weight"], tensors["bias"], "silu", state,
                                            return_final_state=True)
            pieces.append(y)
    assert_close(torch.cat(pieces, dim=-1), whole, 1e-6, "chunked y")
    assert torch.equal(state, whole_final)


@pytest.mark.parametrize(
    "overrides,message",
    [(dict(bwd_block_t=48), "powers of two"), (dict(fwd_vec=2), "CONFIG.fwd_vec"),
     (dict(bwd_vec=16, bwd_block_t=8), "CONFIG.bwd_vec")],
    ids=["tile_not_power_of_two", "line_shorter_than_halo", "line_longer_than_tile"],
)
def test_bad_config_is_refused(overrides, message):
    tensors = make_inputs(1, 2, 9, 4, torch.float32, True, False)
    with conv_config(**overrides), pytest.raises(ValueError, match=message):
        causal_conv1d_triton(**tensors, activation="silu")


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


@cuda
def test_gpu_odd_shapes_match_reference():
    tensors = make_inputs(3, 100, 5001, 3, torch.bfloat16, False, True, device="cuda")
    check(tensors, "silu", torch.bfloat16)


@cuda
def test_gpu_offsets_past_2_31():
    """1 x 1024 x 2^21 positions: the last channels sit past 2^31 elements."""
    H, L = 1024, 1 << 21
    x = torch.randn(1, H, L, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    weight = torch.randn(H, 4, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    bias = torch.randn(H, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    y = causal_conv1d_triton(x, weight, bias, "silu")
    dy = torch.randn_like(y)
    dx, = torch.autograd.grad(y, x, dy)
    tail = slice(H - 2, H)  # channels past the 2^31st element
    x_tail = x.detach()[:, tail].requires_grad_()
    y_ref = causal_conv1d_ref(x_tail, weight.detach()[tail], bias.detach()[tail], "silu")
    dx_ref, = torch.autograd.grad(y_ref, x_tail, dy[:, tail])
    assert relative_error(y[:, tail], y_ref) < 1e-2
    assert relative_error(dx[:, tail], dx_ref) < 1e-2

