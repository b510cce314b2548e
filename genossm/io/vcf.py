"""VCF / BCF in and out: stream records with normalised alleles, check REF, write scores back.

Reading (`read_variants`, `VcfReader`) accepts VCF, bgzip VCF, BCF, plain-gzip VCF and `-` for
stdin. htslib (through pysam) parses the records; what it cannot do, this module does in front
of it:

* a plain `gzip` file (not bgzip) and anything compressed on stdin are decompressed here and fed
  to htslib through a pipe, because htslib asks a gzip stream for its position on open and fails;
* line numbers: htslib does not report them, so the text header is counted here and a record's
  line is `header lines + record number` (htslib rejects blank lines, so records are consecutive
  lines). BCF has no lines: `line` is None there and errors name the record number instead;
* a header without `##fileformat` or without `#CHROM` is reported as such, not as "invalid file".

Records come through exactly as in the file: unsorted input, duplicates and contigs missing from
the header (htslib adds those to the in-memory header with a warning) are kept, in order. Each
`VcfRecord` holds one `Variant` per ALT allele (a `.` ALT gives one MISSING variant).

Normalisation of a Variant (`start`, `norm_ref`, `norm_alt`): the shared suffix of REF and ALT is
stripped first, then the shared prefix, without looking at the genome (no left-shifting through
repeats). `start` is the 0-based position of the first changed reference base, `norm_ref` the
changed reference bases ("" for a pure insertion, which then sits before reference base `start`)
and `norm_alt` the bases replacing them ("" for a pure deletion). Stripping the suffix first puts
an ambiguous indel as far left as the written alleles allow, as `bcftools norm` does without a
reference. SYMBOLIC, STAR and MISSING alleles are not normalised: `start = pos - 1`,
`norm_ref = ref`, `norm_alt = alt`. The kind is read from the normalised alleles: SNV (1 vs 1
base), MNV (n vs n, n > 1), INS (0 vs n), DEL (n vs 0), COMPLEX (anything else, including an
ALT identical to REF).

Writing (`VcfWriter`) copies each input line as htslib formats it (every column kept) and appends
the new INFO values; files are bgzip-compressed and tabix-indexed, `.bcf` files are BCF, `-` writes
plain VCF text to stdout.

Text that is not UTF-8 (Latin-1 IDs or INFO values from older tools) passes through byte for byte,
as bcftools does: pysam decodes it with `surrogateescape` and the writer encodes it back the same
way.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from genossm.atomic import atomic_path, remove_with_companions, temporary_path
from genossm.errors import InputError
from genossm.io import compression
from genossm.io.vcf_samples import set_format_fields

log = logging.getLogger("genossm.io.vcf")

# Variant kinds.
SNV = "SNV"
MNV = "MNV"
INS = "INS"
DEL = "DEL"
COMPLEX = "COMPLEX"
SYMBOLIC = "SYMBOLIC"
STAR = "STAR"
MISSING = "MISSING"
KINDS = (SNV, MNV, INS, DEL, COMPLEX, SYMBOLIC, STAR, MISSING)

# check_ref statuses (None means the REF agrees with the genome).
UNKNOWN_CONTIG = "unknown_contig"
OUT_OF_BOUNDS = "out_of_bounds"
REF_MISMATCH = "ref_mismatch"

_BCF_MAGIC = b"BCF\x02"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Variant:
    """One ALT allele of a VCF record; see the module docstring for the normalised fields."""

    contig: str
    pos: int  # 1-based POS as written in the VCF
    ref: str  # upper case
    alt: str  # upper case bases; "*", ".", "<DEL>" and breakends as written
    alt_index: int  # 0-based index among the record's ALT alleles
    kind: str
    line: int | None
    start: int  # 0-based start of the changed reference bases
    norm_ref: str
    norm_alt: str

    @property
    def end(self) -> int:
        """0-based exclusive end of the changed reference bases."""
        return self.start + len(self.norm_ref)


@dataclass
class VcfRecord:
    """A pysam record as read, where it was read, and its ALT alleles as Variants."""

    record: object  # pysam.VariantRecord
    line: int | None  # 1-based line in the (decompressed) text; None for BCF
    number: int  # 1-based record number
    variants: list[Variant] = field(default_factory=list)


def is_symbolic(alt: str) -> bool:
    """`<DEL>`-style alleles and breakends (`G]chr2:100]`, `G.`, `.G`)."""
    return (alt.startswith("<") or "[" in alt or "]" in alt
            or (len(alt) > 1 and (alt.startswith(".") or alt.endswith("."))))


def normalise(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """(0-based start, changed ref bases, changed alt bases): shared suffix, then prefix, removed."""
    suffix = 0
    while suffix < min(len(ref), len(alt)) and ref[-1 - suffix] == alt[-1 - suffix]:
        suffix += 1
    ref, alt = ref[: len(ref) - suffix], alt[: len(alt) - suffix]
    prefix = 0
    while prefix < min(len(ref), len(alt)) and ref[prefix] == alt[prefix]:
        prefix += 1
    return pos - 1 + prefix, ref[prefix:], alt[prefix:]


def classify(norm_ref: str, norm_alt: str) -> str:
    if len(norm_ref) == len(norm_alt) and norm_ref:
        return SNV if len(norm_ref) == 1 else MNV
    if not norm_ref and norm_alt:
        return INS
    if norm_ref and not norm_alt:
        return DEL
    return COMPLEX


def make_variants(contig: str, pos: int, ref: str, alts: Sequence[str] | None,
                  line: int | None) -> list[Variant]:
    """One Variant per ALT (one MISSING Variant when ALT is `.`)."""
    ref = ref.upper()
    if not alts:
        return [Variant(contig, pos, ref, ".", 0, MISSING, line, pos - 1, ref, ".")]
    variants = []
    for alt_index, alt in enumerate(alts):
        if alt == "*":
            kind = STAR
        elif alt == ".":
            kind = MISSING
        elif is_symbolic(alt):
            kind = SYMBOLIC
        else:
            kind = None
        if kind is None:
            alt = alt.upper()
            start, norm_ref, norm_alt = normalise(pos, ref, alt)
            kind = classify(norm_ref, norm_alt)
        else:
            start, norm_ref, norm_alt = pos - 1, ref, alt
        variants.append(Variant(contig, pos, ref, alt, alt_index, kind, line, start, norm_ref, norm_alt))
    return variants


# ---------------------------------------------------------------------------------------------
# Opening: header checks, line numbers, and decompression htslib cannot do on a stream.


def _display_name(path) -> str:
    return "<stdin>" if path == "-" else os.fspath(path)


class _HeaderScan:
    """Counts text header lines and checks the two that htslib needs, from decompressed bytes."""

    def __init__(self, name: str):
        self.name = name
        self.lines = 0
        self.first_line = None
        self.done = False
        self._partial = b""

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        for line in complete:
            if self.first_line is None:
                self.first_line = line
            if not line.startswith(b"#"):
                self._finish(found_record=True)
                return
            self.lines += 1
            if line.startswith(b"#CHROM"):
                self.done = True
                self._check_first_line()
                return

    def end_of_input(self) -> None:
        if self.done:
            return
        if self._partial:
            self.feed(b"\n")
            if self.done:
                return
        self._finish(found_record=False)

    def _check_first_line(self) -> None:
        if self.first_line is None or not self.first_line.startswith(b"##fileformat="):
            found = "an empty file" if self.first_line is None else repr(self.first_line[:40].decode("utf-8", "replace"))
            raise InputError(
                f"not a VCF: expected the first line to be '##fileformat=VCFv4.x', found {found}; "
                "add the VCF header (e.g. take it from `bcftools view -h` of the source file)",
                path=self.name, line=1)

    def _finish(self, found_record: bool) -> None:
        self._check_first_line()
        where = "before the first record" if found_record else "in the file"
        raise InputError(
            f"VCF header has no '#CHROM\\tPOS\\tID\\tREF\\tALT\\tQUAL\\tFILTER\\tINFO' line {where}; "
            "add it as the last header line", path=self.name, line=self.lines + 1)


def _gunzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a stream of gzip members (plain gzip or BGZF) chunk by chunk."""
    decompressor, member_started = zlib.decompressobj(zlib.MAX_WBITS | 16), False
    for chunk in chunks:
        while chunk:
            member_started = True
            yield decompressor.decompress(chunk)
            if decompressor.eof:
                chunk = decompressor.unused_data
                decompressor, member_started = zlib.decompressobj(zlib.MAX_WBITS | 16), False
            else:
                chunk = b""
    if member_started:
        # zlib returns what it has without complaint; a cut download must not pass as complete.
        raise EOFError("the compressed stream ends in the middle of a gzip member")


