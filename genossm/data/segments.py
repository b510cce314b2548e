"""Where training, validation and test windows may come from: segments of indexed FASTA files.

A `Segment` is a half-open stretch of one contig of one FASTA file. Training data is a list of
segments (whole contigs by default, or the regions of a BED file), and held-out data is either
other files (`--val-fasta`, `--test-fasta`: whole genomes held out) or the tail of every contig
(`held_out_regions`). Windows are always drawn entirely inside one segment, so windows of
different splits can never overlap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from genossm.errors import InputError


@dataclass(frozen=True)
class Segment:
    """A stretch `[start, end)` (0-based, half-open) of contig `contig` in FASTA file `path`."""

    path: str
    contig: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def _contig_lengths(path: str) -> dict[str, int]:
    from genossm.io.fasta import open_fasta

    with open_fasta(path) as genome:
        return dict(genome.contigs)


def contig_segments(paths: Iterable[str | os.PathLike]) -> list[Segment]:
    """Every contig of every FASTA file, whole."""
    segments = []
    for path in paths:
        path = os.fspath(path)
        if not Path(path).exists():
            raise InputError("FASTA file not found; check the path", path=path)
        for contig, length in _contig_lengths(path).items():
            if length > 0:
                segments.append(Segment(path, contig, 0, length))
    return segments


def bed_segments(paths: Sequence[str | os.PathLike], bed_path: str | os.PathLike) -> list[Segment]:
    """The regions of a BED file, each looked up in the FASTA file(s) that hold its contig."""
    from genossm.io.intervals import read_bed

    lengths = {os.fspath(path): _contig_lengths(os.fspath(path)) for path in paths}
    segments = []
    for number, region in enumerate(read_bed(bed_path), start=1):
        holders = [path for path, contigs in lengths.items() if region.contig in contigs]
        if not holders:
            known = sorted({name for contigs in lengths.values() for name in contigs})[:10]
            raise InputError(
                f"BED region {region.contig}:{region.start}-{region.end} names a contig that no "
                f"FASTA file holds (known contigs include: {', '.join(known)}); fix the BED or "
                "add the FASTA that holds it", path=bed_path, line=number,
            )
        for path in holders:
            end = min(region.end, lengths[path][region.contig])
            if end > region.start:
                segments.append(Segment(path, region.contig, region.start, end))
    if not segments:
        raise InputError("the BED file holds no region of positive length", path=bed_path)
    return segments


def held_out_regions(segments: Sequence[Segment], val_fraction: float, test_fraction: float,
                     ) -> tuple[list[Segment], list[Segment], list[Segment]]:
    """Split every segment into a training head, a test middle and a validation tail.

    `[start, a)` trains, `[a, b)` tests and `[b, end)` validates, with the test and validation
    parts `test_fraction` and `val_fraction` of the segment's length. One cut per contig keeps
    long held-out stretches (windows of any length fit) and needs no hand-made BED.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise InputError(
            f"held-out fractions must be in [0, 1) and sum to less than 1, got val={val_fraction} "
            f"and test={test_fraction}; set data.val_fraction / data.test_fraction"
        )
    train, val, test = [], [], []
    for segment in segments:
        val_length = round(segment.length * val_fraction)
        test_length = round(segment.length * test_fraction)
        train_end = segment.end - val_length - test_length
        test_end = train_end + test_length
        if train_end > segment.start:
            train.append(Segment(segment.path, segment.contig, segment.start, train_end))
        if test_length:
            test.append(Segment(segment.path, segment.contig, train_end, test_end))
        if val_length:
            val.append(Segment(segment.path, segment.contig, test_end, segment.end))
    return train, val, test


def total_length(segments: Sequence[Segment]) -> int:
    return sum(segment.length for segment in segments)
