"""benchmarks/family_comparison.py end to end on the CPU at a tiny scale: three families trained on
stand-in genomes for the same few seconds each (1-layer models of 32 channels, 64-base windows,
PyTorch reference kernels), one row each with finite held-out bits per base on the same test
windows; bad options fail before anything trains."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pysam
import pytest

from genossm.models.config import ModelConfig
from genossm.models.lm import build_model
from genossm.resources import RESOURCES

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "family_comparison.py"
BUDGET = 4  # training seconds per family
TINY = ["model_overrides.d_model=32", "model_overrides.n_layers=1", "data.window_length=64",
        "data.batch_size=8", "data.num_workers=0", "data.val_windows=32", "data.test_windows=32",
        "data.eval_batch_size=32"]


def stand_in_manifest(directory: Path) -> Path:
    """A species-split manifest over copies of the bundled sample genome (bgzip) and the lambda
    fixture, indexed here (a fresh clone has no .fai/.gzi: git ignores them)."""
    directory.mkdir()
    sources = {"train": RESOURCES / "sample" / "sample_genome.fa.gz",
               "val": RESOURCES / "sample" / "sample_genome.fa.gz",
               "test": REPO / "tests" / "fixtures" / "lambda_virus.fa"}
    rows = ["name\tspecies\tsplit\tfasta\tsource"]
    for name, split in (("A", "train"), ("B", "train"), ("C", "val"), ("D", "test")):
        fasta = directory / f"{name}{''.join(sources[split].suffixes)}"
        shutil.copy2(sources[split], fasta)
        pysam.faidx(str(fasta))
        rows.append(f"{name}\tstand-in {split}\t{split}\t{fasta.name}\tgenossm fixture")
    manifest = directory / "manifest-species.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "GENOSSM_KERNELS": "reference"})


def test_three_families_train_for_the_same_budget_and_report_held_out_bits(tmp_path):
    manifest = stand_in_manifest(tmp_path / "genomes")
    out = tmp_path / "out"
    done = run(str(out), "--train-seconds", str(BUDGET), "--probe-seconds", "1", "--schedule-share", "0.3",
               "--manifest", str(manifest), *(item for override in TINY for item in ("--set", override)))
    assert done.returncode == 0, done.stderr

    report = json.loads((out / "family_comparison.json").read_text())
    assert report["complete"] and report["device_name"] == "cpu" and report["kernels"] == "reference"
    assert report["train_seconds_per_family"] == BUDGET and report["shared_overrides"] == TINY
    assert report["command"].startswith("python benchmarks/family_comparison.py ")
    assert report["genomes"] == {"train": ["A.fa.gz", "B.fa.gz"], "val": ["C.fa.gz"], "test": ["D.fa"]}
    rows = report["rows"]
    assert [row["family"] for row in rows] == ["mamba2", "mamba", "hyena"]
    for row in rows:
        config = row["model_config"]
        assert config["arch"] == row["family"] and config["objective"] == "causal"
        assert (config["d_model"], config["n_layers"]) == (32, 1)
        built = sum(p.numel() for p in build_model(ModelConfig.from_dict(config)).parameters())
        assert row["parameters"] == row["parameters_trained"] == built > 0
        assert 1 <= row["steps"] <= row["planned_steps"]
        assert row["stopped_by_time"] == (row["steps"] < row["planned_steps"])
        assert row["tokens_seen"] == row["steps"] * 8 * 64 and row["tokens_per_second"] > 0
        for split in ("val", "test"):
            bits = row[f"{split}_bits_per_base"]
            assert math.isfinite(bits) and 0 < bits < 3, (row["family"], split, bits)
        assert json.loads((out / row["family"] / "metrics.json").read_text())["steps"] == row["steps"]
        assert (out / row["family"] / "probe.json").is_file() and (out / row["family"] / "pretrain.log").is_file()
    assert len({row["test_bases"] for row in rows}) == 1 and rows[0]["test_bases"] > 0  # the same test windows

    table = (out / "family_comparison.md").read_text()
    assert done.stdout == table and len(table.splitlines()) == 2 + 3
    assert table.splitlines()[2].startswith("| mamba2 | tiny-mamba2 | ")


@pytest.mark.parametrize("args, code, message", [
    (["--train-seconds", "0"], 2, "--train-seconds must be a positive number of seconds, found 0"),
    (["--train-seconds", "5", "--families", "mamba,s4"], 2, "expected distinct names among mamba2, mamba, hyena"),
    (["--train-seconds", "5", "--manifest", "missing.tsv"], 1, "missing.tsv missing; run scripts/fetch_genomes.sh"),
], ids=["budget-zero", "unknown-family", "missing-manifest"])
def test_bad_options_fail_before_any_work(tmp_path, args, code, message):
    done = run(str(tmp_path / "out"), *args)
    assert done.returncode == code and message in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_override_that_changes_a_family_fails_before_training(tmp_path):
    manifest = stand_in_manifest(tmp_path / "genomes")
    done = run(str(tmp_path / "out"), "--train-seconds", "5", "--manifest", str(manifest), "--set", "model=tiny")
    assert done.returncode == 2 and "mamba2: --set gives a model of arch 'hyena'" in done.stderr
    assert not (tmp_path / "out").exists()
