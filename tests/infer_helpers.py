"""Tiny models and genomes shared by the score / embed / mutagenesis / pipeline tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import torch

from genossm.models.checkpoint import save_model
from genossm.models.config import ModelConfig
from genossm.models.lm import build_model

DATA = Path(__file__).resolve().parent / "fixtures"
LAMBDA = DATA / "lambda_virus.fa"
EDGE_CASES = DATA / "edge_cases.vcf"
LAMBDA_CONTIG = "gi|9626243|ref|NC_001416.1|"

TINY_CONFIGS = {
    "hyena": dict(arch="hyena", d_model=16, n_layers=1, max_length=64),
    "mamba": dict(arch="mamba", d_model=16, n_layers=1, max_length=64),
    "masked": dict(arch="mamba", d_model=16, n_layers=1, max_length=64, objective="masked",
                   bidirectional=True, rc_equivariant=True),
}


def tiny_model(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(**TINY_CONFIGS[kind])).eval()


def save_tiny_model(kind: str, directory: Path, seed: int = 0) -> Path:
    save_model(tiny_model(kind, seed), directory)
    return directory


def lambda_sequence() -> str:
    lines = LAMBDA.read_text().split("\n")
    return "".join(line.strip() for line in lines[1:])


def write_fasta(path: Path, contigs: dict[str, str]) -> Path:
    with open(path, "w") as out:
        for name, sequence in contigs.items():
            out.write(f">{name}\n")
            for start in range(0, len(sequence), 60):
                out.write(sequence[start:start + 60] + "\n")
    return path


def write_vcf(path: Path, contigs: dict[str, int], rows: list[tuple]) -> Path:
    """rows: (contig, pos, id, ref, alt) tuples."""
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={name},length={length}>" for name, length in contigs.items()]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    lines += [f"{c}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t." for c, p, i, r, a in rows]
    text = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as out:
            out.write(text)
    else:
        path.write_text(text)
    return path


def random_allele_pairs(seed: int, count: int, window: int):
    """ALTs of every shape (SNV, MNV, insertion, deletion, complex) on a random genome, contig edges
    included (N padding), as scoring tiles of `window` bases."""
    import numpy as np

    from genossm.infer.score.tiles import TileLayout, allele_pair

    rng = np.random.default_rng(seed)
    genome = rng.integers(0, 4, 700).astype(np.uint8)
    layout = TileLayout(window)
    pairs = []
    for index in range(count):
        position = [0, 699][index] if index < 2 else int(rng.integers(0, 690))
        ref_length = int(rng.integers(1, 4)) if position < 690 else 1
        alt = rng.integers(0, 4, int(rng.integers(1, 4))).astype(np.uint8)
        start = layout.tile_start(position)
        tile = np.full(window + 8, 4, dtype=np.uint8)  # N past the contig ends
        inside = genome[max(start, 0):start + window + 8]
        tile[max(start, 0) - start:max(start, 0) - start + len(inside)] = inside
        pairs.append(allele_pair(tile, position - start, ref_length, alt, window))
    return pairs
