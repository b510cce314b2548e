"""Time the Triton chunked SSD (Mamba-2) against the PyTorch chunked reference; print JSON.

    python benchmarks/ssd.py --out benchmarks/results/ssd_h200.json
    python benchmarks/ssd.py --shapes target --no-reference --set passing_block=32,64 \
        --set passing_chunks=32,64

Kernel rows: B, heads, head dim, d_state, L, dtype, chunk and forward chunk, forward ms (no
autograd: a forward in chunks of `forward_chunk`), forward + backward ms (the caller's
chunks), peak GiB of a forward + backward (inputs included), the chunked algorithm's FLOP count
at the caller's chunk, TFLOP/s and its share of the bf16 dense tensor-core peak, the forward's
HBM floor and how far above it the forward runs. A correctness gate (outputs, final states and
every gradient against `ssd_chunked` at a real shape, bf16, packed sequences included) runs
before anything is timed; the script exits 1 if it fails. `--set key=value[,value...]`
overrides `SSDConfig` fields (chunk_size, forward_chunk, save_states, warps, passing_block,
passing_chunks; `none` for the optional ones); comma lists are swept (every combination times
every shape; the gate runs for each). Needs CUDA; imports nothing but torch, triton and
genossm.kernels. The previous kernels ran the default shapes in 40 s on an H200, compilation
included; the sweep above (four configurations, target shape) should take about 2 minutes.

`--breakdown` adds, per row, the device time of each kernel in one forward + backward
(torch.profiler): where the time goes, without ncu.

`--resources CHUNK DTYPE P N` needs no GPU: it compiles every kernel for sm_90 and reports
registers, spill stack and shared memory per kernel (docs/kernels/ssd.md's table).

Mamba-2 model rows (tokens/s of training and inference at 2^20) come from
benchmarks/long_context.py, which takes any model config:
    python benchmarks/long_context.py --configs mamba2-1m --lengths 131072 1048576 \\
        --max-reference-length 131072 --out benchmarks/results/long_context_mamba2.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import sys
import time

import torch

from common import cuda_fwd_bwd, device_facts, emit_report, relative_error

from genossm.kernels.ssd import ssd_chunked
from genossm.kernels.ssd import chunk_ssd
from genossm.kernels.ssd.chunk_ssd import SSDConfig, kernel_chunk_size, ssd_config, ssd_triton

BF16_DENSE_TFLOPS = 790.0  # H200 SXM (same SM as the H100 SXM): bf16 dense tensor-core peak
HBM_BYTES_PER_S = 4.8e12  # H200 HBM3e
CHUNK_SIZE = 64  # the model configs' chunk (configs/models/mamba2-1m.yaml)

# name -> (batch, heads, head dim, d_state, groups, L, dtype, time the reference too)
SHAPES = {
    "target": (1, 8, 64, 128, 1, 1 << 20, torch.bfloat16, False),  # issue 17's target
    "64k": (1, 8, 64, 128, 1, 1 << 16, torch.bfloat16, True),
    "batch8_16k": (8, 16, 64, 64, 2, 1 << 14, torch.bfloat16, True),
    "fp16_256k": (1, 8, 64, 128, 1, 1 << 18, torch.float16, False),
}
DEFAULT_SHAPES = ["target", "64k", "batch8_16k"]
# gate: odd length, several chunks and passing tiles, two groups, and a packed batch with an empty
# sequence, against the PyTorch chunked reference
GATE = [dict(batch=1, H=8, P=64, N=128, G=2, L=(1 << 13) + 5, cu_seqlens=None),
        dict(batch=1, H=4, P=64, N=64, G=1, L=5000, cu_seqlens=(0, 1, 1700, 1700, 5000))]
GATE_TOLERANCE = (2e-2, 3e-2)  # bf16 inputs: outputs/states, gradients (relative L2)
GRADS = ("x", "dt", "A", "B", "C", "D", "dt_bias", "initial_states")


def chunked_flops(batch, H, P, N, G, L, Q) -> tuple[float, float]:
    """(forward, backward) FLOPs of the chunked algorithm with chunks of Q, matmuls only.

    Per chunk: C B^T once per group (2 Q^2 N); per head the intra-chunk output (2 Q^2 P), the
    chunk state and the entering state's output (2 Q P N each). The backward, without
    recomputation: C B^T per group; per head CBL^T dy and dy x^T (2 Q^2 P each), W B and W^T C
    (2 Q^2 N each), B g^T, dy h, x g and the adjoint's dy^T C (2 Q P N each). Elementwise work
    (exps, masks) is left out: the roofline is the tensor cores'."""
    chunks = batch * -(-L // Q)
    forward = chunks * (G * 2 * Q * Q * N + H * (2 * Q * Q * P + 4 * Q * P * N))
    backward = chunks * (G * 2 * Q * Q * N + H * (4 * Q * Q * P + 4 * Q * Q * N + 8 * Q * P * N))
    return float(forward), float(backward)


def forward_hbm_bytes(batch, H, P, N, G, L, element_bytes) -> int:
    """Bytes the forward must move at least: x, dt, B, C read once, y written once."""
    return batch * L * (2 * H * P + H + 2 * G * N) * element_bytes


def parse_sets(items: list[str]) -> list[dict]:
    """`["chunk_size=32,64", "forward_chunk=none,128"]` -> every combination as SSDConfig
    overrides (integers, or `none` for the optional fields)."""
    fields = {f.name: f for f in dataclasses.fields(SSDConfig)}
    axes = []
    for item in items:
        key, _, values = item.partition("=")
        try:
            axis = [(key, None if v == "none" else int(v)) for v in values.split(",")]
        except ValueError:
            axis = None
        if key not in fields or not values or axis is None:
            raise SystemExit(f"--set {item!r}: expected key=value[,value...] (integers, or none) "
                             f"with key one of {', '.join(fields)}")
        axes.append(axis)
    return [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]


def make_inputs(batch, H, P, N, G, L, dtype, cu_seqlens=None, seed=0, device="cuda"):
    gen = torch.Generator(device=device).manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0, dt=dtype):
        t = torch.randn(*shape, device=device, generator=gen) * scale + shift
        return t.to(dt).requires_grad_()

    sequences = batch if cu_seqlens is None else len(cu_seqlens) - 1
    tensors = dict(
        x=rand(batch, L, H, P), dt=rand(batch, L, H, scale=0.5, shift=-1.0),
        A=(-torch.rand(H, device=device, generator=gen) * 8 - 1).requires_grad_(),  # -A in [1, 9]
        B=rand(batch, L, G, N, scale=N ** -0.5), C=rand(batch, L, G, N, scale=N ** -0.5),
        D=rand(H, dt=torch.float32), dt_bias=rand(H, scale=0.3, dt=torch.float32),
        initial_states=rand(sequences, H, P, N, dt=torch.float32),
    )
    options = dict(dt_softplus=True, return_final_states=True)
    if cu_seqlens is not None:
        options["cu_seqlens"] = torch.tensor(cu_seqlens, device=device)
    return tensors, options


