"""Who computes and who writes: a job in one process, or sharded over several ranks.

A job (`genossm score`, `genossm embed`) is one function of a runner, and every rank runs that
same function: `run_job(compute, job)` calls `job(runner)` in this process with a `LocalRunner`,
or, with several devices or nodes, on every rank with a `ShardedRunner`. A runner says which
device the rank computes on, whether it is the writer (`writes`: the one process, or rank 0),
and computes numbered items: `runner(items, compute)` yields (index, item, compute(item)) in
input order on the writer and nothing on the other ranks (which compute their share and send
it to the writer). Only the writer opens outputs; everything else is the same code on every rank.

Lightning Fabric starts the ranks (`--devices N` processes per node, `--num-nodes M` nodes; or
torchrun / srun start them and Fabric joins them) over torch.distributed: NCCL on GPUs, gloo on
CPUs. Rank r runs on `cuda:<local rank>` (or the CPU) and holds its own copy of the model.

Work split: item i (a chunk of VCF records for score, a region for embed) belongs to rank
i % world. The ranks walk the input together in windows of `world * per_rank` items: each rank
computes its own items of the window (nothing is written), the results are gathered on rank 0
(`torch.distributed.gather_object`), and rank 0 writes the window's items in input order through
the one-device writer. Memory stays bounded by one window, whatever the input size.

Same output as one device, byte for byte: an item's numbers do not depend on the rank that
computes it. Scoring batches never cross a chunk (`genossm.infer.score.chunks`, the design that
already makes `--resume` exact), regions are embedded one at a time, and the header / HDF5
`command` omits `--devices` and `--num-nodes`. (As with one device, equal numbers assume the same
kind of device and, on CPUs, the same torch thread count per process.)

Errors: a rank that fails on an item (a REF mismatch, an unknown contig) sends the error to
rank 0 with its results; rank 0 raises the error of the earliest failing item, as a one-device run
would, and tells the other ranks to stop.

Not supported with several ranks (refused with exit code 2 by `check_compute`): `--resume`
(rerun on one device to resume: the resume log of an interrupted sharded `score` run is the same
as a one-device run's; every rank must walk the same items, and only the writer knows which a
resume skips). Jobs add their own refusals (`score`: stdin and stdout).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from genossm.errors import GenossmError, UsageError
from genossm.infer import runtime
from genossm.progress import log_from_rank_zero_only

log = logging.getLogger("genossm.infer.ranks")

# Items per rank per window: enough to keep every device busy between two gathers, few enough
# that rank 0 holds only world * PER_RANK chunks (or regions) of results at a time.
PER_RANK = 4

Result = TypeVar("Result")


@dataclass(frozen=True)
class Compute:
    """Where a job runs: `device` (auto, cpu, cuda, cuda:N), torch's CPU `threads` (None: its
    default), and `devices` per node x `num_nodes` ranks (more than one: sharded)."""

    device: str = "auto"
    threads: int | None = None
    devices: int = 1
    num_nodes: int = 1

    @property
    def sharded(self) -> bool:
        return self.devices * self.num_nodes > 1 or launcher_world_size() > 1


def launcher_world_size() -> int:
    """Ranks started by an outside launcher (torchrun sets WORLD_SIZE), else 1."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def check_compute(compute: Compute, *, resume: bool = False) -> None:
    """Usage errors of the compute options (exit code 2), raised before any model is loaded."""
    if compute.devices < 1 or compute.num_nodes < 1:
        raise UsageError(f"--devices and --num-nodes must be at least 1, got {compute.devices} and "
                         f"{compute.num_nodes}")
    runtime.check_threads(compute.threads)
    if not compute.sharded:
        runtime.resolve_device(compute.device)
        return
    if resume:
        raise UsageError("--resume works on one device only; rerun the interrupted command without "
                         "--devices/--num-nodes to resume it")
    accelerator_for(compute.device)


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


