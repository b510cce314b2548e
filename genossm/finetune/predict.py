"""`genossm predict`: run a fine-tuned model on regions or sequences, streamed and batched.

    predict(PredictJob(model="runs/x/model", regions=["new.bed"], fasta=["ref.fa"], output="preds.tsv"))

Input: BED (3+ columns) or any table/FASTA `genossm finetune` reads, labels not needed. Each
sequence is cropped as in training (task.json: `length`, `crop`) and, by default, predicted on
both strands and averaged. Output:
- sequence heads: TSV, header `#chrom start end name strand p_<class>...` (regions) or
  `#name p_<class>...` (sequences), one row per input in input order; regression heads write
  values in the training labels' units.
- token heads: bedGraph `chrom start end value`, one line per base, value = probability of
  `token_class` (default the last class: the positive one of a 0/1 labelling); or, with
  `output_format="bed"` (an output ending in .bed), BED6 intervals of the runs of adjacent bases
  whose probability is >= `threshold` (`chrom start end input-name score strand`, score = 1000 x
  the run's highest probability). A '-' region's bases are mapped back to genome coordinates and
  written in ascending order.
Written to OUT.genossm-partial and renamed to OUT at the end; `resume=True` keeps the complete
rows of an interrupted run's partial file and continues after them (`-`: stdout, no resume).

`devices=N` (and `num_nodes`) shard the batches over ranks with `genossm.infer.ranks`, as
`genossm embed --devices N` does: batch i is computed by rank i % world, rank 0 writes every row
in input order, the same bytes as one device (batches are the same, so causal models pad alike).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from genossm.atomic import create_exclusive, open_no_follow
from genossm.errors import InputError, UsageError
from genossm.progress import progress

log = logging.getLogger("genossm.predict")


@dataclasses.dataclass(frozen=True)
class PredictJob:
    model: str
    regions: tuple[str, ...]
    output: str = "-"
    fasta: tuple[str, ...] = ()
    both_strands: bool = True
    batch_size: int = 64
    device: str = "auto"
    threads: int | None = None
    resume: bool = False
    token_class: str | None = None
    output_format: str | None = None  # per-position models: bedgraph | bed (None: from the suffix)
    threshold: float = 0.5  # per-position BED: bases with probability >= threshold, merged into runs
    devices: int = 1  # ranks per node (genossm.infer.ranks): the same output, written by rank 0
    num_nodes: int = 1

    @property
    def compute(self):
        from genossm.infer.ranks import Compute

        return Compute(device=self.device, threads=self.threads, devices=self.devices, num_nodes=self.num_nodes)


def partial_path(output: str) -> Path:
    return Path(f"{output}.genossm-partial")


def check_job(job: PredictJob):
    from genossm.finetune.checkpoint import read_task

    if job.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    if job.resume and job.output == "-":
        raise UsageError("--resume needs an output file (-o FILE), not stdout")
    for path in [*job.regions, *job.fasta]:
        if not Path(path).is_file():
            raise InputError("file not found; check the path", path=path)
    if job.output_format not in (None, "bed", "bedgraph"):
        raise UsageError(f"--format {job.output_format!r}: expected bed or bedgraph")
    if not 0.0 <= job.threshold <= 1.0:
        raise UsageError(f"--threshold {job.threshold}: expected a probability between 0 and 1")
    record = read_task(job.model)
    if job.output_format and record.spec.kind != "token":
        raise UsageError(f"--format {job.output_format}: only for per-position models; this one writes a TSV")
    if job.token_class is not None and (record.spec.kind != "token" or job.token_class not in record.spec.classes):
        raise UsageError(f"--class {job.token_class!r}: only for per-position models, one of their classes "
                         f"({', '.join(record.spec.classes) or 'this model is not per-position'})")
    return record


def position_format(job: PredictJob) -> str:
    """bed or bedgraph: --format, else the output's suffix (.bed -> bed), else bedgraph."""
    if job.output_format:
        return job.output_format
    return "bed" if job.output.lower().endswith(".bed") else "bedgraph"


def _complete_rows(path: Path) -> int:
    """Complete lines of a partial file (a torn last line is cut off); the header is line 1."""
    with open_no_follow(path, "r+b") as handle:
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
    return data[:keep].count(b"\n")


