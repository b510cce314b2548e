"""Every score definition of `genossm score --score` on one built set, per strand, in one run.

The scores come from the library's `VariantScorer` (the code `genossm score` runs), with every
definition at once and both strands kept apart, so "both strands vs one" costs no second run.
Site scores come from one reference pass per strand (checked against the library's site-only
path on the first SNVs), for every SNV; the other definitions need alt passes (2-3x the cost), so
`--full-limit N` computes them for the first N SNVs of each class only (their tables are
`full_subset`, with the site scores of the same SNVs beside them). Two normalised variants of the
site score are computed beside them, from the model's own
background: every possible SNV of the variant's window (positions with at least a quarter window
of context, 3 ALTs each) scored by the same reference pass, grouped by substitution class (S>W,
W>S, S>S, W>W): `site_centered` = site - mean of its class, `site_z` = that over the class's
standard deviation. Oriented so that higher = more damaging: -llr, -site, -site_*, +emb*.
Masked models: `site` is the masked marginal (one pass per SNV and strand with the variant
masked, the library's path); the normalised forms need a causal reference pass and are left out.
The order-k Markov baseline (vep/markov.py, k = 0..max_order) is scored on the same SNVs and
every table carries its best k (pooled, within each substitution class and within each codon
position, chosen there). `retable` completes a saved result's tables from its per-SNV scores.

    python benchmarks/vep compare runs/vep/bacteria --limit 80 --full-limit 80 \
        --json benchmarks/results/vep_bacteria_definitions.json
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from .auroc import SUBSTITUTIONS, pair_table
from .codons import codon_position

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
def reference_sites(model, windows: list[np.ndarray], device, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per (strand) reference window: the (W-1, 4) log-probabilities of the bases at 1..W-1 given
    the bases before them, and the (4 classes, 2) mean and standard deviation of the site score
    of every SNV of the window at positions t >= W/4 (a quarter window of context before each)."""
    from genossm.infer.score.likelihood import base_log_probs

    out = []
    for first in range(0, len(windows), batch_size):
        batch = np.stack(windows[first:first + batch_size])  # (B, W)
        logits = model(torch.from_numpy(batch.astype(np.int64)).to(device))  # (B, W, V)
        log_probs = base_log_probs(logits[:, :-1]).double().cpu().numpy()  # (B, W-1, 4): predict 1..W-1
        for tokens, rows in zip(batch, log_probs):
            start = len(tokens) // 4
            refs, kept = tokens[start:], rows[start - 1:]
            keep = refs < 4
            refs, kept = refs[keep], kept[keep]
            site = kept - kept[np.arange(len(refs)), refs][:, None]  # (n, 4): alt - ref
            classes = CLASS_OF[refs]  # (n, 4)
            background = np.zeros((len(SUBSTITUTIONS), 2))
            for c in range(len(SUBSTITUTIONS)):
                values = site[classes == c]
                background[c] = (values.mean(), values.std()) if len(values) > 1 else (0.0, 1.0)
            out.append((rows, background))
    return out


