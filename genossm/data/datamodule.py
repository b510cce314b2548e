"""The Lightning DataModule of `genossm pretrain`: FASTA windows (and BAM reads) by split."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import lightning as L
from torch.utils.data import DataLoader

from genossm.data.segments import (Segment, bed_segments, contig_segments, held_out_regions,
                                   total_length)
from genossm.data.training_windows import FixedWindows, LengthStage, TrainingWindows
from genossm.errors import InputError

log = logging.getLogger("genossm.data")


@dataclass
class DataConfig:
    """The `data:` section of a training recipe (configs/train/*.yaml)."""

    fasta: list[str] = field(default_factory=list)  # training genomes (several files allowed)
    bed: str | None = None  # train only on these regions of `fasta` (default: whole contigs)
    val_fasta: list[str] = field(default_factory=list)  # whole genomes held out for validation
    test_fasta: list[str] = field(default_factory=list)  # whole genomes held out for testing
    # Without val/test files, the tail of every training contig is held out: these fractions.
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    bam: list[str] = field(default_factory=list)  # sequencing reads as extra training data
    read_fraction: float = 0.5  # share of each batch taken from `bam` (1.0 = reads alone)
    min_mapq: int = 0  # read filter passed to genossm.io.bam.stream_reads
    window_length: int = 1024
    batch_size: int = 32  # per device
    max_n_fraction: float = 0.1  # windows with more N than this are skipped
    reverse_complement: bool = True  # augment: each training window is flipped with p = 0.5
    mask_fraction: float = 0.15  # masked objective: BERT-style share of masked bases
    num_workers: int = 2
    eval_batch_size: int | None = None  # default: batch_size
    val_windows: int | None = 512  # fixed validation set: at most this many windows (None: all)
    test_windows: int | None = None  # test set: every window of the held-out data by default

    @classmethod
    def from_dict(cls, data: dict) -> DataConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"training recipe: unknown data field(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        values = dict(data)
        for name in ("fasta", "val_fasta", "test_fasta", "bam"):
            if isinstance(values.get(name), str):
                values[name] = [values[name]]
        return cls(**values)


@dataclass
class Splits:
    train: list[Segment]
    val: list[Segment]
    test: list[Segment]


def make_splits(config: DataConfig) -> Splits:
    """Training, validation and test segments; held-out files win over held-out regions."""
    if not config.fasta and not config.bam:
        raise InputError("no training data: give --fasta (and/or --bam)")
    train = bed_segments(config.fasta, config.bed) if config.bed else contig_segments(config.fasta)
    val_fraction = 0.0 if config.val_fasta else config.val_fraction
    test_fraction = 0.0 if config.test_fasta else config.test_fraction
    train, val, test = held_out_regions(train, val_fraction, test_fraction)
    if config.val_fasta:
        val = contig_segments(config.val_fasta)
    if config.test_fasta:
        test = contig_segments(config.test_fasta)
    log.info("data: %d train segments (%d bases), %d val (%d), %d test (%d)", len(train),
             total_length(train), len(val), total_length(val), len(test), total_length(test))
    return Splits(train, val, test)


class GenomeDataModule(L.LightningDataModule):
    """Train/val/test dataloaders over `DataConfig`, step-indexed so a resumed run continues exactly.

    `length_stages` (in optimizer steps; set by the `SequenceLengthWarmup` callback) replaces the
    single (window_length, batch_size) stage with a warm-up of growing windows.
    """

    def __init__(self, config: DataConfig, *, objective: str, seed: int, max_steps: int):
        super().__init__()
        self.config, self.objective, self.seed, self.max_steps = config, objective, seed, max_steps
        self.length_stages = [(0, config.window_length, config.batch_size)]  # (first step, L, B)
        self.splits: Splits | None = None
        self.reads = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = make_splits(self.config)
        if self.config.bam and self.reads is None:
            from genossm.data.reads import ReadSource

            self.reads = ReadSource(self.config.bam, min_mapq=self.config.min_mapq)

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def training_dataset(self, start_step: int = 0, accumulate: int = 1) -> TrainingWindows:
        rank, world_size = self._rank_and_world()
        stages = [LengthStage(step * accumulate, length, batch) for step, length, batch in self.length_stages]
        read_fraction = self.config.read_fraction if self.reads is not None else 0.0
        if not self.config.fasta:
            read_fraction = 1.0
        return TrainingWindows(
            self.splits.train, stages, seed=self.seed, objective=self.objective,
            start_batch=start_step * accumulate, end_batch=self.max_steps * accumulate,
            rank=rank, world_size=world_size, max_n_fraction=self.config.max_n_fraction,
            reverse_complement=self.config.reverse_complement,
            mask_fraction=self.config.mask_fraction, reads=self.reads, read_fraction=read_fraction,
        )

    def held_out_dataset(self, segments: list[Segment], max_windows: int | None) -> FixedWindows:
        rank, world_size = self._rank_and_world()
        window_length = self.length_stages[-1][1]
        return FixedWindows(
            segments, window_length=window_length, objective=self.objective,
            batch_size=self.config.eval_batch_size or self.config.batch_size,
            max_windows=max_windows, rank=rank, world_size=world_size,
            max_n_fraction=self.config.max_n_fraction, mask_fraction=self.config.mask_fraction,
        )

    def _loader(self, dataset) -> DataLoader:
        import torch

        workers = self.config.num_workers
        return DataLoader(dataset, batch_size=None, num_workers=workers,
                          pin_memory=torch.cuda.is_available(), persistent_workers=False,
                          prefetch_factor=4 if workers else None)

    def train_dataloader(self) -> DataLoader:
        # Lightning restores the trainer's step from the checkpoint before it asks for this
        # loader, so a resumed run starts at the first batch the killed run never trained on.
        trainer = self.trainer
        start = trainer.global_step if trainer is not None else 0
        accumulate = trainer.accumulate_grad_batches if trainer is not None else 1
        if start:
            log.info("data: resuming the training stream at step %d", start)
        return self._loader(self.training_dataset(start, accumulate))

    def val_dataloader(self) -> DataLoader:
        if not self.splits.val:
            return []
        return self._loader(self.held_out_dataset(self.splits.val, self.config.val_windows))

    def test_dataloader(self) -> DataLoader:
        if not self.splits.test:
            raise InputError("no test data: give --test-fasta or a test fraction above 0")
        return self._loader(self.held_out_dataset(self.splits.test, self.config.test_windows))
