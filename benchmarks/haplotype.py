"""Haplotype scoring and calibration on a GPU: the two figures of issue 19, without pysam.

1. Calibration background: `--background-snvs` random SNVs and `--background-indels` indels
   drawn as `genossm calibrate` draws them (`genossm.infer.calibration.background`) and scored
   with `VariantScorer`; reports the build time. With `--write-calibration DIR` the distribution
   is stored in that model directory (calibration.json + config.json entry), as `genossm
   calibrate` would: this is how the bundled model gets its 100,000-SNV calibration on the H200.
2. Haplotype windows: `--samples` diploid phased samples x a region with `--variants` variants
   (80% SNVs, 20% indels of 1-5 bases, allele frequencies uniform in [0.01, 0.5]); each tile's
   haplotype windows are built (`apply_alleles`, as `genossm score --samples` builds them) and
   scored by `HaplotypeScorer`; reports haplotype-windows/s (samples x 2 x tiles per second).

Correctness gates run before any timing: background LLRs against `score_pairs_naive`, haplotype
scores against `score_haplotypes_naive`; the naive haplotype scorer is timed in the same run.

Genomes are read with gzip (bgzip FASTA is gzip) so the GPU machine needs no pysam; without
`--genomes` a random 2 Mb genome is used (speed does not depend on the bases).

    python benchmarks/haplotype.py --device cuda --out benchmarks/results/haplotype_h200.json
    python benchmarks/haplotype.py --device cuda --genomes data/genomes/{DH1,...}.fa.gz \
        --write-calibration genossm/resources/model --out benchmarks/results/haplotype_h200.json
    python benchmarks/haplotype.py --device cpu --background-snvs 200 --background-indels 24 \
        --samples 4 --variants 40 --region-length 8000        # a CPU smoke run
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import device_facts, emit_report

from genossm.infer.calibration.background import draw_background
from genossm.infer.calibration.distribution import Calibration, summarise, write_calibration
from genossm.infer.calibration.job import CalibrateJob, calibration_window
from genossm.infer.haplotype.scorer import HaplotypeScorer, score_haplotypes_naive
from genossm.infer.haplotype.windows import Allele, apply_alleles
from genossm.infer.score.scorer import VariantScorer, score_pairs_naive
from genossm.infer.score.tiles import TileLayout
from genossm.resources import RESOURCES
from genossm.tokenizer import encode


class MemoryGenome:
    """What the background sampler reads of a genome (`contigs`, `fetch`), from memory."""

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

    def fetch(self, contig: str, start: int, end: int, pad: bool = False) -> str:
        sequence = self.sequences[contig]
        inside = sequence[max(start, 0):max(min(end, len(sequence)), 0)]
        return "N" * max(0, -start) + inside + "N" * max(0, end - max(start, len(sequence)))


def random_genome(length: int, seed: int = 0) -> MemoryGenome:
    rng = np.random.default_rng(seed)
    return MemoryGenome({"random": "".join(np.array(list("ACGT"))[rng.integers(0, 4, length)])})


def background(model, genomes, window, args, device) -> dict:
    drawn = draw_background(genomes, window, 32, 0, seed=args.seed + 1)
    naive = score_pairs_naive(model, [pair for _, pair in drawn], device=device)
    fast = VariantScorer(model, batch_size=args.batch_size, device=device).score([pair for _, pair in drawn])
    error = max(abs(a.llr - b.llr) for a, b in zip(naive, fast))
    if error > args.tolerance:
        sys.exit(f"correctness gate failed: background llr differs from the naive scorer by {error}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    drawn = draw_background(genomes, window, args.background_snvs, args.background_indels, seed=args.seed)
    drawn_seconds = time.perf_counter() - started
    scorer = VariantScorer(model, batch_size=args.batch_size, device=device)
    llrs = []
    for first in range(0, len(drawn), 4096):
        llrs += [score.llr for score in scorer.score([pair for _, pair in drawn[first:first + 4096]])]
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    report = {"snvs": args.background_snvs, "indels": args.background_indels, "window": window,
              "draw_seconds": round(drawn_seconds, 2), "total_seconds": round(seconds, 2),
              "variants_per_second": round(len(drawn) / seconds, 1), "gate_max_abs_llr_error": error}
    if args.write_calibration:
        classes: dict[str, list[float]] = {}
        for (variant, _), llr in zip(drawn, llrs):
            classes.setdefault(variant.klass, []).append(llr)
        source = {"fasta": [os.path.basename(path) for path in args.genomes] or ["random"],
                  "snvs": args.background_snvs, "indels": args.background_indels, "seed": args.seed,
                  "per_tile": 8, "device": str(device), "score_seconds": round(seconds, 1),
                  "made_by": "benchmarks/haplotype.py"}
        calibration = Calibration("llr", window, True, {name: summarise(np.array(values))
                                                        for name, values in sorted(classes.items())}, source)
        report["calibration_file"] = str(write_calibration(args.write_calibration, calibration))
    return report


def cohort_tiles(genome: MemoryGenome, window: int, args) -> list:
    """(reference window, haplotype windows) per tile of a synthetic cohort region."""
    rng = np.random.default_rng(args.seed)
    contig = max(genome.contigs, key=genome.contigs.get)
    start = window
    sequence = genome.fetch(contig, 0, start + args.region_length + 2 * window, pad=True).upper()
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


def haplotypes(model, genome, window, args, device) -> dict:
    started = time.perf_counter()
    tiles = cohort_tiles(genome, window, args)
    build_seconds = time.perf_counter() - started
    gate = [(reference, windows[:4]) for reference, windows in tiles[:3]]
    fast = HaplotypeScorer(model, batch_size=args.batch_size, device=device).score(gate)
    naive_started = time.perf_counter()
    naive = [score_haplotypes_naive(model, reference, windows, device=device) for reference, windows in gate]
    naive_seconds = time.perf_counter() - naive_started
    error = max(abs(a.llr - b.llr) for f, n in zip(fast, naive) for a, b in zip(f, n))
    if error > args.tolerance:
        sys.exit(f"correctness gate failed: haplotype llr differs from the naive scorer by {error}")
    scorer = HaplotypeScorer(model, batch_size=args.batch_size, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    scorer.score(tiles)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    count = sum(len(windows) for _, windows in tiles)
    return {"samples": args.samples, "variants": args.variants, "region_length": args.region_length,
            "tiles": len(tiles), "haplotype_windows": count, "model_passes": scorer.passes,
            "build_seconds": round(build_seconds, 2), "score_seconds": round(seconds, 2),
            "haplotype_windows_per_second": round(count / seconds, 1),
            "naive_haplotype_windows_per_second": round(sum(len(w) for _, w in gate) / naive_seconds, 1),
            "gate_max_abs_llr_error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default=str(RESOURCES / "model"))
    parser.add_argument("--genomes", nargs="*", default=[])
    parser.add_argument("--background-snvs", type=int, default=100_000)
    parser.add_argument("--background-indels", type=int, default=12_000)
    parser.add_argument("--write-calibration", default=None, help="model directory to store the background in")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--region-length", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=2e-3, help="gate: max |llr - naive llr|")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from genossm.models.checkpoint import load_model

    device = torch.device(args.device)
    model = load_model(args.model, device=device).eval()
    window = calibration_window(CalibrateJob(fastas=(), model=args.model), model.config.max_length, Path(args.model))
    genomes = [MemoryGenome.read(path) for path in args.genomes] or [random_genome(2_000_000, args.seed)]
    report = {"benchmark": "haplotype", "model": Path(args.model).name, **device_facts(device),
              "background": background(model, genomes, window, args, device),
              "haplotypes": haplotypes(model, genomes[0], window, args, device)}
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
