"""Time genossm's fftconv fast path against HyenaDNA's torch.fft convolution (the anchor).

For each shape of /work/shared/ANCHORS.md (u bf16 (B, H, L), k fp32 (H, L), D on): a correctness
gate against fp64 torch.fft (forward and every gradient, on a slice of channels: channels are
independent), then fwd ms, fwd+bwd ms and peak GiB for both implementations in the same run, and
the share of the HBM roofline (read u bf16 + read k fp32 + write y bf16 once, at the device-to-
device copy bandwidth measured in this run). Optional sections: a breakdown of the fast path's
passes at one shape, a sweep of the channel-chunk budget, and accuracy per dtype and length.

    python benchmarks/fftconv.py --out results.json [--breakdown] [--profile] [--sweep] [--accuracy] [--quick]

Prints one JSON document (also written to --out); logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time

import torch
import triton

from common import relative_error
from genossm.kernels.fftconv import fft_conv, fftconv_ref
from genossm.kernels.fftconv.fft_conv import fftconv_triton

log = logging.getLogger("genossm.benchmarks.fftconv")

ANCHOR_SHAPES = [(1, 256, 16_384), (1, 256, 131_072), (1, 256, 2**20), (1, 256, 2**22), (8, 768, 16_384)]
GIB = 2**30


def hyena_fftconv(u, k, D):
    """HyenaDNA's fftconv_ref (standalone code): the anchor's formula, verbatim in effect."""
    seqlen = u.shape[-1]
    fft_size = 2 * seqlen
    k_f = torch.fft.rfft(k, n=fft_size) / fft_size
    u_f = torch.fft.rfft(u.to(dtype=k.dtype), n=fft_size)
    y = torch.fft.irfft(u_f * k_f, n=fft_size, norm="forward")[..., :seqlen]
    out = y + u * D.unsqueeze(-1)
    return out.to(dtype=u.dtype)


def genossm_fftconv(u, k, D):
    return fftconv_triton(u, k, D)


def time_ms(fn, warmup=2, repeats=7):
    """Median of `repeats` CUDA-event timings after `warmup` calls (the anchors' method)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def peak_gib(fn):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / GIB


def copy_bandwidth_tbs():
    """Device-to-device copy, bytes read + written, TB/s."""
    source = torch.empty(2 * GIB // 4, device="cuda", dtype=torch.float32).uniform_()
    target = torch.empty_like(source)
    ms = time_ms(lambda: target.copy_(source), warmup=3, repeats=10)
    return 2 * source.numel() * 4 / (ms * 1e-3) / 1e12



def make_inputs(B, H, L, dtype=torch.bfloat16, seed=0):
    generator = torch.Generator(device="cuda").manual_seed(seed)
    u = torch.randn(B, H, L, device="cuda", generator=generator).to(dtype)
    # A decaying filter like Hyena's implicit ones keeps outputs O(1) at every length.
    decay = torch.exp(-torch.arange(L, device="cuda") / (L / 8))
    k = torch.randn(H, L, device="cuda", generator=generator) * decay / L**0.5
    D = torch.randn(H, device="cuda", generator=generator)
    return u, k, D


def correctness_gate(fn, B, H, L, channels=4):
    """Errors of fn's output and gradients vs fp64 torch.fft on the first `channels` channels."""
    u, k, D = make_inputs(B, H, L, seed=1)
    leaves = [t.detach().requires_grad_(True) for t in (u, k, D)]
    y = fn(*leaves)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, leaves, dy)
    c = min(channels, H)
    ref_leaves = [
        leaves[0][:, :c].detach().double().requires_grad_(True),
        leaves[1][:c].detach().double().requires_grad_(True),
        leaves[2][:c].detach().double().requires_grad_(True),
    ]
    y_ref = fftconv_ref(*ref_leaves)
    grads_ref = torch.autograd.grad(y_ref, ref_leaves, dy[:, :c].double())
    errors = {
        "y": relative_error(y[:, :c], y_ref),
        "du": relative_error(grads[0][:, :c], grads_ref[0]),
        "dk": relative_error(grads[1][:c], grads_ref[1]),
        "dD": relative_error(grads[2][:c], grads_ref[2]),
    }
    del y, dy, grads, leaves
    return errors


def measure(fn, B, H, L):
    """fwd ms, fwd+bwd ms and peaks, or the out-of-memory note."""
    u, k, D = make_inputs(B, H, L)
    result = {}
    try:
        with torch.no_grad():
            result["fwd_ms"] = time_ms(lambda: fn(u, k, D))
            result["fwd_peak_gib"] = peak_gib(lambda: fn(u, k, D))
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"error": "out of memory (forward)"}
    leaves = [t.detach().requires_grad_(True) for t in (u, k, D)]
    dy = torch.randn_like(u)

    def forward_backward():
        y = fn(*leaves)
        torch.autograd.grad(y, leaves, dy)

    try:
        result["fwd_bwd_ms"] = time_ms(forward_backward)
        result["fwd_bwd_peak_gib"] = peak_gib(forward_backward)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        result["fwd_bwd_error"] = "out of memory (forward+backward)"
    return result


