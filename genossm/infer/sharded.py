"""`genossm score` and `genossm embed` on several devices: work sharded over ranks, written in order.

Lightning Fabric starts the ranks (`--devices N` processes per node, `--num-nodes M` nodes; or
torchrun / srun start them and Fabric joins them) over torch.distributed: NCCL on GPUs, gloo on
CPUs. Rank r runs on `cuda:<local rank>` (or the CPU) and holds its own copy of the model.

Work split: item i (a chunk of VCF records for score, a region for embed) belongs to rank
i % world. The ranks walk the input together in windows of `world * per_rank` items: each rank
computes its own items of the window (nothing is written), the results are gathered on rank 0
(`torch.distributed.gather_object`), and rank 0 writes the window's items in input order through
the one-device writer. Memory stays bounded by one window, whatever the input size.

Same output as one device, byte for byte: an item's numbers do not depend on the rank that
computes it. Scoring batches never cross a chunk (`score_job.ChunkScorer` scores one chunk at a
time, the design that already makes `--resume` exact), regions are embedded one at a time, and
the header / HDF5 `command` omits `--devices` and `--num-nodes`. (As with one device, equal
numbers assume the same kind of device and, on CPUs, the same torch thread count per process.)

Errors: a rank that fails on an item (a REF mismatch, an unknown contig) sends the error to
rank 0 with its results; rank 0 raises the error of the earliest failing item, as a one-device run
would, and tells the other ranks to stop.

Not supported with several ranks (refused with exit code 2): `--resume` (rerun on one device to
resume: the resume log of an interrupted sharded `score` run is the same as a one-device run's)
and reading the VCF from stdin (every rank reads the input file).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from genossm.errors import GenossmError, UsageError

log = logging.getLogger("genossm.infer.sharded")

# Items per rank per window: enough to keep every device busy between two gathers, few enough
# that rank 0 holds only world * PER_RANK chunks (or regions) of results at a time.
PER_RANK = 4


def launcher_world_size() -> int:
    """Ranks started by an outside launcher (torchrun sets WORLD_SIZE), else 1."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def wants_sharding(devices: int, num_nodes: int) -> bool:
    if devices < 1 or num_nodes < 1:
        raise UsageError(f"--devices and --num-nodes must be at least 1, got {devices} and {num_nodes}")
    return devices * num_nodes > 1 or launcher_world_size() > 1


def check_sharded_options(*, resume: bool, input_path: str | None = None) -> None:
    """Options that cannot work with several ranks: a clear usage error (exit code 2)."""
    if resume:
        raise UsageError("--resume works on one device only; rerun the interrupted command without "
                         "--devices/--num-nodes to resume it")
    if input_path == "-":
        raise UsageError("with --devices/--num-nodes every rank reads the input: give a VCF file, not stdin")


def accelerator_for(device_spec: str) -> str:
    """Fabric's accelerator for a `--device` value: each rank then uses cuda:<local rank> or the CPU."""
    import torch

    spec = (device_spec or "auto").strip().lower()
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available here; use --device cpu")
        return "cuda"
    raise UsageError(f"--device {spec!r} with --devices/--num-nodes: expected auto, cpu or cuda "
                     "(each rank uses cuda:<local rank>; choose GPUs with CUDA_VISIBLE_DEVICES)")


