"""BAM reading: filters, regions, strands, coverage and summary, checked against samtools itself
(`pysam.samtools`, the command line tool's code) and against a per-read reference count."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pysam
import pysam.samtools
import pytest

from genossm.errors import InputError
from genossm.io import bam
from genossm.io.intervals import Region
from genossm.tokenizer import reverse_complement

LAMBDA = "gi|9626243|ref|NC_001416.1|"
EXCLUDED_BY_DEFAULT = str(0x4 | 0x100 | 0x200 | 0x400 | 0x800)  # unmapped, secondary, qcfail, dup, supp


@pytest.fixture
def reads_bam(data_dir):
    return data_dir / "lambda_reads.bam"


def samtools_count(*args) -> int:
    return int(pysam.samtools.view("-c", *args).strip())


def test_default_filters_match_samtools(reads_bam):
    reads = list(bam.stream_reads(reads_bam))
    assert len(reads) == samtools_count("-F", EXCLUDED_BY_DEFAULT, str(reads_bam))
    assert all(read.contig == LAMBDA and 0 <= read.start < read.end <= 48502 for read in reads)


def test_unmapped_reads_without_region(reads_bam):
    reads = list(bam.stream_reads(reads_bam, exclude_unmapped=False))
    assert len(reads) == samtools_count(str(reads_bam))
    unmapped = [read for read in reads if read.contig is None]
    assert len(unmapped) == samtools_count("-f", "4", str(reads_bam)) > 0
    assert all(read.start == -1 and read.end == -1 for read in unmapped)


def test_min_mapq_matches_samtools(reads_bam):
    reads = list(bam.stream_reads(reads_bam, min_mapq=30))
    assert len(reads) == samtools_count("-F", EXCLUDED_BY_DEFAULT, "-q", "30", str(reads_bam))
    assert all(read.mapq >= 30 for read in reads)


@pytest.mark.parametrize("region", [f"{{{LAMBDA}}}:1001-2000", Region(LAMBDA, 1000, 2000)], ids=["string", "Region"])
def test_region_matches_samtools(reads_bam, region):
    reads = list(bam.stream_reads(reads_bam, region))
    assert len(reads) == samtools_count("-F", EXCLUDED_BY_DEFAULT, str(reads_bam), f"{{{LAMBDA}}}:1001-2000") > 0
    assert all(read.start < 2000 and read.end > 1000 for read in reads)


def test_original_strand_reverse_complements_minus_strand_reads(reads_bam):
    aligned = list(bam.stream_reads(reads_bam))
    sequenced = list(bam.stream_reads(reads_bam, original_strand=True))
    assert any(read.is_reverse for read in aligned) and any(not read.is_reverse for read in aligned)
    for as_aligned, as_sequenced in zip(aligned, sequenced):
        expected = reverse_complement(as_aligned.sequence) if as_aligned.is_reverse else as_aligned.sequence
        assert as_sequenced.sequence == expected


def test_unindexed_bam_with_region_asks_for_samtools_index(reads_bam, tmp_path):
    copy = tmp_path / "reads.bam"
    shutil.copy(reads_bam, copy)
    assert len(list(bam.stream_reads(copy))) > 0  # no region: no index needed
    with pytest.raises(InputError, match="samtools index"):
        list(bam.stream_reads(copy, f"{LAMBDA}:1-100"))
    with pytest.raises(InputError, match="samtools index"):
        bam.coverage(copy, LAMBDA, 0, 100)


def test_unknown_contig_in_region(reads_bam):
    with pytest.raises(InputError, match="chr1"):
        list(bam.stream_reads(reads_bam, Region("chr1", 0, 10)))


def reference_coverage(path, contig, start, end) -> np.ndarray:
    """Depth from each read's aligned pairs (A/C/G/T bases only, like count_coverage)."""
    depth = np.zeros(end - start, dtype=np.int32)
    with pysam.AlignmentFile(str(path)) as handle:
        for read in handle.fetch(contig, start, end):
            if read.flag & int(EXCLUDED_BY_DEFAULT):
                continue
            for query_pos, ref_pos in read.get_aligned_pairs(matches_only=True):
                if start <= ref_pos < end and read.query_sequence[query_pos] in "ACGT":
                    depth[ref_pos - start] += 1
    return depth


@pytest.mark.parametrize("start, end", [(0, 300), (1000, 1001), (48400, 48502), (500, 500)])
def test_coverage_matches_reference(reads_bam, start, end):
    depth = bam.coverage(reads_bam, LAMBDA, start, end)
    assert depth.dtype == np.int32 and depth.shape == (end - start,)
    np.testing.assert_array_equal(depth, reference_coverage(reads_bam, LAMBDA, start, end))


