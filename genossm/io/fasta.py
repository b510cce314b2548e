"""Reference genomes: random access to plain or bgzip FASTA through htslib's faidx (pysam).

`open_fasta(path)` checks the file before htslib sees it (htslib's own failures read "error when
opening file"), builds the `.fai` (and `.gzi`) index when missing, and returns a `Genome`:

    with open_fasta("GRCh38.fa.gz") as genome:
        genome.contigs                           # {"chr1": 248956422, ...} in file order
        genome.fetch("1", 10_000, 10_010)        # 0-based half-open; "1" resolves to "chr1"
        genome.fetch_tokens("chrM", -5, 5, pad=True)   # uint8 ids, N outside the contig

Sequence comes back as stored: soft-masked (lowercase) bases are data, and the tokenizer reads
them. Indexes are built next to the FASTA, or in a user cache directory when that directory is
read-only (a shared reference directory) or inside the installed genossm package (the bundled
sample genome). An index that no longer matches its FASTA (offsets or line widths of another
version of the file) is detected on opening and rebuilt, with a warning, rather than letting
the wrong bytes be blamed on the sequence.

Plain-gzip FASTA (how UCSC, Ensembl and NCBI ship genomes) has no random access: it is
recompressed once, with a message saying where, to bgzip in the cache directory (`cache_directory`)
and read from there.
"""

from __future__ import annotations

import dataclasses
import difflib
import gzip
import hashlib
import logging
import operator
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np

from genossm import tokenizer
from genossm.errors import InputError
from genossm.io import compression

log = logging.getLogger("genossm.io.fasta")

# Streaming reads (header scan, per-contig statistics) go in chunks of this many bytes: large
# enough that Python overhead vanishes, small enough that a human chromosome never sits in memory.
CHUNK_BYTES = 4 << 20

_MITOCHONDRIAL_NAMES = ("chrM", "MT", "chrMT", "M")
_ACGT_BYTES = np.frombuffer(b"ACGTacgt", dtype=np.uint8)
_LOWERCASE_BYTES = slice(ord("a"), ord("z") + 1)
_INVALID_BYTES = np.flatnonzero(tokenizer.encode_lookup(np.arange(256, dtype=np.uint8)) == 255).astype(np.uint8)
_REWRAP_HINT = "rewrap it, e.g. `seqkit seq -w 60 {path} > fixed.fa` or `seqtk seq -l 60 {path} > fixed.fa`"


@dataclasses.dataclass(frozen=True)
class ContigStats:
    """Length and composition of one contig, computed by streaming it in chunks."""

    name: str
    length: int
    n_count: int  # positions that tokenize to N: N itself and every IUPAC ambiguity code
    soft_masked: int  # lowercase positions (repeat-masked in UCSC/Ensembl soft-masked genomes)
    invalid_count: int = 0  # bytes that are no nucleotide code (not counted as N)
    first_invalid: tuple[int, str] | None = None  # (1-based position, the character) of the first

    @property
    def n_fraction(self) -> float:
        return self.n_count / self.length if self.length else 0.0

    @property
    def soft_masked_fraction(self) -> float:
        return self.soft_masked / self.length if self.length else 0.0


