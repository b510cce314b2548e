"""Gated RMSNorm (Mamba-2's norm before out_proj): `gated_rms_norm` dispatches to Triton or the reference."""

from __future__ import annotations

import torch

from ..dispatch import resolve_backend
from .reference import gated_rms_norm_ref

try:
    from .fused_rmsnorm import gated_rms_norm_triton
except ImportError as error:  # optional fast path: the reference covers every device
    gated_rms_norm_triton = None
    TRITON_IMPORT_ERROR: str | None = f"{type(error).__name__}: {error}"
else:
    TRITON_IMPORT_ERROR = None

__all__ = ["gated_rms_norm", "gated_rms_norm_ref", "gated_rms_norm_triton"]


def gated_rms_norm(
    y: torch.Tensor,
    z: torch.Tensor | None,
    weight: torch.Tensor,
    group_size: int,
    eps: float,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """norm(y * silu(z)) * weight over groups of `group_size` channels (z None: no gate).

    y, z `(..., T, width)`, weight `(width,)`; statistics in fp32, the output in y's dtype.
    """
    chosen = resolve_backend(
        backend,
        y,
        gated_rms_norm_triton is not None,
        op="gated_rms_norm",
        unavailable_reason=TRITON_IMPORT_ERROR,
    )
    norm = gated_rms_norm_triton if chosen == "triton" else gated_rms_norm_ref
    return norm(y, z, weight, group_size, eps)
