"""Fine-tuning and prediction across processes and precisions, on the CPU.

- `finetune --devices 2 --strategy ddp` (2 CPU processes, gloo) with 4 examples per rank trains
  the same weights as one process with 8: rank r's batch k is examples 8k + r, 8k + r + 2, ... of
  the one-process batch k (EpochBatches), and DDP averages the two ranks' gradients.
- `finetune --precision bf16-mixed` runs under CPU autocast: the weights move away from the
  32-bit run's by bf16 rounding, not more.
- `predict --devices 2` writes the same bytes as one process.

Lightning's launcher re-runs the command line once per extra rank, so the 2-process runs are
`python -m genossm.cli.main` subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genossm.cli.main import main

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "finetune" / "gene_starts.tsv"
# no dropout (its masks depend on the batch), one epoch of 120 training rows
RECIPE = ["--set", "max_epochs=1", "--set", "dropout=0.0", "--set", "lr=1e-3", "--set", "warmup_steps=1",
          "--set", "accelerator=cpu", "-q"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from genossm.models.checkpoint import save_model
    from genossm.models.config import ModelConfig, load_model_config
    from genossm.models.lm import build_model

    config = load_model_config("tiny").to_dict() | {"d_model": 16, "n_layers": 1, "max_length": 256}
    torch.manual_seed(0)
    return save_model(build_model(ModelConfig.from_dict(config)), tmp_path_factory.mktemp("m") / "tiny")


def two_processes(*arguments: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", GENOSSM_QUIET="1")
    result = subprocess.run([sys.executable, "-m", "genossm.cli.main", *arguments], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return {**load_file(run / "model" / "head.safetensors"), **load_file(run / "model" / "model.safetensors")}


def test_ddp_on_two_cpu_processes_trains_what_one_process_trains(tmp_path, tiny_model):
    common = ["finetune", "--data", str(FIXTURE), "--split-column", "split", "--model", str(tiny_model), *RECIPE]
    two_processes(*common, "--out", str(tmp_path / "ddp"), "--devices", "2", "--strategy", "ddp",
                  "--set", "batch_size=4")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main([*common, "--out", str(tmp_path / "one"), "--set", "batch_size=8"]) == 0
    finally:
        torch.set_num_threads(threads)
    ddp, one = weights(tmp_path / "ddp"), weights(tmp_path / "one")
    start = load_file(tiny_model / "model.safetensors")
    for name in one:
        torch.testing.assert_close(ddp[name], one[name], rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(one[name], start[name]) for name in start)  # it did train
    ddp_metrics, one_metrics = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("ddp", "one"))
    assert ddp_metrics["steps"] == one_metrics["steps"] == 15
    assert ddp_metrics["test"]["examples"] == one_metrics["test"]["examples"] == 40  # each example once
    assert ddp_metrics["test"]["auroc"] == pytest.approx(one_metrics["test"]["auroc"], abs=1e-3)


def test_bf16_mixed_precision_on_cpu(tmp_path, tiny_model):
    common = ["finetune", "--data", str(FIXTURE), "--split-column", "split", "--model", str(tiny_model), *RECIPE,
              "--set", "batch_size=8"]
    assert main([*common, "--out", str(tmp_path / "bf16"), "--precision", "bf16-mixed"]) == 0
    assert main([*common, "--out", str(tmp_path / "fp32"), "--precision", "32-true"]) == 0
    bf16, fp32 = weights(tmp_path / "bf16"), weights(tmp_path / "fp32")
    start = load_file(tiny_model / "model.safetensors")
    moved = max(float((fp32[n] - start[n]).abs().max()) for n in start)
    differ = max(float((bf16[n] - fp32[n]).abs().max()) for n in fp32)
    assert 0 < differ < moved  # autocast changed the numbers, by less than training moved them
    assert json.loads((tmp_path / "bf16" / "metrics.json").read_text())["precision"] == "bf16-mixed"
    assert all(t.dtype == torch.float32 for t in bf16.values())  # master weights stay 32-bit


def test_predict_on_two_processes_writes_the_one_process_bytes(tmp_path, tiny_model):
    run = tmp_path / "run"
    assert main(["finetune", "--data", str(FIXTURE), "--split-column", "split", "--model", str(tiny_model),
                 "--out", str(run), *RECIPE]) == 0
    predict = ["predict", "--model", str(run / "model"), "--regions", str(FIXTURE), "--batch-size", "16",
               "--device", "cpu", "--threads", "1", "-q"]
    two_processes(*predict, "-o", str(tmp_path / "two.tsv"), "--devices", "2")
    assert main([*predict, "-o", str(tmp_path / "one.tsv")]) == 0
    one = (tmp_path / "one.tsv").read_text()
    assert len(one.splitlines()) == 201 and (tmp_path / "two.tsv").read_text() == one
    assert main([*predict, "-o", "-", "--devices", "2"]) == 2  # rank 0 writes a file, not stdout
    assert main([*predict, "-o", str(tmp_path / "x.tsv"), "--devices", "2", "--resume"]) == 2
