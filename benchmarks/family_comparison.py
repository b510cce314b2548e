"""Held-out bits per base of mamba2, mamba and hyena at equal wall-clock training (issue 17).

    python3 benchmarks/family_comparison.py OUTDIR --train-seconds 90 --probe-seconds 5   # one H200: ~8-9 min
    python3 benchmarks/family_comparison.py OUTDIR --train-seconds 150 --families mamba2,hyena --set data.batch_size=32

Every family trains on the same data, the bacterial species split (data/genomes/manifest-species.tsv
from scripts/fetch_genomes.sh: whole genomes of the test species held out of training), with the
same recipe (configs/train/bacteria.yaml: window, batch, optimizer, seed), the same training
budget in seconds, a causal objective and a model of about the bundled model's earlier size
(0.82-0.87 M parameters, FAMILIES). Without a sequence-length warm-up: in a budget of minutes
HyenaDNA's 2,000 short-window steps would be most of the run, and every family should see the
same windows. The test pass scores every 1 kb tile of the held-out genomes, the same tiles for
every family; its bits per base are the comparison.

Per family: a throughput probe (scripts/training_probe.py: model steps alone on random windows,
compilation absorbed by its warm-up) turns the budget into optimizer steps, since the cosine
schedule needs its length up front; `genossm pretrain` then trains for that many steps with
trainer.max_time_s = the budget as the hard stop (a run stopped by it is marked
"stopped_by_time": its schedule did not finish), validates, and tests on the held-out genomes.

Writes OUTDIR/family_comparison.json (rewritten after every family, so a run cut short keeps the
finished rows; "complete" says whether all ran), OUTDIR/family_comparison.md (the table, also
printed on stdout) and OUTDIR/FAMILY/{probe.json, probe.log, metrics.json, pretrain.log}. A
family whose run fails gets a row with its "error" (the log's end), the others still run, and
the exit code is 1. Before any training the options, the manifest and every family's recipe are
checked and each model is built on the CPU to count its parameters.

On a machine without pysam/pyfaidx/biopython/lightning the script installs them, without
network, from the wheels in --wheels (.whl, .vep_gpu/wheels) into /tmp/site, installs genossm
itself (editable) if it is not importable, and restarts itself. Set GENOSSM_KERNELS=reference
to train on the PyTorch reference kernels (CPU tests).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "scripts" / "training_probe.py"
RECIPE = "bacteria"

# Each family's model: a shipped config and the overrides that bring it to ~0.85 M parameters.
# hyena: the bundled model's config at d_model 128 (869,248 parameters; docs/bundled_model.md's
# "d_model 128 (0.87 M)" run on this split). mamba, mamba2: the tiny configs (d_model 128, no MLP)
# at 7 layers (817,280 and 823,636; 8 layers would give 0.93-0.94 M). max_length 1024 as the
# window: Hyena scales its filter positions to it, the Mamba families only record it.
FAMILIES = {
    "mamba2": ("tiny-mamba2", {"n_layers": 7, "max_length": 1024}),
    "mamba": ("tiny-mamba", {"n_layers": 7, "max_length": 1024}),
    "hyena": ("bacteria-small", {"d_model": 128}),
}
# Modules the runs import -> the wheel (file name prefix) that provides each.
WHEELS = {"pysam": "pysam", "pyfaidx": "pyfaidx", "Bio": "biopython", "lightning": "lightning"}
RESTARTED = "FAMILY_COMPARISON_RESTARTED"


class RunFailed(RuntimeError):
    """A family's probe or pretrain exited non-zero; the other families still run."""


def fail(message: str, code: int = 1) -> None:
    print(f"family_comparison: {message}", file=sys.stderr)
    sys.exit(code)


