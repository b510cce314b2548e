"""The fine-tuned model: one checkpoint directory, backbone + head + labels + task.

    config.json        a genossm checkpoint of the backbone (LoRA adapters merged in), whose
                       "training" record holds "finetune" (task, labels, recipe, metrics)
    model.safetensors  the backbone's weights
    head.safetensors   the head's weights (pooling + linear)
    task.json          {"format": "genossm-finetuned", "task": TaskSpec, "pooling", "dropout",
                        "length", "crop", "summary", "head": {"file", "sha256"}}

`genossm.load_model(DIR)` loads the backbone (a DNALanguageModel, usable by every command that
takes --model: embed, score...); `load_finetuned(DIR)` builds the whole classifier/regressor.
Written to a temporary directory and renamed into place, like every genossm checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

from genossm.atomic import replace_directory
from genossm.errors import InputError
from genossm.finetune.task import TaskSpec

TASK_FILE = "task.json"
HEAD_FILE = "head.safetensors"
FORMAT = "genossm-finetuned"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """task.json, parsed."""

    spec: TaskSpec
    pooling: str
    dropout: float
    length: int
    crop: str
    extra: dict[str, Any]


def is_finetuned(path: str | os.PathLike) -> bool:
    return (Path(path) / TASK_FILE).is_file()


def read_task(path: str | os.PathLike) -> TaskRecord:
    path = Path(path)
    task_path = path / TASK_FILE
    if not task_path.is_file():
        raise InputError(f"not a fine-tuned model: {TASK_FILE} is missing (a plain genossm checkpoint? "
                         "fine-tune it first with `genossm finetune`)", path=path)
    try:
        data = json.loads(task_path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"corrupt {TASK_FILE}: {err}", path=task_path) from None
    if data.get("format") != FORMAT or data.get("format_version", 99) > FORMAT_VERSION:
        raise InputError(f"{TASK_FILE} is not a genossm fine-tuned model record this version reads", path=task_path)
    return TaskRecord(TaskSpec.from_dict(data["task"]), data["pooling"], data["dropout"], data["length"],
                      data["crop"], {k: v for k, v in data.items() if k not in ("task",)})


def save_finetuned(task_model, directory: str | os.PathLike, *, length: int, crop: str,
                   record: dict[str, Any]) -> Path:
    """Write a SequenceTaskModel (adapters already merged) as a fine-tuned checkpoint directory."""
    from safetensors.torch import save_file

    from genossm.models.checkpoint import save_model, sha256_file

    directory = Path(directory)
    if directory.exists() and not (directory / "config.json").is_file():
        if any(directory.iterdir()):
            raise InputError("directory exists and is not a genossm checkpoint; choose a new one", path=directory)
    backbone = getattr(task_model.backbone, "model", task_model.backbone)  # a converted model's view
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.finetuned{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        spec = task_model.spec
        save_model(backbone, tmp, extra={"finetune": {"task": spec.summary(), **record}})
        head = {name: t.detach().float().cpu().contiguous() for name, t in task_model.head_state_dict().items()}
        save_file(head, tmp / HEAD_FILE, metadata={"format": FORMAT})
        task = {"format": FORMAT, "format_version": FORMAT_VERSION, "summary": spec.summary(),
                "task": spec.to_dict(), "outputs": spec.output_names, "pooling": task_model.pooling_kind,
                "dropout": task_model.head[0].p, "length": int(length), "crop": crop,
                "head": {"file": HEAD_FILE, "sha256": sha256_file(tmp / HEAD_FILE)}}
        (tmp / TASK_FILE).write_text(json.dumps(task, indent=2) + "\n")
        replace_directory(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def build_task_model(backbone, record: TaskRecord):
    from genossm.finetune.heads import SequenceTaskModel
    from genossm.models.vocab import inference_view

    return SequenceTaskModel(inference_view(backbone), record.spec, pooling=record.pooling or "mean",
                             dropout=record.dropout)


def load_finetuned(path: str | os.PathLike, device=None):
    """A fine-tuned checkpoint directory -> (SequenceTaskModel in eval mode, TaskRecord)."""
    from safetensors.torch import load_file

    from genossm.models.checkpoint import load_model, sha256_file

    path = Path(path)
    record = read_task(path)
    head_path = path / HEAD_FILE
    if not head_path.is_file():
        raise InputError(f"fine-tuned model has no {HEAD_FILE}", path=path)
    expected = record.extra.get("head", {}).get("sha256")
    if expected and sha256_file(head_path) != expected:
        raise InputError(f"{HEAD_FILE} does not match the SHA-256 in {TASK_FILE} (corrupt or modified)",
                         path=head_path)
    model = build_task_model(load_model(path), record)
    head = load_file(head_path)
    missing = set(model.head_state_dict()) ^ set(head)
    if missing:
        raise InputError(f"{HEAD_FILE} does not fit the task in {TASK_FILE} (tensors {sorted(missing)})",
                         path=head_path)
    model.load_state_dict({**{f"backbone.{k}": v for k, v in model.backbone.state_dict().items()}, **head})
    return model.to(device).eval(), record
