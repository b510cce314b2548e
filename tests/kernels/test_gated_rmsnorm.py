"""Triton gated RMSNorm against `gated_rms_norm_ref`: outputs and the gradients of y, z and weight.

On CPU the kernels run under TRITON_INTERPRET=1 (conftest.py) on tiny shapes, with tiles forced
small through `rmsnorm_config` so that inputs span several programs and the backward's programs
walk several tiles; the `cuda` tests repeat the checks at Mamba-2's real shape.
"""

from __future__ import annotations

import pytest
import torch

from genossm.kernels import gated_rms_norm
from genossm.kernels.rmsnorm import gated_rms_norm_ref
from genossm.kernels.rmsnorm.fused_rmsnorm import gated_rms_norm_triton, rmsnorm_config
from tensor_checks import relative_error

# relative L2 error allowed, by input dtype: (outputs, gradients)
TOLERANCE = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (1e-2, 1e-2), torch.float16: (2e-3, 2e-3)}
# 4 positions x 8 channels a forward tile, 2 x 8 a backward one; the backward aims at 2 programs
# per (batch row, group)
SMALL_TILES = dict(fwd_tile_elements=32, bwd_tile_elements=16, bwd_target_programs=2)
EPS = 1e-5

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TINY_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def make_inputs(batch, T, width, dtype, with_z=True, z_position_major=False, device=TINY_DEVICE,
                seed=0):
    """y `(batch, T, width)`, z of y's shape: contiguous, or a transposed slice of a channels-first tensor as Mamba-2's
    `_project` makes it (position stride 1, channel stride T), and weight `(width,)`."""
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    y = rand(batch, T, width).requires_grad_()
    z = None
    if with_z:
        if z_position_major:
            wide = rand(batch, width + 5, T)  # z is a slice of a wider channels-first projection
            z = wide[:, 2:2 + width].transpose(1, 2).detach().requires_grad_()
            assert z.stride(1) == 1 and z.stride(2) == T
        else:
            z = rand(batch, T, width).requires_grad_()
    weight = (1.0 + 0.5 * torch.randn(width, generator=gen)).to(device).requires_grad_()
    return y, z, weight


def run_and_grad(norm, y, z, weight, group_size, shape=None, seed=1):
    """The norm's output and the gradients of a fixed random projection of it; `shape` views y
    and z with other leading dimensions first."""
    view = (lambda t: t.view(shape)) if shape else (lambda t: t)
    out = norm(view(y), view(z) if z is not None else None, weight, group_size, EPS)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    loss = (out.float() * torch.randn(out.shape, generator=gen).to(out.device)).sum()
    leaves = [t for t in (y, z, weight) if t is not None]
    return out, torch.autograd.grad(loss, leaves)


def check(y, z, weight, group_size, dtype, shape=None):
    out_tol, grad_tol = TOLERANCE[dtype]
    out, grads = run_and_grad(gated_rms_norm_triton, y, z, weight, group_size, shape)
    want, want_grads = run_and_grad(gated_rms_norm_ref, y, z, weight, group_size, shape)
    assert out.shape == want.shape and out.dtype == want.dtype == y.dtype
    assert relative_error(out, want) < out_tol
    for got, expected in zip(grads, want_grads):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert relative_error(got, expected) < grad_tol


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gated_groups_odd_length_match_reference(dtype):
    """Three groups of 8 channels, 37 positions (not a multiple of the 4-position tile), batch 2."""
    with rmsnorm_config(**SMALL_TILES):
        check(*make_inputs(2, 37, 24, dtype), group_size=8, dtype=dtype)


def test_position_major_z_as_mamba2_projects_it():
    """z read through its strides (a transposed slice): values and dz equal the reference's."""
    y, z, weight = make_inputs(1, 29, 16, torch.float32, z_position_major=True)
    with rmsnorm_config(**SMALL_TILES):
        check(y, z, weight, group_size=16, dtype=torch.float32)


def test_one_group_not_a_power_of_two_and_more_leading_dims():
    """One group of 12 channels (tile columns past it masked); y and z of shape (2, 3, 3, 12)."""
    with rmsnorm_config(**SMALL_TILES):
        check(*make_inputs(2, 9, 12, torch.float32), group_size=12, dtype=torch.float32, shape=(2, 3, 3, 12))


def test_without_gate_is_a_grouped_rmsnorm():
    y, _, weight = make_inputs(1, 21, 16, torch.float32, with_z=False)
    with rmsnorm_config(**SMALL_TILES):
        check(y, None, weight, group_size=4, dtype=torch.float32)
    plain = torch.nn.functional.rms_norm(y.detach().unflatten(-1, (4, 4)), (4,), eps=EPS).flatten(-2) * weight.detach()
    assert relative_error(gated_rms_norm_ref(y.detach(), None, weight.detach(), 4, EPS), plain) < 1e-6


def test_one_program_per_row_walks_every_tile():
    """The default launch (one backward program per row when tiles are few) and a 1-position tile."""
    with rmsnorm_config(fwd_tile_elements=8, bwd_tile_elements=8, bwd_target_programs=1):
        check(*make_inputs(1, 11, 8, torch.float32), group_size=8, dtype=torch.float32)


def test_dispatch_and_errors():
    y, z, weight = make_inputs(1, 5, 8, torch.float32, device="cpu")
    # auto on a CPU tensor is the reference; the answer is the same either way
    assert relative_error(gated_rms_norm(y, z, weight, 4, EPS), gated_rms_norm_ref(y, z, weight, 4, EPS)) == 0
    with pytest.raises(ValueError, match="group_size 3 must divide the width 8"):
        gated_rms_norm(y, z, weight, 3, EPS)
    with pytest.raises(ValueError, match="z must have y's shape"):
        gated_rms_norm(y, z[:, :4], weight, 4, EPS)
    with pytest.raises(ValueError, match=r"weight must have shape \(8,\)"):
        gated_rms_norm(y, z, weight[:4], 4, EPS)
    with pytest.raises(TypeError, match="backend='reference'"):
        gated_rms_norm_triton(y.double(), z.double(), weight.double(), 4, EPS)
    empty = torch.zeros(1, 0, 8)
    assert gated_rms_norm_triton(empty, empty, weight.detach(), 4, EPS).shape == (1, 0, 8)


@cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_gpu_mamba2_shape_matches_reference(dtype):
    """mamba2-1m's norm: 512 channels in one group, z position-major, 2^16 positions, 2 rows."""
    y, z, weight = make_inputs(2, 1 << 16, 512, dtype, z_position_major=True, device="cuda")
    check(y, z, weight, group_size=512, dtype=dtype)


@cuda
def test_gpu_two_groups_batch_rows():
    y, z, weight = make_inputs(3, 5000, 256, torch.bfloat16, device="cuda")
    check(y, z, weight, group_size=128, dtype=torch.bfloat16)
