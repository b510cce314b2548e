"""Triton depthwise causal conv1d (width 2-4) with fused bias and SiLU, forward and backward.

Same signature, shapes and math as `causal_conv1d_ref` (see `reference.py`):
    y[t] = act(bias[h] + sum_{w < W} weight[h, w] * x[t - (W - 1) + w])
with x at negative times read from initial_state. Each program owns a (BLOCK_H, BLOCK_T) tile:
the W shifted reads of x hit L1/L2, so HBM sees x once and y once, where F.conv1d + SiLU makes
a padded copy of x and a second pass for the activation.

The backward recomputes the pre-activation at t, t+1, ..., t+W-1 (the positions each x[t]
feeds) from the 2W - 1 shifted x tiles instead of storing it, and sums dweight/dbias over the
tile into one partial per program (added up by the launcher: no atomics). The gradient of the initial state touches only the first W-1 positions and is
computed in PyTorch on that slice; the final state is a slice of the inputs, so autograd
differentiates it without help.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from .._checks import check_fast_dtype
from .reference import _check_weight

BLOCK_H = 4
BLOCK_T = 512
NUM_WARPS = 4
ALIGN_POSITIONS = 16


@triton.jit
def _load_shifted(x_ptr, init_ptr, rows, state_rows, t, shift, mask_h, L,
                  W: tl.constexpr, HAS_INIT: tl.constexpr):
    """x at positions t + shift (BLOCK_H, BLOCK_T) fp32, from initial_state where negative."""
    p = t + shift
    inside = (p >= 0) & (p < L)
    vals = tl.load(x_ptr + rows[:, None] + p[None, :], mask=mask_h[:, None] & inside[None, :],
                   other=0.0).to(tl.float32)
    if HAS_INIT:
        before = (p < 0) & (p >= -(W - 1))
        vals += tl.load(init_ptr + state_rows[:, None] + (p + W - 1)[None, :],
                        mask=mask_h[:, None] & before[None, :], other=0.0).to(tl.float32)
    return vals


@triton.jit
def _preactivation(x_ptr, init_ptr, rows, state_rows, t, shift, mask_h, L, w_ptr, offs_h, bias,
                   W: tl.constexpr, HAS_INIT: tl.constexpr):
    """bias + sum_k weight[k] x[t + shift - (W - 1) + k], (BLOCK_H, BLOCK_T) fp32."""
    acc = bias[:, None] + tl.zeros_like(t).to(tl.float32)[None, :]  # (BLOCK_H, BLOCK_T)
    for k in tl.static_range(W):
        wk = tl.load(w_ptr + offs_h * W + k, mask=mask_h, other=0.0).to(tl.float32)
        acc += wk[:, None] * _load_shifted(x_ptr, init_ptr, rows, state_rows, t, shift - (W - 1) + k,
                                           mask_h, L, W, HAS_INIT)
    return acc


@triton.jit
def _conv_fwd_kernel(x_ptr, w_ptr, bias_ptr, init_ptr, y_ptr, H, L,
                     W: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_INIT: tl.constexpr,
                     SILU: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_T: tl.constexpr):
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    batch = tl.program_id(2).to(tl.int64)
    mask_h = offs_h < H
    rows = (batch * H + offs_h) * L  # int64: B * H * L can pass 2^31
    state_rows = (batch * H + offs_h) * (W - 1)
    bias = tl.zeros([BLOCK_H], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_h, mask=mask_h, other=0.0).to(tl.float32)
    pre = _preactivation(x_ptr, init_ptr, rows, state_rows, t, 0, mask_h, L, w_ptr, offs_h, bias,
                         W, HAS_INIT)
    if SILU:
        pre = pre * tl.sigmoid(pre)
    tl.store(y_ptr + rows[:, None] + t[None, :], pre.to(y_ptr.dtype.element_ty),
             mask=mask_h[:, None] & (t < L)[None, :])


@triton.jit
def _shifted(s: tl.constexpr, x_m3, x_m2, x_m1, x_0, x_p1, x_p2, x_p3):
    """The x tile shifted by s in -3..3 (a compile-time pick: no data moves)."""
    if s == -3:
        out = x_m3
    elif s == -2:
        out = x_m2
    elif s == -1:
        out = x_m1
    elif s == 0:
        out = x_0
    elif s == 1:
        out = x_p1
    elif s == 2:
        out = x_p2
    else:
        out = x_p3
    return out


@triton.jit
def _silu_grad(pre):
    """d silu(pre) / d pre = s (1 + pre (1 - s)), s = sigmoid(pre), with a fast reciprocal."""
    gate = tl.fdiv(1.0, 1.0 + tl.exp2(-pre * 1.4426950408889634), ieee_rounding=False)
    return gate * (1.0 + pre * (1.0 - gate))


@triton.jit
def _conv_bwd_kernel(x_ptr, w_ptr, bias_ptr, init_ptr, dy_ptr, dx_ptr, dw_ptr, dbias_ptr, H, L,
                     W: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_INIT: tl.constexpr,
                     SILU: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_T: tl.constexpr):
    """dx for a (BLOCK_H, BLOCK_T) tile, and this tile's share of dweight/dbias.

    x[t] feeds the outputs at t .. t + W - 1, so dx needs the pre-activation gradient there: the
    2W - 1 shifted x tiles are read once (cache hits after the first) and every pre-activation
    is formed from them. dweight/dbias are summed over the tile and stored as this program's
    partial ((L / BLOCK_T) * B, H, W); the launcher adds the partials, so no two programs ever
    update the same address (atomics on H * W floats from thousands of programs serialise).
    """
    pid_t = tl.program_id(0)
    t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    batch = tl.program_id(2).to(tl.int64)
    mask_h = offs_h < H
    rows = (batch * H + offs_h) * L
    state_rows = (batch * H + offs_h) * (W - 1)
    bias = tl.zeros([BLOCK_H], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_h, mask=mask_h, other=0.0).to(tl.float32)
    zero = tl.zeros([BLOCK_H, BLOCK_T], dtype=tl.float32)
    x_m3, x_m2, x_m1, x_p1, x_p2, x_p3 = zero, zero, zero, zero, zero, zero
    x_0 = _load_shifted(x_ptr, init_ptr, rows, state_rows, t, 0, mask_h, L, W, HAS_INIT)
    x_m1 = _load_shifted(x_ptr, init_ptr, rows, state_rows, t, -1, mask_h, L, W, HAS_INIT)
    x_p1 = _load_shifted(x_ptr, init_ptr, rows, state_rows, t, 1, mask_h, L, W, HAS_INIT)
    if W > 2:
        x_m2 = _load_shifted(x_ptr, init_ptr, rows, state_rows, t, -2, mask_h, L, W, HAS_INIT)
        x_p2 = _load_shifted(x_ptr, init_ptr, rows, state_rows, t, 2, mask_h, L, W, HAS_INIT)
    if W > 3:
        x_m3 = _load_shifted(x_ptr, init_ptr, rows, state_rows, t, -3, mask_h, L, W, HAS_INIT)
        x_p3 = _load_shifted(x_ptr, init_ptr, rows, state_rows, t, 3, mask_h, L, W, HAS_INIT)

    dx = zero
    dpre_here = zero  # d pre-activation at t itself
    for j in tl.static_range(W):
        # x[t] feeds the output at t + j through weight W - 1 - j
        q = t + j
        dpre = tl.load(dy_ptr + rows[:, None] + q[None, :], mask=mask_h[:, None] & (q < L)[None, :],
                       other=0.0).to(tl.float32)
        if SILU:
            pre = bias[:, None] + zero
            for k in tl.static_range(W):
                w_k = tl.load(w_ptr + offs_h * W + k, mask=mask_h, other=0.0).to(tl.float32)
                pre += w_k[:, None] * _shifted(j + k - (W - 1), x_m3, x_m2, x_m1, x_0, x_p1, x_p2, x_p3)
            dpre = dpre * _silu_grad(pre)
        w_j = tl.load(w_ptr + offs_h * W + (W - 1 - j), mask=mask_h, other=0.0).to(tl.float32)
        dx += w_j[:, None] * dpre
        if j == 0:
            dpre_here = dpre
    tl.store(dx_ptr + rows[:, None] + t[None, :], dx.to(dx_ptr.dtype.element_ty),
             mask=mask_h[:, None] & (t < L)[None, :])

    part = ((pid_t * tl.num_programs(2) + batch) * H + offs_h) * W  # (BLOCK_H,) into the partials
    for k in tl.static_range(W):
        xk = _shifted(k - (W - 1), x_m3, x_m2, x_m1, x_0, x_p1, x_p2, x_p3)
        tl.store(dw_ptr + part + k, tl.sum(dpre_here * xk, axis=1), mask=mask_h)
    if HAS_BIAS:
        tl.store(dbias_ptr + part // W, tl.sum(dpre_here, axis=1), mask=mask_h)


def _grid(batch, H, L):
    return (triton.cdiv(L, BLOCK_T), triton.cdiv(H, BLOCK_H), batch)


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
        batch, H, L = x.shape
        W = weight.shape[1]
        x = x.contiguous()
        weight_c = weight.contiguous()
        bias_c = bias.contiguous() if bias is not None else None
        init_c = initial_state.contiguous() if initial_state is not None else None
        y = torch.empty_like(x)  # (B, H, L)
        _conv_fwd_kernel[_grid(batch, H, L)](
            x, weight_c, bias_c if bias_c is not None else x, init_c if init_c is not None else x,
            y, H, L, W=W, HAS_BIAS=bias is not None, HAS_INIT=initial_state is not None,
            SILU=activation == "silu", BLOCK_H=BLOCK_H, BLOCK_T=BLOCK_T, num_warps=NUM_WARPS,
        )
        ctx.save_for_backward(x, weight_c, bias_c, init_c)
        ctx.activation = activation
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias, init = ctx.saved_tensors
        batch, H, L = x.shape
        W = weight.shape[1]
        dy = dy.contiguous()
        dx = torch.empty_like(x)
        grid = _grid(batch, H, L)
        parts = grid[0] * batch  # one dweight/dbias partial per (time block, batch row)
        dw = torch.empty(parts, H, W, device=x.device, dtype=torch.float32)
        dbias = torch.empty(parts, H, device=x.device, dtype=torch.float32) if bias is not None else None
        _conv_bwd_kernel[grid](
            x, weight, bias if bias is not None else x, init if init is not None else x, dy, dx, dw,
            dbias if dbias is not None else dw, H, L, W=W, HAS_BIAS=bias is not None,
            HAS_INIT=init is not None, SILU=ctx.activation == "silu", BLOCK_H=BLOCK_H,
            BLOCK_T=BLOCK_T, num_warps=NUM_WARPS,
        )
        dw = dw.sum(0)
        dbias = dbias.sum(0) if dbias is not None else None
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