def compare(set_dir: Path, labels: list[dict], *, model_dir: str | None, window: int | None,
            full_limit: int | None = None, device: str = "cpu", batch_size: int = 16,
            markov_train: list[str] | None = None, max_order: int = 10) -> dict:
    """Site scores (and, causal models, their normalised forms) of every SNV in `labels`; every
    other definition, per strand, through `VariantScorer` for the first `full_limit` SNVs of each
    class (all when None): their full alt passes cost 2-3x more. `markov_train`: FASTA files the
    Markov baseline counts (None: no baseline rows)."""
    from genossm.infer.likelihood import load
    from genossm.infer.score.definitions import SCORE_NAMES
    from genossm.infer.score.scorer import VariantScorer
    from genossm.infer.score.settings import default_window
    from genossm.infer.score.tiles import TileLayout, allele_pair
    from genossm.io.fasta import open_fasta
    from genossm.tokenizer import encode

    model = load(model_dir, device)
    window = window or default_window(model.config.max_length, None, model.training_window)
    layout = TileLayout(window)
    with open_fasta(set_dir / "reference.fa") as genome:
        pairs = []
        for row in labels:
            position = int(row["pos"]) - 1
            tile_start = layout.tile_start(position)
            tile = genome.fetch_tokens(row["chrom"], tile_start, tile_start + window + 1, pad=True)
            pairs.append(allele_pair(tile, position - tile_start, 1, encode(row["alt"]), window))
    other_names = tuple(name for name in SCORE_NAMES if name != "site")
    causal = model.config.objective == "causal"
    normalised = ("site_centered", "site_z") if causal else ()
    per_strand = {name: np.full((len(labels), 2), np.nan) for name in (*SCORE_NAMES, *normalised)}

    started = time.perf_counter()
    if causal:
        _causal_sites(model, pairs, per_strand, device, batch_size)
    else:
        _masked_sites(model, pairs, per_strand, device, batch_size)
    site_seconds = time.perf_counter() - started
    # Gate: the benchmark's site equals the library's site-only path (the default `genossm score`).
    gate = VariantScorer(model, both_strands=True, device=device, scores=("site",)).score(pairs[:8])
    np.testing.assert_allclose([g["site"] for g in gate], per_strand["site"][:8].mean(1), atol=1e-4)

    full = _first_per_class(labels, full_limit)
    scorer = VariantScorer(model, both_strands=True, batch_size=batch_size, device=device, scores=other_names)
    started = time.perf_counter()
    for first in range(0, len(full), 32):
        indices = full[first:first + 32]
        strands = scorer.score_strands([pairs[i] for i in indices])
        for s in range(2):
            for i, values in zip(indices, strands[s]):
                for name in other_names:
                    per_strand[name][i, s] = values[name]
        log.info("compare: other definitions of %d/%d SNVs, %.0f s", first + len(indices), len(full),
                 time.perf_counter() - started)
    full_seconds = time.perf_counter() - started

    in_full = np.zeros(len(labels), dtype=bool)
    in_full[full] = True
    markov, markov_record = {}, None
    if markov_train:
        markov, markov_record = _markov(set_dir, labels, markov_train, max_order)
    scores, tables = definition_tables(per_strand, labels, markov, in_full)
    return {"window": window, "model": model_dir or "bundled", "objective": model.config.objective,
            "device": device, "snvs": len(labels),
            "full_subset_snvs": int(in_full.sum()), "site_seconds": round(site_seconds, 1),
            "full_seconds": round(full_seconds, 1), "definitions": list(scores), "markov": markov_record,
            "tables": tables,
            "per_snv": {"ids": [row["id"] for row in labels],
                        # 6 significant digits: the cosine distances are ~1e-5, decimals would tie them
                        **{name: [[float(f"{v:.6g}") for v in row] for row in values.tolist()]
                           for name, values in per_strand.items()}}}


def definition_tables(per_strand: dict[str, np.ndarray], labels: list[dict], markov: dict[str, np.ndarray],
                      in_full: np.ndarray) -> tuple[dict, dict]:
    """Oriented scores ("<name> both" / "<name> forward", higher = more damaging) and the AUROC
    tables of `compare`: site scores and the Markov baseline on every SNV ("all"); every
    definition on the SNVs of `in_full` ("full_subset"); pooled, within substitution classes and
    within codon positions."""
    from .evaluate import PAIRS

    classes = np.array([row["class"] for row in labels])
    substitutions = np.array([row["substitution"] for row in labels])
    positions = np.array([codon_position(row.get("detail", ".")) for row in labels])
    scores = {}
    for name, values in per_strand.items():
        sign = -1.0 if name in LIKELIHOOD_SCORES else 1.0
        scores[f"{name} both"] = sign * values.mean(1)
        scores[f"{name} forward"] = sign * values[:, 0]
    tables = {"all": {}, "full_subset": {}}
    for name, (positive, negative) in PAIRS.items():
        if np.isin(classes, positive).any() and np.isin(classes, negative).any():
            site_only = {k: v for k, v in scores.items() if k.startswith("site")} | markov
            tables["all"][name] = with_markov_best(pair_table(
                site_only, classes, substitutions, positive, negative, codon_positions=positions))
            tables["full_subset"][name] = with_markov_best(pair_table(
                {k: v[in_full] for k, v in (scores | markov).items()}, classes[in_full], substitutions[in_full],
                positive, negative, codon_positions=positions[in_full]))
    if not in_full.any():
        del tables["full_subset"]
    return scores, tables


