"""Haplotype scoring on a GPU: haplotype windows per second of a synthetic cohort (issue 19).

`--samples` diploid phased samples x a region with `--variants` variants (80% SNVs, 20% indels
of 1-5 bases, allele frequencies uniform in [0.01, 0.5]); each tile's haplotype windows are built
(`apply_alleles`, as `genossm score --samples` builds them) and scored by `HaplotypeScorer`;
the figure is haplotype-windows/s (samples x 2 x tiles, per second of scoring).

Sections, in order, each one written to `--out` as soon as it ends (a run stopped by its budget
leaves what it measured, `"complete": false`), with progress on stderr:
  setup      model load, cohort build (seconds)
  gate       the fast scorer against `score_haplotypes_naive` on a few windows of 3 tiles; the
             naive scorer's rate is timed here (it is the reference of the same run)
  warmup     one tile scored untimed (CUDA context, Triton compilation of the batch shapes)
  haplotypes every tile, in chunks of `--tiles-per-chunk`, timed; a line per chunk with rate
             and ETA; with `--max-seconds`, chunks stop once that many seconds of scoring have
             passed and the rate is the one of the tiles scored (`"complete": false`)

The calibration background (the issue's other H200 figure) is `genossm calibrate --device cuda`,
run by `scripts/calibrate_bundled_gpu.sh` for the bundled model.

Genomes are read with gzip (bgzip FASTA is gzip) so this needs no pysam; without `--genome` a
random 2 Mb genome is used (speed does not depend on the bases).

    python benchmarks/haplotype.py --device cuda --out benchmarks/results/haplotype_h200.json
    python benchmarks/haplotype.py --device cpu --samples 4 --variants 40 --region-length 8000  # smoke
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import device_facts, emit_report

from genossm.infer.calibration.job import CalibrateJob, calibration_window
from genossm.infer.haplotype.scorer import HaplotypeScorer, score_haplotypes_naive
from genossm.infer.haplotype.windows import Allele, apply_alleles
from genossm.infer.score.tiles import TileLayout
from genossm.resources import RESOURCES
from genossm.tokenizer import encode


class MemoryGenome:
    """A FASTA's contigs in memory (`contigs`, `fetch`), read with gzip or plain open."""

    def __init__(self, sequences: dict[str, str]):
        self.sequences = sequences
        self.contigs = {name: len(sequence) for name, sequence in sequences.items()}

    @classmethod
    def read(cls, path: str) -> "MemoryGenome":
        opener = gzip.open if path.endswith((".gz", ".bgz")) else open
        sequences, name, parts = {}, None, []
        with opener(path, "rt") as handle:
            for line in handle:
                if line.startswith(">"):
                    if name is not None:
                        sequences[name] = "".join(parts)
                    name, parts = line[1:].split()[0], []
                else:
                    parts.append(line.strip())
        if name is not None:
            sequences[name] = "".join(parts)
        return cls(sequences)

    def fetch(self, contig: str, start: int, end: int) -> str:
        """Bases [start, end) of `contig`, N outside it."""
        sequence = self.sequences[contig]
        inside = sequence[max(start, 0):max(min(end, len(sequence)), 0)]
        return "N" * max(0, -start) + inside + "N" * max(0, end - max(start, len(sequence)))


def random_genome(length: int, seed: int = 0) -> MemoryGenome:
    rng = np.random.default_rng(seed)
    return MemoryGenome({"random": "".join(np.array(list("ACGT"))[rng.integers(0, 4, length)])})


def cohort_tiles(genome: MemoryGenome, window: int, args) -> list:
    """(reference window, haplotype windows) per tile of a synthetic cohort region."""
    rng = np.random.default_rng(args.seed)
    contig = max(genome.contigs, key=genome.contigs.get)
    start = window
    sequence = genome.fetch(contig, 0, start + args.region_length + 2 * window).upper()
    positions = np.sort(rng.choice(np.arange(start, start + args.region_length, 8), args.variants, replace=False))
    sites = []
    for position in positions:
        if rng.random() < 0.8:
            ref = sequence[position]
            sites.append((int(position), 1, encode("ACGT".replace(ref, "")[int(rng.integers(0, 3))]) if ref in "ACGT"
                          else encode("A")))
        elif rng.random() < 0.5:
            sites.append((int(position), int(rng.integers(1, 6)), encode("")))  # deletion
        else:
            sites.append((int(position), 0, encode("".join(rng.choice(list("ACGT"), int(rng.integers(1, 6)))))))
    frequencies = rng.uniform(0.01, 0.5, len(sites))
    haplotypes = rng.random((args.samples * 2, len(sites))) < frequencies  # (2 samples, sites)
    layout = TileLayout(window)
    tiles = {}
    for index, (position, _, _) in enumerate(sites):
        tiles.setdefault(layout.tile_start(position), []).append(index)
    built = []
    for tile_start in tiles:
        tokens = encode(sequence[tile_start:tile_start + window + 64])
        inside = [i for i, (p, _, _) in enumerate(sites) if tile_start <= p < tile_start + window]
        windows = []
        for haplotype in haplotypes:
            alleles = [Allele(sites[i][0] - tile_start, sites[i][1], sites[i][2]) for i in inside if haplotype[i]]
            windows.append(apply_alleles(tokens, window, alleles)[0])
        built.append((np.ascontiguousarray(tokens[:window]), windows))
    return built