def outputs_and_grads(fn, tensors, options):
    y, final = fn(**tensors, **options)
    gen = torch.Generator(device=y.device).manual_seed(1)
    loss = (y.float() * torch.randn(y.shape, device=y.device, generator=gen)).sum()
    loss = loss + (final * torch.randn(final.shape, device=y.device, generator=gen)).sum()
    grads = torch.autograd.grad(loss, [tensors[name] for name in GRADS])
    return (y, final), dict(zip(GRADS, grads))


def gate(chunk_size: int, cases=GATE, device="cuda") -> dict:
    """Relative errors of the Triton path against `ssd_chunked`; `passed` False past tolerance."""
    errors = {}
    for index, shape in enumerate(cases):
        tensors, options = make_inputs(shape["batch"], shape["H"], shape["P"], shape["N"], shape["G"],
                                       shape["L"], torch.bfloat16, shape["cu_seqlens"], device=device)
        got, got_grads = outputs_and_grads(
            lambda **kw: ssd_triton(**kw, chunk_size=chunk_size), tensors, options)
        want, want_grads = outputs_and_grads(
            lambda **kw: ssd_chunked(**kw, chunk_size=chunk_size), tensors, options)
        errors[f"case{index}_y"] = relative_error(got[0], want[0])
        errors[f"case{index}_final_states"] = relative_error(got[1], want[1])
        with torch.no_grad():  # no backward to follow: the forward's own chunks (forward_chunk)
            inference = ssd_triton(**tensors, **options, chunk_size=chunk_size)
        errors[f"case{index}_y_inference"] = relative_error(inference[0], want[0])
        errors[f"case{index}_final_states_inference"] = relative_error(inference[1], want[1])
        for name in GRADS:
            errors[f"case{index}_d{name}"] = relative_error(got_grads[name], want_grads[name])
    passed = all(e < (GATE_TOLERANCE[0] if k.endswith(("_y", "_final_states", "_inference"))
                      else GATE_TOLERANCE[1])
                 for k, e in errors.items())
    return {"passed": passed, "tolerance": GATE_TOLERANCE,
            "relative_errors": {k: float(f"{e:.3g}") for k, e in errors.items()}}


