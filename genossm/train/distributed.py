"""Training on several devices and nodes: Lightning strategies and the global-batch loss
(docs/distributed.md; rank-zero logging is `genossm.progress.log_from_rank_zero_only`).

Semantics, whatever the number of ranks R (devices x nodes):
- `data.batch_size` is per device; the global batch of one optimizer step is
  `batch_size * R * trainer.accumulate` windows. Rank r reads batches `k * R + r` of the
  step-indexed stream (genossm.data.training_windows), so R ranks with batch b see exactly the
  windows one process sees with batch R * b (while the batch size stays fixed: see the warm-up
  note in the docs), and no window is drawn twice per step across ranks.
- The loss of a micro-batch is the mean over every predicted base of the *global* micro-batch
  (summed NLL of all ranks / their summed base count), not the mean of per-rank means; DDP and
  FSDP average gradients over ranks, so each rank scales its summed NLL by R / global count.
  Hence R ranks give the gradient of one process with the global batch.
- The learning rate is per optimizer step and is never rescaled with R: changing the global
  batch is a recipe change (set `optim.lr` for it).
- Checkpoints hold full (unsharded) weights and optimizer state under DDP and FSDP, so a run
  resumes on any number of devices; keep `batch_size * R * accumulate` constant across the
  restart and the data stream continues exactly where it stopped.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from genossm.train.metrics import MetricSums

log = logging.getLogger("genossm.train")


def build_strategy(name: str, accelerator: str) -> Any:
    """The Lightning strategy object for a recipe's `trainer.strategy` name.

    "ddp": buffers are not broadcast before each forward. genossm models hold only constant
    buffers (complement permutations), and the broadcast is a collective inside forward: with
    held-out data split unevenly over ranks (one rank has a validation batch more) it would wait
    forever for ranks that have no batch. "fsdp": every block is its own FSDP unit (parameters
    gathered one block at a time) and checkpoints are written unsharded, so they load on any
    number of devices and with `torch.load(weights_only=True)`. Other names go to Lightning as
    they are. The backend is Lightning's default: NCCL on GPUs, gloo on CPUs. NCCL_NVLS_ENABLE
    (NVLink multicast) is left as the environment sets it.
    """
    if name == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(broadcast_buffers=False)
    if name == "fsdp":
        if accelerator == "cpu":
            return name  # Lightning's own error (FSDP needs GPUs) is the clearest
        from lightning.pytorch.strategies import FSDPStrategy

        from genossm.models.blocks import Block

        return FSDPStrategy(auto_wrap_policy={Block}, state_dict_type="full",
                            sharding_strategy="FULL_SHARD")
    return name


def global_token_mean(sums: MetricSums, trainer: L.Trainer | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to backpropagate on this rank, metric sums of the global micro-batch `(4,)` float64).

    The loss is `nll_rank * R / count_global`: after DDP/FSDP average the gradients over the R
    ranks, the step follows `sum of nll / sum of count` over every rank, the loss one process
    computes on the whole global batch. One all-reduce of four numbers per micro-batch.
    """
    local = sums.as_vector().detach()  # (4,) [nll, base_nll, correct, count]
    world_size = trainer.world_size if trainer is not None else 1
    if world_size == 1:
        return sums.nll / sums.count.clamp(min=1), local
    totals = trainer.strategy.reduce(local.clone(), reduce_op="sum")  # (4,)
    count = totals[3].clamp(min=1).to(sums.nll.dtype)
    return sums.nll * world_size / count, totals


class GlobalBatchRecord(L.Callback):
    """Records the global batch (windows per optimizer step) in every checkpoint and warns on a
    resume whose global batch differs: the step-indexed data stream then continues from a
    different window, and the learning-rate schedule meets a different batch."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.saved: dict[str, int] | None = None

    def current(self, trainer: L.Trainer) -> dict[str, int]:
        ranks = trainer.world_size
        return {"batch_size": self.batch_size, "ranks": ranks, "accumulate": trainer.accumulate_grad_batches,
                "global_batch": self.batch_size * ranks * trainer.accumulate_grad_batches}

    def state_dict(self) -> dict[str, int]:
        trainer = getattr(self, "_trainer", None)
        return self.current(trainer) if trainer is not None else dict(self.saved or {})

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.saved = dict(state_dict)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        now = self.current(trainer)
        if self.saved and self.saved.get("global_batch") != now["global_batch"]:
            log.warning(
                "resuming with a global batch of %d windows (%d per device x %d ranks x %d "
                "accumulated) where the checkpoint was trained with %d (%d x %d x %d): the data "
                "stream continues from another window and the learning rate is unchanged; keep "
                "batch_size x ranks x accumulate constant to continue exactly", now["global_batch"],
                now["batch_size"], now["ranks"], now["accumulate"], self.saved["global_batch"],
                self.saved["batch_size"], self.saved["ranks"], self.saved["accumulate"])
        elif self.saved and self.saved.get("ranks") != now["ranks"]:
            log.info("resuming on %d ranks (checkpoint written on %d), same global batch of %d",
                     now["ranks"], self.saved["ranks"], now["global_batch"])
