"""Which compression a file uses, read from its magic bytes (pure standard library).

Genome tools need random access, which only BGZF (blocked gzip, written by `bgzip`) gives among
the gzip family: a plain `gzip` file has the same magic bytes but no block structure. The two are
told apart by BGZF's mandatory "BC" extra subfield in the first member's header. FASTA, VCF, BAM
and BCF readers share this module so that every one of them gives the same advice.
"""

from __future__ import annotations

import os
import struct

NONE = "none"
GZIP = "gzip"
BGZF = "bgzf"
XZ = "xz"
BZIP2 = "bzip2"
ZSTD = "zstd"
ZIP = "zip"

_GZIP_MAGIC = b"\x1f\x8b\x08"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZIP2_MAGIC = b"BZh"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZIP_MAGIC = b"PK\x03\x04"
_FEXTRA = 0x04

# The empty block `bgzip` writes last. htslib reads a file without it, so a download cut at a
# block boundary would silently lose the rest of the genome: its absence means truncation.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

# How to get from each format to something genossm reads with random access.
_FIX_HINTS = {
    GZIP: "it is plain gzip, not bgzip, so it cannot be read at random positions; recompress it "
    "with `zcat {path} | bgzip > {stem}.bgz` (or `bgzip -d {path}` to keep it uncompressed)",
    XZ: "it is xz-compressed; decompress it with `xz -d -k {path}` (optionally `bgzip` the result)",
    BZIP2: "it is bzip2-compressed; decompress it with `bzip2 -d -k {path}` (optionally `bgzip` "
    "the result)",
    ZSTD: "it is zstd-compressed; decompress it with `zstd -d {path}` (optionally `bgzip` the "
    "result)",
    ZIP: "it is a zip archive; extract it with `unzip {path}`",
}


def _is_bgzf_header(header: bytes) -> bool:
    """True when a gzip member header carries BGZF's 'BC' extra subfield (SLEN 2)."""
    if len(header) < 12 or not header.startswith(_GZIP_MAGIC) or not header[3] & _FEXTRA:
        return False
    (extra_length,) = struct.unpack_from("<H", header, 10)
    extra = header[12 : 12 + extra_length]
    position = 0
    while position + 4 <= len(extra):
        subfield_id = extra[position : position + 2]
        (subfield_length,) = struct.unpack_from("<H", extra, position + 2)
        if subfield_id == b"BC" and subfield_length == 2:
            return True
        position += 4 + subfield_length
    return False


def sniff_bytes(head: bytes) -> str:
    """Compression of a file whose first bytes (at least 18 for BGZF) are `head`."""
    if head.startswith(_GZIP_MAGIC):
        return BGZF if _is_bgzf_header(head) else GZIP
    for magic, kind in ((_XZ_MAGIC, XZ), (_BZIP2_MAGIC, BZIP2), (_ZSTD_MAGIC, ZSTD), (_ZIP_MAGIC, ZIP)):
        if head.startswith(magic):
            return kind
    return NONE


def sniff_compression(path: str | os.PathLike) -> str:
    """One of NONE, GZIP, BGZF, XZ, BZIP2, ZSTD, ZIP, from the file's magic bytes."""
    with open(path, "rb") as handle:
        return sniff_bytes(handle.read(512))


def has_bgzf_eof(path: str | os.PathLike) -> bool:
    """True when a BGZF file ends with the end-of-file block (i.e. it was not truncated)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() < len(BGZF_EOF):
            return False
        handle.seek(-len(BGZF_EOF), os.SEEK_END)
        return handle.read() == BGZF_EOF


def fix_hint(kind: str, path: str | os.PathLike) -> str:
    """A sentence telling the user how to turn a `kind`-compressed file into a readable one."""
    path = os.fspath(path)
    stem = path[: -len(".gz")] if path.endswith(".gz") else path
    return _FIX_HINTS[kind].format(path=path, stem=stem)