class Genome:
    """An open, indexed FASTA. Use `open_fasta`; not thread-safe (one per thread or worker).

    Safe across `fork` and picklable: a DataLoader worker reopens its own htslib handle instead
    of sharing a file offset with its parent, which would return the wrong bases.
    """

    def __init__(self, path: Path, index_path: Path, gzi_path: Path | None):
        self.path = path
        self.index_path = index_path
        self.gzi_path = gzi_path
        self._handle = None
        self._pid = None
        try:
            handle = self._open_handle()
        except OSError:
            raise InputError(f"cannot be opened with its index {index_path}; the index may be "
                             "damaged or belong to another file: delete it so that genossm "
                             "rebuilds it", path=path) from None
        self.contigs: dict[str, int] = dict(zip(handle.references, handle.lengths))
        if not self.contigs:
            raise InputError(_NO_SEQUENCE_MESSAGE, path=path)
        self._by_lowercase: dict[str, list[str]] = {}
        for name in self.contigs:
            self._by_lowercase.setdefault(name.lower(), []).append(name)

    # -- handle management -------------------------------------------------------------------
    def _open_handle(self):
        import pysam

        self._handle = pysam.FastaFile(
            os.fspath(self.path),
            filepath_index=os.fspath(self.index_path),
            filepath_index_compressed=None if self.gzi_path is None else os.fspath(self.gzi_path),
        )
        self._pid = os.getpid()
        return self._handle

    @property
    def handle(self):
        """The pysam.FastaFile, reopened after a fork or unpickling."""
        if self._handle is None or self._pid != os.getpid():
            self._open_handle()
        return self._handle

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __enter__(self) -> "Genome":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_pid"] = None
        return state

    def __repr__(self) -> str:
        return f"Genome({os.fspath(self.path)!r}, {len(self.contigs)} contigs)"

    # -- names --------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The file's own name for contig `name`.

        Tries, in order: the exact name; `chr1` <-> `1`; the mitochondrion's spellings
        (chrM, MT, chrMT, M); then the same case-insensitively.
        """
        if name in self.contigs:
            return name
        aliases = contig_aliases(name)
        for alias in aliases:
            if alias in self.contigs:
                return alias
        matches = sorted({match for alias in aliases for match in self._by_lowercase.get(alias.lower(), ())})
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise InputError(f"contig {name!r} is ambiguous: it matches {', '.join(matches)} when case is "
                             "ignored; use the exact name", path=self.path)
        raise InputError(_unknown_contig_message(name, list(self.contigs)), path=self.path)

    def __contains__(self, name: str) -> bool:
        try:
            self.resolve(name)
        except InputError:
            return False
        return True

    # -- sequence -----------------------------------------------------------------------------
    def fetch(self, contig: str, start: int, end: int, pad: bool = False) -> str:
        """Bases [start, end) of `contig` (0-based, half-open), as stored (lowercase kept).

        Out-of-range coordinates are an error, unless `pad=True`, which fills the positions
        before 0 and past the contig's end with 'N' so that the result has `end - start` bases.
        """
        name = self.resolve(contig)
        length = self.contigs[name]
        start, end = operator.index(start), operator.index(end)
        where = f"{name}:[{start}, {end}) (0-based, half-open)"
        if start > end:
            raise InputError(f"cannot fetch {where}: start is after end", path=self.path)
        if not pad and (start < 0 or end > length):
            raise InputError(f"cannot fetch {where}: contig {name!r} has length {length}, so "
                             f"coordinates must lie in [0, {length}]; use pad=True to fill past "
                             "the contig's ends with N", path=self.path)
        inside_start, inside_end = max(start, 0), min(end, length)
        sequence = self.handle.fetch(name, inside_start, inside_end) if inside_end > inside_start else ""
        if not pad:
            return sequence
        before = max(0, min(end, 0) - start)
        after = max(0, end - max(start, length))
        return "N" * before + sequence + "N" * after

    def fetch_tokens(self, contig: str, start: int, end: int, pad: bool = False) -> np.ndarray:
        """`fetch`, encoded with `genossm.tokenizer.encode`: uint8 ids `(end - start,)`.

        A byte that is not a nucleotide is reported with its contig and 1-based position.
        """
        name = self.resolve(contig)
        sequence = self.fetch(name, start, end, pad=pad)
        try:
            return tokenizer.encode(sequence, offset=start + 1, source=f"contig {name!r} (1-based)")
        except InputError as err:
            hint = ""
            if any(mark in sequence for mark in (">", "\n", "\r")):
                hint = (f"; a '>' or line break inside a sequence means the index {self.index_path} does "
                        "not match this FASTA (stale): delete it and genossm rebuilds it")
            raise InputError(err.message + hint, path=self.path) from None

    def iter_contigs(self) -> Iterator[tuple[str, str]]:
        """(name, sequence) for each contig in file order, one contig in memory at a time."""
        for name, length in self.contigs.items():
            yield name, self.fetch(name, 0, length)

    def contig_stats(self, contig: str, chunk_bytes: int = CHUNK_BYTES) -> ContigStats:
        """Length, N count and soft-masked count of one contig, streamed in chunks."""
        name = self.resolve(contig)
        length = self.contigs[name]
        n_count = soft_masked = invalid = 0
        first_invalid = None
        for chunk_start in range(0, length, chunk_bytes):
            chunk = self.handle.fetch(name, chunk_start, min(chunk_start + chunk_bytes, length))
            raw = np.frombuffer(chunk.encode("ascii", errors="replace"), dtype=np.uint8)
            byte_counts = np.bincount(raw, minlength=256)  # one pass gives every count we need
            bad = int(byte_counts[_INVALID_BYTES].sum())
            if bad and first_invalid is None:
                offset = int(np.flatnonzero(np.isin(raw, _INVALID_BYTES))[0])
                first_invalid = (chunk_start + offset + 1, chunk[offset])
            invalid += bad
            n_count += len(raw) - int(byte_counts[_ACGT_BYTES].sum()) - bad
            soft_masked += int(byte_counts[_LOWERCASE_BYTES].sum())
        return ContigStats(name, length, n_count, soft_masked, invalid, first_invalid)

    def iter_contig_stats(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[ContigStats]:
        """`contig_stats` of every contig, in file order (what `genossm info` prints)."""
        for name in self.contigs:
            yield self.contig_stats(name, chunk_bytes)

    def n_fraction(self, contig: str) -> float:
        return self.contig_stats(contig).n_fraction


def open_fasta(path: str | os.PathLike) -> Genome:
    """Open a plain or bgzip FASTA for random access, building its index when needed."""
    if os.fspath(path) == "-":
        raise InputError("the reference FASTA must be a file: it is read at random positions, "
                         "which standard input cannot give", path="-")
    path = Path(path)
    if not path.exists():
        raise InputError("FASTA file not found; check the path", path=path)
    if path.is_dir():
        raise InputError("is a directory; expected a FASTA file (.fa, .fa.gz)", path=path)
    kind = compression.sniff_compression(path)
    if kind == compression.GZIP:
        path, kind = bgzip_copy(path), compression.BGZF
    if kind not in (compression.NONE, compression.BGZF):
        raise InputError(f"cannot read this FASTA: {compression.fix_hint(kind, path)}", path=path)
    if kind == compression.BGZF and not compression.has_bgzf_eof(path):
        raise InputError(_TRUNCATED_MESSAGE, path=path)
    _check_fasta_start(path, kind)
    index_path, gzi_path = _find_or_build_index(path, kind)
    return Genome(path, index_path, gzi_path)


_NO_SEQUENCE_MESSAGE = ("contains no sequences (headers only, or every sequence is empty); expected "
                        "'>name' lines each followed by nucleotide lines")
_TRUNCATED_MESSAGE = ("bgzip file is truncated (it lacks the end-of-file block): an interrupted "
                      "download or copy? Fetch it again, or recompress the source with bgzip")


def bgzip_copy(path: Path) -> Path:
    """A bgzip copy of a plain-gzip FASTA in the cache directory, made once (atomically)."""
    from pysam.libcbgzf import BGZFile

    copy = cache_directory(path) / (path.name.removesuffix(".gz") + ".bgz.gz")
    if copy.exists():
        return copy
    log.warning("%s is plain gzip, which has no random access: recompressing it once to bgzip as %s "
                "(used from now on; `bgzip` the original to skip this copy)", path, copy)
    copy.parent.mkdir(parents=True, exist_ok=True)
    descriptor, tmp = tempfile.mkstemp(prefix=f".{copy.name}.", suffix=".tmp", dir=copy.parent)
    os.close(descriptor)
    try:
        with gzip.open(path, "rb") as source, BGZFile(tmp, "wb") as target:
            while block := source.read(CHUNK_BYTES):
                target.write(block)
        os.replace(tmp, copy)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise InputError(f"the gzip file is truncated or corrupt ({err}); fetch it again", path=path) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return copy


# -- checks before htslib ----------------------------------------------------------------------
def _open_decompressed(path: Path, kind: str):
    return gzip.open(path, "rb") if kind == compression.BGZF else open(path, "rb")


def _check_fasta_start(path: Path, kind: str) -> None:
    """Empty file, another format, or CR-only line endings: say so before htslib fails."""
    if path.stat().st_size == 0:
        raise InputError("FASTA file is empty (0 bytes); expected '>name' lines followed by "
                         "sequence lines", path=path)
    try:
        with _open_decompressed(path, kind) as handle:
            head = handle.read(1 << 16)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        raise InputError(_TRUNCATED_MESSAGE, path=path) from None
    if b"\r" in head and b"\n" not in head and len(head) > 1:
        raise InputError("uses old Mac line endings (CR only); convert it with `mac2unix` or "
                         "`tr '\\r' '\\n'`", path=path)
    for line_number, line in enumerate(head.split(b"\n"), start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith(b">"):
            return
        raise InputError(f"not a FASTA file: expected a header line starting with '>', found "
                         f"{text[:40].decode('ascii', 'replace')!r}{_looks_like(text)}", path=path,
                         line=line_number)
    if len(head) < 1 << 16:
        raise InputError("FASTA file holds only blank lines; expected '>name' lines followed by "
                         "sequence lines", path=path)


def _looks_like(first_line: bytes) -> str:
    if first_line.startswith(b"@"):
        return " (this looks like FASTQ: genossm needs the reference genome in FASTA)"
    if first_line.startswith(b"##fileformat=VCF"):
        return " (this looks like a VCF: pass it as the variants, and the genome as the FASTA)"
    if first_line.startswith(b"BAM\x01"):
        return " (this looks like a BAM file)"
    return ""


# -- index files -------------------------------------------------------------------------------
def _index_names(path: Path, kind: str, directory: Path) -> tuple[Path, Path | None]:
    fai = directory / (path.name + ".fai")
    gzi = directory / (path.name + ".gzi") if kind == compression.BGZF else None
    return fai, gzi


def _index_is_fresh(path: Path, fai: Path, gzi: Path | None) -> bool:
    indexes = [fai] if gzi is None else [fai, gzi]
    if not all(index.exists() for index in indexes):
        return False
    fasta_mtime = path.stat().st_mtime
    return all(index.stat().st_mtime >= fasta_mtime for index in indexes)


def directory_is_writable(directory: Path) -> bool:
    """Whether a file can be created in `directory` (tried, since access() lies on some mounts)."""
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".genossm-probe-", dir=directory)
    except OSError:
        return False
    os.close(descriptor)
    os.unlink(probe)
    return True


def cache_directory(path: Path) -> Path:
    """Where the index of a FASTA in a read-only directory goes: one folder per file version.

    `$GENOSSM_CACHE/fai/<key>`, else `$XDG_CACHE_HOME/genossm/fai/<key>`, else
    `~/.cache/genossm/fai/<key>`; the key hashes the real path, size and mtime, so a changed
    FASTA never meets a stale index.
    """
    if os.environ.get("GENOSSM_CACHE"):
        root = Path(os.environ["GENOSSM_CACHE"]) / "fai"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genossm" / "fai"
    status = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{status.st_size}\0{status.st_mtime_ns}".encode()).hexdigest()[:16]
    return root / key


def _index_matches(path: Path, kind: str, fai: Path, gzi: Path | None = None) -> bool:
    """Whether a `.fai` describes this FASTA: each sampled contig's offset starts a line after its
    header, its first line has the indexed width, and the byte after its last base ends a line (a
    stale index, written for another version of the file, fails this). A bgzip FASTA is read at
    those uncompressed offsets through its `.gzi` (only the blocks holding them are inflated)."""
    try:
        entries = [line.split("\t") for line in fai.read_text().splitlines() if line]
        sampled = entries if len(entries) <= 64 else entries[:: max(1, len(entries) // 64)] + entries[-1:]
        with _UncompressedReader(path, kind, gzi) as reader:
            for name, length, offset, line_bases, line_width, *_ in sampled:
                length, offset, line_bases, line_width = int(length), int(offset), int(line_bases), int(line_width)
                if offset < 1 or length < 1 or line_bases < 1 or line_width < line_bases:
                    return False
                data = reader.read(offset - 1, 1 + line_width)
                if data[:1] != b"\n":
                    return False
                first_line = data[1:1 + min(line_bases, length)]
                if len(first_line) != min(line_bases, length) or b"\n" in first_line or b">" in first_line:
                    return False
                if length > line_bases and data[1 + line_bases:1 + line_width].strip(b"\r") != b"\n":
                    return False
                last = offset + (length - 1) // line_bases * line_width + (length - 1) % line_bases
                tail = reader.read(last, 2)
                if len(tail) < 1 or tail[:1] in (b"\n", b"\r", b">") or tail[1:2] not in (b"", b"\n", b"\r"):
                    return False
    except (OSError, ValueError, EOFError, zlib.error):
        return False
    return True


class _UncompressedReader:
    """Reads bytes at uncompressed offsets of a plain file, or of a bgzip file through its `.gzi`
    (pairs of compressed and uncompressed block starts): seek to the block, inflate from there."""

    def __init__(self, path: Path, kind: str, gzi: Path | None):
        self.kind = kind
        self.handle = open(path, "rb")
        self.blocks = [(0, 0)]
        if kind != compression.NONE:
            if gzi is None:
                raise ValueError("a bgzip FASTA needs its .gzi")
            raw = gzi.read_bytes()
            count = int.from_bytes(raw[:8], "little")
            if len(raw) != 8 + 16 * count:
                raise ValueError("malformed .gzi")
            values = np.frombuffer(raw, dtype="<u8", offset=8).reshape(-1, 2)
            self.blocks += [(int(c), int(u)) for c, u in values]
            self.uncompressed_starts = [u for _, u in self.blocks]

    def __enter__(self) -> "_UncompressedReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.handle.close()

    def read(self, offset: int, size: int) -> bytes:
        if self.kind == compression.NONE:
            self.handle.seek(offset)
            return self.handle.read(size)
        import bisect

        index = bisect.bisect_right(self.uncompressed_starts, offset) - 1
        compressed, uncompressed = self.blocks[index]
        self.handle.seek(compressed)
        skip, out, pending = offset - uncompressed, b"", b""
        while len(out) < skip + size:
            inflater = zlib.decompressobj(31)
            while not inflater.eof:
                chunk = pending or self.handle.read(65536)
                pending = b""
                if not chunk:
                    return out[skip:skip + size]
                out += inflater.decompress(chunk)
            pending = inflater.unused_data
            if not pending:
                pending = self.handle.read(65536)
                if not pending:
                    break
        return out[skip:skip + size]


def _inside_package(path: Path) -> bool:
    """Files bundled inside the installed genossm package (the sample genome): never write there."""
    from genossm.resources import RESOURCES

    return RESOURCES in path.resolve().parents


def _find_or_build_index(path: Path, kind: str) -> tuple[Path, Path | None]:
    beside = _index_names(path, kind, path.parent)
    if _index_is_fresh(path, *beside):
        if _index_matches(path, kind, *beside):
            return beside
        log.warning("the index %s does not match %s (stale: written for another version of the file); "
                    "rebuilding it", beside[0], path)
        if directory_is_writable(path.parent):
            _build_index(path, kind, *beside)
            return beside
    if directory_is_writable(path.parent) and not _inside_package(path):
        if beside[0].exists():
            log.info("index %s is missing a part or older than the FASTA; rebuilding it", beside[0])
        _build_index(path, kind, *beside)
        return beside
    cached = _index_names(path, kind, cache_directory(path))
    if not _index_is_fresh(path, *cached) or not _index_matches(path, kind, *cached):
        why = "is part of the installed package" if _inside_package(path) else "is not writable"
        log.info("%s %s; building the FASTA index in %s", path.parent, why, cached[0].parent)
        try:
            cached[0].parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"has no index, and neither its directory nor the cache directory "
                             f"{cached[0].parent} is writable ({err.strerror}); set GENOSSM_CACHE to a "
                             "writable directory, or index a writable copy with `samtools faidx`",
                             path=path) from None
        _build_index(path, kind, *cached)
    return cached


def _build_index(path: Path, kind: str, fai: Path, gzi: Path | None) -> None:
    """Index `path` into `fai` (and `gzi`) atomically, so parallel jobs never read half an index.

    htslib writes the index beside the file it opens, so it opens a symlink to the FASTA inside
    a private temporary directory; the finished files are then renamed into place.
    """
    import pysam

    log.info("indexing %s", path)
    workdir = Path(tempfile.mkdtemp(prefix=".genossm-faidx-", dir=fai.parent))
    try:
        link = workdir / path.name
        os.symlink(path.resolve(), link)
        previous_verbosity = pysam.set_verbosity(0)  # our own message replaces htslib's
        try:
            handle = pysam.FastaFile(os.fspath(link))
        except OSError:
            raise _diagnose_index_failure(path, kind) from None
        finally:
            pysam.set_verbosity(previous_verbosity)
        indexed_names = set(handle.references)
        handle.close()
        _check_headers(path, kind, indexed_names)
        if gzi is not None:
            os.replace(workdir / (path.name + ".gzi"), gzi)
        os.replace(workdir / (path.name + ".fai"), fai)  # last: its presence means "index ready"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _check_headers(path: Path, kind: str, indexed_names: set[str]) -> None:
    """Duplicate names (faidx silently keeps the first) are an error; empty contigs a warning."""
    first_seen: dict[str, int] = {}
    for line_number, name in scan_headers(path, kind):
        if name in first_seen:
            raise InputError(f"contig name {name!r} appears twice (first at line {first_seen[name]}); "
                             "names must be unique for random access: rename or remove one copy "
                             "(e.g. `seqkit rename`)", path=path, line=line_number)
        first_seen[name] = line_number
        if name not in indexed_names:
            log.warning("%s:%d: contig %r has no sequence; it is left out", path, line_number, name)


def scan_headers(path: str | os.PathLike, kind: str | None = None) -> Iterator[tuple[int, str]]:
    """(line number, name) of every '>' line, streamed in chunks (names end at whitespace).

    Sequence lines are skipped with `bytes.find`, never split into Python lines, so a human
    genome is scanned at disk (or gunzip) speed.
    """
    path = Path(path)
    kind = kind or compression.sniff_compression(path)
    line_number = 1  # line of buffer[0]
    inside_sequence_line = False  # buffer[0] continues a sequence line whose start was dropped
    buffer = b""
    with _open_decompressed(path, kind) as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            at_end = not chunk
            buffer += chunk  # what is kept between chunks is at most a header fragment
            position = 0
            if inside_sequence_line:
                newline = buffer.find(b"\n")
                if newline < 0:
                    buffer = b""
                    if at_end:
                        return
                    continue
                position, line_number, inside_sequence_line = newline + 1, line_number + 1, False
            while position < len(buffer):  # `position` is always at the start of a line here
                if buffer.startswith(b">", position):
                    newline = buffer.find(b"\n", position)
                    if newline < 0 and not at_end:
                        break  # the header continues in the next chunk
                    header = buffer[position + 1 : None if newline < 0 else newline].split(None, 1)
                    yield line_number, header[0].decode("utf-8", "replace") if header else ""
                    if newline < 0:
                        position = len(buffer)
                        break
                    position, line_number = newline + 1, line_number + 1
                    continue
                next_header = buffer.find(b"\n>", position)
                if next_header < 0:
                    line_number += buffer.count(b"\n", position)
                    inside_sequence_line = not buffer.endswith(b"\n")
                    position = len(buffer)
                    break
                line_number += buffer.count(b"\n", position, next_header + 1)
                position = next_header + 1
            buffer = buffer[position:]
            if at_end:
                return


def _diagnose_index_failure(path: Path, kind: str) -> InputError:
    """Find why faidx refused the file (it only says "error when opening file"), line by line.

    Runs only after a failure, so its speed does not matter. Mirrors faidx's rules: within a
    contig every line has the same length and line ending, except the last, which may be shorter.
    """
    hint = _REWRAP_HINT.format(path=path)
    name = None
    width = ending = None  # bases per line and line terminator of the current contig
    short_line = None  # line number of a shorter (or blank) line: the contig must end there
    seen_sequence = False
    try:
        with _open_decompressed(path, kind) as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.startswith(b">"):
                    parts = line[1:].split(None, 1)
                    name = parts[0].decode("utf-8", "replace") if parts else ""
                    width = ending = short_line = None
                    continue
                bases = line.rstrip(b"\r\n")
                terminator = line[len(bases):]
                if not bases.strip():
                    short_line = short_line or line_number
                    continue
                if name is None:
                    return InputError("sequence before the first '>' header line", path=path, line=line_number)
                seen_sequence = True
                if short_line is not None:
                    return InputError(
                        f"in contig {name!r}, line {short_line} is shorter than the lines before it "
                        "(or blank), yet more sequence follows; faidx random access needs every line "
                        f"of a contig to have the same length except the last: {hint}",
                        path=path, line=line_number)
                if width is None:
                    width, ending = len(bases), terminator
                    continue
                if terminator and terminator != ending:
                    return InputError(
                        f"in contig {name!r}, this line ends with {terminator!r} but earlier lines "
                        f"with {ending!r}: mixed Windows (CRLF) and Unix line endings; convert with "
                        f"`dos2unix {path}`", path=path, line=line_number)
                if len(bases) > width:
                    return InputError(
                        f"in contig {name!r}, this line has {len(bases)} bases but the lines before "
                        f"it {width}; faidx random access needs every line of a contig to have the "
                        f"same length except the last: {hint}", path=path, line=line_number)
                if len(bases) < width:
                    short_line = line_number
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return InputError(_TRUNCATED_MESSAGE.replace("lacks the end-of-file block", "a block is cut"),
                          path=path)
    if not seen_sequence:
        return InputError(_NO_SEQUENCE_MESSAGE, path=path)
    return InputError("htslib could not index this FASTA, and no malformed line was found; check "
                      "that it is a valid FASTA, e.g. with `samtools faidx`", path=path)


# -- contig names ------------------------------------------------------------------------------
def contig_aliases(name: str) -> list[str]:
    """`name` and its usual aliases: chr1 <-> 1, and the mitochondrion's spellings."""
    if name.lower() in {alias.lower() for alias in _MITOCHONDRIAL_NAMES}:
        return [name, *_MITOCHONDRIAL_NAMES]
    if name[:3].lower() == "chr":
        return [name, name[3:]]
    return [name, "chr" + name]


def _unknown_contig_message(name: str, contigs: list[str]) -> str:
    # difflib compares against every name; a scaffold-level assembly can hold millions of them.
    pool = contigs if len(contigs) <= 20_000 else [c for c in contigs if c[:3].lower() == name[:3].lower()][:20_000]
    closest = difflib.get_close_matches(name, pool, n=5, cutoff=0.5)
    if closest:
        suggestion = "closest names: " + ", ".join(closest)
    else:
        suggestion = "its names start with: " + ", ".join(contigs[:5]) + (", ..." if len(contigs) > 5 else "")
    return (f"contig {name!r} is not in the genome ({len(contigs)} contigs); {suggestion}. Check that "
            "the genome build and the contig naming (chr1 or 1) match your input")
