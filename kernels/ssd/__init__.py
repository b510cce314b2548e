"""Mamba-2's SSD layer: `ssd` runs the chunked PyTorch path on every device.

Shapes and math: `genossm.kernels.ssd.reference`. The reference backend is `ssd_chunked`;
`ssd_ref` (sequential recurrence) is the test oracle and `ssd_quadratic` the attention form.
There are no Triton kernels for this op yet (docs/kernels/ssd.md lists what they need), so
asking for `backend="triton"` is an error that says so.
"""

from __future__ import annotations

import torch

from ..dispatch import resolve_backend
from .reference import ssd_chunked, ssd_quadratic, ssd_ref

NO_FAST_PATH = "genossm has no Triton kernels for ssd yet; the chunked PyTorch path runs everywhere"

__all__ = ["ssd", "ssd_chunked", "ssd_quadratic", "ssd_ref"]

DEFAULT_CHUNK_SIZE = 64


def ssd(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    initial_states: torch.Tensor | None = None,
    return_final_states: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    backend: str | None = None,
):
    """SSD with mamba_chunk_scan_combined's layouts; returns `y` or `(y, final_states)`.

    x `(B, L, H, P)`, dt `(B, L, H)`, A `(H,)`, B/C `(B, L, G, N)`; the rest in
    `genossm.kernels.ssd.reference`. `chunk_size` is the chunk length of the chunked algorithm
    (the result does not depend on it beyond rounding).
    """
    resolve_backend(backend, x, False, op="ssd", unavailable_reason=NO_FAST_PATH)  # checks the name
    return ssd_chunked(x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_states,
                       return_final_states, cu_seqlens, chunk_size=chunk_size)
