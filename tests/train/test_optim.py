"""genossm.train.optim: which parameters decay. Expected sets are spelled out by name here, not
derived from the rules under test: modules' hints (Mamba A_log and D, the Hyena filter MLP and
its Sin frequencies), then vectors and embeddings, then matrices."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from genossm.models.config import ModelConfig, load_model_config
from genossm.models.lm import build_model
from genossm.models.optim_hints import optim_hints, set_optim_hints
from genossm.train.optim import check_groups_cover, parameter_groups

# Matrices that take the recipe's weight decay, per architecture (block prefix stripped).
HYENA_DECAY = {"mixer.in_proj.weight", "mixer.short_conv_weight", "mixer.out_proj.weight",
               "mlp.fc1.weight", "mlp.fc2.weight"}
MAMBA_DECAY = {"mixer.in_proj.weight", "mixer.out_proj.weight", "conv_weight", "x_proj.weight",
               "dt_proj.weight"}


def tiny_config(name: str, **overrides) -> ModelConfig:
    data = load_model_config(name).to_dict() | {"d_model": 16, "n_layers": 2, "max_length": 64} | overrides
    return ModelConfig.from_dict(data)


def expected_decay(name: str, arch: str) -> bool:
    if name == "lm_head.weight":
        return True
    local = re.sub(r"^blocks\.\d+\.(module\.)?", "", name)  # (module.: the RC wrapper)
    local = re.sub(r"^mixer\.(forward|reverse)_ssm\.", "", local)
    return local in (HYENA_DECAY if arch == "hyena" else MAMBA_DECAY)


CONFIGS = {
    "hyena": tiny_config("tiny"),
    "hyena-untied-head": tiny_config("tiny", tie_embeddings=False),
    "mamba": tiny_config("tiny-mamba"),
    "bimamba-rc": tiny_config("tiny-mamba", objective="masked", bidirectional=True, rc_equivariant=True),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_groups_hold_each_parameter_once_with_the_right_decay(config):
    model = build_model(config)
    groups = parameter_groups(model, weight_decay=0.1)
    assert [g.weight_decay for g in groups] == [0.1, 0.0]  # the recipe's decay first
    named = dict(model.named_parameters())
    grouped = [name for g in groups for name in g.names]
    assert sorted(grouped) == sorted(named)  # none lost, none twice
    assert sum(p.numel() for g in groups for p in g.parameters) == sum(p.numel() for p in model.parameters())
    for group in groups:
        assert all(named[n] is p for n, p in zip(group.names, group.parameters))
    decayed = set(groups[0].names)
    assert decayed == {name for name in named if expected_decay(name, config.arch)}
    if config.arch == "hyena":
        exempt_matrices = {n for n in groups[1].names if named[n].ndim >= 2 and "embed" not in n}
        assert exempt_matrices and all(".mixer.filter.mlp." in n for n in exempt_matrices)
        assert any(n.endswith("filter.mlp.1.freq") for n in exempt_matrices)  # a Sin frequency
    else:
        assert any(n.endswith("A_log") for n in groups[1].names)


def test_task_optimizer_uses_the_groups_planned_on_the_bare_model():
    """FSDP swaps a parameter's data for a flat 1-D shard after the task is built: the groups
    must not change (a shape rule applied then would exempt every matrix)."""
    from genossm.train.module import LanguageModelTask
    from genossm.train.recipe import OptimConfig

    task = LanguageModelTask(CONFIGS["mamba"].to_dict(), dataclasses.asdict(OptimConfig(weight_decay=0.05)),
                             max_steps=10)
    expected = [(g.weight_decay, [id(p) for p in g.parameters]) for g in task.parameter_groups]
    with torch.no_grad():
        for parameter in task.model.parameters():
            parameter.data = parameter.data.reshape(-1)
    optimizer = task.configure_optimizers()["optimizer"]
    assert [(g["weight_decay"], [id(p) for p in g["params"]]) for g in optimizer.param_groups] == expected
    assert expected[0][0] == 0.05 and len(expected[0][1]) > 0


def test_a_parameter_outside_the_plan_is_an_error():
    model = build_model(CONFIGS["hyena"])
    groups = parameter_groups(model, weight_decay=0.1)
    model.extra = torch.nn.Parameter(torch.zeros(3, 3))
    with pytest.raises(RuntimeError, match="optimizer groups hold"):
        check_groups_cover(groups, model.parameters())


def test_zero_weight_decay_makes_one_group():
    groups = parameter_groups(build_model(CONFIGS["mamba"]), weight_decay=0.0)
    assert [g.weight_decay for g in groups] == [0.0]


def test_hints_merge_and_unknown_hints_are_refused():
    parameter = torch.nn.Parameter(torch.zeros(2, 2))
    assert optim_hints(parameter) == {}
    set_optim_hints([parameter], weight_decay=0.0)
    set_optim_hints([parameter], weight_decay=0.01)
    assert optim_hints(parameter) == {"weight_decay": 0.01}
    with pytest.raises(ValueError, match="unknown optimizer hint.*lr_scale"):
        set_optim_hints([parameter], lr_scale=0.5)
