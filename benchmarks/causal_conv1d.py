"""Time the Triton causal conv1d (W=4, bias, SiLU) against F.conv1d + SiLU; print JSON.

    python benchmarks/causal_conv1d.py [--out results.json]

The baseline is `causal_conv1d_ref` (state-prefixed input, F.conv1d(groups=H), SiLU), the way
a PyTorch model without the causal-conv1d package runs it. A correctness gate (output, final
state and every gradient) runs first; the script exits 1 if it fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import torch
import triton

from common import cuda_fwd_bwd, emit_report, relative_error

from genossm.kernels.causal_conv1d import causal_conv1d_ref
from genossm.kernels.causal_conv1d.direct_conv import causal_conv1d_triton

log = logging.getLogger("genossm.benchmarks.causal_conv1d")

SHAPES = [(8, 1536, 4096), (1, 512, 1 << 20), (1, 1536, 1 << 20)]
WIDTH = 4
HBM_BYTES_PER_S = 2.96e12  # device-to-device copy measured on the H100 (docs/ANCHORS)


def make_inputs(batch, H, L, dtype=torch.bfloat16, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, device="cuda", generator=gen).to(dtype).requires_grad_()

    return dict(x=rand(batch, H, L), weight=rand(H, WIDTH), bias=rand(H))



def correctness_gate() -> dict:
    inputs = make_inputs(4, 256, 4099)
    inputs["initial_state"] = torch.randn(4, 256, WIDTH - 1, device="cuda").to(torch.bfloat16).requires_grad_()
    outs = []
    for conv in (causal_conv1d_triton, causal_conv1d_ref):
        y, final = conv(**inputs, activation="silu", return_final_state=True)
        gen = torch.Generator(device="cuda").manual_seed(1)
        loss = (y.float() * torch.randn(y.shape, device="cuda", generator=gen)).sum() + (
            final.float() * torch.randn(final.shape, device="cuda", generator=gen)).sum()
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if not torch.cuda.is_available():
        log.error("benchmarks/causal_conv1d.py needs a CUDA GPU")
        return 1
    report = {"device": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d"),
              "torch": torch.__version__, "triton": triton.__version__, "width": WIDTH,
              "dtype": "bfloat16", "activation": "silu"}
    gate = correctness_gate()
    report["correctness_gate"] = gate
    if not gate["passed"]:
        print(json.dumps(report, indent=2))
        return 1
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
