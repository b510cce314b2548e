"""-r/--regions and -R/--regions-file of `genossm score`: the records kept are those
`bcftools view -r` keeps, through the index or filtered while reading, in input order."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genossm.cli.main import main
from genossm.errors import InputError, UsageError
from genossm.infer.score.regions import parse_regions, read_regions_file
from infer_helpers import LAMBDA, LAMBDA_CONTIG, lambda_sequence, save_tiny_model, write_vcf

C = LAMBDA_CONTIG


@pytest.fixture(scope="module")
def hyena_dir(tmp_path_factory):
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    """A plain VCF and its bgzip + tabix copy: SNVs, and a deletion at 1995 that reaches 2000."""
    sequence = lambda_sequence()
    snv = lambda pos: (C, pos, f"snv{pos}", sequence[pos - 1], "A" if sequence[pos - 1] != "A" else "C")
    rows = [snv(300), snv(1200), (C, 1995, "del1995", sequence[1994:2001], sequence[1994]), snv(5000),
            snv(9000), snv(20000)]
    text = write_vcf(tmp_path_factory.mktemp("calls") / "calls.vcf", {C: len(sequence)}, rows)
    subprocess.run(["bgzip", "-k", str(text)], check=True)
    subprocess.run(["tabix", "-p", "vcf", f"{text}.gz"], check=True)
    return text


def score_ids(hyena_dir, input, *args, stdin=None) -> list[str]:
    command = [sys.executable, "-m", "genossm.cli.main", "-q", "score", str(input), "--fasta", str(LAMBDA),
               "--model", str(hyena_dir), *map(str, args)]
    result = subprocess.run(command, stdin=stdin, capture_output=True, text=True, check=True)
    return [line.split("\t")[2] for line in result.stdout.splitlines() if not line.startswith("#")]


def bcftools_ids(path, regions) -> list[str]:
    result = subprocess.run(["bcftools", "view", "-H", "-r", regions, str(path)], capture_output=True, text=True,
                            check=True)
    return [line.split("\t")[2] for line in result.stdout.splitlines()]


def test_parse_regions_merges_and_reads_every_form():
    regions = parse_regions("chrA:100-200,chrA:150-300,chrB,chrC:50,chrD:10-")
    assert regions.intervals["chrA"] == [(100, 300)]
    assert regions.intervals["chrC"] == [(50, 50)]
    assert regions.overlaps("chrB", 123456, 123456) and regions.overlaps("chrD", 10**8, 10**8)
    assert regions.overlaps("chrA", 90, 100) and not regions.overlaps("chrA", 301, 400)
    assert not regions.overlaps("chrE", 1, 10)
    assert parse_regions("gi|1|ref|X.1|").intervals == {"gi|1|ref|X.1|": [(1, 2 ** 31 - 1)]}


@pytest.mark.parametrize("text", ["chrA:200-100", "chrA:0-5", "chrA:1-2,,chrB"])
def test_bad_region_is_a_usage_error(text):
    with pytest.raises(UsageError, match="-r/--regions"):
        parse_regions(text)


def test_regions_file_bed_is_zero_based_and_tsv_one_based(tmp_path):
    (tmp_path / "r.bed").write_text("track name=x\nchrA\t99\t200\n")
    (tmp_path / "r.tsv").write_text("# comment\nchrA\t100\t200\nchrB\t7\n")
    assert read_regions_file(tmp_path / "r.bed").intervals == {"chrA": [(100, 200)]}
    assert read_regions_file(tmp_path / "r.tsv").intervals == {"chrA": [(100, 200)], "chrB": [(7, 7)]}
    (tmp_path / "bad.tsv").write_text("chrA\t100\t200\nchrA 5 9\n")
    with pytest.raises(InputError, match="bad.tsv:2: expected CHROM POS"):
        read_regions_file(tmp_path / "bad.tsv")


REGIONS = f"{C}:1000-2000,{C}:8000-30000"


def test_regions_through_the_index_match_bcftools(hyena_dir, calls):
    expected = bcftools_ids(f"{calls}.gz", REGIONS)
    assert expected == ["snv1200", "del1995", "snv9000", "snv20000"]  # the deletion overlaps from 1995
    assert score_ids(hyena_dir, f"{calls}.gz", "-r", REGIONS) == expected


def test_regions_file_on_a_stream_and_on_the_index_match_bcftools(hyena_dir, calls, tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text(f"{C}\t999\t2000\n{C}\t7999\t30000\n")
    expected = bcftools_ids(f"{calls}.gz", REGIONS)
    assert score_ids(hyena_dir, "-", "-R", bed, stdin=open(calls, "rb")) == expected  # filtered while reading
    assert score_ids(hyena_dir, calls, "-R", bed) == expected  # plain VCF: no index
    assert score_ids(hyena_dir, f"{calls}.gz", "-R", bed) == expected  # through the index


def test_regions_without_an_index_is_a_usage_error(hyena_dir, calls, tmp_path, capsys):
    out = tmp_path / "o.vcf.gz"
    code = main(["score", str(calls), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "-r", REGIONS,
                 "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "-r/--regions needs an indexed input" in err and "-R" in err
    assert not out.exists()


def test_regions_and_regions_file_exclude_each_other(hyena_dir, calls, tmp_path):
    with pytest.raises(SystemExit):
        main(["score", str(calls), "--fasta", str(LAMBDA), "-r", C, "-R", str(tmp_path / "x.bed")])
