"""Regions: samtools-style strings, BED3/BED6 files, validation with line numbers, genome checks."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from genossm.errors import InputError
from genossm.io.fasta import open_fasta
from genossm.io.intervals import Region, check_regions, parse_region, read_bed, read_regions

LENGTHS = {"chr1": 5000, "chr2": 300, "HLA-A*01:01:01:01": 3000}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- Region -----------------------------------------------------------------------------------
def test_region_string_is_one_based_inclusive_and_default_name():
    region = Region("chr1", 1000, 2000)
    assert str(region) == "chr1:1001-2000"
    assert region.name == "chr1:1001-2000" and region.strand == "+" and region.length == 1000
    assert parse_region(region.name) == region  # the default name reads back as the same region


def test_region_equality_ignores_where_it_was_read():
    assert Region("chr1", 0, 5, source="a.bed", line=3) == Region("chr1", 0, 5)
    assert len({Region("chr1", 0, 5, source="a.bed"), Region("chr1", 0, 5)}) == 1


@pytest.mark.parametrize("start,end,strand,words", [
    (-1, 5, "+", "0 <= start <= end"), (6, 5, "+", "0 <= start <= end"), (0, 5, "x", "strand 'x'"),
])
def test_region_validates_itself(start, end, strand, words):
    with pytest.raises(InputError, match=words):
        Region("chr1", start, end, strand=strand)


# -- region strings ---------------------------------------------------------------------------
@pytest.mark.parametrize("spec,expected", [
    ("chr1:1,001-2,000", Region("chr1", 1000, 2000)),
    ("chr1:1001-2000", Region("chr1", 1000, 2000)),
    ("  chr2:1-1 ", Region("chr2", 0, 1)),
    ("chr1:4,001", Region("chr1", 4000, 5000)),
    ("chr1:4001-", Region("chr1", 4000, 5000)),
    ("chr2", Region("chr2", 0, 300)),
    ("2", Region("2", 0, 300)),  # the length is found under the alias; check_regions renames
    ("2:101-", Region("2", 100, 300)),
    ("HLA-A*01:01:01:01", Region("HLA-A*01:01:01:01", 0, 3000)),
    ("{HLA-A*01:01:01:01}:11-20", Region("HLA-A*01:01:01:01", 10, 20)),
    ("HLA-A*01:01:01:01:11-20", Region("HLA-A*01:01:01:01", 10, 20)),
])
def test_parse_region(spec, expected):
    assert parse_region(spec, LENGTHS) == expected


def test_parse_region_without_lengths_needs_an_end():
    assert parse_region("chr9:10-20") == Region("chr9", 9, 20)
    for spec in ("chr9", "chr9:10", "chr9:10-"):
        with pytest.raises(InputError, match="length is unknown here; give an end"):
            parse_region(spec)
    with pytest.raises(InputError, match="contig 'chr9' is not in the genome"):
        parse_region("chr9", LENGTHS)


@pytest.mark.parametrize("spec,words", [
    ("", "empty region string"),
    ("chr1:abc-200", "position 'abc' is not a whole number"),
    ("chr1:1.5-200", "position '1.5' is not a whole number"),
    ("chr1:-5-200", "position '' is not a whole number"),
    ("chr1:0-10", "1-based, so start must be at least 1"),
    ("chr1:200-100", "end 100 is before start 200"),
    ("{chr1:1-10", "expected '{contig}'"),
])
def test_parse_region_errors(spec, words):
    with pytest.raises(InputError, match=words):
        parse_region(spec, LENGTHS)


# -- BED --------------------------------------------------------------------------------------
def test_read_bed3_and_bed6_with_headers_and_extra_columns(tmp_path):
    path = write(tmp_path / "regions.bed", (
        "track name=test\n"
        "browser position chr1:1-100\n"
        "# a comment\n"
        "\n"
        "chr1\t100\t200\n"
        "chr1\t300\t400\tpromoter\t0\t-\textra\tcolumns\n"
        "chr2\t0\t10\t.\t5\t.\n"
        "chr2\t10\t20\tenh 1\n"
    ))
    regions = read_bed(path)
    assert regions == [
        Region("chr1", 100, 200),
        Region("chr1", 300, 400, name="promoter", strand="-"),
        Region("chr2", 0, 10, strand="."),
        Region("chr2", 10, 20, name="enh 1"),
    ]
    assert regions[0].name == "chr1:101-200"
    assert [region.line for region in regions] == [5, 6, 7, 8]
    assert regions[1].source == str(path)


def test_read_bed_space_separated_crlf_and_gzip(tmp_path):
    text = "chr1 5 10\r\nchr2  7  9  x  0  +\r\n"
    plain = write(tmp_path / "spaces.bed", text)
    packed = tmp_path / "spaces.bed.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    expected = [Region("chr1", 5, 10), Region("chr2", 7, 9, name="x", strand="+")]
    assert read_bed(plain) == expected
    assert read_bed(packed) == expected


@pytest.mark.parametrize("line,words", [
    ("chr1\t100", "has 2 column(s); expected at least 3"),
    ("chr1\t100\t50", "BED end 50 is before start 100"),
    ("chr1\t-5\t50", "BED start -5 is negative"),
    ("chr1\t5\t-50", "BED end -50 is negative"),
    ("chr1\t1.5\t50", "BED start '1.5' is not an integer"),
    ("chr1\t1\t5e3", "BED end '5e3' is not an integer"),
    ("chr1\t1\t50\tname\t0\t*", "BED strand '*' (column 6) is invalid"),
])
def test_bed_errors_name_the_line(tmp_path, line, words):
    path = write(tmp_path / "bad.bed", f"# header\nchr1\t0\t10\n{line}\n")
    with pytest.raises(InputError) as caught:
        read_bed(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    assert words in message


def test_column_name_header_gets_a_hint(tmp_path):
    path = write(tmp_path / "header.bed", "chrom\tstart\tend\nchr1\t0\t10\n")
    with pytest.raises(InputError, match=r"header\.bed:1: BED start 'start' is not an integer \(a header"):
        read_bed(path)


def test_binary_file_is_not_a_bed(tmp_path):
    path = tmp_path / "binary.bed"
    path.write_bytes(b"chr1\t0\t10\n\xff\xfe\x00\n")
    with pytest.raises(InputError, match="not text"):
        read_bed(path)


def test_missing_bed(tmp_path):
    with pytest.raises(InputError, match="BED file not found"):
        read_bed(tmp_path / "absent.bed")


def test_compressed_bed_that_cannot_be_read(tmp_path):
    path = tmp_path / "regions.bed.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd\x00")
    with pytest.raises(InputError, match="zstd -d"):
        read_bed(path)


# -- mixed specs ------------------------------------------------------------------------------
def test_read_regions_mixes_files_and_strings(tmp_path):
    bed = write(tmp_path / "a.bed", "chr1\t0\t10\n")
    regions = read_regions([str(bed), "chr2:1-5", "chr2"], LENGTHS)
    assert regions == [Region("chr1", 0, 10), Region("chr2", 0, 5), Region("chr2", 0, 300)]
    assert read_regions("chr1:1-2") == [Region("chr1", 0, 2)]
    assert read_regions(bed) == [Region("chr1", 0, 10)]
    with pytest.raises(InputError, match="BED file not found"):
        read_regions([str(tmp_path / "missing.bed")])


# -- against a genome -------------------------------------------------------------------------
@pytest.fixture
def genome(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text(">chr1\n" + "ACGT" * 25 + "\n>chrM\nGATTACA\n")
    with open_fasta(path) as opened:
        yield opened


def test_check_regions_resolves_names(genome):
    named = Region("1", 0, 10, name="first")
    checked = check_regions([Region("chr1", 5, 100), named, Region("MT", 0, 7)], genome)
    assert checked == [Region("chr1", 5, 100), Region("chr1", 0, 10, name="first"), Region("chrM", 0, 7)]
    assert checked[2].name == "chrM:1-7"  # a default name follows the genome's spelling


def test_check_regions_bounds_and_unknown_contigs_name_the_bed_line(genome, tmp_path):
    bed = write(tmp_path / "r.bed", "chr1\t0\t10\nchr1\t90\t101\n")
    with pytest.raises(InputError) as caught:
        check_regions(read_bed(bed), genome)
    message = str(caught.value)
    assert message.startswith(f"{bed}:2: region chr1:91-101 ends past the end of contig 'chr1' (length 100)")
    bed = write(tmp_path / "s.bed", "chr1\t0\t10\nchr7\t0\t10\n")
    with pytest.raises(InputError) as caught:
        check_regions(read_bed(bed), genome)
    assert str(caught.value).startswith(f"{bed}:2: region chr7:1-10: contig 'chr7' is not in the genome (2 contigs)")
