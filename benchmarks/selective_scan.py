"""Time the Triton selective scan against the PyTorch chunked reference; print JSON.

    python benchmarks/selective_scan.py [--sweep] [--out results.json]

(The sequential forward against the first associative-scan forward, `--seq` until 2026-12-01,
is recorded in benchmarks/results/selective_scan_seq.json; that forward now serves training too.)

Shapes are those of docs/ANCHORS (mamba_ssm's CUDA figures): z gating and delta_softplus on,
delta_bias and D on, one B/C group, A (H, N) fp32. A correctness gate (forward and every
gradient against the reference at a real shape) runs before anything is timed, and the script
exits 1 if it fails. `--sweep` first times a few backward tiles at (1, 512, 16, 2^20, bf16) and
uses the fastest for the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time

import torch
import triton

from common import cuda_fwd_bwd, emit_report, relative_error

from genossm.kernels.selective_scan import selective_scan_chunked
from genossm.kernels.selective_scan import chunk_scan
from genossm.kernels.selective_scan.chunk_scan import scan_config, selective_scan_triton

log = logging.getLogger("genossm.benchmarks.selective_scan")

# (batch, channels, state, length, dtype, time the reference too)
SHAPES = [
    (1, 512, 16, 65536, torch.bfloat16, True),
    (1, 512, 16, 1 << 20, torch.bfloat16, False),
    (1, 512, 16, 1 << 20, torch.float32, False),
    (8, 1536, 16, 4096, torch.bfloat16, True),
    (1, 1536, 16, 1 << 20, torch.bfloat16, False),
]
# mamba_ssm's CUDA kernel, fwd+bwd ms, and genossm's previous kernels (commit 64e374b), both
# measured side by side on one H200 on 2026-12-01 (shared/ANCHORS.md); fwd ms and peak GiB of the
# peer from its H100 table where the H200 table has none.
PEER_H200 = {
    (1, 512, 16, 1 << 20, "bfloat16"): {"peer_fwd_bwd_ms": 71.3, "previous_genossm_fwd_bwd_ms": 252,
                                        "peer_fwd_ms": 11.2, "peer_peak_gib_h100": 9.4},
    (1, 512, 16, 1 << 20, "float32"): {"peer_fwd_bwd_ms": 97.3, "previous_genossm_fwd_bwd_ms": 221,
                                       "peer_peak_gib_h100": 18.4},
    (8, 1536, 16, 4096, "bfloat16"): {"peer_fwd_bwd_ms": 4.49, "previous_genossm_fwd_bwd_ms": 17.8,
                                      "peer_peak_gib_h100": 0.9},
    (1, 1536, 16, 1 << 20, "bfloat16"): {"peer_fwd_bwd_ms": 160, "previous_genossm_fwd_bwd_ms": 714,
                                         "peer_peak_gib_h100": 27.4},
}
# One exp per (position, channel, state) on the special-function units: ~2 ms at
# (1, 512, 16, 2^20) on an H100 (KERNEL_NOTES), i.e. ~4.3e12 exps/s.
EXP_PER_SECOND = 512 * 16 * (1 << 20) / 2e-3

# backward tiles (channels x positions) and warps timed by --sweep at (1, 512, 16, 2^20, bf16)
# (one-warp programs keep every reduction inside a warp: no barrier; benchmarks/scan_sweep.py at
# 2^18 on 2026-12-01 put 16 x 16 on one warp 8% ahead of 64 x 16 on four)
SWEEP_BWD = [dict(bwd_block_c=c, chunk=t, bwd_warps=w, bwd_maxnreg=r, bwd_target_programs=p)
             for c, t, w, r, p in [(64, 16, 4, 128, 1024), (16, 16, 1, 128, 4096),
                                   (16, 16, 1, None, 4096), (8, 16, 1, 128, 8192),
                                   (32, 16, 1, 168, 4096)]]


def make_inputs(batch, H, N, L, dtype, requires_grad=True, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0, dt=dtype):
        t = torch.randn(*shape, device="cuda", generator=gen) * scale + shift
        return t.to(dt).requires_grad_(requires_grad)

    return dict(
        u=rand(batch, H, L), delta=rand(batch, H, L, scale=0.5, shift=-1.0),
        A=(-torch.rand(H, N, device="cuda", generator=gen) - 0.2).requires_grad_(requires_grad),
        B=rand(batch, 1, N, L), C=rand(batch, 1, N, L), D=rand(H), z=rand(batch, H, L),
        delta_bias=rand(H, scale=0.3),
    )



def correctness_gate() -> dict:
    """Forward and every gradient at (2, 64, 16, 4099, bf16), plus a forward at 2^20 (8 channels)."""
    inputs = make_inputs(2, 64, 16, 4099, torch.bfloat16)
    errors = {}
    results = []
    for scan in (selective_scan_triton, selective_scan_chunked):
        y, last = scan(**inputs, delta_softplus=True, return_last_state=True)
        gen = torch.Generator(device="cuda").manual_seed(1)
        wy = torch.randn(y.shape, device="cuda", generator=gen)
        wl = torch.randn(last.shape, device="cuda", generator=gen)
        grads = torch.autograd.grad((y.float() * wy).sum() + (last * wl).sum(), list(inputs.values()))
        results.append((y, last, grads))
    (y, last, grads), (y_ref, last_ref, grads_ref) = results
    errors["y"], errors["last_state"] = relative_error(y, y_ref), relative_error(last, last_ref)
    for name, g, g_ref in zip(inputs, grads, grads_ref):
        errors["d" + name] = relative_error(g, g_ref)
    long_inputs = make_inputs(1, 8, 16, 1 << 20, torch.bfloat16, requires_grad=False)
    with torch.no_grad():
        y = selective_scan_triton(**long_inputs, delta_softplus=True)
        y_ref = selective_scan_chunked(**long_inputs, delta_softplus=True, chunk_size=256)
    errors["y_L2^20"] = relative_error(y, y_ref)
    passed = all(err < 2e-2 for err in errors.values())
    return {"passed": passed, "relative_errors": errors}


def bench(fn, reps_ms=300):
    return triton.testing.do_bench(fn, warmup=50, rep=reps_ms, return_mode="median")


def time_scan(scan, inputs, quick=False):
    """no-grad fwd ms, training fwd ms (grad on), fwd+bwd ms, peak GiB of one fwd+bwd (inputs
    included)."""
    leaves = [t for t in inputs.values() if t is not None]
    run = lambda: scan(**inputs, delta_softplus=True)  # noqa: E731
    with torch.no_grad():
        fwd = bench(run, 50 if quick else 300)
    fwd_grad = bench(run, 50 if quick else 300)
    total, peak = cuda_fwd_bwd(run, leaves, warmup=10 if quick else 50, rep=50 if quick else 300)
    return fwd, fwd_grad, total, peak


def sweep() -> tuple[dict, list]:
    """Time backward tiles at (1, 512, 16, 2^20, bf16); return the fastest fwd+bwd one."""
    inputs = make_inputs(1, 512, 16, 1 << 20, torch.bfloat16)
    leaves = [t for t in inputs.values() if t is not None]
    rows, best, best_total = [], {}, float("inf")
    for config in SWEEP_BWD:
        try:
            with scan_config(**config):
                total, peak = cuda_fwd_bwd(lambda: selective_scan_triton(**inputs, delta_softplus=True),
                                           leaves, warmup=10, rep=100)
        except Exception as error:  # a shape the compiler rejects is reported, not fatal
            rows.append({"config": config, "error": repr(error)[:300]})
            continue
        rows.append({"config": config, "fwd_bwd_ms": total, "peak_gib": peak})
        log.info("sweep %s: %.3f ms", config, total)
        if total < best_total:
            best, best_total = config, total
    with scan_config(**best):  # the same version twice: the spread is the noise
        total, _ = cuda_fwd_bwd(lambda: selective_scan_triton(**inputs, delta_softplus=True),
                                leaves, warmup=10, rep=100)
    rows.append({"config": best, "fwd_bwd_ms_repeat": total})
    return best, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="pick launch shapes by timing first")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--skip-reference", action="store_true", help="time only the Triton scan")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=INT",
                        help="override a ScanConfig field, e.g. --set chunk=128 (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if not torch.cuda.is_available():
        log.error("benchmarks/selective_scan.py needs a CUDA GPU")
        return 1

    report = {
        "device": torch.cuda.get_device_name(),
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "exp_floor_rate_per_s": EXP_PER_SECOND,
    }
    gate = correctness_gate()
    report["correctness_gate"] = gate
    log.info("correctness gate: %s", json.dumps(gate))
    if not gate["passed"]:
        print(json.dumps(report, indent=2))
        return 1

    overrides = {}
    for item in args.set:
        field, _, value = item.partition("=")
        overrides[field] = int(value)
    if args.sweep:
        best, rows = sweep()
        overrides = {**best, **overrides}
        report["sweep"] = rows
    report["config"] = dataclasses.asdict(dataclasses.replace(chunk_scan.CONFIG, **overrides))

    results = []
    for batch, H, N, L, dtype, with_reference in SHAPES:
        name = str(dtype).removeprefix("torch.")
        row = {"batch": batch, "channels": H, "state": N, "length": L, "dtype": name}
        torch.cuda.empty_cache()
        inputs = make_inputs(batch, H, N, L, dtype)
        with scan_config(**overrides):
            fwd, fwd_grad, total, peak = time_scan(selective_scan_triton, inputs)
        floor_ms = batch * H * N * L / EXP_PER_SECOND * 1e3
        row.update(fwd_ms=fwd, train_fwd_ms=fwd_grad, fwd_bwd_ms=total, bwd_ms=total - fwd_grad,
                   peak_gib=peak, exp_floor_ms=floor_ms, fwd_share_of_exp_floor=floor_ms / fwd)
        row.update(PEER_H200.get((batch, H, N, L, name), {}))
        if with_reference and not args.skip_reference:
            del inputs
            torch.cuda.empty_cache()
            inputs = make_inputs(batch, H, N, L, dtype)
            try:
                ref_fwd, _, ref_total, ref_peak = time_scan(selective_scan_chunked, inputs, quick=True)
                row["reference_chunked"] = {"fwd_ms": ref_fwd, "fwd_bwd_ms": ref_total,
                                            "peak_gib": ref_peak}
            except torch.cuda.OutOfMemoryError:
                row["reference_chunked"] = "out of memory"
        log.info("%s", json.dumps(row))
        results.append(row)
        del inputs
    report["results"] = results
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
