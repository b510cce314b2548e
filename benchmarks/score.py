"""Variant scoring throughput: genossm's scorer against a naive one, in the same run.

The naive scorer (`genossm.infer.score.scorer.score_pairs_naive`) runs two full passes per ALT and
strand, one window at a time: no shared reference pass, no batching, no prefix state. The fast
one (`VariantScorer`) shares each tile's reference pass, batches and deduplicates windows, and
for causal Mamba resumes alt windows from the reference prefix state. Both score the same
windows; a correctness gate compares their LLRs before anything is timed.

Variants: random SNVs (80%) and short indels (20%) on the bundled sample genome (lambda phage
when it is absent), one every `--spacing` bases, the density of a dense call set or a
mutagenesis scan. Models have random weights of a named config (speed does not depend on the
weights) or come from `--model DIR`.

    python benchmarks/score.py                                   # CPU, writes JSON to stdout
    python benchmarks/score.py --device cuda --variants 2000 --configs tiny hyena-1m tiny-mamba
    python benchmarks/score.py --out benchmarks/results/score_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from common import device_facts, emit_report

from genossm.infer.score.scorer import VariantScorer, score_pairs_naive
from genossm.infer.score.tiles import TileLayout, allele_pair
from genossm.io.fasta import open_fasta
from genossm.resources import RESOURCES

SAMPLE_GENOME = RESOURCES / "sample" / "sample_genome.fa.gz"
LAMBDA = RESOURCES / "sample" / "lambda_virus.fa"


def build(config_name: str | None, model_dir: str | None, device):
    if model_dir:
        from genossm.models.checkpoint import load_model

        return load_model(model_dir, device=device).eval(), model_dir
    from genossm.models.config import load_model_config
    from genossm.models.lm import build_model

    torch.manual_seed(0)
    return build_model(load_model_config(config_name)).to(device).eval(), config_name


def make_pairs(genome, window: int, count: int, spacing: int, seed: int = 0):
    """`count` ALTs every `spacing` bases from position 10,000 on (SNVs, 20% 1-3 base indels)."""
    rng = np.random.default_rng(seed)
    contig = next(iter(genome.contigs))
    layout = TileLayout(window)
    pairs, tiles = [], {}
    for index in range(count):
        position = 10_000 + index * spacing
        start = layout.tile_start(position)
        if start not in tiles:
            tiles = {start: genome.fetch_tokens(contig, start, start + window + 8, pad=True)}
        tile = tiles[start]
        offset = position - start
        ref_token = int(tile[offset])
        if rng.random() < 0.8:
            alt = np.array([(ref_token + int(rng.integers(1, 4))) % 4], dtype=np.uint8)
            pairs.append(allele_pair(tile, offset, 1, alt, window))
        elif rng.random() < 0.5:  # deletion of 1-3 bases after the anchor
            pairs.append(allele_pair(tile, offset, 1 + int(rng.integers(1, 4)), tile[offset:offset + 1], window))
        else:  # insertion of 1-3 bases after the anchor
            inserted = rng.integers(0, 4, int(rng.integers(1, 4))).astype(np.uint8)
            pairs.append(allele_pair(tile, offset, 1, np.concatenate([tile[offset:offset + 1], inserted]), window))
    return pairs


def timed(function, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def bench_one(name, model, genome, args, device) -> dict:
    window = args.window or min(int(model.config.max_length), 2048)
    pairs = make_pairs(genome, window, args.variants, args.spacing)
    scorer = VariantScorer(model, batch_size=args.batch_size, device=device)
    # Correctness gate: the fast path must agree with the naive one before anything is timed.
    gate = pairs[: min(8, len(pairs))]
    fast_gate = scorer.score(gate)
    naive_gate = score_pairs_naive(model, gate, device=device)
    max_error = max(abs(a.llr - b.llr) for a, b in zip(fast_gate, naive_gate))
    if not max_error < 1e-3 * max(1.0, max(abs(b.llr) for b in naive_gate)):
        raise SystemExit(f"{name}: fast and naive LLRs disagree by {max_error}; not timing")
    naive_pairs = pairs[: args.naive_variants or len(pairs)]
    _, fast_seconds = timed(lambda: scorer.score(pairs), device)
    _, naive_seconds = timed(lambda: score_pairs_naive(model, naive_pairs, device=device), device)
    fast_rate = len(pairs) / fast_seconds
    naive_rate = len(naive_pairs) / naive_seconds
    config = model.config
    return {
        "model": name, "arch": config.arch, "objective": config.objective, "d_model": config.d_model,
        "n_layers": config.n_layers, "window": window, "variants": len(pairs),
        "naive_variants": len(naive_pairs), "spacing_bp": args.spacing, "batch_size": args.batch_size,
        "both_strands": True, "prefix_state_reuse": scorer.reuse_prefix_state,
        "fast_seconds": round(fast_seconds, 3), "naive_seconds": round(naive_seconds, 3),
        "fast_variants_per_s": round(fast_rate, 2), "naive_variants_per_s": round(naive_rate, 2),
        "speedup": round(fast_rate / naive_rate, 2), "gate_max_abs_llr_difference": max_error,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "tiny-mamba"],
                        help="model configs (configs/models/NAME.yaml) with random weights")
    parser.add_argument("--model", default=None, help="a checkpoint directory instead of --configs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", type=int, default=256)
    parser.add_argument("--naive-variants", type=int, default=64,
                        help="the naive scorer times this many of them (it is slow), rate per variant")
    parser.add_argument("--spacing", type=int, default=20, help="bases between consecutive variants")
    parser.add_argument("--window", type=int, default=None, help="default: the model's max_length, at most 2048")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    genome_path = SAMPLE_GENOME if SAMPLE_GENOME.exists() else LAMBDA
    results = []
    with open_fasta(genome_path) as genome:
        models = [(args.model, None)] if args.model else [(None, name) for name in args.configs]
        for model_dir, config_name in models:
            model, name = build(config_name, model_dir, device)
            with torch.no_grad():
                results.append(bench_one(name, model, genome, args, device))
            print(json.dumps(results[-1]), file=sys.stderr)
    report = {
        "benchmark": "variant scoring, fast vs naive", **device_facts(device),
        "genome": genome_path.name, "results": results,
    }
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
