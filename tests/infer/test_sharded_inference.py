"""`genossm score` / `genossm embed` on 2 CPU processes (gloo, launched by Lightning Fabric) against
one process: the same output files, byte for byte.

Lightning's launcher re-runs the command line of the process that launches once per extra rank,
so 2-process runs are `python -m genossm.cli.main ...` subprocesses, never this pytest process.
Both runs use one torch thread per process, so that the CPU kernels sum in the same order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genossm.cli.main import main
from infer_helpers import EDGE_CASES, LAMBDA, LAMBDA_CONTIG, save_tiny_model

SCORE_OPTIONS = ["--skip-unknown", "--max-allele-length", "16", "--chunk-size", "2", "--threads", "1",
                 "--device", "cpu"]


@pytest.fixture(scope="module")
def hyena_dir(tmp_path_factory) -> Path:
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


@pytest.fixture
def one_thread():
    """The one-process runs happen in this process: give torch its thread count and this process
    its working directory back afterwards."""
    threads, cwd = torch.get_num_threads(), os.getcwd()
    yield
    torch.set_num_threads(threads)
    os.chdir(cwd)


def run_two_processes(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("WORLD_SIZE", None)
    return subprocess.run([sys.executable, "-m", "genossm.cli.main", *arguments, "--devices", "2"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def test_two_process_scoring_writes_the_one_process_bytes(tmp_path, hyena_dir, one_thread):
    # 18 records in chunks of 2: 9 chunks, more than one window of 2 ranks x 4 chunks.
    # The output names are in the header's command line: the same names, in two directories.
    common = ["score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir), *SCORE_OPTIONS,
              "-o", "out.vcf", "--tsv", "out.tsv"]
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    os.chdir(tmp_path / "one")
    assert main(["-q", *common]) == 0
    done = run_two_processes(common, tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = (tmp_path / "one/out.vcf").read_bytes(), (tmp_path / "two/out.vcf").read_bytes()
    assert one == two
    assert (tmp_path / "one/out.tsv").read_bytes() == (tmp_path / "two/out.tsv").read_bytes()
    assert b"GENOSSM_STATUS=ok" in two and b"--devices" not in two
    assert done.stderr.count("2 ranks (2 per node) on cpu") == 1  # info logs from rank 0 only


def test_an_error_on_another_rank_stops_every_rank_like_one_process(tmp_path, hyena_dir, one_thread, capsys):
    # Without --skip-unknown the unknown contigs (records 17 and 18) are errors: in chunks of 3
    # records they fall in chunk 5, which rank 1 scores.
    common = ["score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
              "--max-allele-length", "16", "--chunk-size", "3", "--threads", "1", "--device", "cpu"]
    assert main([*common, "-o", str(tmp_path / "one.vcf")]) == 1
    one_error = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    done = run_two_processes([*common, "-o", str(tmp_path / "two.vcf")], tmp_path)
    assert done.returncode == 1
    two_error = [line for line in done.stderr.splitlines() if "error:" in line]
    assert two_error == one_error and "unknown" in one_error[0]
    assert not (tmp_path / "two.vcf").exists()


def test_two_process_embedding_writes_the_one_process_bytes(tmp_path, hyena_dir, one_thread):
    bed = tmp_path / "r.bed"
    bed.write_text("".join(f"{LAMBDA_CONTIG}\t{start}\t{start + 40 + start // 100}\tr{start}\t0\t{'+-'[start % 3 == 0]}\n"
                           for start in range(0, 1100, 100)))  # 11 regions: 2 windows of 2 ranks x 4
    common = ["embed", "--regions", str(bed), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
              "--per-position", "--threads", "1", "--device", "cpu"]
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    os.chdir(tmp_path / "one")
    assert main(["-q", *common, "-o", "out.h5"]) == 0
    done = run_two_processes([*common, "-o", "out.h5"], tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "one/out.h5").read_bytes() == (tmp_path / "two/out.h5").read_bytes()


@pytest.mark.parametrize("extra", [["--resume"], ["--device", "cuda:1"]])
def test_options_that_cannot_shard_are_usage_errors(tmp_path, hyena_dir, capsys, extra):
    code = main(["score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                 "-o", str(tmp_path / "o.vcf"), "--devices", "2", *extra])
    assert code == 2
    assert "--devices" in capsys.readouterr().err


def test_stdin_and_stdout_cannot_shard(tmp_path, hyena_dir, capsys):
    assert main(["score", "-", "--fasta", str(LAMBDA), "--model", str(hyena_dir), "-o", str(tmp_path / "o.vcf"),
                 "--devices", "2"]) == 2
    assert main(["score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "--devices", "2"]) == 2
    errors = capsys.readouterr().err
    assert "not stdin" in errors and "give an output file" in errors