def _read_chunks(handle: IO[bytes], first: bytes = b"") -> Iterator[bytes]:
    if first:
        yield first
    while chunk := handle.read(_CHUNK):
        yield chunk


class _Pump:
    """Feeds bytes to htslib through a pipe from a thread: `/dev/fd/N` is what pysam opens.

    The header is read (and checked) in the caller's thread before the pump starts, so header
    errors surface as InputError; the rest streams with constant memory.
    """

    def __init__(self, head: list[bytes], rest: Iterator[bytes]):
        self.read_fd, write_fd = os.pipe()
        self.error: BaseException | None = None
        self._writer = os.fdopen(write_fd, "wb")
        self._thread = threading.Thread(target=self._run, args=(head, rest), daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        return f"/dev/fd/{self.read_fd}"

    def _run(self, head, rest):
        try:
            with self._writer:
                for chunk in head:
                    self._writer.write(chunk)
                for chunk in rest:
                    self._writer.write(chunk)
        except BrokenPipeError:
            pass  # the reader stopped early (closed the file): nothing left to do
        except BaseException as err:  # reported by the reader when it sees the stream end
            self.error = err

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        self._thread.join(timeout=5)


def _scan_header_of(chunks: Iterator[bytes], name: str) -> tuple[_HeaderScan, list[bytes]]:
    """Consume decompressed chunks until the header ends; return the scan and what was read."""
    scan, consumed = _HeaderScan(name), []
    for chunk in chunks:
        consumed.append(chunk)
        scan.feed(chunk)
        if scan.done:
            return scan, consumed
    scan.end_of_input()
    return scan, consumed


def _pass_through_text() -> None:
    """pysam decodes strings strictly by default: let bytes that are not UTF-8 through, escaped."""
    from pysam import libcutils

    libcutils.set_encoding_error_handler("surrogateescape")


class VcfReader:
    """An open VCF/BCF: `header` (pysam.VariantHeader) and iteration over `VcfRecord`s.

    >>> with VcfReader("calls.vcf.gz") as reader:          # doctest: +SKIP
    ...     for record in reader:
    ...         print(record.line, [v.kind for v in record.variants])
    """

    def __init__(self, path: str | os.PathLike):
        import pysam

        _pass_through_text()
        self.name = _display_name(path)
        self._pump: _Pump | None = None
        self._raw: IO[bytes] | None = None
        self._file = None
        try:
            open_path, self.header_lines = self._prepare(path)
        except BaseException:
            self.close()
            raise
        # Quiet while opening: htslib reports a missing .tbi/.csi as an error, but streaming
        # needs no index. Parse warnings while reading (undeclared contigs...) stay visible.
        verbosity = pysam.set_verbosity(0)
        try:
            self._file = pysam.VariantFile(open_path)
        except (ValueError, OSError) as err:
            self.close()
            raise InputError(f"htslib cannot read this as VCF/BCF ({err}); check the file with "
                             "`bcftools view -h`", path=self.name) from err
        finally:
            pysam.set_verbosity(verbosity)
        self.header = self._file.header

    def _prepare(self, path) -> tuple[str, int | None]:
        """Decide how htslib opens the input; returns (path for pysam, header line count)."""
        if path == "-":
            self._raw = sys.stdin.buffer
        else:
            if not Path(path).is_file():
                raise InputError("no such file (expected a VCF, VCF.gz or BCF)", path=self.name)
            self._raw = open(path, "rb")
        first = self._raw.read(_CHUNK)
        if not first:
            raise InputError("empty file: expected a VCF header starting with '##fileformat=VCFv4.x'",
                             path=self.name)
        kind = compression.sniff_bytes(first)
        if kind not in (compression.NONE, compression.GZIP, compression.BGZF):
            raise InputError(compression.fix_hint(kind, self.name), path=self.name)
        compressed = kind != compression.NONE
        if kind == compression.BGZF and path != "-" and not compression.has_bgzf_eof(path):
            raise InputError("bgzip file is truncated (it lacks the end-of-file block): an "
                             "interrupted download or copy? Fetch or write it again", path=self.name)
        if compressed and _gunzip_head(first).startswith(_BCF_MAGIC):
            if path != "-":
                self._raw.close()
                self._raw = None
                return os.fspath(path), None
            self._pump = _Pump([first], _read_chunks(self._raw))
            return self._pump.path, None
        text_chunks = _read_chunks(self._raw, first)
        if compressed:
            text_chunks = _gunzip_chunks(text_chunks)
        scan, head = _scan_header_of(text_chunks, self.name)
        if path != "-" and kind != compression.GZIP:
            # Plain text and BGZF files are opened by htslib itself (random access stays possible).
            self._raw.close()
            self._raw = None
            return os.fspath(path), scan.lines
        if kind == compression.GZIP and path != "-":
            log.info("%s is plain gzip, not bgzip: reading it sequentially", self.name)
        self._pump = _Pump(head, text_chunks)
        return self._pump.path, scan.lines

    def __iter__(self) -> Iterator[VcfRecord]:
        records = iter(self._file)
        number = 0
        declared = set(self.header.contigs)  # before reading: htslib adds undeclared ones later
        while True:
            number += 1
            line = None if self.header_lines is None else self.header_lines + number
            try:
                record = next(records)
            except StopIteration:
                self._raise_pump_error(line, number)
                return
            except (OSError, ValueError) as err:
                self._raise_pump_error(line, number)
                where = f"record {number}" if line is None else "this line"
                raise InputError(
                    f"htslib could not parse {where} ({err}): a malformed record (wrong number of "
                    "columns, non-numeric POS, blank line) or a truncated file; htslib's message "
                    "above names the problem", path=self.name, line=line) from err
            contig = record.contig
            if contig not in declared:
                declared.add(contig)
                log.warning("%s: contig %r is not declared in the VCF header; records kept",
                            self.name, contig)
            yield VcfRecord(record, line, number,
                            make_variants(contig, record.pos, record.ref, record.alts, line))

    def _raise_pump_error(self, line, number) -> None:
        if self._pump is not None and self._pump.error is not None:
            err = self._pump.error
            raise InputError(f"could not decompress the input ({err}); is the file truncated?",
                             path=self.name, line=line) from err

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._pump is not None:
            self._pump.close()
            self._pump = None
        if self._raw is not None and self._raw is not sys.stdin.buffer:
            self._raw.close()
        self._raw = None

    def __enter__(self) -> "VcfReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _gunzip_head(data: bytes) -> bytes:
    try:
        return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data, 16)
    except zlib.error:
        return b""


