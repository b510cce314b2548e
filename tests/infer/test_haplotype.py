"""Haplotype scores (`genossm score --samples`): hand-built haplotype windows whose scores are known.

Expected values come from `score_haplotypes_naive` on windows spelt out here by string surgery on
the genome (not through `apply_alleles`), or from exact identities: a haplotype with one ALT in
its window scores that ALT's GENOSSM_LLR; one with none scores exactly 0.
"""

from __future__ import annotations

import numpy as np
import pysam
import pytest

from genossm.cli.main import main
from genossm.errors import InputError, UsageError
from genossm.infer.haplotype.genotypes import Genotype, haplotype_alleles, window_phase_set
from genossm.infer.haplotype.samples import SampleSelection
from genossm.infer.haplotype.scorer import HaplotypeScorer, score_haplotypes_naive
from genossm.infer.haplotype.windows import Allele, HaplotypeWindow, apply_alleles, segment_bounds
from genossm.infer.score import ScoreJob, ScoreOutputs, score_vcf
from genossm.infer.score.tiles import TileLayout, allele_pair
from genossm.io.vcf_samples import set_format_fields
from genossm.models.checkpoint import load_model
from genossm.tokenizer import encode
from infer_helpers import LAMBDA, LAMBDA_CONTIG, lambda_sequence, save_tiny_model, tiny_model

C = LAMBDA_CONTIG
W = 64  # the tiny models' max_length: the default window; tiles start every 32 bases at 32k - 16
SEQ = lambda_sequence()


def alt_of(pos: int) -> str:
    return "A" if SEQ[pos - 1] != "A" else "C"


# --- windows, genotype rules, the FORMAT text (no model) -------------------------------------------------------

def test_apply_alleles_spells_the_haplotype_and_skips_overlaps():
    tile = encode("ACGTACGTACGTACGT")
    alleles = [Allele(2, 1, encode("T")), Allele(5, 2, encode("")), Allele(6, 1, encode("G")),
               Allele(10, 0, encode("AA"))]
    built, applied = apply_alleles(tile, 12, alleles)
    # G->T at 2; CG deleted at 5-6; the SNV at 6 overlaps the deletion; AA inserted before 10.
    assert built.tokens.tobytes() == encode("ACTTATACAAGTAC").tobytes()[:12]
    assert applied == [True, True, False, True]
    assert built.starts == (2, 5, 8) and built.ends == (3, 5, 10)


def test_segment_bounds_tile_the_window_on_both_strands():
    window = HaplotypeWindow(np.zeros(20, np.uint8), starts=(3, 9), ends=(4, 12))
    assert segment_bounds(window, reverse=False) == [(0, 9), (9, 20)]
    # Reverse strand: the second allele is met first (at 20 - 12 = 8), the first at 20 - 4 = 16.
    assert segment_bounds(window, reverse=True) == [(16, 20), (0, 16)]


@pytest.mark.parametrize("gt, phased, known, expected", [
    ((0, 1), True, True, (0, 1)),  # phased: as written
    ((1, 0), True, True, (1, 0)),
    ((0, 1), False, False, (1, 0)),  # unphased het: ALT on haplotype 1
    ((1, 0), False, False, (1, 0)),
    ((2, 1), False, False, (1, 2)),
    ((0, 1), True, False, (1, 0)),  # phased in another phase set: as unphased
    ((1, 1), False, False, (1, 1)),  # homozygous: everywhere
    ((None, None), False, False, (None, None)),
    ((1,), False, False, (1,)),  # haploid
])
def test_haplotype_alleles_follow_the_stated_rules(gt, phased, known, expected):
    assert haplotype_alleles(Genotype(gt, phased), known) == expected


def test_window_phase_set_is_the_first_phased_heterozygous_ones():
    genotypes = [Genotype((1, 1), True, 7), Genotype((0, 1), False, None), Genotype((0, 1), True, 42),
                 Genotype((1, 0), True, 43)]
    assert window_phase_set(genotypes) == 42


def test_set_format_fields_pads_dropped_fields_and_replaces_old_values():
    line = "c\t1\t.\tA\tG\t.\t.\t.\tGT:DP:GENOSSM_HLLR\t0|1:5:9\t1|1"
    out = set_format_fields(line, ("GENOSSM_HLLR", "GENOSSM_HVAR"), {1: {"GENOSSM_HLLR": [0.5, None],
                                                                         "GENOSSM_HVAR": [1.25, 0.0]}})
    assert out.split("\t")[8:] == ["GT:DP:GENOSSM_HLLR:GENOSSM_HVAR", "0|1:5:.:.", "1|1:.:0.5,.:1.25,0"]


