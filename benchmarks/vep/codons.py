"""Genetic codes and the coding consequence of every SNV of a coding sequence.

Codons are indexed 16 * first + 4 * second + third with A C G T = 0 1 2 3 (genossm's token ids),
so a (L,) uint8 token array of a coding sequence reads its codons with one multiply-add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASES = "ACGT"
# NCBI translation table 1, codons in TCAG order is the usual listing; here in ACGT order.
_STANDARD = "KNKNTTTTRSRSIIMIQHQHPPPPRRRRLLLLEDEDAAAAGGGGVVVV*Y*YSSSS*CWCLFLF"


@dataclass(frozen=True)
class GeneticCode:
    """An NCBI translation table: amino acid per codon, and the codons that start translation."""

    table: int
    amino_acids: str  # 64 letters, ACGT codon order, '*' = stop
    starts: frozenset[str]

    def translate(self, codon: str) -> str:
        return self.amino_acids[codon_index(codon)]


# Table 11 (bacteria, archaea, plastids) has table 1's amino acids and seven initiation codons;
# an SNV that turns ATG into GTG or TTG keeps a start codon, so it is not start-lost here.
BACTERIAL = GeneticCode(11, _STANDARD, frozenset({"TTG", "CTG", "ATT", "ATC", "ATA", "ATG", "GTG"}))
# Nuclear genes of plants: table 1, ATG only.
STANDARD = GeneticCode(1, _STANDARD, frozenset({"ATG"}))

CLASSES = ("synonymous", "missense", "stop_gained", "start_lost")


def codon_index(codon: str) -> int:
    return 16 * BASES.index(codon[0]) + 4 * BASES.index(codon[1]) + BASES.index(codon[2])


def codon_name(index: int) -> str:
    return BASES[index // 16] + BASES[(index // 4) % 4] + BASES[index % 4]


def codon_position(detail: str) -> str:
    """"1", "2" or "3": which base of its codon a coding SNV changes, from a label's `detail`
    ("CAG>TAG" -> "1"); "." for anything that is not one codon changed at one base."""
    ref, sep, alt = detail.partition(">")
    if not sep or len(ref) != 3 or len(alt) != 3:
        return "."
    changed = [i for i in range(3) if ref[i] != alt[i]]
    return str(changed[0] + 1) if len(changed) == 1 else "."


def check_cds(tokens: np.ndarray, code: GeneticCode) -> str | None:
    """Why a coding sequence (tokens on its own strand) is unusable, or None: length a multiple of
    three, only A/C/G/T, a start codon first, a stop codon last and none before it."""
    if len(tokens) < 6 or len(tokens) % 3:
        return "length is not a multiple of 3"
    if int(tokens.max()) > 3:
        return "non-ACGT base"
    codons = 16 * tokens[0::3].astype(np.int64) + 4 * tokens[1::3] + tokens[2::3]
    if codon_name(int(codons[0])) not in code.starts:
        return "no start codon"
    aas = np.frombuffer(code.amino_acids.encode(), dtype="S1")[codons]
    if aas[-1] != b"*":
        return "no stop codon"
    if (aas[:-1] == b"*").any():
        return "internal stop codon"
    return None


@dataclass
class CodingSNVs:
    """Every SNV of one coding sequence with a class: arrays of equal length."""

    offset: np.ndarray  # (n,) position in the coding sequence, 0-based
    alt: np.ndarray  # (n,) alt base on the coding strand, token id
    consequence: np.ndarray  # (n,) index into CLASSES
    ref_codon: np.ndarray  # (n,) codon index
    alt_codon: np.ndarray  # (n,) codon index


def coding_snvs(tokens: np.ndarray, code: GeneticCode) -> CodingSNVs:
    """Classify all 3 L substitutions of a checked coding sequence (`check_cds`).

    Codon 0: start_lost when the new codon is not one of the code's start codons (else dropped:
    the start is kept). Codons 1..n-2: stop_gained, synonymous or missense. The final stop codon
    is left out (stop-lost / stop-retained are not classes here).
    """
    length = len(tokens)
    offsets = np.repeat(np.arange(length), 3)  # (3L,)
    ref = tokens[offsets].astype(np.int64)
    alt = (ref + np.tile(np.arange(1, 4), length)) % 4  # the three other bases
    codon_start = offsets - offsets % 3
    weight = 4 ** (2 - offsets % 3)
    ref_codon = (16 * tokens[codon_start].astype(np.int64) + 4 * tokens[codon_start + 1]
                 + tokens[codon_start + 2])
    alt_codon = ref_codon + (alt - ref) * weight
    aa = np.frombuffer(code.amino_acids.encode(), dtype="S1")
    ref_aa, alt_aa = aa[ref_codon], aa[alt_codon]
    consequence = np.full(3 * length, -1, dtype=np.int64)
    internal = (codon_start > 0) & (codon_start < length - 3)
    consequence[internal & (alt_aa == ref_aa)] = CLASSES.index("synonymous")
    consequence[internal & (alt_aa != ref_aa) & (alt_aa != b"*")] = CLASSES.index("missense")
    consequence[internal & (alt_aa == b"*")] = CLASSES.index("stop_gained")
    start_codons = np.array([codon_index(c) for c in sorted(code.starts)])
    consequence[(codon_start == 0) & ~np.isin(alt_codon, start_codons)] = CLASSES.index("start_lost")
    keep = consequence >= 0
    return CodingSNVs(offsets[keep], alt[keep], consequence[keep], ref_codon[keep], alt_codon[keep])