def read_variants(path: str | os.PathLike) -> Iterator[VcfRecord]:
    """Stream `VcfRecord`s from a VCF / VCF.gz / BCF file or `-` (stdin), in file order."""
    with VcfReader(path) as reader:
        yield from reader


# ---------------------------------------------------------------------------------------------
# REF against the genome.


def check_ref(variant: Variant, genome) -> str | None:
    """None when REF matches the genome, else UNKNOWN_CONTIG, OUT_OF_BOUNDS or REF_MISMATCH.

    Case is ignored. `N` is a wildcard on either side: an `N` in REF says the caller did not know
    the base (VCF allows it), and an `N` in the genome says the assembly does not know it, so
    neither is evidence of a mismatch. Other IUPAC codes must match exactly. `genome` is a
    `genossm.io.fasta.Genome` (anything with `contigs`, `resolve` and `fetch`).
    """
    try:
        contig = genome.resolve(variant.contig)
    except InputError:
        return UNKNOWN_CONTIG
    length = genome.contigs[contig]
    start, end = variant.pos - 1, variant.pos - 1 + len(variant.ref)
    if start < 0 or end > length:
        return OUT_OF_BOUNDS
    reference = genome.fetch(contig, start, end).upper()
    for ref_base, genome_base in zip(variant.ref.upper(), reference):
        if ref_base != genome_base and ref_base != "N" and genome_base != "N":
            return REF_MISMATCH
    return None


