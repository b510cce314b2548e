"""benchmarks/op_census.py: what a training step runs outside the kernels, on tiny models."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from genossm import kernels

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def op_census():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports `common`, as it does when run
    spec = importlib.util.spec_from_file_location("op_census", ROOT / "benchmarks" / "op_census.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(module, capsys, *argv):
    assert module.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_mamba2_counts_the_pytorch_gated_norm_only_when_it_is_not_stubbed(op_census, capsys):
    """With every kernel stubbed the gated norm's dozen elementwise ops are gone; with only the
    SSD and conv stubbed they are counted, so the totals differ by at least their traffic."""
    args = ("--config", "tiny-mamba2", "--layers", "1", "--length", "64", "--scale-to", "64")
    kernels_only = run(op_census, capsys, *args)
    with_norm = run(op_census, capsys, *args, "--stub", "ssd", "causal_conv1d")
    assert kernels_only["stubbed_kernel_calls"] == {"ssd": 1, "causal_conv1d": 1, "gated_rms_norm": 1}
    assert with_norm["stubbed_kernel_calls"] == {"ssd": 1, "causal_conv1d": 1}
    ops = {row["op"] for row in with_norm["rows"]}
    assert {"silu", "pow", "rsqrt"} & ops, ops  # the reference norm's ops
    assert with_norm["total_bytes_scaled"] > kernels_only["total_bytes_scaled"] * 1.5
    # the residual stream's RMSNorm is counted as one fused op each way, as CUDA runs it
    assert {"rms_norm (fused)", "rms_norm_backward (fused)"} <= {row["op"] for row in kernels_only["rows"]}
    # the stubs are taken out again
    assert kernels.ssd.__module__ == "genossm.kernels.ssd"
    assert torch.nn.functional.rms_norm.__module__ == "torch.nn.functional"


def test_scaling_is_linear_in_length(op_census, capsys):
    args = ("--config", "tiny-mamba", "--layers", "1", "--length", "32")
    at_own_length = run(op_census, capsys, *args, "--scale-to", "32", "--top", "1000")
    doubled = run(op_census, capsys, *args, "--scale-to", "64", "--top", "1000")
    assert doubled["stubbed_kernel_calls"] == {"selective_scan": 1, "causal_conv1d": 1}
    assert at_own_length["total_bytes_scaled"] > 0
    assert doubled["total_bytes_scaled"] == pytest.approx(2 * at_own_length["total_bytes_scaled"], rel=1e-6)
