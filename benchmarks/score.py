"""Variant scoring throughput of every score definition, dense and sparse SNVs, in one run.

For each `genossm score --score` definition (`genossm.infer.score.definitions`) and for today's
default before issue 20 (`llr,embdist`, the reference rate of this run), `VariantScorer` scores
the same SNVs, both strands, at the model's default window (the training window its checkpoint
records), and the script reports records/s:

    dense   one SNV every 20 bases (a mutagenesis scan, a dense call set): every tile holds many
            SNVs, so a score that reads only the reference pass (`site` of a causal model) needs
            one pass per tile and strand for all of them
    sparse  one SNV every 2,000 bases (a real call set): every SNV has its own tile

A correctness gate compares each definition's fast path with the naive scorer
(`score_pairs_naive`) on a few SNVs before anything is timed. The genome is random bases from a
fixed seed (speed does not depend on the sequence), so the script needs no FASTA reader (pysam is
not installed on the GPU machines). The model is the bundled one unless `--model DIR`.
`--site-windows` also times `site` at smaller windows (its context need: docs/vep.md).

    python benchmarks/score.py --out benchmarks/results/score_definitions_cpu.json
    python benchmarks/score.py --device cuda --dense-variants 4000 --sparse-variants 1000 \
        --out benchmarks/results/score_definitions_h200.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from common import device_facts, emit_report

from genossm.infer.score.definitions import SCORE_NAMES
from genossm.infer.score.scorer import VariantScorer, score_pairs_naive
from genossm.infer.score.tiles import TileLayout, allele_pair
from genossm.tokenizer import N

BEFORE_ISSUE_20 = ("llr", "embdist")  # the default definitions before issue 20: the reference rate


def load(model_dir: str | None, device):
    """The checkpoint (default: the bundled model) and the window it was trained on."""
    from genossm.infer import runtime
    from genossm.infer.score.settings import default_window, training_window
    from genossm.models.checkpoint import read_checkpoint_config

    path = runtime.checkpoint_dir(model_dir)
    model, _ = runtime.load_inference_model(path, device)
    window = default_window(model.config.max_length, None, training_window(read_checkpoint_config(path)))
    return model, str(path), window


def snv_pairs(genome: np.ndarray, window: int, count: int, spacing: int, seed: int = 0):
    """`count` SNVs every `spacing` bases from position `window` on, random ALT bases."""
    rng = np.random.default_rng(seed)
    layout = TileLayout(window)
    pairs = []
    for index in range(count):
        position = window + index * spacing
        start = layout.tile_start(position)
        tile = genome[start:start + window + 1]
        ref = int(tile[position - start])
        alt = np.array([(ref + int(rng.integers(1, 4))) % 4], dtype=np.uint8)
        pairs.append(allele_pair(tile, position - start, 1, alt, window))
    return pairs


def timed(function, device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared CPU the CPU time is the steadier
    figure (other processes stretch the wall clock, not the work done)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu


def gate(model, pairs, scores, device) -> float:
    """Largest |fast - naive| over the definitions, or exit: nothing is timed on a wrong path."""
    fast = VariantScorer(model, device=device, scores=scores).score(pairs)
    naive = score_pairs_naive(model, pairs, device=device, scores=scores)
    error = max(abs(f[name] - n[name]) for f, n in zip(fast, naive) for name in scores)
    scale = max(1.0, max(abs(n[name]) for n in naive for name in scores))
    if not error < 1e-3 * scale:
        raise SystemExit(f"{','.join(scores)}: fast and naive scores disagree by {error}; not timing")
    return error


def bench(model, genome, window, density, count, spacing, scores, args, device) -> dict:
    pairs = snv_pairs(genome, window, count, spacing)
    error = gate(model, pairs[:3], scores, device)
    scorer = VariantScorer(model, batch_size=args.batch_size, device=device, scores=scores)
    scorer.score(pairs[: min(4, len(pairs))])  # warm-up: lazy allocations, kernel autotuning
    runs = [timed(lambda: scorer.score(pairs), device) for _ in range(args.repeats)]
    seconds, cpu_seconds = min(wall for wall, _ in runs), min(cpu for _, cpu in runs)
    row = {"density": density, "spacing_bp": spacing, "scores": ",".join(scores), "window": window,
           "records": len(pairs), "seconds": round(seconds, 3), "records_per_s": round(len(pairs) / seconds, 2),
           "cpu_seconds": round(cpu_seconds, 3), "records_per_cpu_s": round(len(pairs) / cpu_seconds, 2),
           "gate_max_abs_difference": error}
    print(json.dumps(row), file=sys.stderr)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint directory (default: the bundled model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dense-variants", type=int, default=64, help="SNVs of the dense set (one per 20 bases)")
    parser.add_argument("--sparse-variants", type=int, default=16, help="SNVs of the sparse set (one per 2 kb)")
    parser.add_argument("--definitions", nargs="+", default=[",".join(BEFORE_ISSUE_20), *SCORE_NAMES],
                        help="comma-separated score sets to time, each as one --score (default: today's "
                             "llr,embdist, then each definition alone)")
    parser.add_argument("--site-windows", type=int, nargs="*", default=[256, 512],
                        help="also time `site` at these windows")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per row (the best is reported)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, model_path, window = load(args.model, device)
    length = 2 * window + max(args.dense_variants * 20, args.sparse_variants * 2000)
    genome = np.random.default_rng(0).integers(0, 4, length).astype(np.uint8)
    genome = np.concatenate([genome, np.full(2 * window, N, dtype=np.uint8)])
    results = []
    started = time.perf_counter()
    with torch.no_grad():
        for density, count, spacing in (("dense", args.dense_variants, 20), ("sparse", args.sparse_variants, 2000)):
            for definition in args.definitions:
                scores = tuple(definition.split(","))
                results.append(bench(model, genome, window, density, count, spacing, scores, args, device))
            for smaller in args.site_windows:
                if smaller < window:
                    results.append(bench(model, genome, smaller, density, count, spacing, ("site",), args, device))
    reference = {row["density"]: row for row in results
                 if row["scores"] == ",".join(BEFORE_ISSUE_20) and row["window"] == window}
    for row in results:
        if row["density"] in reference:
            before = reference[row["density"]]
            row["speedup_vs_llr_embdist"] = round(row["records_per_s"] / before["records_per_s"], 2)
            row["cpu_speedup_vs_llr_embdist"] = round(row["records_per_cpu_s"] / before["records_per_cpu_s"], 2)
    config = model.config
    report = {
        "benchmark": "genossm score throughput per score definition (VariantScorer, both strands, SNVs)",
        **device_facts(device), "model": model_path, "arch": config.arch, "objective": config.objective,
        "d_model": config.d_model, "n_layers": config.n_layers, "default_window": window,
        "batch_size": args.batch_size, "command": " ".join(["python", "benchmarks/score.py", *sys.argv[1:]]),
        "elapsed_seconds": round(time.perf_counter() - started, 1), "results": results,
    }
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
