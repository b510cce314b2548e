"""Saturation mutagenesis: 3 rows per base, same LLRs as `genossm score`, track and heat map."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from genossm.cli.main import main
from infer_helpers import LAMBDA, LAMBDA_CONTIG, lambda_sequence, save_tiny_model, write_vcf

REGION = f"{LAMBDA_CONTIG}:201-220"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mutagenesis")
    model = save_tiny_model("hyena", directory / "model")
    prefix = directory / "m"
    code = main(["-q", "mutagenesis", "--region", REGION, "--fasta", str(LAMBDA), "--model", str(model),
                 "--out-prefix", str(prefix)])
    assert code == 0
    return directory, model, prefix


def read_tsv(path):
    lines = path.read_text().strip().split("\n")
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_every_position_times_every_alternative(outputs):
    _, _, prefix = outputs
    header, rows = read_tsv(prefix.with_suffix(".tsv"))
    assert header == ["chrom", "pos", "ref", "alt", "llr"]
    sequence = lambda_sequence()
    assert len(rows) == 3 * 20
    for chrom, pos, ref, alt, llr in rows:
        assert chrom == LAMBDA_CONTIG and 201 <= int(pos) <= 220
        assert ref == sequence[int(pos) - 1] and alt != ref and np.isfinite(float(llr))
    assert {(int(r[1]), r[3]) for r in rows} == {(p, b) for p in range(201, 221) for b in "ACGT"
                                                  if b != sequence[p - 1]}


def test_bedgraph_holds_the_mean_per_position(outputs):
    _, _, prefix = outputs
    _, rows = read_tsv(prefix.with_suffix(".tsv"))
    lines = prefix.with_suffix(".bedGraph").read_text().strip().split("\n")
    assert lines[0].startswith("track type=bedGraph")
    track = [line.split("\t") for line in lines[1:]]
    assert [int(t[1]) for t in track] == list(range(200, 220))  # 0-based starts
    first = [float(r[4]) for r in rows if r[1] == "201"]
    assert float(track[0][3]) == pytest.approx(np.mean(first), abs=1e-5)


def test_heat_map_is_a_png(outputs):
    _, _, prefix = outputs
    assert prefix.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_formats_and_wrap_from_the_command_line(tmp_path, outputs):
    _, model, first = outputs
    prefix = tmp_path / "formats"
    assert main(["-q", "mutagenesis", "--region", REGION, "--fasta", str(LAMBDA), "--model", str(model),
                 "--out-prefix", str(prefix), "--format", "svg,pdf", "--format", "png", "--wrap", "8"]) == 0
    assert prefix.with_suffix(".svg").read_bytes().startswith(b"<?xml")
    assert prefix.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    assert prefix.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for suffix in (".tsv", ".bedGraph"):  # the figure options change no table
        assert prefix.with_suffix(suffix).read_bytes() == first.with_suffix(suffix).read_bytes()
    only_pdf = tmp_path / "only_pdf"
    assert main(["-q", "mutagenesis", "--region", f"{LAMBDA_CONTIG}:301-303", "--fasta", str(LAMBDA),
                 "--model", str(model), "--out-prefix", str(only_pdf), "--format", "pdf"]) == 0
    assert only_pdf.with_suffix(".pdf").exists() and not only_pdf.with_suffix(".png").exists()


def test_bad_format_fails_before_the_model_loads(tmp_path, capsys):
    code = main(["mutagenesis", "--region", REGION, "--fasta", str(LAMBDA), "--model", str(tmp_path / "none"),
                 "--out-prefix", str(tmp_path / "x"), "--format", "jpg"])
    assert code == 2 and "--format must be one of png, svg, pdf" in capsys.readouterr().err


def test_bundled_sample_each_format(tmp_path):
    """README's first command, on 3 bases, with every figure format."""
    prefix = tmp_path / "demo"
    assert main(["-q", "mutagenesis", "--region", "N315:5201-5203", "--fasta", "sample", "--out-prefix",
                 str(prefix), "--format", "png,svg,pdf"]) == 0
    for suffix in (".tsv", ".bedGraph", ".png", ".svg", ".pdf"):
        assert prefix.with_suffix(suffix).stat().st_size > 0


def test_same_llr_as_genossm_score(outputs):
    directory, model, prefix = outputs
    _, rows = read_tsv(prefix.with_suffix(".tsv"))
    picked = rows[::7]
    vcf = write_vcf(directory / "snvs.vcf", {LAMBDA_CONTIG: 48502},
                    [(LAMBDA_CONTIG, int(pos), f"v{i}", ref, alt) for i, (_, pos, ref, alt, _) in enumerate(picked)])
    out = directory / "snvs.scored.vcf"
    assert main(["-q", "score", str(vcf), "--fasta", str(LAMBDA), "--model", str(model), "-o", str(out)]) == 0
    scored = subprocess.run(["bcftools", "query", "-f", "%INFO/GENOSSM_LLR\n", str(out)],
                            capture_output=True, text=True, check=True).stdout.split()
    np.testing.assert_allclose([float(v) for v in scored], [float(r[4]) for r in picked], rtol=1e-5, atol=1e-6)


def test_min_track_and_region_limit(tmp_path, outputs, capsys):
    _, model, _ = outputs
    prefix = tmp_path / "small"
    assert main(["-q", "mutagenesis", "--region", f"{LAMBDA_CONTIG}:301-305", "--fasta", str(LAMBDA),
                 "--model", str(model), "--out-prefix", str(prefix), "--track-stat", "min", "--no-plot"]) == 0
    _, rows = read_tsv(prefix.with_suffix(".tsv"))
    track = prefix.with_suffix(".bedGraph").read_text().strip().split("\n")[1:]
    assert float(track[0].split("\t")[3]) == pytest.approx(min(float(r[4]) for r in rows if r[1] == "301"), abs=1e-5)
    assert not prefix.with_suffix(".png").exists()
    code = main(["mutagenesis", "--region", f"{LAMBDA_CONTIG}:1-20000", "--fasta", str(LAMBDA),
                 "--model", str(model), "--out-prefix", str(tmp_path / "big")])
    assert code == 1 and "limited to 10,000 bases" in capsys.readouterr().err
