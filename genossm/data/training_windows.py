"""Streaming datasets of genome windows: a step-indexed training stream and fixed tilings.

Training (`TrainingWindows`) is a pure function of the batch index: batch k of rank r holds the
samples with global indices `(k * world_size + r) * max_batch_size + j`, and sample g is drawn
from a random generator seeded with `(seed, g)`. Hence
- resuming at optimizer step s continues exactly where the killed run stopped (start at batch
  `s * accumulate`), with no step repeated or lost, and no data-loader state to save;
- ranks and workers never draw the same sample: worker w of W takes batches k = w, w + W, ...
  (the order in which a DataLoader collects them round-robin), ranks take disjoint indices;
- the window length may change with k (sequence-length warm-up) without breaking either.

Held-out data (`FixedWindows`) is a deterministic tiling of the held-out segments, the same
windows every time, so bits per base are comparable across runs and with the Markov baseline.

Memory is bounded by the batch: every window is fetched from the indexed FASTA on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from genossm.data.genome_pool import GenomePool
from genossm.data.masking import make_example
from genossm.data.segments import Segment
from genossm.errors import InputError
from genossm.tokenizer import PAD, N, reverse_complement_tokens

# How many windows to draw for one sample before giving up on N-heavy data: each try is
# independent, so with half the genome N-heavy the chance of 32 failures is 2^-32.
MAX_DRAWS = 32


@dataclass(frozen=True)
class LengthStage:
    """From batch `first_batch` on, windows are `window_length` long, `batch_size` per batch."""

    first_batch: int
    window_length: int
    batch_size: int


def stage_at(stages: Sequence[LengthStage], batch: int) -> LengthStage:
    current = stages[0]
    for stage in stages:
        if stage.first_batch <= batch:
            current = stage
    return current


def shard_of_process(rank: int, world_size: int) -> tuple[int, int]:
    """(shard id, number of shards) of this dataloader worker on this rank."""
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * workers + worker, world_size * workers


def to_batch(inputs: list[np.ndarray], targets: list[np.ndarray], ids: list[int]) -> dict[str, torch.Tensor]:
    return {
        "inputs": torch.from_numpy(np.stack(inputs)),    # (B, L) long
        "targets": torch.from_numpy(np.stack(targets)),  # (B, L) long, IGNORE where not predicted
        "ids": torch.tensor(ids, dtype=torch.long),      # (B,) sample / window numbers (tracing)
    }


def fetch_segment_window(pool: GenomePool, segment: Segment, start: int, length: int) -> np.ndarray:
    """Tokens of `[start, start + length)`, never reading past the segment (held-out data may
    follow it): what lies past its end is PAD."""
    end = min(start + length, segment.end)
    tokens = pool.fetch_tokens(segment.path, segment.contig, start, end)
    if len(tokens) < length:
        tokens = np.concatenate([tokens, np.full(length - len(tokens), PAD, dtype=np.uint8)])
    return tokens


class TrainingWindows(IterableDataset):
    """Random training windows, drawn in proportion to segment length, as ready-made batches.

    Yields `{"inputs": (B, L) long, "targets": (B, L) long}` for batches `start_batch` to
    `end_batch - 1` of this rank. Use with `DataLoader(dataset, batch_size=None, num_workers=W)`.
    `reads` (a `ReadSource`) and `read_fraction` mix sequencing reads into every batch.
    """

    def __init__(self, segments: Sequence[Segment], stages: Sequence[LengthStage], *, seed: int,
                 objective: str, end_batch: int, start_batch: int = 0, rank: int = 0,
                 world_size: int = 1, max_n_fraction: float = 0.1, reverse_complement: bool = True,
                 mask_fraction: float = 0.15, reads=None, read_fraction: float = 0.0):
        super().__init__()
        if not segments and read_fraction < 1:
            raise InputError("no training sequence: every FASTA/BED segment was held out or empty")
        self.segments = list(segments)
        self.stages = sorted(stages, key=lambda stage: stage.first_batch)
        self.seed, self.objective = seed, objective
        self.start_batch, self.end_batch = start_batch, end_batch
        self.rank, self.world_size = rank, world_size
        self.max_n_fraction = max_n_fraction
        self.reverse_complement = reverse_complement
        self.mask_fraction = mask_fraction
        self.reads, self.read_fraction = reads, read_fraction
        self.max_batch_size = max(stage.batch_size for stage in self.stages)
        # Cumulative segment lengths: a uniform position in [0, total) picks a segment with
        # probability proportional to its length (an int64 array: O(segments) memory).
        self._cumulative = np.cumsum([segment.length for segment in self.segments], dtype=np.int64)
        self.pool = GenomePool()

    # No __len__ on purpose: Lightning would end a resumed epoch after len() batches counted from
    # the epoch's start, not from the resumed step. The stream ends at `end_batch` by itself.

    def reads_in_batch(self, batch_size: int) -> int:
        return round(batch_size * self.read_fraction) if self.reads is not None else 0

    def reads_before(self, batch: int) -> int:
        """How many read samples one rank's batches 0..batch-1 hold (closed form over stages)."""
        total = 0
        for index, stage in enumerate(self.stages):
            if stage.first_batch >= batch:
                break
            stop = batch if index + 1 == len(self.stages) else min(batch, self.stages[index + 1].first_batch)
            total += (stop - stage.first_batch) * self.reads_in_batch(stage.batch_size)
        return total

    def sample_window(self, sample: int, length: int) -> tuple[np.ndarray, np.random.Generator]:
        """The window of global sample index `sample`: tokens `(length,)` uint8 and its generator."""
        tokens, rng, _, _, _ = self.locate_sample(sample, length)
        return tokens, rng

    def locate_sample(self, sample: int, length: int):
        """(tokens, generator, segment, start, reverse-complemented?) of sample `sample`."""
        rng = np.random.default_rng((self.seed, sample))
        total = int(self._cumulative[-1])
        for _ in range(MAX_DRAWS):
            position = int(rng.integers(total))
            segment = self.segments[int(np.searchsorted(self._cumulative, position, side="right"))]
            span = segment.length - length
            start = segment.start + (int(rng.integers(span + 1)) if span > 0 else 0)
            tokens = fetch_segment_window(self.pool, segment, start, length)
            if np.count_nonzero(tokens == N) <= self.max_n_fraction * length:
                reverse = self.reverse_complement and rng.random() < 0.5
                if reverse:
                    tokens = reverse_complement_tokens(tokens)
                return tokens, rng, segment, start, reverse
        raise InputError(
            f"{MAX_DRAWS} random windows of {length} bases in a row had more than "
            f"{self.max_n_fraction:.0%} N; the training sequence is mostly N. Raise "
            "data.max_n_fraction or train on regions with sequence (--bed)"
        )

    def make_batch(self, batch: int) -> dict[str, torch.Tensor]:
        stage = stage_at(self.stages, batch)
        n_reads = self.reads_in_batch(stage.batch_size)
        first_read = (self.reads_before(batch) * self.world_size + self.rank * n_reads)
        inputs, targets, ids = [], [], []
        for j in range(stage.batch_size):
            sample = (batch * self.world_size + self.rank) * self.max_batch_size + j
            if j < n_reads:
                rng = np.random.default_rng((self.seed, sample))
                tokens = self.reads.window(first_read + j, stage.window_length, rng)
            else:
                tokens, rng = self.sample_window(sample, stage.window_length)
            x, y = make_example(tokens, self.objective, rng, self.mask_fraction)
            inputs.append(x)
            targets.append(y)
            ids.append(sample)
        return to_batch(inputs, targets, ids)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for batch in range(self.start_batch + worker, self.end_batch, workers):
            yield self.make_batch(batch)


