"""Labelled examples: reading them, splitting them, and turning them into batches.

Inputs (one format per file, told apart by content):
- a table of regions, TSV with a header line (`chrom start end [name] [strand] LABEL... [split]`,
  a leading '#' allowed, BED aliases chromStart/chromEnd accepted) read against `--fasta`
  (one or more genomes; a region's contig is looked up in each). A headerless BED works too: its
  columns are then named col1, col2, ... (`--labels col7`). Strand '-' regions are read as their
  reverse complement.
- a table of sequences: the same TSV with a `sequence` column instead of coordinates;
- a FASTA of sequences whose headers carry the labels: `>name label=promoter split=train`.

Splits: `split_examples` assigns train/val/test by chromosome (`val_chroms`, `test_chroms`, names
or shell patterns such as `NZ_CP*`) or by a split column (train, val/valid/validation, test;
other values, e.g. `unused`, leave the row out). Never by random rows: overlapping windows of
one locus would sit on both sides of the split and inflate every held-out metric.

Length policy (`fit_length`): a sequence longer than the model's input length is cropped to it
(`crop`: "center" keeps the middle, "start" the first bases, "end" the last bases, measured on the
strand read, so "end" of an upstream window keeps the bases next to the gene); a shorter one is
padded on the right with [PAD], which no head ever reads (pooling and losses are masked). Causal
models pad to the longest sequence of a batch (their outputs at real bases cannot see the pads);
other models always pad to the full input length, so a prediction never depends on its batch.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import gzip
import logging
import math
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from genossm import tokenizer
from genossm.errors import InputError

log = logging.getLogger("genossm.finetune")

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "dev": "val", "test": "test", "testing": "test"}
_COLUMN_ALIASES = {"chr": "chrom", "#chrom": "chrom", "chromosome": "chrom", "contig": "chrom",
                   "chromstart": "start", "chromend": "end", "seq": "sequence"}
CROPS = ("center", "start", "end")
IGNORE = -1  # token targets at padded positions


@dataclasses.dataclass(frozen=True)
class Example:
    """One labelled row: a region (chrom, start, end, strand) or a sequence, its raw labels."""

    name: str
    labels: tuple[str, ...]
    chrom: str | None = None
    start: int | None = None
    end: int | None = None
    strand: str = "+"
    sequence: str | None = None
    split: str | None = None
    source: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        return f" ({self.source}, line {self.line})" if self.source else ""


# -------------------------------------------------------------------------------------- reading
def open_text(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "rt", encoding="utf-8")


def _first_line(path: Path) -> str:
    with open_text(path) as handle:
        for text in handle:
            if text.strip():
                return text
    raise InputError("empty file; expected a TSV/BED of labelled regions or sequences, or a FASTA", path=path)


def read_examples(path: str | os.PathLike, label_columns: Sequence[str],
                  split_column: str | None = None) -> Iterator[Example]:
    """Labelled examples of one file, streamed (see the module docstring for the formats)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("labelled data file not found; check the path", path=path)
    if _first_line(path).startswith(">"):
        yield from _read_fasta(path, label_columns, split_column)
    else:
        yield from _read_table(path, label_columns, split_column, need_labels=bool(label_columns))


def read_unlabelled(path: str | os.PathLike) -> Iterator[Example]:
    """Examples to predict: the same formats without labels (a plain BED works)."""
    yield from read_examples(path, (), None)


def _canonical(name: str) -> str:
    key = name.strip()
    return _COLUMN_ALIASES.get(key.lower(), key.lstrip("#") if key.startswith("#") else key)


def _is_header(fields: list[str]) -> bool:
    return fields[0].startswith("#") or not (len(fields) >= 3 and fields[1].strip().isdigit())


