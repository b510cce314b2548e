"""Short depthwise causal convolution: `causal_conv1d` dispatches to Triton or the reference."""

from __future__ import annotations

import torch

from ..dispatch import resolve_backend
from .reference import causal_conv1d_ref, causal_conv1d_step

try:
    from .direct_conv import causal_conv1d_triton
except ImportError as error:  # optional fast path: the reference covers every device
    causal_conv1d_triton = None
    TRITON_IMPORT_ERROR: str | None = f"{type(error).__name__}: {error}"
else:
    TRITON_IMPORT_ERROR = None

__all__ = ["causal_conv1d", "causal_conv1d_ref", "causal_conv1d_step", "causal_conv1d_triton"]


def causal_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
    *,
    backend: str | None = None,
):
    """Depthwise causal conv of x `(B, H, L)` with weight `(H, W)`, W in 2..4.

    Returns y `(B, H, L)` or `(y, final_state)`, final_state `(B, H, W-1)` = the last W-1
    inputs (feed it as the next chunk's initial_state). activation: None or "silu".
    """
    chosen = resolve_backend(
        backend,
        x,
        causal_conv1d_triton is not None,
        op="causal_conv1d",
        unavailable_reason=TRITON_IMPORT_ERROR,
    )
    conv = causal_conv1d_triton if chosen == "triton" else causal_conv1d_ref
    return conv(x, weight, bias, activation, initial_state, return_final_state)
