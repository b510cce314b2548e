"""Triton gated RMSNorm, forward and backward: `gated_rms_norm_ref`'s math in one pass each way.

    out = g * rstd * weight,  g = y * silu(z) (or y),  rstd = 1 / sqrt(mean(g^2 over the group) + eps)

Why a kernel: in PyTorch the formula is a dozen elementwise passes over (rows, width) tensors,
most in fp32 (the upcasts, the gate, its square, the mean, the scaled product, the cast back, and
about twice as many in the backward). Counted over one `mamba2-1m` layer at 2^20 positions (an
op census of the training step with the SSD and conv stubbed out, 2026-12-01) that is ~110 GB of
memory traffic per layer and step, more than the layer's SSD kernels move. Here the forward reads
y and z once and writes the output and one fp32 rstd per row and group; the backward reads y, z,
dout and rstd once and writes dy and dz, with dweight as per-program partials summed by the
launcher (no atomics).

Inputs are (batch, positions, width) views read through their strides: Mamba-2's z is a
transposed slice of the channels-first input projection (position stride 1, channel stride L),
so no contiguous copy is made. Each program normalises BLOCK_T positions x one group of
channels (BLOCK_C = the group size rounded up to a power of two); statistics are fp32, the
output and gradients take the inputs' dtypes, dweight is fp32 cast to weight's dtype.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import triton
import triton.language as tl

from .._checks import check_fast_dtype
from .._launch_config import overridden_config
from .reference import check_gated_rms_norm, gated_rms_norm_ref


@dataclasses.dataclass
class RMSNormConfig:
    """Launch shape, timed on the H200 (`benchmarks/gated_rmsnorm.py --sweep`)."""

    # positions per tile = tile elements // BLOCK_C (at least 1). H200, bf16, (1, 2^20, 512), one
    # group, z position-major as Mamba-2 makes it (benchmarks/results/gated_rmsnorm_h200.json):
    # fwd+bwd 3.99 ms with the forward in 8192-element tiles on 8 warps and the backward in 8192 on
    # 16 (16 fp32 values per thread and tensor), against 5.58 with a 4096 backward, 8.24 with 2048
    # and 45 with 512. Large tiles win because z and dz are position-major: BLOCK_T positions of a
    # channel are 2 * BLOCK_T contiguous bytes, and a 32-byte sector needs BLOCK_T = 16.
    fwd_tile_elements: int = 8192
    bwd_tile_elements: int = 8192
    fwd_warps: int = 8
    bwd_warps: int = 16
    # backward programs to aim for: each walks its share of positions in tiles and keeps one
    # dweight partial (fp32, width floats), so fewer programs mean smaller partials
    bwd_target_programs: int = 4096
    max_group: int = 8192  # widest group normalised in one tile (registers); wider: the reference


CONFIG = RMSNormConfig()


def rmsnorm_config(**overrides):
    """Temporarily change the launch shape (tests, benchmark sweeps)."""
    return overridden_config(__name__, **overrides)


@triton.jit
def _silu_parts(z):
    """silu(z) and its derivative sigmoid(z) (1 + z (1 - sigmoid(z))), fp32."""
    sig = tl.sigmoid(z)
    return z * sig, sig * (1.0 + z * (1.0 - sig))


@triton.jit
def _offsets(batch_off, t, cols, stride_t, stride_c):
    """int64 offsets of a (BLOCK_T positions, BLOCK_C channels) tile of a strided (B, T, W) view."""
    return batch_off + t[:, None].to(tl.int64) * stride_t + cols[None, :].to(tl.int64) * stride_c


@triton.jit
def _tile(ptr, batch_off, t, cols, stride_t, stride_c, mask):
    """That tile's values as fp32 (0 off the mask)."""
    return tl.load(ptr + _offsets(batch_off, t, cols, stride_t, stride_c), mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _gated_rmsnorm_fwd_kernel(
    y_ptr, z_ptr, w_ptr, out_ptr, rstd_ptr,
    T, GROUP, n_groups, eps,
    sy_b, sy_t, sy_c, sz_b, sz_t, sz_c, so_b, so_t, so_c,
    HAS_Z: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr,
):
    pid_t = tl.program_id(0)
    batch = tl.program_id(1) // n_groups
    group = tl.program_id(1) % n_groups
    t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    c = tl.arange(0, BLOCK_C)
    cols = group * GROUP + c
    mask = (t < T)[:, None] & (c < GROUP)[None, :]
    b64 = batch.to(tl.int64)
    g = _tile(y_ptr, b64 * sy_b, t, cols, sy_t, sy_c, mask)
    if HAS_Z:
        z = _tile(z_ptr, b64 * sz_b, t, cols, sz_t, sz_c, mask)
        silu_z, _ = _silu_parts(z)
        g = g * silu_z
    rstd = 1.0 / tl.sqrt(tl.sum(g * g, axis=1) / GROUP + eps)  # (BLOCK_T,)
    w = tl.load(w_ptr + cols, mask=c < GROUP, other=0.0).to(tl.float32)
    out = g * rstd[:, None] * w[None, :]
    tl.store(out_ptr + _offsets(b64 * so_b, t, cols, so_t, so_c), out.to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(rstd_ptr + (b64 * n_groups + group) * T + t, rstd, mask=t < T)


@triton.jit
def _gated_rmsnorm_bwd_kernel(
    y_ptr, z_ptr, w_ptr, dout_ptr, rstd_ptr, dy_ptr, dz_ptr, dw_ptr,
    T, W, GROUP, n_groups, batch_size, tiles_per_program,
    sy_b, sy_t, sy_c, sz_b, sz_t, sz_c, sd_b, sd_t, sd_c,
    sdy_b, sdy_t, sdy_c, sdz_b, sdz_t, sdz_c,
    HAS_Z: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """dg = rstd (dout w - xhat mean(dout w xhat)), xhat = g rstd; dy = dg silu(z),
    dz = dg y silu'(z); this program's sum of dout xhat over its positions -> dw partial."""
    pid_t = tl.program_id(0)
    batch = tl.program_id(1) // n_groups
    group = tl.program_id(1) % n_groups
    c = tl.arange(0, BLOCK_C)
    cols = group * GROUP + c
    col_ok = c < GROUP
    b64 = batch.to(tl.int64)
    w = tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    dw_acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    for k in range(0, tiles_per_program):
        t = (pid_t * tiles_per_program + k) * BLOCK_T + tl.arange(0, BLOCK_T)
        mask = (t < T)[:, None] & col_ok[None, :]
        y = _tile(y_ptr, b64 * sy_b, t, cols, sy_t, sy_c, mask)
        dout = _tile(dout_ptr, b64 * sd_b, t, cols, sd_t, sd_c, mask)
        rstd = tl.load(rstd_ptr + (b64 * n_groups + group) * T + t, mask=t < T, other=0.0)
        g = y
        if HAS_Z:
            z = _tile(z_ptr, b64 * sz_b, t, cols, sz_t, sz_c, mask)
            silu_z, dsilu_z = _silu_parts(z)
            g = y * silu_z
        xhat = g * rstd[:, None]
        dxhat = dout * w[None, :]
        dw_acc += tl.sum(dout * xhat, axis=0)
        mean_dot = tl.sum(dxhat * xhat, axis=1) / GROUP  # (BLOCK_T,)
        dg = rstd[:, None] * (dxhat - xhat * mean_dot[:, None])
        dy = dg
        if HAS_Z:
            dy = dg * silu_z
            dz = dg * y * dsilu_z
            tl.store(dz_ptr + _offsets(b64 * sdz_b, t, cols, sdz_t, sdz_c), dz.to(dz_ptr.dtype.element_ty), mask=mask)
        tl.store(dy_ptr + _offsets(b64 * sdy_b, t, cols, sdy_t, sdy_c), dy.to(dy_ptr.dtype.element_ty), mask=mask)
    tl.store(dw_ptr + (pid_t.to(tl.int64) * batch_size + batch) * W + cols, dw_acc, mask=col_ok)


def _as_3d(t: torch.Tensor) -> torch.Tensor:
    """(..., T, W) -> (batch, T, W), a view where the leading dims collapse (reshape copies only
    where they do not); a 2-D input's rows are the positions of one batch row."""
    return t if t.dim() == 3 else t.reshape(-1, t.shape[-2], t.shape[-1])


def _empty_like_layout(t: torch.Tensor) -> torch.Tensor:
    """A new (batch, T, W) tensor like t whose position or channel axis is the contiguous one, as
    in t (dz of a position-major z is read back as position-major by the projection's backward)."""
    if t.stride(-1) != 1 and t.stride(-2) == 1:
        return torch.empty(t.shape[0], t.shape[2], t.shape[1], device=t.device, dtype=t.dtype).transpose(1, 2)
    return torch.empty(t.shape, device=t.device, dtype=t.dtype)


def _blocks(group_size: int, tile_elements: int) -> tuple[int, int]:
    """(BLOCK_T positions, BLOCK_C channels) of a tile: one whole group a row."""
    block_c = triton.next_power_of_2(group_size)
    return max(1, tile_elements // block_c), block_c


class _GatedRMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, z, weight, group_size, eps):
        config = CONFIG
        y3 = _as_3d(y)
        z3 = _as_3d(z) if z is not None else None
        batch, T, W = y3.shape
        n_groups = W // group_size
        block_t, block_c = _blocks(group_size, config.fwd_tile_elements)
        out = torch.empty(y3.shape, device=y.device, dtype=y.dtype)
        rstd = torch.empty(batch, n_groups, T, device=y.device, dtype=torch.float32)
        zs = z3 if z3 is not None else y3
        _gated_rmsnorm_fwd_kernel[(triton.cdiv(T, block_t), batch * n_groups)](
            y3, zs, weight, out, rstd, T, group_size, n_groups, eps,
            *y3.stride(), *zs.stride(), *out.stride(),
            HAS_Z=z3 is not None, BLOCK_T=block_t, BLOCK_C=block_c, num_warps=config.fwd_warps,
        )
        ctx.save_for_backward(y3, z3, weight, rstd)
        ctx.meta = (group_size, y.shape, z.shape if z is not None else None)
        return out.view(y.shape)

    @staticmethod
    def backward(ctx, dout):
        y3, z3, weight, rstd = ctx.saved_tensors
        group_size, y_shape, z_shape = ctx.meta
        config = CONFIG
        dout3 = _as_3d(dout)
        batch, T, W = y3.shape
        n_groups = W // group_size
        block_t, block_c = _blocks(group_size, config.bwd_tile_elements)
        tiles = triton.cdiv(T, block_t)
        programs_per_row = max(1, min(tiles, config.bwd_target_programs // max(1, batch * n_groups)))
        tiles_per_program = triton.cdiv(tiles, programs_per_row)
        programs_per_row = triton.cdiv(tiles, tiles_per_program)
        dy = torch.empty(y3.shape, device=y3.device, dtype=y3.dtype)
        dz = _empty_like_layout(z3) if z3 is not None else None
        # the kernel stores every (program, batch row, channel) partial: no zero fill needed
        dw_parts = torch.empty(programs_per_row, batch, W, device=y3.device, dtype=torch.float32)
        zs = z3 if z3 is not None else y3
        dzs = dz if dz is not None else dy
        _gated_rmsnorm_bwd_kernel[(programs_per_row, batch * n_groups)](
            y3, zs, weight, dout3, rstd, dy, dzs, dw_parts,
            T, W, group_size, n_groups, batch, tiles_per_program,
            *y3.stride(), *zs.stride(), *dout3.stride(), *dy.stride(), *dzs.stride(),
            HAS_Z=z3 is not None, BLOCK_T=block_t, BLOCK_C=block_c, num_warps=config.bwd_warps,
        )
        dweight = dw_parts.sum((0, 1)).to(weight.dtype)
        return dy.view(y_shape), (dz.reshape(z_shape) if dz is not None else None), dweight, None, None


def gated_rms_norm_triton(y: torch.Tensor, z: torch.Tensor | None, weight: torch.Tensor, group_size: int,
                          eps: float) -> torch.Tensor:
    """Same contract as `gated_rms_norm_ref`: y, z `(..., T, width)` (or `(T, width)`), weight
    `(width,)`, groups of `group_size` channels; the output in y's dtype."""
    check_gated_rms_norm(y, z, weight, group_size)
    for name, t in (("y", y), ("z", z), ("weight", weight)):
        if t is not None:
            check_fast_dtype("gated_rms_norm", name, t)
    if y.dim() < 2:
        raise ValueError(f"gated_rms_norm: y must have a position axis, got shape {tuple(y.shape)}")
    if y.numel() == 0:  # nothing to launch: the reference handles empty shapes
        return gated_rms_norm_ref(y, z, weight, group_size, eps)
    if group_size > CONFIG.max_group:
        raise ValueError(
            f"gated_rms_norm: groups of {group_size} channels are wider than the Triton kernel's "
            f"{CONFIG.max_group}; use backend='reference'"
        )
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"gated_rms_norm: eps must be finite and >= 0, got {eps}")
    return _GatedRMSNorm.apply(y, z, weight, group_size, float(eps))
