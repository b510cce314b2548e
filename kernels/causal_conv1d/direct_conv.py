"""Triton depthwise causal conv1d (width 2-4) with fused bias and SiLU, forward and backward.

Same signature, shapes and math as `causal_conv1d_ref` (see `reference.py`):
    y[t] = act(bias[h] + sum_{w < W} weight[h, w] * x[t - (W - 1) + w])
with x at negative times read from initial_state. HBM sees x once and y once in the forward, and
x, dy once and dx once in the backward, where F.conv1d + SiLU makes a padded copy of x and a
second pass for the activation.

Each thread owns lines of VEC consecutive positions of one channel. A program loads its
(BLOCK_H, BLOCK_T / VEC, VEC) tile of x (and dy) in aligned 16-byte loads (one per line at
VEC = 8 bf16), plus a 4-position halo on each side (8-byte loads, L1/L2 hits), and splits the
lines into columns in registers (reshape + split: no data leaves the thread). Every shift is then
a compile-time pick of a column, so each pre-activation (and SiLU gradient) is formed once per
position plus W - 1 halo positions per line, instead of W times, and the loads and stores are
vector instructions. (The first kernels read the x tile at each of the W or 2W - 1 shifts
element by element, since a shifted address is not 16-byte aligned: 3.91 against 1.44 ms fwd+bwd
on an H200, `benchmarks/results/causal_conv1d_sweep_h200.json`; deleted.)

The backward sums dweight/dbias over the tile into one partial per program, added up by the
launcher (no atomics: H * W floats updated by thousands of programs would serialise). The
gradient of the initial state touches only the first W-1 positions and is computed in PyTorch on
that slice; the final state is a slice of the inputs, so autograd differentiates it without help.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from .._checks import check_fast_dtype
from .._launch_config import overridden_config
from .reference import _check_weight

# the launcher pads L to a multiple of this: rows then start 16-byte aligned (Triton specialises
# L on divisibility by 16), so every line load is one vector load instead of one per element
ALIGN_POSITIONS = 16
# positions loaded on each side of a line: >= W - 1, and a power of two for one load
HALO_POSITIONS = 4
HALO = tl.constexpr(HALO_POSITIONS)  # the same, as jitted code may read it


@dataclasses.dataclass
class ConvConfig:
    """Launch shape of both passes; `benchmarks/causal_conv1d.py --sweep` times the choices.

    The forward and backward tiles are set apart because the backward holds about three times
    the registers per position (x, dy and the pre-activation gradients with their halos).
    Lines (`*_vec` positions of one channel per thread) are read 16 bytes per load. Longer lines
    spend less on their halos (each line recomputes W - 1 pre-activations past its end: 3/8 more
    SiLU gradients at 8, 3/16 at 16), but a warp's load then covers every other 16 bytes, so the
    sector's other half comes from a second load (an L1 hit, or a second L2 read). sm_90
    instruction counts (Triton 3.6, W=4, bf16, SiLU): backward 49 per position at 8-position
    lines (1 x 2048, 4 warps), 38 at 16 (1 x 4096); forward 17-20 for every tile (below its HBM
    time).

    Defaults: the fastest of the sweep at (1, 512, 2^20, bf16, W=4, bias, SiLU) on an H200
    (2026-12-01, `benchmarks/results/causal_conv1d_sweep_h200.json`): 1.44 ms fwd+bwd (forward
    0.51), against 1.69 for the earlier 1 x 2048 / 4-warp backward, 1.27 for the copy floor at
    the measured 4.24 TB/s, 2.37 for causal-conv1d and 25.05 for F.conv1d + SiLU. 1 x 1024 on one
    warp won the backward over every other tile (16-position lines 1.53, 32 at best 1.63); the
    forward's 4-warp tiles of 8-position lines lie within 0.02 ms of each other (and of the
    floor's 0.51).
    """

    fwd_block_h: int = 1  # channels per program
    fwd_block_t: int = 2048  # positions per program
    fwd_warps: int = 4
    fwd_vec: int = 8  # positions per thread line (8 bf16 = one 16-byte load)
    bwd_block_h: int = 1
    bwd_block_t: int = 1024
    bwd_warps: int = 1
    bwd_vec: int = 8


CONFIG = ConvConfig()


def conv_config(**overrides):
    """Temporarily change the launch shape (tests force small tiles; benchmarks sweep)."""
    return overridden_config(__name__, **overrides)


def _check_config(config: ConvConfig) -> None:
    sizes = {name: getattr(config, name) for name in ("fwd_block_h", "fwd_block_t", "fwd_vec",
                                                      "bwd_block_h", "bwd_block_t", "bwd_vec")}
    bad = {name: size for name, size in sizes.items() if size < 1 or size & (size - 1)}
    if bad:
        raise ValueError(f"causal_conv1d: CONFIG tile sizes must be powers of two, got {bad}; "
                         "set them with conv_config(...)")
    for stage in ("fwd", "bwd"):
        vec, block_t = getattr(config, f"{stage}_vec"), getattr(config, f"{stage}_block_t")
        if not HALO_POSITIONS <= vec <= block_t:
            raise ValueError(f"causal_conv1d: CONFIG.{stage}_vec must be in {HALO_POSITIONS}.."
                             f"{stage}_block_t={block_t}, got {vec}")


@triton.jit
def _split_columns(tile, N: tl.constexpr):
    """(A, B, N) -> tuple of N (A, B) tensors, column c = tile[:, :, c]. Each thread holds whole
    lines, so the reshapes and splits move registers only."""
    if N == 1:
        out = (tl.reshape(tile, (tile.shape[0], tile.shape[1])),)
    else:
        even, odd = tl.split(tl.reshape(tile, (tile.shape[0], tile.shape[1], N // 2, 2)))
        even_cols = _split_columns(even, N // 2)
        odd_cols = _split_columns(odd, N // 2)
        out = ()
        for i in tl.static_range(N // 2):
            out = out + (even_cols[i], odd_cols[i])
    return out


@triton.jit
def _join_columns(cols, N: tl.constexpr):
    """The inverse of `_split_columns`: tuple of N (A, B) tensors -> (A, B, N)."""
    if N == 1:
        out = tl.reshape(cols[0], (cols[0].shape[0], cols[0].shape[1], 1))
    else:
        even = ()
        odd = ()
        for i in tl.static_range(N // 2):
            even = even + (cols[2 * i],)
            odd = odd + (cols[2 * i + 1],)
        pairs = tl.join(_join_columns(even, N // 2), _join_columns(odd, N // 2))  # (A, B, N/2, 2)
        out = tl.reshape(pairs, (pairs.shape[0], pairs.shape[1], N))
    return out


@triton.jit
def _column_at(s: tl.constexpr, before, line, after, VEC: tl.constexpr):
    """The column at offset s in -HALO..VEC+HALO-1 from each line's first position."""
    if s < 0:
        out = before[HALO + s]
    elif s < VEC:
        out = line[s]
    else:
        out = after[s - VEC]
    return out


