"""`genossm calibrate` as one library call: draw the background, score it, store it with the model.

`calibrate(job)` checks every option before the model loads (the model directory must be
writable: the calibration is stored there), draws `snvs` SNVs and `indels` indels
(`background.draw_background`), scores them with `VariantScorer` in the window and strands a
default `genossm score` run of this model uses, and writes `calibration.json` beside the weights
with its entry in config.json (`distribution.write_calibration`). The same seed gives the same
background and the same file.

Progress: a bar that moves after every model call, and a log line at every tenth of the
background (checked between scorer calls of `SCORE_CALL` variants or more) with the rate and the
time left, so a captured log (a batch job, a GPU session with a budget) shows how fast it goes.
`max_seconds` bounds the run: once a tenth of the background is scored, and at every call after
that, the time so far plus the rest at the rate measured since the first call (which carries
the kernels' compilation) is checked against it; past it, the run stops with an error and
writes nothing, rather than store a smaller background than asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genossm.errors import InputError, UsageError
from genossm.infer import runtime
from genossm.infer.calibration.background import draw_background
from genossm.infer.calibration.distribution import MAX_INDEL_LENGTH, Calibration, summarise, write_calibration
from genossm.infer.ranks import Compute
from genossm.infer.score.tiles import TileLayout

log = logging.getLogger("genossm.infer.calibration")
SCORE_CALL = 512  # background variants per scorer call, at least (the progress bar moves between calls)
CALLS_PER_BATCH = 4  # a call holds at least 4 batches of windows, so a large GPU batch is filled


@dataclass(frozen=True)
class CalibrateJob:
    fastas: tuple[str, ...]
    model: str | None = None  # None: the bundled model
    snvs: int = 100_000
    indels: int = 12_000
    seed: int = 0
    window: int | None = None  # None: the window `genossm score` uses for this model by default
    both_strands: bool = True
    batch_size: int = 16
    per_tile: int = 8
    max_seconds: float | None = None  # fail (writing nothing) when the whole run would take longer
    compute: Compute = field(default_factory=Compute)


def calibrate(job: CalibrateJob) -> dict:
    """Run `job`; returns what was stored (the calibration file's `source` entry)."""
    job_started = time.perf_counter()
    model_path = runtime.checkpoint_dir(job.model)
    config = runtime.read_model_config(model_path)
    window = calibration_window(job, config.max_length, model_path)
    check_job(job, model_path, config, window)
    device = runtime.resolve_device(job.compute.device)
    runtime.set_threads(job.compute.threads)
    model, model_sha = runtime.load_inference_model(model_path, device)
    from genossm.io.fasta import open_fasta

    with contextlib.ExitStack() as stack:
        genomes = [stack.enter_context(open_fasta(path)) for path in job.fastas]
        started = time.perf_counter()
        drawn = draw_background(genomes, window, job.snvs, job.indels, seed=job.seed, per_tile=job.per_tile)
    log.info("drew %d background variants (%d SNVs, %d indels) in %.1f s; scoring them on %s, window %d, %s, "
             "batch size %d", len(drawn), job.snvs, job.indels, time.perf_counter() - started, device, window,
             "both strands" if job.both_strands else "forward strand", job.batch_size)
    llrs, seconds = score_background(job, model, device, [pair for _, pair in drawn], job_started)
    classes: dict[str, list[float]] = {}
    for (variant, _), llr in zip(drawn, llrs):
        classes.setdefault(variant.klass, []).append(float(llr))
    source = {"fasta": [os.path.basename(path) for path in job.fastas], "snvs": job.snvs, "indels": job.indels,
              "seed": job.seed, "per_tile": job.per_tile, "model_sha256": model_sha,
              "device": str(device), "batch_size": job.batch_size, "score_seconds": round(seconds, 1),
              "variants_per_second": round(len(drawn) / max(seconds, 1e-9), 1)}
    calibration = Calibration("llr", window, job.both_strands,
                              {name: summarise(np.array(values)) for name, values in sorted(classes.items())},
                              source)
    path = write_calibration(model_path, calibration)
    log.info("scored %d background variants in %.1f s (%.0f/s); wrote %s and its entry in config.json",
             len(drawn), seconds, len(drawn) / max(seconds, 1e-9), path)
    return source


def score_background(job: CalibrateJob, model, device, pairs: list, job_started: float) -> tuple[np.ndarray, float]:
    """The llr of every background pair, and the seconds it took; stops with an error as soon as
    the run is seen to outlast `job.max_seconds` (see the module docstring)."""
    from genossm.infer.score.scorer import VariantScorer
    from genossm.progress import progress

    scorer = VariantScorer(model, both_strands=job.both_strands, batch_size=job.batch_size, device=device,
                           scores=("llr",))
    call = max(SCORE_CALL, CALLS_PER_BATCH * job.batch_size)
    llrs = np.empty(len(pairs))
    started = time.perf_counter()
    first_call_done = None  # (time, variants) after the first call: the rate is measured from there
    next_tenth = 1
    with progress(total=len(pairs), desc="calibrating", unit="var") as bar:
        for first in range(0, len(pairs), call):
            part = pairs[first:first + call]

            def advance(fraction: float, first=first, size=len(part)) -> None:
                bar.update(max(first + int(fraction * size) - bar.n, 0))  # the bar moves within a call

            llrs[first:first + len(part)] = [score.llr for score in scorer.score(part, progress=advance)]
            done, now = first + len(part), time.perf_counter()
            bar.update(done - bar.n)
            if first_call_done is None:
                first_call_done = (now, done)
            rate = ((done - first_call_done[1]) / (now - first_call_done[0]) if done > first_call_done[1]
                    else done / max(now - started, 1e-9))
            left = (len(pairs) - done) / max(rate, 1e-9)
            if done * 10 >= next_tenth * len(pairs):
                next_tenth = done * 10 // len(pairs) + 1
                log.info("scored %d/%d background variants in %.1f s: %.0f variants/s, %.0f s left",
                         done, len(pairs), now - started, rate, left)
            check_time(job, now - job_started, left, done, len(pairs), rate)
    return llrs, time.perf_counter() - started


def check_time(job: CalibrateJob, elapsed: float, left: float, done: int, total: int, rate: float) -> None:
    """An error, once a tenth is scored, when elapsed + left passes `job.max_seconds`."""
    if job.max_seconds is None or done * 10 < total:
        return
    if elapsed + left > job.max_seconds:
        raise InputError(f"calibrate: {done} of {total} background variants scored in {elapsed:.0f} s "
                         f"({rate:.0f} variants/s since the first call): the whole run would take about "
                         f"{elapsed + left:.0f} s, past --max-seconds {job.max_seconds:g}; nothing was written. "
                         "Raise --max-seconds or --batch-size, or lower -n/--indels")


def calibration_window(job: CalibrateJob, max_length: int, model_path: Path) -> int:
    """The window a default `genossm score` run of this model uses (or the one asked for)."""
    from genossm.infer.score import settings
    from genossm.infer.score.job import ScoreJob, score_settings
    from genossm.models.checkpoint import read_checkpoint_config

    # The training window a checkpoint records sets score's default window (issue 20); read the
    # same way here, so that the calibration is made in the window `score` will use.
    trained = (settings.training_window(read_checkpoint_config(model_path))
               if hasattr(settings, "training_window") else None)
    score_job = ScoreJob(input="-", fasta="-", model=job.model, window=job.window)
    return (score_settings(score_job, max_length, trained) if trained is not None
            else score_settings(score_job, max_length)).window


def check_job(job: CalibrateJob, model_path: Path, config, window: int) -> None:
    """Usage errors, before the model loads."""
    if config.objective != "causal":
        raise UsageError(f"genossm calibrate stores the distribution of the causal llr; {model_path} is a "
                         f"{config.objective!r} model")
    if job.snvs < 100 or job.indels < 0:
        raise UsageError(f"-n/--snvs must be at least 100 and --indels at least 0, got {job.snvs} and {job.indels}")
    if job.max_seconds is not None and job.max_seconds <= 0:
        raise UsageError(f"--max-seconds must be positive, got {job.max_seconds:g}")
    if job.per_tile < 1:
        raise UsageError(f"--per-tile must be at least 1, got {job.per_tile}")
    if job.indels and TileLayout(window).max_allele_length <= MAX_INDEL_LENGTH:
        raise UsageError(f"a {window}-base window cannot hold the {MAX_INDEL_LENGTH}-base background indels "
                         "(window/4 must exceed it): raise --window or pass --indels 0")
    if not job.fastas:
        raise UsageError("give at least one --fasta")
    for path in job.fastas:
        if not Path(path).is_file():
            raise UsageError(f"--fasta {path}: no such file")
    if not os.access(model_path, os.W_OK) or not os.access(model_path / "config.json", os.W_OK):
        raise UsageError(f"{model_path} is not writable: the calibration is stored in the model directory "
                         "(copy the model somewhere writable and calibrate the copy)")
