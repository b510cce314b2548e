"""`genossm score --help`: the bcftools-style options sit in their groups, and their values reach
the job (what each does is tested in tests/infer/test_score_bcftools.py and test_score_regions.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genossm.cli.main import main


def help_text() -> str:
    return subprocess.run([sys.executable, "-m", "genossm.cli.main", "score", "--help"], capture_output=True,
                          text=True, check=True).stdout


def test_help_lists_the_bcftools_options_in_their_groups():
    text = help_text()
    inputs, outputs = text.index("\ninputs:"), text.index("\noutputs:")
    compute = text.index("\ncompute:")
    for flag in ("-r REGIONS, --regions REGIONS", "-R REGIONS_FILE, --regions-file REGIONS_FILE"):
        assert inputs < text.index(flag) < outputs
    for flag in ("-O {v,z,b,u}, --output-type {v,z,b,u}", "-W, --write-index"):
        assert outputs < text.index(flag) < compute


def test_options_reach_the_job(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("genossm.infer.score.score_vcf", lambda job: seen.setdefault("job", job) and {})
    (tmp_path / "r.bed").write_text("chr1\t0\t10\n")
    assert main(["score", "in.vcf.gz", "--fasta", "ref.fa", "-O", "b", "-W", "-o", "out.bcf",
                 "-R", str(tmp_path / "r.bed")]) == 0
    job = seen["job"]
    assert (job.outputs.output_type, job.outputs.write_index, job.outputs.vcf_type) == ("b", True, "b")
    assert job.regions.intervals == {"chr1": [(1, 10)]} and job.regions.from_file
    assert "--output-type b" in job.command and "--write-index" in job.command


@pytest.mark.parametrize("name, expected", [("-", "v"), ("x.vcf", "v"), ("x.bcf", "b"), ("x.vcf.gz", "z"),
                                            ("x.vcf.bgz", "z")])
def test_output_type_follows_the_suffix_when_not_given(name, expected):
    from genossm.infer.score import ScoreOutputs

    assert ScoreOutputs(vcf=name).vcf_type == expected
