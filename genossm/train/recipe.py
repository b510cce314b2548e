"""Training recipes: a YAML file (configs/train/NAME.yaml) plus `--set key=value` overrides.

A recipe has five sections; every field has a default, so a recipe names only what it changes:

    model: tiny                      # a shipped model config (configs/models) or a YAML path
    model_overrides: {max_length: 4096}
    seed: 0
    data: {window_length: 1024, batch_size: 32, ...}      # genossm.data.DataConfig
    optim: {lr: 1.0e-3, warmup_steps: 100, ...}           # OptimConfig
    trainer: {max_steps: 2000, checkpoint_every: 500, ...} # TrainerConfig
    length_warmup: [{steps: 200, window_length: 256, batch_size: 128}, ...]

Overrides use dotted keys and YAML-typed values: `--set optim.lr=3e-4 --set
data.reverse_complement=false --set length_warmup=[]`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genossm.data.datamodule import DataConfig
from genossm.errors import InputError, UsageError

# Field annotations (strings, under `from __future__ import annotations`) -> the YAML types that
# fit them; fields of other types are checked by their own code.
_SCALAR_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str, int, float)}  # `precision: 32` is a name too


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to `min_lr_ratio * lr` at `max_steps`."""

    lr: float = 1e-3
    # Not applied to biases, norms, embeddings (GPT-2 practice) nor to parameters whose module
    # exempts them (Mamba A_log/D, the Hyena filter MLP): genossm.train.optim.
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1


@dataclass
class TrainerConfig:
    max_steps: int = 1000
    accumulate: int = 1  # gradient accumulation: optimizer steps see accumulate x batch windows
    val_every: int = 250  # optimizer steps between validations of the fixed held-out set
    checkpoint_every: int = 250  # optimizer steps between Lightning checkpoints
    log_every: int = 10
    precision: str = "auto"  # "auto": bf16-mixed on GPU, 32-true on CPU
    gradient_clip: float | None = 1.0
    activation_checkpointing: bool = False  # recompute each block in the backward pass
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"  # "auto", "ddp", "fsdp" (any Lightning strategy name)
    num_nodes: int = 1
    compile: bool = False  # torch.compile the model
    max_time_s: int | None = None  # safety net: stop (and still save, test, export) after this


@dataclass
class LengthWarmupStage:
    """HyenaDNA's sequence-length warm-up: `steps` optimizer steps at this window length."""

    steps: int
    window_length: int
    batch_size: int | None = None  # default: keep tokens per batch constant (capped)


@dataclass
class Recipe:
    model: str = "tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    length_warmup: list[LengthWarmupStage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _section(cls, data: Any, name: str, source):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise InputError(f"training recipe: section {name!r} must be a mapping, found {data!r}", path=source)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"training recipe: unknown field(s) {', '.join(unknown)} in {name!r}; "
                         f"known: {', '.join(sorted(known))}", path=source)
    _check_types(cls, data, name, source)
    if cls is DataConfig:
        return DataConfig.from_dict(data)
    values = dict(data)
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return cls(**values)


def _check_types(cls, data: dict, section: str, source) -> None:
    """A value of the wrong YAML type (`--set optim.lr=fast`) as a one-line error naming the field."""
    for spec in dataclasses.fields(cls):
        if spec.name not in data or not isinstance(spec.type, str):
            continue
        alternatives = [part.strip() for part in spec.type.split("|")]
        value = data[spec.name]
        if value is None and "None" in alternatives:
            continue
        if any(kind not in _SCALAR_TYPES and kind != "None" for kind in alternatives):
            continue  # lists, tuples: checked where they are used
        allowed = tuple(t for kind in alternatives if kind in _SCALAR_TYPES for t in _SCALAR_TYPES[kind])
        if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
            wanted = " or ".join("null" if kind == "None" else kind for kind in alternatives)
            raise InputError(f"training recipe: {section}.{spec.name} must be {wanted}, found {value!r}",
                             path=source)