def launch(devices: int, num_nodes: int, device_spec: str, job: Callable[[Any], int]) -> int:
    """Start (or join) the ranks with Lightning Fabric and run `job(fabric)` on each one.

    Lightning's DDP launcher re-runs this process's command line once per extra local rank, so
    the command line must be a genossm command (not an interactive session).
    """
    from lightning.fabric import Fabric

    from genossm.train.distributed import log_from_rank_zero_only

    fabric = Fabric(accelerator=accelerator_for(device_spec), devices=devices, num_nodes=num_nodes,
                    strategy="ddp")

    def run_on_rank(fabric) -> int:
        log_from_rank_zero_only(fabric.global_rank)
        log.info("%d ranks (%d per node) on %s", fabric.world_size, fabric.world_size // num_nodes,
                 fabric.device.type)
        share_cpu_threads(fabric, ranks_per_node=max(1, fabric.world_size // num_nodes))
        return job(fabric)

    return fabric.launch(run_on_rank)


def share_cpu_threads(fabric, ranks_per_node: int) -> None:
    """GPU ranks of one node split its CPU cores for torch's intra-op threads.

    Every process otherwise starts one thread per core: N ranks on one node run N times as many
    spinning threads as cores, and the host-side work of each rank (tokens, windows, the small
    CPU ops between kernel launches) slows down instead of running in parallel; torchrun sets
    OMP_NUM_THREADS=1 for the same reason. CPU ranks keep the default: their numbers depend on
    the thread count, and equal thread counts keep a sharded CPU run equal to a one-process run.
    An explicit OMP_NUM_THREADS is respected.
    """
    import torch

    if fabric.device.type != "cuda" or "OMP_NUM_THREADS" in os.environ:
        return
    threads = max(1, (os.cpu_count() or 1) // ranks_per_node)
    torch.set_num_threads(min(threads, torch.get_num_threads()))


class _Stop(Exception):
    """Rank 0 has an error to report: the other ranks stop quietly."""


class ShardedRunner:
    """`runner(items, compute)`: computes `compute(item)` for numbered items over the ranks.

    `items` is an iterable of (index, item) with indices counting up from 0 in input order; every
    rank passes the same items. On rank 0 the call yields (index, item, result) for every item in
    input order; on the other ranks it yields nothing (consume it to do the rank's share).
    """

    def __init__(self, fabric, per_rank: int = PER_RANK):
        self.rank, self.world = fabric.global_rank, fabric.world_size
        self.per_rank = per_rank

    def __call__(self, items: Iterable[tuple[int, Any]], compute: Callable[[Any], Any]) -> Iterator[tuple]:
        try:
            iterator = iter(items)
            while window := list(itertools.islice(iterator, self.world * self.per_rank)):
                results = self._gather(self._compute_share(window, compute))
                if self.rank == 0:
                    for index, item in window:
                        yield index, item, results[index]
        except _Stop:
            return

    def _compute_share(self, window: list[tuple[int, Any]], compute) -> tuple[dict, tuple | None]:
        """({index: result} of this rank's items, (index, error) of the first that failed or None)."""
        results = {}
        for index, item in window:
            if index % self.world != self.rank:
                continue
            try:
                results[index] = compute(item)
            except GenossmError as err:
                return results, (index, err)
            except Exception as err:  # noqa: BLE001 - sent to rank 0, which raises it
                return results, (index, RuntimeError(f"rank {self.rank}: {type(err).__name__}: {err}"))
        return results, None

    def _gather(self, share: tuple[dict, tuple | None]) -> dict:
        """All ranks' results of a window on rank 0; raises the earliest error there, _Stop elsewhere."""
        import torch.distributed as dist

        shares = [None] * self.world if self.rank == 0 else None
        dist.gather_object(share, shares, dst=0)
        failure = [None]
        if self.rank == 0:
            errors = [error for _, error in shares if error is not None]
            failure = [min(errors, key=lambda e: e[0])[1] if errors else None]
        dist.broadcast_object_list(failure, src=0)
        if failure[0] is not None:
            if self.rank == 0:
                raise failure[0]
            raise _Stop()
        merged = {}
        for results, _ in shares or []:
            merged.update(results)
        return merged


def serve_score(input_path: str, genome, model, settings, device, fabric) -> None:
    """A rank other than 0 of `genossm score`: score its chunks and send them to rank 0."""
    from genossm.infer.score_job import ChunkScorer, numbered_chunks
    from genossm.io import vcf

    settings.check()
    chunk_scorer = ChunkScorer(model, genome, settings, device, source=input_path)
    with vcf.VcfReader(input_path) as reader:
        for _ in ShardedRunner(fabric)(numbered_chunks(reader, settings.chunk_size), chunk_scorer.score):
            pass


def serve_embed(regions, genome, model, settings, device, fabric) -> None:
    """A rank other than 0 of `genossm embed`: embed its regions and send them to rank 0."""
    from genossm.infer.embedding import check_embed_inputs, embed_region

    check_embed_inputs(regions, settings)
    compute = lambda region: embed_region(model, genome, region, settings, device)  # noqa: E731
    for _ in ShardedRunner(fabric)(enumerate(regions), compute):
        pass