def predict(job: PredictJob) -> int:
    """Predict every input row; returns the number of rows (inputs) written in this run (on the
    other ranks of a sharded run: 0)."""
    from genossm.infer.ranks import check_compute, run_job

    check_job(job)
    check_compute(job.compute, resume=job.resume)
    if job.compute.sharded and job.output == "-":
        raise UsageError("--devices/--num-nodes write through rank 0 to a file: give -o FILE, not stdout")
    return run_job(job.compute, functools.partial(_predict_on_rank, job))


def _predict_on_rank(job: PredictJob, runner) -> int:
    """Every rank walks the same batches of inputs; `runner` gives each batch to a rank and
    hands the outputs, in input order, to the writer (the one process, or rank 0)."""
    import collections

    from genossm.finetune.checkpoint import load_finetuned
    from genossm.finetune.data import SequenceSource, read_unlabelled

    model, record = load_finetuned(job.model, device=runner.device)
    examples: Iterator = itertools.chain.from_iterable(read_unlabelled(path) for path in job.regions)
    source = SequenceSource(job.fasta)
    try:
        if not runner.writes:
            batches = enumerate(iter(lambda: list(itertools.islice(examples, job.batch_size)), []))
            compute = functools.partial(_predict_batch, model, record, source, job=job, device=runner.device)
            collections.deque(runner(batches, compute), maxlen=0)  # this rank's share
            return 0
        return _write_predictions(job, record, model, source, examples, runner)
    finally:
        source.close()


def _predict_batch(model, record, source, batch: list, job: PredictJob, device) -> list[np.ndarray]:
    """Outputs of one batch of inputs: (C,) per sequence head input, (kept bases, C) per token input."""
    import torch

    from genossm.finetune.data import collate, fit_length

    pad_to = None if model.backbone.config.objective == "causal" else record.length
    rows = [(index, fit_length(source.tokens(example), record.length, record.crop)[0], np.zeros(1, np.float32))
            for index, example in enumerate(batch)]
    inputs = collate(rows, token_task=False, pad_to=pad_to)
    with torch.inference_mode():
        outputs = model.predict(inputs["tokens"].to(device), inputs["mask"].to(device),
                                both_strands=job.both_strands).float().cpu().numpy()
    if record.spec.kind == "token":
        return [values[:len(tokens)] for (_, tokens, _), values in zip(rows, outputs)]
    return list(record.spec.unscale(outputs))


def _write_predictions(job: PredictJob, record, model, source, examples: Iterator, runner) -> int:
    spec = record.spec
    token = spec.kind == "token"
    token_class = spec.classes.index(job.token_class) if job.token_class else len(spec.classes) - 1
    output_format = position_format(job)
    to_stdout = job.output == "-"
    partial = partial_path(job.output)
    resuming = job.resume and partial.exists()
    lines = 0
    if resuming:
        lines = _complete_rows(partial)
        done = lines - 1 if not token else _inputs_done(partial)
        # the rows already written must be those of these inputs: a changed input under the
        # same name would otherwise come out with another file's predictions
        examples = _check_resumed_inputs(partial, examples, max(done, 0), token, spec)
        log.info("resuming after %d input(s) already in %s", max(done, 0), partial)
    if to_stdout:
        handle = sys.stdout
    elif resuming:
        handle = open_no_follow(partial, "a", encoding="utf-8")
    else:
        handle = create_exclusive(partial, "w", encoding="utf-8")  # never through a planted symlink
    count = 0
    try:
        if not token and lines == 0:  # a fresh file, or a partial one torn inside its header
            handle.write(_header(spec))
        bar = progress(desc="predict", unit="seq")
        batches = enumerate(iter(lambda: list(itertools.islice(examples, job.batch_size)), []))
        compute = functools.partial(_predict_batch, model, record, source, job=job, device=runner.device)
        for _, batch, outputs in runner(batches, compute):
            if token:
                for example, values in zip(batch, outputs):
                    _write_positions(handle, example, record, values[:, token_class], output_format, job.threshold)
            else:
                handle.write("".join(_row(example, values) for example, values in zip(batch, outputs)))
            handle.flush()
            count += len(batch)
            bar.update(len(batch))
        bar.close()
    finally:
        if not to_stdout:
            handle.close()
    if not to_stdout:
        os.replace(partial, job.output)
    return count


def _identity(example, token: bool) -> tuple:
    """What a written row (or per-position `# done` marker) records of its input."""
    if token:
        return (example.name,)
    return (example.chrom or ".", "." if example.start is None else str(example.start),
            "." if example.end is None else str(example.end), example.name, example.strand)


