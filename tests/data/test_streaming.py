"""genossm.data at scale and with reads: bounded memory on a large FASTA, BAM reads mixed in."""

from __future__ import annotations

import numpy as np
import torch

from genossm.data.datamodule import DataConfig, GenomeDataModule
from genossm.data.reads import ReadSource
from genossm.data.segments import contig_segments
from genossm.data.training_windows import FixedWindows, LengthStage, TrainingWindows
from genossm.tokenizer import PAD, encode


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def write_large_fasta(path, contigs: int, contig_bytes: int) -> None:
    """Contigs of repeated 1 kb random lines, written block by block (never whole in memory)."""
    rng = np.random.default_rng(0)
    lines = [("".join(rng.choice(list("ACGT"), 1000)) + "\n").encode() for _ in range(16)]
    block = b"".join(lines) * 64  # ~1 MB of 1 kb lines
    with open(path, "wb") as handle:
        for index in range(contigs):
            handle.write(f">contig{index}\n".encode())
            for _ in range(contig_bytes // len(block)):
                handle.write(block)


def test_memory_stays_bounded_on_a_300_mb_fasta(tmp_path):
    path = tmp_path / "large.fa"
    write_large_fasta(path, contigs=3, contig_bytes=100 * 2**20)
    assert path.stat().st_size > 300e6
    segments = contig_segments([str(path)])  # builds the .fai index (streamed by htslib)
    before = rss_bytes()
    train = TrainingWindows(segments, [LengthStage(0, 4096, 8)], seed=0, objective="causal", end_batch=40)
    for batch in train:
        assert batch["inputs"].shape == (8, 4096)
    held_out = FixedWindows(segments, window_length=4096, batch_size=8, objective="causal", max_windows=160)
    assert sum(len(batch["ids"]) for batch in held_out) == 160
    growth = rss_bytes() - before
    assert growth < 40 * 2**20, f"RSS grew by {growth / 2**20:.0f} MB on a 300 MB genome"


def test_reads_come_in_file_order_and_cycle(data_dir):
    source = ReadSource([data_dir / "lambda_reads.bam"], reverse_complement=False)
    first = [source.sequence(i) for i in range(5)]
    assert all(set(s) <= set("ACGTN") for s in first)
    total = sum(1 for _ in source._sequences())
    assert source.sequence(total + 2) == first[2]  # after the last read the stream starts over
    rng = np.random.default_rng(0)
    window = source.window(0, 4096, rng)  # longer than a read: padded, padding never predicted
    assert np.array_equal(window[:len(first[0])], encode(first[0])) and np.all(window[len(first[0]):] == PAD)


def test_reads_mix_into_batches_and_resume_exactly(data_dir):
    segments = contig_segments([data_dir / "lambda_virus.fa"])
    reads = ReadSource([data_dir / "lambda_reads.bam"])

    def dataset(start):
        return TrainingWindows(segments, [LengthStage(0, 100, 8)], seed=1, objective="causal",
                               start_batch=start, end_batch=4, reads=reads, read_fraction=0.25)

    batches = list(dataset(0))
    assert dataset(0).reads_in_batch(8) == 2 and dataset(0).reads_before(3) == 6
    resumed = list(dataset(2))
    for a, b in zip(batches[2:], resumed):
        assert torch.equal(a["inputs"], b["inputs"])


def test_bam_alone_is_training_data(data_dir):
    config = DataConfig(bam=[str(data_dir / "lambda_reads.bam")], window_length=64, batch_size=4,
                        num_workers=0)
    module = GenomeDataModule(config, objective="causal", seed=0, max_steps=2)
    module.setup("fit")
    batches = list(module.training_dataset())
    assert len(batches) == 2 and batches[0]["inputs"].shape == (4, 64)
