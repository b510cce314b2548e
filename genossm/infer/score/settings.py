"""The numbers that define a `genossm score` run's scores, their defaults, and their checks.

`ScoreSettings` is everything that changes a score (window, strands, allele limit, unknown
contigs) or the batches it is computed in (batch and chunk sizes: equal settings give equal
bytes). It is checked before any model is loaded: the default window needs only the checkpoint's
config.json (the training window it records, else `max_length`), not its weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from genossm.errors import UsageError
from genossm.infer.score.definitions import DEFAULT_SCORES, SCORE_NAMES
from genossm.infer.score.tiles import TileLayout

WINDOW_CAP = 2048  # the default window: the model's max_length, but no more (CPU cost grows with it)
DEFAULT_CHUNK_SIZE = 256

log = logging.getLogger("genossm.infer.score")


@dataclass(frozen=True)
class ScoreSettings:
    window: int
    both_strands: bool = True
    batch_size: int = 16
    max_allele_length: int = 100
    skip_unknown: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE
    scores: tuple[str, ...] = DEFAULT_SCORES  # definitions computed (genossm.infer.score.definitions)

    def check(self) -> None:
        layout = TileLayout(self.window)
        if self.max_allele_length < 1:
            raise UsageError(f"--max-allele-length must be at least 1, got {self.max_allele_length}")
        if self.max_allele_length > layout.max_allele_length:
            raise UsageError(
                f"--max-allele-length {self.max_allele_length} does not fit a {self.window}-base window "
                f"(at most window/4 = {layout.max_allele_length}); lower it or raise --window")
        if not self.scores or set(self.scores) - set(SCORE_NAMES):
            raise UsageError(f"--score takes names from {', '.join(SCORE_NAMES)}, got {','.join(self.scores)}")
        if self.chunk_size < 1 or self.batch_size < 1:
            raise UsageError("--chunk-size and --batch-size must be at least 1")


def default_max_allele_length(window: int, requested: int | None) -> int:
    """The requested limit, or 100 bases capped to what the window fits (window/4)."""
    return requested if requested is not None else min(100, TileLayout(window).max_allele_length)


def default_window(max_length: int, requested: int | None, training_window: int | None = None) -> int:
    """The requested window, or the window the model was trained on (`training_window`), or for
    a checkpoint that records none its `max_length` capped at WINDOW_CAP.

    A model scored in longer windows than it saw in training extrapolates past its training
    length (a 256-base model in 2,048-base windows is worse than a uniform guess past 512), so a
    larger request is allowed but warned about."""
    if requested is not None:
        if requested < 8:
            raise UsageError(f"--window must be at least 8 bases, got {requested}")
        if training_window is not None and requested > training_window:
            log.warning("--window %d is larger than the %d-base windows the model was trained on: "
                        "positions past %d read more context than it ever saw, and its scores there "
                        "are usually worse", requested, training_window, training_window)
        return requested
    if training_window is not None:
        return int(training_window)
    return min(int(max_length), WINDOW_CAP)


def training_window(checkpoint_record: dict) -> int | None:
    """The window length a checkpoint was trained on, from its config.json record: "training"
    -> "window" (written by `genossm pretrain` since issue 20), else the final window of the
    recorded recipe (`data.window_length`, older pretrain checkpoints), else None."""
    training = checkpoint_record.get("training") or {}
    if isinstance(training.get("window"), int):
        return training["window"]
    recipe = (training.get("training") or {}).get("recipe") or {}
    window = (recipe.get("data") or {}).get("window_length")
    return window if isinstance(window, int) else None