def retable(result: dict, set_dir: Path, labels: list[dict]) -> dict:
    """`result` (a `compare` JSON) with the cells its tables lack (a stratum added since, the
    Markov baseline of a result that predates it) computed from its per-SNV scores and the set's
    labels; no model is run. The baseline is counted again on the set's files (the result's
    orders, or 0..10). The full subset is the SNVs whose other definitions are not NaN."""
    by_id = {row["id"]: row for row in labels}
    ids = result["per_snv"]["ids"]
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise SystemExit(f"retable: {len(missing)} SNVs of the result are not in the set's labels "
                         f"(first: {missing[0]}): not the set the result was computed on")
    chosen = [by_id[i] for i in ids]
    per_strand = {name: np.array(values, dtype=np.float64) for name, values in result["per_snv"].items()
                  if name != "ids"}
    others = [values for name, values in per_strand.items() if not name.startswith("site")]
    in_full = ~np.isnan(others[0]).any(1) if others else np.zeros(len(ids), dtype=bool)
    # The Markov baseline at the result's orders; a result from before the baseline was part of
    # `compare` gets compare's default orders (0..10, at most the set's clean context).
    record = json.loads((set_dir / "set.json").read_text())
    max_order = max(result["markov"]["orders"]) if result.get("markov") else min(10, record["context"])
    markov, result["markov"] = _markov(set_dir, chosen, record["markov_train"], max_order)
    scores, tables = definition_tables(per_strand, chosen, markov, in_full)
    # Stored scores were rounded (5 decimals before 2026-12-02): the cosine distances, ~1e-5, lost
    # their order to ties. Every cell the result already has stays as computed from the exact
    # scores; recomputed cells are only added, and none for a score that rounding tied.
    coarse = sorted(name for name, values in scores.items() if _tied_share(values) > 0.3)
    for table in (t for subset in tables.values() for t in subset.values()):
        for stratum in ("by_substitution", "by_codon_position", "by_genome"):
            for cell in table.get(stratum, {}).values():
                cell.update({name: None for name in coarse if name in cell})
    result["tables"] = _merged(tables, result["tables"])
    result["definitions"] = list(scores)
    result["retabled"] = {
        "how": "`python benchmarks/vep retable`: cells missing from the result computed from per_snv and the "
               "set's labels (no model run); cells the result had are kept as computed",
        "per_snv_too_coarse": coarse}
    return result


