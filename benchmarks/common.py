"""What every benchmark script shares: CPU timing, machine facts, and writing the JSON report.

Scripts run as `python benchmarks/NAME.py`, which puts this folder on sys.path, so they import it
as `common`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path


def best_seconds(function, repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time of this process over `repeats` calls of `function()`.
    On a shared machine the CPU time is the steadier figure: other processes stretch the wall
    clock, not the work done."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def relative_error(actual, expected) -> float:
    """Relative L2 error in float64; inf when `actual` holds a NaN or inf (a gate must fail)."""
    actual, expected = actual.double(), expected.double()
    if not bool(actual.isfinite().all()):
        return float("inf")
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-30)).item()


def machine_info() -> dict:
    """CPU model and count, torch and numpy versions, torch threads, platform."""
    import numpy as np
    import torch

    cpu_model = platform.processor() or "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {"cpu_count": os.cpu_count(), "cpu_model": cpu_model, "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__}


def device_facts(device) -> dict:
    """The device a GPU/CPU benchmark ran on: its name, CPU count, torch threads and version."""
    import torch

    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    return {"device": str(device), "device_name": name, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def cuda_fwd_bwd(run, leaves: list, *, warmup: int, rep: int) -> tuple[float, float]:
    """(median ms of `run().backward(g)`, peak GiB of one such call, inputs included) on CUDA.

    One untimed call first: its gradients are cleared before the peak is taken, or the warm-up's
    .grad tensors would count twice."""
    import torch
    import triton

    grad_out = torch.randn_like(run())

    def fwd_bwd():
        run().backward(grad_out)

    fwd_bwd()
    for leaf in leaves:
        leaf.grad = None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fwd_bwd()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30
    total = triton.testing.do_bench(fwd_bwd, warmup=warmup, rep=rep, grad_to_none=leaves,
                                    return_mode="median")
    return total, peak


def emit_report(report: dict, out: str | os.PathLike | None, indent: int = 2) -> None:
    """Print the report as JSON on stdout and, with `out`, write the same text to that file."""
    text = json.dumps(report, indent=indent)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
