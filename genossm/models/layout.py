"""Linear projections between the blocks' (B, L, d) layout and the kernels' (B, C, L) layout.

The mixers' kernels (short conv, FFT conv, selective scan) want channels first, contiguous along
L, while the residual stream is (B, L, d). `linear(x).transpose(1, 2)` gives a transposed view,
and the kernel's `.contiguous()` then copies the largest activation of the layer through a
strided elementwise kernel: at 2^20 bases that copy took 27 ms per Hyena layer on an H100, more
than the layer's FFTs. A GEMM reads either operand transposed for free, so these functions ask
cuBLAS for the layout we need instead of transposing its result. The same holds backwards:
autograd's bmm backward returns the input's gradient as a transposed view, so the two mixer
projections are autograd Functions whose backward GEMMs write each gradient in its input's
layout (at 2^20 bases that spared a 5.2 ms strided copy per mamba2-1m layer on an H200).
"""

from __future__ import annotations

import torch
from torch import nn


def _channels_first_gemm(weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """weight `(d_out, d_in)` over the channels of x `(B, d_in, L)` (any strides) -> contiguous
    `(B, d_out, L)`, plus bias."""
    # bmm, not matmul: matmul folds (2-D @ 3-D) into one GEMM and returns a transposed view.
    out = torch.bmm(weight.expand(x.shape[0], -1, -1), x)  # (B, d_out, L)
    # Under autocast the GEMM's output is bf16; a float32 bias would promote the sum to float32
    # (twice the memory of the largest activation). F.linear casts its bias the same way.
    return out if bias is None else out.add_(bias.to(out.dtype)[:, None])


def linear_channels_first(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`linear` over the channels of x `(B, d_in, L)` (any strides) -> contiguous `(B, d_out, L)`."""
    return _channels_first_gemm(linear.weight, linear.bias, x)


def _autocast_operands(x: torch.Tensor, linear: nn.Linear):
    """x, weight and bias as autocast would hand them to a GEMM (its dtype where it is on), so the
    autograd Functions below, which run with autocast off, see what `F.linear` would."""
    weight, bias = linear.weight, linear.bias
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = bias.to(dtype) if bias is not None else None
    return x, weight, bias


def _weight_grad(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum over the batch of a @ b: (B, m, k) @ (B, k, n) -> (m, n)."""
    return torch.mm(a[0], b[0]) if a.shape[0] == 1 else torch.bmm(a, b).sum(0)


class _ToChannelsFirst(torch.autograd.Function):
    """x `(B, L, d_in)` -> W x^T + b `(B, d_out, L)`, with dx in x's own layout: autograd's bmm
    backward would return it as the transpose of a `(B, d_in, L)` tensor, which the block's norm
    then copies through a strided kernel (5.2 ms per mamba2-1m layer at 2^20 on an H200)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _channels_first_gemm(weight, bias, x.transpose(1, 2))  # (B, d_out, L)

    @staticmethod
    def backward(ctx, dout):
        x, weight = ctx.saved_tensors
        dx = dweight = dbias = None
        if ctx.needs_input_grad[0]:
            dx = torch.bmm(dout.transpose(1, 2), weight.expand(dout.shape[0], -1, -1))  # (B, L, d_in)
        if ctx.needs_input_grad[1]:
            dweight = _weight_grad(dout, x)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            dbias = dout.sum((0, 2))
        return dx, dweight, dbias


class _FromChannelsFirst(torch.autograd.Function):
    """y `(B, d_in, L)` -> y^T W^T + b `(B, L, d_out)`, with dy channels-first as y is (the
    kernel that made y wants its gradient contiguous along L, not a transposed view)."""

    @staticmethod
    def forward(ctx, y, weight, bias):
        ctx.save_for_backward(y, weight)
        ctx.has_bias = bias is not None
        out = torch.bmm(y.transpose(1, 2), weight.t().expand(y.shape[0], -1, -1))  # (B, L, d_out)
        return out if bias is None else out.add_(bias)

    @staticmethod
    def backward(ctx, dout):
        y, weight = ctx.saved_tensors
        dy = dweight = dbias = None
        if ctx.needs_input_grad[0]:
            dy = torch.bmm(weight.t().expand(dout.shape[0], -1, -1), dout.transpose(1, 2))  # (B, d_in, L)
        if ctx.needs_input_grad[1]:
            dweight = _weight_grad(dout.transpose(1, 2), y.transpose(1, 2))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            dbias = dout.sum((0, 1))
        return dy, dweight, dbias


def linear_to_channels_first(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`linear(x).transpose(1, 2)` as a contiguous tensor: x `(B, L, d_in)` -> `(B, d_out, L)`;
    x's gradient comes back `(B, L, d_in)` contiguous."""
    x, weight, bias = _autocast_operands(x, linear)
    with torch.autocast(x.device.type, enabled=False):
        return _ToChannelsFirst.apply(x, weight, bias)


def linear_from_channels_first(linear: nn.Linear, y: torch.Tensor) -> torch.Tensor:
    """`linear(y.transpose(1, 2))` without copying the transpose: y `(B, d_in, L)` -> `(B, L, d_out)`;
    y's gradient comes back `(B, d_in, L)` contiguous."""
    y, weight, bias = _autocast_operands(y, linear)
    with torch.autocast(y.device.type, enabled=False):
        return _FromChannelsFirst.apply(y, weight, bias)
