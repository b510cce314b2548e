"""Mamba's selective scan: `selective_scan` dispatches to Triton or the chunked PyTorch reference."""

from __future__ import annotations

import torch

from ..dispatch import resolve_backend
from .reference import selective_scan_chunked, selective_scan_ref

try:
    from .chunk_scan import selective_scan_triton
except ImportError as error:  # optional fast path: the reference covers every device
    selective_scan_triton = None
    TRITON_IMPORT_ERROR: str | None = f"{type(error).__name__}: {error}"
else:
    TRITON_IMPORT_ERROR = None

__all__ = [
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_ref",
    "selective_scan_triton",
]


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    *,
    backend: str | None = None,
):
    """Selective scan with mamba_ssm's layouts; returns `y` or `(y, last_state)`.

    Shapes and math: see `genossm.kernels.selective_scan.reference`. The reference backend is
    the chunked parallel scan (`selective_scan_chunked`); the sequential `selective_scan_ref` is
    the test oracle.
    """
    chosen = resolve_backend(
        backend,
        u,
        selective_scan_triton is not None,
        op="selective_scan",
        unavailable_reason=TRITON_IMPORT_ERROR,
    )
    scan = selective_scan_triton if chosen == "triton" else selective_scan_chunked
    return scan(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state, cu_seqlens
    )
