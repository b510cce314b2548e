"""What a genome file or checkpoint directory holds, as a JSON-ready dict (`genossm info`).

The type is read from the file's content (magic bytes, first line), not its name:
  FASTA (plain or bgzip)   contigs, lengths, fraction of N, total length
  VCF, VCF.gz, BCF         records, ALT alleles by kind (SNV, MNV, INS, DEL, ...), samples
  BAM, CRAM, SAM           mapped / unmapped reads, sort order, index, contigs
  checkpoint directory     (a directory with config.json) model, size, training record;
                           a fine-tuned model also its task and output columns (task.json)
  Lightning .ckpt          training state: step, epoch, model (read safely, weights_only);
                           `genossm convert` makes a model directory of it
  HDF5 (genossm embed)     regions, embedding width, per-position rows, model and command
Every description has "path" and "type" (FASTA, VCF, BAM, CRAM, SAM, checkpoint, Lightning
checkpoint or embeddings), then the
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
LIGHTNING = "Lightning checkpoint"
EMBEDDINGS = "embeddings"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def describe(path: str, *, reference: str | None = None) -> dict:
    """A JSON-ready dict describing one file or checkpoint directory."""
    kind = sniff_type(path)
    if kind == CHECKPOINT:
        return {"path": path, "type": CHECKPOINT, **_describe_checkpoint(path)}
    if kind == LIGHTNING:
        return {"path": path, "type": LIGHTNING, **_describe_lightning(path)}
    if kind == EMBEDDINGS:
        return {"path": path, "type": EMBEDDINGS, **_describe_embeddings(path)}
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
    if head.startswith(_HDF5_MAGIC):
        return EMBEDDINGS
    kind = compression.sniff_bytes(head)
    if kind == compression.ZIP and (b"data.pkl" in head or target.suffix in (".ckpt", ".pt", ".pth")):
        return LIGHTNING  # torch.save's zip layout
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
        contigs = []
        for stats in genome.iter_contig_stats():
            contig = {"name": stats.name, "length": stats.length, "n_fraction": stats.n_fraction}
            if stats.invalid_count:
                position, character = stats.first_invalid
                contig["invalid"] = {"count": stats.invalid_count, "first_position": position,
                                     "first_character": character}
            contigs.append(contig)
    total = sum(contig["length"] for contig in contigs)
    n_total = sum(contig["length"] * contig["n_fraction"] for contig in contigs)
    description = {"contigs": contigs, "total_length": total, "n_fraction": n_total / total if total else 0.0}
    invalid = [contig for contig in contigs if "invalid" in contig]
    if invalid:
        first = invalid[0]
        description["problems"] = [
            f"{sum(c['invalid']['count'] for c in invalid):,} byte(s) that are no nucleotide code, first "
            f"{first['invalid']['first_character']!r} at {first['name']}:{first['invalid']['first_position']:,} "
            "(1-based); scoring stops there: fix or mask them (e.g. `seqkit replace -s -p '[^ACGTNacgtn]' -r N`)"]
    return description


def _describe_lightning(path: str) -> dict:
    """A Lightning .ckpt, read with weights_only=True: what it holds and how to make a model of it."""
    from genossm.models.checkpoint import read_lightning_checkpoint, summarize_config
    from genossm.models.config import ModelConfig

    ckpt = read_lightning_checkpoint(path)
    description = {"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"),
                   "tensors": len(ckpt["state_dict"]),
                   "note": f"training state, not a model directory: `genossm convert {path} OUT_DIR` makes one "
                           "that every genossm command reads"}
    model_config = (ckpt.get("hyper_parameters") or {}).get("model_config")
    if isinstance(model_config, dict):
        try:
            description["summary"] = summarize_config(ModelConfig.from_dict(dict(model_config), source=path))
        except InputError:
            pass
    return description


def _describe_embeddings(path: str) -> dict:
    """An HDF5 file of `genossm embed` (layout: genossm.infer.embed.store), read without infer."""
    import h5py

    try:
        with h5py.File(path, "r") as store:
            if "embeddings" not in store:
                raise InputError("an HDF5 file, but not one genossm wrote (no /embeddings dataset)", path=path)
            regions = store["regions/chrom"].shape[0] if "regions/chrom" in store else 0
            return {"regions": regions, "embedding_width": int(store["embeddings"].shape[1]),
                    "per_position": "per_position" in store,
                    "attributes": {key: str(value) for key, value in sorted(store.attrs.items())},
                    "note": "/regions: chrom, start (0-based), end (exclusive), name, strand; read strings "
                            "with h5py's .asstr()"}
    except OSError as err:
        raise InputError(f"unreadable HDF5 file ({err})", path=path) from None


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
