"""Which records `genossm score` reads: -r/--regions and -R/--regions-file, as `bcftools view` reads them.

A record is kept when it overlaps a region: its REF span POS..POS+len(REF)-1 meets the region's
bases (bcftools' default `--regions-overlap 1`); records outside every region are not written.
Regions are 1-based and inclusive:

    -r chr1,chr2:1000-2000,chr3:500      a contig, a range, one base (chr3:500-500); chr:beg- runs
                                         to the contig's end
    -R regions.bed                       BED (name ending .bed or .bed.gz): 0-based start, end
                                         exclusive, as BED defines them
    -R regions.tsv                       tab-separated CHROM POS [END], 1-based, END = POS if absent

With an indexed input (a .tbi or .csi beside a bgzip VCF or BCF), records are read from the
index for each region, so only those regions are decompressed. Without one, -R filters the
records while they stream past (stdin, plain VCF, unindexed files); -r then asks for an index,
as bcftools does, and says how to make one or to use -R. Either way each record comes out once,
in input order (regions are merged and walked in the order of the input's contigs).
"""

from __future__ import annotations

import bisect
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

from genossm.errors import InputError, UsageError
from genossm.io import vcf

WHOLE_CONTIG_END = 2 ** 31 - 1


@dataclass(frozen=True)
class Regions:
    """Merged, sorted 1-based inclusive intervals per contig; `source` names them for messages."""

    intervals: dict[str, list[tuple[int, int]]]
    source: str
    from_file: bool = False
    _starts: dict[str, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_starts", {contig: [beg for beg, _ in spans]
                                             for contig, spans in self.intervals.items()})

    def overlaps(self, contig: str, beg: int, end: int) -> bool:
        """Whether bases beg..end (1-based, inclusive) of `contig` meet a region."""
        spans = self.intervals.get(contig)
        if not spans:
            return False
        index = bisect.bisect_right(self._starts[contig], end) - 1  # the last region starting <= end
        return index >= 0 and spans[index][1] >= beg


def merged(spans: dict[str, list[tuple[int, int]]], source: str, from_file: bool) -> Regions:
    intervals = {}
    for contig, items in spans.items():
        out: list[tuple[int, int]] = []
        for beg, end in sorted(items):
            if out and beg <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((beg, end))
        intervals[contig] = out
    return Regions(intervals, source, from_file)


def parse_regions(text: str) -> Regions:
    """-r: comma-separated `chr`, `chr:pos`, `chr:beg-end` or `chr:beg-`."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for item in text.split(","):
        contig, beg, end = _parse_region(item.strip(), text)
        spans.setdefault(contig, []).append((beg, end))
    return merged(spans, f"-r {text}", from_file=False)


def _parse_region(item: str, text: str) -> tuple[str, int, int]:
    if not item:
        raise UsageError(f"-r/--regions {text!r} has an empty region; expected chr, chr:pos or chr:beg-end, "
                         "comma-separated")
    contig, colon, span = item.rpartition(":")
    if not colon or not span.replace("-", "").isdigit():
        return item, 1, WHOLE_CONTIG_END  # a whole contig (its name may hold ':')
    beg_text, dash, end_text = span.partition("-")
    try:
        beg = int(beg_text)
        end = (int(end_text) if end_text else WHOLE_CONTIG_END) if dash else beg
    except ValueError:
        raise UsageError(f"-r/--regions: cannot read {item!r}; expected chr, chr:pos or chr:beg-end") from None
    if beg < 1 or end < beg:
        raise UsageError(f"-r/--regions: {item!r} is not a range of bases (1-based, beg <= end)")
    return contig, beg, end


def read_regions_file(path: str | os.PathLike) -> Regions:
    """-R: BED (a name ending .bed or .bed.gz) or tab-separated CHROM POS [END] (1-based)."""
    name = os.fspath(path)
    if not Path(name).is_file():
        raise UsageError(f"-R/--regions-file {name}: no such file (expected BED or CHROM<TAB>POS[<TAB>END] lines)")
    bed = name.endswith((".bed", ".bed.gz"))
    opener = gzip.open if name.endswith(".gz") else open
    spans: dict[str, list[tuple[int, int]]] = {}
    with opener(name, "rt") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip() or line.startswith(("#", "track ", "browser ")):
                continue
            columns = line.rstrip("\r\n").split("\t")
            try:
                beg = int(columns[1])
                end = int(columns[2]) if len(columns) > 2 and columns[2] else (beg if not bed else None)
            except (IndexError, ValueError):
                raise InputError(f"expected {'CHROM START END (BED, tab-separated)' if bed else 'CHROM POS [END], tab-separated'}"
                                 f", found {line.strip()[:80]!r}", path=name, line=number) from None
            if end is None:
                raise InputError("a BED line needs CHROM, START and END", path=name, line=number)
            if bed:
                beg += 1  # BED: 0-based start, exclusive end -> 1-based inclusive
            if beg < 1 or end < beg:
                raise InputError(f"not a range of bases: {line.strip()[:80]!r}", path=name, line=number)
            spans.setdefault(columns[0], []).append((beg, end))
    return merged(spans, f"-R {name}", from_file=True)


def indexed(path: str) -> bool:
    """Whether `path` is a file with a .tbi or .csi index beside it (what a jump needs)."""
    return path != "-" and any(Path(f"{path}{suffix}").is_file() for suffix in (".tbi", ".csi"))


def check_regions(regions: Regions | None, input_path: str) -> None:
    """-r reads through an index, as in bcftools: a usage error, before any work, without one."""
    if regions is not None and not regions.from_file and not indexed(input_path):
        where = "stdin" if input_path == "-" else f"{input_path} (no .tbi or .csi beside it)"
        raise UsageError(f"-r/--regions needs an indexed input, found {where}; index it (`bcftools index "
                         "calls.vcf.gz`, after `bgzip` for a plain VCF), or give the regions as a file with "
                         "-R, which also filters a stream or an unindexed file while reading")


def selected_records(reader: vcf.VcfReader, input_path: str, regions: Regions | None):
    """The records of `reader` that overlap `regions` (all of them without regions), in input order."""
    if regions is None:
        return iter(reader)
    if indexed(input_path):
        return _jump(reader, input_path, regions)
    return (record for record in reader
            if regions.overlaps(record.record.contig, record.record.pos, record.record.stop))


def _jump(reader: vcf.VcfReader, input_path: str, regions: Regions):
    """Records from the index, region by region in the input's contig order, each once."""
    import pysam

    number = 0
    with pysam.VariantFile(input_path) as indexed_file:
        known = set(indexed_file.index or ())
        for contig in reader.header.contigs:
            if contig not in known:
                continue
            previous_end = 0
            for beg, end in regions.intervals.get(contig, ()):
                for record in indexed_file.fetch(contig, beg - 1, min(end, WHOLE_CONTIG_END)):
                    if record.start + 1 <= previous_end:
                        continue  # it overlaps the previous region too, and came out there
                    number += 1
                    yield vcf.VcfRecord(record, None, number,
                                        vcf.make_variants(contig, record.pos, record.ref, record.alts, None))
                previous_end = end
