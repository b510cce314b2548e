"""Per-position labels from an interval file: which bases of each region are positive.

`genossm finetune --positions sites.bed` trains a per-position (token) head without a label
column: every base of a training region that overlaps an interval of sites.bed is labelled 1,
every other base 0 (a splice donor as a 2-base interval, a gene start as a 1-base one, a binding
site as its span). BED coordinates are 0-based, half-open; `track`/`browser`/`#` lines skipped.

Strands: an interval with strand + or - (BED column 6) labels only regions on that strand (a
gene start on the minus strand is not one of the plus strand); '.' or no column labels both, and
a region without a strand ('.') takes every interval.
Contig names must be spelled as in the regions (no chr1/1 aliasing). A region on strand '-' is
read as its reverse complement, so its label string is reversed the same way: label j is that
of the j-th base read.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from genossm.errors import InputError
from genossm.finetune.data import Example, open_text

POSITIVE, NEGATIVE = "1", "0"
CLASSES = (NEGATIVE, POSITIVE)


@dataclasses.dataclass
class PositiveIntervals:
    """Intervals per contig, sorted by start, for overlap queries."""

    starts: dict[str, list[int]]
    ends: dict[str, list[int]]
    strands: dict[str, list[str]]
    longest: dict[str, int]  # longest interval per contig: how far left an overlap can start

    def __len__(self) -> int:
        return sum(len(v) for v in self.starts.values())

    def overlapping(self, chrom: str, start: int, end: int, strand: str) -> Iterable[tuple[int, int]]:
        """(start, end) of the intervals overlapping [start, end) that apply to a region on
        `strand` (+, -, or '.': every interval)."""
        starts = self.starts.get(chrom)
        if not starts:
            return
        first = bisect.bisect_left(starts, start - self.longest[chrom] + 1)
        last = bisect.bisect_left(starts, end)
        for i in range(first, last):
            if self.ends[chrom][i] > start and (strand == "." or self.strands[chrom][i] in (".", strand)):
                yield starts[i], self.ends[chrom][i]


def read_intervals_files(paths: Sequence[str | os.PathLike]) -> PositiveIntervals:
    """The intervals of one or more BED files, together."""
    rows: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for path in paths:
        _read_bed_rows(Path(path), rows)
    if not rows:
        raise InputError("no intervals in the positions file(s) " + ", ".join(map(str, paths)))
    starts, ends, strands, longest = {}, {}, {}, {}
    for chrom, items in rows.items():
        items.sort()
        starts[chrom] = [s for s, _, _ in items]
        ends[chrom] = [e for _, e, _ in items]
        strands[chrom] = [t for _, _, t in items]
        longest[chrom] = max(e - s for s, e, _ in items)
    return PositiveIntervals(starts, ends, strands, longest)


def _read_bed_rows(path: Path, rows: dict[str, list[tuple[int, int, str]]]) -> None:
    # Not genossm.io.intervals.iter_bed: it reads a missing strand column as '+', and here a
    # BED3 interval must label both strands.
    if not path.is_file():
        raise InputError("positions file not found; check the path", path=path)
    with open_text(path) as handle:
        for line_number, text in enumerate(handle, start=1):
            if not text.strip() or text.startswith(("#", "track", "browser")):
                continue
            fields = text.rstrip("\r\n").split("\t")
            try:
                start, end = int(fields[1]), int(fields[2])
            except (IndexError, ValueError):
                raise InputError("expected BED: chrom, start, end (tab-separated, 0-based)",
                                 path=path, line=line_number) from None
            if start < 0 or end <= start:
                raise InputError(f"interval [{start}, {end}) is empty or negative", path=path, line=line_number)
            strand = fields[5] if len(fields) > 5 else "."
            if strand not in ("+", "-", "."):
                raise InputError(f"strand {strand!r}: expected +, - or .", path=path, line=line_number)
            rows[fields[0]].append((start, end, strand))


def position_labels(example: Example, intervals: PositiveIntervals) -> str:
    """One '0'/'1' per base of the region, in the order its bases are read (strand-aware)."""
    if example.start is None:
        raise InputError(f"--positions labels regions (chrom, start, end); {example.name!r} is a "
                         f"sequence{example.where}")
    strand = example.strand
    labels = np.zeros(example.end - example.start, dtype=bool)
    for start, end in intervals.overlapping(example.chrom, example.start, example.end, strand):
        labels[max(start, example.start) - example.start:min(end, example.end) - example.start] = True
    if strand == "-":
        labels = labels[::-1]
    return "".join(np.where(labels, POSITIVE, NEGATIVE))


def label_examples(examples: list[Example], intervals: PositiveIntervals) -> list[Example]:
    """The examples with their labels replaced by their per-position label strings."""
    return [dataclasses.replace(e, labels=(position_labels(e, intervals),)) for e in examples]


def check_some_positive(examples: list[Example], paths: Sequence[str | os.PathLike]) -> None:
    """A training set without one positive base would train a head that always says 0."""
    if not any(POSITIVE in e.labels[0] for e in examples):
        contigs = sorted({e.chrom for e in examples})[:5]
        raise InputError(f"no base of the training regions overlaps an interval of {', '.join(map(str, paths))}; "
                         f"check that both name contigs alike (regions: {', '.join(contigs)}) and that "
                         "the strands match")