@triton.jit
def _load_lines(ptr, rows, starts, shift: tl.constexpr, N: tl.constexpr, mask_h, L):
    """ptr[row, start + shift + n] for n < N as (BLOCK_H, LINES, N) fp32, zero outside 0..L-1."""
    p = starts[None, :, None] + shift + tl.arange(0, N)[None, None, :]
    mask = mask_h[:, None, None] & (p < L)
    if shift < 0:
        mask = mask & (p >= 0)
    return tl.load(ptr + rows[:, None, None] + p, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _load_columns(ptr, rows, starts, shift: tl.constexpr, N: tl.constexpr, PIECE: tl.constexpr,
                  mask_h, L):
    """Tuple of N (BLOCK_H, LINES) fp32 columns, column n = ptr[row, start + shift + n] (zero
    outside 0..L-1), read as loads of at most PIECE positions (16 bytes)."""
    if N <= PIECE:
        out = _split_columns(_load_lines(ptr, rows, starts, shift, N, mask_h, L), N)
    else:
        out = ()
        for i in tl.static_range(N // PIECE):
            out = out + _split_columns(_load_lines(ptr, rows, starts, shift + i * PIECE, PIECE,
                                                   mask_h, L), PIECE)
    return out


@triton.jit
def _store_columns(ptr, rows, starts, cols, N: tl.constexpr, PIECE: tl.constexpr, mask_h, L):
    """Store the tuple of N (BLOCK_H, LINES) columns at ptr[row, start + n], n < N, for
    positions below L, as stores of at most PIECE positions."""
    if N <= PIECE:
        p = starts[None, :, None] + tl.arange(0, N)[None, None, :]
        tl.store(ptr + rows[:, None, None] + p, _join_columns(cols, N).to(ptr.dtype.element_ty),
                 mask=mask_h[:, None, None] & (p < L))
    else:
        for i in tl.static_range(N // PIECE):
            piece = ()
            for c in tl.static_range(PIECE):
                piece = piece + (cols[i * PIECE + c],)
            p = starts[None, :, None] + i * PIECE + tl.arange(0, PIECE)[None, None, :]
            tl.store(ptr + rows[:, None, None] + p,
                     _join_columns(piece, PIECE).to(ptr.dtype.element_ty),
                     mask=mask_h[:, None, None] & (p < L))


@triton.jit
def _load_before(x_ptr, init_ptr, rows, state_rows, starts, mask_h, L,
                 W: tl.constexpr, HAS_INIT: tl.constexpr):
    """Tuple of the HALO columns before each line, (BLOCK_H, LINES) fp32 each; from
    initial_state where negative (only the first program in time reads it)."""
    vals = _load_lines(x_ptr, rows, starts, -HALO, HALO, mask_h, L)
    if HAS_INIT:
        if tl.program_id(0) == 0:
            p = starts[None, :, None] - HALO + tl.arange(0, HALO)[None, None, :]
            before = mask_h[:, None, None] & (p < 0) & (p >= -(W - 1))
            vals += tl.load(init_ptr + state_rows[:, None, None] + (p + W - 1), mask=before,
                            other=0.0).to(tl.float32)
    return _split_columns(vals, HALO)


@triton.jit
def _load_weights(w_ptr, offs_h, mask_h, W: tl.constexpr):
    """Tuple of W (BLOCK_H, 1) fp32 columns of the (H, W) weight."""
    out = ()
    for k in tl.static_range(W):
        out = out + (tl.load(w_ptr + offs_h * W + k, mask=mask_h, other=0.0).to(tl.float32)[:, None],)
    return out


@triton.jit
def _sigmoid(pre):
    """1 / (1 + exp(-pre)) as rsqrt(1 + e)^2: two special-function ops (ex2, rsqrt) and two
    multiplies, where tl.sigmoid's exp and IEEE divide take about three times the instructions.
    1 + e >= 1, so the rsqrt is in range; relative error about 3e-7."""
    root = tl.rsqrt(1.0 + tl.exp2(-pre * 1.4426950408889634))
    return root * root


@triton.jit
def _silu_grad(pre):
    """d silu(pre) / d pre = s (1 + pre (1 - s)), s = sigmoid(pre), as two FMAs after s."""
    gate = _sigmoid(pre)
    return gate + gate * (pre - pre * gate)


@triton.jit
def _conv_fwd_columns_kernel(x_ptr, w_ptr, bias_ptr, init_ptr, y_ptr, H, L,
                             W: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_INIT: tl.constexpr,
                             SILU: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_T: tl.constexpr,
                             VEC: tl.constexpr, PIECE: tl.constexpr):
    LINES: tl.constexpr = BLOCK_T // VEC
    starts = tl.program_id(0) * BLOCK_T + tl.arange(0, LINES) * VEC  # (LINES,) first positions
    offs_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    batch = tl.program_id(2).to(tl.int64)
    mask_h = offs_h < H
    rows = (batch * H + offs_h) * L  # int64: B * H * L can pass 2^31
    state_rows = (batch * H + offs_h) * (W - 1)
    line = _load_columns(x_ptr, rows, starts, 0, VEC, PIECE, mask_h, L)
    before = _load_before(x_ptr, init_ptr, rows, state_rows, starts, mask_h, L, W, HAS_INIT)
    weights = _load_weights(w_ptr, offs_h, mask_h, W)
    bias = tl.zeros([BLOCK_H, 1], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_h, mask=mask_h, other=0.0).to(tl.float32)[:, None]
    out = ()
    for c in tl.static_range(VEC):
        pre = bias + weights[0] * _column_at(c - (W - 1), before, line, line, VEC)  # (BLOCK_H, LINES)
        for k in tl.static_range(1, W):
            pre += weights[k] * _column_at(c - (W - 1) + k, before, line, line, VEC)
        if SILU:
            pre = pre * _sigmoid(pre)
        out = out + (pre,)
    _store_columns(y_ptr, rows, starts, out, VEC, PIECE, mask_h, L)


@triton.jit
def _conv_bwd_columns_kernel(x_ptr, w_ptr, bias_ptr, init_ptr, dy_ptr, dx_ptr, dw_ptr, dbias_ptr,
                             H, L, W: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_INIT: tl.constexpr,
                             SILU: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_T: tl.constexpr,
                             VEC: tl.constexpr, PIECE: tl.constexpr):
    """dx for a (BLOCK_H, BLOCK_T) tile, and this tile's partial of dweight/dbias.

    x[t] feeds the outputs at t .. t + W - 1, so each line needs the pre-activation gradient at
    its VEC positions and the first W - 1 of the next line: the pre-activations there read x from
    W - 1 before the line to W - 1 after it (the halos). dweight/dbias partials are stored at
    ((L / BLOCK_T) * B, H, W) / ((L / BLOCK_T) * B, H); no two programs share an address.
    """
    LINES: tl.constexpr = BLOCK_T // VEC
    pid_t = tl.program_id(0)
    starts = pid_t * BLOCK_T + tl.arange(0, LINES) * VEC  # (LINES,)
    offs_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    batch = tl.program_id(2).to(tl.int64)
    mask_h = offs_h < H
    rows = (batch * H + offs_h) * L
    state_rows = (batch * H + offs_h) * (W - 1)
    x_line = _load_columns(x_ptr, rows, starts, 0, VEC, PIECE, mask_h, L)
    x_before = _load_before(x_ptr, init_ptr, rows, state_rows, starts, mask_h, L, W, HAS_INIT)
    x_after = _load_columns(x_ptr, rows, starts, VEC, HALO, PIECE, mask_h, L)
    dy_line = _load_columns(dy_ptr, rows, starts, 0, VEC, PIECE, mask_h, L)
    dy_after = _load_columns(dy_ptr, rows, starts, VEC, HALO, PIECE, mask_h, L)
    weights = _load_weights(w_ptr, offs_h, mask_h, W)
    bias = tl.zeros([BLOCK_H, 1], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_h, mask=mask_h, other=0.0).to(tl.float32)[:, None]

    dpre = ()  # d pre-activation at line offsets 0 .. VEC + W - 2, each (BLOCK_H, LINES)
    for s in tl.static_range(VEC + W - 1):
        grad = _column_at(s, dy_line, dy_line, dy_after, VEC)  # zero at positions >= L
        if SILU:
            pre = bias + weights[0] * _column_at(s - (W - 1), x_before, x_line, x_after, VEC)
            for k in tl.static_range(1, W):
                pre += weights[k] * _column_at(s - (W - 1) + k, x_before, x_line, x_after, VEC)
            grad = grad * _silu_grad(pre)
        dpre = dpre + (grad,)

    dx = ()
    for c in tl.static_range(VEC):
        acc = weights[W - 1] * dpre[c]  # x[t] meets weight W - 1 - j at the output t + j
        for j in tl.static_range(1, W):
            acc += weights[W - 1 - j] * dpre[c + j]
        dx = dx + (acc,)
    _store_columns(dx_ptr, rows, starts, dx, VEC, PIECE, mask_h, L)

    part = ((pid_t * tl.num_programs(2) + batch) * H + offs_h) * W  # (BLOCK_H,) into the partials
    for k in tl.static_range(W):
        acc = dpre[0] * _column_at(k - (W - 1), x_before, x_line, x_after, VEC)
        for c in tl.static_range(1, VEC):
            acc += dpre[c] * _column_at(c - (W - 1) + k, x_before, x_line, x_after, VEC)
        tl.store(dw_ptr + part + k, tl.sum(acc, axis=1), mask=mask_h)
    if HAS_BIAS:
        acc = dpre[0]
        for c in tl.static_range(1, VEC):
            acc += dpre[c]
        tl.store(dbias_ptr + part // W, tl.sum(acc, axis=1), mask=mask_h)


def _grid(batch, H, L, block_h, block_t):
    return (triton.cdiv(L, block_t), triton.cdiv(H, block_h), batch)


def _launch_forward(x, weight, bias, init, y, activation, config: ConvConfig) -> None:
    batch, H, L = x.shape
    grid = _grid(batch, H, L, config.fwd_block_h, config.fwd_block_t)
    _conv_fwd_columns_kernel[grid](
        x, weight, bias if bias is not None else x, init if init is not None else x, y, H, L,
        W=weight.shape[1], HAS_BIAS=bias is not None, HAS_INIT=init is not None,
        SILU=activation == "silu", BLOCK_H=config.fwd_block_h, BLOCK_T=config.fwd_block_t,
        VEC=config.fwd_vec, PIECE=16 // x.element_size(), num_warps=config.fwd_warps,
    )


def _launch_backward(x, weight, bias, init, dy, dx, activation, config: ConvConfig):
    """Launch the backward kernel; returns dweight (H, W) and dbias (H,) (None without bias) in fp32."""
    batch, H, L = x.shape
    W = weight.shape[1]
    grid = _grid(batch, H, L, config.bwd_block_h, config.bwd_block_t)
    parts = grid[0] * batch  # one dweight/dbias partial per (time block, batch row)
    dw = torch.empty(parts, H, W, device=x.device, dtype=torch.float32)
    dbias = torch.empty(parts, H, device=x.device, dtype=torch.float32) if bias is not None else None
    _conv_bwd_columns_kernel[grid](
        x, weight, bias if bias is not None else x, init if init is not None else x, dy, dx, dw,
        dbias if dbias is not None else dw, H, L, W=W, HAS_BIAS=bias is not None,
        HAS_INIT=init is not None, SILU=activation == "silu", BLOCK_H=config.bwd_block_h,
        BLOCK_T=config.bwd_block_t, VEC=config.bwd_vec, PIECE=16 // x.element_size(),
        num_warps=config.bwd_warps,
    )
    return dw.sum(0), (dbias.sum(0) if dbias is not None else None)


def _initial_state_grad(x, weight, bias, initial_state, dy, activation):
    """d initial_state (B, H, W-1): only outputs at t < W-1 read it, so work on that slice."""
    W = weight.shape[1]
    head = min(W - 1, x.shape[-1])
    x_head = torch.cat([initial_state.float(), x[..., :head].float()], dim=-1)  # (B, H, W-1+head)
    with torch.enable_grad():  # backward runs with grad mode off
        x_head.requires_grad_(True)
        pre = F.conv1d(x_head, weight.float()[:, None, :], None if bias is None else bias.float(),
                       groups=weight.shape[0])  # (B, H, head)
        out = F.silu(pre) if activation == "silu" else pre
        (grad,) = torch.autograd.grad(out, x_head, dy[..., :head].float())
    return grad[..., : W - 1]


class CausalConv1dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, initial_state, activation):
        x = x.contiguous()
        weight_c = weight.contiguous()
        bias_c = bias.contiguous() if bias is not None else None
        init_c = initial_state.contiguous() if initial_state is not None else None
        y = torch.empty_like(x)  # (B, H, L)
        _launch_forward(x, weight_c, bias_c, init_c, y, activation, CONFIG)
        ctx.save_for_backward(x, weight_c, bias_c, init_c)
        ctx.activation = activation
        ctx.config = CONFIG  # the backward launches with the shape the forward ran under
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias, init = ctx.saved_tensors
        dy = dy.contiguous()
        dx = torch.empty_like(x)  # (B, H, L)
        dw, dbias = _launch_backward(x, weight, bias, init, dy, dx, ctx.activation, ctx.config)
        dinit = None
        if init is not None and ctx.needs_input_grad[3]:
            dinit = _initial_state_grad(x, weight, bias, init, dy, ctx.activation).to(init.dtype)
        return (dx, dw.to(weight.dtype), dbias.to(bias.dtype) if bias is not None else None,
                dinit, None)


def causal_conv1d_triton(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
):
    """Depthwise causal conv on the GPU (or the Triton interpreter): see `causal_conv1d_ref`.

    Returns y `(B, H, L)` in x's dtype, or `(y, final_state)` with final_state `(B, H, W-1)`.
    """
    if x.dim() != 3:
        raise ValueError(f"causal_conv1d: x must be (B, H, L), got {tuple(x.shape)}")
    batch, H, L = x.shape
    W = _check_weight(weight, bias, activation, H, "causal_conv1d")
    if initial_state is not None and tuple(initial_state.shape) != (batch, H, W - 1):
        raise ValueError(
            f"causal_conv1d: initial_state must be (B={batch}, H={H}, W-1={W - 1}), got {tuple(initial_state.shape)}"
        )
    check_fast_dtype("causal_conv1d_triton", "x", x)
    _check_config(CONFIG)
    # rows start 16-byte aligned only when L is a multiple of 8 (bf16); otherwise Triton loads one
    # element at a time, so pad with zeros on the right (a causal conv never looks ahead) and crop
    pad = (-L) % ALIGN_POSITIONS
    x_in = F.pad(x, (0, pad)) if pad else x
    y = CausalConv1dFn.apply(x_in, weight, bias, initial_state, activation)
    if pad:
        y = y[..., :L]
    if not return_final_state:
        return y
    # the last W-1 inputs, reaching into initial_state when L < W-1 (autograd handles the slice)
    if L >= W - 1:
        final_state = x[..., L - (W - 1):].clone()
    else:
        history = initial_state if initial_state is not None else x.new_zeros(batch, H, W - 1)
        final_state = torch.cat([history.to(x.dtype), x], dim=-1)[..., -(W - 1):]
    return y, final_state.to(x.dtype)
