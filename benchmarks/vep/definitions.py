"""Every score definition of `genossm score --score` on one built set, per strand, in one run.

The scores come from the library's `VariantScorer` (the code `genossm score` runs), with every
definition at once and both strands kept apart, so "both strands vs one" costs no second run.
Two normalised variants of the site score are computed beside them, from the model's own
background: every possible SNV of the variant's window (positions with at least a quarter window
of context, 3 ALTs each) scored by the same reference pass, grouped by substitution class (S>W,
W>S, S>S, W>W): `site_centered` = site - mean of its class, `site_z` = that over the class's
standard deviation. Oriented so that higher = more damaging: -llr, -site, -site_*, +emb*.

    python benchmarks/vep compare runs/vep/bacteria --json benchmarks/results/vep_bacteria_definitions.json
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from .auroc import SUBSTITUTIONS, pair_table

log = logging.getLogger("genossm.benchmarks.vep")

SAME_CLASS = {"A": "W", "T": "W", "C": "S", "G": "S"}
LIKELIHOOD_SCORES = ("llr", "site", "site_centered", "site_z")  # lower = more damaging: negated


def substitution_class_matrix() -> np.ndarray:
    """(4, 4) index of the class of ref base r -> alt base a into SUBSTITUTIONS (-1 on the diagonal)."""
    matrix = np.full((4, 4), -1)
    for r, ref in enumerate("ACGT"):
        for a, alt in enumerate("ACGT"):
            if r != a:
                matrix[r, a] = SUBSTITUTIONS.index(f"{SAME_CLASS[ref]}>{SAME_CLASS[alt]}")
    return matrix


CLASS_OF = substitution_class_matrix()


@torch.no_grad()
def site_background(model, window_tokens: np.ndarray, device) -> np.ndarray:
    """(4 classes, 2) mean and standard deviation of the site score of every SNV of a window
    (positions t >= W/4, so each has a quarter window of context before it)."""
    tokens = torch.from_numpy(window_tokens.astype(np.int64))[None].to(device)
    from genossm.infer.score.likelihood import base_log_probs

    log_probs = base_log_probs(model(tokens)[0, :-1]).double().cpu().numpy()  # (W-1, 4): predicts 1..W-1
    start = len(window_tokens) // 4
    refs = window_tokens[start:]
    rows = log_probs[start - 1:]
    keep = refs < 4
    refs, rows = refs[keep], rows[keep]
    site = rows - rows[np.arange(len(refs)), refs][:, None]  # (n, 4): alt - ref
    classes = CLASS_OF[refs]  # (n, 4)
    out = np.zeros((len(SUBSTITUTIONS), 2))
    for c in range(len(SUBSTITUTIONS)):
        values = site[classes == c]
        out[c] = (values.mean(), values.std()) if len(values) > 1 else (0.0, 1.0)
    return out


def compare(set_dir: Path, labels: list[dict], *, model_dir: str | None, window: int | None,
            batch_size: int = 16) -> dict:
    from genossm.infer.likelihood import load
    from genossm.infer.score.definitions import SCORE_NAMES
    from genossm.infer.score.scorer import VariantScorer
    from genossm.infer.score.settings import default_window
    from genossm.infer.score.tiles import TileLayout, allele_pair
    from genossm.io.fasta import open_fasta
    from genossm.tokenizer import encode

    model = load(model_dir)
    window = window or default_window(model.config.max_length, None, model.training_window)
    layout = TileLayout(window)
    device = next(model.parameters()).device
    scorer = VariantScorer(model, both_strands=True, batch_size=batch_size, scores=SCORE_NAMES)
    started = time.perf_counter()
    per_strand = {name: np.full((len(labels), 2), np.nan) for name in (*SCORE_NAMES, "site_centered", "site_z")}
    with open_fasta(set_dir / "reference.fa") as genome:
        for first in range(0, len(labels), 64):
            rows = labels[first:first + 64]
            pairs = []
            for row in rows:
                position = int(row["pos"]) - 1
                tile_start = layout.tile_start(position)
                tile = genome.fetch_tokens(row["chrom"], tile_start, tile_start + window + 1, pad=True)
                pairs.append(allele_pair(tile, position - tile_start, 1, encode(row["alt"]), window))
            strands = scorer.score_strands(pairs)
            for number, (pair, row) in enumerate(zip(pairs, rows)):
                index = first + number
                for s, reverse in enumerate((False, True)):
                    values = strands[s][number]
                    for name in SCORE_NAMES:
                        per_strand[name][index, s] = values[name]
                    strand = pair.strand(reverse)
                    background = site_background(model, strand.ref, device)
                    t = strand.ref_span[0]
                    c = CLASS_OF[strand.ref[t], strand.alt[t]]
                    mean, sd = background[c]
                    per_strand["site_centered"][index, s] = values["site"] - mean
                    per_strand["site_z"][index, s] = (values["site"] - mean) / sd
            log.info("compare: %d/%d SNVs, %.0f s", first + len(rows), len(labels), time.perf_counter() - started)
    seconds = time.perf_counter() - started
    classes = np.array([row["class"] for row in labels])
    substitutions = np.array([row["substitution"] for row in labels])
    scores = {}
    for name, values in per_strand.items():
        sign = -1.0 if name in LIKELIHOOD_SCORES else 1.0
        scores[f"{name} both"] = sign * values.mean(1)
        scores[f"{name} forward"] = sign * values[:, 0]
    from .evaluate import PAIRS

    pairs_out = {}
    for name, (positive, negative) in PAIRS.items():
        if np.isin(classes, positive).any() and np.isin(classes, negative).any():
            pairs_out[name] = pair_table(scores, classes, substitutions, positive, negative)
    return {"window": window, "model": model_dir or "bundled", "snvs": len(labels), "seconds": round(seconds, 1),
            "definitions": list(scores), "pairs": pairs_out,
            "per_snv": {"ids": [row["id"] for row in labels],
                        **{name: np.round(values, 5).tolist() for name, values in per_strand.items()}}}


def markdown(result: dict, pairs: tuple[str, ...] = ("stop_gained vs synonymous", "missense vs synonymous",
                                                     "start_lost vs synonymous", "coding vs intergenic")) -> str:
    """One table per pair: definitions as rows, pooled and per-substitution-class AUROC as columns."""
    lines = []
    for pair in pairs:
        table = result["pairs"].get(pair)
        if table is None:
            continue
        counts = ", ".join(f"{s} {table['by_substitution'][s]['n'][0]}/{table['by_substitution'][s]['n'][1]}"
                           for s in SUBSTITUTIONS)
        lines += [f"**{pair}** (n {table['n'][0]}/{table['n'][1]}; {counts})", "",
                  "| score | pooled | " + " | ".join(SUBSTITUTIONS) + " |", "| --- |" + " --- |" * 5]
        for name in result["definitions"]:
            cells = [table["by_substitution"][s][name] for s in SUBSTITUTIONS]
            lines.append(f"| {name} | {table['pooled'][name]:.3f} | " +
                         " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
