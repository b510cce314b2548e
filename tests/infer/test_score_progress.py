"""What a person sees while `genossm score` runs: a first line with the plan, and a bar (rate, ETA)
that moves as tiles are scored, not once per chunk of records; all on stderr, silenced by -q."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from genossm.infer.score.scorer import VariantScorer
from genossm.progress import PieceProgress
from infer_helpers import (LAMBDA, LAMBDA_CONTIG, lambda_sequence, random_allele_pairs, save_tiny_model,
                           tiny_model, write_vcf)


class RecordingBar:
    def __init__(self):
        self.updates: list[int] = []

    def update(self, count: int) -> None:
        self.updates.append(count)


def test_piece_progress_moves_within_a_piece_and_counts_each_item_once():
    bar = RecordingBar()
    progress = PieceProgress(bar)
    progress.advance("a", 2)
    progress.advance("a", 1)  # never back
    progress.advance("a", 5)
    progress.finish("a", 8)
    progress.finish("b", 4)  # a piece nobody reported on (another rank, or resumed)
    assert bar.updates == [2, 3, 3, 4] and sum(bar.updates) == 12


@pytest.mark.parametrize("kind, reuse", [("hyena", True), ("mamba", True), ("hyena", False), ("masked", None)])
def test_scorer_reports_growing_fractions_and_same_scores(kind, reuse):
    model = tiny_model(kind)
    pairs = random_allele_pairs(3, 4 if kind == "masked" else 12, window=64)
    fractions: list[float] = []
    scorer = VariantScorer(model, batch_size=2, reuse_prefix_state=reuse)
    reported = scorer.score(pairs, progress=fractions.append)
    assert reported == scorer.score(pairs)  # reporting changes no number
    assert len(fractions) >= 4 and fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] < 1


@pytest.fixture(scope="module")
def spread_vcf(tmp_path_factory):
    """8 SNVs in 8 different tiles: one chunk, several reference passes."""
    sequence = lambda_sequence()
    rows = [(LAMBDA_CONTIG, pos, f"snv{pos}", sequence[pos - 1], "A" if sequence[pos - 1] != "A" else "C")
            for pos in range(1000, 9000, 1000)]
    return write_vcf(tmp_path_factory.mktemp("spread") / "spread.vcf", {LAMBDA_CONTIG: len(sequence)}, rows)


def run_score(tmp_path, spread_vcf, *extra):
    model = save_tiny_model("hyena", tmp_path / "hyena")
    command = [sys.executable, "-m", "genossm.cli.main", *extra, "score", str(spread_vcf), "--fasta", str(LAMBDA),
               "--model", str(model), "--batch-size", "1", "--threads", "1", "-o", str(tmp_path / "o.vcf.gz")]
    # Not the GENOSSM_QUIET=1 that an in-process `-q` run of another test leaves in os.environ.
    env = {key: value for key, value in os.environ.items() if key != "GENOSSM_QUIET"}
    return subprocess.run(command, capture_output=True, text=True, check=True, env=env)


def test_chunk_moves_the_bar_per_tile(spread_vcf):
    from genossm.infer.score.chunks import ChunkScorer
    from genossm.infer.score.settings import ScoreSettings
    from genossm.io.fasta import open_fasta
    from genossm.io.vcf import read_variants

    bar = RecordingBar()
    with open_fasta(LAMBDA) as genome:
        scorer = ChunkScorer(tiny_model("hyena"), genome, ScoreSettings(window=64, batch_size=1, max_allele_length=16),
                             "cpu", source=str(spread_vcf))
        scorer.progress = PieceProgress(bar)
        records = list(enumerate(read_variants(spread_vcf)))
        scorer.score(records)  # one chunk of 8 records in 8 tiles
    assert len(bar.updates) >= 4 and 0 < sum(bar.updates) < 8  # moved in steps before the chunk is written
    scorer.progress.finish(0, len(records))
    assert sum(bar.updates) == 8


def test_first_line_states_the_plan(tmp_path, spread_vcf):
    result = run_score(tmp_path, spread_vcf)
    assert result.stdout == ""
    lines = [line for line in result.stderr.replace("\r", "\n").split("\n") if line.strip()]
    assert lines[0].startswith("genossm: scoring 8 records of ")  # the first thing a person reads
    for words in ("window 64", "both strands", "device cpu", "1 torch thread", "batch size 1",
                  "chunks of 256 records"):
        assert words in lines[0]
    assert any(line.startswith("scoring:") and "8/8" in line and "rec/s" in line for line in lines)


def test_quiet_prints_nothing(tmp_path, spread_vcf):
    result = run_score(tmp_path, spread_vcf, "-q")
    assert result.stderr == ""
