"""Sequencing reads (BAM/CRAM) as training data, addressed by ordinal.

The training stream asks for "read number q" (q grows within a worker; see
`TrainingWindows.make_batch`), so a resumed run gets the reads the killed run would have seen.
Each process streams the files itself (constant memory; handles opened lazily, never pickled),
skipping the reads other workers take; after the last read the stream starts over.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np

from genossm.errors import InputError
from genossm.tokenizer import PAD, encode, reverse_complement_tokens


class ReadSource:
    """Reads of one or more BAM files (genossm.io.bam.stream_reads filters), cycled forever."""

    def __init__(self, paths: Sequence[str | os.PathLike], *, min_mapq: int = 0,
                 reverse_complement: bool = True):
        self.paths = [os.fspath(path) for path in paths]
        self.min_mapq = min_mapq
        self.reverse_complement = reverse_complement
        self._reset()

    def _reset(self) -> None:
        self._stream: Iterator[str] | None = None
        self._position = 0  # ordinal of the next read the stream yields
        self._total: int | None = None  # reads in one pass, known after the first pass
        self._pid = os.getpid()

    def __getstate__(self):
        return {"paths": self.paths, "min_mapq": self.min_mapq, "reverse_complement": self.reverse_complement}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset()

    def _sequences(self) -> Iterator[str]:
        from genossm.io.bam import stream_reads

        for path in self.paths:
            for read in stream_reads(path, min_mapq=self.min_mapq, original_strand=True):
                yield read.sequence

    def sequence(self, ordinal: int) -> str:
        """The `ordinal`-th read (counting over repeated passes)."""
        if self._pid != os.getpid():
            self._reset()
        if self._total is not None:
            ordinal %= self._total
        if self._stream is None or ordinal < self._position:
            self._stream, self._position = self._sequences(), 0
        while True:
            try:
                sequence = next(self._stream)
            except StopIteration:
                if self._position == 0:
                    raise InputError("no read passes the filters (min_mapq, flags) in the BAM "
                                     "file(s); check them with `samtools view -c`",
                                     path=", ".join(self.paths)) from None
                self._total = self._position
                return self.sequence(ordinal)
            self._position += 1
            if self._position - 1 == ordinal:
                return sequence

    def window(self, ordinal: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """Tokens `(length,)` uint8 of read `ordinal`: a random crop of a longer read, a shorter
        one padded with PAD (never predicted), reverse-complemented with p = 0.5."""
        tokens = encode(self.sequence(ordinal))
        if len(tokens) > length:
            offset = int(rng.integers(len(tokens) - length + 1))
            tokens = tokens[offset:offset + length]
        if self.reverse_complement and rng.random() < 0.5:
            tokens = reverse_complement_tokens(tokens)
        if len(tokens) < length:
            tokens = np.concatenate([tokens, np.full(length - len(tokens), PAD, dtype=np.uint8)])
        return tokens