def test_sample_selection_checks_names_against_the_header(tmp_path):
    assert SampleSelection.from_option("B,A").resolve(["A", "B", "C"], "x.vcf") == ["A", "B"]
    assert SampleSelection.from_option("all").resolve(["A", "B"], "x.vcf") == ["A", "B"]
    with pytest.raises(InputError, match="Z not in the input"):
        SampleSelection.from_option("A,Z").resolve(["A", "B"], "x.vcf")
    (tmp_path / "names.txt").write_text("# wanted\nB\n\nC\n")
    assert SampleSelection.from_file(str(tmp_path / "names.txt")).resolve(["A", "B", "C"], "x") == ["B", "C"]
    with pytest.raises(UsageError):
        SampleSelection.from_option("A,,B")


# --- the scorer against its reference ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind, reuse", [("hyena", True), ("hyena", False), ("mamba", False)],
                         ids=["hyena-suffix-cache", "hyena-full-passes", "mamba-full-passes"])
def test_scorer_matches_naive_and_shares_add_up(kind, reuse):
    model = tiny_model(kind)
    rng = np.random.default_rng(3)
    tiles = []
    for _ in range(3):
        tile = rng.integers(0, 4, W + 10).astype(np.uint8)
        haplotypes = []
        for _ in range(4):
            offsets = sorted(rng.choice(np.arange(2, W - 4), size=int(rng.integers(0, 4)), replace=False))
            alleles = [Allele(int(o), int(rng.integers(0, 3)), rng.integers(0, 4, int(rng.integers(0, 3))).astype(np.uint8))
                       for o in offsets]
            haplotypes.append(apply_alleles(tile, W, alleles)[0])
        haplotypes.append(haplotypes[0])  # a duplicate: computed once
        tiles.append((tile[:W].copy(), haplotypes))
    scorer = HaplotypeScorer(model, batch_size=3, reuse_reference=reuse)
    assert scorer.reuse_reference == reuse
    fast = scorer.score(tiles)
    for (reference, haplotypes), scores in zip(tiles, fast):
        naive = score_haplotypes_naive(model, reference, haplotypes)
        for haplotype, got, want in zip(haplotypes, scores, naive):
            assert got.llr == pytest.approx(want.llr, abs=1e-4)
            assert np.allclose(got.shares, want.shares, atol=1e-4)
            assert sum(got.shares) == pytest.approx(got.llr, abs=1e-6) if haplotype.starts else got.llr == 0.0
    distinct = {w.tokens.tobytes() for reference, haplotypes in tiles for w in [*haplotypes]
                if not np.array_equal(w.tokens, reference)}
    assert scorer.passes == 2 * (len(tiles) + len(distinct))  # each window once per strand


# --- the command, end to end ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hyena_dir(tmp_path_factory):
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


def snv(pos: int) -> tuple:
    return (pos, SEQ[pos - 1], alt_of(pos))


# Tile of POS 101 and 103 (0-based 100, 102): window [80, 144). Tile of POS 201..208: [176, 240).
SITES = [
    (snv(101), {"cis": "0|1", "trans": "0|1", "homref": "0|0", "unphased": "0/1", "missing": "0|1"}),
    (snv(103), {"cis": "0|1", "trans": "1|0", "homref": "0|0", "unphased": "0/1", "missing": "./."}),
    ((201, SEQ[200:203], SEQ[200]), {"cis": "1|0", "trans": "0|0", "homref": "0|0", "unphased": "0|0",
                                      "missing": "0|0"}),  # deletes 0-based 201-202
    (snv(208), {"cis": "1|0", "trans": "0|1", "homref": "0|0", "unphased": "0|0", "missing": "0|0"}),
    ((50000, "A", "G"), {"cis": "1|0", "trans": "0|1", "homref": "0|0", "unphased": "0/1", "missing": "1|1"}),
]
SAMPLES = ["cis", "trans", "homref", "unphased", "missing"]


@pytest.fixture(scope="module")
def scored(hyena_dir, tmp_path_factory):
    """The sample VCF scored with --samples all; returns {(pos, sample): (HLLR, HVAR)} and the LLRs."""
    directory = tmp_path_factory.mktemp("hap")
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={C},length={len(SEQ)}>", "##contig=<ID=elsewhere,length=60000>",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *SAMPLES])]
    for (pos, ref, alt), genotypes in SITES:
        contig = C if pos < 50000 else "elsewhere"  # not in the FASTA: kept with --skip-unknown
        lines.append("\t".join([contig, str(pos), f"v{pos}", ref, alt, ".", ".", ".", "GT",
                                *(genotypes[s] for s in SAMPLES)]))
    source = directory / "calls.vcf"
    source.write_text("\n".join(lines) + "\n")
    out = directory / "out.vcf"
    score_vcf(ScoreJob(input=str(source), fasta=str(LAMBDA), model=str(hyena_dir), outputs=ScoreOutputs(vcf=str(out)),
                       skip_unknown=True, samples=SampleSelection.from_option("all"), batch_size=4))
    values, llrs = {}, {}
    with pysam.VariantFile(str(out)) as reader:
        for record in reader:
            llrs[record.pos] = record.info.get("GENOSSM_LLR", (None,))[0]
            for sample in SAMPLES:
                call = record.samples[sample]
                values[record.pos, sample] = (tuple(call["GENOSSM_HLLR"]), tuple(call["GENOSSM_HVAR"]))
    return values, llrs


