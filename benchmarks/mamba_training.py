"""Mamba training speed against its targets: scan and conv kernels, then whole models; one JSON.

    python benchmarks/mamba_training.py --out benchmarks/results/mamba_training_h200.json

One row per shape with `op`, `shape`, `dtype`, `genossm_ms` (fwd+bwd for kernels, the train step
for models), `tokens_per_s` (models), `peak_gib`, the peer's figure measured side by side on an
H200 (shared/ANCHORS.md, 2026-12-01: mamba_ssm / causal-conv1d / Caduceus) as `peer_ms` or
`peer_tokens_per_s`, the issue's `target` and whether it was `met`. Correctness gates (scan and
conv against their references, forward and every gradient) run first; the script exits 1 if one
fails. Models train with batch 1, bf16 autocast, AdamW, checkpointing per layer, random tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys

import torch
import triton

import causal_conv1d as conv_bench
import selective_scan as scan_bench
from common import cuda_fwd_bwd, emit_report
from long_context import measure

from genossm.kernels.causal_conv1d.direct_conv import causal_conv1d_triton
from genossm.kernels.selective_scan import chunk_scan
from genossm.kernels.selective_scan.chunk_scan import scan_config, selective_scan_triton
from genossm.models.config import load_model_config
from genossm.models.lm import build_model, count_parameters

# (B, D, N, L, dtype): target fwd+bwd ms, peer fwd+bwd ms (ANCHORS, H200)
SCAN_ROWS = [
    ((1, 512, 16, 1 << 20, torch.bfloat16), 36, 71.3),
    ((1, 512, 16, 1 << 20, torch.float32), 49, 97.3),
    ((8, 1536, 16, 4096, torch.bfloat16), 2.3, 4.49),
    ((1, 1536, 16, 1 << 20, torch.bfloat16), 80, 160),
]
CONV_ROWS = [((1, 512, 1 << 20, torch.bfloat16), 2.4, 2.37)]
# (name, config, overrides, length, mode, target tokens/s, peer tokens/s, target peak GiB)
MODEL_ROWS = [
    ("caduceus_ph_shape", "mamba-small", {"rc_equivariant": False}, 131072, "train", 626e3, 313e3, None),
    ("caduceus_ph_shape", "mamba-small", {"rc_equivariant": False}, 1 << 20, "train", 626e3, 313e3, 41.0),
    ("caduceus_ph_shape", "mamba-small", {"rc_equivariant": False}, 1 << 20, "inference", 2.03e6, 2.03e6, None),
    ("mamba-small (RC on)", "mamba-small", {}, 131072, "train", 313e3, None, None),
    ("mamba-1m (causal)", "mamba-1m", {}, 1 << 20, "train", 0.6e6, None, None),
]


def dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def scan_rows() -> list[dict]:
    rows = []
    for (batch, H, N, L, dtype), target, peer in SCAN_ROWS:
        torch.cuda.empty_cache()
        inputs = scan_bench.make_inputs(batch, H, N, L, dtype)
        leaves = [t for t in inputs.values() if t is not None]
        ms, peak = cuda_fwd_bwd(lambda: selective_scan_triton(**inputs, delta_softplus=True), leaves,
                                warmup=20, rep=200)
        rows.append({"op": "selective_scan fwd+bwd (z, D, delta_bias, softplus)",
                     "shape": [batch, H, N, L], "dtype": dtype_name(dtype), "genossm_ms": ms,
                     "peak_gib": peak, "peer_ms": peer, "target_ms": target, "met": ms <= target})
        print(rows[-1], file=sys.stderr, flush=True)
        inputs = leaves = None  # free the large inputs before the next shape
    return rows


def conv_rows() -> list[dict]:
    rows = []
    for (batch, H, L, dtype), target, peer in CONV_ROWS:
        inputs = conv_bench.make_inputs(batch, H, L, dtype)
        ms, peak = cuda_fwd_bwd(lambda: causal_conv1d_triton(**inputs, activation="silu"),
                                list(inputs.values()), warmup=20, rep=200)
        rows.append({"op": "causal_conv1d fwd+bwd (width 4, bias, SiLU)", "shape": [batch, H, L],
                     "dtype": dtype_name(dtype), "genossm_ms": ms, "peak_gib": peak,
                     "peer_ms": peer, "target_ms": target, "met": ms <= target})
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def model_rows(names: set[str] | None) -> list[dict]:
    rows = []
    device = torch.device("cuda")
    os.environ.pop("GENOSSM_KERNELS", None)
    for name, config_name, overrides, length, mode, target, peer, peak_target in MODEL_ROWS:
        if names and name not in names:
            continue
        config = load_model_config(config_name)
        for field, value in overrides.items():
            setattr(config, field, value)
        config.checkpointing = True
        torch.manual_seed(0)
        model = build_model(config).to(device)
        tokens = torch.randint(0, 4, (1, length), device=device)
        result = measure(model, tokens, device, train=mode == "train", repeats=3, warmup=1)
        row = {"op": f"{name} {mode}", "config": config_name, "overrides": overrides,
               "parameters": count_parameters(model), "shape": [1, length], "dtype": "bf16 autocast",
               "genossm_ms": result.get("ms"), "tokens_per_s": result.get("tokens_per_s"),
               "peak_gib": result.get("peak_gib"), "oom": result.get("oom", False),
               "peer_tokens_per_s": peer, "target_tokens_per_s": target,
               "met": bool(result.get("tokens_per_s", 0) >= target
                           and (peak_target is None or result.get("peak_gib", 1e9) <= peak_target))}
        if peak_target is not None:
            row["target_peak_gib"] = peak_target
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
        del model, tokens
        torch.cuda.empty_cache()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=("scan", "conv", "models"),
                        default=["scan", "conv", "models"])
    parser.add_argument("--models", nargs="+", help="only these model rows (by name)")
    parser.add_argument("--sweep", action="store_true",
                        help="first time the backward tiles (selective_scan.py's sweep) and run "
                             "everything with the fastest")
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/mamba_training.py needs a CUDA GPU", file=sys.stderr)
        return 1
    report = {
        "benchmark": "mamba_training",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(), "torch": torch.__version__,
        "triton": triton.__version__,
        "peer_source": "shared/ANCHORS.md: mamba_ssm, causal-conv1d and Caduceus built from source "
                       "for sm_90 and measured side by side with genossm on one H200, 2026-12-01",
        "gates": {"selective_scan": scan_bench.correctness_gate(),
                  "causal_conv1d": conv_bench.correctness_gate()},
        "rows": [],
    }
    if not all(gate["passed"] for gate in report["gates"].values()):
        emit_report(report, args.out)
        return 1
    best = {}
    if args.sweep:
        best, report["scan_sweep"] = scan_bench.sweep()
    with scan_config(**best):
        report["scan_config"] = dataclasses.asdict(chunk_scan.CONFIG)
        if "scan" in args.parts:
            report["rows"] += scan_rows()
        if "conv" in args.parts:
            report["rows"] += conv_rows()
        if "models" in args.parts:
            report["rows"] += model_rows(set(args.models) if args.models else None)
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
