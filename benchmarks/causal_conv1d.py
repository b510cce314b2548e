"""Time the Triton causal conv1d (W=4, bias, SiLU) against F.conv1d + SiLU; print JSON.

    python benchmarks/causal_conv1d.py [--out results.json]
    python benchmarks/causal_conv1d.py --sweep [--shape 1 512 1048576] [--out sweep.json]

The baseline is `causal_conv1d_ref` (state-prefixed input, F.conv1d(groups=H), SiLU), the way
a PyTorch model without the causal-conv1d package runs it. A correctness gate (output, final
state and every gradient) runs first; the script exits 1 if it fails.

`--sweep` times launch shapes (`ConvConfig`: tiles, warps, line length) side by side at one
shape (about a minute on an H200), each passing the gate first: the forward tiles alone, then
the backward tiles (fwd+bwd, with the fastest forward), then the default CONFIG and the fastest
whole config again with the peak memory, and the reference in the same run. `copy_floor` gives
the HBM-bound times at the measured copy bandwidth. `best.config` is the ConvConfig to make the
default when `make_best_the_default` is true (2% faster or more).
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

from genossm.kernels.causal_conv1d import causal_conv1d_ref
from genossm.kernels.causal_conv1d import direct_conv
from genossm.kernels.causal_conv1d.direct_conv import causal_conv1d_triton, conv_config

log = logging.getLogger("genossm.benchmarks.causal_conv1d")

SHAPES = [(8, 1536, 4096), (1, 512, 1 << 20), (1, 1536, 1 << 20)]
TARGET_SHAPE = (1, 512, 1 << 20)  # issue 15: fwd+bwd <= 2.4 ms on an H200 (causal-conv1d: 2.37 ms)
TARGET_MS = 2.4
# (block_h, block_t, warps, vec) candidates per pass: each thread owns lines of `vec` positions of
# one channel (8 bf16 = one 16-byte load; 16 and 32 are read in 2 and 4 loads and recompute fewer
# halo pre-activations). The backward's 1 x 1024 on one warp won the first H200 sweep
# (`results/causal_conv1d_sweep_h200.json`) at the edge of the grid, so its neighbours in tile,
# warps and line length are candidates too.
SWEEP_TILES = {
    "fwd": [(1, 1024, 4, 8), (1, 2048, 4, 8), (1, 4096, 4, 8), (1, 512, 1, 8), (2, 2048, 4, 8),
            (1, 4096, 4, 16), (1, 8192, 8, 32)],
    "bwd": [(1, 2048, 4, 8), (1, 4096, 8, 8), (1, 4096, 4, 8), (1, 1024, 1, 8), (1, 512, 1, 8),
            (1, 2048, 1, 8), (1, 1024, 2, 8), (1, 2048, 2, 8), (2, 2048, 4, 8), (1, 1024, 1, 16),
            (1, 2048, 1, 16), (1, 2048, 4, 16), (1, 4096, 4, 16), (1, 4096, 8, 16),
            (1, 4096, 4, 32), (1, 8192, 8, 32)],
}
WIDTH = 4
DEVICE = "cuda"
GATE_SHAPE = (4, 256, 4099)  # odd length: the launcher's padding path runs too
HBM_BYTES_PER_S = 2.96e12  # device-to-device copy measured on the H100 (docs/ANCHORS)


def make_inputs(batch, H, L, dtype=torch.bfloat16, seed=0):
    gen = torch.Generator(device=DEVICE).manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, device=DEVICE, generator=gen).to(dtype).requires_grad_()

    return dict(x=rand(batch, H, L), weight=rand(H, WIDTH), bias=rand(H))



def correctness_gate() -> dict:
    """Output, final state and every gradient against the reference under the current CONFIG."""
    batch, H, L = GATE_SHAPE
    inputs = make_inputs(batch, H, L)
    inputs["initial_state"] = torch.randn(batch, H, WIDTH - 1, device=DEVICE).to(torch.bfloat16).requires_grad_()
    outs = []
    for conv in (causal_conv1d_triton, causal_conv1d_ref):
        y, final = conv(**inputs, activation="silu", return_final_state=True)
        gen = torch.Generator(device=DEVICE).manual_seed(1)
        loss = (y.float() * torch.randn(y.shape, device=DEVICE, generator=gen)).sum() + (
            final.float() * torch.randn(final.shape, device=DEVICE, generator=gen)).sum()
        outs.append((y, final, torch.autograd.grad(loss, list(inputs.values()))))
    errors = {"y": relative_error(outs[0][0], outs[1][0]), "final_state": relative_error(outs[0][1], outs[1][1])}
    for name, g, g_ref in zip(inputs, outs[0][2], outs[1][2]):
        errors["d" + name] = relative_error(g, g_ref)
    return {"passed": all(e < 2e-2 for e in errors.values()), "relative_errors": errors}


def time_conv(conv, inputs):
    leaves = list(inputs.values())
    run = lambda: conv(**inputs, activation="silu")  # noqa: E731
    with torch.no_grad():
        fwd = triton.testing.do_bench(run, warmup=25, rep=200, return_mode="median")
    total, peak = cuda_fwd_bwd(run, leaves, warmup=25, rep=200)
    return fwd, total, peak


def tile_overrides(stage: str, tile: tuple[int, int, int, int]) -> dict:
    block_h, block_t, warps, vec = tile
    return {f"{stage}_block_h": block_h, f"{stage}_block_t": block_t, f"{stage}_warps": warps,
            f"{stage}_vec": vec}


def gated_time(overrides: dict, inputs: dict, stage: str) -> dict:
    """The gate, then the forward alone (stage "fwd") or fwd+bwd (stage "bwd"), under `overrides`."""
    with conv_config(**overrides):
        row = {"config": dataclasses.asdict(direct_conv.CONFIG)}
        gate = correctness_gate()
        row["gate_passed"] = gate["passed"]
        if not gate["passed"]:
            row["relative_errors"] = gate["relative_errors"]
            return row
        run = lambda: causal_conv1d_triton(**inputs, activation="silu")  # noqa: E731
        if stage == "fwd":
            with torch.no_grad():
                row["fwd_ms"] = triton.testing.do_bench(run, warmup=10, rep=60, return_mode="median")
        else:
            row["fwd_bwd_ms"], _ = cuda_fwd_bwd(run, list(inputs.values()), warmup=10, rep=80)
    log.info("%s", json.dumps(row))
    return row


def copy_floor(x: torch.Tensor) -> dict:
    """Device-to-device copy bandwidth on x, and the times the conv would take at that rate:
    the forward reads x and writes y, the backward reads x and dy and writes dx."""
    out = torch.empty_like(x)
    copy_ms = triton.testing.do_bench(lambda: out.copy_(x), warmup=10, rep=60, return_mode="median")
    per_tensor_ms = copy_ms / 2  # a copy moves two tensors' bytes
    return {"copy_gb_per_s": 2 * x.numel() * x.element_size() / copy_ms / 1e6,
            "fwd_ms": 2 * per_tensor_ms, "bwd_ms": 3 * per_tensor_ms, "fwd_bwd_ms": 5 * per_tensor_ms}


def sweep(shape: tuple[int, int, int]) -> dict:
    """Every SWEEP_TILES candidate at `shape`, then the default and the fastest config in full."""
    batch, H, L = shape
    inputs = make_inputs(batch, H, L)
    with torch.no_grad():
        floor = copy_floor(inputs["x"])
    fwd_rows = [gated_time(tile_overrides("fwd", tile), inputs, "fwd")
                for tile in SWEEP_TILES["fwd"]]
    rows = [{"stage": "fwd", **r} for r in fwd_rows]
    failed = [r["config"] for r in fwd_rows if not r["gate_passed"]]
    if failed:  # a wrong config is a kernel bug: report it, time nothing more
        return {"shape": list(shape), "sweep": rows, "gates_failed": failed}
    fastest_fwd = min(fwd_rows, key=lambda r: r["fwd_ms"])
    fwd_fields = {k: v for k, v in fastest_fwd["config"].items() if k.startswith("fwd_")}
    bwd_rows = [gated_time({**fwd_fields, **tile_overrides("bwd", tile)}, inputs, "bwd")
                for tile in SWEEP_TILES["bwd"]]
    for r in bwd_rows:  # the backward's share: fwd+bwd less the forward timed alone
        if r["gate_passed"]:
            r["bwd_ms"] = r["fwd_bwd_ms"] - fastest_fwd["fwd_ms"]
    rows += [{"stage": "bwd", **r} for r in bwd_rows]
    failed = [r["config"] for r in bwd_rows if not r["gate_passed"]]
    if failed:
        return {"shape": list(shape), "sweep": rows, "gates_failed": failed}
    fastest = min(bwd_rows, key=lambda r: r["fwd_bwd_ms"])

    def measured(config: dict) -> dict:
        """Forward, fwd+bwd (more repetitions than the sweep) and peak memory under `config`."""
        with conv_config(**config):
            fwd, total, peak = time_conv(causal_conv1d_triton, inputs)
        return {"config": config, "fwd_ms": fwd, "fwd_bwd_ms": total, "peak_gib": peak}

    default = measured(dataclasses.asdict(direct_conv.CONFIG))
    best = measured(fastest["config"])
    ref_fwd, ref_total, ref_peak = time_conv(causal_conv1d_ref, inputs)
    return {
        "shape": list(shape), "target_ms": TARGET_MS, "copy_floor": floor, "sweep": rows,
        "default": default, "best": best,
        "reference_conv1d_silu": {"fwd_ms": ref_fwd, "fwd_bwd_ms": ref_total, "peak_gib": ref_peak},
        "met": min(default["fwd_bwd_ms"], best["fwd_bwd_ms"]) <= TARGET_MS,
        "make_best_the_default": best["fwd_bwd_ms"] < 0.98 * default["fwd_bwd_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--sweep", action="store_true",
                        help="time the SWEEP_TILES launch shapes at --shape instead of the SHAPES table")
    parser.add_argument("--shape", type=int, nargs=3, default=list(TARGET_SHAPE),
                        metavar=("BATCH", "CHANNELS", "LENGTH"), help="the --sweep shape")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if not torch.cuda.is_available():
        log.error("benchmarks/causal_conv1d.py needs a CUDA GPU")
        return 1
    report = {"device": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d"),
              "torch": torch.__version__, "triton": triton.__version__, "width": WIDTH,
              "dtype": "bfloat16", "activation": "silu"}
    report["config"] = dataclasses.asdict(direct_conv.CONFIG)
    gate = correctness_gate()
    report["correctness_gate"] = gate
    if not gate["passed"]:
        print(json.dumps(report, indent=2))
        return 1
    if args.sweep:
        report.update(sweep(tuple(args.shape)))
        emit_report(report, args.out)
        return 1 if "gates_failed" in report else 0
    results = []
    for batch, H, L in SHAPES:
        torch.cuda.empty_cache()
        inputs = make_inputs(batch, H, L)
        fwd, total, peak = time_conv(causal_conv1d_triton, inputs)
        ref_fwd, ref_total, ref_peak = time_conv(causal_conv1d_ref, inputs)
        floor_ms = 2 * 2 * batch * H * L / HBM_BYTES_PER_S * 1e3  # read x, write y (bf16)
        row = {"batch": batch, "channels": H, "length": L,
               "triton": {"fwd_ms": fwd, "fwd_bwd_ms": total, "peak_gib": peak},
               "reference_conv1d_silu": {"fwd_ms": ref_fwd, "fwd_bwd_ms": ref_total, "peak_gib": ref_peak},
               "fwd_speedup": ref_fwd / fwd, "fwd_bwd_speedup": ref_total / total,
               "fwd_share_of_hbm_roofline": floor_ms / fwd}
        log.info("%s", json.dumps(row))
        results.append(row)
        del inputs
    report["results"] = results
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
