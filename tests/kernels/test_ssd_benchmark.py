"""benchmarks/ssd.py's arithmetic (FLOP count, HBM floor) and its --set parsing; the GPU timings
themselves are benchmarks, not tests."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ssd.py"


@pytest.fixture
def benchmark(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return runpy.run_path(str(SCRIPT))


def test_flop_count_by_hand(benchmark):
    # batch 1, 2 heads of 4, d_state 8, one group, L = 20 in chunks of 16: two chunks.
    # forward per chunk: C B^T 2*16*16*8 = 4096; per head 2*16*16*4 + 4*16*4*8 = 4096
    # backward per chunk: 4096; per head 4*16*16*4 + 4*16*16*8 + 8*16*4*8 = 16384
    forward, backward = benchmark["chunked_flops"](1, 2, 4, 8, 1, 20, 16)
    assert forward == 2 * (4096 + 2 * 4096)
    assert backward == 2 * (4096 + 2 * 16384)


def test_target_shape_figures(benchmark):
    """(1, 2^20, 8 x 64, d_state 128, bf16) at chunks of 64: the 0.36 TFLOP forward of
    docs/kernels/ssd.md, and 2576 bytes per position to move (x, y: 1024 each; B, C: 256 each;
    dt: 16), 0.56 ms at 4.8 TB/s."""
    forward, _ = benchmark["chunked_flops"](1, 8, 64, 128, 1, 1 << 20, 64)
    assert forward == 16384 * (2 * 64 * 64 * 128 + 8 * (2 * 64 * 64 * 64 + 4 * 64 * 64 * 128))
    assert abs(forward / 0.3608e12 - 1) < 1e-3
    floor = benchmark["forward_hbm_bytes"](1, 8, 64, 128, 1, 1 << 20, 2)
    assert floor == (1 << 20) * 2576
    assert round(floor / benchmark["HBM_BYTES_PER_S"] * 1e3, 3) == 0.563


def test_set_options_are_swept_and_checked(benchmark):
    parse = benchmark["parse_sets"]
    assert parse([]) == [{}]
    assert parse(["chunk_size=32,64", "scan_warps=4"]) == [
        {"chunk_size": 32, "scan_warps": 4}, {"chunk_size": 64, "scan_warps": 4}]
    assert parse(["forward_chunk=none,128"]) == [{"forward_chunk": None}, {"forward_chunk": 128}]
    with pytest.raises(SystemExit, match="expected key=value"):
        parse(["chunk=64"])
    with pytest.raises(SystemExit, match="integers, or none"):
        parse(["scan_warps=eight"])


def test_gate_passes_on_the_triton_path_and_fails_a_broken_one(benchmark):
    """The gate itself, on CPU in the interpreter at a tiny packed case; a Triton path that
    returns the wrong sign must fail it."""
    cases = [dict(batch=1, H=2, P=16, N=16, G=1, L=40, cu_seqlens=(0, 7, 7, 40))]
    result = benchmark["gate"](16, cases=cases, device="cpu")
    assert result["passed"], result
    assert set(result["relative_errors"]) == {
        "case0_y", "case0_final_states", "case0_y_inference", "case0_final_states_inference",
        *(f"case0_d{name}" for name in benchmark["GRADS"])}
    triton_path = benchmark["ssd_triton"]

    def wrong_sign(*args, **kwargs):
        y, final = triton_path(*args, **kwargs)
        return -y, final

    benchmark["gate"].__globals__["ssd_triton"] = wrong_sign
    try:
        assert not benchmark["gate"](16, cases=cases, device="cpu")["passed"]
    finally:
        benchmark["gate"].__globals__["ssd_triton"] = triton_path


def test_kernel_breakdown_sums_device_time_per_kernel_and_iteration(benchmark):
    """Three profiled iterations: a kernel seen under one name twice adds up, host-only ops (no
    device time) drop out, the largest comes first; ms and calls are per iteration."""
    from types import SimpleNamespace

    def event(key, us, count):
        return SimpleNamespace(key=key, self_device_time_total=us, count=count)

    events = [event("_chunk_scan_fwd_kernel", 3000, 3), event("aten::add", 0, 3),
              event("_state_passing_fwd_kernel", 1500, 3), event("_chunk_scan_fwd_kernel", 300, 3)]
    summary = benchmark["summarize_kernel_times"](events, iterations=3)
    assert summary == {"total_ms": 1.6, "kernels": [
        {"name": "_chunk_scan_fwd_kernel", "ms": 1.1, "calls": 2},
        {"name": "_state_passing_fwd_kernel", "ms": 0.5, "calls": 1}]}
    assert benchmark["summarize_kernel_times"](events, iterations=3, top=1)["kernels"][0]["ms"] == 1.1


def test_resources_checks_its_dtype_before_compiling(benchmark):
    with pytest.raises(SystemExit, match="dtype must be one of bf16, fp16, fp32"):
        benchmark["main"](["--resources", "64", "fp64", "64", "128"])
