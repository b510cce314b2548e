"""benchmarks/distributed.py's scaling table and plot (the GPU runs themselves are benchmarks)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distributed.py"


@pytest.fixture
def benchmark(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return runpy.run_path(str(SCRIPT))


RUNS = [
    {"length": 131072, "devices": 1, "strategy": "auto", "tokens_per_second": 1000.0},
    {"length": 131072, "devices": 2, "strategy": "ddp", "tokens_per_second": 1900.0},
    {"length": 131072, "devices": 4, "strategy": "ddp", "tokens_per_second": 3400.0},
    {"length": 131072, "devices": 4, "strategy": "fsdp", "error": "out of memory"},
    {"task": "score", "devices": 1, "records_per_second": 100.0, "steady_records_per_second": 120.0,
     "same_bytes_as_1": True},
    {"task": "score", "devices": 4, "records_per_second": 200.0, "steady_records_per_second": 420.0,
     "same_bytes_as_1": True},
]


def test_scaling_table_gives_speedup_and_efficiency_against_one_device(benchmark):
    table = benchmark["scaling_table"](RUNS)
    by_key = {(row["task"], row["strategy"], row["devices"]): row for row in table}
    assert by_key[("pretrain", "ddp", 2)]["speedup"] == 1.9
    assert by_key[("pretrain", "ddp", 4)]["efficiency"] == 0.85
    assert ("pretrain", "fsdp", 4) not in by_key  # a failed run has no figure, never a made-up one
    score = by_key[("score", None, 4)]
    assert score["speedup"] == 3.5 and score["efficiency"] == 0.875 and score["speedup_end_to_end"] == 2.0


def test_scaling_plot_is_written(benchmark, tmp_path):
    path = tmp_path / "scaling.png"
    benchmark["plot_scaling"](benchmark["scaling_table"](RUNS), path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
