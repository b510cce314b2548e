"""Tokenizer throughput on CPU: encode and reverse complement, fast paths against references.

    python benchmarks/tokenizer.py --megabases 100 --out benchmarks/results/tokenizer.json

The input is random sequence shaped like a soft-masked genome: upper- and lowercase bases and
runs of N, encoded whole and as 10 kb windows (one call each, as training does). Every fast path
is first checked against its reference on the same input (the correctness gate); then each
function is timed best-of-`--repeats` and reported in MB/s (1 MB = 10^6 bases), by wall clock and
by this process's CPU time. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from common import best_seconds, emit_report, machine_info

from genossm import tokenizer


def soft_masked_sequence(length: int, seed: int = 0) -> bytes:
    """Random bases, ~half lowercase, with ~2% of positions in N runs of 100."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ACGTacgt", dtype=np.uint8)
    raw = alphabet[rng.integers(0, len(alphabet), length)]
    run_starts = rng.integers(0, max(length - 100, 1), length // 5000)
    for start in run_starts:
        raw[start : start + 100] = ord("N")
    return raw.tobytes()


def encode_reference(sequence: str) -> np.ndarray:
    """The straightforward encoder: ASCII bytes indexing the lookup table (numpy)."""
    return tokenizer.encode_lookup(np.frombuffer(sequence.encode("ascii"), dtype=np.uint8))


def encode_each(windows: list[str], encoder=tokenizer.encode) -> None:
    for window in windows:
        encoder(window)


def encode_each_reference(windows: list[str]) -> None:
    encode_each(windows, encode_reference)


def reverse_complement_tokens_reference(tokens: np.ndarray) -> np.ndarray:
    """Look up, then reverse, then convert: three passes."""
    return tokenizer._COMPLEMENT_TOKENS[tokens][..., ::-1].astype(tokens.dtype)


def run(megabases: float, torch_megabases: float, repeats: int, window: int = 10_000) -> dict:
    import torch

    length = int(megabases * 1e6)
    raw = soft_masked_sequence(length)
    sequence = raw.decode("ascii")

    # Correctness gate: nothing is timed unless each fast path equals its reference here.
    tokens = tokenizer.encode(sequence)
    np.testing.assert_array_equal(tokens, encode_reference(sequence))
    np.testing.assert_array_equal(tokenizer.encode(raw), tokens)
    reverse = tokenizer.reverse_complement_tokens(tokens)
    np.testing.assert_array_equal(reverse, reverse_complement_tokens_reference(tokens))
    np.testing.assert_array_equal(tokenizer.encode(tokenizer.reverse_complement(sequence)), reverse)
    torch_tokens = torch.from_numpy(tokens[: int(torch_megabases * 1e6)].astype(np.int64))  # (L,) long
    np.testing.assert_array_equal(tokenizer.reverse_complement_tokens(torch_tokens).numpy(),
                                  reverse_complement_tokens_reference(torch_tokens.numpy()))

    # What training and scoring do: one genome window at a time (per-call overhead shows here).
    windows = [sequence[start : start + window] for start in range(0, length, window)]

    timings = {
        "encode_str": (tokenizer.encode, sequence),
        f"encode_str_windows_{window}": (encode_each, windows),
        f"encode_str_windows_{window}_reference": (encode_each_reference, windows),
        "encode_bytes": (tokenizer.encode, raw),
        "encode_str_reference": (encode_reference, sequence),
        "reverse_complement_tokens_numpy_uint8": (tokenizer.reverse_complement_tokens, tokens),
        "reverse_complement_tokens_numpy_uint8_reference": (reverse_complement_tokens_reference, tokens),
        "reverse_complement_str": (tokenizer.reverse_complement, sequence),
        "reverse_complement_tokens_torch_long": (tokenizer.reverse_complement_tokens, torch_tokens),
    }
    results = {}
    for name, (function, argument) in timings.items():
        wall, cpu = best_seconds(lambda: function(argument), repeats)
        bases = length if isinstance(argument, list) else len(argument)
        results[name] = {"bases": bases, "seconds": round(wall, 4),
                         "mb_per_s": round(bases / wall / 1e6, 1),
                         "cpu_seconds": round(cpu, 4), "mb_per_cpu_s": round(bases / max(cpu, 1e-9) / 1e6, 1)}
    return {
        "benchmark": "tokenizer",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "input": {"megabases": megabases, "lowercase_fraction": 0.5,
                  "n_fraction": round(raw.count(b"N") / length, 4)},
        "repeats": repeats,
        "results": results,
        "speedup": {
            "encode_str": round(results["encode_str"]["mb_per_s"] / results["encode_str_reference"]["mb_per_s"], 2),
            f"encode_str_windows_{window}": round(
                results[f"encode_str_windows_{window}"]["mb_per_s"]
                / results[f"encode_str_windows_{window}_reference"]["mb_per_s"], 2),
            "reverse_complement_tokens_numpy_uint8": round(
                results["reverse_complement_tokens_numpy_uint8"]["mb_per_s"]
                / results["reverse_complement_tokens_numpy_uint8_reference"]["mb_per_s"], 2),
        },
        "machine": machine_info(),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabases", type=float, default=100.0, help="input length in 10^6 bases")
    parser.add_argument("--torch-megabases", type=float, default=10.0,
                        help="length of the torch long tensor (8 bytes per base) for its reverse complement")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per function; the best is kept")
    parser.add_argument("--window", type=int, default=10_000, help="window length for the per-window encode")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    emit_report(run(args.megabases, args.torch_megabases, args.repeats, args.window), args.out)


if __name__ == "__main__":
    main()
