"""The LightningModule of `genossm finetune`: a SequenceTaskModel, its loss, held-out metrics.

Hyper-parameters are plain containers (backbone path, task spec, recipe), so a Lightning
checkpoint reads back with `weights_only=True`. The backbone is loaded from its checkpoint when
the module is built; a resumed run then overwrites every weight from last.ckpt.
Validation and test predict with both strands averaged (as `genossm predict` does) and compute
the metrics over every rank's predictions (gathered on every rank; an example that two ranks
both evaluated, from the wrap-around that gives ranks equal shares, counts once).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR

from genossm.finetune.heads import task_loss
from genossm.finetune.metrics import task_metrics
from genossm.finetune.task import TaskSpec
from genossm.train.optim import check_groups_cover, parameter_groups

log = logging.getLogger("genossm.finetune")

# Token rows are keyed example * MAX_POSITIONS + position (longer than any model's input).
MAX_POSITIONS = 1 << 32


def build_backbone(backbone_path: str, from_scratch: bool):
    from genossm.models.checkpoint import load_model
    from genossm.models.lm import build_model
    from genossm.models.vocab import inference_view

    model = load_model(backbone_path)
    if from_scratch:
        torch.manual_seed(0)
        model = build_model(model.config)
    return inference_view(model)


class FinetuneTask(L.LightningModule):
    def __init__(self, backbone_path: str, spec: dict[str, Any], recipe: dict[str, Any]):
        super().__init__()
        from genossm.finetune.heads import SequenceTaskModel
        from genossm.finetune.lora import add_lora

        self.save_hyperparameters()
        self.spec = TaskSpec.from_dict(spec)
        self.positive_weight = float(recipe.get("positive_weight", 1.0))  # absent in older runs' recipes
        backbone = build_backbone(backbone_path, recipe["from_scratch"])
        backbone.train()
        if recipe["mode"] == "frozen":
            backbone.requires_grad_(False)
        elif recipe["mode"] == "lora":
            adapted = add_lora(backbone, rank=recipe["lora_rank"], alpha=recipe["lora_alpha"])
            log.info("LoRA rank %d on %d projections", recipe["lora_rank"], adapted)
        self.model = SequenceTaskModel(backbone, self.spec, pooling=recipe["pooling"], dropout=recipe["dropout"])
        # Planned on the bare model (genossm.train.optim): head and backbone at their own rates.
        decay = recipe["weight_decay"]
        self.groups = [(group, recipe["lr"]) for group in parameter_groups(self.model.backbone, decay)] + [
            (group, recipe["head_lr"]) for group in parameter_groups(_HeadView(self.model), decay)]
        self._outputs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # outputs, targets, keys
        self._losses: list[tuple[float, int]] = []  # (batch loss x examples, examples)
        self.history: list[dict[str, Any]] = []
        self.last_metrics: dict[str, float] = {}

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(tokens, mask)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Dropout draws from the global generator; seeding by step keeps a resumed run identical.
        torch.manual_seed(self.hparams.recipe["seed"] * 1_000_003 + self.global_step)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        if self.hparams.recipe["mode"] == "frozen":
            self.model.backbone.eval()
        loss = task_loss(self.spec.kind, self.model(batch["tokens"], batch["mask"]), batch["targets"],
                         self.positive_weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["tokens"]))
        return loss

    # -- held-out ------------------------------------------------------------------------------
    def _evaluate(self, batch) -> None:
        logits = self.model(batch["tokens"], batch["mask"])
        examples = len(batch["tokens"])
        loss = task_loss(self.spec.kind, logits, batch["targets"], self.positive_weight)
        self._losses.append((float(loss) * examples, examples))
        outputs = self.model.predict(batch["tokens"], batch["mask"], both_strands=True, logits=logits)
        targets, keys = batch["targets"], batch["index"]  # keys: which example (and base) a row is
        if self.spec.kind == "token":  # positions, flattened (lengths differ between batches)
            keep = batch["mask"].reshape(-1)
            width = batch["mask"].shape[1]
            keys = (keys[:, None] * MAX_POSITIONS + torch.arange(width, device=keys.device)).reshape(-1)[keep]
            outputs, targets = outputs.reshape(-1, outputs.shape[-1])[keep], targets.reshape(-1)[keep][:, None]
        self._outputs.append((outputs.float().cpu().numpy(), targets.float().cpu().numpy(), keys.cpu().numpy()))

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch)

    def on_validation_epoch_end(self) -> None:
        self.last_metrics = self._finish("val")
        if not self.trainer.sanity_checking:
            self.history.append({"epoch": int(self.current_epoch), "step": int(self.global_step),
                                 **{f"val_{k}": v for k, v in self.last_metrics.items()}})

    def on_test_epoch_end(self) -> None:
        self.last_metrics = self._finish("test")

    def _finish(self, prefix: str) -> dict[str, float]:
        parts = _gather(self._outputs)
        losses = _gather(self._losses)
        self._outputs, self._losses = [], []
        # Ranks get equal shares by wrapping around (EpochBatches), so a few examples are
        # evaluated twice; each counts once in the metrics.
        keys = np.concatenate([k for _, _, k in parts])
        _, first = np.unique(keys, return_index=True)
        outputs = np.concatenate([o for o, _, _ in parts])[first]
        targets = np.concatenate([t for _, t, _ in parts])[first]
        if self.spec.kind == "regression":
            outputs, targets = self.spec.unscale(outputs), self.spec.unscale(targets)
        metrics = task_metrics(self.spec.kind, outputs, targets)
        metrics["loss"] = float(sum(total for total, _ in losses) / max(1, sum(n for _, n in losses)))
        metrics["examples"] = int(len(targets))
        for name, value in metrics.items():
            self.log(f"{prefix}/{name}", float(value), sync_dist=True)
        return metrics

    # -- optimiser -----------------------------------------------------------------------------
    def configure_optimizers(self):
        recipe = self.hparams.recipe
        check_groups_cover([g for g, _ in self.groups], self.model.parameters())
        optimizer = torch.optim.AdamW([{**g.as_optimizer_group(), "lr": lr} for g, lr in self.groups],
                                      betas=(0.9, 0.98), eps=1e-8)
        warmup = max(1, recipe["warmup_steps"])
        schedule = LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class _HeadView(torch.nn.Module):
    """The head's parameters (pooling + linear) without the backbone, for parameter_groups."""

    def __init__(self, model):
        super().__init__()
        self.parts = torch.nn.ModuleList([m for m in (model.pooling, model.head) if m is not None])


def _gather(items: list) -> list:
    """Every rank's list of (outputs, targets) on every rank (one rank: unchanged)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return items
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]
