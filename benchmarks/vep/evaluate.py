"""Score a built set with `genossm score` and with the order-k Markov baseline; AUROC tables.

Every score is oriented so that higher means "predicted more damaging": -GENOSSM_LLR,
GENOSSM_EMBDIST, and -LLR of the Markov model at each order k. AUROC of a pair is the chance that
a random SNV of the damaging class scores above a random SNV of the control class.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .auroc import pair_table
from .codons import codon_position
from .markov import count_genomes, markov_scores

log = logging.getLogger("genossm.benchmarks.vep")

CODING = ("start_lost", "stop_gained", "missense", "synonymous")
PAIRS = {  # name: (damaging classes, control classes)
    "stop_gained vs synonymous": (("stop_gained",), ("synonymous",)),
    "missense vs synonymous": (("missense",), ("synonymous",)),
    "start_lost vs synonymous": (("start_lost",), ("synonymous",)),
    "splice vs deep_intronic": (("splice_donor", "splice_acceptor"), ("deep_intronic",)),
    "splice_donor vs deep_intronic": (("splice_donor",), ("deep_intronic",)),
    "splice_acceptor vs deep_intronic": (("splice_acceptor",), ("deep_intronic",)),
    "coding vs intergenic": (CODING, ("intergenic",)),
    "stop_gained vs intergenic": (("stop_gained",), ("intergenic",)),
    "missense vs intergenic": (("missense",), ("intergenic",)),
    "synonymous vs intergenic": (("synonymous",), ("intergenic",)),
}


def run_genossm(set_dir: Path, model: str | None, threads: int | None, window: int | None,
                reuse: bool = False) -> dict:
    """`genossm score` on the set's VCF (the command line a user runs); scores by id, wall time
    and the model named in the output header. The run's record is kept in score_run.json;
    `reuse` takes it and scores.tsv from an earlier run with the same command line instead."""
    out_vcf, out_tsv, record_path = set_dir / "scored.vcf.gz", set_dir / "scores.tsv", set_dir / "score_run.json"
    command = ["genossm", "score", str(set_dir / "variants.vcf"), "--fasta", str(set_dir / "reference.fa"),
               "-o", str(out_vcf), "--tsv", str(out_tsv), "-q"]
    command += ["--model", model] if model else []
    command += ["--threads", str(threads)] if threads else []
    command += ["--window", str(window)] if window else []
    earlier = json.loads(record_path.read_text()) if reuse and record_path.exists() else None
    if earlier and earlier["command"] == shlex.join(command) and out_tsv.stat().st_mtime > (
            set_dir / "variants.vcf").stat().st_mtime:
        log.info("reusing the scores of: %s", earlier["command"])
        run = earlier
    else:
        log.info("%s", shlex.join(command))
        started = time.perf_counter()
        # The installed CLI through this interpreter: no dependence on PATH, same code as `genossm`.
        subprocess.run([sys.executable, "-m", "genossm.cli.main", *command[1:]], check=True)
        run = {"command": shlex.join(command), "seconds": time.perf_counter() - started, "header": {}}
        with gzip.open(out_vcf, "rt") as handle:
            for line in handle:
                if not line.startswith("##"):
                    break
                if line.startswith("##genossm_"):
                    key, value = line[2:].rstrip("\n").split("=", 1)
                    run["header"][key] = value
        record_path.write_text(json.dumps(run, indent=2) + "\n")
    with open(out_tsv) as handle:
        return run | {"rows": list(csv.DictReader(handle, delimiter="\t"))}


def summarize(pairs: dict, orders: list[int]) -> dict:
    """Per pair: genossm's AUROCs and the Markov model at its best order, pooled and in each
    stratum (the best order chosen separately there: order 0 cannot rank SNVs within one
    substitution class, so the pooled best order would say nothing)."""
    summary = {}
    for name, table in pairs.items():
        best_k = max(orders, key=lambda k: table["pooled"][f"markov_k{k}"])
        row = {"n": table["n"], "genossm_llr": table["pooled"]["genossm_llr"],
               "genossm_embdist": table["pooled"]["genossm_embdist"], "markov_best_k": best_k,
               "markov_best": table["pooled"][f"markov_k{best_k}"]}
        for stratum in ("by_substitution", "by_genome", "by_codon_position"):
            row[stratum] = {}
            for key, cell in table.get(stratum, {}).items():
                scored = [k for k in orders if cell[f"markov_k{k}"] is not None]
                k = max(scored, key=lambda k: cell[f"markov_k{k}"]) if scored else None
                row[stratum][key] = {"n": cell["n"], "genossm_llr": cell["genossm_llr"],
                                     "genossm_embdist": cell["genossm_embdist"], "markov_best_k": k,
                                     "markov_best": cell[f"markov_k{k}"] if k is not None else None}
        summary[name] = row
    return summary


def context_windows(reference: Path, labels: list[dict], max_order: int) -> np.ndarray:
    from genossm.io.fasta import open_fasta

    with open_fasta(reference) as genome:
        windows = [genome.fetch_tokens(row["chrom"], int(row["pos"]) - 1 - max_order, int(row["pos"]) + max_order)
                   for row in labels]
    return np.stack(windows)  # (n, 2K + 1): sets keep >= `context` clean bases around every SNV


def evaluate(set_dir: Path, record: dict, labels: list[dict], *, model: str | None = None, threads: int | None = None,
             window: int | None = None, max_order: int = 10, alpha: float = 1.0, reuse_scores: bool = False) -> dict:
    """The benchmark record: genossm and Markov AUROC tables, counts, timings."""
    started = time.perf_counter()
    ids = [row["id"] for row in labels]
    classes = np.array([row["class"] for row in labels])
    substitutions = np.array([row["substitution"] for row in labels])
    genomes = np.array([row["chrom"].rsplit("_", 1)[0] if record["set"] == "bacteria" else row["chrom"]
                        for row in labels])
    positions = np.array([codon_position(row.get("detail", ".")) for row in labels])
    genossm = run_genossm(set_dir, model, threads, window, reuse_scores)
    by_id = {row["id"]: row for row in genossm["rows"]}
    ok = np.array([by_id[i]["status"] == "ok" for i in ids])
    llr = np.array([float(by_id[i]["llr"]) if by_id[i]["status"] == "ok" else np.nan for i in ids])
    embdist = np.array([float(by_id[i]["embdist"]) if by_id[i]["status"] == "ok" else np.nan for i in ids])

    markov_started = time.perf_counter()
    max_order = min(max_order, record["context"])
    counts = count_genomes(record["markov_train"], max_order)
    windows = context_windows(set_dir / "reference.fa", labels, max_order)
    alts = np.array(["ACGT".index(row["alt"]) for row in labels])
    markov = markov_scores(windows, alts, counts, alpha)
    markov_seconds = time.perf_counter() - markov_started

    scores = {"genossm_llr": -llr, "genossm_embdist": embdist} | {f"markov_k{k}": -s for k, s in markov.items()}
    pairs = {}
    for name, (positive, negative) in PAIRS.items():
        if np.isin(classes, positive).any() and np.isin(classes, negative).any():
            pairs[name] = pair_table(scores, classes, substitutions, positive, negative,
                                     genomes=genomes if len(set(genomes)) > 1 else None,
                                     codon_positions=positions)
    summary = summarize(pairs, list(markov))
    n = len(labels)
    return {
        "set": record["set"], "seed": record["seed"], "count_per_class": record["count_per_class"],
        "counts": {c: int((classes == c).sum()) for c in dict.fromkeys(classes)},
        "candidates": record["candidates"],
        "substitution_counts": {c: {s: int(((classes == c) & (substitutions == s)).sum())
                                    for s in ("S>W", "W>S", "S>S", "W>W")} for c in dict.fromkeys(classes)},
        "model": genossm["header"].get("genossm_model"), "model_sha256": genossm["header"].get("genossm_model_sha256"),
        "scoring": genossm["header"].get("genossm_scoring"),
        "genossm_score_command": genossm["command"],
        "genossm_scored_ok": int(ok.sum()), "genossm_score_seconds": round(genossm["seconds"], 2),
        "genossm_score_records_per_second": round(n / genossm["seconds"], 2),
        "markov": {"train": [Path(p).name for p in record["markov_train"]], "orders": list(markov),
                   "alpha": alpha, "seconds": round(markov_seconds, 2),
                   "note": "markov_best is the best order for each pair on these very SNVs (an upper bound "
                           "for the baseline)"},
        "summary": summary, "pairs": pairs,
        "build": {k: record[k] for k in ("command", "provenance", "skipped", "elapsed_seconds") if k in record},
        "evaluate_seconds": round(time.perf_counter() - started, 2),
        "cpu_count": os.cpu_count(),
    }
