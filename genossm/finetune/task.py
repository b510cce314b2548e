"""What a fine-tuned model predicts: the task kind, its labels, and how raw labels become targets.

Kinds (`TaskSpec.kind`):
    binary       one label column with two classes; one logit, the second class is positive
    multiclass   one label column with three or more classes; one logit per class (softmax)
    multilabel   several label columns, each 0/1 (missing: NA/empty); one logit per column
    regression   one or more numeric columns; targets standardised with the training set's mean
                 and standard deviation (predictions are reported in the original units)
    token        one column holding one class character per base (e.g. "0001000"); per-position
                 classification, classes are the characters seen in training

`infer_kind` picks the kind from the values when the user does not: several columns -> multilabel
if every value is 0/1 else regression; one column -> regression when the values are numbers that
are not all small integers, else binary / multiclass by the number of classes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from genossm.errors import InputError

KINDS = ("binary", "multiclass", "multilabel", "regression", "token")
MISSING = ("", "NA", "NaN", "nan", ".", "None")
# Integers with more distinct values than this in one column read as a regression target.
MAX_AUTO_CLASSES = 20


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    kind: str
    label_columns: tuple[str, ...]
    classes: tuple[str, ...] = ()  # binary / multiclass / token: class names in logit order
    target_mean: tuple[float, ...] = ()  # regression: training-set statistics (standardisation)
    target_std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"task {self.kind!r}: expected one of {', '.join(KINDS)}")

    @property
    def outputs(self) -> int:
        """Logits per sequence (per position for token tasks)."""
        if self.kind == "binary":
            return 1
        if self.kind in ("multiclass", "token"):
            return len(self.classes)
        return len(self.label_columns)

    @property
    def output_names(self) -> list[str]:
        """Names of the prediction columns `genossm predict` writes."""
        if self.kind == "binary":
            return [f"p_{self.classes[1]}"]
        if self.kind in ("multiclass", "token"):
            return [f"p_{name}" for name in self.classes]
        if self.kind == "multilabel":
            return [f"p_{name}" for name in self.label_columns]
        return list(self.label_columns)

    def summary(self) -> str:
        if self.kind in ("binary", "multiclass", "token"):
            return f"{self.kind} classification of {'/'.join(self.classes)} (column {self.label_columns[0]})"
        what = "classification" if self.kind == "multilabel" else ""
        return f"{self.kind} {what}".strip() + f" of {', '.join(self.label_columns)}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSpec":
        return cls(kind=data["kind"], label_columns=tuple(data["label_columns"]),
                   classes=tuple(data.get("classes", ())), target_mean=tuple(data.get("target_mean", ())),
                   target_std=tuple(data.get("target_std", ())))

    # -- labels -> targets ------------------------------------------------------------------------
    def encode(self, values: Sequence[str], where: str = "") -> np.ndarray:
        """Raw label strings of one example -> float32 targets: (1,) class id for binary and
        multiclass, (C,) for multilabel and regression (NaN = missing), (L,) class ids for token."""
        if self.kind in ("binary", "multiclass"):
            value = values[0]
            if value not in self._class_ids:
                raise InputError(f"label {value!r}{where} is not one of the classes "
                                 f"{', '.join(self.classes)} seen in training")
            return np.array([self._class_ids[value]], dtype=np.float32)
        if self.kind == "token":
            ids = np.array([self._class_ids.get(ch, -1) for ch in values[0]], dtype=np.float32)
            if (ids < 0).any():
                bad = values[0][int(np.flatnonzero(ids < 0)[0])]
                raise InputError(f"per-position label {bad!r}{where} is not one of the classes "
                                 f"{', '.join(self.classes)} seen in training")
            return ids
        out = np.array([_number(v, where) for v in values], dtype=np.float32)
        if self.kind == "regression" and self.target_mean:
            out = (out - np.asarray(self.target_mean, np.float32)) / np.asarray(self.target_std, np.float32)
        elif self.kind == "multilabel" and not np.all(np.isnan(out) | (out == 0) | (out == 1)):
            raise InputError(f"multilabel targets{where} must be 0 or 1 (or NA), found {list(values)}")
        return out

    @property
    def _class_ids(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.classes)}

    def unscale(self, predictions: np.ndarray) -> np.ndarray:
        """Regression outputs (standardised) -> original units; other kinds unchanged."""
        if self.kind != "regression" or not self.target_mean:
            return predictions
        return predictions * np.asarray(self.target_std) + np.asarray(self.target_mean)


def _number(value: str, where: str) -> float:
    if value in MISSING:
        return math.nan
    try:
        return float(value)
    except ValueError:
        raise InputError(f"label {value!r}{where} is not a number") from None


def build_spec(kind: str | None, label_columns: Sequence[str], training_labels: list[Sequence[str]],
               classes: Sequence[str] | None = None) -> TaskSpec:
    """The TaskSpec for `label_columns` given the training rows' raw labels; `classes` fixes the
    class order (binary: the second is the positive class; default: sorted, numbers numerically)."""
    columns = tuple(label_columns)
    kind = kind or infer_kind(columns, training_labels)
    if kind not in KINDS:
        raise InputError(f"--task {kind!r}: expected one of {', '.join(KINDS)}")
    if kind in ("binary", "multiclass", "token") and len(columns) != 1:
        raise InputError(f"a {kind} task reads one label column, got {len(columns)}: {', '.join(columns)}")
    if kind == "token":
        seen = sorted({ch for row in training_labels for ch in row[0]})
    else:
        seen = _sorted_classes({row[0] for row in training_labels})
    if kind in ("binary", "multiclass", "token"):
        if classes:
            unknown = sorted(set(seen) - set(classes))
            if unknown:
                raise InputError(f"training labels {', '.join(unknown)} are not in --classes {','.join(classes)}")
            seen = list(classes)
        if kind == "binary" and len(seen) != 2:
            raise InputError(f"a binary task needs exactly 2 classes in column {columns[0]!r}, found "
                             f"{len(seen)}: {', '.join(seen[:10])}; use --task multiclass")
        if kind == "multiclass" and len(seen) < 2:
            raise InputError(f"column {columns[0]!r} has a single class {seen}: nothing to learn")
        return TaskSpec(kind, columns, classes=tuple(seen))
    spec = TaskSpec(kind, columns)
    if kind == "regression":
        values = np.array([[_number(v, "") for v in row] for row in training_labels], dtype=np.float64)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
        std = np.where(std > 0, std, 1.0)
        spec = TaskSpec(kind, columns, target_mean=tuple(map(float, mean)), target_std=tuple(map(float, std)))
    return spec


def infer_kind(columns: Sequence[str], rows: list[Sequence[str]]) -> str:
    if len(columns) > 1:
        values = {v for row in rows for v in row if v not in MISSING}
        return "multilabel" if values <= {"0", "1", "0.0", "1.0"} else "regression"
    values = {row[0] for row in rows}
    numbers = [_try_float(v) for v in values if v not in MISSING]
    if numbers and all(n is not None for n in numbers):
        small_integers = all(float(n).is_integer() for n in numbers) and len(values) <= MAX_AUTO_CLASSES
        if not small_integers:
            return "regression"
    return "binary" if len(values) == 2 else "multiclass"


def _try_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _sorted_classes(values: set[str]) -> list[str]:
    numbers = {v: _try_float(v) for v in values}
    if all(n is not None for n in numbers.values()):
        return sorted(values, key=lambda v: numbers[v])
    return sorted(values)