# ---------------------------------------------------------------------------------------------
# Counting (genossm info).


def count_record_lines(path: str | os.PathLike) -> int | None:
    """Records of a text VCF (plain, gzip or bgzip) by counting its non-header lines, without
    htslib (which would print its warnings about the records a second time); None for BCF or a
    file this cannot read (the reader reports those)."""
    try:
        with open(path, "rb") as handle:
            first = handle.read(_CHUNK)
            kind = compression.sniff_bytes(first)
            if kind not in (compression.NONE, compression.GZIP, compression.BGZF):
                return None
            chunks = _read_chunks(handle, first)
            if kind != compression.NONE:
                if _gunzip_head(first).startswith(_BCF_MAGIC):
                    return None
                chunks = _gunzip_chunks(chunks)
            records, at_line_start = 0, True
            for chunk in chunks:
                if not chunk:
                    continue
                # Count line starts that are not '#': after each newline, and at the very start.
                starts = chunk.count(b"\n") - chunk.count(b"\n#")
                records += starts
                if at_line_start and not chunk.startswith(b"#"):
                    records += 1
                if chunk.endswith(b"\n"):
                    records -= 1  # the newline ending the chunk starts a line in the next chunk
                    at_line_start = True
                else:
                    at_line_start = False
            return records
    except (OSError, EOFError, zlib.error):
        return None