def time_forward(fn, warmup: int, rep: int) -> float:
    import triton

    with torch.no_grad():
        return triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median")


def time_reference(fn, repeats: int = 3) -> float:
    """Median ms of a few calls (the reference is slow; do_bench's budget would run it for long)."""
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def summarize_kernel_times(events, iterations: int, top: int = 20) -> dict:
    """Device time per kernel and per iteration, from `prof.key_averages()` entries (`key`: the
    kernel's name, `self_device_time_total` in us, `count`); the `top` largest, and the total."""
    per_name = {}
    for event in events:
        us = getattr(event, "self_device_time_total", None)
        if us is None:  # torch < 2.4
            us = getattr(event, "self_cuda_time_total", 0)
        if us > 0:
            ms, count = per_name.get(event.key, (0.0, 0))
            per_name[event.key] = (ms + us / 1e3, count + event.count)
    ranked = sorted(per_name.items(), key=lambda item: -item[1][0])
    return {"total_ms": round(sum(ms for ms, _ in per_name.values()) / iterations, 3),
            "kernels": [{"name": name, "ms": round(ms / iterations, 3),
                         "calls": count // iterations} for name, (ms, count) in ranked[:top]]}


def kernel_breakdown(forward_y, leaves, iterations: int = 3) -> dict:
    """Where one forward + backward spends its device time, kernel by kernel (torch.profiler,
    CUDA activity only); a diagnostic: a profiler failure is reported, not raised."""
    from torch.profiler import ProfilerActivity, profile

    grad_out = torch.randn_like(forward_y())
    try:
        forward_y().backward(grad_out)  # warm: nothing compiles inside the profile
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(iterations):
                forward_y().backward(grad_out)
            torch.cuda.synchronize()
        return summarize_kernel_times(prof.key_averages(), iterations)
    except Exception as error:  # noqa: BLE001 - a diagnostic must not lose the timings
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        for leaf in leaves:
            leaf.grad = None


def measure(name: str, with_reference: bool, args) -> dict:
    batch, H, P, N, G, L, dtype, reference_too = SHAPES[name]
    Q = kernel_chunk_size(chunk_ssd.CONFIG.chunk_size or CHUNK_SIZE)
    if dtype == torch.float32:
        Q = min(Q, chunk_ssd.CONFIG.fp32_max_chunk)
    tensors, options = make_inputs(batch, H, P, N, G, L, dtype)
    leaves = [t for t in tensors.values()]

    def forward():
        return ssd_triton(**tensors, **options, chunk_size=Q)

    def forward_y():
        return forward()[0]

    forward_ms = time_forward(forward, args.warmup, args.rep)
    fwd_bwd_ms, peak = cuda_fwd_bwd(forward_y, leaves, warmup=args.warmup, rep=args.rep)
    flops_fwd, flops_bwd = chunked_flops(batch, H, P, N, G, L, Q)
    floor_bytes = forward_hbm_bytes(batch, H, P, N, G, L, torch.finfo(dtype).bits // 8)
    floor_ms = floor_bytes / HBM_BYTES_PER_S * 1e3
    tflops_fwd_bwd = (flops_fwd + flops_bwd) / (fwd_bwd_ms * 1e-3) / 1e12
    row = {
        "shape": name, "batch": batch, "heads": H, "head_dim": P, "d_state": N, "groups": G,
        "length": L, "dtype": str(dtype).removeprefix("torch."), "chunk_size": Q,
        "forward_chunk": max(Q, kernel_chunk_size(chunk_ssd.CONFIG.forward_chunk or Q)),
        "config": dataclasses.asdict(chunk_ssd.CONFIG),
        "fwd_ms": round(forward_ms, 3), "fwd_bwd_ms": round(fwd_bwd_ms, 3), "peak_gib": round(peak, 3),
        "flops_fwd": flops_fwd, "flops_fwd_bwd": flops_fwd + flops_bwd,
        "tflops_fwd": round(flops_fwd / (forward_ms * 1e-3) / 1e12, 1),
        "tflops_fwd_bwd": round(tflops_fwd_bwd, 1),
        "share_of_bf16_dense_peak_fwd_bwd": round(tflops_fwd_bwd / BF16_DENSE_TFLOPS, 4),
        "fwd_hbm_floor_bytes": floor_bytes, "fwd_hbm_floor_ms": round(floor_ms, 3),
        "fwd_over_hbm_floor": round(forward_ms / floor_ms, 2),
    }
    if with_reference and reference_too:
        def reference():
            return ssd_chunked(**tensors, **options, chunk_size=Q)

        with torch.no_grad():
            ref_fwd = time_reference(reference)

        def reference_fwd_bwd():
            y, _ = reference()
            y.float().sum().backward()

        torch.cuda.reset_peak_memory_stats()
        ref_fwd_bwd = time_reference(reference_fwd_bwd)
        row["reference"] = {"fwd_ms": round(ref_fwd, 3), "fwd_bwd_ms": round(ref_fwd_bwd, 3),
                            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3)}
        row["speedup_fwd"] = round(ref_fwd / forward_ms, 2)
        row["speedup_fwd_bwd"] = round(ref_fwd_bwd / fwd_bwd_ms, 2)
    if args.breakdown:
        row["kernel_breakdown_fwd_bwd"] = kernel_breakdown(forward_y, leaves)
    for leaf in leaves:
        leaf.grad = None
    return row


def compile_resources(Q: int, dtype: torch.dtype, P: int, N: int) -> list[dict]:
    """Compile every kernel for sm_90 without a GPU and read registers, spill stack and shared
    memory per kernel from the cubin (`cuobjdump --dump-resource-usage`, shipped with triton).
    Unit inner strides (contiguous inputs), the current SSDConfig's warps."""
    import os
    import re
    import subprocess
    import tempfile

    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from genossm.kernels.ssd import chunk_ssd_kernels as K

    config = chunk_ssd.CONFIG
    element = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}[dtype]
    inputs = {f"{name}_ptr": "*" + element
              for name in ("x", "dt", "a", "b", "B", "C", "dy", "y", "dx", "ddt", "dB", "dC")}
    state = "*" + (element if dtype != torch.float32 else "fp32")  # the per-chunk state buffers
    inputs.update(chunk_start_ptr="*i64", chunk_len_ptr="*i32", chunk_first_ptr="*i32",
                  chunk_last_ptr="*i32", chunk_seq_ptr="*i32", states_ptr=state, adjoints_ptr=state)
    unit_strides = ("sx_p", "sdt_h", "sa_p", "sb_n", "sB_n", "sC_n", "sy_p", "sdy_p", "sdx_p",
                    "sddt_h", "sdB_n", "sdC_n")
    tiles = dict(Q=Q, BLOCK_P=max(16, triton.next_power_of_2(P)), BLOCK_N=max(16, triton.next_power_of_2(N)),
                 DOT_PRECISION="tf32x3" if dtype == torch.float32 else "tf32",
                 DOT_DTYPE={"bf16": tl.bfloat16, "fp16": tl.float16, "fp32": tl.float32}[element])
    flags = dict(HAS_BIAS=True, SOFTPLUS=True, **tiles)
    # the forward's chunks, read in tiles of the backward's (ssd_triton's rule)
    forward_Q = max(Q, kernel_chunk_size(config.forward_chunk or Q))
    forward = dict(flags, Q=forward_Q, SUB=Q)
    passing = dict(VARLEN=False, CHUNKS=config.passing_chunks, BLOCK=config.passing_block,
                   DOT_PRECISION=tiles["DOT_PRECISION"], DOT_DTYPE=tiles["DOT_DTYPE"])
    kernels = [
        (f"chunk_state (forward, chunk {forward_Q})", K._chunk_state_kernel,
         dict(ADJOINT=False, **forward), config.state_warps),
        ("chunk_state (backward)", K._chunk_state_kernel, dict(ADJOINT=False, SUB=Q, **flags),
         config.state_warps),
        ("chunk_state (adjoint)", K._chunk_state_kernel, dict(ADJOINT=True, SUB=Q, **flags),
         config.state_warps),
        ("state_passing_fwd", K._state_passing_fwd_kernel,
         dict(HAS_INIT=True, STORE_FINAL=True, **passing), config.passing_warps),
        ("adjoint_passing", K._adjoint_passing_kernel,
         dict(HAS_DFINAL=True, STORE_DINIT=True, **passing), config.passing_warps),
        (f"chunk_scan_fwd (chunk {forward_Q})", K._chunk_scan_fwd_kernel,
         dict(HAS_INIT=True, HAS_D=True, D_PER_P=False, VARLEN=False, **forward),
         config.scan_warps),
        ("chunk_scan_bwd_dx", K._chunk_scan_bwd_dx_kernel,
         dict(HAS_D=True, D_PER_P=False, HAS_DFINAL=True, HAS_INIT=True, VARLEN=False,
              **flags), config.scan_bwd_warps),
        ("chunk_scan_bwd_dC", K._chunk_scan_bwd_dC_kernel,
         dict(HAS_INIT=True, VARLEN=False, **flags), config.scan_bwd_warps),
        ("chunk_scan_bwd_dB", K._chunk_scan_bwd_dB_kernel,
         dict(HAS_D=True, HAS_DFINAL=True, VARLEN=False, **flags), config.scan_bwd_warps),
    ]
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    rows = []
    for name, kernel, constexprs, warps in kernels:
        constexprs = dict(constexprs, **{s: 1 for s in unit_strides if s in kernel.arg_names})
        signature = {arg: ("constexpr" if arg in constexprs
                           else inputs.get(arg, "*fp32") if arg.endswith("_ptr")
                           else "i64" if arg.endswith("_b") else "i32")
                     for arg in kernel.arg_names}
        # what a launch tells the compiler: pointers, and sizes and strides divisible by 16
        # (torch's allocations; the strides of x-like tensors are multiples of P, of B-like ones
        # of N; dt's follow H, 8 at the target, and get no hint). Without these hints the
        # compiler assumes unaligned rows and issues scalar loads where the launched kernels get
        # vector or asynchronous copies (and other register counts).
        multiple_of = dict(P=P, N=N, PN=P * N, **{f"s{t}_": P for t in ("x", "y", "dy", "dx", "a")},
                           **{f"s{t}_": N for t in ("B", "C", "dB", "dC", "b")})
        aligned = [index for index, arg in enumerate(kernel.arg_names)
                   if arg not in constexprs and (
                       arg.endswith("_ptr")
                       or multiple_of.get(arg, multiple_of.get(arg[:arg.find("_") + 1], 1)) % 16 == 0)]
        compiled = triton.compile(ASTSource(kernel, signature, constexprs,
                                            {(index,): [["tt.divisibility", 16]] for index in aligned}),
                                  target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps))
        with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
            cubin.write(compiled.asm["cubin"])
            cubin.flush()
            usage = subprocess.run([cuobjdump, "--dump-resource-usage", cubin.name],
                                   capture_output=True, text=True, check=True).stdout
        found = dict(re.findall(r"(REG|STACK):(\d+)", usage))
        rows.append({"kernel": name, "warps": warps, "registers": int(found["REG"]),
                     "spill_stack_bytes": int(found["STACK"]),
                     "shared_bytes": compiled.metadata.shared})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=DEFAULT_SHAPES,
                        help=f"default: {' '.join(DEFAULT_SHAPES)} (each dtype and d_state "
                             "compiles its own kernels)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE[,VALUE...]",
                        help="override an SSDConfig field (comma lists are swept)")
    parser.add_argument("--no-reference", action="store_true", help="do not time ssd_chunked")
    parser.add_argument("--warmup", type=int, default=25, help="do_bench warm-up budget, ms")
    parser.add_argument("--rep", type=int, default=100, help="do_bench measuring budget, ms")
    parser.add_argument("--resources", nargs=4, metavar=("CHUNK", "DTYPE", "P", "N"),
                        help="no timing, no GPU: compile every kernel for sm_90 at this chunk, "
                             "dtype (bf16, fp16, fp32), head dim and d_state, and report "
                             "registers, spills and shared memory per kernel")
    parser.add_argument("--breakdown", action="store_true",
                        help="also profile one forward + backward per row: device ms per kernel")
    parser.add_argument("--out", help="write the JSON here as well as to stdout")
    args = parser.parse_args(argv)
    configs = parse_sets(args.set)  # checked before CUDA is touched
    if args.resources:
        chunk, dtype_name, P, N = args.resources
        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
        if dtype_name not in dtypes:
            raise SystemExit(f"--resources: dtype must be one of {', '.join(dtypes)}, got {dtype_name!r}")
        report = {"benchmark": "ssd_resources", "target": "sm_90", "triton": __import__("triton").__version__,
                  "chunk_size": int(chunk), "dtype": dtype_name, "head_dim": int(P), "d_state": int(N),
                  "runs": []}
        for overrides in configs:
            with ssd_config(**overrides):
                report["runs"].append({"overrides": overrides, "kernels": compile_resources(
                    int(chunk), dtypes[dtype_name], int(P), int(N))})
        emit_report(report, args.out, indent=1)
        return 0
    if not torch.cuda.is_available():
        print("benchmarks/ssd.py: needs a CUDA GPU (the Triton kernels are timed)", file=sys.stderr)
        return 2

    started = time.perf_counter()
    report = {
        "benchmark": "ssd", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **device_facts(torch.device("cuda")), "triton": __import__("triton").__version__,
        "bf16_dense_tflops": BF16_DENSE_TFLOPS, "hbm_bytes_per_s": HBM_BYTES_PER_S,
        "flops_note": "chunked algorithm, matmuls only, C B^T once per group (chunked_flops)",
        "runs": [],
    }
    failed = False
    for overrides in configs:
        with ssd_config(**overrides):
            run = {"overrides": overrides,
                   "gate": gate(kernel_chunk_size(chunk_ssd.CONFIG.chunk_size or CHUNK_SIZE))}
            print(json.dumps(run), file=sys.stderr, flush=True)
            if not run["gate"]["passed"]:
                failed = True
                report["runs"].append(run)
                continue
            run["rows"] = []
            for name in args.shapes:
                row = measure(name, not args.no_reference, args)
                print(json.dumps(row), file=sys.stderr, flush=True)
                run["rows"].append(row)
                torch.cuda.empty_cache()
            report["runs"].append(run)
    report["seconds"] = round(time.perf_counter() - started, 1)
    emit_report(report, args.out, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
