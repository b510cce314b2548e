"""What a genome file or checkpoint directory holds, as a JSON-ready dict (`genossm info`).

The type is read from the file's content (magic bytes, first line), not its name:
  FASTA (plain or bgzip)   contigs, lengths, fraction of N, total length
  VCF, VCF.gz, BCF         records, ALT alleles by kind (SNV, MNV, INS, DEL, ...), samples
  BAM, CRAM, SAM           mapped / unmapped reads, sort order, index, contigs
  checkpoint directory     (a directory with config.json) model, size, training record;
                           a fine-tuned model also its task and output columns (task.json)
Every description has "path" and "type" (FASTA, VCF, BAM, CRAM, SAM or checkpoint), then the
per-format summary of `genossm.io` (fasta, vcf.count_variants, bam.bam_summary) or
`genossm.models.checkpoint.describe_checkpoint`.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from genossm.errors import InputError

FASTA = "FASTA"
VCF = "VCF"
ALIGNMENTS = "BAM"
CHECKPOINT = "checkpoint"


def describe(path: str, *, reference: str | None = None) -> dict:
    """A JSON-ready dict describing one file or checkpoint directory."""
    kind = sniff_type(path)
    if kind == CHECKPOINT:
        return {"path": path, "type": CHECKPOINT, **_describe_checkpoint(path)}
    if kind == FASTA:
        return {"path": path, "type": FASTA, **_describe_fasta(path)}
    if kind == VCF:
        from genossm.io.vcf import count_variants

        return {"path": path, "type": VCF, **count_variants(path)}
    from genossm.io.bam import bam_summary

    summary = bam_summary(path, reference=reference)
    return {"path": path, "type": summary.pop("format"), **summary}


def sniff_type(path: str) -> str:
    """FASTA, VCF, BAM (also CRAM and SAM) or checkpoint, from the content; InputError otherwise."""
    from genossm.io import compression

    target = Path(path)
    if target.is_dir():
        if (target / "config.json").is_file():
            return CHECKPOINT
        raise InputError("is a directory without config.json, so not a genossm checkpoint; "
                         "expected a FASTA, VCF, BAM file or a checkpoint directory", path=path)
    if not target.is_file():
        raise InputError("no such file or directory", path=path)
    with open(target, "rb") as handle:
        head = handle.read(1 << 16)
    if not head:
        raise InputError("empty file; expected a FASTA, VCF/BCF or BAM/CRAM file", path=path)
    kind = compression.sniff_bytes(head)
    if kind in (compression.GZIP, compression.BGZF):
        head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, 4096)
    elif kind != compression.NONE:
        raise InputError(compression.fix_hint(kind, path), path=path)
    if head.startswith((b"BAM\x01", b"CRAM", b"@HD", b"@SQ", b"@RG", b"@PG")):
        return ALIGNMENTS
    if head.startswith((b"BCF\x02", b"##fileformat=VCF", b"#CHROM")):
        return VCF
    if head.lstrip().startswith(b">"):
        return FASTA
    first_line = head.split(b"\n", 1)[0][:40].decode("utf-8", "replace")
    raise InputError(f"cannot tell the file type: expected FASTA ('>name'), VCF ('##fileformat=VCF'), "
                     f"BCF, BAM, CRAM or a checkpoint directory; the file starts with {first_line!r}",
                     path=path)


def _describe_fasta(path: str) -> dict:
    from genossm.io.fasta import open_fasta

    with open_fasta(path) as genome:
        contigs = [{"name": stats.name, "length": stats.length, "n_fraction": stats.n_fraction}
                   for stats in genome.iter_contig_stats()]
    total = sum(contig["length"] for contig in contigs)
    n_total = sum(contig["length"] * contig["n_fraction"] for contig in contigs)
    return {"contigs": contigs, "total_length": total,
            "n_fraction": n_total / total if total else 0.0}


def _describe_checkpoint(path: str) -> dict:
    try:
        from genossm.models.checkpoint import describe_checkpoint
    except ImportError as err:
        raise InputError("not a checkpoint this version can read (this genossm build cannot "
                         "describe checkpoints)", path=path) from err
    description = describe_checkpoint(path)
    task = Path(path) / "task.json"  # a fine-tuned model (genossm.finetune.checkpoint): its task
    if task.is_file():
        import json

        record = json.loads(task.read_text())
        description["task"] = record.get("summary")
        description["outputs"] = record.get("outputs")
    return description