def run_job(compute: Compute, job: Callable[[LocalRunner | ShardedRunner], Result], *,
            chunk_workers: bool = False) -> Result:
    """`job(runner)` in this process, or on every rank of a sharded run (its result on this rank).

    `chunk_workers`: on a CPU, items are computed by `--threads` worker threads (default: torch's
    thread count) with one torch thread each, so an item's numbers do not depend on the thread
    count (torch's intra-op threads split reductions differently); sharded CPU ranks then also
    compute with one torch thread each, as the workers of a one-process run do.

    Lightning's DDP launcher re-runs this process's command line once per extra local rank, so
    a sharded job must be started by a genossm command (not an interactive session).
    """
    if not compute.sharded:
        runtime.check_threads(compute.threads)
        device = runtime.resolve_device(compute.device)
        if chunk_workers and device.type == "cpu":
            import torch

            workers = compute.threads or torch.get_num_threads()
            with runtime.torch_threads(1):
                return job(LocalRunner(device, workers=workers))
        runtime.set_threads(compute.threads)
        return job(LocalRunner(device))
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator=accelerator_for(compute.device), devices=compute.devices,
                    num_nodes=compute.num_nodes, strategy="ddp")

    def run_on_rank(fabric) -> Result:
        log_from_rank_zero_only(fabric.global_rank)
        log.info("%d ranks (%d per node) on %s", fabric.world_size, fabric.world_size // compute.num_nodes,
                 fabric.device.type)
        share_cpu_threads(fabric, ranks_per_node=max(1, fabric.world_size // compute.num_nodes))
        if chunk_workers and fabric.device.type == "cpu":
            runtime.set_threads(1)  # the numbers of a one-process run's workers
        else:
            runtime.set_threads(compute.threads)  # an explicit --threads wins over the share
        return job(ShardedRunner(fabric))

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


_worker = threading.local()


class Cancelled(BaseException):
    """Raised in a worker thread by `check_stop` once its runner was interrupted (a BaseException,
    so that no per-record error handling swallows it)."""


def _init_worker(stop: threading.Event) -> None:
    runtime.set_threads(1)
    _worker.stop = stop


def check_stop() -> None:
    """Called by jobs between model calls (tiles, batches, regions): in a `LocalRunner` worker
    thread whose run was interrupted (SIGINT / SIGTERM), raises `Cancelled` so that the worker stops
    at its next model call instead of finishing its chunk; elsewhere, does nothing."""
    stop = getattr(_worker, "stop", None)
    if stop is not None and stop.is_set():
        raise Cancelled()


class LocalRunner:
    """The whole job in this process, on `device`: computes every item here and writes them in order.

    With `workers` > 1, items are computed by that many threads (each with one torch thread; torch
    releases the GIL in its kernels), at most 2 * workers at a time, and still yielded in order;
    the first failing item, in input order, raises its error. After an error or an interrupt the
    items not yet started are dropped and the running ones stop at their next `check_stop()`
    (between model calls); the runner returns once they have.
    """

    writes = True

    def __init__(self, device, workers: int = 1):
        self.device = device
        self.workers = max(1, int(workers))

    def __call__(self, items: Iterable[tuple[int, Any]], compute: Callable[[Any], Any]) -> Iterator[tuple]:
        if self.workers == 1:
            for index, item in items:
                yield index, item, compute(item)
            return
        yield from self._threaded(items, compute)

    def _threaded(self, items, compute) -> Iterator[tuple]:
        import collections
        from concurrent.futures import ThreadPoolExecutor

        stop = threading.Event()
        executor = ThreadPoolExecutor(self.workers, thread_name_prefix="genossm-worker",
                                      initializer=_init_worker, initargs=(stop,))
        pending: collections.deque = collections.deque()
        finished = False
        try:
            iterator = iter(items)
            for index, item in iterator:
                pending.append((index, item, executor.submit(compute, item)))
                if len(pending) >= 2 * self.workers:
                    index, item, future = pending.popleft()
                    yield index, item, future.result()
            while pending:
                index, item, future = pending.popleft()
                yield index, item, future.result()
            finished = True
        finally:
            # After an error or an interrupt, items not yet started are dropped, and running ones
            # stop at their next model call (`check_stop`): the wait is for one model call at most.
            if not finished:
                stop.set()
            executor.shutdown(wait=True, cancel_futures=not finished)


class _Stop(Exception):
    """Rank 0 has an error to report: the other ranks stop quietly."""


class ShardedRunner:
    """This rank's part of a sharded job, on `fabric.device`; rank 0 writes.

    `runner(items, compute)` computes `compute(item)` for numbered items over the ranks.

    `items` is an iterable of (index, item) with indices counting up from 0 in input order; every
    rank passes the same items. On rank 0 the call yields (index, item, result) for every item in
    input order; on the other ranks it yields nothing (consume it to do the rank's share).
    """

    def __init__(self, fabric, per_rank: int = PER_RANK):
        self.rank, self.world = fabric.global_rank, fabric.world_size
        self.device = fabric.device
        self.writes = self.rank == 0
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
