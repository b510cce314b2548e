"""AUROC from ranks (numpy only), ties counted as half, and the tables the benchmark reports."""

from __future__ import annotations

import numpy as np

SUBSTITUTIONS = ("S>W", "W>S", "S>S", "W>W")
CODON_POSITIONS = ("1", "2", "3")


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start of each run of equal values, and each run's mean rank.
    starts = np.flatnonzero(np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]]))
    ends = np.concatenate([starts[1:], [len(values)]])
    mean_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + P(tie) / 2 (Mann-Whitney U / (n_pos n_neg)).
    NaN scores are dropped; NaN when either side is empty."""
    positive = np.asarray(positive, dtype=np.float64)
    negative = np.asarray(negative, dtype=np.float64)
    positive, negative = positive[~np.isnan(positive)], negative[~np.isnan(negative)]
    if not len(positive) or not len(negative):
        return float("nan")
    ranks = average_ranks(np.concatenate([positive, negative]))
    n_pos = len(positive)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * len(negative)))


def pair_table(scores: dict[str, np.ndarray], labels: np.ndarray, substitutions: np.ndarray,
               positive: tuple[str, ...], negative: tuple[str, ...], min_per_side: int = 10,
               genomes: np.ndarray | None = None, codon_positions: np.ndarray | None = None) -> dict:
    """AUROC of every score (higher = more damaging) for `positive` classes against `negative`
    ones, pooled, within each substitution class, given `genomes` within each genome, and given
    `codon_positions` ("1", "2", "3" or "." per SNV, `codons.codon_position`) within each codon
    position where both sides are coding (None where a side has fewer than `min_per_side` SNVs)."""
    is_pos, is_neg = np.isin(labels, positive), np.isin(labels, negative)
    table = {"n": [int(is_pos.sum()), int(is_neg.sum())],
             "pooled": {name: round(auroc(s[is_pos], s[is_neg]), 4) for name, s in scores.items()}}
    strata = [("by_substitution", substitutions, SUBSTITUTIONS)]
    if genomes is not None:
        strata.append(("by_genome", genomes, sorted(set(genomes))))
    if codon_positions is not None and (codon_positions[is_pos] != ".").any() \
            and (codon_positions[is_neg] != ".").any():
        # Synonymous SNVs are mostly third positions and missense ones first and second: within
        # one position the codon position's own composition and predictability cancel out.
        strata.append(("by_codon_position", codon_positions, CODON_POSITIONS))
    for stratum, values, keys in strata:
        table[stratum] = {}
        for key in keys:
            pos, neg = is_pos & (values == key), is_neg & (values == key)
            row = {"n": [int(pos.sum()), int(neg.sum())]}
            enough = min(pos.sum(), neg.sum()) >= min_per_side
            row.update({name: (round(auroc(s[pos], s[neg]), 4) if enough else None) for name, s in scores.items()})
            table[stratum][key] = row
    return table