def count_variants(path: str | os.PathLike) -> dict:
    """Records, ALT alleles, alleles by kind, contigs and samples of a VCF (one streaming pass)."""
    kinds = collections.Counter({kind: 0 for kind in KINDS})
    records = alts = 0
    contigs: dict[str, int] = {}
    with VcfReader(path) as reader:
        samples = list(reader.header.samples)
        for record in reader:
            records += 1
            contigs[record.record.contig] = contigs.get(record.record.contig, 0) + 1
            for variant in record.variants:
                kinds[variant.kind] += 1
                alts += variant.kind != MISSING
    return {"records": records, "alts": alts, "kinds": dict(kinds), "records_per_contig": contigs,
            "samples": samples}


# ---------------------------------------------------------------------------------------------
# Writing.


def _format_value(value) -> str:
    if value is None:
        return "."
    if isinstance(value, float):
        return "." if value != value else f"{value:.6g}"
    return str(value)


def format_info(values: dict) -> str:
    """`KEY=v1,v2;KEY2=v` for the non-missing entries (lists per ALT keep `.` for missing ones)."""
    parts = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            if all(item is None for item in value):
                continue
            parts.append(f"{key}={','.join(_format_value(item) for item in value)}")
        elif value is True:
            parts.append(key)
        elif value is not None and value is not False:
            parts.append(f"{key}={_format_value(value)}")
    return ";".join(parts)


def build_header(template: str, info_fields: Sequence[tuple] = (), header_lines: Sequence[str] = ()) -> str:
    """The template header text with INFO definitions (replacing same-id ones) and extra lines
    inserted just before `#CHROM`."""
    new_ids = {info_id for info_id, *_ in info_fields}
    # FORMAT definitions among `header_lines` replace the template's of the same id, as INFO ones do.
    new_format_ids = {line[len("##FORMAT=<ID="):].split(",", 1)[0] for line in header_lines
                      if line.startswith("##FORMAT=<ID=")}
    lines = [line for line in template.splitlines()
             if not (line.startswith("##INFO=<ID=") and line[len("##INFO=<ID="):].split(",", 1)[0] in new_ids)
             and not (line.startswith("##FORMAT=<ID=")
                      and line[len("##FORMAT=<ID="):].split(",", 1)[0] in new_format_ids)]
    added = []
    for info_id, number, info_type, description in info_fields:
        description = str(description).replace("\\", "\\\\").replace('"', '\\"')
        added.append(f'##INFO=<ID={info_id},Number={number},Type={info_type},Description="{description}">')
    for line in header_lines:
        if not line.startswith("##") or "=" not in line or "\n" in line:
            raise ValueError(f"header line must look like '##key=value', got {line!r}")
        added.append(line)
    chrom = next(i for i, line in enumerate(lines) if line.startswith("#CHROM"))
    return "\n".join(lines[:chrom] + added + lines[chrom:]) + "\n"


