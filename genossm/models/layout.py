"""Linear projections between the blocks' (B, L, d) layout and the kernels' (B, C, L) layout.

The mixers' kernels (short conv, FFT conv, selective scan) want channels first, contiguous along
L, while the residual stream is (B, L, d). `linear(x).transpose(1, 2)` gives a transposed view,
and the kernel's `.contiguous()` then copies the largest activation of the layer through a
strided elementwise kernel: at 2^20 bases that copy took 27 ms per Hyena layer on an H100, more
than the layer's FFTs. A GEMM reads either operand transposed for free, so these functions ask
cuBLAS for the layout we need instead of transposing its result.
"""

from __future__ import annotations

import torch
from torch import nn


def _bias(linear: nn.Linear, like: torch.Tensor) -> torch.Tensor | None:
    # Under autocast the GEMM's output is bf16; a float32 bias would promote the sum to float32
    # (twice the memory of the largest activation). F.linear casts its bias the same way.
    return None if linear.bias is None else linear.bias.to(like.dtype)


def linear_channels_first(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`linear` over the channels of x `(B, d_in, L)` (any strides) -> contiguous `(B, d_out, L)`."""
    # bmm, not matmul: matmul folds (2-D @ 3-D) into one GEMM and returns a transposed view.
    weight = linear.weight.expand(x.shape[0], -1, -1)  # (B, d_out, d_in), no copy
    out = torch.bmm(weight, x)  # (B, d_out, L)
    bias = _bias(linear, out)
    return out if bias is None else out + bias[:, None]


def linear_to_channels_first(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`linear(x).transpose(1, 2)` as a contiguous tensor: x `(B, L, d_in)` -> `(B, d_out, L)`."""
    return linear_channels_first(linear, x.transpose(1, 2))


def linear_from_channels_first(linear: nn.Linear, y: torch.Tensor) -> torch.Tensor:
    """`linear(y.transpose(1, 2))` without copying the transpose: y `(B, d_in, L)` -> `(B, L, d_out)`."""
    weight = linear.weight.t().expand(y.shape[0], -1, -1)  # (B, d_in, d_out), no copy
    out = torch.bmm(y.transpose(1, 2), weight)  # batched GEMM on the transposed operand
    bias = _bias(linear, out)
    return out if bias is None else out + bias