def say(message: str) -> None:
    print(f"haplotype.py: {message}", file=sys.stderr, flush=True)


def save(report: dict, out: str | None) -> None:
    """The report so far, to `out` (a run stopped later keeps what is measured)."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def gate(model, tiles, args, device) -> dict:
    """Fast against naive on the first 4 windows of 3 tiles; exits on a mismatch."""
    checked = [(reference, windows[:4]) for reference, windows in tiles[:3]]
    fast = HaplotypeScorer(model, batch_size=args.batch_size, device=device).score(checked)
    synchronize(device)
    started = time.perf_counter()
    naive = [score_haplotypes_naive(model, reference, windows, device=device) for reference, windows in checked]
    synchronize(device)
    naive_seconds = time.perf_counter() - started
    error = max(abs(a.llr - b.llr) for f, n in zip(fast, naive) for a, b in zip(f, n))
    count = sum(len(windows) for _, windows in checked)
    if error > args.tolerance:
        sys.exit(f"correctness gate failed: haplotype llr differs from the naive scorer by {error}")
    return {"windows": count, "max_abs_llr_error": error,
            "naive_haplotype_windows_per_second": round(count / naive_seconds, 1)}


def timed_haplotypes(scorer, tiles, args, device, report, section) -> None:
    """Scores `tiles` in chunks into `report[section]`, saving it after each chunk."""
    total = sum(len(windows) for _, windows in tiles)
    section.update({"tiles": len(tiles), "haplotype_windows": total, "tiles_scored": 0,
                    "haplotype_windows_scored": 0, "complete": False})
    passes_before = scorer.passes
    synchronize(device)
    started = time.perf_counter()
    for first in range(0, len(tiles), args.tiles_per_chunk):
        chunk = tiles[first:first + args.tiles_per_chunk]
        scorer.score(chunk)
        synchronize(device)
        seconds = time.perf_counter() - started
        section["tiles_scored"] += len(chunk)
        section["haplotype_windows_scored"] += sum(len(windows) for _, windows in chunk)
        done = section["haplotype_windows_scored"]
        rate = done / seconds
        section.update({"score_seconds": round(seconds, 3), "model_passes": scorer.passes - passes_before,
                        "haplotype_windows_per_second": round(rate, 1)})
        section["complete"] = section["tiles_scored"] == len(tiles)
        save(report, args.out)
        say(f"{section['tiles_scored']}/{len(tiles)} tiles, {done}/{total} haplotype windows in {seconds:.1f} s: "
            f"{rate:.0f} haplotype-windows/s, ETA {(total - done) / rate:.0f} s")
        if args.max_seconds is not None and seconds > args.max_seconds and not section["complete"]:
            say(f"stopping after {seconds:.0f} s (--max-seconds {args.max_seconds:g}); the rate is over the "
                "tiles scored")
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default=str(RESOURCES / "model"))
    parser.add_argument("--genome", default=None, help="FASTA (plain or gzip) for the cohort's bases")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--region-length", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tiles-per-chunk", type=int, default=16, help="tiles per timed call (a progress line each)")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="stop scoring after the chunk that passes this many seconds (default 60; the "
                             "rate is then over the tiles scored)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=2e-3, help="gate: max |llr - naive llr|")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from genossm.models.checkpoint import load_model

    wall = time.perf_counter()
    device = torch.device(args.device)
    command = " ".join(["python", "benchmarks/haplotype.py", *sys.argv[1:]])
    report = {"benchmark": "haplotype", "model": Path(args.model).name, **device_facts(device),
              "command": command, "batch_size": args.batch_size}
    started = time.perf_counter()
    model = load_model(args.model, device=device).eval()
    synchronize(device)
    load_seconds = time.perf_counter() - started
    window = calibration_window(CalibrateJob(fastas=(), model=args.model), model.config.max_length, Path(args.model))
    started = time.perf_counter()
    genome = MemoryGenome.read(args.genome) if args.genome else random_genome(2_000_000, args.seed)
    tiles = cohort_tiles(genome, window, args)
    report["setup"] = {"window": window, "samples": args.samples, "variants": args.variants,
                       "region_length": args.region_length, "tiles": len(tiles),
                       "model_load_seconds": round(load_seconds, 2),
                       "cohort_build_seconds": round(time.perf_counter() - started, 2)}
    save(report, args.out)
    say(f"model loaded in {load_seconds:.1f} s; {len(tiles)} tiles x {2 * args.samples} haplotypes, window "
        f"{window}; gate against the naive scorer")

    report["gate"] = gate(model, tiles, args, device)
    save(report, args.out)
    say(f"gate passed (max |llr error| {report['gate']['max_abs_llr_error']:.2e}); warm-up on one tile")

    scorer = HaplotypeScorer(model, batch_size=args.batch_size, device=device)
    started = time.perf_counter()
    scorer.score(tiles[:1])
    synchronize(device)
    report["warmup"] = {"tiles": 1, "seconds": round(time.perf_counter() - started, 2)}
    save(report, args.out)
    say(f"warm-up {report['warmup']['seconds']} s; timing {len(tiles)} tiles")

    report["haplotypes"] = {}
    timed_haplotypes(scorer, tiles, args, device, report, report["haplotypes"])
    report["wall_seconds"] = round(time.perf_counter() - wall, 2)
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