def stage(started: float, message: str) -> None:
    print(f"family_comparison: {time.perf_counter() - started:.0f} s: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("out", type=Path, help="folder for the JSON, the table and each family's logs")
    parser.add_argument("--train-seconds", type=int, required=True,
                        help="wall-clock training budget of each family (trainer.max_time_s)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help=f"comma-separated, run in this order (default {','.join(FAMILIES)})")
    parser.add_argument("--manifest", type=Path, default=REPO / "data" / "genomes" / "manifest-species.tsv",
                        help="TSV with columns split (train/val/test) and fasta (relative to the manifest)")
    parser.add_argument("--probe-seconds", type=float, default=10.0, help="time each probe's steps this long")
    # 0.7: on the H200 (2026-12-01, 90 s budgets) the runs took 0.77-0.82 of the steps their
    # probes' rates predicted for the budget (start-up, data loading, validation), so a share of
    # 0.9 left every cosine schedule unfinished (at 86-91% of its steps)
    parser.add_argument("--schedule-share", type=float, default=0.7,
                        help="share of the probed tokens/s the schedule is sized for: data loading, "
                             "logging and validation are not in the probe")
    parser.add_argument("--wheels", type=Path, nargs="+", default=[REPO / ".whl", REPO / ".vep_gpu" / "wheels"],
                        help="folders of wheels for missing dependencies")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="recipe override for every family's run, after the family's own")
    args = parser.parse_args(argv)
    args.families = [name.strip() for name in args.families.split(",") if name.strip()]
    unknown = [name for name in args.families if name not in FAMILIES]
    if unknown or not args.families or len(set(args.families)) != len(args.families):
        parser.error(f"--families: expected distinct names among {', '.join(FAMILIES)}, found {args.families!r}")
    if args.train_seconds <= 0:
        parser.error(f"--train-seconds must be a positive number of seconds, found {args.train_seconds}")
    if args.probe_seconds <= 0 or not 0 < args.schedule_share <= 1:
        parser.error("--probe-seconds must be > 0 and --schedule-share in (0, 1]")
    return args


def split_genomes(manifest: Path) -> dict[str, list[str]]:
    """The manifest's FASTA paths by split (train, val, test), each checked to exist."""
    if not manifest.is_file():
        fail(f"{manifest} missing; run scripts/fetch_genomes.sh (or carry data/genomes) or give --manifest")
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or not {"split", "fasta"} <= set(rows[0]):
        fail(f"{manifest}: expected a tab-separated header with columns split and fasta")
    splits = {name: [str(manifest.parent / row["fasta"]) for row in rows if row["split"] == name]
              for name in ("train", "val", "test")}
    empty = [name for name, paths in splits.items() if not paths]
    missing = [path for paths in splits.values() for path in paths if not Path(path).is_file()]
    if empty or missing:
        fail(f"{manifest}: " + (f"no {'/'.join(empty)} genomes; " if empty else "")
             + (f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}; " if missing else "")
             + "run scripts/fetch_genomes.sh")
    return splits


def ensure_dependencies(wheel_dirs: list[Path]) -> None:
    """Install what the runs import but this Python lacks, then restart once so imports see it."""
    missing = [module for module in WHEELS if importlib.util.find_spec(module) is None]
    try:
        genossm_ready = importlib.util.find_spec("genossm.kernels") is not None
    except ModuleNotFoundError:
        genossm_ready = False
    if not missing and genossm_ready:
        return
    if os.environ.get(RESTARTED):
        fail(f"still missing after installing: {', '.join(missing) or 'genossm'}")
    env = dict(os.environ)
    if missing:
        wheels = {name: sorted(path for folder in wheel_dirs for path in folder.glob(f"{name}-*.whl"))
                  for name in {WHEELS[module] for module in missing}}
        absent = sorted(name for name, paths in wheels.items() if not paths)
        if absent:
            fail(f"{', '.join(missing)} not installed and no wheel of {', '.join(absent)} in "
                 f"{', '.join(map(str, wheel_dirs))}; carry .whl and .vep_gpu/wheels")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", "/tmp/site",
                        *(str(path) for paths in wheels.values() for path in paths)], check=True)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, ["/tmp/site", env.get("PYTHONPATH")]))
    if not genossm_ready:  # kernels/ and cli/ map into the package only once installed
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "-e", str(REPO)], check=True, stdout=subprocess.DEVNULL, env=env)
    env[RESTARTED] = "1"
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def family_overrides(family: str, shared: list[str]) -> list[str]:
    model, overrides = FAMILIES[family]
    return [f"model={model}", "length_warmup=[]",
            *(f"model_overrides.{key}={value}" for key, value in overrides.items()), *shared]


