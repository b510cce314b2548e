"""VCF reading (formats, stdin, errors, line numbers), allele normalisation, check_ref, VcfWriter.

Outputs are checked with bcftools itself (`pysam.bcftools`, the same code as the command line
tool), so what we write is what downstream pipelines will read.
"""

from __future__ import annotations

import gzip
import io
import logging
import shutil
import sys

import pysam
import pysam.bcftools
import pytest

from genossm.errors import InputError
from genossm.io import vcf
from genossm.io.fasta import open_fasta

LAMBDA = "gi|9626243|ref|NC_001416.1|"
EDGE_HEADER_LINES = 14  # lines before the first record in tests/fixtures/edge_cases.vcf


@pytest.fixture
def edge_vcf(data_dir):
    return data_dir / "edge_cases.vcf"


@pytest.fixture
def genome(data_dir, tmp_path):
    fasta = tmp_path / "lambda_virus.fa"
    shutil.copy(data_dir / "lambda_virus.fa", fasta)
    with open_fasta(fasta) as opened:
        yield opened


def file_records(path) -> list[list[str]]:
    """The record lines of a plain VCF, split into columns (the independent view of the file)."""
    with open(path) as handle:
        return [line.rstrip("\n").split("\t") for line in handle if not line.startswith("#")]


def by_id(records):
    return {record.record.id: record for record in records}


# -- normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pos, ref, alt, start, norm_ref, norm_alt, kind",
    [
        (10, "A", "G", 9, "A", "G", vcf.SNV),
        (10, "AC", "GT", 9, "AC", "GT", vcf.MNV),
        (10, "A", "ATT", 10, "", "TT", vcf.INS),
        (10, "ATT", "A", 10, "TT", "", vcf.DEL),
        (10, "GCA", "TCA", 9, "G", "T", vcf.SNV),  # shared suffix stripped
        (10, "CAA", "CA", 10, "A", "", vcf.DEL),  # suffix first: the leftmost A is the one deleted
        (10, "GCG", "TT", 9, "GCG", "TT", vcf.COMPLEX),
        (10, "ACGT", "ATGA", 10, "CGT", "TGA", vcf.MNV),
        (10, "A", "A", 9, "", "", vcf.COMPLEX),  # ALT identical to REF
    ],
    ids=["snv", "mnv", "ins", "del", "padded-snv", "repeat-del", "complex", "padded-mnv", "no-change"],
)
def test_normalise_and_classify(pos, ref, alt, start, norm_ref, norm_alt, kind):
    [variant] = vcf.make_variants("c", pos, ref, [alt], line=None)
    assert (variant.start, variant.norm_ref, variant.norm_alt, variant.kind) == (start, norm_ref, norm_alt, kind)
    assert variant.end == start + len(norm_ref)


@pytest.mark.parametrize("alt, kind", [("<DEL>", vcf.SYMBOLIC), ("<*>", vcf.SYMBOLIC),
                                       ("G]chr2:100]", vcf.SYMBOLIC), ("[chr2:5[G", vcf.SYMBOLIC),
                                       ("G.", vcf.SYMBOLIC), ("*", vcf.STAR), (".", vcf.MISSING)])
def test_special_alleles_are_not_normalised(alt, kind):
    [variant] = vcf.make_variants("c", 5, "G", [alt], line=3)
    assert variant.kind == kind
    assert (variant.start, variant.norm_ref, variant.norm_alt) == (4, "G", alt)


# -- reading the edge cases ----------------------------------------------------------------------


def test_edge_cases_every_record_in_file_order(edge_vcf):
    records = list(vcf.read_variants(edge_vcf))
    expected = file_records(edge_vcf)
    assert [(r.record.contig, r.record.pos, r.record.id or ".") for r in records] == \
        [(c[0], int(c[1]), c[2]) for c in expected]
    assert [r.line for r in records] == [EDGE_HEADER_LINES + n for n in range(1, len(expected) + 1)]
    assert [r.number for r in records] == list(range(1, len(expected) + 1))
    # the unsorted record (100 after 200) and the duplicate deletion are both there, unchanged
    ids = [r.record.id for r in records]
    assert ids.index("mnv1") == ids.index("ins1") + 1
    assert ids.count("del1") == 2


