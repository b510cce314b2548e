"""Training callbacks: sequence-length warm-up, throughput, and a progress bar on stderr."""

from __future__ import annotations

import logging
import time

import lightning as L

from genossm.progress import progress

log = logging.getLogger("genossm.train")

# A warm-up stage without its own batch size keeps tokens per batch constant, up to this many
# times the final batch size (short windows in huge batches stop helping long before that).
MAX_BATCH_GROWTH = 8


def length_stages(warmup, window_length: int, batch_size: int) -> list[tuple[int, int, int]]:
    """(first step, window length, batch size) of every stage, the final one (the recipe's
    `data.window_length`, `data.batch_size`) starting when the warm-up ends."""
    stages, step = [], 0
    for stage in warmup:
        batch = stage.batch_size or max(1, min(batch_size * MAX_BATCH_GROWTH,
                                               batch_size * window_length // stage.window_length))
        stages.append((step, stage.window_length, batch))
        step += stage.steps
    stages.append((step, window_length, batch_size))
    return stages


class SequenceLengthWarmup(L.Callback):
    """HyenaDNA's sequence-length warm-up: train on short windows first, then longer ones.

    The stages are handed to the datamodule before its loaders exist; since the training stream
    is indexed by step, the stage of every batch is fixed in advance and a resumed run picks up
    in the right stage. The callback logs every change of stage.
    """

    def __init__(self, stages: list[tuple[int, int, int]]):
        self.stages = stages
        self._current: tuple[int, int, int] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        trainer.datamodule.length_stages = list(self.stages)

    def stage_at(self, step: int) -> tuple[int, int, int]:
        return [s for s in self.stages if s[0] <= step][-1]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        stage = self.stage_at(trainer.global_step)
        if stage != self._current:
            self._current = stage
            log.info("sequence-length warm-up: from step %d, windows of %d bases, %d per batch",
                     *stage)


class ThroughputMonitor(L.Callback):
    """Training tokens per second (all devices), timed between batch ends, validation excluded."""

    def __init__(self):
        self.tokens = 0
        self.seconds = 0.0
        self._last: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._last is None:
            self._last = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        elapsed = now - self._last
        self._last = now
        tokens = batch["inputs"].numel() * trainer.world_size
        if batch_idx > 0 or trainer.global_step > 1:  # the first batch pays for warm-up and compiles
            self.tokens += tokens
            self.seconds += elapsed
        pl_module.log("train/tokens_per_sec", tokens / max(elapsed, 1e-9))

    def on_validation_start(self, trainer, pl_module) -> None:
        self._last = None

    def on_validation_end(self, trainer, pl_module) -> None:
        self._last = None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class StderrProgressBar(L.pytorch.callbacks.ProgressBar):
    """One bar over optimizer steps on stderr (genossm.progress), with loss and val bits/base."""

    def __init__(self):
        super().__init__()
        self._bar = None
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        if self._enabled and trainer.is_global_zero:
            self._bar = progress(total=trainer.max_steps, initial=trainer.global_step, desc="pretrain", unit="step")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._bar is None:
            return
        self._bar.update(trainer.global_step - self._bar.n)
        metrics = trainer.callback_metrics
        postfix = {}
        if "train/loss" in metrics:
            postfix["loss"] = f"{float(metrics['train/loss']):.3f}"
        if "val/bits_per_base" in metrics:
            postfix["val_bpb"] = f"{float(metrics['val/bits_per_base']):.3f}"
        self._bar.set_postfix(postfix, refresh=False)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
