"""genossm.data: step-indexed training windows, sharding, held-out splits, fixed tilings."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from genossm.data import training_windows as windows_module
from genossm.data.datamodule import DataConfig, make_splits
from genossm.data.masking import IGNORE, causal_targets, masked_targets
from genossm.data.segments import Segment, contig_segments, held_out_regions
from genossm.data.training_windows import FixedWindows, LengthStage, TrainingWindows
from genossm.errors import InputError
from genossm.tokenizer import MASK, NUM_BASES, PAD, encode, reverse_complement


def write_fasta(path, contigs: dict[str, str], width: int = 60):
    with open(path, "w") as handle:
        for name, sequence in contigs.items():
            handle.write(f">{name}\n")
            for i in range(0, len(sequence), width):
                handle.write(sequence[i:i + width] + "\n")
    return str(path)


def random_sequence(rng, length: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=length))


@pytest.fixture
def genome(tmp_path):
    rng = np.random.default_rng(1)
    contigs = {"chrA": random_sequence(rng, 6000), "chrB": random_sequence(rng, 3000),
               "short": random_sequence(rng, 40)}
    return write_fasta(tmp_path / "g.fa", contigs), contigs


def training(segments, *, length=64, batch=4, end=6, seed=3, **kwargs):
    return TrainingWindows(segments, [LengthStage(0, length, batch)], seed=seed, objective="causal",
                           end_batch=end, **kwargs)


def fake_worker(monkeypatch, worker: int, workers: int):
    info = types.SimpleNamespace(id=worker, num_workers=workers)
    monkeypatch.setattr(windows_module, "get_worker_info", lambda: info)


def test_training_batches_are_a_function_of_the_step(genome):
    path, _ = genome
    segments = contig_segments([path])
    first = list(training(segments))
    again = list(training(segments))
    resumed = list(training(segments, start_batch=3))
    assert len(first) == 6 and len(resumed) == 3
    for a, b in zip(first, again):
        assert torch.equal(a["inputs"], b["inputs"])
    for a, b in zip(first[3:], resumed):
        assert torch.equal(a["inputs"], b["inputs"]) and torch.equal(a["ids"], b["ids"])
    other_seed = next(iter(training(segments, seed=4)))
    assert not torch.equal(first[0]["inputs"], other_seed["inputs"])


def test_windows_match_the_genome_on_either_strand(genome):
    path, contigs = genome
    dataset = training(contig_segments([path]), length=50)
    strands = []
    for sample in range(200):
        tokens, _, segment, start, reverse = dataset.locate_sample(sample, 50)
        forward = contigs[segment.contig][start:start + 50]
        expected = reverse_complement(forward) if reverse else forward
        text = expected + "N" * 0
        assert np.array_equal(tokens[:len(text)], encode(text))
        assert np.all(tokens[len(text):] == PAD)  # the 40-base contig is padded, never overrun
        strands.append(reverse)
    assert 0.35 < np.mean(strands) < 0.65  # reverse-complement augmentation at p = 0.5


def test_sampling_is_proportional_to_contig_length(genome):
    path, _ = genome
    dataset = training(contig_segments([path]), length=32)
    picked = [dataset.locate_sample(s, 32)[2].contig for s in range(1500)]
    share_a = picked.count("chrA") / len(picked)
    assert abs(share_a - 6000 / 9040) < 0.05


def test_ranks_and_workers_cover_every_sample_exactly_once(genome, monkeypatch):
    path, _ = genome
    segments = contig_segments([path])
    ranks, workers, batch, end = 2, 3, 4, 7
    seen = []
    for rank in range(ranks):
        for worker in range(workers):
            fake_worker(monkeypatch, worker, workers)
            dataset = training(segments, batch=batch, end=end, rank=rank, world_size=ranks)
            seen += [int(i) for b in dataset for i in b["ids"]]
    assert sorted(seen) == list(range(end * ranks * batch))


def test_dataloader_workers_deliver_batches_in_step_order(genome):
    path, _ = genome
    segments = contig_segments([path])
    serial = [b["ids"] for b in DataLoader(training(segments, end=5), batch_size=None, num_workers=0)]
    parallel = [b["ids"] for b in DataLoader(training(segments, end=5), batch_size=None, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel)) and len(parallel) == 5


def test_fixed_windows_tile_held_out_data_once_across_shards(genome, monkeypatch):
    path, _ = genome
    segments = contig_segments([path])
    full = FixedWindows(segments, window_length=100, batch_size=4, objective="causal")
    assert full.num_windows == 60 + 30 + 1
    seen = []
    for rank in range(2):
        for worker in range(2):
            fake_worker(monkeypatch, worker, 2)
            dataset = FixedWindows(segments, window_length=100, batch_size=4, objective="causal",
                                   rank=rank, world_size=2)
            seen += [int(i) for b in dataset for i in b["ids"]]
    assert sorted(seen) == list(range(full.num_windows))
    capped = FixedWindows(segments, window_length=100, batch_size=4, objective="causal", max_windows=10)
    starts = [(s.contig, start) for _, s, start in capped.windows()]
    assert len(set(starts)) == 10 and starts == [(s.contig, start) for _, s, start in capped.windows()]


def test_held_out_windows_never_overlap_training_windows(genome):
    path, _ = genome
    train, val, test = held_out_regions(contig_segments([path]), 0.1, 0.1)
    held_out = val + test
    dataset = training(train, length=64)
    for sample in range(500):
        _, _, segment, start, _ = dataset.locate_sample(sample, 64)
        end = min(start + 64, segment.end)
        assert segment in train and segment.start <= start and end <= segment.end
        for other in held_out:
            if other.contig == segment.contig:
                assert end <= other.start or start >= other.end
    for split in (val, test):
        for _, segment, start in FixedWindows(split, window_length=64, batch_size=8, objective="causal").windows():
            assert segment in split and not any(
                s.contig == segment.contig and start < s.end and s.start < start + 64 for s in train)


def test_whole_files_can_be_held_out(tmp_path):
    rng = np.random.default_rng(2)
    train = write_fasta(tmp_path / "train.fa", {"t": random_sequence(rng, 2000)})
    val = write_fasta(tmp_path / "val.fa", {"v": random_sequence(rng, 900)})
    test = write_fasta(tmp_path / "test.fa", {"x": random_sequence(rng, 900)})
    splits = make_splits(DataConfig(fasta=[train], val_fasta=[val], test_fasta=[test]))
    assert splits.train == [Segment(train, "t", 0, 2000)]
    assert splits.val == [Segment(val, "v", 0, 900)] and splits.test == [Segment(test, "x", 0, 900)]


def test_n_heavy_windows_are_skipped(tmp_path):
    rng = np.random.default_rng(5)
    sequence = random_sequence(rng, 2000) + "N" * 6000
    path = write_fasta(tmp_path / "n.fa", {"c": sequence})
    dataset = training(contig_segments([path]), length=100, max_n_fraction=0.1)
    for sample in range(100):
        tokens, _ = dataset.sample_window(sample, 100)
        assert np.count_nonzero(tokens == 4) <= 10
    all_n = write_fasta(tmp_path / "alln.fa", {"c": "N" * 5000})
    with pytest.raises(InputError, match="mostly N"):
        training(contig_segments([all_n]), length=100).sample_window(0, 100)


def test_length_stages_change_the_window_length_by_step(genome):
    path, _ = genome
    stages = [LengthStage(0, 32, 8), LengthStage(2, 64, 4)]
    dataset = TrainingWindows(contig_segments([path]), stages, seed=0, objective="causal", end_batch=4)
    shapes = [tuple(b["inputs"].shape) for b in dataset]
    assert shapes == [(8, 32), (8, 32), (4, 64), (4, 64)]


def test_causal_and_masked_targets():
    tokens = encode("ACGTNACGTA")
    inputs, targets = causal_targets(tokens)
    assert list(targets) == [1, 2, 3, IGNORE, 0, 1, 2, 3, 0, IGNORE]
    rng = np.random.default_rng(0)
    long = np.random.default_rng(1).integers(0, 4, 20000).astype(np.uint8)
    masked, targets = masked_targets(long, rng)
    picked = targets != IGNORE
    assert abs(picked.mean() - 0.15) < 0.01
    assert np.array_equal(targets[picked], long[picked])
    assert abs((masked[picked] == MASK).mean() - 0.8) < 0.03
    assert np.all(masked[~picked] == long[~picked]) and np.all(masked[picked] <= MASK)
    assert np.all(masked[masked != MASK] < NUM_BASES)


def test_bed_regions_become_training_segments(genome, tmp_path):
    from genossm.data.segments import bed_segments

    path, _ = genome
    bed = tmp_path / "regions.bed"
    bed.write_text("chrA\t100\t900\nchrB\t0\t5000\n")
    assert bed_segments([path], bed) == [Segment(path, "chrA", 100, 900), Segment(path, "chrB", 0, 3000)]
    bed.write_text("chrZ\t0\t10\n")
    with pytest.raises(InputError, match="chrZ"):
        bed_segments([path], bed)
