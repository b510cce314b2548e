"""SNV scores under the order-k Markov baseline (benchmarks/markov_baseline.py's counts).

For order k, log P(alt sequence) - log P(ref sequence) is a sum over the k + 1 positions whose
(k+1)-mer contains the variant: from the variant to k bases after it. Like `genossm score`, the
score is averaged over both strands (the reverse strand reads the reverse complement of the same
2k + 1 bases). Add-alpha smoothed tables, natural log, every order 0..max_order in one pass.
"""

from __future__ import annotations

import numpy as np
from markov_baseline import MarkovCounts, count_genomes  # benchmarks/ is on sys.path (see __main__)

from genossm.tokenizer import NUM_BASES


def strand_llr(ref: np.ndarray, alt: np.ndarray, k: int, table: np.ndarray) -> np.ndarray:
    """ref/alt (n, 2k + 1) token windows with the variant in the middle -> (n,) LLR in nats."""
    total = np.zeros(len(ref))
    for end in range(k, 2 * k + 1):  # the (k+1)-mers ending at the variant .. k bases after it
        codes_ref = np.zeros(len(ref), dtype=np.int64)
        codes_alt = np.zeros(len(ref), dtype=np.int64)
        for column in range(end - k, end + 1):
            codes_ref = codes_ref * NUM_BASES + ref[:, column]
            codes_alt = codes_alt * NUM_BASES + alt[:, column]
        total += table[codes_alt] - table[codes_ref]
    return total


def markov_scores(windows: np.ndarray, alts: np.ndarray, counts: MarkovCounts,
                  alpha: float = 1.0) -> dict[int, np.ndarray]:
    """windows (n, 2K + 1) reference tokens (A/C/G/T only) centred on each SNV, alts (n,) tokens
    -> {k: (n,) LLR averaged over both strands} for k = 0..K."""
    max_order = (windows.shape[1] - 1) // 2
    ref = windows.astype(np.int64)
    alt = ref.copy()
    alt[:, max_order] = alts
    reverse_ref, reverse_alt = 3 - ref[:, ::-1], 3 - alt[:, ::-1]
    scores = {}
    for k in range(min(max_order, counts.max_order) + 1):
        table = counts.log2_probabilities(k, alpha) * np.log(2.0)
        cut = slice(max_order - k, max_order + k + 1)
        forward = strand_llr(ref[:, cut], alt[:, cut], k, table)
        backward = strand_llr(reverse_ref[:, cut], reverse_alt[:, cut], k, table)
        scores[k] = (forward + backward) / 2.0
    return scores


__all__ = ["count_genomes", "markov_scores", "strand_llr"]