def _read_table(path: Path, label_columns: Sequence[str], split_column: str | None,
                need_labels: bool) -> Iterator[Example]:
    with open_text(path) as handle:
        columns: list[str] | None = None
        for line_number, text in enumerate(handle, start=1):
            text = text.rstrip("\r\n")
            if not text.strip() or text.split(None, 1)[0] in ("track", "browser"):
                continue
            fields = text.split("\t")
            if columns is None:
                if _is_header(fields):
                    columns = [_canonical(f) for f in fields]
                    _check_columns(columns, label_columns, split_column, path, line_number)
                    continue
                columns = ["chrom", "start", "end", "name", "score", "strand"][:len(fields)]
                columns += [f"col{i}" for i in range(len(columns) + 1, len(fields) + 1)]
                _check_columns(columns, label_columns, split_column, path, line_number)
            elif text.startswith("#"):
                continue
            if len(fields) != len(columns):
                raise InputError(f"{len(fields)} tab-separated fields where the header has {len(columns)}",
                                 path=path, line=line_number)
            yield _table_example(dict(zip(columns, fields)), label_columns, split_column, path, line_number)


def _check_columns(columns, label_columns, split_column, path, line) -> None:
    has_sequence = "sequence" in columns
    if not has_sequence and not {"chrom", "start", "end"} <= set(columns):
        raise InputError(f"columns {', '.join(columns)}: expected chrom, start, end (regions) or sequence "
                         "(sequences) in a header line", path=path, line=line)
    missing = [c for c in [*label_columns, *([split_column] if split_column else [])] if c not in columns]
    if missing:
        raise InputError(f"column(s) {', '.join(missing)} not in the header ({', '.join(columns)}); choose "
                         "label columns with --labels and the split column with --split-column",
                         path=path, line=line)


def _table_example(row: dict[str, str], label_columns, split_column, path: Path, line: int) -> Example:
    labels = tuple(row[c].strip() for c in label_columns)
    split = row[split_column].strip() if split_column else None
    if "sequence" in row:
        name = row.get("name") or f"seq{line}"
        return Example(name, labels, chrom=row.get("chrom") or None, sequence=row["sequence"].strip(),
                       split=split, source=str(path), line=line)
    try:
        start, end = int(row["start"]), int(row["end"])
    except ValueError:
        raise InputError(f"start/end {row['start']!r}/{row['end']!r} are not integers", path=path, line=line) from None
    if start < 0 or end <= start:
        raise InputError(f"region [{start}, {end}) is empty or negative (0-based, half-open)", path=path, line=line)
    strand = row.get("strand", "+") or "+"
    if strand not in ("+", "-", "."):
        raise InputError(f"strand {strand!r}: expected +, - or .", path=path, line=line)
    name = row.get("name") if row.get("name") not in (None, "", ".") else f"{row['chrom']}:{start + 1}-{end}"
    return Example(name, labels, chrom=row["chrom"], start=start, end=end, strand=strand, split=split,
                   source=str(path), line=line)


def _read_fasta(path: Path, label_columns: Sequence[str], split_column: str | None) -> Iterator[Example]:
    def finish(header: str, line: int, chunks: list[str]) -> Example:
        name, *pairs = header.split()
        fields = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        missing = [c for c in [*label_columns, *([split_column] if split_column else [])] if c not in fields]
        if missing:
            raise InputError(f"FASTA header of {name!r} has no {', '.join(f'{m}=...' for m in missing)}; "
                             "write labels as '>name label=VALUE split=train'", path=path, line=line)
        return Example(name, tuple(fields[c] for c in label_columns), chrom=fields.get("chrom"),
                       sequence="".join(chunks), split=fields.get(split_column) if split_column else None,
                       source=str(path), line=line)

    header, header_line, chunks = None, 0, []
    with open_text(path) as handle:
        for line_number, text in enumerate(handle, start=1):
            text = text.strip()
            if text.startswith(">"):
                if header is not None:
                    yield finish(header, header_line, chunks)
                header, header_line, chunks = text[1:], line_number, []
            elif text:
                chunks.append(text)
    if header is not None:
        yield finish(header, header_line, chunks)


