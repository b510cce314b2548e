"""benchmarks/markov_baseline.py on sequences whose statistics are known in advance."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from genossm.tokenizer import encode, reverse_complement_tokens

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def markov():
    spec = importlib.util.spec_from_file_location("markov_baseline", ROOT / "benchmarks" / "markov_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chain(length: int, seed: int) -> str:
    """Order-1 chain: the next base is (current + 1) mod 4 with p = 0.7, each other with 0.1.
    Its reverse complement is the same chain, so counting both strands changes nothing."""
    rng = np.random.default_rng(seed)
    steps = np.where(rng.random(length) < 0.7, 1, rng.choice([0, 2, 3], size=length))
    return "".join("ACGT"[i] for i in np.cumsum(steps) % 4)


def write_fasta(path: Path, sequence: str) -> str:
    path.write_text(">c\n" + "\n".join(sequence[i:i + 80] for i in range(0, len(sequence), 80)) + "\n")
    return str(path)


def test_counts_cover_both_strands(markov):
    counts = markov.MarkovCounts(max_order=2)
    tokens = encode("AACGTN")
    counts.add(tokens)
    counts.add(reverse_complement_tokens(tokens))  # NACGTT
    assert counts.counts[0].tolist() == [3, 2, 2, 3]
    assert counts.counts[1][0 * 4 + 0] == 1 and counts.counts[1][3 * 4 + 3] == 1  # AA and TT
    assert counts.counts[2].sum() == 3 + 3  # 3-mers without N on each strand


def test_held_out_bits_per_base_match_the_entropy_rate(markov, tmp_path):
    entropy_rate = -(0.7 * math.log2(0.7) + 3 * 0.1 * math.log2(0.1))
    train = write_fasta(tmp_path / "train.fa", chain(200_000, 0))
    val = write_fasta(tmp_path / "val.fa", chain(40_000, 1))
    test = write_fasta(tmp_path / "test.fa", chain(40_000, 2))
    out = tmp_path / "markov.json"
    markov.main(["--train", train, "--val", val, "--test", test, "--max-order", "3",
                 "--window", "1000", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["chosen_order"] >= 1
    assert result["test_bits_per_base"] == pytest.approx(entropy_rate, abs=0.02)
    assert result["by_order"]["0"]["test"] == pytest.approx(2.0, abs=0.01)
    assert result["test_positions"] == 40 * 999  # positions 1..L-1 of each 1 kb window