def test_edge_cases_kinds(edge_vcf):
    records = by_id(vcf.read_variants(edge_vcf))
    kinds = {name: [v.kind for v in record.variants] for name, record in records.items()}
    assert kinds["rs1"] == [vcf.SNV]
    assert kinds["mnv1"] == [vcf.MNV]
    assert kinds["ins1"] == [vcf.INS]
    assert kinds["del1"] == [vcf.DEL]
    assert kinds["multi1"] == [vcf.SNV, vcf.DEL, vcf.INS]
    assert kinds["star1"] == [vcf.SNV, vcf.STAR]
    assert kinds[None] == [vcf.MISSING]  # ID '.', ALT '.'
    assert kinds["sv1"] == [vcf.SYMBOLIC]
    assert kinds["bnd1"] == [vcf.SYMBOLIC]
    assert kinds["complex1"] == [vcf.COMPLEX]
    multi = records["multi1"].variants
    assert [v.alt_index for v in multi] == [0, 1, 2]
    assert [(v.start, v.norm_ref, v.norm_alt) for v in multi] == [(399, "G", "T"), (400, "CA", ""), (402, "", "TT")]
    assert records["lower1"].variants[0].ref == "C" and records["lower1"].variants[0].alt == "T"
    assert records["bnd1"].variants[0].alt == f"A[{LAMBDA}:2000["  # breakend kept as written


def test_contig_missing_from_header_comes_through_with_a_warning(edge_vcf, caplog):
    with caplog.at_level(logging.WARNING, logger="genossm.io.vcf"):
        records = by_id(vcf.read_variants(edge_vcf))
    assert records["nohdr1"].record.contig == "chrNotInHeader"
    assert records["nohdr1"].variants[0].kind == vcf.SNV
    assert "chrNotInHeader" in caplog.text and "not declared" in caplog.text
    assert "chrUnknown" not in caplog.text  # declared in the header, only missing from the genome


def test_original_fields_kept(edge_vcf):
    records = by_id(vcf.read_variants(edge_vcf))
    multi = records["multi1"].record
    assert multi.qual == 45 and list(multi.filter) == ["PASS"]
    assert multi.info["AF"] == pytest.approx((0.1, 0.2, 0.3))
    assert multi.samples["sample1"]["GT"] == (1, 2) and multi.samples["sample1"]["DP"] == 15
    assert list(records["star1"].record.filter) == ["LowQual"]


# -- formats and stdin ---------------------------------------------------------------------------


def expected_positions(edge_vcf):
    return [(c[0], int(c[1])) for c in file_records(edge_vcf)]


def read_positions(path):
    return [(r.record.contig, r.record.pos) for r in vcf.read_variants(path)]


def make_bcf(edge_vcf, tmp_path):
    """BCF of the edge cases; BCF needs every contig declared, so the undeclared one is left out."""
    declared = tmp_path / "declared.vcf"
    declared.write_text("".join(line for line in edge_vcf.read_text().splitlines(keepends=True)
                                if not line.startswith("chrNotInHeader")))
    bcf = tmp_path / "edge.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(declared), catch_stdout=False)
    return bcf, expected_positions(declared)


def test_bgzip_plain_gzip_and_bcf_read_the_same(edge_vcf, tmp_path):
    bgz = tmp_path / "edge.vcf.gz"
    pysam.tabix_compress(str(edge_vcf), str(bgz))
    plain_gz = tmp_path / "edge_plain.vcf.gz"
    plain_gz.write_bytes(gzip.compress(edge_vcf.read_bytes()))
    bcf, bcf_expected = make_bcf(edge_vcf, tmp_path)
    expected = expected_positions(edge_vcf)
    assert read_positions(bgz) == expected
    assert read_positions(plain_gz) == expected
    assert read_positions(bcf) == bcf_expected
    assert [r.line for r in vcf.read_variants(plain_gz)][:2] == [EDGE_HEADER_LINES + 1, EDGE_HEADER_LINES + 2]
    assert all(r.line is None for r in vcf.read_variants(bcf))  # BCF has no lines


