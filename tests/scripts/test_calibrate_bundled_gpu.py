"""scripts/calibrate_bundled_gpu.sh end to end on the CPU at a tiny scale: `prepare` copies the
bundled model's training genomes with their indexes; a run calibrates a copy of the model (never
the model itself) from exactly the genomes its config.json records and leaves its calibration.json
and config.json in $OUT, and --max-seconds fails loudly, leaving only the log. The runs use a tiny
model carrying the bundled model's training record (the bundled model itself scores a few
variants/s on this CPU, too slow for a test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pysam
import torch

from genossm.infer.calibration import load_calibration
from genossm.models.checkpoint import save_model
from genossm.models.config import ModelConfig
from genossm.models.lm import build_model
from genossm.resources import RESOURCES

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "calibrate_bundled_gpu.sh"
BUNDLED = RESOURCES / "model"
SAMPLE = RESOURCES / "sample" / "sample_genome.fa.gz"


def training_names() -> list[str]:
    recipe = json.loads((BUNDLED / "config.json").read_text())["training"]["training"]["recipe"]
    return [Path(path).name for path in recipe["data"]["fasta"]]


def stand_in_genomes(directory: Path) -> Path:
    """The 11 training genomes' file names, each the bundled sample genome (bgzip), indexed here
    (.fai/.gzi: a fresh clone has no index beside the sample, git ignores them)."""
    directory.mkdir()
    for name in training_names():
        shutil.copy2(SAMPLE, directory / name)
        pysam.faidx(str(directory / name))
    return directory


def tiny_model_with_the_bundled_training_record(directory: Path) -> Path:
    """A 1-layer Hyena whose config.json records the bundled model's training genomes, window 96."""
    torch.manual_seed(0)
    save_model(build_model(ModelConfig(arch="hyena", d_model=16, n_layers=1, max_length=128)).eval(), directory)
    config = json.loads((directory / "config.json").read_text())
    config["training"] = {**json.loads((BUNDLED / "config.json").read_text())["training"], "window": 96}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, **env})


def test_prepare_copies_the_training_genomes_with_their_indexes(tmp_path):
    source = stand_in_genomes(tmp_path / "genomes")
    done = run({"SOURCE_DIR": str(source), "GENOMES_DIR": str(tmp_path / "calib")}, "prepare")
    assert done.returncode == 0, done.stderr
    names = training_names()
    assert len(names) == 11 and "DH1.fa.gz" in names
    assert sorted(p.name for p in (tmp_path / "calib").iterdir()) == sorted(
        f"{name}{suffix}" for name in names for suffix in ("", ".fai", ".gzi"))
    (source / f"{names[0]}.gzi").unlink()
    done = run({"SOURCE_DIR": str(source), "GENOMES_DIR": str(tmp_path / "calib2")}, "prepare")
    assert done.returncode == 1 and "run scripts/fetch_genomes.sh" in done.stderr


def test_calibrates_a_copy_of_the_model_on_its_training_genomes(tmp_path):
    genomes = stand_in_genomes(tmp_path / "genomes")
    model = tiny_model_with_the_bundled_training_record(tmp_path / "tiny")
    model_before = {p.name: p.read_bytes() for p in model.iterdir()}
    out = tmp_path / "out"
    env = {"OUT": str(out), "GENOMES_DIR": str(genomes), "MODEL": str(model), "DEVICE": "cpu", "SNVS": "100",
           "INDELS": "12", "BATCH": "16", "MAX_SECONDS": "900"}
    done = run(env)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in model.iterdir()} == model_before  # the model itself is untouched
    assert sorted(p.name for p in out.iterdir()) == [
        "calibrate.log", "calibration.json", "calibration_build.json", "config.json"]
    build = json.loads((out / "calibration_build.json").read_text())
    assert build["device_name"] == "cpu" and build["snvs"] == 100 and build["indels"] == 12
    assert build["command_seconds"] >= build["score_seconds"] - 1 and build["variants_per_second"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["calibration"]["snvs"] == 100 and config["calibration"]["window"] == 96
    assert config["weights"] == json.loads(model_before["config.json"])["weights"]  # same weights recorded
    calibration = load_calibration(out, config)
    assert calibration.classes["snv"]["count"] == 100
    assert sorted(name for name in calibration.classes if name != "snv") == sorted(
        f"{kind}:{length}" for kind in ("del", "ins") for length in ("1", "2", "3", "4-6", "7-10", "11-20"))
    assert calibration.source["fasta"] == training_names() and calibration.source["device"] == "cpu"
    assert calibration.source["variants_per_second"] > 0
    log = (out / "calibrate.log").read_text()
    assert "112/112 background variants" in log and "variants/s" in log and "done in" in done.stderr


def test_a_run_past_max_seconds_fails_and_leaves_only_the_log(tmp_path):
    genomes = stand_in_genomes(tmp_path / "genomes")
    model = tiny_model_with_the_bundled_training_record(tmp_path / "tiny")
    shutil.copy(BUNDLED / "calibration.json", model / "calibration.json")  # a calibration the model keeps
    out = tmp_path / "out"
    done = run({"OUT": str(out), "GENOMES_DIR": str(genomes), "MODEL": str(model), "DEVICE": "cpu",
                "SNVS": "100", "INDELS": "0", "MAX_SECONDS": "0.01"})
    assert done.returncode == 1 and "past --max-seconds 0.01" in done.stderr
    assert [p.name for p in out.iterdir()] == ["calibrate.log"]  # nothing smaller than asked for
    assert "nothing was written" in (out / "calibrate.log").read_text() and "done in" not in done.stderr
    assert (model / "calibration.json").read_bytes() == (BUNDLED / "calibration.json").read_bytes()