# -------------------------------------------------------------------------------------- splits
def _patterns(text: Sequence[str] | str | None) -> list[str]:
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    return [p.strip() for p in items if p.strip()]


def split_examples(examples: list[Example], *, val_chroms=None, test_chroms=None,
                   split_column: str | None = None) -> dict[str, list[Example]]:
    """{"train": [...], "val": [...], "test": [...]} by split column or by chromosome."""
    val, test = _patterns(val_chroms), _patterns(test_chroms)
    if split_column and (val or test):
        raise InputError("give either --split-column or --val-chroms/--test-chroms, not both")
    if not split_column and not val:
        raise InputError("no validation split: give --val-chroms (and --test-chroms) to hold out whole "
                         "chromosomes, or --split-column with train/val/test values; genossm never splits "
                         "random rows, which leaks overlapping windows into the held-out sets")
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for example in examples:
        if split_column:
            split = _SPLIT_ALIASES.get((example.split or "").lower())
            if split is None:
                continue  # e.g. "unused": rows kept out on purpose
        else:
            if example.chrom is None:
                raise InputError("--val-chroms/--test-chroms need a chrom column; these rows have only "
                                 f"sequences: use --split-column{example.where}")
            split = ("test" if any(fnmatch.fnmatchcase(example.chrom, p) for p in test) else
                     "val" if any(fnmatch.fnmatchcase(example.chrom, p) for p in val) else "train")
        splits[split].append(example)
    for name in ("train", "val"):
        if not splits[name]:
            raise InputError(f"the {name} split is empty; check --val-chroms/--test-chroms or the split column")
    return splits


# -------------------------------------------------------------------------------------- sequences
class SequenceSource:
    """Tokens of examples: a sequence as given, or a region read from one of the genomes."""

    def __init__(self, fasta: Sequence[str | os.PathLike] = ()):
        from genossm.io.fasta import open_fasta

        self.genomes = [open_fasta(path) for path in fasta]
        self._where: dict[str, tuple[int, str]] = {}

    def _locate(self, example: Example):
        if example.chrom in self._where:
            index, name = self._where[example.chrom]
            return self.genomes[index], name
        for index, genome in enumerate(self.genomes):
            if example.chrom in genome:
                self._where[example.chrom] = (index, genome.resolve(example.chrom))
                return self.genomes[index], self._where[example.chrom][1]
        if not self.genomes:
            raise InputError(f"region rows need --fasta (the genome to read them from){example.where}")
        raise InputError(f"contig {example.chrom!r} is in none of the FASTA files "
                         f"({', '.join(str(g.path) for g in self.genomes)}){example.where}")

    def tokens(self, example: Example) -> np.ndarray:
        """(L,) uint8 genossm ids, on the example's strand."""
        if example.sequence is not None:
            try:
                return tokenizer.encode(example.sequence, source=f"sequence {example.name!r}")
            except InputError as err:
                raise InputError(err.message + example.where) from None
        genome, contig = self._locate(example)
        if example.end > genome.contigs[contig]:
            raise InputError(f"region {example.name} ends past contig {contig!r} (length "
                             f"{genome.contigs[contig]}){example.where}")
        tokens = genome.fetch_tokens(contig, example.start, example.end)
        return tokenizer.reverse_complement_tokens(tokens) if example.strand == "-" else tokens

    def close(self) -> None:
        for genome in self.genomes:
            genome.close()


def fit_length(tokens: np.ndarray, length: int, crop: str = "center") -> tuple[np.ndarray, int]:
    """(tokens cropped to at most `length`, offset of the kept piece in the input)."""
    if len(tokens) <= length:
        return tokens, 0
    extra = len(tokens) - length
    offset = {"center": extra // 2, "start": 0, "end": extra}[crop]
    return tokens[offset:offset + length], offset


# -------------------------------------------------------------------------------------- batches
@dataclasses.dataclass
class EncodedSet:
    """A split held in memory: tokens of every example (uint8) and their targets (float32)."""

    tokens: list[np.ndarray]
    targets: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.tokens)