def recipe_from_dict(data: dict[str, Any], source: str | os.PathLike | None = None) -> Recipe:
    if not isinstance(data, dict):
        raise InputError("training recipe: expected a mapping of sections", path=source)
    known = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"training recipe: unknown section(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}", path=source)
    warmup = data.get("length_warmup") or []
    if not isinstance(warmup, list):
        raise InputError("training recipe: length_warmup must be a list of {steps, window_length}", path=source)
    try:
        recipe = Recipe(
            model=str(data.get("model", "tiny")),
            model_overrides=dict(data.get("model_overrides") or {}),
            seed=int(data.get("seed", 0)),
            data=_section(DataConfig, data.get("data"), "data", source),
            optim=_section(OptimConfig, data.get("optim"), "optim", source),
            trainer=_section(TrainerConfig, data.get("trainer"), "trainer", source),
            length_warmup=[_section(LengthWarmupStage, stage, "length_warmup", source) for stage in warmup],
        )
    except TypeError as err:
        raise InputError(f"training recipe: {err}", path=source) from None
    validate(recipe, source)
    return recipe


def validate(recipe: Recipe, source=None) -> None:
    t, d, o = recipe.trainer, recipe.data, recipe.optim
    for name, value in (("trainer.max_steps", t.max_steps), ("trainer.accumulate", t.accumulate),
                        ("trainer.val_every", t.val_every), ("trainer.checkpoint_every", t.checkpoint_every),
                        ("data.window_length", d.window_length), ("data.batch_size", d.batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"training recipe: {name} must be a positive integer, found {value!r}", path=source)
    if not 0 <= d.max_n_fraction <= 1:
        raise InputError(f"training recipe: data.max_n_fraction must lie in [0, 1], found {d.max_n_fraction}", path=source)
    if not 0 <= d.read_fraction <= 1:
        raise InputError(f"training recipe: data.read_fraction must lie in [0, 1], found {d.read_fraction}", path=source)
    if o.lr <= 0 or o.warmup_steps < 0:
        raise InputError("training recipe: optim.lr must be > 0 and optim.warmup_steps >= 0", path=source)
    for stage in recipe.length_warmup:
        if stage.steps < 1 or stage.window_length < 1:
            raise InputError("training recipe: every length_warmup stage needs steps >= 1 and "
                             "window_length >= 1", path=source)


def parse_value(text: str) -> Any:
    """A `--set` value, typed as YAML types it (`3e-4` -> float, `false` -> bool, `[]` -> list)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads "3e-4" (no dot) as a string; a number is what anyone means
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.sub=value` overrides to a recipe dict (a copy); unknown keys fail later."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects key=value (e.g. optim.lr=3e-4), found {item!r}")
        node = data
        parts = key.split(".")
        check_override_key(key)
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InputError(f"--set {key}: {part!r} is not a section of the recipe")
            node = child
        node[parts[-1]] = parse_value(text)
    return data


def check_override_key(key: str) -> None:
    """A `--set` key that names no recipe field is a usage error, with the closest names."""
    import difflib

    sections = {"data": DataConfig, "optim": OptimConfig, "trainer": TrainerConfig}
    parts = key.split(".")
    top = {f.name for f in dataclasses.fields(Recipe)}
    if parts[0] not in top:
        candidates = top
    elif parts[0] in sections and len(parts) > 1:
        candidates = {f.name for f in dataclasses.fields(sections[parts[0]])}
        if parts[1] in candidates and len(parts) == 2:
            return
        candidates = {f"{parts[0]}.{name}" for name in candidates}
    elif parts[0] in sections or len(parts) == 1 or parts[0] == "model_overrides":
        return
    else:
        candidates = top
    close = difflib.get_close_matches(key, sorted(candidates), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; known: {', '.join(sorted(candidates))}"
    raise UsageError(f"--set {key}: no such recipe field{hint}")


def recipe_path(name_or_path: str | os.PathLike) -> Path:
    """A shipped recipe by name (`tiny-cpu`) or a YAML file by path."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if path.suffix in (".yaml", ".yml") or os.sep in str(name_or_path):
        raise InputError("training recipe not found; check the path", path=path)
    from genossm.configs import CONFIGS

    shipped = CONFIGS / "train" / f"{name_or_path}.yaml"
    if not shipped.exists():
        names = sorted(p.stem for p in (CONFIGS / "train").glob("*.yaml"))
        raise UsageError(f"--config: no training recipe named {str(name_or_path)!r}; shipped recipes: "
                         f"{', '.join(names)}, or give the path of a YAML file")
    return shipped


def load_recipe(name_or_path: str | os.PathLike, overrides: list[str] = ()) -> Recipe:
    path = recipe_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(err, 'problem', err)}", path=path,
                         line=None if mark is None else mark.line + 1) from None
    return recipe_from_dict(apply_overrides(data, list(overrides)), source=path)
