"""The Snakemake workflows run end to end on the bundled sample data (snakemake --cores 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from genossm.cli.main import main
from genossm.resources import RESOURCES
from infer_helpers import save_tiny_model

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
SAMPLE_VCF = RESOURCES / "sample" / "sample.vcf"
SAMPLE_GENOME = RESOURCES / "sample" / "sample_genome.fa.gz"
BIN = Path(sys.executable).parent  # snakemake and genossm live beside this interpreter


def snakemake(workflow: str, directory: Path, config: dict[str, str]) -> None:
    executable = shutil.which("snakemake", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert executable, "snakemake is not installed: pip install -e '.[pipelines]' in the clone"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", GENOSSM_QUIET="1")
    command = [executable, "-s", str(PIPELINES / workflow / "Snakefile"), "--cores", "1", "--directory",
               str(directory), "--config", *(f"{key}={value}" for key, value in config.items())]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


def query(path, fmt: str) -> list[str]:
    return subprocess.run(["bcftools", "query", "-f", fmt, str(path)], capture_output=True, text=True,
                          check=True).stdout.strip().split("\n")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


def test_score_workflow_scatters_and_gathers_in_order(tmp_path, model_dir):
    snakemake("score", tmp_path, {"vcf": SAMPLE_VCF, "fasta": SAMPLE_GENOME, "model": model_dir, "chunks": 3,
                                  "chunk_size": 4})
    gathered = tmp_path / "scored.vcf.gz"
    assert (tmp_path / "scored.vcf.gz.tbi").exists()
    assert query(gathered, "%ID\n") == query(SAMPLE_VCF, "%ID\n")  # every record, input order
    direct = tmp_path / "direct.vcf"
    assert main(["-q", "score", str(SAMPLE_VCF), "--fasta", str(SAMPLE_GENOME), "--model", str(model_dir),
                 "--chunk-size", "4", "--threads", "2", "-o", str(direct)]) == 0
    fields = "%ID\t%INFO/GENOSSM_LLR\t%INFO/GENOSSM_EMBDIST\t%INFO/GENOSSM_STATUS\n"
    assert query(gathered, fields) == query(direct, fields)
    records = ["bcftools", "view", "-H"]  # every record's bytes, scattered or not
    assert subprocess.run(records + [str(gathered)], capture_output=True, check=True).stdout == \
        subprocess.run(records + [str(direct)], capture_output=True, check=True).stdout
    region = subprocess.run(["bcftools", "view", "-H", "-r", "N315:40000-60000", str(gathered)],
                            capture_output=True, text=True, check=True).stdout.strip().split("\n")
    assert len(region) == 4  # the index works: MNV, insertion, SNV, deletion
    assert not list((tmp_path / "scored").glob("*.vcf.gz"))  # pieces are temporary


def test_embed_workflow_merges_pieces_in_bed_order(tmp_path, model_dir):
    bed = PIPELINES / "embed" / "sample_regions.bed"
    snakemake("embed", tmp_path, {"bed": bed, "fasta": SAMPLE_GENOME, "model": model_dir, "chunks": 3})
    direct = tmp_path / "direct.h5"
    assert main(["-q", "embed", "--regions", str(bed), "--fasta", str(SAMPLE_GENOME), "--model",
                 str(model_dir), "-o", str(direct)]) == 0
    with h5py.File(tmp_path / "embeddings.h5", "r") as merged, h5py.File(direct, "r") as whole:
        assert merged["embeddings"].shape == (4, 16)
        np.testing.assert_allclose(merged["embeddings"][()], whole["embeddings"][()], atol=1e-6)
        assert list(merged["regions/name"].asstr()[()]) == ["region_a", "region_b", "region_c", "region_d"]
        assert list(merged["regions/strand"].asstr()[()]) == ["+", "-", "+", "+"]


def test_score_workflow_sample_mode_cuts_pieces_between_windows(tmp_path, model_dir):
    phased = RESOURCES / "sample" / "sample_phased.vcf"
    snakemake("score", tmp_path, {"vcf": phased, "fasta": SAMPLE_GENOME, "model": model_dir, "chunks": 4,
                                  "chunk_size": 2, "samples": "all"})
    gathered = tmp_path / "scored.vcf.gz"
    direct = tmp_path / "direct.vcf"
    assert main(["-q", "score", str(phased), "--fasta", str(SAMPLE_GENOME), "--model", str(model_dir),
                 "--chunk-size", "2", "--samples", "all", "-o", str(direct)]) == 0
    fields = "%ID\t%INFO/GENOSSM_LLR\t%INFO/GENOSSM_STATUS[\t%GT]\n"
    assert query(gathered, fields) == query(direct, fields)
    # Haplotype values as in one run over the whole file: no window lost records to another piece
    # (the cluster at 5210-5330 spans blocks 1 and 2, which therefore share a piece).
    values = "%ID[\t%GENOSSM_HLLR\t%GENOSSM_HVAR]\n"
    for scattered, whole in zip(query(gathered, values), query(direct, values)):
        assert scattered.split("\t")[0] == whole.split("\t")[0]
        got = [float(v) for cell in scattered.split("\t")[1:] for v in cell.split(",") if v != "."]
        want = [float(v) for cell in whole.split("\t")[1:] for v in cell.split(",") if v != "."]
        np.testing.assert_allclose(got, want, atol=1e-5)
