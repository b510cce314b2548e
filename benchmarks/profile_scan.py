"""Where one selective-scan training step spends its GPU time, kernel by kernel.

    python benchmarks/profile_scan.py [--batch 1 --channels 512 --state 16 --length 1048576]

Runs one forward + backward of `selective_scan_triton` (z, D, delta_bias, softplus on, one B/C
group) under torch.profiler and prints each CUDA kernel's total time, and the registers and
spills of every Triton kernel the step compiled (from the JIT caches), as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from genossm.kernels.selective_scan import chunk_scan_kernels, recurrent_scan_bwd_kernels, recurrent_scan_kernels
from genossm.kernels.selective_scan.chunk_scan import selective_scan_triton


def compiled_resources() -> list[dict]:
    """Registers and spills of each compiled Triton kernel of the scan modules."""
    rows = []
    for module in (chunk_scan_kernels, recurrent_scan_kernels, recurrent_scan_bwd_kernels):
        for name in dir(module):
            kernel = getattr(module, name)
            caches = getattr(kernel, "device_caches", None)
            if not caches:
                continue
            for cache in caches.values():
                for compiled in cache[0].values():
                    rows.append({"kernel": name, "registers": getattr(compiled, "n_regs", None),
                                 "spills": getattr(compiled, "n_spills", None)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--length", type=int, default=1 << 20)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator(device="cuda").manual_seed(0)
    b, H, N, L = args.batch, args.channels, args.state, args.length

    def rand(*shape, scale=1.0, shift=0.0, dt=dtype):
        t = torch.randn(*shape, device="cuda", generator=gen) * scale + shift
        return t.to(dt).requires_grad_()

    inputs = dict(u=rand(b, H, L), delta=rand(b, H, L, scale=0.5, shift=-1.0),
                  A=(-torch.rand(H, N, device="cuda", generator=gen) - 0.2).requires_grad_(),
                  B=rand(b, 1, N, L), C=rand(b, 1, N, L), D=rand(H), z=rand(b, H, L),
                  delta_bias=rand(H, scale=0.3))
    grad_out = torch.randn(b, H, L, device="cuda", dtype=dtype)

    def step():
        selective_scan_triton(**inputs, delta_softplus=True).backward(grad_out)

    step()  # compile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    kernels = {}
    for event in prof.key_averages():
        if event.device_type.name == "CUDA" or getattr(event, "self_device_time_total", 0) > 0:
            total = getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0)
            if total > 0:
                kernels[event.key] = round(total / 3 / 1000, 3)  # ms per step
    report = {"shape": [b, H, N, L, args.dtype],
              "ms_per_step_by_kernel": dict(sorted(kernels.items(), key=lambda kv: -kv[1])),
              "compiled": compiled_resources()}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
