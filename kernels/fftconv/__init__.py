"""Long causal convolution of Hyena: `fftconv` dispatches to Triton or the torch.fft reference."""

from __future__ import annotations

import torch

from ..dispatch import resolve_backend
from .reference import direct_causal_conv, fast_fft_size, fftconv_chunked, fftconv_ref

try:
    from .fft_conv import fftconv_triton
except ImportError as error:  # optional fast path: the reference covers every device
    fftconv_triton = None
    TRITON_IMPORT_ERROR: str | None = f"{type(error).__name__}: {error}"
else:
    TRITON_IMPORT_ERROR = None

__all__ = [
    "direct_causal_conv",
    "fast_fft_size",
    "fftconv",
    "fftconv_chunked",
    "fftconv_ref",
    "fftconv_triton",
]


def fftconv(
    u: torch.Tensor,
    k: torch.Tensor,
    D: torch.Tensor | None = None,
    pregate: torch.Tensor | None = None,
    postgate: torch.Tensor | None = None,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """Causal convolution of u `(B, H, L)` with per-channel filters k `(H, Lk)`, Lk <= L.

    `v = u * pregate`; `y = causal_conv(v, k) + v * D`; `y = y * postgate` (gates and D optional,
    gates `(B, H, L)`, D `(H,)`). Returns `(B, H, L)` in u's dtype. `backend`: None/"auto",
    "reference" or "triton" (see `genossm.kernels.dispatch`).
    """
    chosen = resolve_backend(
        backend, u, fftconv_triton is not None, op="fftconv", unavailable_reason=TRITON_IMPORT_ERROR
    )
    if chosen == "triton":
        return fftconv_triton(u, k, D, pregate, postgate)
    return fftconv_ref(u, k, D, pregate, postgate)
