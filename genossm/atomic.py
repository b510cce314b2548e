"""Atomic output: write to a temporary name beside the target, rename at the end.

A crash or Ctrl-C never leaves a half-written file under the final name, which is what lets a
pipeline (Snakemake, Nextflow) trust that an existing output is a complete one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def temporary_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path; on success rename it (and its companions) to `path`.

    Companion files written next to the temporary one with a suffix (an index such as
    `.tmp.tbi`) are renamed with it, suffix kept.
    """
    final = Path(path)
    tmp = temporary_path(final)
    try:
        yield tmp
    except BaseException:
        for leftover in tmp.parent.glob(tmp.name + "*"):
            leftover.unlink(missing_ok=True)
        raise
    companions = [p for p in tmp.parent.glob(tmp.name + ".*") if p != tmp]
    os.replace(tmp, final)
    for companion in companions:
        os.replace(companion, final.with_name(final.name + companion.name[len(tmp.name):]))
