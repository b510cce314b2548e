"""Indexed FASTA handles opened lazily, once per process, and never pickled.

DataLoader workers are forked or spawned copies of the dataset; an open file handle (pysam,
pyfaidx) must not cross that boundary, so each process opens its own on first use. A handle is
keyed by the process id too, so a forked child never reuses its parent's.
"""

from __future__ import annotations

import os

import numpy as np


class GenomePool:
    """Open genomes by path on demand; `fetch_tokens` reads one window, never a whole contig."""

    def __init__(self):
        self._genomes: dict[str, object] = {}
        self._pid = os.getpid()

    def _genome(self, path: str):
        if self._pid != os.getpid():  # inherited through fork: the handles belong to the parent
            self._genomes, self._pid = {}, os.getpid()
        genome = self._genomes.get(path)
        if genome is None:
            from genossm.io.fasta import open_fasta

            genome = self._genomes[path] = open_fasta(path)
        return genome

    def fetch_tokens(self, path: str, contig: str, start: int, end: int) -> np.ndarray:
        """Tokens `(end - start,)` uint8 of one stretch; past the contig's end reads as N."""
        return np.asarray(self._genome(path).fetch_tokens(contig, start, end, pad=True), dtype=np.uint8)

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._genomes, self._pid = {}, os.getpid()
