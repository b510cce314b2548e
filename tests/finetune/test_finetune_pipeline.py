"""pipelines/finetune/Snakefile end to end (snakemake --cores 1): fine-tune, predict in pieces,
gather; the gathered file has the bytes of one `genossm predict` over the whole input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genossm.cli.main import main

PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "finetune" / "Snakefile"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "finetune" / "gene_starts.tsv"
BIN = Path(sys.executable).parent  # snakemake and genossm live beside this interpreter


def snakemake(directory: Path, config: dict[str, str]) -> None:
    executable = shutil.which("snakemake", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert executable, "snakemake is not installed: pip install -e '.[pipelines]' in the clone"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", GENOSSM_QUIET="1")
    command = [executable, "-s", str(PIPELINE), "--cores", "1", "--directory", str(directory), "--config",
               *(f"{key}={value}" for key, value in config.items())]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from genossm.models.checkpoint import save_model
    from genossm.models.config import ModelConfig, load_model_config
    from genossm.models.lm import build_model

    config = load_model_config("tiny").to_dict() | {"d_model": 16, "n_layers": 1, "max_length": 256}
    torch.manual_seed(0)
    return save_model(build_model(ModelConfig.from_dict(config)), tmp_path_factory.mktemp("m") / "tiny")


def test_sequence_head_scattered_predictions_equal_one_run(tmp_path, tiny_model):
    snakemake(tmp_path, {"data": FIXTURE, "regions": FIXTURE, "model": tiny_model, "chunks": 3,
                         "finetune_extra": "'--set max_epochs=1 --set batch_size=16'"})
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["examples"] == {"train": 120, "val": 40, "test": 40}
    direct = tmp_path / "direct.tsv"
    assert main(["-q", "predict", "--model", str(tmp_path / "run" / "model"), "--regions", str(FIXTURE),
                 "--threads", "1", "-o", str(direct)]) == 0
    gathered = (tmp_path / "predictions.tsv").read_text()
    assert gathered == direct.read_text() and len(gathered.splitlines()) == 201
    assert not list((tmp_path / "predicted").glob("piece.*"))  # pieces are temporary


def test_per_position_pipeline_with_positions_and_a_genome(tmp_path, tiny_model):
    rng = np.random.default_rng(5)
    contigs = {name: "".join(rng.choice(list("ACGT"), 300)) for name in ("c1", "c2", "c3")}
    genome = tmp_path / "g.fa"
    genome.write_text("".join(f">{n}\n{s}\n" for n, s in contigs.items()))
    sites = tmp_path / "sites.bed"
    sites.write_text("".join(f"{n}\t{i}\t{i + 2}\n" for n in contigs for i in range(10, 290, 37)))
    windows = tmp_path / "windows.bed"
    windows.write_text("".join(f"{n}\t{s}\t{s + 50}\tw{n}{s}\t0\t{'+-'[s // 50 % 2]}\n"
                               for n in contigs for s in range(0, 250, 50)))
    work = tmp_path / "work"
    snakemake(work, {"data": windows, "fasta": genome, "positions": sites, "regions": windows,
                     "split_column": "", "val_chroms": "c2", "test_chroms": "c3", "model": tiny_model,
                     "chunks": 2, "output": "sites.bed",
                     "finetune_extra": "'--set max_epochs=1 --set batch_size=4'",
                     "predict_extra": "'--threshold 0.3'"})
    task = json.loads((work / "run" / "model" / "task.json").read_text())
    assert task["task"]["kind"] == "token" and task["task"]["label_columns"] == ["positions"]
    direct = tmp_path / "direct.bed"
    assert main(["-q", "predict", "--model", str(work / "run" / "model"), "--regions", str(windows), "--fasta",
                 str(genome), "--threads", "1", "--threshold", "0.3", "-o", str(direct)]) == 0
    assert (work / "sites.bed").read_text() == direct.read_text()
    assert (work / "sites.bed").read_text().count("# done ") == 15  # every window, once
