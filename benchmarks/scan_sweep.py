"""Time selective-scan training launch shapes side by side, each checked for correctness first.

    python benchmarks/scan_sweep.py --length 262144 \
        --config bwd_block_c=64,bwd_warps=4 --config bwd_block_c=32,bwd_warps=1 [--out sweep.json]

Each `--config` is a comma-separated list of `ScanConfig` overrides (integers, words such as
`bwd_kernel=seq`, `none` for None).
For every config: the forward and every gradient at (2, 64, 16, 4099, bf16) against the PyTorch
chunked reference (relative errors, must stay under 2e-2), then at (batch, channels, 16, length,
bf16) the training forward (grad on) and fwd+bwd medians, and the peak memory of one fwd+bwd.
The configs run in one process on one GPU, so their ratios are the figures to read.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import torch

from common import cuda_fwd_bwd, emit_report, relative_error
from selective_scan import bench, make_inputs

from genossm.kernels.selective_scan import selective_scan_chunked
from genossm.kernels.selective_scan.chunk_scan import scan_config, selective_scan_triton

log = logging.getLogger("genossm.benchmarks.scan_sweep")


def parse_config(text: str) -> dict:
    config = {}
    for item in filter(None, text.split(",")):
        field, _, value = item.partition("=")
        value = value.strip()
        if value.lower() == "none":
            config[field.strip()] = None
        else:  # integers, or a word such as bwd_kernel=seq
            config[field.strip()] = int(value) if value.lstrip("-").isdigit() else value
    return config


def gradient_errors(config: dict) -> dict:
    """Relative errors of y and every gradient against the chunked reference under `config`."""
    inputs = make_inputs(2, 64, 16, 4099, torch.bfloat16)
    results = []
    for scan in (selective_scan_triton, selective_scan_chunked):
        with scan_config(**config):
            y = scan(**inputs, delta_softplus=True)
            weights = torch.randn(y.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(1))
            grads = torch.autograd.grad((y.float() * weights).sum(), list(inputs.values()))
        results.append((y, grads))
    (y, grads), (y_ref, grads_ref) = results
    errors = {"y": relative_error(y, y_ref)}
    for name, g, g_ref in zip(inputs, grads, grads_ref):
        errors["d" + name] = relative_error(g, g_ref)
    return errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", default=[], help="k=v,k=v ScanConfig overrides")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--length", type=int, default=1 << 18)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if not torch.cuda.is_available():
        log.error("benchmarks/scan_sweep.py needs a CUDA GPU")
        return 1
    configs = [parse_config(text) for text in args.config] or [{}]
    shape = [args.batch, args.channels, 16, args.length]
    inputs = make_inputs(*shape, getattr(torch, args.dtype))
    leaves = [t for t in inputs.values() if t is not None]
    rows = []
    for config in configs:
        row = {"config": config}
        try:
            row["relative_errors"] = gradient_errors(config)
            row["correct"] = all(err < 2e-2 for err in row["relative_errors"].values())
            with scan_config(**config):
                run = lambda: selective_scan_triton(**inputs, delta_softplus=True)  # noqa: E731
                row["train_fwd_ms"] = bench(run, 100)
                row["fwd_bwd_ms"], row["peak_gib"] = cuda_fwd_bwd(run, leaves, warmup=10, rep=100)
        except Exception as error:  # a shape the compiler rejects is reported, not fatal
            row["error"] = repr(error)[:400]
        log.info("%s", json.dumps(row))
        rows.append(row)
    emit_report({"shape": shape, "dtype": args.dtype, "device": torch.cuda.get_device_name(),
                 "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
