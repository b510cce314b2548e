"""The numbers that define a `genossm score` run's scores, their defaults, and their checks.

`ScoreSettings` is everything that changes a score (window, strands, allele limit, unknown
contigs) or the batches it is computed in (batch and chunk sizes: equal settings give equal
bytes). It is checked before any model is loaded: the default window needs only the checkpoint's
config (`max_length`), not its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from genossm.errors import UsageError
from genossm.infer.score.tiles import TileLayout

WINDOW_CAP = 2048  # the default window: the model's max_length, but no more (CPU cost grows with it)
DEFAULT_CHUNK_SIZE = 256


@dataclass(frozen=True)
class ScoreSettings:
    window: int
    both_strands: bool = True
    batch_size: int = 16
    max_allele_length: int = 100
    skip_unknown: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def check(self) -> None:
        layout = TileLayout(self.window)
        if self.max_allele_length < 1:
            raise UsageError(f"--max-allele-length must be at least 1, got {self.max_allele_length}")
        if self.max_allele_length > layout.max_allele_length:
            raise UsageError(
                f"--max-allele-length {self.max_allele_length} does not fit a {self.window}-base window "
                f"(at most window/4 = {layout.max_allele_length}); lower it or raise --window")
        if self.chunk_size < 1 or self.batch_size < 1:
            raise UsageError("--chunk-size and --batch-size must be at least 1")


def default_max_allele_length(window: int, requested: int | None) -> int:
    """The requested limit, or 100 bases capped to what the window fits (window/4)."""
    return requested if requested is not None else min(100, TileLayout(window).max_allele_length)


def default_window(max_length: int, requested: int | None) -> int:
    """The requested window, or the model's `max_length` capped at WINDOW_CAP."""
    if requested is not None:
        if requested < 8:
            raise UsageError(f"--window must be at least 8 bases, got {requested}")
        return requested
    return min(int(max_length), WINDOW_CAP)
