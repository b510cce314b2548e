"""Time the Triton gated RMSNorm against its PyTorch reference at Mamba-2's shape; print JSON.

    python benchmarks/gated_rmsnorm.py [--out results.json]
    python benchmarks/gated_rmsnorm.py --sweep [--length 1048576] [--out sweep.json]

Shape: `mamba2-1m`'s norm before out_proj, batch 1, 2^20 positions, 512 channels in one group,
bf16, y contiguous and z a transposed slice of a channels-first projection (as
`Mamba2Mixer._project` makes it). A correctness gate (output and the gradients of y, z and
weight against `gated_rms_norm_ref`, at an odd length with 2 groups) runs first; the script exits
1 if it fails. Rows: forward and forward + backward medians (triton.testing.do_bench), the peak
memory of one forward + backward, and the HBM floor (the bytes each pass must move at least: y, z
read and the output written forward; y, z, dout read and dy, dz written backward, at the
bandwidth of a device copy measured in the same run). `--sweep` times the launch shapes
(`RMSNormConfig` tiles and warps) side by side, each behind the gate.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

import torch
import triton

from common import cuda_fwd_bwd, device_facts, emit_report, relative_error

from genossm.kernels.rmsnorm import gated_rms_norm_ref
from genossm.kernels.rmsnorm import fused_rmsnorm
from genossm.kernels.rmsnorm.fused_rmsnorm import gated_rms_norm_triton, rmsnorm_config

log = logging.getLogger("genossm.benchmarks.gated_rmsnorm")

EPS = 1e-5
GATE = dict(batch=2, length=4099, width=256, group=128)
SWEEP = [dict(fwd_tile_elements=f, fwd_warps=fw, bwd_tile_elements=b, bwd_warps=bw)
         for f, fw in ((8192, 8), (16384, 16), (4096, 8))
         for b, bw in ((4096, 8), (8192, 16), (4096, 16), (2048, 8))]


def make_inputs(batch, length, width, dtype=torch.bfloat16, seed=0):
    """y (batch, length, width) contiguous, z position-major, weight fp32 near 1."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    y = torch.randn(batch, length, width, device="cuda", dtype=dtype, generator=gen).requires_grad_()
    projection = torch.randn(batch, 2 * width, length, device="cuda", dtype=dtype, generator=gen)
    z = projection[:, :width].transpose(1, 2).detach().requires_grad_()
    weight = (1 + 0.1 * torch.randn(width, device="cuda", generator=gen)).requires_grad_()
    return y, z, weight


def gate() -> dict:
    """Output and every gradient, Triton against the reference, bf16 and fp32."""
    errors = {}
    for dtype, tolerance in ((torch.bfloat16, 1e-2), (torch.float32, 1e-5)):
        y, z, weight = make_inputs(GATE["batch"], GATE["length"], GATE["width"], dtype)
        grad = torch.randn(y.shape, device="cuda", dtype=dtype)
        results = []
        for norm in (gated_rms_norm_triton, gated_rms_norm_ref):
            out = norm(y, z, weight, GATE["group"], EPS)
            results.append([out, *torch.autograd.grad(out, (y, z, weight), grad)])
        names = ("out", "dy", "dz", "dweight")
        errors[str(dtype)] = {n: relative_error(a, b) for n, a, b in zip(names, *results)}
        errors[str(dtype)]["passed"] = all(errors[str(dtype)][n] < tolerance for n in names)
    errors["passed"] = all(v["passed"] for v in errors.values() if isinstance(v, dict))
    return errors


def copy_bandwidth() -> float:
    """Bytes per second of a 1 GiB device-to-device copy (read + write counted)."""
    src = torch.empty(1 << 29, device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=10, rep=50, return_mode="median")
    return 2 * src.numel() * src.element_size() / (ms / 1e3)


def time_row(norm, length, width, group, warmup, rep) -> dict:
    y, z, weight = make_inputs(1, length, width)
    run = lambda: norm(y, z, weight, group, EPS)  # noqa: E731
    with torch.no_grad():
        fwd = triton.testing.do_bench(run, warmup=warmup, rep=rep, return_mode="median")
    fwd_bwd, peak = cuda_fwd_bwd(run, [y, z, weight], warmup=warmup, rep=rep)
    return {"fwd_ms": round(fwd, 4), "fwd_bwd_ms": round(fwd_bwd, 4), "peak_gib": round(peak, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=1 << 20)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--group", type=int, default=512)
    parser.add_argument("--sweep", action="store_true", help="time the RMSNormConfig candidates too")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rep", type=int, default=50)
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU")
    if args.length < 1 or args.width < 1 or args.group < 1 or args.width % args.group:
        parser.error("--length, --width, --group must be >= 1 and --group must divide --width")
    report = {"benchmark": "gated_rmsnorm", **device_facts(torch.device("cuda")),
              "triton": triton.__version__,
              "shape": {"batch": 1, "length": args.length, "width": args.width, "group": args.group,
                        "dtype": "bfloat16", "z": "position-major (a transposed channels-first slice)"}}
    log.info("gate")
    report["gate"] = gate()
    if not report["gate"]["passed"]:
        emit_report(report, args.out)
        log.error("the gate failed: %s", report["gate"])
        return 1
    bandwidth = copy_bandwidth()
    elements = args.length * args.width
    floor_fwd = 3 * elements * 2 / bandwidth * 1e3  # y, z read, out written (bf16)
    floor_bwd = 5 * elements * 2 / bandwidth * 1e3  # y, z, dout read, dy, dz written
    report["copy_bytes_per_s"] = bandwidth
    report["hbm_floor_ms"] = {"fwd": round(floor_fwd, 4), "fwd_bwd": round(floor_fwd + floor_bwd, 4)}
    log.info("reference")
    rows = {"reference": time_row(gated_rms_norm_ref, args.length, args.width, args.group, args.warmup, args.rep)}
    log.info("triton (default config)")
    rows["triton"] = time_row(gated_rms_norm_triton, args.length, args.width, args.group, args.warmup, args.rep)
    rows["triton"]["config"] = dataclasses.asdict(fused_rmsnorm.CONFIG)
    for name in ("fwd", "fwd_bwd"):
        rows["triton"][f"speedup_{name}"] = round(rows["reference"][f"{name}_ms"] / rows["triton"][f"{name}_ms"], 2)
        rows["triton"][f"{name}_over_floor"] = round(rows["triton"][f"{name}_ms"] / report["hbm_floor_ms"][name], 2)
    report["rows"] = rows
    if args.sweep:
        sweep = []
        for overrides in SWEEP:
            with rmsnorm_config(**overrides):
                if not gate()["passed"]:
                    sweep.append({"config": overrides, "error": "gate failed"})
                    continue
                row = time_row(gated_rms_norm_triton, args.length, args.width, args.group, args.warmup, args.rep)
            sweep.append({"config": overrides, **row})
            log.info("%s: %s", overrides, row)
        report["sweep"] = sweep
        timed = [r for r in sweep if "fwd_bwd_ms" in r]
        if timed:
            report["best"] = min(timed, key=lambda r: r["fwd_bwd_ms"])
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
