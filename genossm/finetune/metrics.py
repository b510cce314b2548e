"""Held-out metrics of a fine-tuned model, in numpy (no scikit-learn dependency).

`task_metrics(kind, outputs, targets)`: outputs as `SequenceTaskModel.predict` gives them
(probabilities; standardised values for regression, unscaled by the caller), targets as
`TaskSpec.encode` makes them. Classification: auroc, auprc (average precision), accuracy, mcc
(multiclass: Gorodkin's R_K), macro-averaged over labels (multilabel) or one-vs-rest over classes
(multiclass, token); regression: mse, pearson, spearman, averaged over targets. Undefined values
(one class only in a set) are NaN and are left out of averages.
"""

from __future__ import annotations

import math

import numpy as np


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties count 1/2."""
    labels = labels.astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auprc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision: mean over positives of the precision at their score (ties grouped)."""
    labels = labels.astype(bool)
    if labels.sum() == 0:
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    true_positives = np.cumsum(sorted_labels)
    # Last index of each run of tied scores: precision and recall step only there.
    ends = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), len(sorted_scores) - 1]
    precision = true_positives[ends] / (ends + 1)
    recall = true_positives[ends] / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mcc(predicted: np.ndarray, actual: np.ndarray, classes: int) -> float:
    """Matthews correlation (Gorodkin's multiclass form; the usual one for two classes)."""
    confusion = np.zeros((classes, classes), dtype=np.float64)
    np.add.at(confusion, (actual.astype(int), predicted.astype(int)), 1)
    total = confusion.sum()
    correct = np.trace(confusion)
    predicted_counts, actual_counts = confusion.sum(0), confusion.sum(1)
    numerator = correct * total - actual_counts @ predicted_counts
    denominator = math.sqrt(total ** 2 - predicted_counts @ predicted_counts) * math.sqrt(
        total ** 2 - actual_counts @ actual_counts)
    return float(numerator / denominator) if denominator > 0 else 0.0


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(_average_ranks(x), _average_ranks(y))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values) != 0) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def _nanmean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def task_metrics(kind: str, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    outputs, targets = np.asarray(outputs, np.float64), np.asarray(targets, np.float64)
    if kind == "token":  # positions are the examples; padded ones (target -1) dropped
        keep = targets.reshape(-1) >= 0
        outputs = outputs.reshape(-1, outputs.shape[-1])[keep]
        targets = targets.reshape(-1)[keep][:, None]
        kind = "binary_softmax" if outputs.shape[1] == 2 else "multiclass"
    if kind == "binary":
        labels = targets[:, 0]
        return _binary(outputs[:, 0], labels)
    if kind == "binary_softmax":
        return _binary(outputs[:, 1], targets[:, 0])
    if kind == "multiclass":
        labels = targets[:, 0].astype(int)
        classes = outputs.shape[1]
        predicted = outputs.argmax(1)
        return {"auroc": _nanmean(auroc(outputs[:, c], labels == c) for c in range(classes)),
                "auprc": _nanmean(auprc(outputs[:, c], labels == c) for c in range(classes)),
                "accuracy": float((predicted == labels).mean()), "mcc": mcc(predicted, labels, classes)}
    if kind == "multilabel":
        per_label = []
        for c in range(outputs.shape[1]):
            present = ~np.isnan(targets[:, c])
            per_label.append(_binary(outputs[present, c], targets[present, c]))
        return {key: _nanmean(m[key] for m in per_label) for key in ("auroc", "auprc", "accuracy", "mcc")}
    per_target = []
    for c in range(outputs.shape[1]):
        present = ~np.isnan(targets[:, c])
        x, y = outputs[present, c], targets[present, c]
        per_target.append({"mse": float(np.mean((x - y) ** 2)) if len(x) else math.nan,
                           "pearson": pearson(x, y), "spearman": spearman(x, y)})
    return {key: _nanmean(m[key] for m in per_target) for key in ("mse", "pearson", "spearman")}


def _binary(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    labels = labels.astype(int)
    predicted = (scores >= 0.5).astype(int)
    return {"auroc": auroc(scores, labels), "auprc": auprc(scores, labels),
            "accuracy": float((predicted == labels).mean()) if len(labels) else math.nan,
            "mcc": mcc(predicted, labels, 2)}