def roofline_ms(B, H, L, bandwidth_tbs):
    bytes_moved = B * H * L * 2 + H * L * 4 + B * H * L * 2  # u bf16 in, k fp32 in, y bf16 out
    return bytes_moved / (bandwidth_tbs * 1e12) * 1e3


def breakdown(B, H, L):
    """Each pass of the fast path's forward at one shape, on one channel chunk, in ms."""
    from genossm.kernels.fftconv.reference import fast_fft_size
    from genossm.kernels.fftconv.fft_conv_kernels import (
        finish_forward_kernel,
        spectrum_product_kernel,
    )

    tf = fft_conv
    u, k, D = make_inputs(B, H, L)
    n = 2 * fast_fft_size(L)
    M = n // 2
    chunks = list(tf._channel_chunks(B, H, n, torch.float32))
    h0, hc = chunks[0]
    filter_rows = tf._PaddedRows(hc, n, u, torch.float32)
    input_rows = tf._PaddedRows(B * hc, n, u, torch.float32)
    padded_filter = filter_rows.fill(k, None, 1, h0, hc)  # first fill writes the zero tails
    padded = input_rows.fill(u, None, B, h0, hc)
    filter_spectrum = tf._packed_fft(padded_filter)
    spectrum = tf._packed_fft(padded)
    y = torch.empty_like(u)
    circular = tf._packed_inverse(spectrum)
    eblock = tf._ELEMENTWISE_BLOCK

    def product():
        # Idempotence does not matter for timing; the buffers stay finite (unit-scale data).
        spectrum_product_kernel[tf._product_grid(hc, M)](
            torch.view_as_real(spectrum), torch.view_as_real(filter_spectrum), B, hc, M, n,
            BLOCK=tf._SPECTRUM_BLOCK,
        )  # fmt: skip

    passes = {
        "gate_pad filter (k fp32, tails already zero)": lambda: filter_rows.fill(k, None, 1, h0, hc),
        "cuFFT C2C of packed filter": lambda: tf._packed_fft(padded_filter),
        "gate_pad input (u bf16 -> fp32, tails already zero)": lambda: input_rows.fill(u, None, B, h0, hc),
        "cuFFT C2C of packed input": lambda: tf._packed_fft(padded),
        "spectrum_product (unpack, multiply, repack)": product,
        "cuFFT inverse C2C (norm=forward)": lambda: tf._packed_inverse(spectrum),
        "finish_forward (crop, skip, cast)": lambda: finish_forward_kernel[
            (B * hc, triton.cdiv(L, eblock))
        ](circular, u, u, D, u, y, y, hc, h0, H, L, n, HAS_PREGATE=False, HAS_D=True,
          HAS_POSTGATE=False, BLOCK=eblock),  # fmt: skip
    }
    timings = {name: time_ms(fn, warmup=3, repeats=10) for name, fn in passes.items()}
    return {"shape": [B, H, L], "n_fft": n, "chunks": len(chunks), "chunk_channels": hc,
            "per_chunk_ms": timings, "sum_over_chunks_ms": len(chunks) * sum(timings.values())}  # fmt: skip


def kernel_profile(B, H, L):
    """CUDA kernels of one forward and one forward+backward: name -> (launches, total ms).

    Shows how many passes cuFFT makes per transform and where the time goes.
    """
    from torch.profiler import ProfilerActivity, profile

    u, k, D = make_inputs(B, H, L)
    leaves = [t.detach().requires_grad_(True) for t in (u, k, D)]
    dy = torch.randn_like(u)
    result = {}
    for label, fn in (
        ("forward", lambda: fftconv_triton(u, k, D)),
        ("forward_backward", lambda: torch.autograd.grad(fftconv_triton(*leaves), leaves, dy)),
    ):
        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        kernels = {}
        for event in prof.key_averages():
            cuda_us = getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0)
            if cuda_us > 0 and event.count > 0:
                kernels[event.key[:90]] = {"launches": event.count, "ms": round(cuda_us / 1e3, 3)}
        result[label] = dict(sorted(kernels.items(), key=lambda item: -item[1]["ms"]))
    return {"shape": [B, H, L], **result}


