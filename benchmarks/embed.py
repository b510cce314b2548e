"""Region embedding throughput (bases/s), one pass and in exact chunks, with a correctness gate.

Regions of `--length` bases from the bundled sample genome (lambda phage when it is absent;
repeated cyclically when shorter than a region) are
embedded with both strands averaged (two passes per region), by `genossm.infer.embed`. The
chunked path (`forward_chunked`, `--chunk` bases a pass) must match the one-pass result before
anything is timed. Models have random weights of a named config.

    python benchmarks/embed.py --out benchmarks/results/embed_cpu.json
    python benchmarks/embed.py --device cuda --length 131072 --regions 8 --configs hyena-1m mamba-1m
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from common import device_facts, emit_report

from genossm.infer.embed.embedder import EmbedSettings, embed_tokens
from genossm.io.fasta import open_fasta
from genossm.models.config import load_model_config
from genossm.models.lm import build_model
from genossm.resources import RESOURCES

SAMPLE_GENOME = RESOURCES / "sample" / "sample_genome.fa.gz"
LAMBDA = RESOURCES / "sample" / "lambda_virus.fa"


def timed(function, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def bench_one(name: str, genome, args, device) -> dict:
    torch.manual_seed(0)
    model = build_model(load_model_config(name)).to(device).eval()
    contig, length = next(iter(genome.contigs.items()))
    # Regions longer than the bundled contig repeat it cyclically (real bases, never N padding),
    # each region starting at a different offset.
    sequence = genome.fetch_tokens(contig, 0, length)
    regions = [np.resize(np.roll(sequence, -((i * 7919) % length)), args.length) for i in range(args.regions)]
    one_pass = EmbedSettings(max_pass_length=1 << 30)
    chunked = EmbedSettings(max_pass_length=args.chunk)
    with torch.no_grad():
        reference = embed_tokens(model, regions[0], one_pass, device)
        candidate = embed_tokens(model, regions[0], chunked, device)
        error = float((reference - candidate).abs().max())
        if not error < 1e-3:
            raise SystemExit(f"{name}: chunked and one-pass embeddings differ by {error}; not timing")
        _, one_seconds = timed(lambda: [embed_tokens(model, r, one_pass, device) for r in regions], device)
        _, chunk_seconds = timed(lambda: [embed_tokens(model, r, chunked, device) for r in regions], device)
    bases = args.length * args.regions
    config = model.config
    return {
        "model": name, "arch": config.arch, "d_model": config.d_model, "n_layers": config.n_layers,
        "region_length": args.length, "regions": args.regions, "both_strands": True,
        "one_pass_seconds": round(one_seconds, 3), "one_pass_bases_per_s": round(bases / one_seconds, 1),
        "chunk": args.chunk, "chunked_seconds": round(chunk_seconds, 3),
        "chunked_bases_per_s": round(bases / chunk_seconds, 1), "gate_max_abs_difference": error,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "tiny-mamba"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=2048, help="bases per pass of the chunked path")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    genome_path = SAMPLE_GENOME if SAMPLE_GENOME.exists() else LAMBDA
    with open_fasta(genome_path) as genome:
        results = []
        for name in args.configs:
            results.append(bench_one(name, genome, args, device))
            print(json.dumps(results[-1]), file=sys.stderr)
    report = {
        "benchmark": "region embeddings, bases/s", **device_facts(device),
        "genome": genome_path.name, "results": results,
    }
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