@pytest.mark.parametrize("encoding", ["plain", "gzip", "bgzip"])
def test_stdin(edge_vcf, tmp_path, monkeypatch, encoding):
    data = edge_vcf.read_bytes()
    if encoding == "gzip":
        data = gzip.compress(data)
    elif encoding == "bgzip":
        pysam.tabix_compress(str(edge_vcf), str(tmp_path / "e.vcf.gz"))
        data = (tmp_path / "e.vcf.gz").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    records = list(vcf.read_variants("-"))
    assert [(r.record.contig, r.record.pos) for r in records] == expected_positions(edge_vcf)
    assert records[-1].line == EDGE_HEADER_LINES + len(records)


def test_stdin_bcf(edge_vcf, tmp_path, monkeypatch):
    bcf, expected = make_bcf(edge_vcf, tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(bcf.read_bytes())))
    assert read_positions("-") == expected


def test_streaming_stops_early_without_reading_everything(edge_vcf, tmp_path):
    plain_gz = tmp_path / "edge.vcf.gz"
    plain_gz.write_bytes(gzip.compress(edge_vcf.read_bytes()))
    stream = vcf.read_variants(plain_gz)
    first = next(stream)
    stream.close()  # closes the pipe and the pump thread
    assert first.record.id == "rs1"


# -- errors --------------------------------------------------------------------------------------

HEADER = f"##fileformat=VCFv4.2\n##contig=<ID={LAMBDA},length=48502>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def record_line(pos="10", ref="G", alt="A"):
    return f"{LAMBDA}\t{pos}\t.\t{ref}\t{alt}\t.\t.\t.\n"


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("", None, "empty file"),
        ("##fileformat=VCFv4.2\n" + record_line(), 2, "no '#CHROM"),
        ("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + record_line(), 1, "##fileformat"),
        (record_line(), 1, "##fileformat"),
        ("##fileformat=VCFv4.2\n##source=x\n", 3, "no '#CHROM"),
        (HEADER + record_line() + record_line(pos="abc"), 5, "could not parse"),
        (HEADER + record_line() + "\n" + record_line(), 5, "could not parse"),
        (HEADER + record_line() + f"{LAMBDA}\t12\t.\tG\n", 5, "could not parse"),
    ],
    ids=["empty", "no-chrom-line", "no-fileformat", "no-header", "header-only-no-chrom",
         "bad-pos", "blank-line", "too-few-columns"],
)
def test_bad_vcf(tmp_path, text, line, message):
    path = tmp_path / "bad.vcf"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        list(vcf.read_variants(path))
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert message in caught.value.message


def test_bad_record_inside_plain_gzip_names_its_line(tmp_path):
    path = tmp_path / "bad.vcf.gz"
    path.write_bytes(gzip.compress((HEADER + record_line() * 3 + record_line(pos="x")).encode()))
    with pytest.raises(InputError) as caught:
        list(vcf.read_variants(path))
    assert caught.value.line == 7


def test_truncated_plain_gzip(edge_vcf, tmp_path):
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(gzip.compress(edge_vcf.read_bytes())[:-12])  # keeps whole lines, loses the end
    with pytest.raises(InputError, match="truncated"):
        list(vcf.read_variants(cut))


def test_truncated_bgzip(edge_vcf, tmp_path):
    bgz = tmp_path / "edge.vcf.gz"
    pysam.tabix_compress(str(edge_vcf), str(bgz))
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(bgz.read_bytes()[:-40])
    with pytest.raises(InputError, match="truncated"):
        list(vcf.read_variants(cut))