class VcfWriter:
    """Write records in input order with new INFO fields; a context manager.

    `path_or_dash`: `-` writes plain VCF text to stdout; a path ending in `.vcf` writes plain text;
    one ending in `.bcf` writes BCF (converted by htslib from the text at the end: contigs missing
    from the header are declared, as BCF needs; no index is written); any other path (`.vcf.gz`,
    `.vcf.bgz`) writes bgzip and a tabix index (`.tbi`). Files are
    written atomically. When the records are not sorted tabix cannot index them: the bgzip file is
    kept (the order of the input is never changed) and a warning says no index was written.

    `info_fields`: (id, number, type, description) tuples added to a copy of `template_header`
    (replacing a definition with the same id, whose old values are then dropped from records);
    `header_lines`: extra `##key=value` lines. `write(record, values)` takes a `VcfRecord` (or a
    pysam record) and a dict {id: value}; for Number=A a list with one value per ALT, `None` for a
    missing one (written `.`); an entry whose values are all missing is left out, and so are
    Number=A entries of a record whose ALT is `.` (it has no allele to give a value to).
    """

    def __init__(self, path_or_dash, template_header, info_fields: Sequence[tuple] = (),
                 header_lines: Sequence[str] = ()):
        self._header_text = build_header(str(template_header), info_fields, header_lines)
        self._per_alt = {info_id for info_id, number, *_ in info_fields if str(number) == "A"}
        self._path = path_or_dash
        self._bcf = path_or_dash != "-" and os.fspath(path_or_dash).endswith(".bcf")
        self._contigs: dict[str, None] = {}
        self._stack = contextlib.ExitStack()
        self.records_written = 0
        self.indexed = False

    def __enter__(self) -> "VcfWriter":
        from pysam.libcbgzf import BGZFile

        if self._path == "-":
            self._out = sys.stdout.buffer
            self._bgzip = False
        else:
            self._tmp = self._stack.enter_context(atomic_path(self._path))
            self._bgzip = not os.fspath(self._path).endswith((".vcf", ".bcf"))
            if self._bcf:
                self._text = temporary_path(self._path)
                self._stack.callback(remove_with_companions, self._text)
            target = self._text if self._bcf else self._tmp
            self._out = BGZFile(target, "wb") if self._bgzip else open(target, "wb")
        self._out.write(self._header_text.encode("utf-8", "surrogateescape"))
        return self

    def write(self, record, values: dict | None = None, sample_values: tuple | None = None) -> None:
        """`sample_values`: (FORMAT keys, {sample column: {key: values}}), see `vcf_samples.set_format_fields`."""
        pysam_record = getattr(record, "record", record)
        line = str(pysam_record).rstrip("\n")
        if sample_values is not None:
            line = set_format_fields(line, *sample_values)
        if values:
            values = self._check_per_alt(values, len(pysam_record.alts or ()), pysam_record)
            extra = format_info(values)
            if extra:
                columns = line.split("\t", 8)
                # Values from an earlier run (a VCF scored twice) are replaced, never duplicated.
                kept = [item for item in columns[7].split(";")
                        if item != "." and item.split("=", 1)[0] not in values]
                columns[7] = ";".join(kept + [extra])
                line = "\t".join(columns)
        self._out.write(line.encode("utf-8", "surrogateescape") + b"\n")
        self.records_written += 1
        if self._bcf:
            self._contigs.setdefault(pysam_record.contig)

    def _check_per_alt(self, values: dict, n_alts: int, record) -> dict:
        """Number=A values: one per ALT; a record with ALT `.` has none, so they are left out."""
        checked = dict(values)
        for key in self._per_alt & checked.keys():
            value = checked[key]
            if n_alts == 0:
                checked[key] = None
            elif not isinstance(value, (list, tuple)) or len(value) != n_alts:
                raise ValueError(f"INFO/{key} is Number=A: expected {n_alts} values for "
                                 f"{record.contig}:{record.pos}, got {value!r}")
        return checked

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._path == "-":
            self._out.flush()
            return
        # Order matters: close the file, index it, then let atomic_path rename both (or remove
        # both when the block failed).
        self._out.close()
        try:
            if exc_type is None and self._bgzip:
                self._index()
            if exc_type is None and self._bcf:
                self._write_bcf()
        except BaseException as err:
            self._stack.__exit__(type(err), err, err.__traceback__)
            raise
        self._stack.__exit__(exc_type, exc, tb)

    def _write_bcf(self) -> None:
        import pysam

        with pysam.VariantFile(os.fspath(self._text)) as text:
            for contig in self._contigs:
                if contig not in text.header.contigs:
                    text.header.contigs.add(contig)
            with pysam.VariantFile(os.fspath(self._tmp), "wb", header=text.header) as out:
                for record in text:
                    out.write(record)

    def _index(self) -> None:
        import pysam

        try:
            pysam.tabix_index(os.fspath(self._tmp), preset="vcf", force=True)
            self.indexed = True
        except OSError:
            log.warning("%s: records are not sorted by position, so no tabix index was written "
                        "(the input order is kept on purpose; `bcftools sort` then `tabix -p vcf` "
                        "makes an indexed copy)", self._path)
            Path(os.fspath(self._tmp) + ".tbi").unlink(missing_ok=True)
