"""Mamba-2's SSD layer: `ssd` dispatches to the Triton chunked kernels or the chunked PyTorch path.

Shapes and math: `genossm.kernels.ssd.reference`. The reference backend is `ssd_chunked`;
`ssd_ref` (sequential recurrence) is the test oracle and `ssd_quadratic` the attention form.
The Triton path (`chunk_ssd.py`, kernels in `chunk_ssd_kernels.py`) runs on CUDA tensors in
auto mode; design and figures in docs/kernels/ssd.md.
"""

from __future__ import annotations

import torch

from ..dispatch import resolve_backend
from .reference import ssd_chunked, ssd_quadratic, ssd_ref

try:
    from .chunk_ssd import ssd_triton
except ImportError as error:  # optional fast path: the reference covers every device
    ssd_triton = None
    TRITON_IMPORT_ERROR: str | None = f"{type(error).__name__}: {error}"
else:
    TRITON_IMPORT_ERROR = None

__all__ = ["ssd", "ssd_chunked", "ssd_quadratic", "ssd_ref", "ssd_triton"]

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
    (the result does not depend on it beyond rounding; the Triton path needs a power of two
    >= 16). `backend`: None/"auto", "reference" or "triton" (see `genossm.kernels.dispatch`).
    """
    chosen = resolve_backend(backend, x, ssd_triton is not None, op="ssd",
                             unavailable_reason=TRITON_IMPORT_ERROR)
    implementation = ssd_triton if chosen == "triton" else ssd_chunked
    return implementation(x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_states,
                          return_final_states, cu_seqlens, chunk_size=chunk_size)