def _check_resumed_inputs(partial: Path, examples: Iterator, done: int, token: bool, spec) -> Iterator:
    """Compare the first `done` inputs with the rows of the partial file; returns the inputs
    still to predict. A mismatch is an InputError that says how to start afresh."""
    with open_no_follow(partial, "r", encoding="utf-8") as handle:
        text = handle.read()
    if token:
        stored = [(line[len("# done "):],) for line in text.splitlines() if line.startswith("# done ")]
    else:
        lines = text.splitlines()
        if lines and lines[0] + "\n" != _header(spec):
            raise InputError(f"{partial}: its header is not this model's output columns; delete it "
                             "or drop --resume")
        stored = [tuple(line.split("\t")[:5]) for line in lines[1:]]
    given = list(itertools.islice(examples, done))
    for number, (row, example) in enumerate(zip(stored, given), start=1):
        if row != _identity(example, token):
            raise InputError(
                f"{partial}: row {number} was written for {' '.join(row)}, but input {number} is now "
                f"{' '.join(_identity(example, token))}: the input changed since the interrupted run; "
                "delete the partial file or drop --resume")
    if len(given) < done:
        raise InputError(f"{partial} holds {done} rows but the input now has {len(given)}: the input "
                         "changed since the interrupted run; delete the partial file or drop --resume")
    return examples


def _header(spec) -> str:
    return "#" + "\t".join(["chrom", "start", "end", "name", "strand", *spec.output_names]) + "\n"


def _row(example, values) -> str:
    chrom = example.chrom or "."
    start = "." if example.start is None else str(example.start)
    end = "." if example.end is None else str(example.end)
    cells = [chrom, start, end, example.name, example.strand, *(f"{v:.6g}" for v in values)]
    return "\t".join(cells) + "\n"


def _write_positions(handle, example, record, values: np.ndarray, output_format: str,
                     threshold: float) -> None:
    """Per-position lines of one input (genome coordinates for regions, 0.. for sequences),
    in ascending coordinates; a trailing `# done NAME` comment marks the input complete for
    --resume (BED and bedGraph readers skip '#' lines)."""
    chrom, positions, values = base_coordinates(example, record, values)
    if output_format == "bed":
        text = "".join(f"{chrom}\t{start}\t{end}\t{example.name}\t{round(1000 * peak)}\t{example.strand}\n"
                       for start, end, peak in called_intervals(positions, values, threshold))
    else:
        text = "".join(f"{chrom}\t{p}\t{p + 1}\t{v:.6g}\n" for p, v in zip(positions.tolist(), values.tolist()))
    handle.write(text + f"# done {example.name}\n")


def base_coordinates(example, record, values: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """(chrom, positions (n,), values (n,)) of one input's predicted bases in ascending order:
    the bases kept by the crop, a '-' region's read order mapped back to the genome."""
    from genossm.finetune.data import fit_length

    full = (example.end - example.start) if example.start is not None else len(example.sequence)
    offset = fit_length(np.zeros(full, np.uint8), record.length, record.crop)[1]
    read_positions = offset + np.arange(len(values))  # on the strand read
    if example.start is None:
        return example.name, read_positions, values
    if example.strand == "-":
        return example.chrom, (example.end - 1 - read_positions)[::-1], values[::-1]
    return example.chrom, example.start + read_positions, values


def called_intervals(positions: np.ndarray, values: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Runs of adjacent positions whose value is >= threshold: [(start, end, highest value)]."""
    called = values >= threshold
    if not called.any():
        return []
    # a run breaks where a base is not called or the next called base is not adjacent
    edges = np.flatnonzero(np.diff(np.r_[False, called, False].astype(np.int8)))
    intervals = []
    for first, stop in zip(edges[::2], edges[1::2]):
        intervals.append((int(positions[first]), int(positions[stop - 1]) + 1, float(values[first:stop].max())))
    return intervals


def _inputs_done(path: Path) -> int:
    """Inputs completed in a per-position partial file (its `# done` markers); lines after the
    last marker are cut off."""
    with open_no_follow(path, "r+b") as handle:
        data = handle.read()
        marker = data.rfind(b"# done ")
        keep = 0 if marker < 0 else data.index(b"\n", marker) + 1
        handle.truncate(keep)
    return data[:keep].count(b"# done ")
