"""Model forward throughput on CPU: tokens/s of shipped configs at a fixed length.

    python benchmarks/model_forward.py --models tiny,hyena-1m --length 4096 \\
        --out benchmarks/results/model_forward_cpu.json

Batch 1, eval mode, no grad, float32, freshly initialised weights (throughput does not depend on
the values). Per model: the full pass (`model(tokens)`) and the exact chunked pass
(`model.forward_chunked`, the bounded-memory path long inputs take), timed best-of-`--repeats`
by wall clock and by this process's CPU time (the steadier figure on a shared machine).
Correctness gate first: nothing is timed unless the chunked pass equals the full pass on the
benchmark input. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from common import best_seconds, emit_report, machine_info

from genossm.models.config import load_model_config
from genossm.models.lm import build_model, count_parameters


def bench_model(name: str, length: int, chunk_size: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(load_model_config(name)).eval()
    tokens = torch.randint(0, 4, (1, length))  # (1, L)
    with torch.no_grad():
        full = model(tokens)
        chunked = model.forward_chunked(tokens, chunk_size)
        torch.testing.assert_close(chunked, full, rtol=1e-4, atol=1e-5)  # correctness gate
        model(tokens)  # warm-up
        results = {}
        for label, function in (("forward", lambda: model(tokens)),
                                ("forward_chunked", lambda: model.forward_chunked(tokens, chunk_size))):
            wall, cpu = best_seconds(function, repeats)
            results[label] = {"seconds": round(wall, 4), "tokens_per_s": round(length / wall, 1),
                              "cpu_seconds": round(cpu, 4), "tokens_per_cpu_s": round(length / cpu, 1)}
    return {"model": name, "arch": model.config.arch, "parameters": count_parameters(model),
            "length": length, "batch": 1, "dtype": "float32", "chunk_size": chunk_size, **results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,hyena-1m", help="comma-separated shipped config names")
    parser.add_argument("--length", type=int, default=4096, help="bases per forward pass")
    parser.add_argument("--chunk-size", type=int, default=1024, help="chunk of the forward_chunked pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per pass; the best is kept")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    results = [bench_model(name, args.length, args.chunk_size, args.repeats) for name in args.models.split(",")]
    emit_report({
        "benchmark": "model_forward_cpu",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "results": results,
        "machine": machine_info(),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
    }, args.out)


if __name__ == "__main__":
    main()