def chunk_budget_sweep(B, H, L, budgets_gib=(0.25, 0.5, 1, 2)):
    original = fft_conv.CHUNK_BUDGET_BYTES
    u, k, D = make_inputs(B, H, L)
    rows = []
    try:
        for budget in budgets_gib:
            fft_conv.CHUNK_BUDGET_BYTES = int(budget * GIB)
            with torch.no_grad():
                rows.append({"budget_gib": budget, "fwd_ms": time_ms(lambda: fftconv_triton(u, k, D)),
                             "fwd_peak_gib": peak_gib(lambda: fftconv_triton(u, k, D))})  # fmt: skip
    finally:
        fft_conv.CHUNK_BUDGET_BYTES = original
    return rows


def accuracy_table(lengths=(2**10, 2**14, 2**17, 2**20, 2**22)):
    """Relative L2 errors vs fp64 torch.fft per input dtype and length (B=1, H=2)."""
    rows = []
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for L in lengths:
            u, k, D = make_inputs(1, 2, L, dtype=dtype, seed=L)
            gates = [torch.rand(1, 2, L, device="cuda").to(dtype) + 0.5 for _ in range(2)]
            leaves = [t.detach().requires_grad_(True) for t in (u, k, D, *gates)]
            y = fftconv_triton(*leaves)
            dy = torch.randn_like(y)
            grads = torch.autograd.grad(y, leaves, dy)
            ref_leaves = [t.detach().double().requires_grad_(True) for t in leaves]
            y_ref = fftconv_ref(*ref_leaves)
            grads_ref = torch.autograd.grad(y_ref, ref_leaves, dy.double())
            names = ("du", "dk", "dD", "dpregate", "dpostgate")
            row = {"dtype": str(dtype).replace("torch.", ""), "L": L, "y": relative_error(y, y_ref)}
            row.update({name: relative_error(g, r) for name, g, r in zip(names, grads, grads_ref)})
            rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--breakdown", action="store_true", help="time each pass at (1,256,2^20)")
    parser.add_argument("--profile", action="store_true", help="CUDA kernels per pass (torch.profiler)")
    parser.add_argument("--sweep", action="store_true", help="sweep the channel-chunk budget")
    parser.add_argument("--accuracy", action="store_true", help="errors per dtype and length")
    parser.add_argument("--quick", action="store_true", help="only the first two shapes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device")

    bandwidth = copy_bandwidth_tbs()
    report = {
        "device": torch.cuda.get_device_name(),
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "copy_bandwidth_tbs": bandwidth,
        "inputs": "u bf16 (B, H, L), k fp32 (H, L) decaying random, D fp32 (H,)",
        "timing": "median of 7 CUDA-event timings after 2 warm-ups; peaks include the inputs",
        "shapes": [],
    }
    for B, H, L in ANCHOR_SHAPES[:2] if args.quick else ANCHOR_SHAPES:
        log.info("shape (%d, %d, %d)", B, H, L)
        gate = correctness_gate(genossm_fftconv, B, H, L)
        if max(gate.values()) > 2e-2:
            raise SystemExit(f"correctness gate failed at {(B, H, L)}: {gate}")
        row = {"shape": [B, H, L], "gate_errors_vs_fp64": gate, "roofline_ms": roofline_ms(B, H, L, bandwidth)}
        row["genossm"] = measure(genossm_fftconv, B, H, L)
        torch.cuda.empty_cache()
        row["torch_fft"] = measure(hyena_fftconv, B, H, L)
        torch.cuda.empty_cache()
        for name in ("genossm", "torch_fft"):
            if "fwd_ms" in row[name]:
                row[name]["roofline_share_fwd"] = row["roofline_ms"] / row[name]["fwd_ms"]
        if "fwd_ms" in row["torch_fft"]:
            row["speedup_fwd"] = row["torch_fft"]["fwd_ms"] / row["genossm"]["fwd_ms"]
            if "fwd_bwd_ms" in row["torch_fft"]:
                row["speedup_fwd_bwd"] = row["torch_fft"]["fwd_bwd_ms"] / row["genossm"]["fwd_bwd_ms"]
        log.info("%s", json.dumps(row))
        report["shapes"].append(row)
    if args.breakdown:
        report["breakdown"] = [breakdown(*shape) for shape in ((1, 256, 2**20), (8, 768, 2**14), (1, 256, 2**22))]
        log.info("%s", json.dumps(report["breakdown"]))
    if args.profile:
        report["kernel_profile"] = [kernel_profile(*shape) for shape in ((1, 256, 2**20), (8, 768, 2**14), (1, 256, 2**22))]
    if args.sweep:
        report["chunk_budget_sweep_1x256x2^20"] = chunk_budget_sweep(1, 256, 2**20)
    if args.accuracy:
        report["accuracy_vs_fp64"] = accuracy_table()
    text = json.dumps(report, indent=1)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