def check_family(family: str, shared: list[str]) -> dict:
    """The family's recipe (overrides checked) and its model built on the CPU: config, parameters."""
    from genossm.models.lm import build_model
    from genossm.train.recipe import load_recipe
    from genossm.train.run import resolve_model_config

    recipe = load_recipe(RECIPE, family_overrides(family, shared))
    config = resolve_model_config(recipe)
    if config.arch != family or config.objective != "causal":
        fail(f"{family}: --set gives a model of arch {config.arch!r}, objective {config.objective!r}; the "
             "comparison needs each family's own arch and the causal objective (leave model and objective be)", 2)
    parameters = sum(p.numel() for p in build_model(config).parameters())
    return {"recipe": recipe, "model_config": config.to_dict(), "parameters": parameters}


def tokens_seen(recipe, steps: int) -> int:
    """Training tokens (input positions) of `steps` optimizer steps, per the length stages."""
    from genossm.train.callbacks import length_stages

    d = recipe.data
    stages = length_stages(recipe.length_warmup, d.window_length, d.batch_size)
    total = 0
    for (first, window, batch), (end, _, _) in zip(stages, [*stages[1:], (steps, 0, 0)]):
        total += max(0, min(end, steps) - first) * window * batch
    return total * recipe.trainer.accumulate


def run_logged(command: list[str], log_path: Path, env: dict, stdout_path: Path | None = None) -> float:
    """Run `command` with stderr (and stdout, unless `stdout_path`) to `log_path`; its seconds, or
    RunFailed with the log's tail."""
    started = time.perf_counter()
    with log_path.open("w") as log, open(stdout_path or os.devnull, "w") as captured:
        done = subprocess.run(command, stdout=captured if stdout_path else log, stderr=log, env=env)
    if done.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-20:])
        raise RunFailed(f"{shlex.join(command[:4])} ... failed (exit {done.returncode}); end of {log_path}:\n{tail}")
    return time.perf_counter() - started


def run_family(family: str, checked: dict, args, splits: dict, work: Path, env: dict, started: float) -> dict:
    out = args.out / family
    out.mkdir(parents=True, exist_ok=True)
    overrides = [item for override in family_overrides(family, args.overrides) for item in ("--set", override)]
    stage(started, f"{family}: probe")
    probe_seconds = run_logged([sys.executable, str(PROBE), "--config", RECIPE, "--seconds", str(args.probe_seconds),
                                *overrides], out / "probe.log", env, stdout_path=out / "probe.json")
    probe = json.loads((out / "probe.json").read_text())
    (out / "probe.json").write_text(json.dumps(probe, indent=1) + "\n")
    recipe = checked["recipe"]
    tokens_per_step = recipe.data.batch_size * recipe.data.window_length * recipe.trainer.accumulate
    steps = max(10, int(args.schedule_share * args.train_seconds * probe["tokens_per_second"] / tokens_per_step))
    stage(started, f"{family}: {steps} steps of {tokens_per_step} tokens in at most {args.train_seconds} s")
    run = work / family
    pretrain_seconds = run_logged(
        [sys.executable, "-m", "genossm.cli.main", "pretrain", "--config", RECIPE, "--fasta", *splits["train"],
         "--val-fasta", *splits["val"], "--test-fasta", *splits["test"], "--out", str(run), *overrides,
         "--set", f"trainer.max_steps={steps}", "--set", f"trainer.val_every={steps}",
         "--set", f"trainer.checkpoint_every={steps}", "--set", f"optim.warmup_steps={(steps + 29) // 30}",
         "--set", f"trainer.max_time_s={args.train_seconds}"], out / "pretrain.log", env)
    metrics = json.loads((run / "metrics.json").read_text())
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    val, test = metrics.get("val") or {}, metrics.get("test") or {}
    if not test.get("bits_per_base"):  # None (JSON null): the test pass scored no bases
        raise RunFailed(f"no test bases scored ({test or 'no test pass'}); check the manifest's test genomes")
    return {
        "family": family, "model": FAMILIES[family][0], "model_config": checked["model_config"],
        "parameters": checked["parameters"], "parameters_trained": metrics["parameters"],
        "planned_steps": steps, "steps": metrics["steps"], "stopped_by_time": metrics["steps"] < steps,
        "tokens_seen": tokens_seen(recipe, metrics["steps"]), "tokens_per_second": metrics["tokens_per_second"],
        "probe_tokens_per_second": probe["tokens_per_second"], "train_seconds": metrics["train_seconds_this_run"],
        "val_bits_per_base": val.get("bits_per_base"), "test_bits_per_base": test.get("bits_per_base"),
        "val_bases": val.get("bases"), "test_bases": test.get("bases"), "precision": metrics["precision"],
        "device_name": probe["device_name"], "probe_wall_seconds": round(probe_seconds, 1),
        "pretrain_wall_seconds": round(pretrain_seconds, 1),
    }


