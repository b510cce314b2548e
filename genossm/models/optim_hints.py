"""Optimizer hints that a module declares for its own parameters.

A module knows things about its parameters that a trainer's name- or shape-based rules cannot
see: Mamba's `A_log` is a (d_inner, d_state) matrix but holds decay rates, not weights whose size
should be penalised; the taps of a Hyena filter come from an MLP whose weights and Sin frequencies
shape the filter, and decaying them towards zero flattens it. mamba_ssm marks such parameters with
`_no_weight_decay`, HyenaDNA with a per-parameter `_optim` dict; genossm uses one dict, attribute
`_optim` (HyenaDNA's name), set where the parameter is made:

    set_optim_hints([self.A_log, self.D], weight_decay=0.0)

Known hints: `weight_decay` (float, replaces the recipe's `optim.weight_decay` for the parameter).
Parameters without hints follow the trainer's default rules (genossm.train.optim). Hints live on
the parameter object: casting or moving the model keeps them, `copy.deepcopy` does not (torch
copies a Parameter's data, not its attributes), so group a copy's parameters from the original.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

HINTS_ATTRIBUTE = "_optim"
KNOWN_HINTS = frozenset({"weight_decay"})


def set_optim_hints(parameters: Iterable[nn.Parameter], **hints: Any) -> None:
    """Attach `hints` (e.g. `weight_decay=0.0`) to each parameter, merged with any it already has."""
    unknown = sorted(set(hints) - KNOWN_HINTS)
    if unknown:
        raise ValueError(f"unknown optimizer hint(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_HINTS))}")
    for parameter in parameters:
        setattr(parameter, HINTS_ATTRIBUTE, optim_hints(parameter) | hints)


def optim_hints(parameter: nn.Parameter) -> dict[str, Any]:
    """The hints a module set on `parameter` ({} when none)."""
    return dict(getattr(parameter, HINTS_ATTRIBUTE, {}))
