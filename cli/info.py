"""Describe genome files and checkpoints: FASTA, VCF/BCF, BAM/CRAM, model directories.

The type is read from the file's content (magic bytes, first line), not its name:
  FASTA (plain or bgzip)   contigs, lengths, fraction of N, total length
  VCF, VCF.gz, BCF         records, ALT alleles by kind (SNV, MNV, INS, DEL, ...), samples
  BAM, CRAM, SAM           mapped / unmapped reads, sort order, index, contigs
  checkpoint directory     (a directory with config.json) model, size, training record
  Lightning .ckpt          training state (step, model); `genossm convert` makes a model of it
  HDF5 of genossm embed    regions, embedding width, model, command

A table goes to stdout; --json prints one JSON list (one object per file) instead. `sample`
describes the bundled sample genome and VCF.

examples:
  genossm info sample
  genossm info genome.fa.gz
  genossm info calls.vcf.gz reads.bam --json | jq '.[0].kinds'
  genossm info checkpoints/hyena-small/
"""

from __future__ import annotations

import json
import os
import sys

from genossm.cli import options
from genossm.cli.main import subcommand_parser
from genossm.describe import CHECKPOINT, EMBEDDINGS, FASTA, LIGHTNING, VCF, describe

# Tables stop after this many contigs (a draft assembly can have 100,000); --json lists them all.
MAX_TABLE_ROWS = 25


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "info", __doc__)
    inputs, outputs, _ = options.groups(parser)
    inputs.add_argument("files", nargs="+", metavar="FILE",
                        help="FASTA, VCF/BCF, BAM/CRAM files or checkpoint directories")
    inputs.add_argument("--reference", metavar="FASTA",
                        help="reference a CRAM was compressed against (when not in its header)")
    outputs.add_argument("--json", action="store_true", help="machine-readable output (a JSON list)")
    parser.set_defaults(func=run)


def expand_sample(files: list[str]) -> list[str]:
    """`sample` (when no file has that name) is the bundled sample genome and VCF."""
    from genossm.infer.runtime import SAMPLE_KEYWORD, sample_or_path

    expanded = []
    for path in files:
        if path == SAMPLE_KEYWORD and not os.path.exists(path):
            expanded += [sample_or_path(path, "fasta"), sample_or_path(path, "vcf")]
        else:
            expanded.append(path)
    return expanded


def run(args) -> int:
    descriptions = [describe(path, reference=args.reference) for path in expand_sample(args.files)]
    if args.json:
        json.dump(descriptions, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(format_table(description) for description in descriptions))
    return 0


# -- tables ------------------------------------------------------------------------------------


def format_table(description: dict) -> str:
    kind = description["type"]
    if kind == FASTA:
        return _fasta_table(description)
    if kind == VCF:
        return _vcf_table(description)
    if kind in (CHECKPOINT, LIGHTNING, EMBEDDINGS):
        return _mapping_table(description)
    return _alignments_table(description)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _contig_rows(rows: list[tuple], header: tuple) -> list[str]:
    shown = rows[:MAX_TABLE_ROWS]
    width = max([len(header[0])] + [len(str(row[0])) for row in shown])
    lines = [f"  {header[0]:<{width}}  " + "  ".join(f"{cell:>12}" for cell in header[1:])]
    for row in shown:
        lines.append(f"  {row[0]:<{width}}  " + "  ".join(f"{cell:>12}" for cell in row[1:]))
    if len(rows) > len(shown):
        lines.append(f"  ... {len(rows) - len(shown):,} more contigs (all of them with --json)")
    return lines


def _fasta_table(d: dict) -> str:
    lines = [f"{d['path']}: FASTA, {_plural(len(d['contigs']), 'contig')}, {d['total_length']:,} bp, "
             f"N {100 * d['n_fraction']:.2f}%"]
    lines += [f"  problem: {problem}" for problem in d.get("problems", [])]
    rows = [(c["name"], f"{c['length']:,}", f"{100 * c['n_fraction']:.2f}%") for c in d["contigs"]]
    return "\n".join(lines + _contig_rows(rows, ("contig", "length", "N")) + [""])


def _vcf_table(d: dict) -> str:
    lines = [f"{d['path']}: VCF, {d['records']:,} records, {d['alts']:,} ALT alleles, "
             f"{_plural(len(d['samples']), 'sample')}"]
    lines += [f"  {kind:<9} {count:>12,}" for kind, count in d["kinds"].items()]
    rows = [(contig, f"{count:,}") for contig, count in d["records_per_contig"].items()]
    return "\n".join(lines + _contig_rows(rows, ("contig", "records")) + [""])


def _alignments_table(d: dict) -> str:
    index = "indexed" if d["indexed"] else "no index"
    lines = [f"{d['path']}: {d['type']}, {d['reads_mapped']:,} mapped, {d['reads_unmapped']:,} "
             f"unmapped, sorted by {d['sort_order']}, {index}"]
    rows = [(name, f"{length:,}") for name, length in d["contigs"].items()]
    return "\n".join(lines + _contig_rows(rows, ("contig", "length")) + [""])


def _mapping_table(d: dict) -> str:
    """Nested values as one `section.key: value` line each, lists joined, not Python reprs."""
    lines = [f"{d['path']}: {d['type']}" + (f", {d['summary']}" if d.get("summary") else "")]
    for key, value in d.items():
        if key not in ("path", "type", "summary"):
            lines += _readable(key, value)
    return "\n".join(lines + [""])


def _readable(key: str, value, depth: int = 0) -> list[str]:
    if isinstance(value, dict):
        if not value:
            return [f"  {key}: none"]
        if depth >= 3:
            return [f"  {key}: {json.dumps(value)}"]
        return [line for sub, item in value.items() for line in _readable(f"{key}.{sub}", item, depth + 1)]
    if isinstance(value, (list, tuple)):
        return [f"  {key}: " + (" ".join(str(item) for item in value) if value else "none")]
    if isinstance(value, float):
        return [f"  {key}: {value:.6g}"]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return [f"  {key}: {value:,}"]
    return [f"  {key}: {'none' if value is None else value}"]