def _tied_share(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return 1.0 - len(np.unique(finite)) / len(finite) if len(finite) else 0.0


def _merged(new: dict, old: dict) -> dict:
    """`new` with every value `old` also has replaced by old's (nested dicts merged key by key)."""
    merged = dict(new)
    for key, value in old.items():
        merged[key] = _merged(new[key], value) if isinstance(value, dict) and isinstance(new.get(key), dict) else value
    return merged


def _causal_sites(model, pairs, per_strand: dict, device, batch_size: int) -> None:
    """site, site_centered and site_z of every pair and strand from one reference pass each."""
    started = time.perf_counter()
    strand_pairs = [pair.strand(reverse) for pair in pairs for reverse in (False, True)]
    for first in range(0, len(strand_pairs), 64):
        chunk = strand_pairs[first:first + 64]
        for number, (strand, (rows, background)) in enumerate(
                zip(chunk, reference_sites(model, [p.ref for p in chunk], device, batch_size))):
            index, s = divmod(first + number, 2)
            t = strand.ref_span[0]
            site = rows[t - 1, strand.alt[t]] - rows[t - 1, strand.ref[t]]
            mean, sd = background[CLASS_OF[strand.ref[t], strand.alt[t]]]
            per_strand["site"][index, s] = site
            per_strand["site_centered"][index, s] = site - mean
            per_strand["site_z"][index, s] = (site - mean) / sd
        log.info("compare: site of %d/%d SNVs, %.0f s", (first + len(chunk)) // 2, len(pairs),
                 time.perf_counter() - started)


def _masked_sites(model, pairs, per_strand: dict, device, batch_size: int) -> None:
    """The masked marginal of every pair and strand: the library's path (one masked pass each)."""
    from genossm.infer.score.scorer import VariantScorer

    scorer = VariantScorer(model, both_strands=True, batch_size=batch_size, device=device, scores=("site",))
    started = time.perf_counter()
    for first in range(0, len(pairs), 256):
        strands = scorer.score_strands(pairs[first:first + 256])
        for s in range(2):
            per_strand["site"][first:first + len(strands[s]), s] = [values["site"] for values in strands[s]]
        log.info("compare: site of %d/%d SNVs, %.0f s", first + len(strands[0]), len(pairs),
                 time.perf_counter() - started)


def _markov(set_dir: Path, labels: list[dict], train: list[str], max_order: int) -> tuple[dict, dict]:
    """{markov_k<k>: -LLR} of every SNV for k = 0..max_order, and what was counted. A training
    file that is not found where the set was built is looked up in the set folder (the plant
    set counts its own reference.fa, which travels with the set)."""
    from .evaluate import context_windows
    from .markov import count_genomes, markov_scores

    started = time.perf_counter()
    files = [str(p) if Path(p).exists() else str(set_dir / Path(p).name) for p in train]
    counts = count_genomes(files, max_order)
    windows = context_windows(set_dir / "reference.fa", labels, max_order)
    alts = np.array(["ACGT".index(row["alt"]) for row in labels])
    scores = {f"markov_k{k}": -values for k, values in markov_scores(windows, alts, counts).items()}
    return scores, {"train": [Path(p).name for p in files], "orders": list(range(len(scores))), "alpha": 1.0,
                    "seconds": round(time.perf_counter() - started, 1),
                    "note": "markov_best: the best order k for each pair (and within each substitution class, "
                            "chosen there) on these very SNVs: an upper bound for the baseline"}


def with_markov_best(table: dict) -> dict:
    """Add `markov_best` ({k, auroc}) beside the markov_k<k> rows, pooled and in each stratum."""
    def best(cells: dict):
        scored = [(value, int(name[len("markov_k"):])) for name, value in cells.items()
                  if name.startswith("markov_k") and value is not None]
        if not scored:
            return None
        value, k = max(scored, key=lambda item: (item[0], -item[1]))
        return {"k": k, "auroc": value}

    table["markov_best"] = {"pooled": best(table["pooled"])}
    for stratum in ("by_substitution", "by_codon_position"):
        if stratum in table:
            table["markov_best"][stratum] = {key: best(cell) for key, cell in table[stratum].items()}
    return table


def _first_per_class(labels: list[dict], limit: int | None) -> list[int]:
    """Indices of the first `limit` SNVs of each class (all when None)."""
    seen: dict[str, int] = {}
    chosen = []
    for index, row in enumerate(labels):
        if limit is None or seen.get(row["class"], 0) < limit:
            seen[row["class"]] = seen.get(row["class"], 0) + 1
            chosen.append(index)
    return chosen


def markdown(result: dict, pairs: tuple[str, ...] | None = None) -> str:
    """Per subset and pair (default: every pair of the result): definitions as rows, pooled,
    per-substitution-class and per-codon-position AUROC as columns, the Markov baseline as one
    row at its best k."""
    lines = []
    for subset, tables in result["tables"].items():
        for pair in pairs or tables:
            table = tables.get(pair)
            if table is None:
                continue
            # Columns: pooled, each substitution class, and each codon position where the pair has them.
            strata = [("by_substitution", key, key) for key in SUBSTITUTIONS]
            strata += [("by_codon_position", key, f"codon pos {key}") for key in table.get("by_codon_position", {})]
            counts = ", ".join(f"{title} {table[stratum][key]['n'][0]}/{table[stratum][key]['n'][1]}"
                               for stratum, key, title in strata)
            lines += [f"**{pair}**, {subset} (n {table['n'][0]}/{table['n'][1]}; {counts})", "",
                      "| score | pooled | " + " | ".join(title for _, _, title in strata) + " |",
                      "| --- |" + " --- |" * (len(strata) + 1)]
            for name in table["pooled"]:
                if name.startswith("markov_k"):
                    continue  # one row for the baseline: its best k (below)
                cells = [table[stratum][key][name] for stratum, key, _ in strata]
                lines.append(f"| {name} | {table['pooled'][name]:.3f} | " +
                             " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
            if table.get("markov_best") and table["markov_best"]["pooled"]:
                best = table["markov_best"]
                cells = [best.get(stratum, {}).get(key) for stratum, key, _ in strata]
                lines.append(f"| Markov -LLR, best k | {best['pooled']['auroc']:.3f} (k {best['pooled']['k']}) | " +
                             " | ".join("-" if c is None else f"{c['auroc']:.2f} (k {c['k']})" for c in cells) + " |")
            lines.append("")
    return "\n".join(lines)


def add_genossm_score_tsv(result: dict, labels: list[dict], scores_tsv: Path) -> dict:
    """Add the scores of a `genossm score --tsv` run on the same set (e.g. `evaluate`'s
    scores.tsv: llr and embdist, both strands) beside the site scores of `result`, on the SNVs
    `result` scored: the table `all_with_genossm_score`."""
    import csv

    from .evaluate import PAIRS

    with open(scores_tsv) as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle, delimiter="\t")}
    by_id = {row["id"]: row for row in labels}
    ids = result["per_snv"]["ids"]
    classes = np.array([by_id[i]["class"] for i in ids])
    substitutions = np.array([by_id[i]["substitution"] for i in ids])
    positions = np.array([codon_position(by_id[i].get("detail", ".")) for i in ids])
    columns = [name for name in rows[ids[0]] if name not in ("record", "chrom", "pos", "id", "ref", "alt", "status")]
    scores = {}
    for name in columns:
        values = np.array([float(rows[i][name]) if rows[i]["status"] == "ok" else np.nan for i in ids])
        scores[f"{name} both (genossm score)"] = -values if name in LIKELIHOOD_SCORES else values
    for name in ("site", "site_z"):
        scores[f"{name} both"] = -np.array(result["per_snv"][name]).mean(1)
    result["tables"]["all_with_genossm_score"] = {
        name: pair_table(scores, classes, substitutions, positive, negative, codon_positions=positions)
        for name, (positive, negative) in PAIRS.items()
        if np.isin(classes, positive).any() and np.isin(classes, negative).any()}
    result["genossm_score_tsv"] = str(scores_tsv)
    return result
