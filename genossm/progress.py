"""What a run reports on stderr: log set-up, progress bars, and which ranks log.

One module for every layer (train and infer both use it, neither imports the other): logs go
to stderr as `genossm: message`, progress bars (tqdm) too, both silenced by `-q`
(`configure_logging(quiet=True)` sets GENOSSM_QUIET=1, which the bars read, so a bar started in
any process of the run stays quiet). On several ranks, info messages come from rank 0 only.
"""

from __future__ import annotations

import logging
import os
import sys
import threading


def configure_logging(quiet: bool, debug: bool) -> None:
    """Logs to stderr: info by default, errors only when `quiet`, everything when `debug`."""
    level = logging.DEBUG if debug else logging.ERROR if quiet else logging.INFO
    logging.basicConfig(level=level, format="genossm: %(message)s", stream=sys.stderr)
    if quiet:
        os.environ["GENOSSM_QUIET"] = "1"


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it", **kwargs):
    """A tqdm bar on stderr with rate and ETA; disabled with -q (GENOSSM_QUIET=1)."""
    from tqdm.auto import tqdm

    disable = os.environ.get("GENOSSM_QUIET") == "1"
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable,
                dynamic_ncols=True, mininterval=0.5, **kwargs)


class PieceProgress:
    """A bar over items done in pieces (chunks of records) that moves within a piece.

    Workers call `advance(piece, done)` as they go (from any thread): `done` items of `piece` are
    finished so far; the writer calls `finish(piece, size)` when the piece is written, which counts
    what the workers did not report (a piece scored on another rank, or read back on resume). The
    bar never moves back and counts every item once.
    """

    def __init__(self, bar):
        self._bar = bar
        self._done: dict = {}
        self._lock = threading.Lock()

    def advance(self, piece, done: int) -> None:
        with self._lock:
            extra = done - self._done.get(piece, 0)
            if extra > 0:
                self._done[piece] = done
                self._bar.update(extra)

    def finish(self, piece, size: int) -> None:
        with self._lock:
            extra = size - self._done.pop(piece, 0)
            if extra > 0:
                self._bar.update(extra)


class _RankZeroOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def log_from_rank_zero_only(global_rank: int) -> None:
    """Keep genossm's info messages to rank 0 (warnings and errors still come from every rank),
    so an N-rank run logs each line once."""
    if global_rank == 0:
        return
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RankZeroOnly())
