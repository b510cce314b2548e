"""Per-position labels from a BED of positive intervals (`finetune --positions`) and the
per-position outputs of `predict` (bedGraph, BED of called runs), against hand-written answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genossm.errors import InputError
from genossm.finetune.data import Example
from genossm.finetune.positions import check_some_positive, label_examples, position_labels, read_intervals_files

BASES = np.array(list("ACGT"))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def region(chrom: str, start: int, end: int, strand: str = "+") -> Example:
    return Example(f"{chrom}:{start}-{end}{strand}", (), chrom=chrom, start=start, end=end, strand=strand)


def test_labels_follow_intervals_and_their_strands(tmp_path):
    bed = write(tmp_path / "sites.bed", "track name=sites\n"
                "c1\t2\t4\tboth\t0\t.\n"      # both strands
                "c1\t5\t6\tplus\t0\t+\n"      # plus-strand regions only
                "c1\t7\t9\tminus\t0\t-\n"     # minus-strand regions only
                "c1\t30\t40\n"                # BED3, outside the regions
                "c2\t0\t100\n")               # one long interval, starting far left of the region
    intervals = read_intervals_files([bed])
    assert len(intervals) == 5
    assert position_labels(region("c1", 0, 10, "+"), intervals) == "0011010000"
    # a '-' region reads its bases in reverse: genome bases 2, 3, 7, 8 are its 7th, 6th, 2nd, 1st
    assert position_labels(region("c1", 0, 10, "-"), intervals) == "0110001100"
    assert position_labels(region("c1", 0, 10, "."), intervals) == "0011010110"
    assert position_labels(region("c1", 3, 6, "+"), intervals) == "101"  # clipped at both ends
    assert position_labels(region("c2", 50, 55), intervals) == "11111"
    assert position_labels(region("c3", 0, 4), intervals) == "0000"  # contig without intervals
    labelled = label_examples([region("c1", 0, 10)], intervals)
    assert labelled[0].labels == ("0011010000",)
    with pytest.raises(InputError, match="is a sequence"):
        position_labels(Example("s", (), sequence="ACGT"), intervals)
    with pytest.raises(InputError, match="name contigs alike"):
        check_some_positive(label_examples([region("chr3", 0, 4)], intervals), [bed])
    with pytest.raises(InputError, match="empty or negative"):
        read_intervals_files([write(tmp_path / "bad.bed", "c1\t5\t5\n")])


def test_called_runs_and_minus_strand_coordinates():
    from genossm.finetune.checkpoint import TaskRecord
    from genossm.finetune.predict import base_coordinates, called_intervals
    from genossm.finetune.task import TaskSpec

    values = np.array([0.1, 0.6, 0.9, 0.2, 0.5, 0.5, 0.4, 0.7])
    positions = np.arange(100, 108)
    assert called_intervals(positions, values, 0.5) == [(101, 103, 0.9), (104, 106, 0.5), (107, 108, 0.7)]
    assert called_intervals(positions, values, 0.95) == []
    record = TaskRecord(TaskSpec("token", ("positions",), classes=("0", "1")), None, 0.0, 6, "center", {})
    # an 8-base '-' region cropped to its middle 6 read bases: read base j is genome base 20 - 1 - (1 + j)
    chrom, genome, kept = base_coordinates(region("c1", 12, 20, "-"), record, np.arange(6.0))
    assert chrom == "c1" and genome.tolist() == [13, 14, 15, 16, 17, 18] and kept.tolist() == [5, 4, 3, 2, 1, 0]
    chrom, genome, kept = base_coordinates(region("c1", 12, 20, "+"), record, np.arange(6.0))
    assert genome.tolist() == [13, 14, 15, 16, 17, 18] and kept.tolist() == [0, 1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from genossm.models.checkpoint import save_model
    from genossm.models.config import ModelConfig, load_model_config
    from genossm.models.lm import build_model

    config = load_model_config("tiny").to_dict() | {"d_model": 16, "n_layers": 1, "max_length": 64}
    torch.manual_seed(0)
    return save_model(build_model(ModelConfig.from_dict(config)), tmp_path_factory.mktemp("m") / "tiny")


def test_positions_train_a_per_position_head_that_finds_them(tmp_path, tiny_model):
    """The positives are the G/C bases of three random contigs (a strand-symmetric answer a
    1-layer model learns in a few epochs); the BED that predict writes for the held-out contig
    must call those bases."""
    from genossm.finetune.job import FinetuneJob, finetune
    from genossm.finetune.predict import PredictJob, predict
    from genossm.finetune.recipe import FinetuneRecipe

    rng = np.random.default_rng(3)
    contigs = {name: "".join(rng.choice(BASES, 600)) for name in ("c1", "c2", "c3")}
    write(tmp_path / "g.fa", "".join(f">{n}\n{s}\n" for n, s in contigs.items()))
    sites = [f"{n}\t{i}\t{i + 1}\n" for n, s in contigs.items() for i, b in enumerate(s) if b in "GC"]
    bed = write(tmp_path / "gc.bed", "".join(sites))
    windows = write(tmp_path / "windows.bed", "".join(
        f"{n}\t{start}\t{start + 40}\tw{n}_{start}\t0\t{'+-'[start // 40 % 2]}\n"
        for n in contigs for start in range(0, 560, 40)))
    run = tmp_path / "run"
    result = finetune(FinetuneJob(data=(str(windows),), fasta=(str(tmp_path / "g.fa"),), positions=(str(bed),),
                                  out_dir=str(run), model=str(tiny_model), val_chroms=("c2",), test_chroms=("c3",),
                                  recipe=FinetuneRecipe(max_epochs=6, batch_size=4, lr=3e-3, head_lr=3e-2,
                                                        warmup_steps=1, dropout=0.0)))
    assert result["task"]["kind"] == "token" and list(result["task"]["classes"]) == ["0", "1"]
    assert result["test"]["auroc"] > 0.97
    test_windows = write(tmp_path / "test.bed", "".join(
        line + "\n" for line in windows.read_text().splitlines() if line.startswith("c3")))
    called_bed = tmp_path / "called.bed"
    predict(PredictJob(model=str(run / "model"), regions=(str(test_windows),), fasta=(str(tmp_path / "g.fa"),),
                       output=str(called_bed)))
    called = np.zeros(600, bool)
    for line in called_bed.read_text().splitlines():
        if not line.startswith("#"):
            chrom, start, end, name, score, strand = line.split("\t")
            assert chrom == "c3" and 0 <= int(score) <= 1000 and strand in "+-"
            called[int(start):int(end)] = True
    truth = np.array([b in "GC" for b in contigs["c3"]])
    assert (called[:560] == truth[:560]).mean() > 0.95
    # an interrupted BED: two windows complete, the third torn; --resume ends with the same bytes
    text = called_bed.read_text()
    second_done = text.index("\n", text.index("# done ", text.index("# done ") + 1)) + 1
    from genossm.finetune.predict import partial_path

    resumed = tmp_path / "resumed.bed"
    partial_path(str(resumed)).write_text(text[:second_done] + text[second_done:second_done + 9])
    assert predict(PredictJob(model=str(run / "model"), regions=(str(test_windows),),
                              fasta=(str(tmp_path / "g.fa"),), output=str(resumed), resume=True)) == 12
    assert resumed.read_text() == text
    bedgraph = tmp_path / "p.bedgraph"
    predict(PredictJob(model=str(run / "model"), regions=(str(test_windows),), fasta=(str(tmp_path / "g.fa"),),
                       output=str(bedgraph)))
    rows = [line.split("\t") for line in bedgraph.read_text().splitlines() if not line.startswith("#")]
    assert [int(r[1]) for r in rows] == list(range(560))  # every base once, ascending, '-' windows too
    probability = np.array([float(r[3]) for r in rows])
    np.testing.assert_array_equal(probability >= 0.5, called[:560])


def test_positive_weight_scales_the_loss_of_positives():
    from genossm.finetune.heads import task_loss

    # token: two positions of class 1 (weight 3), one of class 0, one padded (ignored)
    logits = torch.tensor([[[0.0, 1.0], [2.0, 0.0], [0.5, 0.5], [9.0, -9.0]]])
    targets = torch.tensor([[1, 0, 1, -1]])
    nll = -torch.log_softmax(logits[0, :3], dim=-1)[torch.arange(3), targets[0, :3]]  # per position
    expected = (3 * nll[0] + nll[1] + 3 * nll[2]) / (3 + 1 + 3)  # torch's weighted mean
    torch.testing.assert_close(task_loss("token", logits, targets, positive_weight=3.0), expected)
    torch.testing.assert_close(task_loss("token", logits, targets), nll.mean())
    # binary: a positive's log-loss counts 4 times
    scores, labels = torch.tensor([[0.3], [-1.0]]), torch.tensor([[1.0], [0.0]])
    expected = (4 * -torch.log(torch.sigmoid(torch.tensor(0.3))) - torch.log(1 - torch.sigmoid(torch.tensor(-1.0)))) / 2
    torch.testing.assert_close(task_loss("binary", scores, labels, positive_weight=4.0), expected)
