"""Aligned reads from BAM/CRAM: filtered streaming, per-base depth, and a summary for `genossm info`.

Reads are filtered the way pretraining on reads wants them by default: primary, mapped, not
duplicates, not QC failures (each filter can be switched off). A region needs an index: an
unindexed BAM with a region is an InputError with the `samtools index` command to run. The index
is never built here: the BAM's directory is often read-only (a shared data store), and building
one silently for a multi-gigabyte file is minutes of work the user should choose to spend.
Unmapped reads have no position, so they can only be streamed without a region.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from genossm.errors import InputError
from genossm.io import compression
from genossm.tokenizer import reverse_complement

log = logging.getLogger("genossm.io.bam")


@dataclass(frozen=True)
class Read:
    """One read: its bases (as aligned, or as sequenced with `original_strand=True`).

    `contig` is None and `start`/`end` are -1 for unmapped reads; `start`/`end` are 0-based
    half-open reference coordinates of the alignment.
    """

    name: str
    sequence: str
    contig: str | None
    start: int
    end: int
    mapq: int
    is_reverse: bool


def _check_path(path) -> str:
    name = os.fspath(path)
    if not Path(name).is_file():
        raise InputError("no such file (expected a BAM or CRAM file)", path=name)
    kind = compression.sniff_compression(name)
    if kind == compression.GZIP:
        raise InputError("this is a gzip-compressed file, not a BAM (BAM is BGZF inside); if it is a "
                         f"BAM that was gzipped again, run `gunzip {name}`", path=name)
    if kind not in (compression.NONE, compression.BGZF):
        raise InputError(compression.fix_hint(kind, name), path=name)
    return name


def open_alignments(path, *, threads: int = 1, reference: str | os.PathLike | None = None):
    """pysam.AlignmentFile for a BAM/CRAM (SAM too), with errors turned into InputError."""
    import pysam

    name = _check_path(path)
    try:
        handle = pysam.AlignmentFile(name, "r", threads=threads,
                                     reference_filename=None if reference is None else os.fspath(reference))
    except (ValueError, OSError) as err:
        raise InputError(f"htslib cannot read this as BAM/CRAM/SAM ({err}); check it with "
                         f"`samtools quickcheck -v {name}`", path=name) from err
    if handle.format not in ("BAM", "CRAM", "SAM"):
        handle.close()
        raise InputError(f"expected a BAM or CRAM file, found {handle.format}", path=name)
    return handle


def _require_index(handle, name: str) -> None:
    if not handle.has_index():
        raise InputError(f"a region needs an index, and this file has none; run `samtools index {name}` "
                         "(the file must be sorted by position: `samtools sort`)", path=name)


def _fetch(handle, name: str, region):
    """Iterator over the alignments in `region` (a Region, a 'chr:1-100' string, or None)."""
    if region is None:
        return handle.fetch(until_eof=True)
    _require_index(handle, name)
    if isinstance(region, str):
        from genossm.io.intervals import parse_region

        lengths = dict(zip(handle.references, handle.lengths))
        region = parse_region(region, lengths, source=name)
    if region.contig not in handle.references:
        known = ", ".join(handle.references[:5]) + (", ..." if handle.nreferences > 5 else "")
        raise InputError(f"contig {region.contig!r} is not in this file's header; its contigs are: "
                         f"{known}", path=name)
    return handle.fetch(region.contig, region.start, region.end)


def _flag_mask(exclude_unmapped, exclude_secondary, exclude_supplementary, exclude_duplicates,
               exclude_qcfail) -> int:
    """SAM flag bits that exclude a read (BAM_FUNMAP 4, SECONDARY 256, QCFAIL 512, DUP 1024, SUPP 2048)."""
    mask = 0
    for excluded, bit in ((exclude_unmapped, 0x4), (exclude_secondary, 0x100),
                          (exclude_qcfail, 0x200), (exclude_duplicates, 0x400),
                          (exclude_supplementary, 0x800)):
        if excluded:
            mask |= bit
    return mask


def stream_reads(path, region=None, *, min_mapq: int = 0, exclude_unmapped: bool = True,
                 exclude_secondary: bool = True, exclude_supplementary: bool = True,
                 exclude_duplicates: bool = True, exclude_qcfail: bool = True,
                 original_strand: bool = False, threads: int = 1,
                 reference: str | os.PathLike | None = None) -> Iterator[Read]:
    """Stream reads passing the filters, in file order (constant memory).

    `region`: None (the whole file, unmapped reads included unless excluded), a
    `genossm.io.intervals.Region` or a samtools-style string. `original_strand=True` returns
    reads on the minus strand reverse-complemented, i.e. as the sequencer read them. Reads with
    no stored sequence (`*`, e.g. secondary alignments) are skipped. `reference` is the FASTA a
    CRAM was compressed against.
    """
    name = os.fspath(path)
    mask = _flag_mask(exclude_unmapped, exclude_secondary, exclude_supplementary,
                      exclude_duplicates, exclude_qcfail)
    with open_alignments(path, threads=threads, reference=reference) as handle:
        if region is not None and not exclude_unmapped:
            log.debug("%s: unmapped reads without a position are not in a region", name)
        try:
            for alignment in _fetch(handle, name, region):
                if alignment.flag & mask or alignment.mapping_quality < min_mapq:
                    continue
                sequence = alignment.query_sequence
                if not sequence:
                    continue
                if original_strand and alignment.is_reverse:
                    sequence = reverse_complement(sequence)
                if alignment.is_unmapped:
                    contig, start, end = None, -1, -1
                else:
                    contig, start, end = alignment.reference_name, alignment.reference_start, alignment.reference_end
                yield Read(alignment.query_name, sequence, contig, start, end,
                           alignment.mapping_quality, alignment.is_reverse)
        except OSError as err:
            raise InputError(f"could not read the alignments ({err}); the file may be truncated "
                             f"(`samtools quickcheck -v {name}`)", path=name) from err


def coverage(path, contig: str, start: int, end: int, *, min_mapq: int = 0,
             exclude_secondary: bool = True, exclude_supplementary: bool = True,
             exclude_duplicates: bool = True, exclude_qcfail: bool = True, threads: int = 1,
             reference: str | os.PathLike | None = None) -> np.ndarray:
    """Per-base depth over [start, end) of `contig` (0-based), int32 of length end - start.

    Counts the aligned bases (A, C, G or T; pysam's `count_coverage`) of mapped reads passing the
    filters, with no base quality threshold. Deletions, reference skips and N bases do not count.
    """
    name = os.fspath(path)
    mask = _flag_mask(True, exclude_secondary, exclude_supplementary, exclude_duplicates, exclude_qcfail)

    def keep(alignment) -> bool:
        return not alignment.flag & mask and alignment.mapping_quality >= min_mapq

    with open_alignments(path, threads=threads, reference=reference) as handle:
        _require_index(handle, name)
        if contig not in handle.references:
            raise InputError(f"contig {contig!r} is not in this BAM's header", path=name)
        length = handle.get_reference_length(contig)
        if not 0 <= start <= end <= length:
            raise InputError(f"interval {contig}:{start}-{end} (0-based) is outside the contig "
                             f"(length {length})", path=name)
        if start == end:
            return np.zeros(0, dtype=np.int32)
        per_base = handle.count_coverage(contig, start, end, quality_threshold=0, read_callback=keep)
        return np.sum(np.asarray(per_base, dtype=np.int64), axis=0).astype(np.int32)  # (end - start,)


def bam_summary(path, *, reference: str | os.PathLike | None = None) -> dict:
    """Format, sort order, index, mapped/unmapped alignment records, contigs with lengths.

    Counts are alignment records as `samtools idxstats` gives them (secondary and supplementary
    alignments included): read from a BAM's index when there is one, else (CRAM, SAM, no index)
    by one pass over the file.
    """
    name = os.fspath(path)
    with open_alignments(path, reference=reference) as handle:
        contigs = {ref: handle.get_reference_length(ref) for ref in handle.references}
        indexed = handle.has_index()
        if indexed and handle.format == "BAM":  # a .crai holds no counts
            stats = handle.get_index_statistics()
            mapped = sum(stat.mapped for stat in stats)
            unmapped = sum(stat.unmapped for stat in stats) + handle.nocoordinate
        else:
            mapped = unmapped = 0
            try:
                for alignment in handle.fetch(until_eof=True):
                    if alignment.is_unmapped:
                        unmapped += 1
                    else:
                        mapped += 1
            except OSError as err:
                raise InputError(f"could not read the alignments ({err}); the file may be "
                                 "truncated", path=name) from err
        return {
            "format": handle.format,
            "sort_order": handle.header.to_dict().get("HD", {}).get("SO", "unknown"),
            "indexed": indexed,
            "reads_mapped": mapped,
            "reads_unmapped": unmapped,
            "contigs": contigs,
        }