def test_coverage_out_of_bounds(reads_bam):
    with pytest.raises(InputError, match="outside"):
        bam.coverage(reads_bam, LAMBDA, 48000, 48600)


def test_summary_with_and_without_index(reads_bam, tmp_path):
    summary = bam.bam_summary(reads_bam)
    assert summary["indexed"] and summary["sort_order"] == "coordinate"
    assert summary["contigs"] == {LAMBDA: 48502}
    assert summary["reads_mapped"] == samtools_count("-F", "4", str(reads_bam))
    assert summary["reads_unmapped"] == samtools_count("-f", "4", str(reads_bam))
    copy = tmp_path / "reads.bam"
    shutil.copy(reads_bam, copy)
    unindexed = bam.bam_summary(copy)
    assert not unindexed["indexed"]
    assert (unindexed["reads_mapped"], unindexed["reads_unmapped"]) == (summary["reads_mapped"], summary["reads_unmapped"])


# -- flags, on a synthetic BAM where each read has one flag ------------------------------------


FLAGGED = {"plain": 0, "reverse": 0x10, "secondary": 0x100, "qcfail": 0x200, "duplicate": 0x400,
           "supplementary": 0x800, "unmapped": 0x4}


@pytest.fixture
def flagged_bam(tmp_path):
    path = tmp_path / "flags.bam"
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "c1", "LN": 100}]}
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for position, (name, flag) in enumerate(FLAGGED.items()):
            read = pysam.AlignedSegment(out.header)
            read.query_name, read.flag = name, flag
            read.query_sequence = "ACGTTGCA"
            if not flag & 0x4:
                read.reference_id, read.reference_start = 0, 10 + position
                read.cigartuples, read.mapping_quality = [(0, 8)], 10 * position
            else:
                read.reference_id, read.reference_start = 0, 10 + position  # placed unmapped read
            out.write(read)
    pysam.index(str(path))
    return path


def names(path, **filters) -> set[str]:
    return {read.name for read in bam.stream_reads(path, **filters)}


def test_each_flag_filter(flagged_bam):
    assert names(flagged_bam) == {"plain", "reverse"}
    for name, option in [("secondary", "exclude_secondary"), ("qcfail", "exclude_qcfail"),
                         ("duplicate", "exclude_duplicates"), ("supplementary", "exclude_supplementary"),
                         ("unmapped", "exclude_unmapped")]:
        assert names(flagged_bam, **{option: False}) == {"plain", "reverse", name}
    assert names(flagged_bam, min_mapq=10) == {"reverse"}


def test_coverage_filters(flagged_bam):
    default = bam.coverage(flagged_bam, "c1", 0, 100)
    assert default.sum() == 2 * 8  # plain and reverse
    assert bam.coverage(flagged_bam, "c1", 0, 100, exclude_duplicates=False).sum() == 3 * 8
    assert bam.coverage(flagged_bam, "c1", 0, 100, min_mapq=10).sum() == 8


# -- bad files -----------------------------------------------------------------------------------


def test_gzipped_bam_is_explained(reads_bam, tmp_path):
    path = tmp_path / "reads.bam.gz"
    path.write_bytes(gzip.compress(reads_bam.read_bytes()))
    with pytest.raises(InputError, match="gunzip"):
        list(bam.stream_reads(path))


def test_not_a_bam(tmp_path):
    path = tmp_path / "notes.bam"
    path.write_text("just some text\n")
    with pytest.raises(InputError, match="BAM"):
        list(bam.stream_reads(path))
    with pytest.raises(InputError, match="no such file"):
        list(bam.stream_reads(tmp_path / "absent.bam"))


def test_truncated_bam(reads_bam, tmp_path):
    path = tmp_path / "cut.bam"
    path.write_bytes(reads_bam.read_bytes()[: 60_000])
    with pytest.raises(InputError, match="truncated"):
        list(bam.stream_reads(path))


def test_cram_with_reference(reads_bam, data_dir, tmp_path):
    fasta = tmp_path / "lambda_virus.fa"
    shutil.copy(data_dir / "lambda_virus.fa", fasta)
    cram = tmp_path / "reads.cram"
    pysam.samtools.view("-C", "-T", str(fasta), "-o", str(cram), str(reads_bam), catch_stdout=False)
    pysam.index(str(cram))
    from_bam = [(r.name, r.sequence, r.start, r.end) for r in bam.stream_reads(reads_bam, f"{LAMBDA}:1-5000")]
    from_cram = [(r.name, r.sequence, r.start, r.end)
                 for r in bam.stream_reads(cram, f"{LAMBDA}:1-5000", reference=fasta)]
    assert from_cram == from_bam and len(from_bam) > 0
    summary = bam.bam_summary(cram, reference=fasta)
    assert summary["format"] == "CRAM" and summary["reads_mapped"] == bam.bam_summary(reads_bam)["reads_mapped"]
