"""Gated RMSNorm in PyTorch: the reference the Triton kernels are tested against.

    out = norm(y * silu(z)) * weight,  norm(g) = g / sqrt(mean(g^2 over the channel's group) + eps)

mamba_ssm's `RMSNormGated` with norm_before_gate=False (Mamba-2's norm before out_proj): the
gate is applied first, then each group of `group_size` consecutive channels is normalised
separately. Without z it is a plain grouped RMSNorm. Statistics in fp32 (fp64 for fp64 inputs),
the output in y's dtype.
"""

from __future__ import annotations

import torch

from .._checks import compute_dtype


def check_gated_rms_norm(y: torch.Tensor, z: torch.Tensor | None, weight: torch.Tensor, group_size: int) -> None:
    """Shapes: y (..., width), z None or y's shape, weight (width,), group_size dividing width."""
    width = y.shape[-1]
    if weight.shape != (width,):
        raise ValueError(f"gated_rms_norm: weight must have shape ({width},), got {tuple(weight.shape)}")
    if z is not None and z.shape != y.shape:
        raise ValueError(f"gated_rms_norm: z must have y's shape {tuple(y.shape)}, got {tuple(z.shape)}")
    if group_size < 1 or width % group_size:
        raise ValueError(f"gated_rms_norm: group_size {group_size} must divide the width {width}")


def gated_rms_norm_ref(y: torch.Tensor, z: torch.Tensor | None, weight: torch.Tensor, group_size: int,
                       eps: float) -> torch.Tensor:
    """y, z `(..., width)` -> `(..., width)` in y's dtype."""
    check_gated_rms_norm(y, z, weight, group_size)
    dtype = compute_dtype(y)
    gated = y.to(dtype)
    if z is not None:
        gated = gated * torch.nn.functional.silu(z.to(dtype))
    grouped = gated.unflatten(-1, (-1, group_size))  # (..., groups, group_size)
    normed = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + eps)
    return (normed.flatten(-2) * weight.to(dtype)).to(y.dtype)
