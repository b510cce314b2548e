"""One way to compare a fast path with its reference: relative L2 error in float64.

`assert_close(actual, expected, tol, name)` fails with the measured error and the tensor's name;
`relative_error` returns the number for tests that report or combine errors. A NaN or inf in
`actual` always fails (it would otherwise compare as "not less than" and hide where it came from).
`floor` bounds the denominator, so an exactly-zero reference (dA at L = 1 with no initial state)
accepts rounding-level values instead of dividing by zero.
"""

from __future__ import annotations

import torch


def relative_error(actual: torch.Tensor, expected: torch.Tensor, floor: float = 1e-30) -> float:
    """||actual - expected|| / max(||expected||, floor), in float64."""
    actual, expected = actual.detach().double(), expected.detach().double()
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert torch.isfinite(actual).all(), "non-finite values in the result"
    return ((actual - expected).norm() / expected.norm().clamp_min(floor)).item()


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, name: str = "output",
                 floor: float = 1e-30) -> None:
    """Fail unless the relative L2 error of `actual` against `expected` is below `tol`."""
    error = relative_error(actual, expected, floor)
    assert error < tol, f"{name}: relative error {error:.3g} >= tolerance {tol:.3g}"
