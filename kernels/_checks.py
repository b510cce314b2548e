"""Checks and dtype rules shared by every op: one place for what each kernel file repeated.

- `compute_dtype(t)`: the references compute in float64 for float64 inputs, else float32.
- `FAST_DTYPES` / `check_fast_dtype(op, name, t)`: the Triton paths take fp16, bf16 and fp32
  inputs (fp32 state and accumulation); anything else is a TypeError that points at the
  reference backend, which takes float64.
"""

from __future__ import annotations

import torch

FAST_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def check_fast_dtype(op: str, name: str, t: torch.Tensor) -> None:
    if t.dtype not in FAST_DTYPES:
        raise TypeError(
            f"{op}: {name} must be float16, bfloat16 or float32, got {t.dtype}; "
            "use backend='reference' for float64"
        )