def test_missing_file_and_xz(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        vcf.VcfReader(tmp_path / "absent.vcf")
    xz = tmp_path / "a.vcf.xz"
    xz.write_bytes(b"\xfd7zXZ\x00" + b"\x00" * 20)
    with pytest.raises(InputError, match="xz"):
        vcf.VcfReader(xz)


# -- check_ref -----------------------------------------------------------------------------------


def test_check_ref_statuses(edge_vcf, genome):
    records = by_id(vcf.read_variants(edge_vcf))
    status = {name: vcf.check_ref(record.variants[0], genome) for name, record in records.items()}
    assert status["rs1"] is None and status["rs2"] is None  # first and last base of the contig
    assert status["lower1"] is None  # case-insensitive
    assert status["nref1"] is None  # N in REF matches any base
    assert status["mismatch1"] == vcf.REF_MISMATCH
    assert status["pastend1"] == vcf.OUT_OF_BOUNDS
    assert status["unk1"] == vcf.UNKNOWN_CONTIG and status["nohdr1"] == vcf.UNKNOWN_CONTIG
    assert status["sv1"] is None and status["multi1"] is None and status["del1"] is None


def test_check_ref_against_the_genome_sequence(genome):
    sequence = genome.fetch(LAMBDA, 0, 48502)
    for pos in (1, 2, 1000, 48502):
        base = sequence[pos - 1]
        other = "A" if base != "A" else "C"
        assert vcf.check_ref(vcf.make_variants(LAMBDA, pos, base.lower(), ["T"], None)[0], genome) is None
        assert vcf.check_ref(vcf.make_variants(LAMBDA, pos, other, ["T"], None)[0], genome) == vcf.REF_MISMATCH
    assert vcf.check_ref(vcf.make_variants(LAMBDA, 48503, "A", ["T"], None)[0], genome) == vcf.OUT_OF_BOUNDS


# -- counting ------------------------------------------------------------------------------------


def test_count_variants_matches_the_records(edge_vcf):
    counts = vcf.count_variants(edge_vcf)
    records = list(vcf.read_variants(edge_vcf))
    assert counts["records"] == len(file_records(edge_vcf)) == len(records)
    assert counts["alts"] == sum(len(r.record.alts or ()) for r in records)
    assert sum(counts["kinds"].values()) == sum(len(r.variants) for r in records)
    assert counts["kinds"][vcf.STAR] == 1 and counts["kinds"][vcf.SYMBOLIC] == 2
    assert counts["samples"] == ["sample1"]


# -- writing -------------------------------------------------------------------------------------

INFO_FIELDS = [("GENOSSM_LLR", "A", "Float", "log P(alt) - log P(ref)"),
               ("GENOSSM_STATUS", "A", "String", "why an allele was not scored")]


def write_scores(source, target, **kwargs):
    """Score every SNV with its position / 1000 and flag everything else; returns the writer."""
    with vcf.VcfReader(source) as reader:
        with vcf.VcfWriter(target, reader.header, INFO_FIELDS,
                           header_lines=["##genossm_model=test-model", "##genossm_command=pytest"],
                           **kwargs) as writer:
            for record in reader:
                scores = [v.pos / 1000 if v.kind == vcf.SNV else None for v in record.variants]
                status = [None if v.kind == vcf.SNV else v.kind.lower() for v in record.variants]
                writer.write(record, {"GENOSSM_LLR": scores, "GENOSSM_STATUS": status})
    return writer


def test_writer_round_trip_keeps_every_record(edge_vcf, tmp_path, caplog):
    out = tmp_path / "scored.vcf.gz"
    with caplog.at_level(logging.WARNING, logger="genossm.io.vcf"):
        writer = write_scores(edge_vcf, out)
    assert "not sorted" in caplog.text and "no tabix index" in caplog.text
    assert writer.records_written == len(file_records(edge_vcf))
    assert not writer.indexed and not (tmp_path / "scored.vcf.gz.tbi").exists()  # input unsorted
    body = pysam.bcftools.view("-H", str(out)).splitlines()
    assert len(body) == len(file_records(edge_vcf))
    # every original column is kept; INFO gains the new keys at its end
    for original, written in zip(file_records(edge_vcf), (line.split("\t") for line in body)):
        assert written[:7] == original[:7] and written[8:] == original[8:]
        assert written[7].startswith(original[7] if original[7] != "." else "")
    query = pysam.bcftools.query("-f", "%ID\t%INFO/GENOSSM_LLR\t%INFO/GENOSSM_STATUS\n", str(out))
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in query.splitlines()}
    assert rows["rs1"] == ["0.001", "."]
    assert rows["multi1"] == ["0.4,.,.", ".,del,ins"]
    assert rows["star1"] == ["0.402,.", ".,star"]
    assert rows["sv1"] == [".", "symbolic"]
    assert rows["."] == [".", "."]  # ALT '.': no allele, so no Number=A value
    header = pysam.bcftools.view("-h", str(out))
    assert "##genossm_model=test-model" in header
    assert '##INFO=<ID=GENOSSM_LLR,Number=A,Type=Float,Description="log P(alt) - log P(ref)">' in header
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind


