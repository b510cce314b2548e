"""AdamW parameter groups of `genossm pretrain`: which parameters decay, and by how much.

Per parameter, the first rule that applies:
1. a hint set by the module that owns it (genossm.models.optim_hints): Mamba's `A_log` and `D`
   and the Hyena filter's MLP (Sin frequencies included) take no weight decay, as in mamba_ssm
   (`_no_weight_decay`) and HyenaDNA (the implicit filter's `_optim`);
2. vectors (biases, norm scales) and embeddings take none (GPT-2, HyenaDNA);
3. every other matrix takes the recipe's `optim.weight_decay`.

The groups are planned on the model as built, before a strategy wraps it: FSDP (with its original
parameters, Lightning's default) keeps every Parameter object but swaps its data for a flattened
1-D shard, so a shape rule applied to the wrapped model would exempt every matrix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from genossm.models.optim_hints import optim_hints


@dataclass(frozen=True)
class ParameterGroup:
    """One AdamW parameter group: its weight decay and its parameters (with their names)."""

    weight_decay: float
    names: tuple[str, ...]
    parameters: tuple[nn.Parameter, ...]

    def as_optimizer_group(self) -> dict:
        return {"params": list(self.parameters), "weight_decay": self.weight_decay}


def parameter_weight_decay(name: str, parameter: nn.Parameter, weight_decay: float) -> float:
    """The weight decay of one parameter (`name` as `named_parameters` gives it) under the rules."""
    hints = optim_hints(parameter)
    if "weight_decay" in hints:
        return float(hints["weight_decay"])
    if parameter.ndim < 2 or "embed" in name:
        return 0.0
    return weight_decay


def parameter_groups(model: nn.Module, weight_decay: float) -> list[ParameterGroup]:
    """The trainable parameters of `model` (shared ones once), grouped by weight decay, the
    recipe's decay first; empty groups are left out."""
    members: dict[float, list[tuple[str, nn.Parameter]]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            members.setdefault(parameter_weight_decay(name, parameter, weight_decay), []).append((name, parameter))
    order = sorted(members, key=lambda decay: (decay != weight_decay, decay))
    return [ParameterGroup(decay, tuple(n for n, _ in members[decay]), tuple(p for _, p in members[decay]))
            for decay in order]


def check_groups_cover(groups: list[ParameterGroup], parameters: Iterable[nn.Parameter]) -> None:
    """Raise unless every trainable parameter in `parameters` is in exactly one group."""
    planned = [id(p) for group in groups for p in group.parameters]
    trainable = {id(p) for p in parameters if p.requires_grad}
    if len(planned) != len(set(planned)) or set(planned) != trainable:
        raise RuntimeError(
            f"optimizer groups hold {len(planned)} parameters ({len(set(planned))} distinct) but the "
            f"model has {len(trainable)} trainable ones; were parameters added, frozen or replaced "
            "after the task was built?"
        )
