"""benchmarks/vep: coding classes checked against an independent translation, splice classes
against the intron's bases, the reserved part of the plant chromosome refused, the Markov SNV
score and the rank AUROC on hand-set values, and one end-to-end run on the bundled sample genome."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from vep import auroc as auroc_module  # noqa: E402
from vep.annotation import Annotation, Transcript, read_prodigal, run_prodigal  # noqa: E402
from vep.build import Genome, draw, enumerate_candidates, substitution_class  # noqa: E402
from vep.codons import BACTERIAL, STANDARD, coding_snvs, CLASSES  # noqa: E402
from vep.setfiles import read_labels, write_set  # noqa: E402
from vep.sources import check_below, read_fasta, to_tokens  # noqa: E402

SAMPLE = ROOT / "genossm" / "resources" / "sample" / "sample_genome.fa.gz"
# Table 1 written the textbook way (TCAG order), independent of vep.codons' ACGT-order string.
TEXTBOOK = dict(zip(("".join(c) for c in itertools.product("TCAG", repeat=3)),
                    "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"))
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def revcomp(sequence: str) -> str:
    return sequence.translate(COMPLEMENT)[::-1]


def translate(cds: str) -> str:
    return "".join(TEXTBOOK[cds[i:i + 3]] for i in range(0, len(cds) - 2, 3))


def sample_sequence() -> tuple[str, str]:
    (name, sequence), = read_fasta(SAMPLE).items()
    return name, sequence


def longest_orfs(sequence: str, strand: str, n: int) -> list[tuple[int, int]]:
    """The n longest ATG..stop ORFs of one strand as genomic [start, end) (hand-made genes)."""
    text = sequence if strand == "+" else revcomp(sequence)
    orfs = []
    for frame in range(3):
        start = None
        for i in range(frame, len(text) - 2, 3):
            codon = text[i:i + 3]
            if start is None and codon == "ATG":
                start = i
            elif start is not None and TEXTBOOK.get(codon) == "*":
                orfs.append((start, i + 3))
                start = None
    orfs = sorted(orfs, key=lambda o: o[0] - o[1])[:n]
    if strand == "-":
        orfs = [(len(text) - e, len(text) - s) for s, e in orfs]
    return orfs


@pytest.fixture(scope="module")
def sample_set():
    """A tiny bacterial-style set on the sample genome: the two longest ORFs of each strand as
    genes, and one spliced, non-coding transcript whose intron is GT..AG."""
    name, sequence = sample_sequence()
    transcripts = [Transcript(f"orf{strand}{i}", name, strand, [orf], [orf])
                   for strand in "+-" for i, orf in enumerate(longest_orfs(sequence, strand, 2))]
    donor = sequence.index("GT", 40_000)
    acceptor = sequence.index("AG", donor + 300) + 2
    spliced = Transcript("spliced", name, "+", [], [(donor - 100, donor), (acceptor, acceptor + 100)])
    annotation = Annotation(transcripts + [spliced], {name: [(s, e) for t in transcripts for s, e in t.cds]},
                            {name: [iv for t in transcripts + [spliced] for iv in t.exons]})
    genome = Genome({name: to_tokens(sequence)}, context=16)
    classes = {"start_lost", "stop_gained", "missense", "synonymous", "splice_donor", "splice_acceptor",
               "deep_intronic", "intergenic"}
    candidates, kept, skipped = enumerate_candidates(genome, annotation, BACTERIAL, classes)
    snvs, available = draw(genome, candidates, kept, dict.fromkeys(sorted(classes), 20), seed=7)
    return sequence, transcripts, spliced, snvs, available, skipped


def mutate(sequence: str, pos: int, alt: str) -> str:
    return sequence[:pos] + alt + sequence[pos + 1:]


def test_coding_snvs_of_a_hand_written_gene():
    gene = to_tokens("ATGAAATGGTAA")  # M K W *
    snvs = coding_snvs(gene, STANDARD)
    found = {(int(o), "ACGT"[a]): CLASSES[c] for o, a, c in zip(snvs.offset, snvs.alt, snvs.consequence)}
    assert found[(3, "T")] == "stop_gained"  # AAA -> TAA
    assert found[(5, "G")] == "synonymous"  # AAA -> AAG, both K
    assert found[(5, "C")] == "missense"  # AAC: N
    assert found[(8, "A")] == "stop_gained"  # TGG -> TGA
    assert found[(0, "G")] == "start_lost"  # table 1: GTG is no start
    assert not any(o >= 9 for o, _ in found)  # the stop codon itself is not a class here
    bacterial = {(int(o), "ACGT"[a]): CLASSES[c] for o, a, c in zip(*(lambda s: (s.offset, s.alt, s.consequence))(
        coding_snvs(gene, BACTERIAL)))}
    assert (0, "G") not in bacterial and (2, "A") not in bacterial  # GTG, ATA start in table 11
    assert bacterial[(1, "C")] == "start_lost"  # ACG


def test_sample_set_classes_are_what_they_say(sample_set):
    sequence, transcripts, spliced, snvs, available, skipped = sample_set
    assert not skipped
    assert {t.strand for t in transcripts} == {"+", "-"}
    by_name = {t.name: t for t in transcripts}
    seen = set()
    for snv in snvs:
        assert sequence[snv.pos] == snv.ref != snv.alt
        assert snv.substitution == substitution_class(snv.ref, snv.alt)
        seen.add(snv.label)
        if snv.label in CLASSES:
            (start, end), = by_name[snv.feature].cds
            before, after = sequence[start:end], mutate(sequence, snv.pos, snv.alt)[start:end]
            if snv.strand == "-":
                before, after = revcomp(before), revcomp(after)
            protein, mutant = translate(before), translate(after)
            if snv.label == "synonymous":
                assert protein == mutant and before[:3] == after[:3]
            elif snv.label == "missense":
                assert sum(a != b for a, b in zip(protein, mutant)) == 1 and "*" not in mutant[:-1]
            elif snv.label == "stop_gained":
                assert "*" in mutant[:-1] and "*" not in protein[:-1]
            else:
                assert before[:3] in BACTERIAL.starts and after[:3] not in BACTERIAL.starts
        elif snv.label == "intergenic":
            assert all(not (s <= snv.pos < e) for t in transcripts for s, e in t.cds)
        else:
            (_, intron_start), (intron_end, _) = spliced.exons
            assert sequence[intron_start:intron_start + 2] == "GT" and sequence[intron_end - 2:intron_end] == "AG"
            offset = {"splice_donor": snv.pos - intron_start, "splice_acceptor": intron_end - 1 - snv.pos}
            if snv.label in offset:
                assert offset[snv.label] in (0, 1)
            else:
                assert min(snv.pos - intron_start, intron_end - 1 - snv.pos) >= 50
    assert seen == set(available) and available["splice_donor"] == 6  # 2 bases x 3 alts


def test_draws_are_deterministic_and_per_class(sample_set):
    sequence, transcripts, spliced, snvs, available, _ = sample_set
    name, _ = sample_sequence()
    genome = Genome({name: to_tokens(sequence)}, context=16)
    annotation = Annotation(transcripts, {name: [iv for t in transcripts for iv in t.cds]},
                            {name: [iv for t in transcripts for iv in t.cds]})
    candidates, kept, _ = enumerate_candidates(genome, annotation, BACTERIAL, {"synonymous", "missense"})
    first, _ = draw(genome, candidates, kept, {"synonymous": 20, "missense": 20}, seed=7)
    again, _ = draw(genome, candidates, kept, {"synonymous": 20, "missense": 5}, seed=7)
    other, _ = draw(genome, candidates, kept, {"synonymous": 20}, seed=8)
    key = lambda vs, label: [(v.pos, v.alt) for v in vs if v.label == label]  # noqa: E731
    assert key(first, "synonymous") == key(again, "synonymous") == key(
        [v for v in snvs if v.label == "synonymous"], "synonymous")
    assert key(first, "synonymous") != key(other, "synonymous")


def test_reserved_part_of_the_chromosome_is_refused():
    near = Transcript("t", "c", "+", [(100, 200)], [(100, 200)])
    check_below([], [near], limit=200)
    with pytest.raises(SystemExit, match="reserved"):
        check_below([], [near], limit=199)


@pytest.mark.skipif(shutil.which("prodigal") is None, reason="prodigal not installed (.ci/run installs it)")
def test_prodigal_genes_on_the_sample_genome(tmp_path):
    gff = run_prodigal(SAMPLE, tmp_path / "sample.gff")
    annotation = read_prodigal(gff, {"N315": "S"})
    name, sequence = sample_sequence()
    strands = set()
    for transcript in annotation.transcripts:
        (start, end), = transcript.cds
        cds = sequence[start:end] if transcript.strand == "+" else revcomp(sequence[start:end])
        assert len(cds) % 3 == 0 and cds[:3] in BACTERIAL.starts and translate(cds)[-1] == "*"
        strands.add(transcript.strand)
    assert strands == {"+", "-"} and len(annotation.transcripts) > 40  # ~1 gene per kb


def brute_auroc(positive, negative):
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def test_auroc_on_hand_set_scores():
    auroc = auroc_module.auroc
    assert auroc([3, 4], [1, 2]) == 1.0 and auroc([1, 2], [3, 4]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    assert auroc([2, 1], [1, 0]) == 0.875  # 2>1, 2>0, 1=1 (half), 1>0
    assert auroc([2, np.nan], [1]) == 1.0 and np.isnan(auroc([np.nan], [1]))
    assert auroc_module.average_ranks(np.array([10.0, 20, 20, 30])).tolist() == [1, 2.5, 2.5, 4]
    rng = np.random.default_rng(0)
    positive, negative = rng.integers(0, 5, 37).astype(float), rng.integers(0, 5, 23).astype(float)
    assert auroc(positive, negative) == pytest.approx(brute_auroc(positive, negative), abs=1e-12)


def test_pair_table_within_substitution_classes():
    labels = np.array(["stop"] * 12 + ["syn"] * 12)
    subs = np.array(["S>W"] * 12 + ["S>W"] * 10 + ["W>S"] * 2)
    score = np.concatenate([np.arange(12) + 100.0, np.arange(12.0)])
    table = auroc_module.pair_table({"s": score}, labels, subs, ("stop",), ("syn",))
    assert table["n"] == [12, 12] and table["pooled"]["s"] == 1.0
    assert table["by_substitution"]["S>W"] == {"n": [12, 10], "s": 1.0}
    assert table["by_substitution"]["W>S"] == {"n": [0, 2], "s": None}  # too few to report
    genomes = np.array(["a"] * 6 + ["b"] * 6 + ["a"] * 12)
    split = auroc_module.pair_table({"s": -score}, labels, subs, ("stop",), ("syn",), min_per_side=6, genomes=genomes)
    assert split["by_genome"] == {"a": {"n": [6, 12], "s": 0.0}, "b": {"n": [6, 0], "s": None}}


def test_markov_snv_score_by_hand():
    from vep.markov import markov_scores
    from markov_baseline import MarkovCounts

    from genossm.tokenizer import encode, reverse_complement_tokens

    counts = MarkovCounts(max_order=1)
    tokens = encode("AACAGTTA")
    counts.add(tokens)
    counts.add(reverse_complement_tokens(tokens))
    windows = np.array([encode("CAG")])  # the SNV A>G in the middle; k <= 1
    scores = markov_scores(windows, np.array([2]), counts, alpha=1.0)
    p0 = (counts.counts[0] + 1) / (counts.counts[0].sum() + 4)
    # Order 0, both strands: forward A->G, reverse T->C.
    expected0 = (np.log(p0[2]) - np.log(p0[0]) + np.log(p0[1]) - np.log(p0[3])) / 2
    assert scores[0][0] == pytest.approx(expected0)
    table = (counts.counts[1].reshape(4, 4) + 1.0)
    p1 = table / table.sum(axis=1, keepdims=True)
    a, c, g, t = 0, 1, 2, 3
    forward = np.log(p1[c, g]) + np.log(p1[g, g]) - np.log(p1[c, a]) - np.log(p1[a, g])  # CGG vs CAG
    backward = np.log(p1[c, c]) + np.log(p1[c, g]) - np.log(p1[c, t]) - np.log(p1[t, g])  # CCG vs CTG
    assert scores[1][0] == pytest.approx((forward + backward) / 2)


def test_evaluate_end_to_end_on_the_sample(sample_set, tmp_path):
    from vep.evaluate import evaluate

    sequence, _, _, snvs, _, _ = sample_set
    name, _ = sample_sequence()
    reference = tmp_path / "reference.fa"
    with gzip.open(SAMPLE, "rb") as src:
        reference.write_bytes(src.read())
    picked = [v for v in snvs if v.label in ("stop_gained", "synonymous", "intergenic")][::4]
    record = {"set": "sample", "seed": 7, "count_per_class": 20, "context": 16, "candidates": {},
              "markov_train": [str(SAMPLE)], "command": "test"}
    write_set(tmp_path, picked, {name: len(sequence)}, record)
    result = evaluate(tmp_path, record, read_labels(tmp_path / "labels.tsv"), max_order=2)
    assert result["genossm_scored_ok"] == len(picked)
    assert set(result["summary"]) == {"stop_gained vs synonymous", "coding vs intergenic",
                                      "stop_gained vs intergenic", "synonymous vs intergenic"}
    row = result["summary"]["stop_gained vs synonymous"]
    assert row["n"] == [5, 5] and 0 <= row["genossm_llr"] <= 1 and row["markov_best_k"] in (0, 1, 2)
    assert "by_genome" not in result["pairs"]["stop_gained vs synonymous"]  # one genome
    again = evaluate(tmp_path, record, read_labels(tmp_path / "labels.tsv"), max_order=1, reuse_scores=True)
    assert again["genossm_score_seconds"] == result["genossm_score_seconds"]
    assert again["pairs"]["stop_gained vs synonymous"]["pooled"]["genossm_llr"] == row["genossm_llr"]
    assert result["model_sha256"] and result["genossm_score_records_per_second"] > 0
    json.dumps(result)


def test_markov_best_row_picks_the_best_order_in_each_stratum():
    from vep.definitions import with_markov_best

    table = {"pooled": {"site both": 0.9, "markov_k0": 0.5, "markov_k1": 0.7, "markov_k2": 0.7},
             "by_substitution": {"S>W": {"markov_k0": 0.5, "markov_k1": 0.4, "markov_k2": 0.6},
                                 "W>S": {"markov_k0": None, "markov_k1": None, "markov_k2": None}}}
    best = with_markov_best(table)["markov_best"]
    assert best["pooled"] == {"k": 1, "auroc": 0.7}  # a tie goes to the lower order
    assert best["by_substitution"] == {"S>W": {"k": 2, "auroc": 0.6}, "W>S": None}


def _write_sample_subset(sample_set, tmp_path, classes, every):
    sequence, _, _, snvs, _, _ = sample_set
    name, _ = sample_sequence()
    tmp_path.mkdir(parents=True, exist_ok=True)
    with gzip.open(SAMPLE, "rb") as src:
        (tmp_path / "reference.fa").write_bytes(src.read())
    picked = [v for v in snvs if v.label in classes][::every]
    record = {"set": "sample", "seed": 7, "count_per_class": 20, "context": 16, "candidates": {},
              "markov_train": [str(SAMPLE)], "command": "test"}
    write_set(tmp_path, picked, {name: len(sequence)}, record)
    return read_labels(tmp_path / "labels.tsv")


def test_compare_causal_with_markov_rows(sample_set, tmp_path):
    from vep.definitions import compare, markdown
    from vep.evaluate import context_windows
    from vep.markov import count_genomes, markov_scores

    labels = _write_sample_subset(sample_set, tmp_path, ("stop_gained", "synonymous"), 5)
    result = compare(tmp_path, labels, model_dir=None, window=128, markov_train=[str(SAMPLE)], max_order=2)
    assert result["objective"] == "causal" and "site_z both" in result["definitions"]
    table = result["tables"]["full_subset"]["stop_gained vs synonymous"]
    stop = np.array([row["class"] == "stop_gained" for row in labels])
    assert table["n"] == [int(stop.sum()), int((~stop).sum())] and min(table["n"]) >= 2
    assert {"llr both", "embdist both", "markov_k2"} <= set(table["pooled"])
    # The Markov rows are vep.markov's scores of the same SNVs (negated: higher = more damaging).
    counts = count_genomes([str(SAMPLE)], 2)
    windows = context_windows(tmp_path / "reference.fa", labels, 2)
    raw = markov_scores(windows, np.array(["ACGT".index(row["alt"]) for row in labels]), counts)[2]
    assert table["pooled"]["markov_k2"] == round(auroc_module.auroc(-raw[stop], -raw[~stop]), 4)
    best = table["markov_best"]["pooled"]
    assert best["auroc"] == max(table["pooled"][f"markov_k{k}"] for k in range(3))
    assert "Markov -LLR, best k" in markdown(result) and "markov_k0" not in markdown(result)
    json.dumps(result)


def test_compare_masked_model_site_is_the_masked_marginal(sample_set, tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from infer_helpers import save_tiny_model
    from vep.definitions import compare

    from genossm.infer.likelihood import load
    from genossm.infer.score.scorer import VariantScorer

    labels = _write_sample_subset(sample_set, tmp_path / "set", ("splice_donor", "deep_intronic"), 4)
    model_dir = save_tiny_model("masked", tmp_path / "masked")
    result = compare(tmp_path / "set", labels, model_dir=str(model_dir), window=64, max_order=-1,
                     markov_train=None)
    assert result["objective"] == "masked" and result["markov"] is None
    assert not any(name.startswith("site_z") for name in result["definitions"])
    assert result["tables"]["all"]["splice vs deep_intronic"]["markov_best"]["pooled"] is None  # no baseline asked
    # Both strands' site scores are the library's masked marginal of each SNV.
    from genossm.infer.score.tiles import TileLayout, allele_pair
    from genossm.io.fasta import open_fasta
    from genossm.tokenizer import encode

    model = load(str(model_dir))
    layout = TileLayout(64)
    with open_fasta(tmp_path / "set" / "reference.fa") as genome:
        pairs = []
        for row in labels:
            position = int(row["pos"]) - 1
            start = layout.tile_start(position)
            tile = genome.fetch_tokens(row["chrom"], start, start + 65, pad=True)
            pairs.append(allele_pair(tile, position - start, 1, encode(row["alt"]), 64))
    expected = [s["site"] for s in VariantScorer(model, both_strands=True, scores=("site",)).score(pairs)]
    np.testing.assert_allclose(np.array(result["per_snv"]["site"]).mean(1), expected, atol=1e-4)


def test_codon_position_of_a_label_detail():
    from vep.codons import codon_position

    assert [codon_position(d) for d in ("CAG>TAG", "ATG>AAG", "AAA>AAG")] == ["1", "2", "3"]
    # Not one codon changed at one base: splice sites, intronic distances, intergenic, malformed.
    assert {codon_position(d) for d in ("intron+1", "distance=66", ".", "CAG>TAA", "CA>TA", "")} == {"."}


def test_pair_table_within_codon_positions():
    # 12 missense and 12 synonymous at position 3, 12 missense at position 1 and 2 synonymous there.
    labels = np.array(["mis"] * 24 + ["syn"] * 14)
    positions = np.array(["3"] * 12 + ["1"] * 12 + ["3"] * 12 + ["1"] * 2)
    subs = np.array(["S>W"] * 38)
    score = np.concatenate([np.arange(12.0), np.arange(12.0) + 100, np.arange(12.0) + 6, [50.0, 51.0]])
    table = auroc_module.pair_table({"s": score}, labels, subs, ("mis",), ("syn",), codon_positions=positions)
    expected3 = auroc_module.auroc(np.arange(12.0), np.arange(12.0) + 6)
    assert table["by_codon_position"]["3"] == {"n": [12, 12], "s": round(expected3, 4)}
    assert table["by_codon_position"]["1"] == {"n": [12, 2], "s": None}  # too few synonymous
    assert table["by_codon_position"]["2"] == {"n": [0, 0], "s": None}
    # A pair with a non-coding side has no codon-position stratum.
    noncoding = auroc_module.pair_table({"s": score}, labels, subs, ("mis",), ("syn",),
                                        codon_positions=np.where(labels == "syn", ".", positions))
    assert "by_codon_position" not in noncoding


def test_retable_adds_codon_positions_and_keeps_computed_cells(sample_set, tmp_path):
    from vep.codons import codon_position
    from vep.definitions import _markov, definition_tables, markdown, retable

    labels = _write_sample_subset(sample_set, tmp_path, ("stop_gained", "missense", "synonymous"), 1)
    for row in labels[::2]:  # enough third positions on both sides for a reported cell
        if row["class"] == "missense":
            row["detail"] = "GAT>GAA"
    rng = np.random.default_rng(3)
    n = len(labels)
    per_strand = {"site": rng.normal(size=(n, 2)), "llr": rng.normal(size=(n, 2)),
                  "embcos": np.round(rng.uniform(0, 2e-5, size=(n, 2)), 5)}  # rounding ties it
    per_strand["llr"][::3] = np.nan  # outside the full subset
    per_strand["embcos"][::3] = np.nan
    in_full = ~np.isnan(per_strand["llr"]).any(1)
    markov, markov_record = _markov(tmp_path, labels, [str(SAMPLE)], 2)
    _, exact = definition_tables(per_strand, labels, markov, in_full)
    old = json.loads(json.dumps({"tables": exact, "markov": markov_record,
                                 "per_snv": {"ids": [row["id"] for row in labels],
                                             **{k: v.tolist() for k, v in per_strand.items()}}}))
    for table in (t for subset in old["tables"].values() for t in subset.values()):
        table.pop("by_codon_position", None)
        table["markov_best"].pop("by_codon_position", None)
    old["tables"]["full_subset"]["missense vs synonymous"]["pooled"]["llr both"] = 0.123  # "as computed"
    kept = {"stop_gained vs synonymous": dict(old["tables"]["all"]["stop_gained vs synonymous"], n=[-1, -1])}
    old["tables"]["all_with_genossm_score"] = kept  # scores not in per_snv: kept whole

    result = retable(old, tmp_path, list(reversed(labels)))  # labels are looked up by id
    full = result["tables"]["full_subset"]["missense vs synonymous"]
    assert full["pooled"]["llr both"] == 0.123 and result["tables"]["all_with_genossm_score"] == kept
    assert result["retabled"]["per_snv_too_coarse"] == ["embcos both", "embcos forward"]
    # The codon-position cells are pair_table's on the same scores; the tied score gets none.
    positions = np.array([codon_position(row["detail"]) for row in labels])
    classes = np.array([row["class"] for row in labels])
    assert set(full["by_codon_position"]) == {"1", "2", "3"}
    for key, cell in full["by_codon_position"].items():
        assert cell["llr both"] == exact["full_subset"]["missense vs synonymous"]["by_codon_position"][key]["llr both"]
        assert cell["embcos both"] is None
        assert cell["n"] == [int(((classes == c) & (positions == key) & in_full).sum()) for c in ("missense", "synonymous")]
    assert full["by_codon_position"]["3"]["llr both"] is not None  # >= 10 a side (the relabelled missense)
    assert result["tables"]["all"]["stop_gained vs synonymous"]["markov_best"]["by_codon_position"].keys() == {"1", "2", "3"}
    assert "codon pos 3" in markdown(result)
    json.dumps(result)