def test_writer_indexes_sorted_output(edge_vcf, tmp_path):
    sorted_vcf = tmp_path / "sorted.vcf"
    records = [line for line in edge_vcf.read_text().splitlines(keepends=True)]
    header = [line for line in records if line.startswith("#")]
    body = sorted((line for line in records if not line.startswith("#") and line.startswith(LAMBDA)),
                  key=lambda line: int(line.split("\t")[1]))
    sorted_vcf.write_text("".join(header + body))
    out = tmp_path / "sorted.scored.vcf.gz"
    writer = write_scores(sorted_vcf, out)
    assert writer.indexed and (tmp_path / "sorted.scored.vcf.gz.tbi").exists()
    region = pysam.bcftools.query("-r", f"{LAMBDA}:300-450", "-f", "%POS\t%INFO/GENOSSM_LLR\n", str(out))
    assert region.splitlines() == ["300\t.", "300\t.", "400\t0.4,.,.", "402\t0.402,."]


def test_writer_to_stdout_and_plain_vcf(edge_vcf, tmp_path, capfdbinary):
    write_scores(edge_vcf, "-")
    text = capfdbinary.readouterr().out.decode()
    plain = tmp_path / "scored.vcf"
    write_scores(edge_vcf, plain)
    assert plain.read_text() == text
    assert text.startswith("##fileformat=VCFv4.2")
    assert sum(1 for line in text.splitlines() if not line.startswith("#")) == len(file_records(edge_vcf))


def test_scoring_twice_replaces_old_values(edge_vcf, tmp_path):
    once, twice = tmp_path / "once.vcf", tmp_path / "twice.vcf"
    write_scores(edge_vcf, once)
    write_scores(once, twice)
    assert twice.read_text().count("GENOSSM_LLR=") == once.read_text().count("GENOSSM_LLR=") > 0
    assert pysam.bcftools.view("-h", str(twice)).count("##INFO=<ID=GENOSSM_LLR") == 1
    assert file_records(twice) == file_records(once)


def test_writer_failure_leaves_no_output(edge_vcf, tmp_path):
    out = tmp_path / "scored.vcf.gz"
    with pytest.raises(RuntimeError):
        with vcf.VcfReader(edge_vcf) as reader, vcf.VcfWriter(out, reader.header, INFO_FIELDS) as writer:
            writer.write(next(iter(reader)), {"GENOSSM_LLR": [1.0]})
            raise RuntimeError("model crashed")
    assert list(tmp_path.iterdir()) == []


def test_number_a_needs_one_value_per_alt(edge_vcf, tmp_path):
    with vcf.VcfReader(edge_vcf) as reader, vcf.VcfWriter(tmp_path / "x.vcf", reader.header, INFO_FIELDS) as writer:
        with pytest.raises(ValueError, match="Number=A"):
            writer.write(next(iter(reader)), {"GENOSSM_LLR": [1.0, 2.0]})


def test_format_info():
    assert vcf.format_info({"A": [1.5, None], "B": [None, None], "C": 3, "F": True, "G": False}) == "A=1.5,.;C=3;F"
    assert vcf.format_info({"X": [float("nan"), -1.234567891]}) == "X=.,-1.23457"