def naive_llr(hyena_dir, window_text: str, start: int) -> float:
    """log P(window) - log P(reference window at `start`), both strands, by the reference scorer."""
    model = load_model(hyena_dir)
    reference = encode(SEQ[start:start + W])
    spelled = HaplotypeWindow(encode(window_text[:W]), starts=(), ends=())
    return score_haplotypes_naive(model, reference, [spelled])[0].llr


def test_two_snvs_in_cis_score_the_double_mutant_window(scored, hyena_dir):
    values, llrs = scored
    (p1, _, a1), (p2, _, a2) = SITES[0][0], SITES[1][0]
    both = SEQ[80:p1 - 1] + a1 + SEQ[p1:p2 - 1] + a2 + SEQ[p2:]
    hllr, hvar = values[101, "cis"]
    assert hllr[0] == pytest.approx(0.0, abs=0) and hllr[1] == pytest.approx(naive_llr(hyena_dir, both, 80), abs=1e-4)
    assert hvar[0] == 0.0 and values[103, "cis"][1][0] == 0.0
    assert hvar[1] + values[103, "cis"][1][1] == pytest.approx(hllr[1], abs=1e-5)  # the shares add up
    assert hllr[1] != pytest.approx(llrs[101] + llrs[103], abs=1e-3)  # context matters (not additive)


def test_two_snvs_in_trans_score_each_alone(scored):
    values, llrs = scored
    hllr, hvar = values[101, "trans"]
    assert hllr[1] == pytest.approx(llrs[101], abs=1e-4) and hllr[0] == pytest.approx(llrs[103], abs=1e-4)
    assert hvar == (0.0, pytest.approx(llrs[101], abs=1e-4))
    assert values[103, "trans"][1] == (pytest.approx(llrs[103], abs=1e-4), 0.0)


def test_homozygous_reference_sample_scores_exactly_zero(scored):
    values, _ = scored
    for pos in (101, 103, 201, 208):
        assert values[pos, "homref"] == ((0.0, 0.0), (0.0, 0.0))


def test_unphased_heterozygous_alts_go_together_on_haplotype_one(scored):
    values, _ = scored
    assert values[101, "unphased"][0] == (values[101, "cis"][0][1], 0.0)
    assert values[101, "unphased"][1] == pytest.approx((values[101, "cis"][1][1], 0.0), abs=1e-6)


def test_deletion_shifts_the_downstream_snv(scored, hyena_dir):
    values, _ = scored
    (_, _, alt), start = SITES[3][0], 176
    # 0-based: padding base 200 kept, 201-202 deleted; the SNV's base 207 follows (shifted left by 2).
    spelled = SEQ[start:201] + SEQ[203:207] + alt + SEQ[208:]
    hllr, hvar = values[201, "cis"]
    assert hllr[0] == pytest.approx(naive_llr(hyena_dir, spelled, start), abs=1e-4)
    assert hvar[0] + values[208, "cis"][1][0] == pytest.approx(hllr[0], abs=1e-5)
    assert hllr[1] == 0.0 and values[208, "trans"][0][0] == 0.0


def test_missing_genotype_is_missing_here_and_reference_elsewhere(scored):
    values, llrs = scored
    assert values[103, "missing"] == ((None, None), (None, None))
    # At 101 (0|1) the missing call at 103 reads as REF: haplotype 2 carries 101 alone.
    assert values[101, "missing"][0] == (0.0, pytest.approx(llrs[101], abs=1e-4))


def test_record_outside_any_window_gets_missing_values(scored):
    values, llrs = scored
    assert llrs[50000] is None
    for sample in SAMPLES:
        assert all(value is None for part in values[50000, sample] for value in part)


