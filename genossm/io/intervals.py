"""Genomic intervals: the `Region` record, samtools-style region strings and BED files.

One convention inside genossm: 0-based, half-open `[start, end)`, as BED stores it and as Python
slices work. Strings people type ("chr1:1,001-2,000") are 1-based and inclusive, as samtools and
genome browsers show them; `parse_region` and `str(region)` convert at the edge.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import lzma
import os
import re
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from genossm.errors import InputError
from genossm.io import compression
from genossm.io.fasta import Genome, contig_aliases

STRANDS = ("+", "-", ".")
_BED_SUFFIXES = (".bed", ".bed.gz", ".bed.bgz", ".bed.bz2", ".bed.xz")
_POSITION = re.compile(r"^[0-9][0-9,]*$")


@dataclasses.dataclass(frozen=True)
class Region:
    """A genomic interval, 0-based half-open. `name` defaults to its region string.

    `source` and `line` remember where the region was read (for error messages only; they take
    no part in equality or hashing).
    """

    contig: str
    start: int
    end: int
    name: str | None = None
    strand: str = "+"
    source: str | None = dataclasses.field(default=None, compare=False, repr=False)
    line: int | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.contig:
            raise InputError("region has an empty contig name", path=self.source, line=self.line)
        if self.start < 0 or self.end < self.start:
            raise InputError(f"region {self.contig}:[{self.start}, {self.end}) is invalid: expected "
                             "0 <= start <= end (0-based, half-open)", path=self.source, line=self.line)
        if self.strand not in STRANDS:
            raise InputError(f"strand {self.strand!r} is invalid: expected one of + - .",
                             path=self.source, line=self.line)
        if self.name is None:
            object.__setattr__(self, "name", str(self))

    def __str__(self) -> str:
        """samtools style, 1-based inclusive: `chr1:1001-2000` for [1000, 2000)."""
        return f"{self.contig}:{self.start + 1}-{self.end}"

    @property
    def length(self) -> int:
        return self.end - self.start

    def with_contig(self, contig: str) -> "Region":
        """The same interval under another contig name (the genome's own spelling); a default
        name is recomputed, a given one kept."""
        name = None if self.name == str(self) else self.name
        return dataclasses.replace(self, contig=contig, name=name)


def _parse_position(text: str, spec: str, source: str | None, line: int | None) -> int:
    text = text.strip()
    if not _POSITION.match(text):
        raise InputError(f"region {spec!r}: position {text!r} is not a whole number; expected "
                         "'contig:start-end' (1-based, inclusive, commas allowed), e.g. chr1:1,001-2,000",
                         path=source, line=line)
    return int(text.replace(",", ""))


def parse_region(spec: str, contig_lengths: Mapping[str, int] | None = None, *,
                 source: str | None = None, line: int | None = None) -> Region:
    """'chr1:1,001-2,000' -> Region('chr1', 1000, 2000): 1-based inclusive, as samtools.

    Accepted forms: `contig:start-end`, `contig:start-` and `contig:start` (to the contig's end),
    and `contig` alone (the whole contig); the open-ended forms need `contig_lengths`. A contig
    name holding ':' is written in braces, `{HLA-A*01:01}:1-100`, or alone when it is in
    `contig_lengths`.
    """
    text = spec.strip()
    if not text:
        raise InputError("empty region string; expected 'contig:start-end', e.g. chr1:1,001-2,000",
                         path=source, line=line)
    if contig_lengths is not None and text in contig_lengths:
        return Region(text, 0, contig_lengths[text], source=source, line=line)
    if text.startswith("{"):
        closing = text.find("}")
        if closing < 0 or (closing + 1 < len(text) and text[closing + 1] != ":"):
            raise InputError(f"region {spec!r}: expected '{{contig}}' or '{{contig}}:start-end'",
                             path=source, line=line)
        contig, coordinates = text[1:closing], text[closing + 2 :] if closing + 1 < len(text) else None
    elif ":" in text:
        contig, _, coordinates = text.rpartition(":")
    else:
        contig, coordinates = text, None

    length = _contig_length(contig, contig_lengths)
    if coordinates is None:
        if length is None:
            raise InputError(_needs_length_message(spec, contig, contig_lengths), path=source, line=line)
        return Region(contig, 0, length, source=source, line=line)

    start_text, dash, end_text = coordinates.partition("-")
    start = _parse_position(start_text, spec, source, line)
    if dash and end_text.strip():
        end = _parse_position(end_text, spec, source, line)
    elif length is not None:
        end = length
    else:
        raise InputError(_needs_length_message(spec, contig, contig_lengths), path=source, line=line)
    if start < 1:
        raise InputError(f"region {spec!r}: positions are 1-based, so start must be at least 1",
                         path=source, line=line)
    if end < start:
        raise InputError(f"region {spec!r}: end {end} is before start {start}", path=source, line=line)
    return Region(contig, start - 1, end, source=source, line=line)


def _contig_length(contig: str, contig_lengths: Mapping[str, int] | None) -> int | None:
    """Length of `contig`, also under its usual aliases (chr1 <-> 1, chrM <-> MT)."""
    if contig_lengths is None:
        return None
    for alias in contig_aliases(contig):
        if alias in contig_lengths:
            return contig_lengths[alias]
    return None


def _needs_length_message(spec: str, contig: str, contig_lengths: Mapping[str, int] | None) -> str:
    if contig_lengths is None:
        return (f"region {spec!r} runs to the end of contig {contig!r}, whose length is unknown "
                "here; give an end (e.g. chr1:1,001-2,000) or a genome")
    return (f"region {spec!r}: contig {contig!r} is not in the genome; give an explicit "
            "'contig:start-end' or check the contig name")


def _open_text(path: Path):
    """Text lines of a plain, gzip/bgzip, bzip2 or xz file."""
    kind = compression.sniff_compression(path)
    if kind in (compression.GZIP, compression.BGZF):
        return gzip.open(path, "rt", encoding="utf-8")
    if kind == compression.BZIP2:
        return bz2.open(path, "rt", encoding="utf-8")
    if kind == compression.XZ:
        return lzma.open(path, "rt", encoding="utf-8")
    if kind != compression.NONE:
        raise InputError(f"cannot read this BED file: {compression.fix_hint(kind, path)}", path=path)
    return open(path, "rt", encoding="utf-8")


def _parse_coordinate(field: str, column: str, path: Path, line: int, first_record: bool) -> int:
    try:
        value = int(field)
    except ValueError:
        hint = " (a header of column names? start it with '#')" if first_record else ""
        raise InputError(f"BED {column} {field!r} is not an integer{hint}; expected tab-separated "
                         "'chrom start end [name score strand]' with 0-based start", path=path,
                         line=line) from None
    if value < 0:
        raise InputError(f"BED {column} {value} is negative; BED coordinates are 0-based and "
                         "non-negative", path=path, line=line)
    return value


def iter_bed(path: str | os.PathLike) -> Iterator[Region]:
    """Regions of a BED3..BED6+ file, streamed; columns past the sixth are ignored.

    Blank lines, '#' comments and `track`/`browser` lines are skipped. Fields are split on tabs
    (as the format says) or, in a file without tabs, on runs of spaces.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("BED file not found; check the path", path=path)
    first_record = True
    with _open_text(path) as handle:
        try:
            for line_number, text in enumerate(handle, start=1):
                text = text.rstrip("\r\n")
                if not text.strip() or text.startswith("#") or text.split(None, 1)[0] in ("track", "browser"):
                    continue
                fields = text.split("\t") if "\t" in text else text.split()
                if len(fields) < 3:
                    raise InputError(f"BED line has {len(fields)} column(s); expected at least 3 "
                                     "(chrom, start, end), separated by tabs", path=path, line=line_number)
                contig = fields[0].strip()
                start = _parse_coordinate(fields[1].strip(), "start", path, line_number, first_record)
                end = _parse_coordinate(fields[2].strip(), "end", path, line_number, first_record)
                first_record = False
                if end < start:
                    raise InputError(f"BED end {end} is before start {start}", path=path, line=line_number)
                name = fields[3].strip() if len(fields) > 3 and fields[3].strip() not in ("", ".") else None
                strand = fields[5].strip() if len(fields) > 5 else "+"
                if strand not in STRANDS:
                    raise InputError(f"BED strand {strand!r} (column 6) is invalid; expected +, - or .",
                                     path=path, line=line_number)
                yield Region(contig, start, end, name=name, strand=strand, source=os.fspath(path),
                             line=line_number)
        except UnicodeDecodeError:
            raise InputError("BED file is not text (undecodable bytes); expected tab-separated "
                             "'chrom start end' lines", path=path) from None


def read_bed(path: str | os.PathLike) -> list[Region]:
    """All regions of a BED file (see `iter_bed`)."""
    return list(iter_bed(path))


def read_regions(specs: str | os.PathLike | Iterable[str | os.PathLike],
                 contig_lengths: Mapping[str, int] | None = None) -> list[Region]:
    """Regions from BED paths and region strings, in the order given.

    Each spec that names an existing file is read as BED; anything else is a region string
    (`chr1:1,001-2,000`). A spec ending in `.bed` (or `.bed.gz`) that does not exist is reported
    as a missing file rather than misread as a contig name.
    """
    if isinstance(specs, (str, os.PathLike)):
        specs = [specs]
    regions: list[Region] = []
    for spec in specs:
        text = os.fspath(spec)
        if os.path.isfile(text):
            regions.extend(iter_bed(text))
        elif text.lower().endswith(_BED_SUFFIXES):
            raise InputError("BED file not found; check the path", path=text)
        else:
            regions.append(parse_region(text, contig_lengths))
    return regions


def check_regions(regions: Iterable[Region], genome: "Genome") -> list[Region]:
    """Regions with contig names as spelled in `genome` (chr1/1, chrM/MT resolved), each checked
    to lie within its contig. Errors name the BED line a region came from."""
    checked = []
    for region in regions:
        try:
            contig = genome.resolve(region.contig)
        except InputError as err:
            raise InputError(f"region {region}: {err.message}", path=region.source or err.path,
                             line=region.line) from None
        length = genome.contigs[contig]
        if region.end > length:
            raise InputError(f"region {region} ends past the end of contig {contig!r} (length "
                             f"{length}) in {genome.path}", path=region.source, line=region.line)
        checked.append(region if contig == region.contig else region.with_contig(contig))
    return checked
