"""Choosing between an op's PyTorch reference and its Triton fast path.

Every public op (`fftconv`, `selective_scan`, `causal_conv1d`) takes `backend=None`:

- None or "auto": read the env var `GENOSSM_KERNELS` (default "auto"); in auto mode the Triton
  path runs when the tensor lives on CUDA and the op's `triton_*.py` module imported, the
  reference otherwise.
- "reference": always the PyTorch reference (any device).
- "triton": always the fast path, even on a CPU tensor (that is how the interpreter tests run
  under TRITON_INTERPRET=1). When the fast module failed to import, the error is raised here, at
  the point of use, with the import failure's reason.
"""

from __future__ import annotations

import os

import torch

ENV_VAR = "GENOSSM_KERNELS"
BACKENDS = ("auto", "reference", "triton")


class BackendUnavailableError(RuntimeError):
    """The Triton backend was forced but the op's fast path could not be imported."""


def resolve_backend(
    backend: str | None,
    tensor: torch.Tensor,
    fast_available: bool,
    *,
    op: str = "kernel",
    unavailable_reason: str | None = None,
) -> str:
    """Return "reference" or "triton" for one call of op `op` on `tensor`.

    `fast_available` says whether the op's Triton module imported; `unavailable_reason` (the
    ImportError's text) goes into the error raised when "triton" is forced without it.
    """
    source = "argument backend"
    if backend is None or backend == "auto":
        env_value = os.environ.get(ENV_VAR, "").strip().lower()
        if env_value:
            backend, source = env_value, f"environment variable {ENV_VAR}"
        else:
            backend = "auto"
    if backend not in BACKENDS:
        raise ValueError(
            f"{op}: unknown kernel backend {backend!r} (from {source}); "
            f"expected one of {', '.join(BACKENDS)}"
        )
    if backend == "reference":
        return "reference"
    if backend == "triton":
        if not fast_available:
            reason = unavailable_reason or "the module is missing"
            raise BackendUnavailableError(
                f"{op}: the Triton backend was requested (by {source}) but its fast path could not "
                f"be imported ({reason}). Install triton, or use backend='reference' / "
                f"{ENV_VAR}=reference."
            )
        return "triton"
    return "triton" if (fast_available and tensor.is_cuda) else "reference"