def test_samples_options_are_checked_before_the_model_loads(hyena_dir, tmp_path, capsys):
    source = tmp_path / "one.vcf"
    source.write_text(f"##fileformat=VCFv4.2\n##contig=<ID={C},length={len(SEQ)}>\n"
                      '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
                      f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\n{C}\t101\t.\t{SEQ[100]}\t{alt_of(101)}\t.\t.\t.\tGT\t0|1\n")
    common = ["-q", "score", "--fasta", str(LAMBDA), "--model", str(hyena_dir)]
    assert main([*common, str(source), "--samples", "B"]) == 1
    assert "B not in the input" in capsys.readouterr().err
    assert main([*common, "-", "--samples", "A"]) == 2
    assert "not stdin" in capsys.readouterr().err
    (tmp_path / "names").write_text("A\n")
    assert main([*common, str(source), "-S", str(tmp_path / "names"), "-o", str(tmp_path / "o.vcf")]) == 0
    text = (tmp_path / "o.vcf").read_text()
    assert "##FORMAT=<ID=GENOSSM_HLLR" in text and "\tGT:GENOSSM_HLLR:GENOSSM_HVAR\t" in text


def test_phase_sets_other_than_the_windows_are_unphased(hyena_dir, tmp_path):
    """0|1 (PS 10) then 0|1 (PS 20): the second has no known phase relative to the first, so its ALT
    goes to haplotype 1 (trans here); with the same PS both stay on haplotype 2 (cis)."""
    (p1, r1, a1), (p2, r2, a2) = snv(101), snv(103)
    source = tmp_path / "ps.vcf"
    source.write_text("\n".join([
        "##fileformat=VCFv4.2", f"##contig=<ID={C},length={len(SEQ)}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", "other_set", "same_set"]),
        "\t".join([C, str(p1), "a", r1, a1, ".", ".", ".", "GT:PS", "0|1:10", "0|1:10"]),
        "\t".join([C, str(p2), "b", r2, a2, ".", ".", ".", "GT:PS", "0|1:20", "0|1:10"]),
    ]) + "\n")
    out = tmp_path / "out.vcf"
    score_vcf(ScoreJob(input=str(source), fasta=str(LAMBDA), model=str(hyena_dir), outputs=ScoreOutputs(vcf=str(out)),
                       samples=SampleSelection.from_option("all")))
    with pysam.VariantFile(str(out)) as reader:
        first, second = list(reader)
    llr_a, llr_b = first.info["GENOSSM_LLR"][0], second.info["GENOSSM_LLR"][0]
    other = first.samples["other_set"]["GENOSSM_HLLR"]
    assert other == (pytest.approx(llr_b, abs=1e-4), pytest.approx(llr_a, abs=1e-4))
    assert second.samples["other_set"]["GENOSSM_HVAR"] == (pytest.approx(llr_b, abs=1e-4), 0.0)
    same = first.samples["same_set"]["GENOSSM_HLLR"]
    assert same[0] == 0.0 and same[1] != pytest.approx(llr_a, abs=1e-3)


def test_unsorted_input_and_unplaceable_runs(hyena_dir, tmp_path):
    """Records no window can hold, several in a row on one contig, pass; an unsorted input is an error."""
    header = ["##fileformat=VCFv4.2", f"##contig=<ID={C},length={len(SEQ)}>", "##contig=<ID=elsewhere,length=9000>",
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
              "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", "s"])]
    line = lambda contig, pos, ref, alt: "\t".join([contig, str(pos), ".", ref, alt, ".", ".", ".", "GT", "0|1"])  # noqa: E731
    placeable = tmp_path / "runs.vcf"
    placeable.write_text("\n".join(header + [line("elsewhere", 10, "A", "G"), line("elsewhere", 20, "A", "G"),
                                             line(C, 101, *snv(101)[1:])]) + "\n")
    out = tmp_path / "runs.out.vcf"
    score_vcf(ScoreJob(input=str(placeable), fasta=str(LAMBDA), model=str(hyena_dir), outputs=ScoreOutputs(vcf=str(out)),
                       skip_unknown=True, samples=SampleSelection.from_option("s")))
    with pysam.VariantFile(str(out)) as reader:
        values = [record.samples["s"]["GENOSSM_HLLR"] for record in reader]
    assert values[0] == values[1] == (None, None) and values[2][0] == 0.0 and values[2][1] is not None
    unsorted = tmp_path / "unsorted.vcf"
    unsorted.write_text("\n".join(header + [line(C, 300, *snv(300)[1:]), line(C, 101, *snv(101)[1:])]) + "\n")
    with pytest.raises(InputError, match="sorted by position"):
        score_vcf(ScoreJob(input=str(unsorted), fasta=str(LAMBDA), model=str(hyena_dir),
                           outputs=ScoreOutputs(vcf=str(tmp_path / "u.vcf")), samples=SampleSelection.from_option("s")))