class FixedWindows(IterableDataset):
    """A fixed tiling of held-out segments: non-overlapping windows of `window_length`, forward
    strand, the same every time; at most `max_windows` (evenly spaced), N-heavy ones skipped.

    Batch b of the tiling goes to shard `b % shards` (ranks x workers), so every window is
    evaluated exactly once across a multi-GPU run.
    """

    def __init__(self, segments: Sequence[Segment], *, window_length: int, batch_size: int,
                 objective: str, seed: int = 0, max_windows: int | None = None, rank: int = 0,
                 world_size: int = 1, max_n_fraction: float = 0.1, mask_fraction: float = 0.15):
        super().__init__()
        self.segments = list(segments)
        self.window_length, self.batch_size = window_length, batch_size
        self.objective, self.seed = objective, seed
        self.rank, self.world_size = rank, world_size
        self.max_n_fraction, self.mask_fraction = max_n_fraction, mask_fraction
        tiles = [max(1, segment.length // window_length) for segment in self.segments]
        self._cumulative_tiles = np.cumsum(tiles, dtype=np.int64)
        total = int(self._cumulative_tiles[-1]) if tiles else 0
        self.num_windows = total if max_windows is None else min(total, max_windows)
        self._total_tiles = total
        self.pool = GenomePool()

    def tile_index(self, window: int) -> int:
        """Index in the full tiling of the `window`-th selected window (evenly spaced)."""
        if self.num_windows == self._total_tiles:
            return window
        return window * self._total_tiles // self.num_windows

    def locate(self, window: int) -> tuple[Segment, int]:
        """(segment, start) of the `window`-th selected window."""
        tile = self.tile_index(window)
        index = int(np.searchsorted(self._cumulative_tiles, tile, side="right"))
        before = int(self._cumulative_tiles[index - 1]) if index else 0
        segment = self.segments[index]
        return segment, segment.start + (tile - before) * self.window_length

    def windows(self) -> Iterator[tuple[int, Segment, int]]:
        """(window number, segment, start) of every selected window, in order (all shards)."""
        for window in range(self.num_windows):
            segment, start = self.locate(window)
            yield window, segment, start

    def __len__(self) -> int:
        return -(-self.num_windows // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        shard, shards = shard_of_process(self.rank, self.world_size)
        for batch in range(shard, len(self), shards):
            inputs, targets, ids = [], [], []
            for window in range(batch * self.batch_size, min((batch + 1) * self.batch_size, self.num_windows)):
                segment, start = self.locate(window)
                tokens = fetch_segment_window(self.pool, segment, start, self.window_length)
                if np.count_nonzero(tokens == N) > self.max_n_fraction * self.window_length:
                    continue
                rng = np.random.default_rng((self.seed, window))
                x, y = make_example(tokens, self.objective, rng, self.mask_fraction)
                inputs.append(x)
                targets.append(y)
                ids.append(window)
            if inputs:
                yield to_batch(inputs, targets, ids)
