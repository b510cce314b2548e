"""Variant scoring: fast path == reference, known effects, antisymmetry, and the CLI end to end."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from genossm.cli.main import main
from genossm.infer.score.chunks import ChunkScorer
from genossm.infer.score.resume_log import ResumeLog, resume_log_path
from genossm.infer.score.rows import ScoreRow
from genossm.infer.score.scorer import VariantScorer, score_pairs_naive
from genossm.infer.score.settings import ScoreSettings
from genossm.infer.score.tiles import allele_pair
from genossm.io.fasta import open_fasta
from genossm.io.vcf import read_variants
from infer_helpers import (EDGE_CASES, LAMBDA, LAMBDA_CONTIG, lambda_sequence, random_allele_pairs, save_tiny_model,
                           tiny_model, write_fasta, write_vcf)

WINDOW = 64


@pytest.fixture(scope="module")
def hyena_dir(tmp_path_factory):
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


@pytest.mark.parametrize("kind, both_strands", [
    ("hyena", True), ("hyena", False), ("mamba", True), ("mamba", False),
    ("masked", True),  # the bidirectional model is slow on CPU: one case, few ALTs
])
def test_fast_scorer_matches_naive(kind, both_strands):
    model = tiny_model(kind)
    pairs = random_allele_pairs(1, 4 if kind == "masked" else 12, WINDOW)
    naive = score_pairs_naive(model, pairs, both_strands=both_strands)
    fast = VariantScorer(model, both_strands=both_strands, batch_size=5).score(pairs)
    assert [round(s.llr, 4) for s in fast] == pytest.approx([round(s.llr, 4) for s in naive], abs=2e-4)
    np.testing.assert_allclose([s.llr for s in fast], [s.llr for s in naive], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose([s.embdist for s in fast], [s.embdist for s in naive], atol=1e-5, rtol=1e-4)
    assert all(np.isfinite(s.llr) for s in fast)


def test_mamba_fast_path_reuses_prefix_state():
    model = tiny_model("mamba")
    scorer = VariantScorer(model, both_strands=False)
    assert scorer.reuse_prefix_state
    calls = []
    original = model.forward_with_state

    def counting(tokens, state=None):
        calls.append(tokens.shape)
        return original(tokens, state)

    model.forward_with_state = counting
    pairs = random_allele_pairs(2, 6, WINDOW)
    scorer.score(pairs)
    suffix_calls = [shape for shape in calls if shape[0] > 1]
    assert suffix_calls and all(shape[1] < WINDOW for shape in suffix_calls)


class ConstantCausalLM(nn.Module):
    """Hand-set weights with a known effect: every position predicts A with logit 2, the others 0.

    log P(A) - log P(C|G|T) = 2 exactly, so an LLR is 2 x (As in the alt suffix - As in the ref one).
    """

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(objective="causal", max_length=WINDOW)
        self.logits = nn.Parameter(torch.tensor([2.0, 0.0, 0.0, 0.0, -5.0, -5.0, -5.0]), requires_grad=False)

    def forward(self, tokens, return_embeddings=False):
        logits = self.logits.expand(*tokens.shape, 7)  # (B, L, V)
        hidden = nn.functional.one_hot(tokens, 7).float()  # (B, L, 7)
        return (logits, hidden) if return_embeddings else logits


def test_hand_set_weights_give_known_llr():
    model = ConstantCausalLM()
    tile = np.array([1, 2, 3] * 30, dtype=np.uint8)  # C G T repeated: no A anywhere
    snv = allele_pair(tile, 21, 1, np.array([0], dtype=np.uint8), WINDOW)  # C -> A
    deletion = allele_pair(tile, 21, 2, np.array([1], dtype=np.uint8), WINDOW)  # CG -> C
    forward = VariantScorer(model, both_strands=False).score([snv, deletion])
    assert forward[0].llr == pytest.approx(2.0, abs=1e-6)  # one more A after the variant
    assert forward[1].llr == pytest.approx(0.0, abs=1e-6)  # no A appears or disappears
    # Reverse strand of C -> A is G -> T: neither is A, so 0; the mean of both strands is 1.
    both = VariantScorer(model).score([snv])
    assert both[0].llr == pytest.approx(1.0, abs=1e-6)
    assert score_pairs_naive(model, [snv])[0].llr == pytest.approx(1.0, abs=1e-6)
    # Embedding distance: mean one-hot shifts by 1/W from C to A.
    assert forward[0].embdist == pytest.approx(np.sqrt(2) / WINDOW, rel=1e-5)


def apply_variant(sequence: str, pos: int, ref: str, alt: str) -> str:
    assert sequence[pos - 1:pos - 1 + len(ref)].upper() == ref
    return sequence[:pos - 1] + alt + sequence[pos - 1 + len(ref):]


@pytest.mark.parametrize("kind", ["hyena", "mamba", "masked"])
def test_llr_is_antisymmetric(tmp_path, kind):
    """Scoring ALT->REF on a genome carrying ALT gives -LLR (SNVs, MNVs and indels alike)."""
    sequence = lambda_sequence()[:3000]
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    variants = [
        (150, sequence[149], other[sequence[149]]),  # SNV
        (700, sequence[699:701], other[sequence[699]] + other[sequence[700]]),  # MNV
        (1200, sequence[1199], sequence[1199] + "TTG"),  # insertion
        (2300, sequence[2299:2302], sequence[2299]),  # deletion
        (2995, sequence[2994], other[sequence[2994]]),  # SNV near the contig end (N padding)
    ]
    if kind == "masked":  # slow on CPU: an SNV and the two indels
        variants = [variants[0], variants[2], variants[3]]
    model = tiny_model(kind)
    settings = ScoreSettings(window=WINDOW, max_allele_length=8)
    forward = score_records(tmp_path / "ref", {"chrT": sequence}, variants, model, settings)
    for (pos, ref, alt), llr in zip(variants, forward):
        carrier = apply_variant(sequence, pos, ref, alt)
        (back,) = score_records(tmp_path / f"alt{pos}", {"chrT": carrier}, [(pos, alt, ref)], model, settings)
        assert back == pytest.approx(-llr, abs=2e-5), (pos, ref, alt)


def score_records(directory, contigs, variants, model, settings):
    directory.mkdir()
    fasta = write_fasta(directory / "g.fa", contigs)
    vcf = write_vcf(directory / "v.vcf", {n: len(s) for n, s in contigs.items()},
                    [("chrT", pos, f"v{pos}", ref, alt) for pos, ref, alt in variants])
    with open_fasta(fasta) as genome:
        scorer = ChunkScorer(model, genome, settings, "cpu", source=str(vcf))
        rows, _ = scorer.score(list(enumerate(read_variants(vcf))))
    assert all(row.status == "ok" for row in rows)
    return [row.llr for row in rows]


def query(path, fmt):
    result = subprocess.run(["bcftools", "query", "-f", fmt, str(path)], capture_output=True, text=True, check=True)
    return result.stdout.strip().split("\n")


def count_records(path) -> int:
    result = subprocess.run(["bcftools", "view", "-H", str(path)], capture_output=True, text=True, check=True)
    return len(result.stdout.strip().split("\n"))


EXPECTED_STATUS = {
    "rs1": "ok", "ins1": "ok", "mnv1": "ok", "del1": "ok", "multi1": "ok,ok,ok", "star1": "ok,star",
    "sv1": "symbolic", "bnd1": "symbolic", "lower1": "ok", "nref1": "masked_reference", "mismatch1": "ref_mismatch",
    "complex1": "ok", "pastend1": "out_of_bounds", "rs2": "ok", "unk1": "unknown_contig",
    "nohdr1": "unknown_contig", ".": ".",  # ALT '.': no Number=A value can be written
}


def test_edge_cases_every_record_comes_out(tmp_path, hyena_dir):
    out = tmp_path / "scored.vcf.gz"
    tsv = tmp_path / "scored.tsv"
    code = main(["-q", "score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                 "--skip-unknown", "--max-allele-length", "16", "-o", str(out), "--tsv", str(tsv)])
    assert code == 0
    assert count_records(out) == count_records(EDGE_CASES) == 18
    input_ids = query(EDGE_CASES, "%ID\n")
    assert query(out, "%ID\t%INFO/GENOSSM_STATUS\n") == [f"{i}\t{EXPECTED_STATUS[i]}" for i in input_ids]
    llrs = dict(line.split("\t") for line in query(out, "%ID\t%INFO/GENOSSM_LLR\n"))
    assert llrs["mismatch1"] == "." and llrs["unk1"] == "." and llrs["star1"].endswith(",.")
    scored = [value for key, value in llrs.items() if EXPECTED_STATUS[key] == "ok"]
    assert all(np.isfinite(float(value)) for value in scored)
    lines = tsv.read_text().strip().split("\n")
    assert lines[0].split("\t")[-1] == "status"
    statuses = [line.split("\t")[-1] for line in lines[1:]]
    assert "missing_alt" in statuses and len(lines) - 1 == 21  # one line per ALT (18 records, 21 ALTs)
    header = subprocess.run(["bcftools", "view", "-h", str(out)], capture_output=True, text=True).stdout
    assert "##genossm_model_sha256=" in header and "##genossm_command=genossm score" in header
    assert "##genossm_version=" in header


def test_unknown_contig_is_an_error_naming_close_names(tmp_path, hyena_dir, capsys):
    vcf = write_vcf(tmp_path / "v.vcf", {"gi|9626243|ref|NC_001416.2|": 48502},
                    [("gi|9626243|ref|NC_001416.2|", 10, "x", "A", "C")])
    code = main(["score", str(vcf), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "-o", str(tmp_path / "o.vcf.gz")])
    err = capsys.readouterr().err
    assert code == 1
    assert "NC_001416.1" in err and "--skip-unknown" in err and "v.vcf:" in err
    assert not (tmp_path / "o.vcf.gz").exists()


def test_too_long_alleles_get_a_status(tmp_path, hyena_dir):
    sequence = lambda_sequence()
    vcf = write_vcf(tmp_path / "v.vcf", {LAMBDA_CONTIG: 48502},
                    [(LAMBDA_CONTIG, 1000, "long", sequence[999:1010], sequence[999]),
                     (LAMBDA_CONTIG, 2000, "short", sequence[1999], "T" if sequence[1999] != "T" else "A")])
    out = tmp_path / "o.vcf.gz"
    assert main(["-q", "score", str(vcf), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                 "--max-allele-length", "5", "-o", str(out)]) == 0
    assert query(out, "%ID\t%INFO/GENOSSM_STATUS\n") == ["long\ttoo_long", "short\tok"]


def test_stdin_to_stdout_and_determinism(tmp_path, hyena_dir):
    command = [sys.executable, "-m", "genossm.cli.main", "-q", "score", "-", "--fasta", str(LAMBDA),
               "--model", str(hyena_dir), "--skip-unknown", "--max-allele-length", "16"]
    first = subprocess.run(command, stdin=open(EDGE_CASES, "rb"), capture_output=True, check=True)
    second = subprocess.run(command, stdin=open(EDGE_CASES, "rb"), capture_output=True, check=True)
    assert first.stdout == second.stdout  # same bytes twice
    text = first.stdout.decode()
    assert text.startswith("##fileformat=VCF")
    body = [line for line in text.split("\n") if line and not line.startswith("#")]
    assert len(body) == 18
    assert b"scoring" not in first.stderr  # -q: no progress bar
    out = tmp_path / "stdout.vcf"
    out.write_bytes(first.stdout)
    assert count_records(out) == 18


def test_resume_after_crash_gives_identical_file(tmp_path, hyena_dir, monkeypatch):
    # Same relative output names in two directories: the header's command line is then the same.
    common = ["-q", "score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
              "--skip-unknown", "--max-allele-length", "16", "--chunk-size", "4", "-o", "out.vcf.gz",
              "--tsv", "out.tsv"]
    (tmp_path / "full").mkdir()
    (tmp_path / "resumed").mkdir()
    monkeypatch.chdir(tmp_path / "full")
    assert main(common) == 0

    monkeypatch.chdir(tmp_path / "resumed")
    original = ChunkScorer.score
    calls = {"n": 0}

    def crash_after_two_chunks(self, records):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("simulated kill")
        return original(self, records)

    monkeypatch.setattr(ChunkScorer, "score", crash_after_two_chunks)
    with pytest.raises(RuntimeError, match="simulated kill"):
        main(common)
    assert not (tmp_path / "resumed" / "out.vcf.gz").exists()
    log = resume_log_path(tmp_path / "resumed" / "out.vcf.gz")
    assert log.exists() and log.read_text().count("#done") == 2

    calls["n"] = -100  # scoring works again; count how many chunks are recomputed
    assert main(common + ["--resume"]) == 0
    assert calls["n"] == -100 + 3  # 18 records in chunks of 4: chunks 2, 3, 4 recomputed
    for name in ("out.vcf.gz", "out.tsv"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "full" / name).read_bytes()
    assert not log.exists()


def test_resume_log_from_other_settings_is_refused(tmp_path, hyena_dir, capsys):
    out = tmp_path / "o.vcf.gz"
    log = resume_log_path(out)
    log.write_text("#genossm-score-resume\n#fingerprint\tdeadbeef\n")
    code = main(["score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                 "--skip-unknown", "-o", str(out), "--resume"])
    assert code == 1 and "other settings" in capsys.readouterr().err


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, hyena_dir, capsys):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        code = main(["score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                     "--skip-unknown", "-o", str(tmp_path / "o.vcf.gz"), "--parquet", str(tmp_path / "o.parquet")])
        assert code == 2 and "pip install pyarrow" in capsys.readouterr().err
    else:
        import pyarrow.parquet as pq

        assert main(["-q", "score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                     "--skip-unknown", "-o", str(tmp_path / "o.vcf.gz"), "--parquet", str(tmp_path / "o.parquet")]) == 0
        assert pq.read_table(tmp_path / "o.parquet").num_rows == 21


def test_resume_needs_an_output_file(hyena_dir, capsys):
    code = main(["score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "--resume"])
    assert code == 2 and "--resume needs an output file" in capsys.readouterr().err


def test_resume_log_drops_a_chunk_cut_short(tmp_path):
    path = tmp_path / "o.vcf.gz.genossm-resume.tsv"
    first = ResumeLog(path, "abc", resume=False)
    rows = [ScoreRow(0, "c", 1, ".", "A", "C", {"llr": 0.1 + 0.2, "site": 1 / 3}, "ok"),
            ScoreRow(1, "c", 2, ".", "A", "*", {}, "star")]
    first.append_chunk(0, rows, [0, 0], "d1g3st")
    first.close(remove=False)
    with open(path, "a") as handle:
        handle.write("2\t0\tok\tllr=0.5\tsite=0.25\n3\t0\tok\tllr=0.")  # the crash cut chunk 1 short
    again = ResumeLog(path, "abc", resume=True)
    assert again.completed_chunks == 1
    assert again.saved_chunk() == ({0: {0: ({"llr": 0.1 + 0.2, "site": 1 / 3}, "ok")}, 1: {0: ({}, "star")}}, "d1g3st")
    again.close(remove=False)
    assert path.read_text().endswith("#done\t0\td1g3st\n")


def test_weights_are_hashed_once_per_run(tmp_path, hyena_dir, monkeypatch):
    from genossm.models import checkpoint

    hashed = []
    sha256_file = checkpoint.sha256_file
    monkeypatch.setattr(checkpoint, "sha256_file", lambda path: hashed.append(path) or sha256_file(path))
    assert main(["-q", "score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                 "--skip-unknown", "--max-allele-length", "16", "-o", str(tmp_path / "o.vcf")]) == 0
    assert len(hashed) == 1


@pytest.mark.parametrize("command", [
    ["score", str(EDGE_CASES), "--max-allele-length", "1000"],  # does not fit the window
    ["score", str(EDGE_CASES), "--batch-size", "0"],
    ["score", str(EDGE_CASES), "--resume"],  # stdout cannot be resumed
    ["score", str(EDGE_CASES), "--threads", "0"],
    ["embed", "--regions", f"{LAMBDA_CONTIG}:1-100", "-o", "e.h5", "--max-pass-length", "0"],
    ["mutagenesis", "--region", f"{LAMBDA_CONTIG}:1-100", "--out-prefix", "m", "--window", "4"],
])
def test_bad_options_are_refused_before_the_model_loads(tmp_path, hyena_dir, monkeypatch, command):
    from genossm.models import checkpoint

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checkpoint, "load_model", lambda *args, **kwargs: pytest.fail("model loaded"))
    assert main([*command, "--fasta", str(LAMBDA), "--model", str(hyena_dir)]) == 2
