"""Score definitions (`genossm score --score`): every fast path against the naive scorer, hand-set
weights with known answers, the header texts, the training-window default, and the Python API."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from genossm.errors import UsageError
from genossm.infer.likelihood import base_log_probabilities, position_log_likelihoods, score_variants
from genossm.infer.score.definitions import SCORE_NAMES, description, parse_scores
from genossm.infer.score.outputs import info_fields
from genossm.infer.score.scorer import VariantScorer, score_pairs_naive
from genossm.infer.score.settings import default_window, training_window
from genossm.infer.score.tiles import TileLayout, allele_pair
from genossm.tokenizer import encode
from infer_helpers import lambda_sequence, random_allele_pairs, tiny_model
from test_score import WINDOW, ConstantCausalLM


def deep_model(kind: str):
    """A tiny model with 2 blocks, so the middle block is not the last one."""
    from genossm.models.config import ModelConfig
    from genossm.models.lm import build_model
    from infer_helpers import TINY_CONFIGS

    torch.manual_seed(0)
    return build_model(ModelConfig(**{**TINY_CONFIGS[kind], "n_layers": 2})).eval()


@pytest.mark.parametrize("kind, both_strands", [("hyena", True), ("mamba", False), ("masked", True)])
def test_every_definition_matches_the_naive_scorer(kind, both_strands):
    model = deep_model(kind)
    pairs = random_allele_pairs(3, 3 if kind == "masked" else 10, WINDOW)
    naive = score_pairs_naive(model, pairs, both_strands=both_strands, scores=SCORE_NAMES)
    fast = VariantScorer(model, both_strands=both_strands, batch_size=4, scores=SCORE_NAMES).score(pairs)
    for name in SCORE_NAMES:
        np.testing.assert_allclose([s[name] for s in fast], [s[name] for s in naive], atol=1e-5, rtol=1e-4,
                                   err_msg=name)
    assert all(s["embcos_mid"] > 0 and s["embdist_mid"] > 0 for s in naive)
    # The middle block's output is not the final hidden state: the two distances differ.
    assert not np.allclose([s["embdist_mid"] for s in naive], [s["embdist"] for s in naive])


@pytest.mark.parametrize("kind", ["hyena", "mamba"])
def test_site_of_snvs_reads_only_the_reference_windows(kind):
    model = tiny_model(kind)
    pairs = random_allele_pairs(4, 12, WINDOW)  # SNVs and indels mixed
    naive = score_pairs_naive(model, pairs, both_strands=True, scores=("site",))
    seen = []
    original = model.forward

    def recording(tokens, *args, **kwargs):
        seen.extend(row.tobytes() for row in tokens.to(torch.uint8).numpy())
        return original(tokens, *args, **kwargs)

    model.forward = recording
    snvs = [p for p in pairs if p.ref_length == 1 and p.alt_length == 1]
    assert snvs and len(snvs) < len(pairs)
    fast = VariantScorer(model, batch_size=5, scores=("site",), reuse_prefix_state=False).score(pairs)
    np.testing.assert_allclose([s["site"] for s in fast], [s["site"] for s in naive], atol=1e-5, rtol=1e-4)
    # SNVs alone: every window the model saw is a reference window (either strand), no alt window.
    seen.clear()
    VariantScorer(model, batch_size=5, scores=("site",)).score(snvs)
    references = {w.tobytes() for p in snvs for w in (p.strand(False).ref, p.strand(True).ref)}
    assert seen and set(seen) <= references


def test_hand_set_weights_give_known_site_and_cosine():
    """Every position predicts A with logit 2 (log P(A) - log P(other) = 2); hidden = one-hot token."""
    model = ConstantCausalLM()
    tile = np.array([1, 2, 3] * 30, dtype=np.uint8)  # C G T repeated
    snv = allele_pair(tile, 21, 1, np.array([0], dtype=np.uint8), WINDOW)  # C -> A
    deletion = allele_pair(tile, 21, 2, np.array([1], dtype=np.uint8), WINDOW)  # CG -> C
    insertion = allele_pair(tile, 21, 1, np.array([1, 0], dtype=np.uint8), WINDOW)  # C -> CA
    names = ("site", "embcos", "llr")
    forward = VariantScorer(model, both_strands=False, scores=names).score([snv, deletion, insertion])
    assert forward[0]["site"] == pytest.approx(2.0, abs=1e-6)  # A gained at the site
    assert forward[1]["site"] == pytest.approx(0.0, abs=1e-6)  # G lost, T in its place: neither is A
    assert forward[2]["site"] == pytest.approx(2.0, abs=1e-6)  # the inserted A
    # Reverse strand: C -> A is G -> T, no A: site 0 there, 1 on average; site-only path too.
    assert VariantScorer(model, scores=("site",)).score([snv])[0]["site"] == pytest.approx(1.0, abs=1e-6)
    assert score_pairs_naive(model, [snv], scores=("site",))[0]["site"] == pytest.approx(1.0, abs=1e-6)
    # Cosine distance of the window-mean one-hot vectors: ref counts C 22, G 21, T 21 of 64; alt A 1, C 21.
    ref, alt = np.array([0, 22, 21, 21.0]), np.array([1, 21, 21, 21.0])
    expected = 1 - ref @ alt / (np.linalg.norm(ref) * np.linalg.norm(alt))
    assert forward[0]["embcos"] == pytest.approx(expected, rel=1e-5)


def test_site_is_antisymmetric_for_indels():
    """Scoring ALT->REF on the genome carrying ALT gives -site, for a deletion in a repeat too."""
    model = tiny_model("hyena")
    genome = np.array(encode("ACGTTTTGCA" * 12), dtype=np.uint8)
    forward = allele_pair(genome, 20, 3, genome[20:21], WINDOW)  # ATT -> A inside TTTT
    carrier = np.concatenate([genome[:21], genome[23:]])
    back = allele_pair(carrier, 20, 1, genome[20:23], WINDOW)
    there, back_score = VariantScorer(model, scores=("site",)).score([forward, back])
    assert back_score["site"] == pytest.approx(-there["site"], abs=1e-5)
    assert abs(there["site"]) > 1e-4


def test_headers_say_what_was_computed():
    both = description("llr", "causal", True)
    one = description("llr", "causal", False)
    assert "both" not in one and "mean of" not in one and "forward strand only" in one
    assert "forward and reverse-complement" in both
    assert "masked" in description("site", "masked", True)
    assert "after block 2 of 4" in description("embdist_mid", "causal", True, n_layers=4)
    fields = info_fields(("site", "embcos"), "causal", False, 4)
    assert [f[0] for f in fields] == ["GENOSSM_SITE", "GENOSSM_EMBCOS", "GENOSSM_STATUS", "GENOSSM"]
    assert fields[-1][3].endswith("Format: Allele|SITE|EMBCOS|STATUS|Consequence")


def test_parse_scores():
    assert parse_scores("site, llr,site") == ("site", "llr")
    with pytest.raises(UsageError, match="nonsense"):
        parse_scores("site,nonsense")
    with pytest.raises(UsageError):
        parse_scores(",")


def test_default_window_is_the_training_window(caplog):
    old = {"training": {"training": {"recipe": {"data": {"window_length": 256}}}}}
    assert training_window({"training": {"window": 512}}) == 512
    assert training_window(old) == 256
    assert training_window({"training": {}}) is None
    assert default_window(1024, None, 256) == 256
    assert default_window(4096, None, None) == 2048  # nothing recorded: max_length, capped
    with caplog.at_level(logging.WARNING, logger="genossm.infer.score"):
        assert default_window(1024, 1024, 256) == 1024
    assert "larger than the 256-base windows" in caplog.text


def test_likelihood_api_matches_a_manual_pass():
    model = tiny_model("hyena")
    sequence = lambda_sequence()[:50]
    tokens = torch.from_numpy(encode(sequence).astype(np.int64))[None]
    expected = torch.log_softmax(model(tokens)[0, :-1, :4], -1)  # (49, 4): predicts positions 1..49
    log_probs = base_log_probabilities(model, sequence)
    assert np.isnan(log_probs[0]).all()
    np.testing.assert_allclose(log_probs[1:], expected.detach().numpy(), atol=1e-6)
    per_base = position_log_likelihoods(model, sequence)
    picked = expected.detach().numpy()[np.arange(49), encode(sequence)[1:]]
    np.testing.assert_allclose(per_base[1:], picked, atol=1e-6)


def test_likelihood_api_masked_model_masks_each_position():
    model = tiny_model("masked")
    sequence = "ACGTACGGTCA"
    log_probs = base_log_probabilities(model, sequence, batch_size=4)
    masked = encode(sequence).astype(np.int64)
    masked[5] = 5  # MASK
    expected = torch.log_softmax(model(torch.from_numpy(masked)[None])[0, 5, :4], -1)
    np.testing.assert_allclose(log_probs[5], expected.detach().numpy(), atol=1e-6)


def test_score_variants_in_memory_equals_the_scorer_on_tiles():
    model = tiny_model("hyena")
    sequence = lambda_sequence()[:400]
    variants = [(101, sequence[100], "A" if sequence[100] != "A" else "C"), (250, sequence[249:252], sequence[249])]
    got = score_variants(model, sequence, variants, scores="site,llr", window=WINDOW)
    layout = TileLayout(WINDOW)
    pairs = []
    for pos, ref, alt in variants:
        start = layout.tile_start(pos - 1)
        tile = encode(sequence[start:start + WINDOW + 8])
        pairs.append(allele_pair(tile, pos - 1 - start, len(ref), encode(alt), WINDOW))
    expected = score_pairs_naive(model, pairs, scores=("site", "llr"))
    for values, reference in zip(got, expected):
        assert values == pytest.approx(reference.values, abs=1e-5)
    with pytest.raises(Exception, match="does not match"):
        score_variants(model, sequence, [(101, "N", "A")], window=WINDOW)


def test_cli_writes_each_definition_with_a_header_that_says_what_it_is(tmp_path, capsys):
    from genossm.cli.main import main
    from infer_helpers import save_tiny_model, write_fasta, write_vcf

    sequence = lambda_sequence()[:600]
    fasta = write_fasta(tmp_path / "g.fa", {"chrT": sequence})
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    vcf = write_vcf(tmp_path / "v.vcf", {"chrT": 600}, [("chrT", 200, "a", sequence[199], other[sequence[199]]),
                                                        ("chrT", 300, "b", sequence[299:301], sequence[299])])
    model = save_tiny_model("hyena", tmp_path / "model")
    code = main(["-q", "score", str(vcf), "--fasta", str(fasta), "--model", str(model), "--score", "site,embcos",
                 "--no-rc", "-o", str(tmp_path / "o.vcf"), "--tsv", str(tmp_path / "o.tsv")])
    assert code == 0
    text = (tmp_path / "o.vcf").read_text()
    headers = [line for line in text.splitlines() if line.startswith("##INFO=<ID=GENOSSM")]
    assert [h.split(",")[0] for h in headers] == ["##INFO=<ID=GENOSSM_SITE", "##INFO=<ID=GENOSSM_EMBCOS",
                                                  "##INFO=<ID=GENOSSM_STATUS", "##INFO=<ID=GENOSSM"]
    assert all("forward strand only" in h and "both strands" not in h for h in headers[:2])
    assert "GENOSSM_LLR" not in text and "scores:site,embcos" in text
    tsv = (tmp_path / "o.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[-3:] == ["site", "embcos", "status"]
    # The same numbers as the library on the same windows (the SNV: site from the reference pass).
    expected = score_variants(tiny_model("hyena"), sequence, [(200, sequence[199], other[sequence[199]])],
                              scores=("site", "embcos"), window=64, both_strands=False)[0]
    site, embcos = (float(v) for v in tsv[1].split("\t")[6:8])
    assert site == pytest.approx(expected["site"], rel=1e-5) and embcos == pytest.approx(expected["embcos"], rel=1e-4)


def test_cli_help_lists_every_definition_and_the_default():
    import subprocess
    import sys

    from genossm.infer.score.definitions import DEFAULT_SCORES

    text = subprocess.run([sys.executable, "-m", "genossm.cli.main", "score", "--help"], capture_output=True,
                          text=True, check=True).stdout
    flat = " ".join(text.split())
    assert all(name in flat for name in SCORE_NAMES)
    assert f"(default: {','.join(DEFAULT_SCORES)})" in flat
