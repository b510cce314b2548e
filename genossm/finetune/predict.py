"""`genossm predict`: run a fine-tuned model on regions or sequences, streamed and batched.

    predict(PredictJob(model="runs/x/model", regions=["new.bed"], fasta=["ref.fa"], output="preds.tsv"))

Input: BED (3+ columns) or any table/FASTA `genossm finetune` reads, labels not needed. Each
sequence is cropped as in training (task.json: `length`, `crop`) and, by default, predicted on
both strands and averaged. Output:
- sequence heads: TSV, header `#chrom start end name strand p_<class>...` (regions) or
  `#name p_<class>...` (sequences), one row per input in input order; regression heads write
  values in the training labels' units.
- token heads: bedGraph `chrom start end value`, one line per base, value = probability of
  `token_class` (default the last class: the positive one of a 0/1 labelling); a '-' region's
  bases are mapped back to genome coordinates.
Written to OUT.genossm-partial and renamed to OUT at the end; `resume=True` keeps the complete
rows of an interrupted run's partial file and continues after them (`-`: stdout, no resume).
"""

from __future__ import annotations

import dataclasses
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


def partial_path(output: str) -> Path:
    return Path(f"{output}.genossm-partial")


def _device(spec: str):
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: no CUDA device is available")
    return device


def check_job(job: PredictJob):
    from genossm.finetune.checkpoint import read_task

    if job.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    if job.resume and job.output == "-":
        raise UsageError("--resume needs an output file (-o FILE), not stdout")
    for path in [*job.regions, *job.fasta]:
        if not Path(path).is_file():
            raise InputError("file not found; check the path", path=path)
    record = read_task(job.model)
    if job.token_class is not None and (record.spec.kind != "token" or job.token_class not in record.spec.classes):
        raise UsageError(f"--class {job.token_class!r}: only for per-position models, one of their classes "
                         f"({', '.join(record.spec.classes) or 'this model is not per-position'})")
    return record


def _complete_rows(path: Path) -> int:
    """Complete lines of a partial file (a torn last line is cut off); the header is line 1."""
    with open_no_follow(path, "r+b") as handle:
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
    return data[:keep].count(b"\n")


def predict(job: PredictJob) -> int:
    """Predict every input row; returns the number of rows (inputs) predicted in this run."""
    import torch

    from genossm.finetune.checkpoint import load_finetuned
    from genossm.finetune.data import SequenceSource, collate, fit_length, read_unlabelled

    record = check_job(job)
    device = _device(job.device)
    if job.threads:
        torch.set_num_threads(job.threads)
    model, record = load_finetuned(job.model, device=device)
    spec = record.spec
    token = spec.kind == "token"
    token_class = spec.classes.index(job.token_class) if job.token_class else len(spec.classes) - 1
    pad_to = None if model.backbone.config.objective == "causal" else record.length
    examples: Iterator = itertools.chain.from_iterable(read_unlabelled(path) for path in job.regions)
    to_stdout = job.output == "-"
    partial = partial_path(job.output)
    done = 0
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
    source = SequenceSource(job.fasta)
    count = 0
    try:
        if not token and lines == 0:  # a fresh file, or a partial one torn inside its header
            handle.write(_header(spec))
        bar = progress(desc="predict", unit="seq")
        while True:
            batch = list(itertools.islice(examples, job.batch_size))
            if not batch:
                break
            rows = []
            for index, example in enumerate(batch):
                tokens, offset = fit_length(source.tokens(example), record.length, record.crop)
                rows.append((index, tokens, np.zeros(1, np.float32)))
            inputs = collate(rows, token_task=False, pad_to=pad_to)
            with torch.inference_mode():
                outputs = model.predict(inputs["tokens"].to(device), inputs["mask"].to(device),
                                        both_strands=job.both_strands).float().cpu().numpy()
            if token:
                for example, (_, tokens, _), values in zip(batch, rows, outputs):
                    _write_positions(handle, example, source, record, values[:len(tokens), token_class])
            else:
                outputs = spec.unscale(outputs)
                handle.write("".join(_row(example, values) for example, values in zip(batch, outputs)))
            handle.flush()
            count += len(batch)
            bar.update(len(batch))
        bar.close()
    finally:
        source.close()
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


def _write_positions(handle, example, source, record, values: np.ndarray) -> None:
    """bedGraph lines of one input (genome coordinates for regions, 0.. for sequences); a
    trailing `# done NAME` comment marks the input complete for --resume."""
    full = (example.end - example.start) if example.start is not None else len(example.sequence)
    from genossm.finetune.data import fit_length

    offset = fit_length(np.zeros(full, np.uint8), record.length, record.crop)[1]
    chrom = example.chrom if example.start is not None else example.name
    lines = []
    for j, value in enumerate(values):
        strand_position = offset + j
        if example.start is None:
            position = strand_position
        elif example.strand == "-":
            position = example.end - 1 - strand_position
        else:
            position = example.start + strand_position
        lines.append(f"{chrom}\t{position}\t{position + 1}\t{value:.6g}\n")
    if example.strand == "-" and example.start is not None:
        lines.reverse()
    handle.write("".join(lines) + f"# done {example.name}\n")


def _inputs_done(path: Path) -> int:
    """Inputs completed in a per-position partial file (its `# done` markers); lines after the
    last marker are cut off."""
    with open_no_follow(path, "r+b") as handle:
        data = handle.read()
        marker = data.rfind(b"# done ")
        keep = 0 if marker < 0 else data.index(b"\n", marker) + 1
        handle.truncate(keep)
    return data[:keep].count(b"# done ")