def encode_split(examples: list[Example], source: SequenceSource, spec, length: int, crop: str) -> EncodedSet:
    tokens, targets = [], []
    for example in examples:
        sequence = source.tokens(example)
        kept, offset = fit_length(sequence, length, crop)
        target = spec.encode(example.labels, example.where)
        if spec.kind == "token":
            if len(target) != len(sequence):
                raise InputError(f"per-position labels have {len(target)} characters for a sequence of "
                                 f"{len(sequence)} bases{example.where}")
            target = target[offset:offset + len(kept)]
        tokens.append(kept)
        targets.append(target)
    return EncodedSet(tokens, targets)


class ExampleDataset:
    """Map-style dataset over an EncodedSet; index `2 * i + flip` reads example i on the reverse
    strand when `flip` is 1 (the sampler draws the strands: RC augmentation)."""

    def __init__(self, data: EncodedSet, token_task: bool):
        self.data = data
        self.token_task = token_task

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, item: int):
        index, flip = divmod(int(item), 2)
        tokens, target = self.data.tokens[index], self.data.targets[index]
        if flip:
            tokens = tokenizer.reverse_complement_tokens(tokens)
            if self.token_task:
                target = target[::-1]
        return index, tokens, target


class EpochBatches:
    """Batches of dataset items for one rank: a permutation per (seed, epoch), strands drawn with
    probability 1/2 when `rc_augment`, sharded over ranks; resumable mid-epoch (`skip`).

    Batch k of epoch e on rank r is a pure function of (seed, e, k, r), so a run resumed at step s
    continues with exactly the batches the uninterrupted run would have drawn.
    """

    def __init__(self, size: int, batch_size: int, *, shuffle: bool, rc_augment: bool, seed: int,
                 rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.shuffle, self.rc_augment = size, batch_size, shuffle, rc_augment
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0
        self.skip = 0  # batches of the current epoch already trained (set on resume)

    def per_rank(self) -> int:
        return math.ceil(self.size / self.world)

    def __len__(self) -> int:
        return math.ceil(self.per_rank() / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        flips = rng.integers(0, 2, self.size) if self.rc_augment else np.zeros(self.size, dtype=np.int64)
        padded = np.resize(order, self.per_rank() * self.world)  # wraps around: equal shards
        mine = padded[self.rank::self.world]
        items = 2 * mine + flips[mine]
        skip, self.skip = self.skip, 0
        for start in range(skip * self.batch_size, len(items), self.batch_size):
            yield items[start:start + self.batch_size].tolist()


def collate(rows, *, token_task: bool, pad_to: int | None = None):
    """[(index, tokens, target)] -> {"tokens" (B, L) long, "mask" (B, L) bool, "targets",
    "index" (B,)}; targets (B, T) float, or (B, L) long for token tasks (IGNORE at pads).
    Padding is genossm's [PAD] (a converted model's own id comes from its vocabulary view)."""
    import torch

    lengths = [len(tokens) for _, tokens, _ in rows]
    width = max(pad_to or 0, max(lengths))
    tokens = np.full((len(rows), width), tokenizer.PAD, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    if token_task:
        targets = np.full((len(rows), width), IGNORE, dtype=np.int64)
    else:
        targets = np.stack([target for _, _, target in rows]).astype(np.float32)
    for row, (_, sequence, target) in enumerate(rows):
        tokens[row, :len(sequence)] = sequence
        mask[row, :len(sequence)] = True
        if token_task:
            targets[row, :len(sequence)] = target
    return {"tokens": torch.from_numpy(tokens), "mask": torch.from_numpy(mask),
            "targets": torch.from_numpy(targets), "index": torch.tensor([i for i, _, _ in rows])}
