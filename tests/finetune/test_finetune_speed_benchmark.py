"""benchmarks/finetune_speed.py (the GPU windows/s script) runs on a CPU with a tiny model, never
imports the genome libraries the GPU machines lack, and projects the CPU target as documented."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "finetune_speed.py"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from genossm.models.checkpoint import save_model
    from genossm.models.config import ModelConfig, load_model_config
    from genossm.models.lm import build_model

    config = load_model_config("tiny").to_dict() | {"d_model": 16, "n_layers": 1, "max_length": 64}
    torch.manual_seed(0)
    return save_model(build_model(ModelConfig.from_dict(config)), tmp_path_factory.mktemp("m") / "tiny")


def test_speed_benchmark_runs_on_cpu_without_genome_libraries(tmp_path, tiny_model):
    out = tmp_path / "speed.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_model), "--windows", "32",
                             "--heldout", "16", "--predict-windows", "24", "--length", "40", "--batch-size", "8",
                             "--modes", "full,frozen", "--profile", str(tmp_path / "step.txt"), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["modes"]) == {"full", "frozen"} and report["predict"]["windows"] == 24
    for row in report["modes"].values():
        assert row["steps"] == 4 and row["train_windows_per_second"] > 0 and row["precision"] == "32-true"
    assert set(report["cpu_projection_10k"]) == {"full", "frozen"}
    assert report["profile"]["backward_seconds"] > 0 and "aten::" in (tmp_path / "step.txt").read_text()
    assert not any(name in sys.modules for name in ("pyfaidx", "Bio"))  # nor in this process


def test_projection_arithmetic(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    projection = runpy.run_path(str(SCRIPT))["projection"]
    # 100 windows/s -> 100 s of training; 30 s outside training for 2 x 150 held-out windows
    # -> 0.1 s per held-out window -> 300 s for 3,000: 400 s = 6.7 min
    # and 0.03 CPU s per training window -> 300 CPU s = 5.0 CPU min
    report = {"heldout": 150, "modes": {"full": {"train_windows_per_second": 100.0, "wall_seconds": 40.0,
                                                 "train_seconds": 10.0, "train_cpu_seconds_per_window": 0.03}}}
    assert projection(report) == {"full": {"minutes": 6.7, "training_cpu_minutes": 5.0}}
