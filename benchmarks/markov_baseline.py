"""Order-k Markov baseline for held-out bits per base, on the same windows the model is tested on.

    python benchmarks/markov_baseline.py --manifest data/genomes/manifest.tsv --window 1024 \
        --out benchmarks/results/markov_bacteria.json

Counts every (k+1)-mer of the training genomes, both strands (a genome's reverse strand is as
much a genome as its forward one), for every order k = 0..max_order in one streaming pass: one
contig at a time, `numpy.bincount` over integer k-mer codes. Probabilities use add-alpha
smoothing, P(b | context) = (n(context b) + alpha) / (n(context) + 4 alpha). The order is chosen
on the validation genomes and the test bits per base are reported at that order.

Evaluation matches `genossm pretrain`'s held-out metric exactly: the held-out contigs are tiled
into non-overlapping windows of `--window` bases (`genossm.data.training_windows.FixedWindows`), windows
with more than `--max-n-fraction` N are skipped, and positions 1..L-1 of each window are
predicted from the bases before them IN THE WINDOW (a causal model sees no more). Where fewer
than k bases of context exist (window start, after an N), the longest available order is used.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from genossm.tokenizer import NUM_BASES, N, reverse_complement_tokens

log = logging.getLogger("genossm.benchmarks.markov")


class MarkovCounts:
    """(k+1)-mer counts for every order 0..max_order."""

    def __init__(self, max_order: int):
        self.max_order = max_order
        self.counts = [np.zeros(NUM_BASES ** (k + 1), dtype=np.int64) for k in range(max_order + 1)]
        self.bases = 0

    def add(self, tokens: np.ndarray) -> None:
        """Count one sequence (call once per strand). Memory: a few arrays of its length."""
        self.bases += int(np.count_nonzero(tokens < NUM_BASES))
        codes = tokens.astype(np.int64).clip(max=NUM_BASES - 1)
        valid = tokens < NUM_BASES
        for k in range(self.max_order + 1):
            # Extend the k-mers of the previous order by one base: codes (k+1)-mers at 0..n-k-1.
            if k:
                codes = codes[:-1] * NUM_BASES + np.minimum(tokens[k:], NUM_BASES - 1)
                valid = valid[:-1] & (tokens[k:] < NUM_BASES)
            self.counts[k] += np.bincount(codes[valid], minlength=NUM_BASES ** (k + 1))

    def log2_probabilities(self, k: int, alpha: float) -> np.ndarray:
        """log2 P(base | context) as a flat array indexed by the (k+1)-mer code."""
        table = self.counts[k].reshape(-1, NUM_BASES).astype(np.float64) + alpha  # (4^k, 4)
        return np.log2(table / table.sum(axis=1, keepdims=True)).reshape(-1)


def context_lengths(windows: np.ndarray) -> np.ndarray:
    """(W, L) -> (W, L): bases of context available before each position inside its window
    (resets at the window start and after every non-base)."""
    lengths = np.zeros(windows.shape, dtype=np.int64)
    is_base = windows < NUM_BASES
    for t in range(1, windows.shape[1]):
        lengths[:, t] = np.where(is_base[:, t - 1], lengths[:, t - 1] + 1, 0)
    return lengths


def window_bits(windows: np.ndarray, counts: MarkovCounts, k: int, tables: list[np.ndarray]) -> tuple[float, int]:
    """Summed -log2 P over positions 1..L-1 of every window whose target is a base, with the
    order backing off to the context available in the window; (bits, positions)."""
    orders = np.minimum(context_lengths(windows), k)  # (W, L)
    target_ok = windows < NUM_BASES
    target_ok[:, 0] = False
    total_bits, positions = 0.0, 0
    for order in range(k + 1):
        rows, cols = np.nonzero(target_ok & (orders == order))
        if not len(rows):
            continue
        code = np.zeros(len(rows), dtype=np.int64)
        for back in range(order, -1, -1):
            code = code * NUM_BASES + windows[rows, cols - back]
        total_bits -= float(tables[order][code].sum())
        positions += len(rows)
    return total_bits, positions


def tile_windows(path: str, window: int, max_n_fraction: float) -> np.ndarray:
    """Every non-overlapping window of every contig, N-heavy ones dropped (FixedWindows' tiling)."""
    from genossm.io.fasta import open_fasta

    tiles = []
    with open_fasta(path) as genome:
        for name, length in genome.contigs.items():
            tokens = genome.fetch_tokens(name, 0, length)
            n_windows = max(1, length // window)
            if length < window:
                tokens = np.concatenate([tokens, np.full(window - length, 6, dtype=np.uint8)])
            block = tokens[:n_windows * window].reshape(n_windows, window)
            keep = np.count_nonzero(block == N, axis=1) <= max_n_fraction * window
            tiles.append(block[keep])
    return np.concatenate(tiles) if tiles else np.zeros((0, window), np.uint8)


def evaluate(paths: list[str], counts: MarkovCounts, alpha: float, window: int, max_n_fraction: float,
             orders: range) -> dict[int, float]:
    """Bits per base at each order over the tiled windows of `paths`."""
    bits = {k: 0.0 for k in orders}
    positions = 0
    tables = [counts.log2_probabilities(k, alpha) for k in range(max(orders) + 1)]
    for path in paths:
        windows = tile_windows(path, window, max_n_fraction).astype(np.int64)
        for start in range(0, len(windows), 512):  # bounded memory per chunk of windows
            chunk = windows[start:start + 512]
            for k in orders:
                chunk_bits, chunk_positions = window_bits(chunk, counts, k, tables)
                bits[k] += chunk_bits
            positions += chunk_positions
    return {k: bits[k] / max(positions, 1) for k in orders} | {"positions": positions}


def count_genomes(paths: list[str], max_order: int) -> MarkovCounts:
    from genossm.io.fasta import open_fasta

    counts = MarkovCounts(max_order)
    for path in paths:
        with open_fasta(path) as genome:
            for name, length in genome.contigs.items():
                tokens = genome.fetch_tokens(name, 0, length)
                counts.add(tokens)
                counts.add(reverse_complement_tokens(tokens))
        log.info("counted %s", path)
    return counts


def read_manifest(path: str) -> dict[str, list[str]]:
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    base = Path(path).parent
    with open(path) as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            splits.setdefault(row["split"], []).append(str(base / row["fasta"]))  # "unused" too
    return splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", help="TSV with columns name, split, fasta (scripts/fetch_genomes.sh)")
    parser.add_argument("--train", nargs="+", default=[])
    parser.add_argument("--val", nargs="+", default=[])
    parser.add_argument("--test", nargs="+", default=[])
    parser.add_argument("--max-order", type=int, default=11,
                        help="highest order tried (memory: 8 x 4^(k+1) bytes per order)")
    parser.add_argument("--alpha", type=float, default=1.0, help="add-alpha smoothing")
    parser.add_argument("--window", type=int, default=1024, help="evaluation window (the model's)")
    parser.add_argument("--max-n-fraction", type=float, default=0.1)
    parser.add_argument("--out", help="JSON output (default: stdout)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="markov: %(message)s")
    splits = read_manifest(args.manifest) if args.manifest else {}
    train = args.train or splits.get("train", [])
    val = args.val or splits.get("val", [])
    test = args.test or splits.get("test", [])
    if not (train and val and test):
        parser.error("give --manifest or all of --train, --val and --test")
    started = time.perf_counter()
    counts = count_genomes(train, args.max_order)
    count_seconds = time.perf_counter() - started
    orders = range(args.max_order + 1)
    val_bits = evaluate(val, counts, args.alpha, args.window, args.max_n_fraction, orders)
    best = min(orders, key=lambda k: val_bits[k])
    test_bits = evaluate(test, counts, args.alpha, args.window, args.max_n_fraction, orders)
    result = {
        "baseline": "order-k Markov, add-alpha, both strands counted",
        "command": " ".join(["python benchmarks/markov_baseline.py", *(sys.argv[1:] if argv is None else argv)]),
        "train": [os.path.basename(p) for p in train], "val": [os.path.basename(p) for p in val],
        "test": [os.path.basename(p) for p in test],
        "train_bases_per_strand": counts.bases // 2,
        "alpha": args.alpha, "window": args.window, "max_n_fraction": args.max_n_fraction,
        "chosen_order": best,
        "val_bits_per_base": val_bits[best],
        "test_bits_per_base": test_bits[best],
        "val_positions": val_bits["positions"], "test_positions": test_bits["positions"],
        "by_order": {str(k): {"val": round(val_bits[k], 5), "test": round(test_bits[k], 5)} for k in orders},
        "count_seconds": round(count_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
    }
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    log.info("order %d: val %.4f, test %.4f bits/base", best, result["val_bits_per_base"], result["test_bits_per_base"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
