"""Atomic output: write to a fresh temporary name beside the target, rename at the end.

A crash or Ctrl-C never leaves a half-written file under the final name, which is what lets a
pipeline (Snakemake, Nextflow) trust that an existing output is a complete one.

Files beside an output live in directories other people may write to (a shared scratch space).
Temporary names are therefore fresh and created exclusively (`tempfile.mkstemp`: O_CREAT |
O_EXCL, so a planted file or symlink under a guessable name is never followed), and side files
with fixed names (resume logs, partial files) are created with `create_exclusive` (O_EXCL |
O_NOFOLLOW) and reopened with `open_no_follow`. `check_output_path` refuses, before any work,
an output that cannot be written where it was asked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from genossm.errors import UsageError

_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def temporary_path(path: str | os.PathLike) -> Path:
    """A new, empty file beside `path`, created exclusively under a random name (the caller's)."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(handle)
    return Path(name)


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
        remove_with_companions(tmp)
        raise
    companions = [p for p in tmp.parent.glob(tmp.name + ".*") if p != tmp]
    os.replace(tmp, final)
    for companion in companions:
        os.replace(companion, final.with_name(final.name + companion.name[len(tmp.name):]))


def replace_directory(tmp: Path, directory: Path) -> None:
    """Put the finished directory `tmp` in place of `directory` (which may exist): the old one is
    moved aside first and removed last, so the name never points at a half-written directory."""
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old{os.getpid()}")
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, directory)


def remove_with_companions(tmp: Path) -> None:
    for leftover in tmp.parent.glob(tmp.name + "*"):
        leftover.unlink(missing_ok=True)


def create_exclusive(path: str | os.PathLike, mode: str = "w", **kwargs):
    """Open a new file at `path` for writing, replacing a regular file of that name but never
    writing through a symlink (the link itself is removed, not its target)."""
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # unlink removes a symlink itself, never what it points to
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o666)
    return os.fdopen(descriptor, mode, **kwargs)


def open_no_follow(path: str | os.PathLike, mode: str = "r", **kwargs):
    """Open an existing file without following a symlink at `path` (OSError if it is one)."""
    flags = {"r": os.O_RDONLY, "rb": os.O_RDONLY, "a": os.O_WRONLY | os.O_APPEND,
             "r+b": os.O_RDWR}[mode]
    return os.fdopen(os.open(path, flags | _NO_FOLLOW), mode, **kwargs)


def check_output_path(path: str | os.PathLike, option: str, inputs: tuple = ()) -> None:
    """Usage errors for an output file, raised before any work: its directory missing, not a
    directory or not writable, the path naming a directory, or the path being one of `inputs`."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    where = f"{option} {os.fspath(path)}"
    if path.is_dir():
        raise UsageError(f"{where}: is a directory; give a file name inside it")
    if not parent.exists():
        raise UsageError(f"{where}: the directory {os.fspath(parent)} does not exist; create it first")
    if not parent.is_dir():
        raise UsageError(f"{where}: {os.fspath(parent)} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{where}: the directory {os.fspath(parent)} is not writable")
    for given in inputs:
        if given is None or os.fspath(given) == "-":
            continue
        given = Path(given)
        same = (path.exists() and given.exists() and os.path.samefile(path, given)) or \
            os.path.realpath(path) == os.path.realpath(given)
        if same:
            raise UsageError(f"{where}: is also an input ({os.fspath(given)}); write to another file")