def markdown_table(rows: list[dict]) -> str:
    def bits(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = ["| family | model | parameters | steps | tokens seen | tokens/s | train s "
             "| val bits/base | test bits/base |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['family']} | {row['model']} | failed: see its \"error\" in the JSON | | | | | | |")
            continue
        steps = f"{row['steps']:,}" + (" (time)" if row["stopped_by_time"] else "")
        lines.append(f"| {row['family']} | {row['model']} | {row['parameters']:,} | {steps} "
                     f"| {row['tokens_seen']:,} | {row['tokens_per_second']:,.0f} | {row['train_seconds']:.1f} "
                     f"| {bits(row['val_bits_per_base'])} | {bits(row['test_bits_per_base'])} |")
    return "\n".join(lines) + "\n"


def new_report(args, argv: list[str], splits: dict[str, list[str]]) -> dict:
    import torch

    return {
        "benchmark": "held-out bits per base at equal wall-clock training (benchmarks/family_comparison.py, "
                     "issue 17)",
        "command": shlex.join(["python", "benchmarks/family_comparison.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device_name": None, "torch": torch.__version__, "kernels": os.environ.get("GENOSSM_KERNELS", "auto"),
        "train_seconds_per_family": args.train_seconds, "recipe": RECIPE, "shared_overrides": args.overrides,
        "genomes": {name: [Path(path).name for path in paths] for name, paths in splits.items()},
        "notes": "train_seconds: trainer.fit's wall clock, start-up and the closing validation included "
                 "(trainer.max_time_s caps the training loop); tokens_per_second: between training batches; "
                 "stopped_by_time: the budget ended the run before its planned steps (cosine schedule unfinished)",
        "complete": False, "wall_seconds": 0.0, "rows": [],
    }


def write_report(report: dict, out: Path) -> None:
    (out / "family_comparison.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "family_comparison.md").write_text(markdown_table(report["rows"]))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.perf_counter()
    splits = split_genomes(args.manifest)
    ensure_dependencies(args.wheels)
    from genossm.errors import GenossmError

    try:
        checked = {family: check_family(family, args.overrides) for family in args.families}
    except GenossmError as err:
        fail(str(err), err.exit_code)
    for family in args.families:
        stage(started, f"{family}: {checked[family]['parameters']:,} parameters")
    args.out.mkdir(parents=True, exist_ok=True)
    report = new_report(args, argv, splits)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="family_comparison_") as work:
        for family in args.families:
            try:
                row = run_family(family, checked[family], args, splits, Path(work), env, started)
                report["device_name"] = row["device_name"]
                stage(started, f"{family}: test {row['test_bits_per_base']} bits/base after {row['steps']} steps")
            except RunFailed as err:
                row = {"family": family, "model": FAMILIES[family][0], "error": str(err)}
                stage(started, f"{family}: {err}")
            report["rows"].append(row)
            report["wall_seconds"] = round(time.perf_counter() - started, 1)
            write_report(report, args.out)
    failed = [row["family"] for row in report["rows"] if "error" in row]
    report["complete"] = not failed
    write_report(report, args.out)
    sys.stdout.write(markdown_table(report["rows"]))
    stage(started, f"done: {args.out / 'family_comparison.json'}" + (f"; {', '.join(failed)} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
