"""Fine-tuning recipes: every choice of a `genossm finetune` run, with defaults, as one mapping.

A YAML file (`--config FILE`) names only what it changes; `--set key=value` overrides on top
(YAML-typed, e.g. `--set pooling=attention --set mode=lora`). Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from genossm.errors import InputError

MODES = ("full", "frozen", "lora")


@dataclass
class FinetuneRecipe:
    # -- head
    pooling: str = "mean"  # mean | last | attention (sequence heads)
    dropout: float = 0.1  # before the head's linear layer
    # -- what trains
    mode: str = "full"  # full: every weight; frozen: the head only; lora: head + low-rank adapters
    lora_rank: int = 8
    lora_alpha: float = 16.0
    from_scratch: bool = False  # the backbone's architecture with fresh random weights (baseline)
    # -- data
    length: int | None = None  # model input length; default: longest training sequence (<= max_length)
    crop: str = "center"  # center | start | end: which part of a longer sequence is kept
    rc_augment: bool = True  # train on a random strand of every example
    batch_size: int = 32
    positive_weight: float = 1.0  # loss weight of positives (binary) / the last class (token): rare sites
    # -- optimiser (AdamW; linear warm-up, then constant)
    lr: float = 1e-4  # backbone (and adapters)
    head_lr: float = 1e-3
    weight_decay: float = 0.01  # matrices only (genossm.train.optim's rules)
    warmup_steps: int = 50
    gradient_clip: float | None = 1.0
    # -- schedule and stopping
    max_epochs: int = 10
    max_steps: int = -1  # -1: no limit beyond max_epochs
    monitor: str | None = None  # validation metric; default auroc (classification) / pearson (regression)
    patience: int = 3  # validations without improvement before stopping
    val_every_steps: int | None = None  # default: once per epoch
    checkpoint_every_steps: int = 200  # last.ckpt for resume after a kill
    seed: int = 0
    # -- hardware (Lightning flags)
    precision: str = "auto"  # auto: bf16-mixed on GPU, 32-true on CPU
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"  # auto, ddp
    num_nodes: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def monitor_metric(self, kind: str) -> tuple[str, str]:
        """(metric name, "max" | "min") that early stopping and the best checkpoint follow."""
        name = self.monitor or ("pearson" if kind == "regression" else "auroc")
        return name, "min" if name in ("mse", "loss") else "max"


def recipe_from_dict(data: dict[str, Any], source=None) -> FinetuneRecipe:
    known = {f.name for f in dataclasses.fields(FinetuneRecipe)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"fine-tuning recipe: unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}", path=source)
    recipe = FinetuneRecipe(**data)
    try:
        _check(recipe, source)
    except TypeError as err:  # e.g. --set batch_size=many
        raise InputError(f"fine-tuning recipe: a value has the wrong type ({err})", path=source) from None
    return recipe


def _check(recipe: FinetuneRecipe, source) -> None:
    checks = [(recipe.pooling in ("mean", "last", "attention"), "pooling must be mean, last or attention"),
              (recipe.mode in MODES, f"mode must be one of {', '.join(MODES)}"),
              (recipe.crop in ("center", "start", "end"), "crop must be center, start or end"),
              (recipe.batch_size >= 1 and recipe.max_epochs >= 1, "batch_size and max_epochs must be >= 1"),
              (recipe.lr > 0 and recipe.head_lr > 0, "lr and head_lr must be > 0"),
              (recipe.positive_weight > 0, "positive_weight must be > 0"),
              (recipe.lora_rank >= 1, "lora_rank must be >= 1"),
              (recipe.length is None or recipe.length >= 1, "length must be >= 1")]
    for ok, message in checks:
        if not ok:
            raise InputError(f"fine-tuning recipe: {message}", path=source)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key=value` overrides on a recipe mapping (a copy); values typed as YAML types them."""
    data = dict(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects key=value (e.g. pooling=attention), found {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if isinstance(value, str):
            try:  # YAML 1.1 reads "3e-4" as a string; a number is what anyone means
                value = float(value)
            except ValueError:
                pass
        data[key.strip()] = value
    return data


def load_finetune_recipe(path: str | None, overrides: list[str] = ()) -> FinetuneRecipe:
    data: dict[str, Any] = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise InputError("fine-tuning recipe not found", path=path) from None
        except yaml.YAMLError as err:
            raise InputError(f"not valid YAML: {err}", path=path) from None
        if not isinstance(data, dict):
            raise InputError("fine-tuning recipe: expected a mapping of keys", path=path)
    return recipe_from_dict(apply_overrides(data, list(overrides)), source=path)
